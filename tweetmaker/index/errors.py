"""The errors the index raises: each message says what happened and what to run next.

All derive from ``tweetmaker.errors.TweetMakerError``, so the boundaries that face a person (the app, the CLIs)
show their message instead of a traceback; the extra bases (``FileNotFoundError``, ``PermissionError``,
``OSError``) keep code written against those working.
"""

from __future__ import annotations

from tweetmaker.errors import TweetMakerError


class TweetIndexError(TweetMakerError):
    """Base class of the index errors; the message says what happened and what to run."""


class StaleIndexError(TweetIndexError):
    """The index was built from other towers / data / schema, or its build never completed."""


class IncompleteIndexError(StaleIndexError):
    """The build was interrupted: running the same build again resumes it (no --rebuild needed)."""


class IndexNotFoundError(TweetIndexError, FileNotFoundError):
    """No index at the given place."""


class IndexLockedError(TweetIndexError):
    """Another process is building (writing) this index."""


class IndexNotWritableError(TweetIndexError, PermissionError):
    """The index directory cannot be written by this process (its permissions, or a read-only disk)."""


class IndexDiskFullError(TweetIndexError, OSError):
    """The disk under the index directory is full (or a file hit the process's size limit); resumable once fixed."""


class IndexUnavailableError(TweetIndexError):
    """The Chroma server did not answer; nothing is lost, and the same call works once it is back."""
