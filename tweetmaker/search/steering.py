"""Steering a query after its first answer: "more like this" result, "not" this text, and weak matches out of the way.

- **More like this**: a result's *stored* image embedding (``TweetIndex.get(..., with_embeddings=True)``; nothing is
  re-encoded) is mixed into the query with weight ``MORE_LIKE_THIS_WEIGHT``; alone when there is no other query.
- **Not this** (rclip's negative queries): the "not" text's embedding, normalised, is subtracted from the normalised
  query with weight ``NOT_WEIGHT`` and the difference renormalised: ``q' = normalize(q - NOT_WEIGHT * n)``. When the
  negative *dominates* (it says what the query says: cosine above ``MAX_NOT_OVERLAP``, e.g. "robots" not "robots",
  or nothing would be left), the query runs without it and says so: results stay about what was asked, never an
  error.
- **Weak matches**: a result is weak when its score is below ``WEAK_MATCH_RATIO`` of the best result's score in the
  same answer (``hide_weak``); relative, because a flat cut-off does not carry across queries or towers.

Measured on the synthetic twin with the offline demo's towers (``tests/test_compose_app.py`` prints the figures):
a topic query (top 20) not its most frequent colour: robots/green 12 -> 0 of 20, clouds/green 9 -> 1, charts/gray
8 -> 1, chips/purple 7 -> 0, brains/gray 10 -> 5, eyes/gray 10 -> 5, rockets/green 9 -> 8, while 16-20 of the 20
stay of the asked topic. Weak matches: "three blue robots on dots" scores 0.80 down to 0.69 over 40 results; the
7% cut keeps the best 19 (17 robots) and hides the tail, where other topics take over.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tweetmaker.search.query import QueryError, normalize
from tweetmaker.search.results import TweetResult

MORE_LIKE_THIS_WEIGHT = 0.6  # the clicked result's share of the mixed query (the rest: the draft and/or image)
NOT_WEIGHT = 0.5  # how much of the "not" text's direction is taken away from the query
MAX_NOT_OVERLAP = 0.98  # the negative dominates above this cosine with the query (what is left of it is < 0.2)
WEAK_MATCH_RATIO = 0.93  # shown when score >= best - (1 - ratio) * |best|: within 7% of the best score
MAX_TWEET_ID_CHARS = 128
_TWEET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def check_tweet_id(value: Any) -> str:
    """A corpus tweet id as the index stores it: letters, digits, ``_ . : -``, at most 128 characters, no ``..``.

    Anything else (a path, markup, an empty value) is refused with a message before the index is asked."""
    text = value.strip() if isinstance(value, str) else ("" if value is None else str(value).strip())
    if not text:
        raise QueryError("Give the id of a tweet from the results (the 'tweet id' of a result).")
    if len(text) > MAX_TWEET_ID_CHARS or not _TWEET_ID.match(text) or ".." in text:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise QueryError(f"{shown!r} is not a tweet id: an id is letters, digits, '-', '_', '.' or ':' "
                         f"(at most {MAX_TWEET_ID_CHARS} characters), as shown with each result.")
    return text


def unknown_tweet(tweet_id: str) -> QueryError:
    return QueryError(f"No tweet with id {tweet_id!r} in this index: use the id of a tweet the app returned.")


def mix_seed(query: np.ndarray | None, seed: np.ndarray, weight: float = MORE_LIKE_THIS_WEIGHT) -> np.ndarray:
    """The query narrowed towards a result: ``normalize(weight * seed + (1 - weight) * query)``; the seed alone
    when there is no other query."""
    if query is None:
        return normalize(seed)
    return normalize(weight * normalize(seed) + (1.0 - weight) * normalize(query))


def subtract_negative(query: np.ndarray, negative: np.ndarray, weight: float = NOT_WEIGHT,
                      max_overlap: float = MAX_NOT_OVERLAP) -> tuple[np.ndarray, bool]:
    """``(normalize(q - weight * n), True)``, or ``(q, False)`` when the negative dominates: its cosine with ``q`` is
    above ``max_overlap`` (the part of the query it does not explain, ``sqrt(1 - cos^2)``, is under 0.2 at 0.98),
    or nothing is left of the query once it is taken away."""
    query = normalize(query)
    try:
        negative = normalize(negative)
        if float(query @ negative) > max_overlap:
            return query, False
        return normalize(query - weight * negative), True
    except QueryError:
        return query, False


def dominated_message(not_text: str) -> str:
    shown = not_text if len(not_text) <= 40 else not_text[:37] + "..."
    return (f"The 'not' text {shown!r} says nearly what the query says, so taking it away would leave nothing to "
            "search for: these results ignore it. Make the 'not' text about what you do not want to see.")


def hide_weak(results: Sequence[TweetResult], ratio: float = WEAK_MATCH_RATIO
              ) -> tuple[list[TweetResult], list[TweetResult]]:
    """``(shown, hidden)``: a result is weak when its score falls below ``ratio`` of the best score's reach
    (``best - (1 - ratio) * |best|``), so the cut-off follows each answer's own scale. The best result always shows."""
    if not results:
        return [], []
    best = max(result.score for result in results)
    cut = best - (1.0 - ratio) * abs(best)
    shown = [result for result in results if result.score >= cut]
    return shown, [result for result in results if result.score < cut]
