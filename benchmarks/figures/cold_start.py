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
    "options = {'backend': sys.argv[2]} if len(sys.argv) > 2 else {}\n"
    "load_towers(sys.argv[1], device='cpu', **options)\n"
    "print('ready', flush=True)\n"
)


def towers_cold_load(towers_dir: Path, backend: str | None = None) -> float:
    """Seconds from process start to towers loaded (``load_towers``, served by ``backend`` when given) in a fresh
    interpreter."""
    began = time.perf_counter()
    extra = [backend] if backend else []
    process = subprocess.Popen([sys.executable, "-c", TOWERS_ONLY, str(towers_dir), *extra], cwd=REPO_ROOT,
                               env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    elapsed = time.perf_counter() - began
    process.wait()
    if line.strip() != "ready":
        raise RuntimeError(f"Loading the towers failed (exit code {process.returncode}).")
    return elapsed


def cold_start(ctx: Context, index_dir: Path) -> tuple[list[Figure], App]:
    """Figure 6: app start to first answered query (persisted index) vs loading the towers alone.

    The app runs with the chosen backend once it has ``--backend`` (the towers-only reference loads the same
    backend; its export is made beforehand, so neither side pays for it). Returns the last app, still running, for
    the serving figure; its memory right after the first answer is in the figure's details (figure 10 reuses it).
    """
    profile = ctx.profile
    backend = ctx.app_backend()
    if backend is not None:
        ctx.wait_for_exports()
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
                seconds = towers_cold_load(ctx.speed_towers_dir, backend)
                if measured:
                    towers_times.append(seconds)
            else:
                app = App(ctx, index_dir, backend)
                seconds = app.first_answer(texts[round_number % len(texts)])
                if measured:
                    app_times.append(seconds)
        log(f"cold start round {round_number + 1}/{rounds}: app {app_times[-1:]} towers {towers_times[-1:]}")
    assert app is not None
    phases = app.phases()
    rss = app.rss_bytes()
    figure = Figure(
        id="cold_start.first_answer",
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
        details={"app_phases_seconds_since_start": phases, "backend": backend or "the app's default",
                 "app_rss_mib_after_first_answer": rss / 2**20},
    )
    return [figure], app
