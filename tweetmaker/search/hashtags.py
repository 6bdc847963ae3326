"""Hashtag recommendation: individual hashtags voted by the query's nearest tweets (not a neighbour's whole string)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tweetmaker.data import normalize_hashtag, parse_hashtags
from tweetmaker.search.results import HashtagResult

if TYPE_CHECKING:
    from tweetmaker.index import Hit

# Hashtag aggregation, measured on the synthetic twin with fine-tuned towers (numbers in the docstring of
# ``aggregate_hashtags``): the query's 20 nearest tweets *of the query's own modality* vote, weighted by a softmax
# whose temperature is a quarter of their similarity range (scale-free: the towers' similarity range varies).
HASHTAG_NEIGHBOURS = 20
RELATIVE_TEMPERATURE = 0.25
MIN_TEMPERATURE = 1e-3
MIN_HASHTAG_SCORE = 0.05
MAX_HASHTAGS = 10
# Voting collections per query kind. The hashtag collection (query vs whole hashtag strings) was the weakest
# voter in every measurement (cross-modal and noisy), so it is available but off by default.
IMAGE_HASHTAG_SOURCES = {"image": 1.0}
TEXT_HASHTAG_SOURCES = {"text": 0.5, "image": 0.5}


def aggregate_hashtags(
    neighbours: dict[str, Sequence[Hit]],
    *,
    source_weights: dict[str, float] | None = None,
    relative_temperature: float = RELATIVE_TEMPERATURE,
    temperature: float | None = None,
    min_score: float = MIN_HASHTAG_SCORE,
    limit: int = MAX_HASHTAGS,
) -> list[HashtagResult]:
    """Rank individual hashtags by how strongly the query's nearest tweets carry them.

    Each source (a collection's neighbour list) gives its tweets softmax weights ``exp((s - s_max) / T)`` of their
    similarity ``s``, summing to 1; a tag's vote from a source is the weight of the tweets that carry it, so it
    lies in [0, 1]. The score averages the sources' votes by ``source_weights``. ``T`` is ``relative_temperature``
    times the source's similarity range (or ``temperature`` when given). Tags are compared case-insensitively
    (``#AI`` = ``#ai``) and shown in the spelling most neighbours use; tags below ``min_score`` are dropped.

    Measured on the twin (tiny towers fine-tuned by finetune.py, 150 test images, own-tag recall@5 with the
    image's tweet indexed / not indexed): image neighbours, relative T 0.25, 20 neighbours: 0.99 / 0.45; adding
    the hashtag collection at weight 0.2: 0.98 / 0.43 (at 0.5: 0.76 / 0.43); a fixed T of 0.05: 0.80 / 0.45.
    Without the tweet indexed, ~0.5 is the ceiling: the twin draws each tweet's tags at random from its topic's.
    """
    if temperature is not None and temperature <= 0:
        raise ValueError("temperature must be positive")
    sources = {name: hits for name, hits in neighbours.items() if hits}
    weights = {name: float((source_weights or {}).get(name, 1.0)) for name in sources}
    total_weight = sum(weights.values())
    if not sources or total_weight <= 0:
        return []
    votes: dict[str, dict[str, float]] = {}
    spellings: dict[str, dict[str, float]] = {}
    supporters: dict[str, set[str]] = {}
    first_seen: dict[str, int] = {}
    for name, hits in sources.items():
        similarity = np.array([hit.similarity for hit in hits], dtype=np.float64)
        # Scale-free by default: a fraction of this list's similarity range, so the weights are as sharp for
        # towers whose neighbours sit at 0.95 as for towers whose neighbours sit at 0.3.
        spread = float(similarity.max() - similarity.min())
        scale = temperature if temperature is not None else max(relative_temperature * spread, MIN_TEMPERATURE)
        share = np.exp((similarity - similarity.max()) / scale)
        share /= share.sum()
        for hit, weight in zip(hits, share):
            tags = hit.metadata.get("hashtag_list") or parse_hashtags(hit.metadata.get("hashtags"))
            for tag in dict.fromkeys(tags):
                key = normalize_hashtag(tag)
                if not key:
                    continue
                votes.setdefault(key, {}).setdefault(name, 0.0)
                votes[key][name] += float(weight)
                spellings.setdefault(key, {}).setdefault(tag.lstrip("#"), 0.0)
                spellings[key][tag.lstrip("#")] += 1.0
                supporters.setdefault(key, set()).add(hit.id)
                first_seen.setdefault(key, len(first_seen))
    results = []
    for key, by_source in votes.items():
        score = sum(weights[name] * by_source.get(name, 0.0) for name in sources) / total_weight
        if score < min_score:
            continue
        spelling = max(spellings[key].items(), key=lambda item: (item[1], -list(spellings[key]).index(item[0])))[0]
        breakdown = {name: float(by_source.get(name, 0.0)) for name in sources}
        results.append(HashtagResult(tag=spelling, score=float(score), support=len(supporters[key]),
                                     breakdown=breakdown))
    results.sort(key=lambda result: (-result.score, first_seen[normalize_hashtag(result.tag)]))
    return results[:limit]
