"""A tweet as it would be posted: counted as Twitter counts, its hashtags chosen, and the link that posts it.

Pure functions (no Gradio, no model): the Compose tab, the ``/compose`` endpoint and the tweet preview all use them.

Counting follows twitter-text's weighted length (version 3): text is NFC-normalised; a URL counts 23 whatever its
length; a code point in the Latin, Greek, Cyrillic, Hebrew, Arabic and Indic ranges (U+0000-U+10FF) and a few
punctuation ranges counts 1; every other code point (CJK, most symbols) counts 2; an emoji counts 2 however many
code points make it (skin tones, variation selectors and zero-width-joined families included). The limit is 280.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tweetmaker.data import format_hashtags, normalize_hashtag, parse_hashtags

TWEET_LIMIT = 280
URL_LENGTH = 23  # every link is shortened to a t.co link of this length
INTENT_URL = "https://twitter.com/intent/tweet"  # x.com serves the same path; this one redirects there
# twitter-text v3: code points in these ranges weigh 1, all others 2.
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)
_ZWJ = "\u200d"
# Code points that extend the emoji before them (variation selectors, skin tones, tags, keycap).
_EMOJI_EXTENDERS = re.compile(r"[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f\u20e3]")
PRESELECTED_HASHTAGS = 3  # the strongest few hashtags start chosen
PRESELECT_RELATIVE = 0.5  # ... when their score is at least this share of the best hashtag's score


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return (0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF
            or 0x1F1E6 <= code <= 0x1F1FF)


def _char_weight(char: str) -> int:
    code = ord(char)
    return 1 if any(low <= code <= high for low, high in _LIGHT_RANGES) else 2


def _text_length(text: str) -> int:
    length = 0
    position = 0
    while position < len(text):
        char = text[position]
        if _is_emoji(char):
            # One emoji sequence: the emoji, its modifiers, and anything joined to it by ZWJ.
            position += 1
            while position < len(text):
                if _EMOJI_EXTENDERS.match(text[position]):
                    position += 1
                elif text[position] == _ZWJ and position + 1 < len(text):
                    position += 2
                elif 0x1F1E6 <= ord(char) <= 0x1F1FF and 0x1F1E6 <= ord(text[position]) <= 0x1F1FF:
                    position += 1  # the second regional indicator of a flag
                    char = " "
                else:
                    break
            length += 2
            continue
        length += _char_weight(char)
        position += 1
    return length


def tweet_length(text: str) -> int:
    """The length Twitter shows for ``text`` (see the module docstring): the 280 limit applies to this number."""
    text = unicodedata.normalize("NFC", text or "")
    parts = _URL.split(text)
    return sum(_text_length(part) for part in parts) + URL_LENGTH * (len(parts) - 1)


def tweet_text(draft: str | None, hashtags: Iterable[str] | str | None) -> str:
    """The draft followed by the chosen hashtags (``#AI`` and ``ai`` are one tag: the first spelling is kept).

    The chosen hashtags always end the tweet, as chosen, even when the draft mentions one of them too."""
    draft = (draft or "").strip()
    tags = parse_hashtags(hashtags if isinstance(hashtags, str) else " ".join(hashtags or []))
    return " ".join(part for part in (draft, format_hashtags(tags)) if part)


def counter_text(length: int, limit: int = TWEET_LIMIT) -> str:
    """``"42 / 280 characters (238 left)"``, or how far over the limit and what to do."""
    left = limit - length
    return f"{length} / {limit} characters" + (
        f" - {-left} over the limit: drop a hashtag or shorten the text." if left < 0 else f" ({left} left)")


def intent_url(text: str) -> str:
    """The link that opens the platform's compose box with ``text`` filled in."""
    return f"{INTENT_URL}?text={quote(text, safe='')}"


@dataclass(frozen=True)
class TweetPreview:
    """A tweet as it would be posted: its text, Twitter's count of it, and the link that posts it."""

    text: str
    length: int
    limit: int = TWEET_LIMIT

    @property
    def over_limit(self) -> bool:
        return self.length > self.limit

    @property
    def counter(self) -> str:
        return counter_text(self.length, self.limit)

    @property
    def intent_url(self) -> str:
        return intent_url(self.text)

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "length": self.length, "limit": self.limit, "over_limit": self.over_limit,
                "counter": self.counter, "intent_url": self.intent_url}


def preview(draft: str | None, hashtags: Iterable[str] | str | None = None) -> TweetPreview:
    """The tweet made of ``draft`` and the chosen ``hashtags``, counted."""
    text = tweet_text(draft, hashtags)
    return TweetPreview(text=text, length=tweet_length(text))


def preselect(scored: Sequence[tuple[str, float]], count: int = PRESELECTED_HASHTAGS,
              relative: float = PRESELECT_RELATIVE) -> list[str]:
    """The hashtags chosen before the person touches anything: the ``count`` strongest whose score is at least
    ``relative`` times the best one's (a weak runner-up is offered, not chosen). ``scored`` is best first."""
    if not scored:
        return []
    best = max(score for _, score in scored)
    return [tag for tag, score in scored[:count] if best > 0 and score >= relative * best]


def toggle(chosen: Sequence[str], tag: str) -> list[str]:
    """``chosen`` with ``tag`` added (at the end) or, when present in any spelling, removed."""
    key = normalize_hashtag(tag)
    if any(normalize_hashtag(item) == key for item in chosen):
        return [item for item in chosen if normalize_hashtag(item) != key]
    return [*chosen, tag.lstrip("#")]


def kept_hashtags(chosen: Iterable[str] | None, offered: Sequence[str]) -> list[str]:
    """The chosen hashtags among those offered, in the offered order (a stale or forged choice is dropped)."""
    wanted = {normalize_hashtag(tag) for tag in (chosen or [])}
    return [tag for tag in offered if normalize_hashtag(tag) in wanted]
