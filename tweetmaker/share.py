"""Shareable links: a Compose query written into a URL's parameters, and read back from one, checked.

The whole query lives in the link (``?q=<draft>&k=&not=&engagement=&recency=&diversity=&tweet=<id>``), never on the
server: a Space's disk is wiped on restart, so a link that pointed at stored state would break, while a link that
*is* the query shows the same results after any restart (the towers and index being the same). An uploaded image
cannot travel in a URL; the link carries the rest.

Reading a link uses the library's own checks (``tweetmaker.search``): a malformed parameter (``k=abc``, ``k=1e9``,
``tweet=../../etc``, an over-long draft) is dropped with a message saying what was wrong, and the rest of the link
still runs. Parameters this module does not know (Gradio's own ``__theme``, ``view``) are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from tweetmaker.errors import TweetMakerError
from tweetmaker.search.query import QueryError, QueryLimits, check_k, check_weight, clean_text
from tweetmaker.search.steering import check_tweet_id

WEIGHTS = ("engagement", "recency", "diversity")
PARAMETERS = ("q", "k", "not", *WEIGHTS, "tweet")
MAX_PARAMETER_CHARS = 4000  # anything longer is refused before it is even checked
IMAGE_NOT_IN_LINK = ("An uploaded image cannot travel in a link: the link carries the draft, the 'not' text, the "
                     "'more like this' tweet and the ranking settings.")


@dataclass(frozen=True)
class SharedQuery:
    """A Compose query as a link carries it (``not`` is ``not_text``: ``not`` is a Python keyword)."""

    q: str = ""
    k: int = 8
    not_text: str = ""
    engagement: float = 0.0
    recency: float = 0.0
    diversity: float = 0.0
    tweet: str = ""

    @property
    def runnable(self) -> bool:
        """Whether the link asks for results (a draft or a "more like this" tweet)."""
        return bool(self.q or self.tweet)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


def parse_link(params: Mapping[str, Any], limits: QueryLimits | None = None, *, default_k: int = 8
               ) -> tuple[SharedQuery, list[str]]:
    """The query a link's parameters describe, and one message per parameter that was dropped (and why).

    ``limits`` bounds the draft's length and ``k`` as the app's own inputs are bounded."""
    limits = limits or QueryLimits()
    values: dict[str, Any] = {"k": default_k}
    problems: list[str] = []
    for name in PARAMETERS:
        raw = params.get(name)
        if raw is None:
            continue
        raw = str(raw)
        field = "not_text" if name == "not" else name
        try:
            if len(raw) > MAX_PARAMETER_CHARS:
                raise TweetMakerError(f"it is {len(raw):,} characters long")
            if name in ("q", "not"):
                values[field] = clean_text(raw, limits.max_text_chars, required=False)
            elif name == "k":
                values[field] = check_k(raw.strip(), limits.max_k)
            elif name in WEIGHTS:
                values[field] = check_weight(name, raw.strip())
            elif raw.strip():
                values[field] = check_tweet_id(raw)
        except TweetMakerError as error:
            problems.append(f"The link's {name}={_shown(raw)} was ignored: {error}")
    return SharedQuery(**values), problems


def link_query(query: SharedQuery, *, default_k: int = 8) -> str:
    """The query string of a link to ``query`` (``"?q=three%20blue%20robots&k=12"``): only what differs from the
    defaults, in a fixed order, percent-encoded (spaces as ``%20``). ``""`` for an empty query."""
    defaults = replace(SharedQuery(), k=default_k)
    parts = []
    for name in PARAMETERS:
        field = "not_text" if name == "not" else name
        value = getattr(query, field)
        if value == getattr(defaults, field) or value in ("", None):
            continue
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{name}={quote(text, safe='')}")
    return "?" + "&".join(parts) if parts else ""


def shared_query(q: Any = "", k: Any = 8, not_text: Any = "", engagement: Any = 0.0, recency: Any = 0.0,
                 diversity: Any = 0.0, tweet: Any = "", limits: QueryLimits | None = None, *, default_k: int = 8
                 ) -> SharedQuery:
    """The query of the page's current inputs, checked as a link's would be (raises the first problem)."""
    params = {"q": q or "", "k": k, "not": not_text or "", "engagement": engagement, "recency": recency,
              "diversity": diversity, "tweet": tweet or ""}
    query, problems = parse_link(params, limits, default_k=default_k)
    if problems:
        raise QueryError(problems[0].replace("The link's", "The query's").replace(" was ignored", " is not usable"))
    return query
