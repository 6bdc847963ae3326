"""Micro-batching of concurrent queries: requests that arrive together share one forward per tower.

On a CPU a tower's forward over a handful of rows costs little more than over one (the fixed cost of a call, the
weights read once), so queries asked at the same moment are cheaper encoded together. ``BatchedTowers`` wraps the
served towers: each of ``encode_texts``, ``encode_hashtags`` and ``encode_images`` goes through a ``MicroBatcher``,
one worker thread per tower. The worker takes the first waiting request, gathers those that arrive within
``max_wait_ms`` of it (up to ``max_batch_size`` items), runs ONE forward over them all and hands each caller its
own rows. The wait counts from when the first request arrived, not from when the worker got to it: requests that
piled up during the previous forward leave at once, together, and a lone request waits at most ``max_wait_ms``.

Why a batcher of our own rather than Gradio's ``batch=True``: Gradio fails a whole batch for one bad input and needs
list-shaped handlers. Here each request is still checked on its own (``tweetmaker.search.query``) before it reaches
a tower; only the forward is shared, and a batch whose forward fails is retried one request at a time, so a bad
item fails its own caller only.

Rows are those of the same query asked alone: the tokenizer pads a batch to its longest text, but the attention
mask (and CLIP's causal mask) keep padding out of every real token, so embeddings agree to float rounding.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

DEFAULT_MAX_BATCH_SIZE = 16
DEFAULT_MAX_WAIT_MS = 3.0
Forward = Callable[[list[Any]], np.ndarray]


@dataclass
class BatchStats:
    """What a batcher did, for tests and the benchmark: coalescing happened when ``forwards < requests``."""

    requests: int = 0  # calls that went through the worker
    items: int = 0  # rows they asked for
    forwards: int = 0  # forwards the worker ran (a retried request's forward included)
    largest: int = 0  # most requests served by one forward
    retried: int = 0  # requests asked alone again after their batch's forward failed
    bypassed: int = 0  # calls of max_batch_size items or more, run in the caller's thread

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Request:
    items: list[Any]
    arrived: float
    future: Future


_STOP = object()


class MicroBatcher:
    """Coalesces concurrent calls of ``forward`` (rows in, one row out per item) into one call per batch.

    ``max_batch_size``: most items in one forward; a call of that many items or more gains nothing from company
    and runs directly in its caller's thread (an index build, an evaluation). ``max_wait_ms``: how long the first
    request of a batch waits for others. The worker thread starts with the first call; ``close`` stops it, and a
    closed batcher runs every call directly.
    """

    def __init__(self, forward: Forward, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 max_wait_ms: float = DEFAULT_MAX_WAIT_MS, name: str = "tweetmaker-batcher") -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be at least 0, got {max_wait_ms}")
        self.forward = forward
        self.max_batch_size = int(max_batch_size)
        self.max_wait_s = float(max_wait_ms) / 1000.0
        self.name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the worker's start, closing and the counters
        self._stats = BatchStats()
        self._worker: threading.Thread | None = None
        self._closed = False

    @property
    def stats(self) -> BatchStats:
        """A copy of the counters so far."""
        with self._lock:
            return BatchStats(**self._stats.as_dict())

    @property
    def pending(self) -> int:
        """Requests queued for the worker right now (approximate while others come and go)."""
        return self._queue.qsize()

    def __call__(self, items: Sequence[Any], *, direct: Forward | None = None) -> np.ndarray:
        """``forward(items)``, shared with whatever other calls arrive within ``max_wait_ms``.

        ``direct``: what runs instead of ``forward``, in the caller's thread, when the call bypasses the worker."""
        items = list(items)
        with self._lock:
            bypass = self._closed or not items or len(items) >= self.max_batch_size
            if bypass:
                self._stats.bypassed += 1
            else:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._worker.start()
                request = _Request(items, time.monotonic(), Future())
                self._queue.put(request)  # under the lock: never after close()'s stop marker
        if bypass:
            return (direct or self.forward)(items)
        return request.future.result()

    def close(self) -> None:
        """Serve what is queued, then stop the worker; later calls run directly. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
            if worker is not None:
                self._queue.put(_STOP)
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=30)

    # -- the worker ----------------------------------------------------------------------------------------------
    def _run(self) -> None:
        carried: _Request | None = None  # a request that did not fit the last batch: first of the next one
        while True:
            first = carried if carried is not None else self._queue.get()
            carried = None
            if first is _STOP:
                return
            batch, size, stop = [first], len(first.items), False
            deadline = first.arrived + self.max_wait_s
            while size < self.max_batch_size:
                try:
                    left = deadline - time.monotonic()
                    # Past the deadline, still take what is already queued, without waiting for more.
                    following = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is _STOP:
                    stop = True
                    break
                if size + len(following.items) > self.max_batch_size:
                    carried = following
                    break
                batch.append(following)
                size += len(following.items)
            self._serve(batch)
            if stop:
                if carried is not None:
                    self._serve([carried])
                return

    def _serve(self, batch: list[_Request]) -> None:
        """One forward for ``batch``; when it fails (with more than one request), each request alone."""
        with self._lock:
            self._stats.requests += len(batch)
            self._stats.items += sum(len(request.items) for request in batch)
            self._stats.largest = max(self._stats.largest, len(batch))
        try:
            rows = self._forward([item for request in batch for item in request.items])
            ends = np.cumsum([len(request.items) for request in batch])
            parts = [rows[end - len(request.items):end].copy() for request, end in zip(batch, ends)]
        except BaseException as error:  # noqa: BLE001 - delivered to the callers; the worker lives on
            if len(batch) == 1:
                batch[0].future.set_exception(error)
                return
            with self._lock:
                self._stats.retried += len(batch)
            for request in batch:
                self._serve_alone(request)
            return
        for request, part in zip(batch, parts):
            request.future.set_result(part)

    def _serve_alone(self, request: _Request) -> None:
        try:
            request.future.set_result(self._forward(request.items))
        except BaseException as error:  # noqa: BLE001 - this request's own failure, for its caller only
            request.future.set_exception(error)

    def _forward(self, items: list[Any]) -> np.ndarray:
        with self._lock:
            self._stats.forwards += 1
        rows = np.asarray(self.forward(items))  # whatever the forward returns, callers get their own rows of an array
        if len(rows) != len(items):
            raise RuntimeError(f"{self.name}: the forward returned {len(rows)} rows for {len(items)} items")
        return rows


class BatchedTowers:
    """``Towers`` whose three encode methods batch concurrent calls; every other attribute is the towers' own.

    Identity, ``embedding_dim``, ``backend``, processors, ``local_dir``, ``models()`` ... are read from the wrapped
    towers, so index checks and everything else see the same towers. Calls of ``max_batch_size`` items or more
    (index builds) go straight to the towers with their own ``batch_size``.
    """

    def __init__(self, towers: Any, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 max_wait_ms: float = DEFAULT_MAX_WAIT_MS) -> None:
        self.inner = towers
        self.max_batch_size = int(max_batch_size)
        self.max_wait_ms = float(max_wait_ms)

        def batcher(encode: Callable[..., np.ndarray], tower: str) -> MicroBatcher:
            # One forward per batch: a batch never exceeds the encode method's own batch_size.
            return MicroBatcher(lambda items: encode(items, batch_size=max(1, len(items))),
                                max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, name=f"batch-{tower}")

        self.batchers = {"text": batcher(towers.encode_texts, "text"),
                         "hashtag": batcher(towers.encode_hashtags, "hashtag"),
                         "image": batcher(towers.encode_images, "image")}

    def __getattr__(self, name: str) -> Any:
        # Only called for what this wrapper does not define itself; guard "inner" so a half-built object (copy,
        # pickle) cannot recurse.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"BatchedTowers({self.inner!r}, max_batch_size={self.max_batch_size}, max_wait_ms={self.max_wait_ms})"

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self._encode("text", texts, batch_size, self.inner.encode_texts)

    def encode_hashtags(self, hashtags: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self._encode("hashtag", hashtags, batch_size, self.inner.encode_hashtags)

    def encode_images(self, images: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        return self._encode("image", images, batch_size, self.inner.encode_images)

    def _encode(self, tower: str, items: Sequence[Any], batch_size: int, encode: Callable[..., np.ndarray]
                ) -> np.ndarray:
        items = list(items)
        if batch_size < 1:
            return encode(items, batch_size=batch_size)  # the towers' own error
        # Big calls keep their own batch_size (an index build's chunks), run in the caller's thread.
        return self.batchers[tower](items, direct=lambda rows: encode(rows, batch_size=batch_size))

    def stats(self) -> dict[str, dict[str, int]]:
        """Each tower's ``BatchStats`` as a dict: ``{"text": {...}, "hashtag": {...}, "image": {...}}``."""
        return {tower: batcher.stats.as_dict() for tower, batcher in self.batchers.items()}

    def close(self) -> None:
        """Stop the worker threads (queued requests are served first); later calls run directly."""
        for batcher in self.batchers.values():
            batcher.close()


def batched_towers(towers: Any, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                   max_wait_ms: float = DEFAULT_MAX_WAIT_MS) -> Any:
    """``towers`` wrapped in ``BatchedTowers``; as they are when ``max_batch_size`` is 1 (batching off) or they are
    batched already."""
    if max_batch_size <= 1 or isinstance(towers, BatchedTowers):
        return towers
    return BatchedTowers(towers, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)


def unbatched(towers: Any) -> Any:
    """The towers under a ``BatchedTowers`` (``towers`` themselves otherwise): for work that should not wait."""
    return towers.inner if isinstance(towers, BatchedTowers) else towers
