"""The recommendation queries behind the app: images, hashtags and similar tweets for a draft text and/or image.

Plain dataclasses out, never Gradio objects. A ``Recommender`` (``recommender``) holds the towers and a read-only
``TweetIndex``:

- ``text_to_images`` (text tower -> image collection), ``combined`` / ``text_image_to_images`` (the write-up's
  combined query: normalised text and image embeddings mixed by a caller weight, renormalised);
- ``image_to_hashtags`` / ``text_to_hashtags``: individual hashtags aggregated from the nearest tweets and the
  nearest hashtag strings (``hashtags.aggregate_hashtags``), not a neighbour's whole hashtag string;
- ``text_to_tweets`` / ``image_to_tweets``: tweets that say or show something similar;
- ``compose`` / ``more_like_this``: the Compose tab's one answer (images, hashtags, similar tweets), narrowed to a
  result's stored image embedding, steered away from a "not" text, weak matches hidden (``steering``).

Every input is checked once, here (``query``: the draft, ``k``, weights, the balance, under ``QueryLimits``), and
refused with a ``QueryError`` whose message is for the user. Optional re-ranking (``ranking.Ranking``) blends
similarity with engagement and recency and can diversify with MMR; every result (``results``) carries its score
breakdown, whose parts add up to its score. ``quality.evaluate_search`` measures what the app's queries return.
"""

from __future__ import annotations

from tweetmaker.search.hashtags import (
    HASHTAG_NEIGHBOURS,
    IMAGE_HASHTAG_SOURCES,
    MAX_HASHTAGS,
    MIN_HASHTAG_SCORE,
    MIN_TEMPERATURE,
    RELATIVE_TEMPERATURE,
    TEXT_HASHTAG_SOURCES,
    aggregate_hashtags,
)
from tweetmaker.search.quality import evaluate_search
from tweetmaker.search.query import (
    QueryError,
    QueryLimits,
    check_balance,
    check_k,
    check_weight,
    clean_text,
    has_image,
    mix,
    normalize,
)
from tweetmaker.search.ranking import (
    RECENCY_HALF_LIFE_DAYS,
    RERANK_POOL_FACTOR,
    RERANK_POOL_MIN,
    Ranking,
    engagement_value,
    rerank,
)
from tweetmaker.search.recommender import Recommender
from tweetmaker.search.results import Composition, HashtagResult, Recommendation, TweetResult
from tweetmaker.search.steering import (
    MORE_LIKE_THIS_WEIGHT,
    NOT_WEIGHT,
    WEAK_MATCH_RATIO,
    check_tweet_id,
    hide_weak,
    mix_seed,
    subtract_negative,
)

__all__ = [
    "HASHTAG_NEIGHBOURS", "IMAGE_HASHTAG_SOURCES", "MAX_HASHTAGS", "MIN_HASHTAG_SCORE", "MIN_TEMPERATURE",
    "RECENCY_HALF_LIFE_DAYS", "RELATIVE_TEMPERATURE", "RERANK_POOL_FACTOR", "RERANK_POOL_MIN", "TEXT_HASHTAG_SOURCES",
    "HashtagResult", "QueryError", "QueryLimits", "Ranking", "Recommendation", "Recommender", "TweetResult",
    "aggregate_hashtags", "check_balance", "check_k", "check_weight", "clean_text", "engagement_value",
    "evaluate_search", "has_image", "mix", "normalize", "rerank",
    "MORE_LIKE_THIS_WEIGHT", "NOT_WEIGHT", "WEAK_MATCH_RATIO", "Composition", "check_tweet_id", "hide_weak",
    "mix_seed", "subtract_negative",
]
