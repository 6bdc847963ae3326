"""The app as a user runs it, and the clients and threads that drive it.

``App`` starts ``python app.py`` in its own process on 127.0.0.1 and stamps each line of its output with the seconds
since start; ``ask`` and ``ask_http`` send one text -> image query through gradio_client or Gradio's REST API;
``concurrent`` runs calls from several threads at once. ``free_port`` is also the test suite's (tests/helpers.py
re-exports it: the tests may import the benchmarks, never the other way round).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.context import REPO_ROOT, Context, K
from tweetmaker.offline import OFFLINE_ENV

# Every app process this run started: the report lists them with their exit codes (all must be closed).
APPS_STARTED: list[dict[str, Any]] = []


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the servers started here bind to loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_env() -> dict[str, str]:
    """This process's environment, offline, for a child that imports the repository's code from its root."""
    return {**os.environ, **OFFLINE_ENV, "TWEETMAKER_REBUILD_STALE_INDEX": "false", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO_ROOT)}


def connect(url: str, process: subprocess.Popen, deadline: float) -> Any:
    """A gradio_client Client as soon as the app answers (the app only listens once its resources are loaded)."""
    from gradio_client import Client

    while True:
        if process.poll() is not None:
            raise RuntimeError(f"The app exited with code {process.returncode} before serving; see its log.")
        try:
            return Client(url, verbose=False, download_files=False, analytics_enabled=False)
        except Exception:  # noqa: BLE001 - not listening yet
            if time.perf_counter() > deadline:
                raise TimeoutError(f"The app at {url} did not come up in time") from None
            time.sleep(0.05)


def ask(client: Any, text: str) -> Any:
    """One text -> image query (k=10, no re-ranking) through gradio_client."""
    return client.predict(text, K, 0.0, 0.0, 0.0, api_name="/text_to_image")


def ask_http(http: Any, text: str) -> str:
    """The same query through Gradio's REST API (POST /call, then read the event stream), no gradio_client.

    gradio_client polls its message queue every 50 ms; this path shows what the server itself adds.
    """
    response = http.post("/gradio_api/call/text_to_image", json={"data": [text, K, 0.0, 0.0, 0.0]})
    response.raise_for_status()
    event_id = response.json()["event_id"]
    event = ""
    with http.stream("GET", f"/gradio_api/call/text_to_image/{event_id}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "error":
                    raise RuntimeError(f"The app answered with an error: {line}")
                return line
    raise RuntimeError("The event stream ended without a result")


def process_rss_bytes(pid: int) -> int:
    """Current resident memory of a process (``VmRSS`` in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"No VmRSS for process {pid}")


class App:
    """``python app.py`` in its own process on 127.0.0.1, as a user runs it; stopped by ``close``.

    Its output is read by a thread that stamps each line with the seconds since start (the phases of a start).
    """

    def __init__(self, ctx: Context, index_dir: Path, backend: str | None = None) -> None:
        self.backend = backend  # the app's --backend (None: the app's default)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = ctx.workdir / f"app-{self.port}.log"
        self.lines: list[tuple[float, str]] = []
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "app.py"), *ctx.app_argv(index_dir, self.port, backend)],
            cwd=REPO_ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.client: Any = None
        self.record = {"pid": self.process.pid, "url": self.url, "backend": backend, "returncode": None}
        APPS_STARTED.append(self.record)

    def _read(self) -> None:
        with open(self.log_path, "w") as log_file:
            for line in self.process.stdout:
                stamp = time.perf_counter() - self.started
                self.lines.append((stamp, line.rstrip()))
                log_file.write(f"{stamp:8.3f} {line}")

    def first_answer(self, text: str, timeout: float = 600.0) -> float:
        """Seconds from process start to the first answered text -> image query."""
        self.client = connect(self.url, self.process, self.started + timeout)
        connected = time.perf_counter() - self.started
        ask(self.client, text)
        answered = time.perf_counter() - self.started
        self.lines.append((connected, "<benchmark: gradio_client connected>"))
        self.lines.append((answered, "<benchmark: first answer received>"))
        return answered

    def rss_bytes(self) -> int:
        """The app process's resident memory now (``VmRSS``: current, not the peak)."""
        return process_rss_bytes(self.process.pid)

    def phases(self) -> dict[str, float]:
        """Seconds since process start at which the start-up's landmarks appeared."""
        landmarks = {
            "first output (imports done)": "",
            "loading towers": "Loading towers",
            "server listening": "Running on local URL",
            "gradio_client connected": "<benchmark: gradio_client connected>",
            "first answer": "<benchmark: first answer received>",
        }
        found: dict[str, float] = {}
        for name, marker in landmarks.items():
            stamp = next((stamp for stamp, line in self.lines if marker in line), None)
            if stamp is not None:
                found[name] = round(stamp, 3)
        return found

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        self.record["returncode"] = self.process.returncode


def concurrent(calls: Sequence[Callable[[int], Any]], per_worker: int) -> tuple[float, list[float]]:
    """Run each call ``per_worker`` times in its own thread, all at once; (wall seconds, per-call latencies)."""
    for number, call in enumerate(calls):  # one warm-up each, not timed
        call(10_000 + number)
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(calls) + 1)

    def worker(number: int, call: Callable[[int], Any]) -> None:
        barrier.wait()
        for i in range(per_worker):
            began = time.perf_counter()
            try:
                call(number * per_worker + i)
            except BaseException as error:  # noqa: BLE001 - reported after the join
                errors.append(error)
                return
            with lock:
                latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=worker, args=(n, call), daemon=True) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if errors:
        raise errors[0]
    return wall, latencies
