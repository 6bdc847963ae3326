"""Model checks: how well a set of towers retrieves, how two models' answers differ, and where a model fails.

Three questions the team asks of a new fine-tune, each answered from one implementation:

- **How good is it?** ``exact_pair_metrics`` embeds a split with the towers and scores it with
  ``tweetmaker.metrics.tower_metrics``, the very function training reports before/after with, so the numbers match
  ``all_results.json`` for the same towers and split. ``app_metrics`` adds what the app's tabs actually return
  (``tweetmaker.search.evaluate_search``: hashtag aggregation and re-ranking included).
- **What changed?** ``compare_results`` says how much two ranked lists agree (overlap@k) and where each result sits in
  the other list, so "what moved" is visible at a glance.
- **Where does it fail?** ``hard_cases`` lists the tweets whose own image the model ranks worst, from the embeddings
  already stored in the index (no tower forward), cached beside the index so a page view costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tweetmaker.atomic import write_text_atomically
from tweetmaker.metrics import K_VALUES, tower_metrics

if TYPE_CHECKING:
    import datasets

    from tweetmaker.index import TweetIndex
    from tweetmaker.towers import Towers

logger = logging.getLogger(__name__)

DEFAULT_RELEVANCE = "attr_topic"
# Hard cases are ranked from a query x corpus similarity matrix: this many queries keep it to seconds on a CPU
# (2,000 x 100,000 float32 scores are scored in chunks) and are more than a person reads anyway.
HARD_CASES_MAX_QUERIES = 2000
HARD_CASES_SHOWN = 20
HARD_CASES_VERSION = 1


# --------------------------------------------------------------------------------------------- exact pairs


def embed_split(towers: Towers, rows: datasets.Dataset, *, batch_size: int = 64, progress: bool = True
                ) -> dict[str, np.ndarray]:
    """Row-aligned image, text and hashtag embeddings of a split (row i of each is tweet i)."""
    from tqdm.auto import tqdm

    from tweetmaker.data import decode_image, row_image_source

    embeddings: dict[str, list[np.ndarray]] = {"image": [], "text": [], "hashtag": []}
    with tqdm(total=len(rows), desc="embedding", unit="tweet", disable=not progress) as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            images = [decode_image(row_image_source(cell)) for cell in batch["image"]]
            embeddings["image"].append(towers.encode_images(images, batch_size=batch_size))
            embeddings["text"].append(towers.encode_texts([text or "" for text in batch["text"]], batch_size))
            embeddings["hashtag"].append(towers.encode_hashtags([tags or "" for tags in batch["hashtags"]],
                                                                batch_size))
            bar.update(len(images))
    return {name: np.concatenate(parts) for name, parts in embeddings.items()}


def exact_pair_metrics(towers: Towers, rows: datasets.Dataset, *, relevance: str = DEFAULT_RELEVANCE,
                       progress: bool = True) -> dict[str, dict[str, float]]:
    """recall@k, MRR and ranks on exact pairs for text->image, hashtag->image and image->hashtag, plus
    precision@k by ``relevance`` (e.g. topic) when the split has that column: training's own evaluation."""
    labels = list(rows[relevance]) if relevance in rows.column_names else None
    rows = rows.cast_column("image", _undecoded_image())
    return tower_metrics(embed_split(towers, rows, progress=progress), labels=labels, k_values=K_VALUES)


def _undecoded_image() -> Any:
    import datasets

    return datasets.Image(decode=False)


def app_metrics(towers: Towers, index: TweetIndex, rows: datasets.Dataset, *, limit: int | None = 200,
                relevance: str = DEFAULT_RELEVANCE) -> dict[str, float]:
    """What the app's tabs return for the split's tweets as queries (needs the ``relevance`` column)."""
    from tweetmaker.search import Recommender, evaluate_search

    if relevance not in rows.column_names:
        return {}
    return evaluate_search(Recommender(towers, index), rows, relevance=relevance, limit=limit)


# --------------------------------------------------------------------------------------------- comparing answers


@dataclass
class Agreement:
    """How two ranked lists of tweet ids agree: overlap@k and each item's rank (1-based) in the other list."""

    overlap: float
    ranks_in_other: list[int | None]
    other_ranks_in_this: list[int | None]


def compare_results(these: Sequence[str], those: Sequence[str]) -> Agreement:
    """Agreement of two top-k lists of ids (k = the longer list; an empty pair agrees fully)."""
    k = max(len(these), len(those))
    position_here = {tweet_id: rank for rank, tweet_id in enumerate(these, start=1)}
    position_there = {tweet_id: rank for rank, tweet_id in enumerate(those, start=1)}
    shared = len(set(these) & set(those))
    return Agreement(
        overlap=1.0 if k == 0 else shared / k,
        ranks_in_other=[position_there.get(tweet_id) for tweet_id in these],
        other_ranks_in_this=[position_here.get(tweet_id) for tweet_id in those],
    )


# --------------------------------------------------------------------------------------------- hard cases


@dataclass
class HardCase:
    """A query tweet whose own image the model ranks low, and what it put first instead."""

    tweet_id: str
    text: str
    rank: int
    image: str
    first_id: str
    first_text: str
    first_image: str


