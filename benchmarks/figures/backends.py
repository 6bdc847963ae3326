"""Figure 8: the inference backends side by side: batch-of-one tower latency at ViT-B/32 shapes against fp32 PyTorch
eager, and top-10 agreement with fp32 (plus the quality figures' drift) on the twin with trained towers.

A backend the library does not offer yet, or whose runtime is missing, gets a "not available" figure with the reason.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks import capabilities
from benchmarks.context import Context, log
from benchmarks.stats import MS, Figure, median, ms_stats, rotated

TORCH = capabilities.TORCH
AGREEMENT_BAR = 0.95  # issue 13: top-10 results agree with fp32 on >= 95% of positions
QUALITY_TOLERANCE = 0.01  # issue 13: every quality figure within 0.01 of fp32


def _unusable(backend: str) -> str:
    return capabilities.backend_unusable(backend)


def tower_latency(ctx: Context) -> list[Figure]:
    """Batch-of-one ``encode_texts`` and ``encode_images`` of every backend, all in one rotating round per repeat
    (so load from other processes falls on every backend alike); each against fp32 torch."""
    profile = ctx.profile
    texts = ctx.query_texts
    images = [_decode(path) for path in ctx.query_image_paths[:64]]
    loaded: dict[str, Any] = {}
    load_seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    for backend in capabilities.backends():
        reason = _unusable(backend)
        if reason:
            failed[backend] = reason
            continue
        began = time.perf_counter()
        try:
            # The chosen backend and fp32 stay loaded for the figures after this one; the others are let go after it.
            shared = backend in (TORCH, ctx.chosen_backend)
            loaded[backend] = ctx.speed_towers(backend) if shared else ctx.load_speed_towers(backend)
        except Exception as error:  # noqa: BLE001 - one backend that cannot load must not lose the others
            failed[backend] = f"loading failed: {type(error).__name__}: {error}"
            log(f"backend {backend}: {failed[backend]}")
            continue
        load_seconds[backend] = time.perf_counter() - began
    names = list(loaded)
    calls = []
    for backend in names:
        towers = loaded[backend]
        calls.append(lambda i, t=towers: t.encode_texts([texts[(13 * i + 3) % len(texts)]]))
        calls.append(lambda i, t=towers: t.encode_images([images[i % len(images)]]))
    times = rotated(calls, repeats=profile.backend_repeats, warmup=2) if calls else []
    samples = {backend: {"text": times[2 * n], "image": times[2 * n + 1]} for n, backend in enumerate(names)}
    figures = []
    for tower, label in (("text", "text tower (1 tweet text)"), ("image", "image tower (1 decoded image)")):
        for backend in capabilities.backends():
            figure_id, name = f"backends.{tower}_tower.{backend}", f"Tower latency, {label}: {backend} vs fp32 torch"
            if backend in failed or TORCH not in samples:
                reason = failed.get(backend) or failed.get(TORCH, "fp32 torch could not be measured")
                figures.append(Figure.not_available(figure_id, 8, name, "ms", reason))
                continue
            value, reference = samples[backend][tower], samples[TORCH][tower]
            figures.append(Figure(
                id=figure_id,
                number=8,
                name=name,
                value=median(value) * MS,
                reference=median(reference) * MS,
                unit="ms",
                description=f"towers.encode_{'texts' if tower == 'text' else 'images'} of one input, "
                            f"load_towers(..., backend={backend!r}), ViT-B/32 shapes"
                            + (", tokenization included" if tower == "text" else ", preprocessing included"),
                reference_description="the same call on fp32 PyTorch eager towers (backend='torch')",
                value_stats=ms_stats(value),
                reference_stats=ms_stats(reference),
                details={"chosen": backend == ctx.chosen_backend, "load_s": load_seconds.get(backend),
                         "background_export_s": ctx.export_seconds.get(f"{ctx.speed_towers_dir.name} {backend}")},
            ))
    return figures


def agreement(ctx: Context) -> list[Figure]:
    """Top-10 agreement of each backend with fp32 torch and its quality drift, on the twin with trained towers.

    As ``tweetmaker.inference.compare.agreement`` measures it (its ranking and agreement functions are used), with
    fp32's embeddings made once for all backends: test tweets query every row (text -> image, image -> hashtags);
    "rebuilt" ranks documents embedded by the backend itself (an index built by it), "fp32 index" ranks the fp32
    documents (an index built by fp32 torch, queried by the backend). The figure is the worst of the four.
    """
    from tweetmaker.data import load_tweets

    missing = capabilities.backends_missing()
    compare = None
    if not missing:
        try:
            from tweetmaker.inference import compare
        except ImportError as error:
            missing = f"tweetmaker.inference.compare is not there yet ({error})"
    if missing:
        return [_agreement_unavailable(TORCH, missing), _quality_unavailable(TORCH, missing)]
    from tweetmaker.towers import load_towers

    towers_dir = ctx.trained_towers_dir
    ctx.wait_for_exports()
    dataset = _subset(load_tweets(str(ctx.quality_dataset_dir)), ctx.profile.agreement_rows)
    reference = load_towers(towers_dir, device="cpu", backend=TORCH)
    expected = _embedded(compare, reference, dataset)
    baseline = compare.tower_quality(reference, dataset["test"])
    figures = []
    for backend in capabilities.backends():
        reason = _unusable(backend)
        if reason:
            figures += [_agreement_unavailable(backend, reason), _quality_unavailable(backend, reason)]
            continue
        began = time.perf_counter()
        if backend == TORCH:
            candidate, embedded, quality = reference, expected, baseline
        else:
            candidate = load_towers(towers_dir, device="cpu", backend=backend)
            embedded = _embedded(compare, candidate, dataset)
            quality = compare.tower_quality(candidate, dataset["test"])
        agreements = _agreements(compare, expected, embedded)
        deltas = {name: quality[name] - baseline[name] for name in baseline if name in quality}
        worst_delta = max((abs(value) for value in deltas.values()), default=0.0)
        log(f"backend {backend}: agreement {min(agreements.values()):.3f}, worst quality delta {worst_delta:.4f} "
            f"({time.perf_counter() - began:.0f} s)")
        chosen = " (the chosen backend)" if backend == ctx.chosen_backend else ""
        common = {"chosen": backend == ctx.chosen_backend, "rows": sum(len(split) for split in dataset.values()),
                  "query_tweets": len(dataset["test"])}
        figures += [
            Figure(
                id=f"backends.agreement.{backend}",
                number=8,
                name=f"Top-10 agreement with fp32, {backend}{chosen}, twin with trained towers",
                value=min(agreements.values()),
                reference=1.0,
                unit="share of positions",
                description="worst of text→image and image→hashtags, over an index rebuilt by the backend and one "
                            "built by fp32 torch: share of (query, rank) positions holding the same document as fp32",
                reference_description="fp32 PyTorch eager (agreement 1 by definition)",
                target=(">=", AGREEMENT_BAR),
                target_on="value",
                details={**common, "agreement": agreements},
                notes="fp32 torch against itself: 1 by definition." if backend == TORCH else "",
            ),
            Figure(
                id=f"backends.quality_delta.{backend}",
                number=8,
                name=f"Quality drift from fp32, {backend}{chosen}: largest |difference| of recall@10 / precision@10",
                value=worst_delta,
                reference=0.0,
                unit="absolute difference",
                description="tweetmaker.metrics recall@10 and precision@10 of every direction on the test split "
                            "(tweetmaker.inference.compare.tower_quality), backend minus fp32",
                reference_description="fp32 PyTorch eager (difference 0)",
                target=("<=", QUALITY_TOLERANCE),
                target_on="value",
                details={**common, "differences": deltas, "fp32": baseline},
            ),
        ]
    return figures


def _subset(dataset: Any, rows: int | None) -> Any:
    """Every test tweet (the queries) and the first training rows up to ``rows`` in all (the other documents)."""
    from datasets import DatasetDict

    if rows is None:
        return dataset
    test = dataset["test"]
    others = {name: split for name, split in dataset.items() if name != "test"}
    room = max(0, rows - len(test))
    kept = {}
    for name, split in others.items():
        kept[name] = split.select(range(min(room, len(split))))
        room -= len(kept[name])
    return DatasetDict({**kept, "test": test})


def _embedded(compare: Any, towers: Any, dataset: Any) -> dict[str, Any]:
    return {split: compare.embed_rows(towers, dataset[split]) for split in dataset}


def _stack(parts: list[dict[str, Any]], modality: str, key: str) -> tuple[np.ndarray, list[Any]]:
    vectors = np.concatenate([part[modality] for part in parts])
    keys = [part["keys"][key][row] for part in parts for row in part["rows"][modality]]
    return vectors, keys


def _agreements(compare: Any, reference: dict[str, Any], candidate: dict[str, Any], k: int = 10,
                query_split: str = "test") -> dict[str, float]:
    """``compare.agreement``'s four numbers from embeddings made beforehand."""
    out = {}
    for direction, (query, document, key) in compare.DIRECTIONS.items():
        documents, keys = _stack(list(reference.values()), document, key)
        own, _ = _stack(list(candidate.values()), document, key)
        expected = compare.ranked(reference[query_split][query], documents, keys, k)
        out[f"{direction} rebuilt"] = compare.top_k_agreement(
            expected, compare.ranked(candidate[query_split][query], own, keys, k))
        out[f"{direction} fp32 index"] = compare.top_k_agreement(
            expected, compare.ranked(candidate[query_split][query], documents, keys, k))
    return out


def _agreement_unavailable(backend: str, reason: str) -> Figure:
    return Figure.not_available(f"backends.agreement.{backend}", 8,
                                f"Top-10 agreement with fp32, {backend}, twin with trained towers",
                                "share of positions", reason, target=(">=", AGREEMENT_BAR), target_on="value")


def _quality_unavailable(backend: str, reason: str) -> Figure:
    name = f"Quality drift from fp32, {backend}: largest |difference| of recall@10 / precision@10"
    return Figure.not_available(f"backends.quality_delta.{backend}", 8, name, "absolute difference", reason,
                                target=("<=", QUALITY_TOLERANCE), target_on="value")


def _decode(path: Any) -> Any:
    from tweetmaker.data import decode_image

    return decode_image(str(path))
