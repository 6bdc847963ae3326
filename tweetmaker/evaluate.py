"""Evaluate one or more sets of towers on a data set split and print one markdown table, one column per model.

    python -m tweetmaker.evaluate --dataset SRC --towers A [--towers B ...] [--split test] [--json OUT]

Each ``--towers`` is a local directory, a Hub model id (``OWNER/NAME@REVISION`` pins a revision) or the word
``base``: towers built from the base CLIP that the first trained towers were fine-tuned from (zero-shot). Rows of the
table: recall@{1,5,10,50,100} and MRR for text->image, hashtag->image and image->hashtag on exact pairs (the metric
code training reports with, so recall@10 matches ``all_results.json``), precision@k by topic when the data set has
attribute columns, and the app-level figures (``app ...``: what the tabs return, hashtag aggregation and re-ranking
included), computed on an index of the whole data set built once per towers under ``--index_dir``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tweetmaker.errors import TweetMakerError

BASE = "base"


def load_model(spec: str, *, reference: Any = None, device: str | None = None) -> Any:
    """Towers for one ``--towers`` value; ``base`` needs the ``reference`` towers whose base it means."""
    from tweetmaker.sources import is_local_source
    from tweetmaker.towers import build_towers_from_base, load_towers

    if spec == BASE:
        base = (reference.identity.get("base_model") or {}) if reference is not None else {}
        if not base.get("source"):
            raise TweetMakerError(
                "'base' means the base CLIP that trained towers started from: give trained towers first "
                "(e.g. --towers DIR --towers base); these towers do not record their base model."
            )
        return build_towers_from_base(base["source"], revision=base.get("revision"), device=device)
    source, revision = spec, None
    if not is_local_source(spec) and "@" in spec:
        source, revision = spec.rsplit("@", 1)
    return load_towers(source, revision=revision, device=device)


def model_index(towers: Any, dataset: str, index_root: Path, progress: Any) -> Any:
    """The index of ``dataset`` built by ``towers``: reused when already built, built once otherwise."""
    from tweetmaker.config import AppSettings
    from tweetmaker.index import towers_key
    from tweetmaker.resources import ensure_index

    # Keyed by towers AND data set: an index only checks its towers when opened, so one keyed by towers alone would
    # silently serve another data set's tweets to a run over a different --dataset.
    where = str(Path(dataset).expanduser().resolve()) if Path(dataset).expanduser().exists() else dataset
    key = hashlib.sha256(f"{towers_key(towers.identity)}|{where}".encode()).hexdigest()[:16]
    settings = AppSettings(dataset=dataset, index_dir=str(index_root / key))
    return ensure_index(settings, towers, settings.index_path, dataset, progress)


def evaluate_models(dataset: str, specs: list[str], *, split: str = "test", index_root: Path | None = None,
                    app_queries: int | None = 200, progress: bool = True) -> dict[str, Any]:
    """Every model's report: ``{"exact_pairs": {direction: {metric: value}}, "app": {...}, "towers": identity}``."""
    from tweetmaker.data import load_tweets
    from tweetmaker.evaluation import app_metrics, exact_pair_metrics

    loaded = load_tweets(dataset)
    if split not in loaded:
        raise TweetMakerError(f"Data set {dataset!r} has no split {split!r}; it has {sorted(loaded)}.")
    rows = loaded[split]
    reports: dict[str, Any] = {}
    reference = None
    for spec in specs:
        towers = load_model(spec, reference=reference)
        if spec != BASE and reference is None:
            reference = towers
        label = _unique_label(spec, reports)
        report: dict[str, Any] = {"towers": towers.identity,
                                  "exact_pairs": exact_pair_metrics(towers, rows, progress=progress)}
        if index_root is not None:
            index = model_index(towers, dataset, index_root, _say if progress else _quiet)
            try:
                report["app"] = app_metrics(towers, index, rows, limit=app_queries)
            finally:
                index.close()
        reports[label] = report
    return {"dataset": dataset, "split": split, "models": reports}


def _unique_label(spec: str, taken: dict[str, Any]) -> str:
    label = Path(spec).name if Path(spec).exists() else spec
    while label in taken:
        label += "'"
    return label


def _say(message: str) -> None:
    print(f"[tweetmaker] {message}", file=sys.stderr, flush=True)


def _quiet(message: str) -> None:
    logging.getLogger(__name__).info(message)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tweetmaker.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="Hub dataset id or local data set directory")
    parser.add_argument("--towers", action="append", required=True,
                        help="towers directory, Hub id (OWNER/NAME@REVISION) or 'base'; repeat to compare")
    parser.add_argument("--split", default="test", help="split whose tweets are the queries (default: test)")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    parser.add_argument("--index_dir", default=".tweetmaker_cache/eval",
                        help="where each model's index is built once and reused (app-level figures)")
    parser.add_argument("--app_queries", type=int, default=200, help="queries for the app-level figures")
    parser.add_argument("--no_app", action="store_true", help="skip the app-level figures (no index needed)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tweetmaker.evaluation import report_table

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        result = evaluate_models(
            args.dataset, args.towers, split=args.split,
            index_root=None if args.no_app else Path(args.index_dir).expanduser(),
            app_queries=args.app_queries, progress=not args.no_progress,
        )
    except TweetMakerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report_table(result["models"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
