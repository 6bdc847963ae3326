"""TweetMaker's benchmarks: speed and quality side by side, each figure a ratio against a same-run reference.

    python benchmarks/run.py [--quick] [--out BENCHMARKS.md] [--workdir DIR]

Writes the markdown report to ``--out`` and the same figures as JSON next to it (``BENCHMARKS.json``). The full
run is the default; ``--quick`` finishes in under 10 minutes on a 2-core machine; ``--smoke`` (used by the test
suite) runs every figure at toy sizes with a tiny model in place of ViT-B/32 and says nothing about speed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# `benchmarks` and `tweetmaker` are found as installed packages (`pip install -e .`, part of requirements-dev.txt).
REPO_ROOT = Path(__file__).resolve().parents[1]

# Offline and quiet before any other library is imported: nothing may be downloaded or reported home.
from tweetmaker.offline import OFFLINE_ENV  # noqa: E402 - imports nothing else

for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks import analysis, capabilities, report  # noqa: E402
from benchmarks.context import PROFILES, Context, log  # noqa: E402
from benchmarks.figures import (  # noqa: E402
    backends,
    chroma,
    cold_start,
    indexing,
    latency,
    memory,
    quality,
    serving,
    sharding,
    training,
)
from benchmarks.harness import APPS_STARTED  # noqa: E402
from benchmarks.stats import Figure  # noqa: E402

GROUPS = range(1, 11)  # figure groups (report.FIGURE_TITLES); --only picks among them
SPEED_TOWER_GROUPS = {1, 3, 4, 6, 8, 9, 10}  # groups that run the ViT-B/32-shaped speed towers

METHOD = """
- **Figure ids**: every figure has a stable `id` (`group.what.variant`, e.g. `latency.text_to_image.10k`), in
  BENCHMARKS.json and in the headline table; the "Targets" section finds issue 13's targets by it and prints met /
  not met (or not measured, with the reason, when a feature it needs has not shipped yet).
- **Speed towers**: a `CLIPModel` with the exact shapes of `openai/clip-vit-base-patch32` (ViT-B/32 image encoder,
  12-layer 512-wide text encoder, 512-d projections, 77-token context, quick-GELU), randomly initialised in code
  (`benchmarks/workspace.py`) because nothing can be downloaded here; speed does not depend on the weights. It is
  split into towers by `build_towers_from_base`, saved, and loaded back with `load_towers`, as the app does. The
  real BPE vocabulary cannot be downloaded either, so the tiny offline byte-level BPE tokenizer of
  `tweetmaker.towers` is used with a 77-token cap (twin tweets come out at the token count shown in figure 1).
  The image processor is the real checkpoint's `preprocessor_config.json` (224 px, bicubic, centre crop).
