"""The ``Recommender``: the app's queries, answered from the towers and a read-only index built by those towers.

Each query checks its cheap inputs (``k``, weights, the draft's length) before it encodes anything, and raises
``QueryError`` with a message for the user; the UI shows that message as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tweetmaker.search.hashtags import (
    HASHTAG_NEIGHBOURS,
    IMAGE_HASHTAG_SOURCES,
    MAX_HASHTAGS,
    MIN_HASHTAG_SCORE,
    TEXT_HASHTAG_SOURCES,
    aggregate_hashtags,
)
from tweetmaker.search.query import (
    NO_IMAGE,
    NO_QUERY,
    QueryError,
    QueryLimits,
    check_balance,
    check_k,
    clean_text,
    has_image,
    mix,
    normalize,
)
from tweetmaker.search.ranking import RERANK_POOL_FACTOR, RERANK_POOL_MIN, Ranking, rerank
from tweetmaker.search.results import HashtagResult, Recommendation, TweetResult

if TYPE_CHECKING:
    from PIL import Image

    from tweetmaker.index import TweetIndex
    from tweetmaker.towers import Towers


class Recommender:
    """Answers the app's queries from the towers and a read-only index built by those same towers.

    ``limits`` bounds what a query may ask (the longest draft, the largest ``k``); none by default.
    """

    def __init__(self, towers: Towers, index: TweetIndex, *, check: bool = True,
                 limits: QueryLimits | None = None) -> None:
        if check:
            index.check_towers(towers)  # wrong towers would return confidently wrong neighbours
        self.towers = towers
        self.index = index
        self.limits = limits or QueryLimits()

    def with_limits(self, limits: QueryLimits) -> Recommender:
        """The same towers and index (shared, not copied) answering under other limits."""
        return Recommender(self.towers, self.index, check=False, limits=limits)

    # -- query checks and embeddings -------------------------------------------------------------------------------
    def clean_text(self, text: Any, *, required: bool = True) -> str:
        """``clean_text`` under this recommender's length limit."""
        return clean_text(text, self.limits.max_text_chars, required=required)

    def options(self, k: Any, ranking: dict[str, Any]) -> tuple[int, Ranking]:
        """``k`` and the re-ranking weights of a query, checked before anything is encoded."""
        return check_k(k, self.limits.max_k), Ranking(**ranking)

    def embed_text(self, text: str | None) -> np.ndarray:
        return normalize(self.towers.encode_texts([self.clean_text(text)])[0])

    def embed_image(self, image: Image.Image | bytes | str | Path) -> np.ndarray:
        from tweetmaker.data import ImageDecodeError, decode_image

        if not has_image(image):
            raise QueryError(NO_IMAGE)
        try:
            picture = decode_image(image)
        except ImageDecodeError as error:
            raise QueryError(str(error)) from None
        return normalize(self.towers.encode_images([picture])[0])

    def query_vector(self, text: str | None = None, image: Any = None, text_weight: float = 0.5) -> np.ndarray:
        """The query embedding of a text, an image, or both mixed (``text_weight`` 1 = text only, 0 = image only)."""
        text_weight = check_balance(text_weight)
        draft = self.clean_text(text, required=False)
        if not draft and not has_image(image):
            raise QueryError(NO_QUERY)
        text_vector = self.embed_text(draft) if draft else None
        image_vector = self.embed_image(image) if has_image(image) else None
        return mix(text_vector, image_vector, text_weight)

    # -- primitives ------------------------------------------------------------------------------------------------
    def search(self, vector: np.ndarray, modality: str, k: int, ranking: Ranking | None = None) -> list[TweetResult]:
        """The ``k`` best tweets of one collection for a query embedding, re-ranked when ``ranking`` asks for it."""
        k = check_k(k, self.limits.max_k)
        ranking = ranking or Ranking()
        pool = max(k * RERANK_POOL_FACTOR, k + RERANK_POOL_MIN) if ranking.active else k
        hits = self.index.query(modality, vector, pool, with_embeddings=bool(ranking.diversity))[0]
        return rerank(hits, k, ranking, self.index)

    def hashtags_for(self, vector: np.ndarray, sources: dict[str, float], *, neighbours: int = HASHTAG_NEIGHBOURS,
                     min_score: float = MIN_HASHTAG_SCORE, limit: int = MAX_HASHTAGS) -> list[HashtagResult]:
        """Individual hashtags for a query embedding, voted by its nearest tweets in each source collection."""
        found = {name: self.index.query(name, vector, neighbours)[0] for name, weight in sources.items() if weight}
        return aggregate_hashtags(found, source_weights=sources, min_score=min_score, limit=limit)

    def recommend(self, vector: np.ndarray, sources: dict[str, float], k: int, ranking: Ranking | None = None, *,
                  min_score: float = MIN_HASHTAG_SCORE, limit: int = MAX_HASHTAGS) -> Recommendation:
        """Both answers for a query embedding: the ``k`` best images (with their tweets) and the hashtags voted by
        the ``sources`` collections."""
        return Recommendation(self.search(vector, "image", k, ranking),
                              self.hashtags_for(vector, sources, min_score=min_score, limit=limit))

    # -- the app's queries -----------------------------------------------------------------------------------------
    def text_to_images(self, text: str, k: int = 8, **ranking: Any) -> list[TweetResult]:
        """Images (with their tweets) that fit a draft text."""
        k, order = self.options(k, ranking)
        return self.search(self.embed_text(text), "image", k, order)

    def text_image_to_images(self, text: str | None, image: Any, text_weight: float = 0.5, k: int = 8,
                             **ranking: Any) -> list[TweetResult]:
        """Images for a text and an image together (the combined query)."""
        k, order = self.options(k, ranking)
        return self.search(self.query_vector(text, image, text_weight), "image", k, order)

    def image_to_hashtags(self, image: Any, k: int = 8, *, max_hashtags: int = MAX_HASHTAGS,
                          min_score: float = MIN_HASHTAG_SCORE, **ranking: Any) -> Recommendation:
        """Hashtags for an image, plus the tweets with the most similar images (why those tags)."""
        k, order = self.options(k, ranking)
        return self.recommend(self.embed_image(image), IMAGE_HASHTAG_SOURCES, k, order, min_score=min_score,
                              limit=max_hashtags)

    def text_to_hashtags(self, text: str, k: int = 8, *, max_hashtags: int = MAX_HASHTAGS,
                         min_score: float = MIN_HASHTAG_SCORE, **ranking: Any) -> Recommendation:
        """Hashtags for a draft text, plus the tweets that back them."""
        k, order = self.options(k, ranking)
        return self.recommend(self.embed_text(text), TEXT_HASHTAG_SOURCES, k, order, min_score=min_score,
                              limit=max_hashtags)

    def combined(self, text: str | None, image: Any, text_weight: float = 0.5, k: int = 8, *,
                 max_hashtags: int = MAX_HASHTAGS, min_score: float = MIN_HASHTAG_SCORE,
                 **ranking: Any) -> Recommendation:
        """Images and hashtags for a text, an image, or both mixed by ``text_weight``."""
        k, order = self.options(k, ranking)
        vector = self.query_vector(text, image, text_weight)
        # Voters follow the mix: the text collection as much as the text counts, the image collection for the rest.
        has_text = bool(self.clean_text(text, required=False))
        share = (check_balance(text_weight) if has_image(image) else 1.0) if has_text else 0.0
        sources = {"text": share * TEXT_HASHTAG_SOURCES["text"],
                   "image": 1.0 - share * TEXT_HASHTAG_SOURCES["text"]}
        return self.recommend(vector, sources, k, order, min_score=min_score, limit=max_hashtags)

    def text_to_tweets(self, text: str, k: int = 8, **ranking: Any) -> list[TweetResult]:
        """Tweets whose text says something similar to a draft."""
        k, order = self.options(k, ranking)
        return self.search(self.embed_text(text), "text", k, order)

    def image_to_tweets(self, image: Any, k: int = 8, **ranking: Any) -> list[TweetResult]:
        """Tweets whose image looks like this one."""
        k, order = self.options(k, ranking)
        return self.search(self.embed_image(image), "image", k, order)
