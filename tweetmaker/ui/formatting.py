"""How results read on the page: gallery captions, score tables, hashtags, and the tweet preview.

Pure functions of the library's result dataclasses (no Gradio here), shared by every tab that shows results.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from tweetmaker.data import format_hashtags, parse_hashtags

TWEET_LIMIT = 280
EMPTY_PREVIEW = "*Your tweet preview appears here.*"
BREAKDOWN_COLUMNS = ("similarity", "engagement", "recency", "diversity")
BREAKDOWN_HEADERS = ["rank", "tweet id", "tweet", "score", *BREAKDOWN_COLUMNS, "engagement (raw)", "date"]
HASHTAG_HEADERS = ["hashtag", "score", "support"]
_URL = re.compile(r"https?://\S+")


def tweet_length(text: str) -> int:
    """Length as Twitter counts it: a URL counts 23, wide characters (CJK, emoji) count 2."""
    length = 0
    for part in _URL.split(text):
        for char in part:
            length += 2 if unicodedata.east_asian_width(char) in ("W", "F") or ord(char) > 0xFFFF else 1
    return length + 23 * len(_URL.findall(text))


def compose_tweet(draft: str | None, hashtags: str | None) -> tuple[str, str]:
    """The tweet as it would be posted (draft + chosen hashtags) and its character counter."""
    draft = (draft or "").strip()
    tags = format_hashtags(parse_hashtags(hashtags))  # "#AI, ai" is one tag: the first spelling is kept
    tweet = " ".join(part for part in (draft, tags) if part)
    length = tweet_length(tweet)
    left = TWEET_LIMIT - length
    counter = f"{length} / {TWEET_LIMIT} characters" + (
        f" - {-left} over the limit: drop a hashtag or shorten the text." if left < 0 else f" ({left} left)"
    )
    return tweet or EMPTY_PREVIEW, counter


def caption(result: Any) -> str:
    """A gallery caption: tweet text, hashtags, score and engagement."""
    metadata = result.metadata
    text = metadata.get("text") or "(no text)"
    text = text if len(text) <= 120 else text[:117] + "..."
    parts = [text, metadata.get("hashtags") or "", f"score {result.score:.3f}", _engagement(metadata)]
    return " | ".join(part for part in parts if part)


def gallery_items(results: Sequence[Any]) -> list[tuple[str, str]]:
    """``(image path, caption)`` of each result whose image the index holds."""
    return [(str(result.image_path), caption(result)) for result in results if result.image_path is not None]


def breakdown_rows(results: Sequence[Any]) -> list[list[Any]]:
    """Why each result ranked: its score and the parts it is made of (``BREAKDOWN_HEADERS``)."""
    rows = []
    for rank, result in enumerate(results, start=1):
        parts = result.breakdown
        rows.append([rank, result.id, (result.metadata.get("text") or "")[:80], round(result.score, 4),
                     *(round(float(parts.get(name, 0.0)), 4) for name in BREAKDOWN_COLUMNS),
                     _engagement(result.metadata), _date(result.metadata)])
    return rows


def hashtag_rows(hashtags: Sequence[Any]) -> list[list[Any]]:
    """One row per recommended hashtag (``HASHTAG_HEADERS``)."""
    return [[f"#{tag.tag}", round(tag.score, 4), tag.support] for tag in hashtags]


def hashtag_string(hashtags: Sequence[Any]) -> str:
    """The recommended hashtags, copy-ready: ``#AI #Robotics``."""
    return format_hashtags([tag.tag for tag in hashtags])


def _engagement(metadata: dict[str, Any]) -> str:
    return f"♥ {int(metadata.get('likes') or 0)} · ↻ {int(metadata.get('retweets') or 0)}"


def _date(metadata: dict[str, Any]) -> str:
    stamp = metadata.get("date")
    if not stamp:
        return ""
    return datetime.fromtimestamp(int(stamp), tz=timezone.utc).strftime("%Y-%m-%d")
