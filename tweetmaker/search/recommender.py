"""The ``Recommender``: the app's queries, answered from the towers and a read-only index built by those towers.

Each query checks its cheap inputs (``k``, weights, the draft's length) before it encodes anything, and raises
``QueryError`` with a message for the user; the UI shows that message as it is.
"""

from __future__ import annotations

from collections.abc import Collection
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
from tweetmaker.search.results import Composition, HashtagResult, Recommendation, TweetResult
from tweetmaker.search.steering import (
    MORE_LIKE_THIS_WEIGHT,
    check_tweet_id,
    dominated_message,
    hide_weak,
    mix_seed,
    subtract_negative,
    unknown_tweet,
)

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
    def search(self, vector: np.ndarray, modality: str, k: int, ranking: Ranking | None = None, *,
               exclude: Collection[str] = ()) -> list[TweetResult]:
        """The ``k`` best tweets of one collection for a query embedding, re-ranked when ``ranking`` asks for it;
        tweets whose id is in ``exclude`` (a "more like this" seed) are left out."""
        k = check_k(k, self.limits.max_k)
        ranking = ranking or Ranking()
        pool = (max(k * RERANK_POOL_FACTOR, k + RERANK_POOL_MIN) if ranking.active else k) + len(exclude)
        hits = self.index.query(modality, vector, pool, with_embeddings=bool(ranking.diversity))[0]
        hits = [hit for hit in hits if hit.id not in exclude]
        return rerank(hits, k, ranking, self.index)

    def stored_image_embedding(self, tweet_id: Any) -> tuple[str, np.ndarray]:
        """A corpus tweet's image embedding as the index stores it (no re-encoding), by its checked id."""
        tweet_id = check_tweet_id(tweet_id)
        found = self.index.get("image", [tweet_id], with_embeddings=True).get(tweet_id)
        if found is None or found.embedding is None:
            raise unknown_tweet(tweet_id)
        return tweet_id, found.embedding

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

    def compose(self, text: str | None = None, image: Any = None, *, not_text: str | None = None,
                tweet_id: str | None = None, text_weight: float = 0.5, k: int = 8, weak: bool = False,
                max_hashtags: int = MAX_HASHTAGS, min_score: float = MIN_HASHTAG_SCORE,
                **ranking: Any) -> Composition:
        """The Compose tab's one answer: images, hashtags and similar tweets for a draft and/or image, optionally
        narrowed to a result (``tweet_id``: its stored image embedding is mixed in, ``steering.mix_seed``) and
        steered away from ``not_text`` (``steering.subtract_negative``). ``weak=True`` hides weak matches
        (``steering.hide_weak``) and counts them. Every input is checked before anything is encoded."""
        k, order = self.options(k, ranking)
        text_weight = check_balance(text_weight)
        draft = self.clean_text(text, required=False)
        negative = self.clean_text(not_text, required=False)
        seed = None
        if tweet_id is not None and str(tweet_id).strip():
            seed, seed_vector = self.stored_image_embedding(tweet_id)
        if not draft and not has_image(image) and seed is None:
            raise QueryError(NO_QUERY)
        base = None
        if draft or has_image(image):
            base = mix(self.embed_text(draft) if draft else None,
                       self.embed_image(image) if has_image(image) else None, text_weight)
        vector = mix_seed(base, seed_vector) if seed is not None else base
        notes = []
        if negative:
            vector, applied = subtract_negative(vector, self.embed_text(negative))
            if not applied:
                notes.append(dominated_message(negative))
        # Hashtag voters follow the mix, as in ``combined``: the text collection as much as the draft counts.
        share = (text_weight if has_image(image) else 1.0) if draft else 0.0
        if seed is not None:
            share *= 1.0 - MORE_LIKE_THIS_WEIGHT
        sources = {"text": share * TEXT_HASHTAG_SOURCES["text"], "image": 1.0 - share * TEXT_HASHTAG_SOURCES["text"]}
        exclude = {seed} if seed is not None else set()
        images = self.search(vector, "image", k, order, exclude=exclude)
        tweets = self.search(vector, "text", k, order, exclude=exclude)
        hidden = 0
        if weak:
            images, weak_images = hide_weak(images)
            tweets, weak_tweets = hide_weak(tweets)
            hidden = len(weak_images) + len(weak_tweets)
        hashtags = self.hashtags_for(vector, sources, min_score=min_score, limit=max_hashtags)
        return Composition(images, hashtags, tweets, hidden_weak=hidden, notes=notes, seed=seed)

    def more_like_this(self, tweet_id: str, k: int = 8, **options: Any) -> Composition:
        """Images, hashtags and tweets like a corpus tweet's image (its stored embedding), excluding that tweet."""
        return self.compose(tweet_id=tweet_id, k=k, **options)
