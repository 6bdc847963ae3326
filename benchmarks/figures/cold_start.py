"""Figure 6: ``python app.py`` from process start to its first answer against loading the towers alone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from benchmarks.context import REPO_ROOT, Context, log
from benchmarks.harness import App, child_env
from benchmarks.stats import Figure, Stats, median

TOWERS_ONLY = (
    "import sys\n"
    "from tweetmaker.towers import load_towers\n"
    "load_towers(sys.argv[1], device='cpu')\n"
    "print('ready', flush=True)\n"
)


def towers_cold_load(towers_dir: Path) -> float:
    """Seconds from process start to towers loaded (``load_towers``) in a fresh interpreter."""
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", TOWERS_ONLY, str(towers_dir)], cwd=REPO_ROOT,
                               env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    elapsed = time.perf_counter() - began
    process.wait()
    if line.strip() != "ready":
        raise RuntimeError(f"Loading the towers failed (exit code {process.returncode}).")
    return elapsed


def cold_start(ctx: Context, index_dir: Path) -> tuple[list[Figure], App]:
    """Figure 6: app start to first answered query (persisted index) vs loading the towers alone.

    Returns the last app, still running, for the serving figure.
    """
    profile = ctx.profile
    texts = ctx.query_texts
    app_times, towers_times = [], []
    app: App | None = None
    rounds = profile.cold_repeats + (1 if profile.cold_repeats > 1 else 0)  # one warm-up round (page cache)
    for round_number in range(rounds):
        if app is not None:
            app.close()
        measured = profile.cold_repeats == 1 or round_number > 0
        order = ("towers", "app") if round_number % 2 == 0 else ("app", "towers")
        for side in order:
            if side == "towers":
                seconds = towers_cold_load(ctx.speed_towers_dir)
                if measured:
                    towers_times.append(seconds)
            else:
                app = App(ctx, index_dir)
                seconds = app.first_answer(texts[round_number % len(texts)])
                if measured:
                    app_times.append(seconds)
        log(f"cold start round {round_number + 1}/{rounds}: app {app_times[-1:]} towers {towers_times[-1:]}")
    assert app is not None
    phases = app.phases()
    figure = Figure(
        number=6,
        name="Cold start: app start to first answer vs loading the towers alone",
        value=median(app_times),
        reference=median(towers_times),
        unit="s",
        description="`python app.py` (persisted index, nothing re-embedded) from process start to the first "
                    "text→image answer through gradio_client",
        reference_description="a fresh `python -c` that imports tweetmaker.towers and runs load_towers",
        target=("<=", 1.5),
        value_stats=Stats.of(app_times),
        reference_stats=Stats.of(towers_times),
        details={"app_phases_seconds_since_start": phases},
    )
    return [figure], app
