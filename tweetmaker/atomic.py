"""Write files and directories so that a reader, or a resumed run, sees all of them or none.

One protocol for everything TweetMaker persists (index files, data sets, checkpoints, the offline demo's assets):
write beside the target under a temporary name, flush it to disk, then rename it into place. A rename within one
file system is atomic, so a process killed at any moment leaves either the old target or the new one, never half.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

PARTIAL_PREFIX = ".partial-"
ASIDE_PREFIX = ".old-"  # a replaced directory on its way out (see commit_directory)


def current_umask() -> int:
    """This process's umask, read without changing it (``os.umask`` would set it to 0 for every thread meanwhile)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022  # no /proc (not Linux): the common default


def write_atomically(path: str | Path, write: Callable[[BinaryIO], Any], suffix: str = "") -> None:
    """Write a file through a temporary file and rename it into place.

    The file gets the permissions a plain ``open`` would (mkstemp makes it 0600), so an app run by another user than
    the writer can still read it.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))


def fsync_tree(directory: str | Path) -> None:
    """Flush every file under ``directory`` and the directories themselves, so a rename that follows commits data
    that is on disk (without it, a power cut after the rename can leave a committed name over empty files)."""
    directory = Path(directory)
    for root, _, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(OSError), open(os.path.join(root, name), "rb") as stream:
                os.fsync(stream.fileno())
        fsync_directory(Path(root))


def fsync_directory(directory: Path) -> None:
    """Flush a directory entry itself, so a rename or a new file in it survives a power cut."""
    with contextlib.suppress(OSError):
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def partial_path(target: str | Path) -> Path:
    """Where ``target`` is staged while being written: ``.partial-NAME`` beside it."""
    target = Path(target)
    return target.with_name(PARTIAL_PREFIX + target.name)


def commit_directory(staging: str | Path, target: str | Path) -> None:
    """Flush ``staging`` and rename it to ``target``, replacing an existing ``target`` only after the new one is
    complete (the old one is moved aside first and removed last, so at every moment one whole copy exists)."""
    staging, target = Path(staging), Path(target)
    fsync_tree(staging)
    aside = None
    if target.exists():
        aside = target.with_name(f"{ASIDE_PREFIX}{target.name}-{os.getpid()}")
        shutil.rmtree(aside, ignore_errors=True)
        target.rename(aside)
    staging.rename(target)
    fsync_directory(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory beside ``target``; when the block ends normally it becomes ``target``.

    A block that raises (or a process that dies) leaves ``target`` as it was; the stale staging directory is
    removed by the next attempt.
    """
    staging = partial_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        commit_directory(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_partials(directory: str | Path) -> list[Path]:
    """Delete leftovers of writes that were killed: unfinished ``.partial-*`` copies and ``.old-*`` directories a
    commit had moved aside but not yet removed (call at the start of a run that owns ``directory``)."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for path in [*directory.glob(PARTIAL_PREFIX + "*"), *directory.glob(ASIDE_PREFIX + "*")]:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def replace_with_symlink(path: Path, target: str) -> None:
    """Point ``path`` at ``target`` atomically: a link made under a temporary name, renamed over ``path``."""
    temporary = path.with_name(f".tmp-link-{os.getpid()}-{secrets.token_hex(4)}")
    os.symlink(target, temporary)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)  # the rename itself on disk
