"""Figure 9: a sharded index build, ``torchrun --nproc_per_node N -m tweetmaker.index build ...``, with 2 processes
against 1, from launch to exit, on the same small twin and the speed towers (ViT-B/32 shapes).

On a 2-core machine no speed-up is expected: both processes share the same two cores, and each pays the start
(imports, towers) that one process pays once. The figure reports the ratio as measured; the analysis says what it
would be on N GPUs. Until the build can shard, the figure is recorded as not available, with the reason.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from benchmarks import capabilities, workspace
from benchmarks.context import REPO_ROOT, Context, log
from benchmarks.harness import child_env
from benchmarks.stats import Figure, Stats, median, usable_cores


def _figure_id(processes: int) -> str:
    return f"sharding.build.{processes}_process{'es' if processes > 1 else ''}"


def sharded_build(ctx: Context) -> list[Figure]:
    profile = ctx.profile
    reference_count, *others = profile.shard_processes
    names = {count: f"Sharded index build, {count} processes (torchrun) vs {reference_count} process"
             for count in others}
    reason = capabilities.sharded_build_missing()
    if reason:
        log(f"sharded build: not available ({reason})")
        return [Figure.not_available(_figure_id(count), 9, names[count], "tweets/s", reason) for count in others]
    dataset = workspace.make_twin(ctx.workdir, profile.shard_rows)
    backend = ctx.chosen_backend if capabilities.build_takes_backend() else None
    if backend is not None:
        ctx.wait_for_exports()
    repeats = max(1, profile.build_repeats - 1)
    walls: dict[int, list[float]] = {count: [] for count in profile.shard_processes}
    counts: dict[int, int] = {}
    for round_number in range(repeats):
        order = list(profile.shard_processes)
        if round_number % 2:
            order.reverse()
        for processes in order:
            wall, records = _build(ctx, dataset, processes, backend)
            walls[processes].append(wall)
            counts[processes] = records
            log(f"sharded build with {processes} process(es): {wall:.1f} s, {records} tweets indexed")
    rows = counts[reference_count]
    rates = {count: [rows / wall for wall in seconds] for count, seconds in walls.items()}
    figures = []
    for count in others:
        figures.append(Figure(
            id=_figure_id(count),
            number=9,
            name=names[count],
            value=median(rates[count]),
            reference=median(rates[reference_count]),
            unit="tweets/s",
            description=f"`torchrun --standalone --nproc_per_node {count} -m tweetmaker.index build` over a "
                        f"{rows}-tweet twin into an embedded index, launch to exit (OMP_NUM_THREADS = cores / "
                        f"processes){'; --backend ' + backend if backend else ''}",
            reference_description=f"the same build with --nproc_per_node {reference_count}",
            value_stats=Stats.of(rates[count], "tweets/s"),
            reference_stats=Stats.of(rates[reference_count], "tweets/s"),
            details={"tweets": rows, "records_indexed": counts, "wall_s": walls, "cores": usable_cores(),
                     "backend": backend or "the build's default"},
            notes=f"On this {usable_cores()}-core machine the processes share the same cores, so no speed-up is "
                  "expected; the analysis below estimates the figure on N GPUs from this run's numbers.",
        ))
    return figures


def _build(ctx: Context, dataset: Path, processes: int, backend: str | None) -> tuple[float, int]:
    """Seconds from launch to exit of one sharded build, and the tweets the finished index holds."""
    from tweetmaker.index import open_index

    index_dir = ctx.workdir / f"shard-index-{processes}"
    command = ["torchrun", "--standalone", "--nproc_per_node", str(processes), "-m", "tweetmaker.index", "build",
               "--dataset", str(dataset), "--towers", str(ctx.speed_towers_dir), "--index_dir", str(index_dir),
               "--rebuild", "--no_progress"]
    if backend is not None:
        command += ["--backend", backend]
    env = {**child_env(), "OMP_NUM_THREADS": str(max(1, usable_cores() // processes))}
    log_path = ctx.workdir / f"shard-build-{processes}.log"
    began = time.perf_counter()
    with open(log_path, "w") as log_file:
        completed = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   timeout=1800)
    wall = time.perf_counter() - began
    if completed.returncode:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"The {processes}-process build failed (exit {completed.returncode}):\n{tail}")
    index = open_index(index_dir, require_complete=False)
    try:
        records = index.count("image")
    finally:
        index.close()
    return wall, records
