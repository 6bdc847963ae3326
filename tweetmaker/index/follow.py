"""A reader that follows generations: the app keeps answering while its index is rebuilt, then serves the new one.

``FollowingIndex`` has ``TweetIndex``'s interface and delegates every call to the ``TweetIndex`` of the generation it
serves. At most once every ``check_interval`` seconds a call first reads what names the live generation (one
``readlink`` of ``INDEX_DIR/current``, or the pointer collection's metadata on a server); when that changed, the new
generation is opened and checked (off the other calls' path: they keep using the old one meanwhile) and serves every
call that starts afterwards. Calls already running finish on the old generation, which is closed when the last of
them returns. A generation built by other towers than the ones served is not adopted: the old one keeps serving and
the reason is logged once. A call that finds the store gone under it (``IndexUnavailableError``) checks for a new
generation at once and is answered by it when there is one.

The generation served is marked as in use (``Generations.add_reader``) so a writer does not remove its files.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweetmaker.index.errors import (
    IncompleteIndexError,
    IndexUnavailableError,
    StaleIndexError,
    TweetIndexError,
)
from tweetmaker.index.generations import Generations
from tweetmaker.index.layout import IndexLocation

if TYPE_CHECKING:
    from tweetmaker.index.reader import TweetIndex
    from tweetmaker.towers import Towers

logger = logging.getLogger(__name__)


class _Served:
    """One opened generation, the calls running on it, and its reader marker."""

    def __init__(self, index: TweetIndex, marker: str | None, store_marker: Path | None) -> None:
        self.index = index
        self.live_marker = marker  # what named the live generation when it was opened
        self.reader_marker = store_marker
        self.running = 0
        self.retired = False


class FollowingIndex:
    """``TweetIndex``'s interface over whichever generation is live (see the module's docstring)."""

    def __init__(self, index_dir: str | Path | None = None, *, host: str | None = None, port: int | None = None,
                 prefix: str = "", towers: Towers | None = None, check_interval: float = 2.0) -> None:
        self._location = IndexLocation(index_dir, host, port, prefix)
        self._open_args = {"host": host, "port": port, "prefix": prefix, "towers": towers}
        self._index_dir_arg = index_dir
        self._store = Generations(self._location)  # reads pointers only; never writes
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._switching = threading.Lock()
        self._rejected: set[str] = set()
        self._closed = False
        self._served = self._open()  # raises like open_index when there is nothing to serve
        self._checked_at = time.monotonic()

    # ------------------------------------------------------------------------------------------- following

    def _open(self) -> _Served:
        from tweetmaker.index.reader import open_index

        marker = self._store.live_marker()
        index = open_index(self._index_dir_arg, **self._open_args)
        live = self._store.generation(index.generation)
        return _Served(index, marker, self._store.add_reader(live) if index.generation is not None else None)

    def refresh(self, force: bool = False) -> bool:
        """Adopt a newly published generation when there is one; True when the generation served changed.

        Cheap unless the live generation changed: a time check, then at most one pointer read per interval.
        """
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_interval:
            return False
        if not self._switching.acquire(blocking=False):
            return False  # another call is checking or opening; this one uses what is served now
        try:
            self._checked_at = now
            try:
                marker = self._store.live_marker()
            except Exception as error:  # noqa: BLE001 - a server that does not answer: keep serving, check later
                logger.warning("could not read the live generation at %s: %s", self._location.describe(), error)
                return False
            if marker is None or marker == self._served.live_marker or marker in self._rejected:
                return False
            try:
                new = self._open()
            except TweetIndexError as error:
                if isinstance(error, StaleIndexError) and not isinstance(error, IncompleteIndexError):
                    self._rejected.add(marker)
                    logger.warning("not adopting the generation %s published at %s: %s; still serving %s",
                                   marker, self._location.describe(), error, self.generation)
                else:  # e.g. published while its files are still being flushed: try again at the next check
                    logger.info("cannot open the generation %s yet (%s); still serving %s", marker, error,
                                self.generation)
                return False
            if new.index.generation == self._served.index.generation:
                self._served.live_marker = marker
                self._retire(new)
                return False
            with self._lock:
                old, self._served = self._served, new
            logger.info("now serving generation %s at %s (was %s)", new.index.generation,
                        self._location.describe(), old.index.generation)
            self._retire(old)
            return True
        finally:
            self._switching.release()

    def _retire(self, served: _Served) -> None:
        with self._lock:
            served.retired = True
            done = served.running == 0
        if done:
            self._close_served(served)

    def _close_served(self, served: _Served) -> None:
        served.index.close()
        Generations.remove_reader(served.reader_marker)

    @contextlib.contextmanager
    def _active(self) -> Iterator[TweetIndex]:
        self.refresh()
        with self._lock:
            served = self._served
            served.running += 1
        try:
            yield served.index
        finally:
            with self._lock:
                served.running -= 1
                done = served.retired and served.running == 0
            if done:
                self._close_served(served)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            with self._active() as index:
                return getattr(index, name)(*args, **kwargs)
        except IndexUnavailableError:
            # The store went away under the generation served (removed by a writer, a server reset): a new
            # generation may be live already; answer from it, or let the app say "try again".
            if not self.refresh(force=True):
                raise
            with self._active() as index:
                return getattr(index, name)(*args, **kwargs)

    # ------------------------------------------------------------------------------------------- TweetIndex

    def query(self, *args: Any, **kwargs: Any):
        return self._call("query", *args, **kwargs)

    def get(self, *args: Any, **kwargs: Any):
        return self._call("get", *args, **kwargs)

    def count(self, *args: Any, **kwargs: Any):
        return self._call("count", *args, **kwargs)

    def all_embeddings(self, *args: Any, **kwargs: Any):
        return self._call("all_embeddings", *args, **kwargs)

    def image_path(self, metadata: dict[str, Any]) -> Path | None:
        with self._active() as index:
            return index.image_path(metadata)

    def check_towers(self, towers: Towers) -> None:
        self._served.index.check_towers(towers)

    @property
    def current(self) -> TweetIndex:
        """The ``TweetIndex`` of the generation served now."""
        return self._served.index

    @property
    def generation(self) -> str | None:
        return self._served.index.generation

    @property
    def manifest(self):
        return self._served.index.manifest

    @property
    def embedding_dim(self) -> int:
        return self._served.index.embedding_dim

    @property
    def collections(self):
        return self._served.index.collections

    @property
    def client(self):
        return self._served.index.client

    @property
    def images_dir(self) -> Path | None:
        return self._served.index.images_dir

    @property
    def index_dir(self) -> Path | None:
        return self._served.index.index_dir

    @property
    def location(self) -> str:
        return self._served.index.location

    @property
    def completed(self) -> bool:
        return self._served.index.completed

    def close(self) -> None:
        with self._lock:
            served, self._closed = self._served, True
        self._close_served(served)
        self._store.close()
