"""How each backend compares with fp32 torch: top-k agreement, quality figures, and batch-of-one latency.

Issue 13's bar for a backend, on the twin with trained towers: the top-10 results agree with fp32's on >= 95% of
positions, and every quality figure (``tweetmaker.search.evaluate_search`` and ``tweetmaker.metrics`` recall@10)
stays within 0.01 of fp32's. Both ways a backend meets an index are checked: an index rebuilt by the backend, and
an index built by fp32 torch queried by the backend (the towers' identity, hence the index's, is the same)::

    python -m tweetmaker.inference.compare agreement --towers DIR --dataset DIR [--backends onnx onnx-int8]
    python -m tweetmaker.inference.compare latency --towers DIR [--rounds 15 --repeats 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tweetmaker.inference.choice import BACKENDS
from tweetmaker.towers import Towers

AGREEMENT_K = 10
AGREEMENT_BAR = 0.95
QUALITY_TOLERANCE = 0.01
# Query modality -> document modality, and what identifies a document: a tweet's image, or the hashtag string the
# hashtag tower embedded (tweets that share the same tags are one and the same result to a person).
DIRECTIONS = {"text_to_image": ("text", "image", "tweet_id"), "image_to_hashtag": ("image", "hashtag", "hashtags")}


def ranked(queries: np.ndarray, documents: np.ndarray, keys: Sequence[Any], k: int) -> np.ndarray:
    """Keys of the ``k`` best documents per query by cosine, best first; equal scores keep document order."""
    scores = np.asarray(queries, dtype=np.float32) @ np.asarray(documents, dtype=np.float32).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.asarray(keys, dtype=object)[order]


def top_k_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Share of ranked positions (query, rank) at which two rankings hold the same document."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.shape != candidate.shape:
        raise ValueError(f"Rankings differ in shape: {reference.shape} vs {candidate.shape}")
    return float((reference == candidate).mean())


def embed_rows(towers: Towers, rows: Any) -> dict[str, Any]:
    """Image, text and hashtag embeddings of a data set split (blank texts / tags left out, as the index does),
    with the keys of ``DIRECTIONS`` for each modality's rows."""
    texts = [i for i, text in enumerate(rows["text"]) if (text or "").strip()]
    tags = [i for i, raw in enumerate(rows["hashtags"]) if (raw or "").strip()]
    return {
        "image": towers.encode_images(rows["image"]),
        "text": towers.encode_texts([rows["text"][i] for i in texts]),
        "hashtag": towers.encode_hashtags([rows["hashtags"][i] for i in tags]),
        "rows": {"image": list(range(len(rows))), "text": texts, "hashtag": tags},
        "keys": {"tweet_id": [str(value) for value in rows["tweet_id"]], "hashtags": list(rows["hashtags"])},
    }


def _stack(parts: Sequence[dict[str, Any]], modality: str, key: str) -> tuple[np.ndarray, list[Any]]:
    vectors = np.concatenate([part[modality] for part in parts])
    keys = [part["keys"][key][row] for part in parts for row in part["rows"][modality]]
    return vectors, keys


def agreement(reference: Towers, candidate: Towers, dataset: Any, k: int = AGREEMENT_K,
              query_split: str = "test") -> dict[str, float]:
    """Top-``k`` agreement of ``candidate`` with ``reference`` (fp32), exact search over every split (as the app
    indexes) with the ``query_split`` tweets as queries; ``*_fp32_index`` queries documents embedded by the
    reference (an index built by fp32 torch), the others documents embedded by the candidate (a rebuilt index)."""
    splits = list(dataset.keys())
    embedded = {name: {split: embed_rows(towers, dataset[split]) for split in splits}
                for name, towers in (("reference", reference), ("candidate", candidate))}
    out = {}
    for direction, (query, document, key) in DIRECTIONS.items():
        questions = {name: embedded[name][query_split][query] for name in embedded}
        documents = {name: _stack([embedded[name][split] for split in splits], document, key) for name in embedded}
        keys = documents["reference"][1]
        expected = ranked(questions["reference"], documents["reference"][0], keys, k)
        rebuilt = ranked(questions["candidate"], documents["candidate"][0], keys, k)
        mixed = ranked(questions["candidate"], documents["reference"][0], keys, k)
        out[f"{direction}_agreement@{k}"] = top_k_agreement(expected, rebuilt)
        out[f"{direction}_agreement_fp32_index@{k}"] = top_k_agreement(expected, mixed)
    return out


def tower_quality(towers: Towers, rows: Any, label: str = "attr_topic") -> dict[str, float]:
    """``tweetmaker.metrics`` on one split: recall@10 (exact pairs) and precision@10 (``label``) per direction."""
    from tweetmaker.metrics import tower_metrics

    embedded = embed_rows(towers, rows)
    if len(embedded["text"]) != len(rows) or len(embedded["hashtag"]) != len(rows):
        raise ValueError("tower_quality needs a split in which every tweet has text and hashtags")
    labels = list(rows[label]) if label in rows.column_names else None
    metrics = tower_metrics({name: embedded[name] for name in ("image", "text", "hashtag")}, labels, k_values=[10])
    return {f"{direction}_{name}": value for direction, values in metrics.items() for name, value in values.items()
            if name.endswith("@10")}


def search_quality(towers: Towers, index_dir: str | Path, dataset: Any, limit: int | None = None,
                   query_split: str = "test") -> dict[str, float]:
    """``tweetmaker.search.evaluate_search`` of ``towers`` over the index at ``index_dir``, built by these towers
    from every split of ``dataset`` unless it is complete already (every backend has the same towers identity, so
    an index built by fp32 torch counts as up to date for all of them)."""
    from tweetmaker.index import build_index, open_index
    from tweetmaker.search import Recommender, evaluate_search

    build_index(dataset, towers, index_dir, progress=False)
    index = open_index(index_dir, towers=towers)
    try:
        return evaluate_search(Recommender(towers, index), dataset[query_split], limit=limit)
    finally:
        index.close()