- **Backends (figures 1, 3, 8, 10)**: `load_towers(..., backend=B)` for every `tweetmaker.inference.BACKENDS`;
  "the chosen backend" is `tweetmaker.inference.DEFAULT_CPU_BACKEND`. The ONNX exports are made before anything is
  timed (in background processes while the twin, indexes and quality towers are prepared) and cached beside the
  towers, as the library caches them, so no figure pays for an export. Figure 8 times batch-of-one
  `encode_texts`/`encode_images` of every backend in rotating rounds; agreement and quality drift are measured on
  the tiny towers fine-tuned on the twin (figure 7's), with fp32 torch's embeddings as the reference.
- **Indexes for latency (figures 1, 2, 4, 6, 10)**: embedding 100k real images with ViT-B/32 on two CPU cores would
  take hours, so the `image` collection is filled directly with synthetic 512-d unit vectors (clustered in a
  64-d subspace plus noise, like real embeddings; uniformly random vectors are HNSW's worst case and nothing like
  a model's output) and with the metadata `tweetmaker.index.record_metadata` gives every record, using the
  project's chosen HNSW settings and manifest, so the app opens it as a built index. The `text` and `hashtag`
  collections hold 200 records (the text→image query never touches them). Queries for figure 2 are corpus
  vectors plus noise (a query lands near, not on, its image). Figure 2 is also measured on the twin's own
  embeddings (fine-tuned tiny towers, test texts as queries against all images).
- **Queries** are distinct twin tweet texts, and distinct twin images written as files (as Gradio hands an upload
  to a handler), so no cache can answer a repeat. The bare references run fp32 PyTorch eager and an exact torch
  top-k over the same vectors (top-10 for text→image, the 20 voting neighbours for image→hashtags).
- **Indexing (figure 3)** uses twin images (about 300 px JPEG/PNG) and the chosen backend's towers; the references
  run fp32 towers on pixel and token tensors already in memory, at the fastest batch size of a short sweep.
  **Sharded builds (figure 9)** run `torchrun --standalone --nproc_per_node N -m tweetmaker.index build` on a small
  twin, launch to exit, with OMP_NUM_THREADS = cores / N.
- **Serving (figure 4), cold start (figure 6) and memory (figure 10)** run `python app.py` in its own process on
  127.0.0.1 (closed at the end) and call it with `gradio_client` (results' files not downloaded). The concurrent
  rounds start 1, 4 and 8 clients in threads at once; their reference is the handler called serially in this
  process before and after the rounds. The cold-start reference is a fresh interpreter that imports
  `tweetmaker.towers` and runs `load_towers` on the same towers (same backend); one warm-up round of both fills
  the page cache first. Memory is the app's current RSS (VmRSS) right after its first answer.
- **Training (figure 5)** runs the library's loop (`tweetmaker.training.train`, what `train/finetune.py` runs)
  in-process on the ViT-B/32 towers and reads the time between consecutive optimizer steps from a global optimizer
  step hook (evaluation and saving are outside those intervals). The bare loop uses the same towers, loss, AdamW
  and clipping on pre-collated tensors.
- **Quality (figure 7)**: tiny towers fine-tuned on the twin by `tweetmaker.training.train` with the offline
  demo's recipe (`tweetmaker.demo.DEMO_RECIPE`), scored with `tweetmaker.metrics.tower_metrics` (exact search) on
  the test split, against the same towers before fine-tuning. Targets are the Training issue's acceptance criteria.
- Medians are reported as the value of each figure; p95 and means are listed per figure. The load from other
  processes is measured from `/proc/stat` minus this run's own CPU time.
"""


def full_run_text() -> str:
    rows = []
    for field in ("latency_sizes", "defaults_sizes", "latency_repeats", "recall_queries", "index_images",
                  "build_repeats", "serve_serial", "serve_client_counts", "serve_per_client", "train_batch",
                  "train_steps", "cold_repeats", "quality_rows", "backend_repeats", "agreement_rows", "shard_rows"):
        rows.append(f"| {field} | {getattr(PROFILES['quick'], field)} | {getattr(PROFILES['full'], field)} |")
    return "\n".join([
        "`python benchmarks/run.py --out BENCHMARKS.md` (no `--quick`) runs the same figures at the sizes below. "
        "On this 2-core machine it took 30-40 minutes before issue 13's figures, which add the ONNX exports, the "
        "backends, the app's memory per backend and the sharded builds (an estimated 10 more); most of it fills the "
        "100k-item collections (chosen and default HNSW settings) and runs ViT-B/32 training steps at batch 32. "
        "`agreement_rows` None: every twin row. Run it on an otherwise "
        "idle machine; `--workdir DIR` keeps the generated models, twin and indexes for the next run.",
        "",
        "| setting | --quick | full |",
        "|---|---|---|",
        *rows,
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes; under 10 minutes on 2 cores")
    size.add_argument("--smoke", action="store_true", help="toy sizes and a tiny model: checks the runner works")
    parser.add_argument("--out", default="BENCHMARKS.md", help="markdown report; the JSON goes next to it")
    parser.add_argument("--workdir", default=None,
                        help="keep models, data and indexes here and reuse them (default: a temporary directory)")
    parser.add_argument("--only", default=None, help="comma-separated figure group numbers to run (development)")
    return parser.parse_args(argv)


def quiet_libraries() -> None:
    """Keep the console for the benchmark's own progress: no per-request HTTP logs or loading bars."""
    import logging

    import datasets
    import transformers

    for name in ("httpx", "httpcore", "gradio_client", "chromadb"):
        logging.getLogger(name).setLevel(logging.WARNING)
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_libraries()
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    only = {int(part) for part in args.only.split(",")} if args.only else set(GROUPS)
    out = Path(args.out)
    json_path = out.with_suffix(".json")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="tweetmaker-bench-"))
    ctx = Context(profile, workdir)
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    began = time.perf_counter()
    start_cpu = report.cpu_snapshot()
    results: list[Figure] = []
    errors: list[dict[str, str]] = []
    loads: dict[str, dict[str, float]] = {}

    def attempt(part: str, numbers: set[int], function: Callable[[], list[Figure]]) -> None:
        if not numbers & only:
            return
        log(f"--- {part}")
        part_began, part_cpu = time.perf_counter(), report.cpu_snapshot()
        try:
            results.extend(function())
        except Exception as error:  # noqa: BLE001 - one broken measurement must not lose the others
            traceback.print_exc()
            errors.append({"part": part, "error": f"{type(error).__name__}: {error}"})
        loads[part] = report.load_between(part_cpu, report.cpu_snapshot(), time.perf_counter() - part_began)
        log(f"--- {part} done in {loads[part]['wall_s']} s (other processes: "
            f"{loads[part]['other_processes_cores']} cores)")

    try:
        attempt("prepare (untimed): towers, ONNX exports in the background, twin, indexes, quality towers",
                set(GROUPS), lambda: prepare(ctx, only))
        first, *others = profile.latency_sizes
        attempt(f"query latency, Chroma, cold start, serving and app memory at {first:,}", {1, 2, 4, 6, 10},
                lambda: _first_size_suite(ctx, first, only))
        for size in others:
            attempt(f"query latency and Chroma at {size:,}", {1, 2},
                    lambda size=size: speed_at_size(ctx, size, first=False))
        attempt("inference backends: tower latency", {8}, lambda: backends.tower_latency(ctx))
        attempt("inference backends: agreement with fp32", {8}, lambda: backends.agreement(ctx))
        attempt("indexing throughput", {3}, lambda: indexing.indexing_throughput(ctx))
        attempt("sharded index build", {9}, lambda: sharding.sharded_build(ctx))
        attempt("training step throughput", {5}, lambda: training.training_throughput(ctx))
        attempt("quality", {7}, lambda: quality.quality(ctx))
        attempt("Chroma on the twin's embeddings", {2}, lambda: chroma.twin_hnsw(ctx))
    finally:
        ctx.wait_for_exports()  # no export process outlives the run
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    results.sort(key=lambda figure: figure.number)  # stable: keeps the measuring order within a figure
    duration = time.perf_counter() - began
    command = "python benchmarks/run.py" + (" --quick" if args.quick else " --smoke" if args.smoke else "")
    meta: dict[str, Any] = {
        "run": {"command": command, "profile": profile.name, "started": started_at, "duration_s": round(duration, 1),
                "json": json_path.name, "errors": errors, "app_processes": APPS_STARTED,
                "chosen_backend": ctx.chosen_backend},
        "machine": report.machine_info(),
        "libraries": report.library_versions(),
        "load": {**report.load_between(start_cpu, report.cpu_snapshot(), duration), "parts": loads},
        "settings": ctx.settings(),
    }
    meta["analysis"] = analysis.analyse(results)
    meta["targets"] = analysis.targets(results, ctx.chosen_backend)
    out.parent.mkdir(parents=True, exist_ok=True)
    report.write_json(json_path, results, meta)
    out.write_text(report.render_markdown(results, meta, errors, METHOD, full_run_text()), encoding="utf-8")
    for row in meta["targets"]:
        log(f"target {row['target']} ({row['id']}): {row['status']}")
    log(f"wrote {out} and {json_path} in {duration / 60:.1f} min; {len(results)} figures, {len(errors)} errors")
    return 1 if errors else 0


def prepare(ctx: Context, only: set[int]) -> list[Figure]:
    """Everything the timed parts need that takes long to make, before any of them runs.

    The ONNX exports (a minute or more each at ViT-B/32 shapes, mostly single-threaded) run in background processes
    while this process writes the twin, fills the first index and fine-tunes the quality towers; all of it is
    joined here, so no timed figure shares the cores with an export.
    """
    backends_wanted = not capabilities.backends_missing()
    if only & SPEED_TOWER_GROUPS:
        if backends_wanted:
            ctx.start_exports(ctx.speed_towers_dir)
        ctx.speed_towers_dir  # noqa: B018 - made now (start_exports made it already when there are backends)
    ctx.query_texts  # noqa: B018 - the twin
    if only & {1, 2, 4, 6, 10}:
        ctx.speed_index_dir(ctx.profile.latency_sizes[0])
    if only & {1, 8}:
        ctx.query_image_paths  # noqa: B018
    if only & {2, 7, 8}:
        ctx.trained_towers_dir  # noqa: B018 - the quality towers' fine-tuning
        if 8 in only and backends_wanted and ctx.trained_towers_dir != ctx.speed_towers_dir:
            ctx.start_exports(ctx.trained_towers_dir)
    ctx.wait_for_exports()
    return []


def speed_at_size(ctx: Context, size: int, first: bool) -> list[Figure]:
    """Figures 1 and 2 on the app index of ``size`` synthetic vectors (one set of resources), and figure 2 at Chroma's
    default settings where the profile asks for it. ``first``: the size the figure-1 targets apply to, where the
    handlers are also measured with the chosen backend."""
    index_dir = ctx.speed_index_dir(size)
    # Figure 1's handler runs fp32 torch, as its bare reference does (the app's default backend is measured next).
    resources = ctx.load_resources(index_dir, backend=capabilities.TORCH)
    try:
        results = latency.query_latency(ctx, resources, size, with_target=first)
        results += chroma.chosen_settings(ctx, resources.index.collections["image"], size)
    finally:
        resources.close()
    if first:
        results += latency.chosen_backend_latency(ctx, index_dir, size)
    if size in ctx.profile.defaults_sizes:
        results += chroma.chroma_defaults(ctx, size)
    return results


def _first_size_suite(ctx: Context, size: int, only: set[int]) -> list[Figure]:
    """Figures 1, 2, 6, 4 and 10 on the smallest index: the cold-start app is kept for serving, then the app is
    started with each backend for its memory (the cold-start app's is reused for its own backend)."""
    results: list[Figure] = []
    if only & {1, 2}:
        results += speed_at_size(ctx, size, first=True)
    if not only & {4, 6, 10}:
        return results
    index_dir = ctx.speed_index_dir(size)
    # The app gets its own copy: Chroma is not process-safe on one directory, and this process has it open too.
    app_index = ctx.workdir / f"app-index-{size}"
    shutil.rmtree(app_index, ignore_errors=True)
    shutil.copytree(index_dir, app_index)
    measured: dict[str, float] = {}
    if only & {4, 6}:
        cold, app = cold_start.cold_start(ctx, app_index)
        measured[ctx.app_backend() or capabilities.TORCH] = cold[0].details["app_rss_mib_after_first_answer"]
        try:
            if 6 in only:
                results += cold
            if 4 in only:
                resources = ctx.load_resources(index_dir, backend=ctx.app_backend())
                try:
                    results += serving.serving_overhead(ctx, resources, app)
                finally:
                    resources.close()
        finally:
            app.close()
    if 10 in only:
        results += memory.app_memory(ctx, app_index, measured)
    return results


if __name__ == "__main__":
    sys.exit(main())
