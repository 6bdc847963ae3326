"""What a query returns: plain dataclasses (never Gradio objects), each result with why it ranked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tweetmaker.data import parse_hashtags


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
class Composition:
    """Everything the Compose tab shows for one query: images (with their tweets), hashtags and similar tweets.

    ``hidden_weak`` counts the results left out by "hide weak matches"; ``notes`` are things the person should know
    about how the query was run (a "not" text that was ignored because it dominated); ``seed`` is the "more like
    this" tweet id mixed in, if any."""

    images: list[TweetResult]
    hashtags: list[HashtagResult]
    tweets: list[TweetResult]
    hidden_weak: int = 0
    notes: list[str] = field(default_factory=list)
    seed: str | None = None