def quality_deltas(reference: dict[str, float], candidate: dict[str, float]) -> dict[str, float]:
    """``candidate - reference`` for every figure the two share."""
    return {name: candidate[name] - reference[name] for name in reference if name in candidate}


def compare(towers_dir: str | Path, dataset: Any, backends: Sequence[str], workdir: str | Path,
            limit: int | None = None) -> dict[str, Any]:
    """Agreement and quality of each backend against fp32 torch on trained towers; see the module's docstring."""
    from tweetmaker.towers import load_towers

    workdir = Path(workdir)
    reference = load_towers(towers_dir, device="cpu", backend="torch")
    fp32_index = workdir / "index-torch"
    baseline = {**tower_quality(reference, dataset["test"]), **search_quality(reference, fp32_index, dataset, limit)}
    report: dict[str, Any] = {"torch": {"quality": baseline}}
    for backend in backends:
        if backend == "torch":
            continue
        towers = load_towers(towers_dir, device="cpu", backend=backend)
        own = search_quality(towers, workdir / f"index-{backend}", dataset, limit)
        on_fp32 = {f"{name}_fp32_index": value for name, value in search_quality(towers, fp32_index, dataset,
                                                                                  limit).items()}
        quality = {**tower_quality(towers, dataset["test"]), **own, **on_fp32}
        reference_quality = {**baseline, **{f"{name}_fp32_index": value for name, value in baseline.items()}}
        deltas = quality_deltas(reference_quality, quality)
        agreements = agreement(reference, towers, dataset)
        report[backend] = {
            "agreement": agreements,
            "quality": quality,
            "deltas": deltas,
            "acceptable": min(agreements.values()) >= AGREEMENT_BAR
            and max(abs(value) for value in deltas.values()) <= QUALITY_TOLERANCE + 1e-9,  # 3/300 is 0.01
        }
    return report


# -- latency ----------------------------------------------------------------------------------------------------------
def sample_inputs(seed: int = 0) -> tuple[str, Any]:
    """A tweet-length text and a photo-sized image for batch-of-one timings."""
    from PIL import Image

    text = "Three red robots on a striped background: what our new vision model sees in the lab today #AI #ml"
    pixels = np.random.default_rng(seed).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    return text, Image.fromarray(pixels)


def interleaved_latency(towers: dict[str, Towers], rounds: int = 15, repeats: int = 10,
                        warmup: int = 3) -> dict[str, dict[str, float]]:
    """Batch-of-one ``encode_texts`` / ``encode_images`` latency of each backend, interleaved.

    Each round times every backend once (``repeats`` calls each), in an order that rotates between rounds, so load
    from other processes falls on all of them alike. Reports median ms, and the median over rounds of each round's
    ratio to the first backend (the reference).
    """
    text, image = sample_inputs()
    calls = {"text": lambda t: t.encode_texts([text]), "image": lambda t: t.encode_images([image])}
    names = list(towers)
    for name in names:
        for call in calls.values():
            for _ in range(warmup):
                call(towers[name])
    samples: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in calls} for name in names}
    for number in range(rounds):
        order = names[number % len(names):] + names[:number % len(names)]
        for name in order:
            for kind, call in calls.items():
                started = time.perf_counter()
                for _ in range(repeats):
                    call(towers[name])
                samples[name][kind].append((time.perf_counter() - started) * 1000 / repeats)
    reference = names[0]
    out = {}
    for name in names:
        out[name] = {}
        for kind in calls:
            ratios = np.asarray(samples[name][kind]) / np.asarray(samples[reference][kind])
            out[name][f"{kind}_ms"] = float(np.median(samples[name][kind]))
            out[name][f"{kind}_ratio"] = float(np.median(ratios))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tweetmaker.inference.compare", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    agree = commands.add_parser("agreement", help="agreement and quality of each backend vs fp32 torch")
    agree.add_argument("--dataset", required=True, help="a converted data set (save_to_disk) with a test split")
    agree.add_argument("--limit", type=int, default=None, help="query tweets for evaluate_search (default: all)")
    agree.add_argument("--workdir", default=None, help="where the indexes go (default: a temporary directory)")
    speed = commands.add_parser("latency", help="interleaved batch-of-one latency per backend")
    speed.add_argument("--rounds", type=int, default=15)
    speed.add_argument("--repeats", type=int, default=10)
    speed.add_argument("--threads", type=int, default=None, help="threads for every backend (default: all cores)")
    for command in (agree, speed):
        command.add_argument("--towers", required=True, help="directory of saved towers")
        command.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    args = parser.parse_args(argv)
    if args.command == "latency":
        import os

        import torch

        from tweetmaker.inference.choice import THREADS_ENV, available_cores
        from tweetmaker.towers import load_towers

        if args.threads:
            os.environ[THREADS_ENV] = str(args.threads)
        torch.set_num_threads(available_cores())  # the same threads for torch as ONNX Runtime gets

        towers = {name: load_towers(args.towers, device="cpu", backend=name) for name in args.backends}
        report = interleaved_latency(towers, rounds=args.rounds, repeats=args.repeats)
    else:
        from tweetmaker.data import load_tweets

        dataset = load_tweets(args.dataset)
        with tempfile.TemporaryDirectory() as scratch:
            report = compare(args.towers, dataset, args.backends, args.workdir or scratch, limit=args.limit)
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
