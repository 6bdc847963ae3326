"""Run a Python script and SIGKILL it the moment it writes where a marker says.

    python tests/faults_kill_on_write.py MARKER SCRIPT [ARGS...]

MARKER is one of
- ``TEXT``: the script opens, for writing, a file whose path contains TEXT (say, half-way through a checkpoint);
- ``rename:SUFFIX``: the script renames (``os.rename`` / ``os.replace``) something onto a path ending in SUFFIX (say,
  the step that publishes a new index generation), killed before the rename happens;
- ``rmtree:TEXT``: the script starts deleting a directory tree whose path contains TEXT.

A ``kill -9`` that lands at a chosen point of a real run without changing the code under test: Python's audit hook
announces each of these calls before it happens, and the process kills itself right there, as the kernel would kill
it for a ``kill -9`` from outside.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys


def _matches(marker: str, event: str, args: tuple) -> bool:
    kind, _, text = marker.partition(":") if marker.startswith(("rename:", "rmtree:")) else ("open", "", marker)
    if kind == "open" and event == "open":
        if not isinstance(args[0], (str, bytes, os.PathLike)):
            return False
        mode = str(args[1] or "r")  # os.open reports no mode: only Python-level opens are matched
        return any(flag in mode for flag in "wax+") and text in os.fsdecode(args[0])
    if kind == "rename" and event == "os.rename":
        return os.fsdecode(args[1]).endswith(text)
    if kind == "rmtree" and event == "shutil.rmtree":
        return text in os.fsdecode(args[0])
    return False


def main() -> None:
    marker, script, *args = sys.argv[1:]

    def hook(event: str, event_args: tuple) -> None:
        if _matches(marker, event, event_args):
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
