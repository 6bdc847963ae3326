"""Embedding a build's batches with the work overlapped: a reader thread runs ahead of the towers.

For each batch the reader thread fetches the rows, hands them over at once (the text and hashtag towers need only
the rows, so they start while the images are still being decoded), then decodes the batch's images, stores their
copies and preprocesses them in chunks that the image tower takes as they come. While the towers embed one batch and
its records are written, the reader is already on the next one. Decoding, resizing and JPEG encoding release the GIL,
so on a CPU they run beside the towers' forward rather than before it.

Memory stays bounded: the reader is at most one batch of rows and ``CHUNKS_AHEAD`` preprocessed chunks ahead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tweetmaker.index.corpus import Corpus, decode_row_image, image_file_name, record_metadata
from tweetmaker.index.layout import MODALITIES
from tweetmaker.index.storage import write_image_copy

if TYPE_CHECKING:
    import torch

    from tweetmaker.index.writer import IndexWriter
    from tweetmaker.towers import Towers

IMAGE_CHUNK = 32  # images preprocessed and embedded together (Towers.encode_images' own batch size)
CHUNKS_AHEAD = 4  # preprocessed chunks the reader may hold ready: 4 x 32 x 3 x 224 x 224 float32 = 77 MB
_DONE = object()
_POLL_S = 0.2  # how often a blocked reader checks whether the build stopped


@dataclass
class EmbeddedBatch:
    """One batch's records, ready to write: every id with its metadata, and per modality the rows that have it
    (blank texts and unreadable images have none) with their vectors. Plain data, so it can travel between
    processes of a sharded build."""

    ids: list[str]
    metadatas: list[dict[str, Any]]
    vectors: dict[str, tuple[list[int], np.ndarray]] = field(default_factory=dict)
    skipped_images: list[str] = field(default_factory=list)

    def write(self, writer: IndexWriter) -> None:
        """Upsert the records, image collection first (``MODALITIES`` order): its records' files are already stored."""
        for modality in MODALITIES:
            rows, vectors = self.vectors.get(modality, ([], None))
            if rows:
                writer.add([self.ids[i] for i in rows], {modality: vectors}, [self.metadatas[i] for i in rows])


class _Batch:
    """A batch in flight: its rows at once, its images' pixel chunks as the reader makes them."""

    def __init__(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        self.rows = rows
        self.chunks: queue.Queue[Any] = queue.Queue(maxsize=CHUNKS_AHEAD)
        self.decoded: list[bool] = [False] * len(rows)


class BatchReader:
    """Reads ``batches`` (lists of corpus positions) in a background thread, ahead of the towers; see the module.

    Use it as a context manager: leaving it early (an error, ``max_batches``) stops the thread.
    """

    def __init__(self, corpus: Corpus, batches: Sequence[Sequence[int]], towers: Towers, images_dir: Path | None,
                 image_max_side: int) -> None:
        self.corpus, self.batches, self.towers = corpus, [list(batch) for batch in batches], towers
        self.images_dir, self.image_max_side = images_dir, image_max_side
        self._ready: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-batch-reader", daemon=True)

    def __enter__(self) -> BatchReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator[_Batch]:
        for _ in self.batches:
            batch = self._ready.get()
            if isinstance(batch, BaseException):
                raise batch
            yield batch

    # -- the reader thread -----------------------------------------------------------------------------------------
    def _put(self, target: queue.Queue[Any], item: Any) -> bool:
        """Put ``item`` once there is room; False when the build stopped meanwhile."""
        while not self._stop.is_set():
            try:
                target.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        batch: _Batch | None = None
        try:
            for positions in self.batches:
                batch = None  # an error reading the rows goes where the consumer waits for the next batch
                batch = _Batch(self.corpus.rows(positions))
                if not self._put(self._ready, batch):
                    return
                for start in range(0, len(batch.rows), IMAGE_CHUNK):
                    if not self._put(batch.chunks, self._prepare_chunk(batch, start)):
                        return
                if not self._put(batch.chunks, _DONE):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(batch.chunks if batch is not None else self._ready, error)

    def _prepare_chunk(self, batch: _Batch, start: int) -> tuple[list[int], torch.Tensor | None]:
        """Decode the chunk's images, store their copies (before any record names them), preprocess them."""
        kept, images = [], []
        for offset, (_, row) in enumerate(batch.rows[start:start + IMAGE_CHUNK]):
            image = decode_row_image(row)
            if image is None:
                continue
            if self.images_dir is not None:
                write_image_copy(image, self.images_dir / image_file_name(str(row["tweet_id"])), self.image_max_side)
            kept.append(start + offset)
            images.append(image)
        for position in kept:
            batch.decoded[position] = True
        return kept, (self.towers.preprocess_images(images) if images else None)


def embed(batch: _Batch, towers: Towers, attribute_names: Sequence[str]) -> EmbeddedBatch:
    """Embed a batch the reader handed over: the text towers first (their inputs are ready), then the image chunks
    as the reader preprocesses them."""
    texts = [row.get("text") or "" for _, row in batch.rows]
    tags = [row.get("hashtags") or "" for _, row in batch.rows]
    vectors: dict[str, tuple[list[int], np.ndarray]] = {}
    for modality, inputs, encode in (("text", texts, towers.encode_texts), ("hashtag", tags, towers.encode_hashtags)):
        rows = [i for i, value in enumerate(inputs) if value.strip()]
        if rows:
            vectors[modality] = (rows, np.asarray(encode([inputs[i] for i in rows]), dtype=np.float32))
    image_rows, image_vectors = [], []
    while (chunk := batch.chunks.get()) is not _DONE:
        if isinstance(chunk, BaseException):
            raise chunk
        kept, pixel_values = chunk
        if kept:
            image_rows += kept
            image_vectors.append(towers.encode_pixel_values(pixel_values))
    if image_rows:
        vectors["image"] = (image_rows, np.concatenate(image_vectors).astype(np.float32, copy=False))
    ids = [str(row["tweet_id"]) for _, row in batch.rows]
    metadatas = [record_metadata(row, split, attribute_names, image_file_name(ids[i]) if batch.decoded[i] else "")
                 for i, (split, row) in enumerate(batch.rows)]
    skipped = [ids[i] for i in range(len(ids)) if not batch.decoded[i]]
    return EmbeddedBatch(ids, metadatas, vectors, skipped)
