"""The one place where the library's errors meet the person: a ``TweetMakerError`` becomes a ``gr.Error``.

The library checks every input and says what is wrong in words for the user (``tweetmaker.search.query``,
``tweetmaker.data.decode_image``, the index's errors); the UI re-checks nothing. Any other exception is a bug
and goes through as one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

from tweetmaker.errors import TweetMakerError

F = TypeVar("F", bound=Callable[..., Any])


def user_message(error: TweetMakerError) -> str:
    """What the page shows for a library error: its message, said to come from the index when it does."""
    from tweetmaker.index import TweetIndexError  # the index (and Chroma) is loaded by then

    if isinstance(error, TweetIndexError):
        return f"The index is unavailable: {error}"
    return str(error)


def user_errors(handler: F) -> F:
    """Wrap an endpoint so that the library's user-facing errors reach the page as ``gr.Error``."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any):
        try:
            return handler(*args, **kwargs)
        except TweetMakerError as error:
            raise gr.Error(user_message(error)) from None

    return wrapped  # type: ignore[return-value]