def hard_cases(index: TweetIndex, *, split: str = "test", shown: int = HARD_CASES_SHOWN,
               max_queries: int = HARD_CASES_MAX_QUERIES) -> list[HardCase]:
    """The ``shown`` tweets of ``split`` whose own image ranks worst for their text, from the stored embeddings.

    Ranks count among every image in the index (what the text->image tab searches); ties count in the tweet's
    favour. Only ``max_queries`` tweets of the split are looked at, so this stays a matter of seconds.
    """
    texts = _split_records(index, "text", split, max_queries)
    if not texts:
        return []
    image_ids, image_matrix = index.all_embeddings("image")
    if not image_ids:
        return []
    row_of = {tweet_id: row for row, tweet_id in enumerate(image_ids)}
    queries = [(tweet_id, record) for tweet_id, record in texts if tweet_id in row_of]
    if not queries:
        return []
    query_matrix = np.stack([record.embedding for _, record in queries]).astype(np.float32)
    scores = query_matrix @ image_matrix.T
    own = scores[np.arange(len(queries)), [row_of[tweet_id] for tweet_id, _ in queries]]
    ranks = 1 + (scores > own[:, None]).sum(axis=1)
    firsts = scores.argmax(axis=1)
    worst = np.argsort(-ranks, kind="stable")[:shown]
    first_records = index.get("image", [image_ids[firsts[row]] for row in worst], with_embeddings=False)
    cases = []
    for row in worst:
        tweet_id, record = queries[row]
        first_id = image_ids[firsts[row]]
        first = first_records.get(first_id)
        cases.append(HardCase(
            tweet_id=tweet_id, text=str(record.metadata.get("text", "")), rank=int(ranks[row]),
            image=str(record.metadata.get("image", "")), first_id=first_id,
            first_text=str(first.metadata.get("text", "")) if first else "",
            first_image=str(first.metadata.get("image", "")) if first else "",
        ))
    return cases


def _split_records(index: TweetIndex, modality: str, split: str, limit: int) -> list[tuple[str, Any]]:
    """Up to ``limit`` records of one split of a collection, with their embeddings (one filtered read)."""
    from tweetmaker.index import Hit

    page = index.collections[modality].get(where={"split": split}, limit=limit,
                                           include=["embeddings", "metadatas"])
    return [(tweet_id, Hit(tweet_id, float("nan"), dict(metadata or {}), np.asarray(embedding, np.float32)))
            for tweet_id, embedding, metadata in zip(page["ids"], page["embeddings"], page["metadatas"])]


def cached_hard_cases(index: TweetIndex, cache_dir: str | Path, *, split: str = "test") -> list[HardCase]:
    """``hard_cases`` computed once per index build and kept as JSON in ``cache_dir`` (keyed by the manifest)."""
    key = hashlib.sha256(f"{HARD_CASES_VERSION}:{split}:{index.manifest.to_json()}".encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"hard_cases-{key}.json"
    if path.is_file():
        try:
            return [HardCase(**case) for case in json.loads(path.read_text(encoding="utf-8"))]
        except (OSError, ValueError, TypeError):
            logger.warning("hard cases cache %s unreadable; computing it again", path)
    cases = hard_cases(index, split=split)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, json.dumps([asdict(case) for case in cases], indent=1))
    except OSError as error:  # a read-only cache only costs the recomputation next time
        logger.warning("could not cache hard cases in %s: %s", path, error)
    return cases


# --------------------------------------------------------------------------------------------- the report


# precision@k by topic is shown where k is below a topic's size: beyond it, the figure measures class sizes.
REPORTED_PRECISION_K = (1, 5, 10)


def report_table(reports: dict[str, dict[str, Any]]) -> str:
    """One markdown table, one column per model, one row per figure; the best value of a row is in bold."""
    names = list(reports)
    flats = {name: _flat(report) for name, report in reports.items()}
    rows: list[str] = []
    for flat in flats.values():
        rows += [row for row in flat if row not in rows]
    lines = ["| figure | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for row in rows:
        values = [flats[name].get(row) for name in names]
        present = [value for value in values if value is not None]
        # Bold marks a winner: only where two or more models have the figure and one is strictly ahead.
        best = max(present) if len(present) > 1 and present.count(max(present)) == 1 else None
        cells = ["" if value is None else (f"**{value:.4f}**" if value == best else f"{value:.4f}")
                 for value in values]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _flat(report: dict[str, Any]) -> dict[str, float]:
    """``direction metric`` -> value for the table: recall@k, MRR and the meaningful precision@k."""
    shown_precision = {f"precision@{k}" for k in REPORTED_PRECISION_K}
    flat: dict[str, float] = {}
    for direction, values in report.get("exact_pairs", {}).items():
        for name, value in values.items():
            if name.startswith("recall@") or name == "mrr" or name in shown_precision:
                flat[f"{direction} {name}"] = float(value)
    for name, value in report.get("app", {}).items():
        flat[f"app {name}"] = float(value)
    return flat
