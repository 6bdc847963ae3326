"""The index's files on disk: can a build write them (and why not), and the image copies it writes.

A build checks before it changes anything (``check_writable``): a directory it may not write, or a disk without room,
is refused with a message that names the directory and what to do. A write that fails part-way (a disk filling up)
is explained the same way (``explain_write_errors``), because Chroma reports a full disk only as a bare
'disk I/O error'.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tweetmaker.atomic import write_atomically
from tweetmaker.index.errors import IndexDiskFullError, IndexNotWritableError, TweetIndexError
from tweetmaker.index.layout import CHROMA_DIRNAME, IMAGES_DIRNAME, LOCK_FILENAME

if TYPE_CHECKING:
    from PIL import Image

# Room a build needs to start: a probe file this big must fit. After a failed write, the probe asks for more (a batch's
# worth of 512-d records and their journal), as SQLite gives back the space of the transaction it rolled back.
START_ROOM_BYTES = 1 << 20
FAILED_WRITE_ROOM_BYTES = 16 << 20
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# How Chroma words a storage failure it does not attribute (a full disk among them).
_STORAGE_ERROR = re.compile(r"disk|I/O|compaction|space|full|readonly|read-only|database|sqlite|write", re.IGNORECASE)
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
logger = logging.getLogger(__name__)


def write_problem(index_dir: str | Path, *, room: int = START_ROOM_BYTES, writing: str | Path | None = None
                  ) -> OSError | None:
    """Why a build cannot write to ``index_dir`` right now (the OSError a write there gets), or None if it can.

    ``writing`` is the generation directory the build writes (its chroma/ and images/ are probed too); without it only
    INDEX_DIR and its lock are, as before a build knows which generation it will write: a rebuild never writes the
    live generation, so the live files' sizes and permissions are not its concern.

    Real writes rather than permission bits (root, ACLs and read-only mounts make those lie): a probe file is made in
    each directory written and removed, the first one filled with ``room`` bytes and synced. Files a build changes in
    place (the database, the lock) are checked with ``os.access``, as opening the database here could drop the locks
    SQLite holds in this process; and the database must be able to grow by ``room`` under the process's file size
    limit (``ulimit -f``).
    """
    index_path = Path(index_dir)
    try:
        index_path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return error
    root = Path(writing) if writing is not None else None
    chroma_dir = root / CHROMA_DIRNAME if root is not None else None
    in_place = [path for path in chroma_dir.rglob("*") if path.is_file()] if chroma_dir and chroma_dir.is_dir() else []
    for path in [*in_place, index_path / LOCK_FILENAME]:
        if path.exists() and not os.access(path, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
            code = errno.EROFS if os.statvfs(path).f_flag & os.ST_RDONLY else errno.EACCES
            return OSError(code, os.strerror(code), str(path))
    with contextlib.suppress(ImportError):  # `resource` is Unix-only
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        sizes = {path: _size_or_zero(path) for path in in_place}  # a SQLite journal may vanish meanwhile
        largest = max(sizes, key=sizes.__getitem__, default=None)
        if limit != resource.RLIM_INFINITY and sizes.get(largest, 0) + room > limit:
            return OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(largest or index_path))
    directories = [index_path] + ([root, chroma_dir, root / IMAGES_DIRNAME] if root is not None else [])
    for number, directory in enumerate(dict.fromkeys(path for path in directories if path.is_dir())):
        try:
            handle, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=directory)
        except OSError as error:
            return error
        try:
            with os.fdopen(handle, "wb") as stream:
                if number == 0:  # one file system under all of them, as a rule: its room is measured once
                    stream.write(bytes(room))
                    stream.flush()
                    os.fsync(stream.fileno())  # some file systems report a full disk only when the data goes out
        except OSError as error:
            return error
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)
    return None


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# What to do once the cause is fixed, after a build that changed nothing, one that resumes, one that starts over.
_UNCHANGED = "then run the build again. Nothing in the index directory was changed."
_RESUMES = "then run the same `python -m tweetmaker.index build` command again: it resumes where it stopped."
_STARTS_OVER = ("then run the same `python -m tweetmaker.index build` command again. The live index was not touched "
                "and still serves; the unfinished rebuild was deleted to give its room back, so that run starts over.")


def _write_error(index_path: Path, problem: OSError, then: str) -> TweetIndexError | None:
    """The error to show for a write ``problem`` under ``index_path``: what happened and what to do next."""
    where = (problem.strerror or str(problem)) + (f": {problem.filename}" if problem.filename else "")
    if problem.errno in _DISK_FULL:
        if problem.errno == errno.EFBIG:
            cause, fix = "a file reached this process's file size limit", "Raise the limit (`ulimit -f unlimited`)"
        else:
            cause, fix = "the disk is full", "Free some space on that disk"
        return IndexDiskFullError(
            f"Cannot write the index directory {str(index_path)!r}: {cause} ({where}). {fix}, or pass an "
            f"--index_dir on a disk with room; {then}"
        )
    if problem.errno in _NOT_WRITABLE:
        return IndexNotWritableError(
            f"Cannot write the index directory {str(index_path)!r} ({where}). Make it writable for this user "
            f"(uid {os.geteuid()}), or pass an --index_dir you can write; {then}"
        )
    return None


def check_writable(index_dir: str | Path, *, writing: str | Path | None = None) -> None:
    """Raise ``IndexNotWritableError`` / ``IndexDiskFullError`` unless a build can write to ``index_dir`` (and to the
    generation directory ``writing``, once known)."""
    problem = write_problem(index_dir, writing=writing)
    error = _write_error(Path(index_dir), problem, _UNCHANGED) if problem is not None else None
    if error is not None:
        raise error from problem
    if problem is not None:  # e.g. --index_dir names a file: still a message, not a traceback
        raise TweetIndexError(
            f"Cannot use {str(index_dir)!r} as the index directory ({problem}). Pass an --index_dir that is a "
            "directory this user can write (it is created if missing). Nothing was changed."
        ) from problem


@contextlib.contextmanager
def explain_write_errors(index_path: Path, writing: Path | None = None,
                         give_back: Callable[[], None] | None = None) -> Iterator[None]:
    """Turn a write that fails mid-build (a disk filling up) into an error that says so and what to do.

    Chroma reports a full disk as a bare 'disk I/O error' or a failed compaction, without the cause, so when an OS or
    Chroma error ends a build, a probe (``write_problem``) asks the directory itself whether, and why, it refuses
    writes; when it does not, the original error goes on unchanged.

    ``give_back`` deletes what the build wrote; it is called when the disk is full, so that the live index on the
    same disk can still be opened (Chroma cannot open a database, even to read it, on a disk without room). A rebuild
    passes it: serving the old index matters more than resuming the new one.
    """
    from chromadb.errors import ChromaError

    try:
        yield
    except TweetIndexError:
        raise
    except (OSError, ChromaError) as error:
        if not isinstance(error, OSError) and not _STORAGE_ERROR.search(str(error)):
            raise  # a Chroma error about the request itself (dimension, ids, ...): no disk to blame
        problem = write_problem(index_path, room=FAILED_WRITE_ROOM_BYTES, writing=writing)
        then = _RESUMES
        if problem is not None and problem.errno in _DISK_FULL - {errno.EFBIG} and give_back is not None:
            try:
                give_back()
                then = _STARTS_OVER
            except Exception:  # noqa: BLE001 - the disk error is the one to report
                logger.warning("could not delete the unfinished rebuild", exc_info=True)
        explained = _write_error(index_path, problem, then) if problem is not None else None
        if explained is None:
            raise
        raise explained from error


def write_image_copy(image: Image.Image, path: Path, max_side: int) -> None:
    """A downscaled JPEG copy of ``image`` at ``path``, written whole or not at all."""
    copy = image.copy()
    copy.thumbnail((max_side, max_side))
    write_atomically(path, lambda stream: copy.save(stream, format="JPEG", quality=88), suffix=".jpg")


def remove_orphan_images(images_dir: Path, wanted: set[str]) -> None:
    """Delete image files no record names: leftovers of a killed write, or of rows no longer in the data set."""
    for path in images_dir.iterdir():
        if path.name not in wanted:
            with contextlib.suppress(OSError):
                path.unlink()
