"""Re-ranking: similarity blended with engagement and recency bonuses, optionally diversified with MMR.

Every result carries its score breakdown, whose parts add up to its score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tweetmaker.search.query import QueryError, check_weight
from tweetmaker.search.results import TweetResult

if TYPE_CHECKING:
    from tweetmaker.index import Hit, TweetIndex

# Candidates fetched per requested result when re-ranking: enough for engagement, recency or MMR to
# reorder, few enough that a query stays one small Chroma call.
RERANK_POOL_FACTOR = 4
RERANK_POOL_MIN = 20
# Half-life of the recency bonus, in days, measured back from the newest candidate.
RECENCY_HALF_LIFE_DAYS = 90.0


@dataclass
class Ranking:
    """Re-ranking weights, each in [0, 1]; all zero ranks by similarity alone.

    Bonuses are measured in units of the candidates' similarity range: a weight of 0.5 lets engagement (or
    recency) lift the least similar candidate level with the most similar one, and 1 lets it dominate similarity.
    ``diversity`` is the MMR trade-off (0: none, 1: redundancy weighs as much as similarity).
    """

    engagement: float = 0.0
    recency: float = 0.0
    diversity: float = 0.0
    recency_half_life_days: float = RECENCY_HALF_LIFE_DAYS

    def __post_init__(self) -> None:
        for name in ("engagement", "recency", "diversity"):
            setattr(self, name, check_weight(name, getattr(self, name)))
        if not self.recency_half_life_days > 0:
            raise QueryError("The recency half-life must be a positive number of days.")

    @property
    def active(self) -> bool:
        return bool(self.engagement or self.recency or self.diversity)


def engagement_value(metadata: dict[str, Any]) -> float:
    """log(1 + likes + 2*retweets + replies): retweets spread a tweet furthest; the log tames viral outliers."""
    total = sum(max(0.0, float(metadata.get(name) or 0)) * weight
                for name, weight in (("likes", 1.0), ("retweets", 2.0), ("replies", 1.0)))
    return math.log1p(total)


def rerank(hits: Sequence[Hit], k: int, ranking: Ranking | None, index: TweetIndex | None = None) -> list[TweetResult]:
    """Order candidate hits by similarity plus engagement and recency bonuses, optionally diversified by MMR.

    The bonuses are scaled to twice the candidates' similarity spread, so a weight means the same whatever the
    towers' similarity range (see ``Ranking``). MMR picks greedily: each next result maximises its relevance
    minus ``diversity`` times its highest cosine similarity to the results already picked (needs embeddings).
    """
    ranking = ranking or Ranking()
    if not hits or k <= 0:
        return []
    similarity = np.array([hit.similarity for hit in hits], dtype=np.float64)
    spread = float(similarity.max() - similarity.min()) if len(hits) > 1 else 0.0
    # Twice the spread: at weight 1 a bonus outweighs any similarity difference among the candidates.
    spread = 2.0 * spread if spread > 1e-9 else 1.0
    engagement = np.array([engagement_value(hit.metadata) for hit in hits])
    engagement = engagement / engagement.max() if engagement.max() > 0 else np.zeros_like(engagement)
    dates = [hit.metadata.get("date") for hit in hits]
    newest = max((d for d in dates if isinstance(d, (int, float))), default=None)
    recency = np.array([
        0.5 ** ((newest - d) / 86400.0 / ranking.recency_half_life_days)
        if newest is not None and isinstance(d, (int, float)) else 0.0
        for d in dates
    ])
    engagement_part = ranking.engagement * spread * engagement
    recency_part = ranking.recency * spread * recency
    relevance = similarity + engagement_part + recency_part

    chosen: list[int] = []
    penalties: dict[int, float] = {}
    if ranking.diversity and all(hit.embedding is not None for hit in hits):
        vectors = np.stack([hit.embedding for hit in hits]).astype(np.float64)
        redundancy = np.full(len(hits), -np.inf)
        remaining = set(range(len(hits)))
        while remaining and len(chosen) < k:
            penalty = {i: (ranking.diversity * max(redundancy[i], 0.0) if chosen else 0.0) for i in remaining}
            best = max(remaining, key=lambda i: (relevance[i] - penalty[i], -i))
            chosen.append(best)
            penalties[best] = penalty[best]
            remaining.discard(best)
            redundancy = np.maximum(redundancy, vectors @ vectors[best])
    else:
        chosen = sorted(range(len(hits)), key=lambda i: (-relevance[i], i))[:k]
    results = []
    for i in chosen:
        breakdown = {
            "similarity": float(similarity[i]),
            "engagement": float(engagement_part[i]),
            "recency": float(recency_part[i]),
            "diversity": -float(penalties.get(i, 0.0)),
        }
        score = float(sum(breakdown.values()))
        breakdown["score"] = score
        hit = hits[i]
        results.append(TweetResult(
            id=hit.id, score=score, similarity=float(similarity[i]), metadata=hit.metadata, breakdown=breakdown,
            image_path=index.image_path(hit.metadata) if index is not None else None,
        ))
    return results
