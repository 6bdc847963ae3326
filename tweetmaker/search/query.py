"""What a query may be: every check of the app's inputs, once, with messages written for the person typing.

The UI calls none of these itself: it hands its inputs to the ``Recommender`` and shows the ``QueryError`` that
comes back (``tweetmaker.ui.boundary``). The limits that depend on the deployment (the longest draft, the largest
``k``) come in through ``QueryLimits``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from tweetmaker.errors import InvalidInputError

# Control characters (not tab, newline or carriage return) become spaces: a pasted draft may carry them, and
# the tokenizer would otherwise see them as text.
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]")
NO_TEXT = "Type a draft tweet first: a few words about what your tweet is about."
NO_IMAGE = "Upload an image first (JPEG, PNG, GIF or WebP)."
NO_QUERY = "Give a draft text, an image, or both."


class QueryError(InvalidInputError):
    """A query that cannot be answered (empty text, unreadable image, bad weight); the message is for the user."""


@dataclass(frozen=True)
class QueryLimits:
    """The largest query a deployment answers; ``None`` is no limit (the library's default).

    The app sets both: ``max_text_chars`` from its settings, ``max_k`` to its results slider's maximum.
    """

    max_text_chars: int | None = None
    max_k: int | None = None


def clean_text(text: Any, max_chars: int | None = None, *, required: bool = True) -> str:
    """A draft as the towers read it: control characters become spaces and the ends are stripped.

    Refuses an empty draft (when ``required``; otherwise returns ``""``) and one over ``max_chars`` characters.
    Anything that is not a string counts as empty.
    """
    text = _CONTROL.sub(" ", text).strip() if isinstance(text, str) else ""
    if not text:
        if required:
            raise QueryError(NO_TEXT)
        return ""
    if max_chars is not None and len(text) > max_chars:
        raise QueryError(
            f"That text is {len(text):,} characters long; the limit is {max_chars:,}. "
            "Shorten it to the tweet (or its first paragraph) and try again."
        )
    return text


def check_k(k: Any, max_k: int | None = None) -> int:
    """The number of results as a whole number from 1 to ``max_k`` (no upper bound when ``None``)."""
    span = f"between 1 and {max_k}" if max_k is not None else "at least 1"
    try:
        value = int(k)
    except (TypeError, ValueError, OverflowError):
        raise QueryError(f"The number of results must be a whole number ({span}), not {k!r}.") from None
    if value < 1 or (max_k is not None and value > max_k):
        raise QueryError(f"The number of results must be {span}, not {value}.")
    return value


def check_weight(name: str, value: Any) -> float:
    """A re-ranking weight (``engagement``, ``recency``, ``diversity``) as a float in [0, 1]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise QueryError(f"The {name} weight must be a number between 0 and 1, not {value!r}.")
    return number


def check_balance(value: Any) -> float:
    """The text/image balance of a combined query: 1 searches by the text alone, 0 by the image alone."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise QueryError("The text/image balance must be a number between 0 and 1.") from None
    if not 0.0 <= number <= 1.0:  # NaN fails this too
        raise QueryError("The text/image balance must be between 0 (all image) and 1 (all text).")
    return number


def has_image(image: Any) -> bool:
    """Whether an image was given at all: ``None`` and an empty path are "no image" (bad bytes are decoded, and
    refused, later)."""
    return image is not None and not (isinstance(image, str) and not image.strip())


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
        raise QueryError(NO_QUERY)
    if text_embedding is None:
        return normalize(image_embedding)
    if image_embedding is None:
        return normalize(text_embedding)
    return normalize(text_weight * normalize(text_embedding) + (1.0 - text_weight) * normalize(image_embedding))
