"""How good the app's answers are: ``evaluate_search`` asks the ``Recommender`` what the tabs ask it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tweetmaker.data import normalize_hashtag

if TYPE_CHECKING:
    from tweetmaker.search.recommender import Recommender
    from tweetmaker.search.results import TweetResult


def evaluate_search(recommender: Recommender, queries: Any, *, k: int = 10, hashtag_k: int = 5,
                    relevance: str = "attr_topic", limit: int | None = None) -> dict[str, float]:
    """Quality of the app's queries, with the tweets of ``queries`` (a data set split) as queries.

    ``*_precision@k``: share of the top-k results whose ``relevance`` attribute (``attr_topic`` on the synthetic
    twin) equals the query tweet's; ``image_to_hashtags_recall@hashtag_k``: share of a query tweet's own tags
    found among the top ``hashtag_k`` recommended for its image (case-insensitive).
    """
    rows = queries if limit is None else queries.select(range(min(limit, len(queries))))
    totals: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        totals.setdefault(name, []).append(value)

    def precision(results: Sequence[TweetResult], wanted: Any) -> float:
        return sum(r.metadata.get(relevance) == wanted for r in results) / k

    for row in rows:
        wanted = row.get(relevance)
        if row["text"].strip():
            add(f"text_to_image_precision@{k}", precision(recommender.text_to_images(row["text"], k=k), wanted))
            add(f"text_to_tweets_precision@{k}", precision(recommender.text_to_tweets(row["text"], k=k), wanted))
            combined = recommender.text_image_to_images(row["text"], row["image"], 0.5, k=k)
            add(f"text_image_to_images_precision@{k}", precision(combined, wanted))
        add(f"image_to_tweets_precision@{k}", precision(recommender.image_to_tweets(row["image"], k=k), wanted))
        own = {normalize_hashtag(tag) for tag in row["hashtag_list"]}
        if own:
            recommended = recommender.image_to_hashtags(row["image"], k=1, max_hashtags=hashtag_k).hashtags
            found = {normalize_hashtag(tag.tag) for tag in recommended[:hashtag_k]}
            add(f"image_to_hashtags_recall@{hashtag_k}", len(own & found) / len(own))
    return {name: float(np.mean(values)) for name, values in totals.items()}
