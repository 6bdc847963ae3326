"""Run a Python script and SIGKILL it the moment it opens, for writing, a file whose path contains a marker.

    python tests/faults_kill_on_write.py MARKER SCRIPT [ARGS...]

A ``kill -9`` that lands at a chosen point of a real run (say, half-way through writing a checkpoint) without
changing the code under test: Python's audit hook announces every ``open`` before it happens, and the process
kills itself right there, as the kernel would kill it for a ``kill -9`` from outside.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys


def main() -> None:
    marker, script, *args = sys.argv[1:]

    def hook(event: str, event_args: tuple) -> None:
        if event != "open" or not isinstance(event_args[0], (str, bytes, os.PathLike)):
            return
        mode = str(event_args[1] or "r")  # os.open reports no mode: only Python-level opens are matched
        if any(flag in mode for flag in "wax+") and marker in os.fsdecode(event_args[0]):
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
