"""Real write failures for subprocesses under test: a directory they may not write, a file size limit, a full disk.

Each ``preexec_*`` function runs in the child between fork and exec (``subprocess.run(..., preexec_fn=...)``), so
the code under test is untouched and meets the failure the kernel itself reports (EACCES, EFBIG, ENOSPC).
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root write, read and chmod any file regardless of mode.
_FILE_POWERS = (1, 2, 3)


def preexec_without_root_file_powers() -> None:
    """Make the child obey file permissions even as root, as tests run as root here (chmod does not stop root).

    Dropping the capabilities from the bounding set before exec leaves the new program uid 0 (it still reads the
    interpreter and packages under /root, which it owns) but without the power to override modes. Nothing to drop
    for an ordinary user, who obeys file modes anyway.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in _FILE_POWERS:
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            os._exit(97)  # the test then fails on the exit status instead of running with full powers


def make_unwritable(root: Path) -> None:
    """Owned by someone else (nobody), read-only for everyone: a directory this user cannot write to."""
    for path in [root, *root.rglob("*")]:
        if os.geteuid() == 0:
            os.lchown(path, 65534, 65534)
        if not path.is_symlink():
            path.chmod(0o555 if path.is_dir() else 0o444)


def make_writable_again(root: Path) -> None:
    """Undo ``make_unwritable`` so the test's temporary directory can be cleaned up (and inspected)."""
    uid, gid = os.geteuid(), os.getegid()
    for path in [root, *root.rglob("*")]:
        if os.geteuid() == 0:
            os.lchown(path, uid, gid)
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def preexec_file_size_limit(max_bytes: int) -> Callable[[], None]:
    """A child whose files cannot grow past ``max_bytes`` (``ulimit -f``): writes past it fail with EFBIG.

    SIGXFSZ is ignored so the write fails with an error instead of killing the process (Python ignores it too).
    """

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return preexec


def private_tmpfs_available() -> str | None:
    """None when a tmpfs can be mounted in a private mount namespace (``unshare -m``), else why not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "no unshare command"
    probe = subprocess.run([unshare, "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, text=True, timeout=60)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs here: {probe.stderr.strip()}"


def run_in_private_mount_namespace(script: str, args: Sequence[str], workdir: Path, *, cwd: Path,
                                   env: Mapping[str, str] | None = None, timeout: float = 900
                                   ) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """Run ``sh -c SCRIPT sh ARGS...`` in a private mount namespace (``unshare --mount``), where it may mount a tmpfs.

    The script finds two directories in its environment: ``$DISK``, empty, to mount the tmpfs on, and ``$OUT``, for
    what must outlive the namespace (the tmpfs goes away with it). Returns ``(disk, out, the finished process)``.
    """
    disk, out = workdir / "disk", workdir / "out"
    disk.mkdir()
    out.mkdir()
    finished = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", *args], cwd=cwd,
                              env={**(env or os.environ), "DISK": str(disk), "OUT": str(out)}, capture_output=True,
                              text=True, timeout=timeout)
    return disk, out, finished
