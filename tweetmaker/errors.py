"""The one base class of every error a TweetMaker user is meant to read.

A message of a ``TweetMakerError`` says what went wrong and what to do; the boundaries that face a person (the UI's
``user_errors``, ``app.py``, the CLIs' ``main``) catch this class and show the message instead of a traceback, and
let every other exception through as the bug it is. Errors about the input itself also derive from ``ValueError``
and errors about a missing thing from ``FileNotFoundError``, so code written against those keeps working.
"""

from __future__ import annotations


class TweetMakerError(Exception):
    """An error whose message is written for the person using TweetMaker."""


class InvalidInputError(TweetMakerError, ValueError):
    """The input (a query, an image, a setting, a data set) cannot be used as given."""
