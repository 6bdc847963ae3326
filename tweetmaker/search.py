"""The recommendation queries behind the app: images, hashtags and similar tweets for a draft text and/or image.

Plain dataclasses out, never Gradio objects. A ``Recommender`` holds the towers and a read-only ``TweetIndex``:

- ``text_to_images`` (text tower -> image collection), ``combined`` / ``text_image_to_images`` (the write-up's
  combined query: normalised text and image embeddings mixed by a caller weight, renormalised);
- ``image_to_hashtags`` / ``text_to_hashtags``: individual hashtags aggregated from the nearest tweets and the
  nearest hashtag strings (``aggregate_hashtags``), not a neighbour's whole hashtag string;
- ``text_to_tweets`` / ``image_to_tweets``: tweets that say or show something similar.

Optional re-ranking (``Ranking``) blends similarity with engagement and recency and can diversify with MMR;
every result carries its score breakdown, whose parts add up to its score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tweetmaker.data import normalize_hashtag, parse_hashtags
from tweetmaker.errors import InvalidInputError

if TYPE_CHECKING:
    from PIL import Image

    from tweetmaker.index import Hit, TweetIndex
    from tweetmaker.towers import Towers

# Candidates fetched per requested result when re-ranking: enough for engagement, recency or MMR to
# reorder, few enough that a query stays one small Chroma call.
RERANK_POOL_FACTOR = 4
RERANK_POOL_MIN = 20
# Half-life of the recency bonus, in days, measured back from the newest candidate.
RECENCY_HALF_LIFE_DAYS = 90.0
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


class QueryError(InvalidInputError):
    """A query that cannot be answered (empty text, unreadable image, bad weight); the message is for the user."""


@dataclass
class TweetResult:
    """One recommended tweet (its image, text and hashtags) with why it ranked where it did.

    ``breakdown`` holds the parts of ``score``: ``similarity`` (cosine to the query), ``engagement`` and
    ``recency`` (re-ranking bonuses) and ``diversity`` (the MMR redundancy penalty, <= 0); they add up to ``score``.
    """

    id: str
    score: float
    similarity: float
    metadata: dict[str, Any]
    breakdown: dict[str, float] = field(default_factory=dict)
    image_path: Path | None = None

    @property
    def text(self) -> str:
        return str(self.metadata.get("text") or "")

    @property
    def hashtags(self) -> list[str]:
        return list(self.metadata.get("hashtag_list") or parse_hashtags(self.metadata.get("hashtags")))


@dataclass
class HashtagResult:
    """One recommended hashtag (``tag`` without ``#``, in its most common spelling).

    ``score`` in [0, 1] is the similarity-weighted share of the nearest tweets that carry the tag, averaged over
    the voting collections (``breakdown`` per collection); ``support`` counts the neighbour tweets carrying it.
    """

    tag: str
    score: float
    support: int
    breakdown: dict[str, float] = field(default_factory=dict)


@dataclass
class Recommendation:
    """What a query returns when it recommends both: tweets (images) and hashtags."""

    tweets: list[TweetResult]
    hashtags: list[HashtagResult]


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
            value = getattr(self, name)
            if value is None or not isinstance(value, (int, float)) or math.isnan(value) or not 0 <= value <= 1:
                raise QueryError(f"The {name} weight must be a number between 0 and 1, not {value!r}.")
            setattr(self, name, float(value))
        if not self.recency_half_life_days > 0:
            raise QueryError("The recency half-life must be a positive number of days.")

    @property
    def active(self) -> bool:
        return bool(self.engagement or self.recency or self.diversity)


def normalize(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm < 1e-8:
        raise QueryError("This query has no direction to search in (its text and image cancel out); change either.")
    return vector / norm


def mix(text_embedding: np.ndarray | None, image_embedding: np.ndarray | None, text_weight: float) -> np.ndarray:
    """The combined query: ``normalize(w * t + (1 - w) * i)`` of normalised embeddings; one of them alone if the
    other is missing."""
    if text_embedding is None and image_embedding is None:
        raise QueryError("Give a draft text, an image, or both.")
    if text_embedding is None:
        return normalize(image_embedding)
    if image_embedding is None:
        return normalize(text_embedding)
    return normalize(text_weight * normalize(text_embedding) + (1.0 - text_weight) * normalize(image_embedding))


# ------------------------------------------------------------------------------------------------ re-ranking


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


# ------------------------------------------------------------------------------------------------ hashtags


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


# ------------------------------------------------------------------------------------------------ recommender


class Recommender:
    """Answers the app's queries from the towers and a read-only index built by those same towers."""

    def __init__(self, towers: Towers, index: TweetIndex, *, check: bool = True) -> None:
        if check:
            index.check_towers(towers)  # wrong towers would return confidently wrong neighbours
        self.towers = towers
        self.index = index

    # -- query embeddings ------------------------------------------------------------------------------------------
    def embed_text(self, text: str | None) -> np.ndarray:
        if text is None or not isinstance(text, str) or not text.strip():
            raise QueryError("Type a draft tweet first: a few words about what your tweet is about.")
        return normalize(self.towers.encode_texts([text.strip()])[0])

    def embed_image(self, image: Image.Image | bytes | str | Path) -> np.ndarray:
        from tweetmaker.data import ImageDecodeError, decode_image

        if image is None:
            raise QueryError("Upload an image first (JPEG, PNG, GIF or WebP).")
        try:
            picture = decode_image(image)
        except ImageDecodeError as error:
            raise QueryError(str(error)) from None
        return normalize(self.towers.encode_images([picture])[0])

    def query_vector(self, text: str | None = None, image: Any = None, text_weight: float = 0.5) -> np.ndarray:
        """The query embedding of a text, an image, or both mixed (``text_weight`` 1 = text only, 0 = image only)."""
        try:
            text_weight = float(text_weight)
        except (TypeError, ValueError):
            raise QueryError("The text/image balance must be a number between 0 and 1.") from None
        if not 0.0 <= text_weight <= 1.0:
            raise QueryError("The text/image balance must be between 0 (all image) and 1 (all text).")
        has_text = isinstance(text, str) and bool(text.strip())
        if not has_text and image is None:
            raise QueryError("Give a draft text, an image, or both.")
        text_vector = self.embed_text(text) if has_text else None
        image_vector = self.embed_image(image) if image is not None else None
        return mix(text_vector, image_vector, text_weight)

    # -- primitives ------------------------------------------------------------------------------------------------
    def search(self, vector: np.ndarray, modality: str, k: int, ranking: Ranking | None = None) -> list[TweetResult]:
        """The ``k`` best tweets of one collection for a query embedding, re-ranked when ``ranking`` asks for it."""
        k = _check_k(k)
        ranking = ranking or Ranking()
        pool = max(k * RERANK_POOL_FACTOR, k + RERANK_POOL_MIN) if ranking.active else k
        hits = self.index.query(modality, vector, pool, with_embeddings=bool(ranking.diversity))[0]
        return rerank(hits, k, ranking, self.index)

    def hashtags_for(self, vector: np.ndarray, sources: dict[str, float], *, neighbours: int = HASHTAG_NEIGHBOURS,
                     min_score: float = MIN_HASHTAG_SCORE, limit: int = MAX_HASHTAGS) -> list[HashtagResult]:
        """Individual hashtags for a query embedding, voted by its nearest tweets in each source collection."""
        found = {name: self.index.query(name, vector, neighbours)[0] for name, weight in sources.items() if weight}
        return aggregate_hashtags(found, source_weights=sources, min_score=min_score, limit=limit)

    # -- the app's queries -----------------------------------------------------------------------------------------
    def text_to_images(self, text: str, k: int = 8, **ranking: Any) -> list[TweetResult]:
        """Images (with their tweets) that fit a draft text."""
        return self.search(self.embed_text(text), "image", k, Ranking(**ranking))

    def text_image_to_images(self, text: str | None, image: Any, text_weight: float = 0.5, k: int = 8,
                             **ranking: Any) -> list[TweetResult]:
        """Images for a text and an image together (the combined query)."""
        return self.search(self.query_vector(text, image, text_weight), "image", k, Ranking(**ranking))

    def image_to_hashtags(self, image: Any, k: int = 8, *, max_hashtags: int = MAX_HASHTAGS,
                          min_score: float = MIN_HASHTAG_SCORE, **ranking: Any) -> Recommendation:
        """Hashtags for an image, plus the tweets with the most similar images (why those tags)."""
        vector = self.embed_image(image)
        tweets = self.search(vector, "image", k, Ranking(**ranking))
        return Recommendation(tweets, self.hashtags_for(vector, IMAGE_HASHTAG_SOURCES, min_score=min_score,
                                                        limit=max_hashtags))

    def text_to_hashtags(self, text: str, k: int = 8, *, max_hashtags: int = MAX_HASHTAGS,
                         min_score: float = MIN_HASHTAG_SCORE, **ranking: Any) -> Recommendation:
        """Hashtags for a draft text, plus the tweets that back them."""
        vector = self.embed_text(text)
        tweets = self.search(vector, "image", k, Ranking(**ranking))
        return Recommendation(tweets, self.hashtags_for(vector, TEXT_HASHTAG_SOURCES, min_score=min_score,
                                                        limit=max_hashtags))

    def combined(self, text: str | None, image: Any, text_weight: float = 0.5, k: int = 8, *,
                 max_hashtags: int = MAX_HASHTAGS, min_score: float = MIN_HASHTAG_SCORE,
                 **ranking: Any) -> Recommendation:
        """Images and hashtags for a text, an image, or both mixed by ``text_weight``."""
        vector = self.query_vector(text, image, text_weight)
        tweets = self.search(vector, "image", k, Ranking(**ranking))
        # Voters follow the mix: the text collection as much as the text counts, the image collection for the rest.
        has_text = isinstance(text, str) and bool(text.strip())
        share = (float(text_weight) if image is not None else 1.0) if has_text else 0.0
        sources = {"text": share * TEXT_HASHTAG_SOURCES["text"],
                   "image": 1.0 - share * TEXT_HASHTAG_SOURCES["text"]}
        return Recommendation(tweets, self.hashtags_for(vector, sources, min_score=min_score, limit=max_hashtags))

    def text_to_tweets(self, text: str, k: int = 8, **ranking: Any) -> list[TweetResult]:
        """Tweets whose text says something similar to a draft."""
        return self.search(self.embed_text(text), "text", k, Ranking(**ranking))

    def image_to_tweets(self, image: Any, k: int = 8, **ranking: Any) -> list[TweetResult]:
        """Tweets whose image looks like this one."""
        return self.search(self.embed_image(image), "image", k, Ranking(**ranking))


def _check_k(k: Any) -> int:
    try:
        value = int(k)
    except (TypeError, ValueError):
        raise QueryError(f"The number of results must be a whole number, not {k!r}.") from None
    if value < 1:
        raise QueryError(f"The number of results must be at least 1, not {value}.")
    return value


# ------------------------------------------------------------------------------------------------ evaluation


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
