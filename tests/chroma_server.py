"""Start and stop a real Chroma server (`chroma run`) on 127.0.0.1 for the server-mode tests.

The index and search tests run twice: against the embedded ``PersistentClient`` and through the
``--chroma_host`` path against this server. Each test gets a fresh collection prefix on the shared server.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import free_port


class ChromaServer:
    """`chroma run --host 127.0.0.1 --port P --path DIR` as a context manager; stopped (and reaped) on exit."""

    def __init__(self, path: str | Path, port: int | None = None) -> None:
        self.path = Path(path)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.path.parent / f"chroma-{self.port}.log"

    def start(self, timeout: float = 60.0) -> ChromaServer:
        executable = shutil.which("chroma")
        command = [executable] if executable else [sys.executable, "-c", "from chromadb.cli.cli import app; app()"]
        command += ["run", "--host", self.host, "--port", str(self.port), "--path", str(self.path)]
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        url = f"http://{self.host}:{self.port}/api/v2/heartbeat"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.process.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"chroma run did not answer on {url} within {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def __enter__(self) -> ChromaServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass
class Backend:
    """Where a test's collections live: the embedded database in the index directory, or a Chroma server."""

    name: str
    host: str | None = None
    port: int | None = None
    server: ChromaServer | None = None
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def restart(self) -> None:
        """Stop and start the server on the same data (persistence across a restart); nothing when embedded."""
        if self.server is not None:
            self.server.stop()
            self.server.start()

    def new_prefix(self) -> str:
        # One server serves many tests: each gets collections of its own.
        return f"t{next(self._numbers)}_" if self.host else ""

    def location(self, prefix: str) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "prefix": prefix}

    def cli_args(self, prefix: str) -> list[str]:
        if not self.host:
            return []
        return ["--chroma_host", self.host, "--chroma_port", str(self.port), "--collection_prefix", prefix]


def backend_fixture(request: Any, tmp_path_factory: Any) -> Iterator[Backend]:
    """Body of a module-scoped fixture parametrized with ``["embedded", "server"]``."""
    if request.param == "embedded":
        yield Backend("embedded")
        return
    with ChromaServer(tmp_path_factory.mktemp("chroma_server") / "data") as server:
        yield Backend("server", server.host, server.port, server)
