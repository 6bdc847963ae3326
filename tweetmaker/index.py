"""Chroma collections of the corpus: build (resumable, idempotent), open for reading, tune, push and pull.

One collection per modality (``image``, ``text``, ``hashtag``), ids = ``tweet_id``, embeddings from the
towers (Chroma's own embedding function is never used), cosine HNSW, and the tweet's metadata on every
record so any hit can be shown on its own. The images the app shows are downscaled copies kept under
``INDEX_DIR/images`` so the app needs neither the data set nor its original images.

An index directory looks like::

    INDEX_DIR/chroma/        the embedded Chroma database (absent when a Chroma server holds the collections)
    INDEX_DIR/images/        <sha1(tweet_id)>.jpg, downscaled copies of the tweets' images
    INDEX_DIR/manifest.json  a copy of the manifest, written when a build completes
    INDEX_DIR/.build.lock    held by the one process that may write (Chroma is not process-safe on a directory)

The manifest (stored in every collection's metadata, so it travels with the data it describes) records
the towers, the embedding size, the data set's content hash and a schema version; an index whose manifest
does not match what the caller has raises ``StaleIndexError`` instead of answering with wrong neighbours.

Command line::

    python -m tweetmaker.index build --dataset SRC --towers DIR_OR_ID --index_dir DIR [--rebuild]
        [--chroma_host H --chroma_port P] [--split train] [--batch_size 256]
    python -m tweetmaker.index info --index_dir DIR [--chroma_host H --chroma_port P]
    python -m tweetmaker.index tune --index_dir DIR [--modality image]
    python -m tweetmaker.index push --index_dir DIR --repo_id OWNER/NAME [--private]
    python -m tweetmaker.index pull --repo_id OWNER/NAME --index_dir DIR [--revision REV]
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from tweetmaker.errors import TweetMakerError

if TYPE_CHECKING:  # keep `import tweetmaker.index` cheap: chromadb, datasets and torch load on first use
    import datasets
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from PIL import Image

    from tweetmaker.towers import Towers

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MODALITIES = ("image", "text", "hashtag")
MANIFEST_KEY = "tweetmaker_manifest"
COMPLETED_KEY = "tweetmaker_completed"
IMAGES_DIRNAME = "images"
CHROMA_DIRNAME = "chroma"
MANIFEST_FILENAME = "manifest.json"
LOCK_FILENAME = ".build.lock"
# Long side of the image copies the app shows: enough for a result card, small enough that an index of
# tens of thousands of tweets stays a quick download for a Space.
IMAGE_MAX_SIDE = 384
# Rows embedded and upserted per step. Also the unit of resumption: a killed build loses at most one step.
DEFAULT_BATCH_SIZE = 256
# Chosen by measurement (`python -m tweetmaker.index tune` / `measure_hnsw`, tie-aware recall@10 against exact
# search, 300 queries): 1.0 on the twin's image, text and hashtag collections (1,100 tweets), 1.0 on 10,000
# clustered 512-d vectors (CLIP-sized, topical) at ~2 ms per query; Chroma's default (16 neighbours, ef 100)
# also reaches 1.0 there, but only 0.72 on isotropic 512-d noise (HNSW's worst case), where these reach 0.97.
# The extra build time (about 2x) is paid once per build; ef_search can be raised later without a rebuild.
DEFAULT_HNSW: dict[str, Any] = {"space": "cosine", "ef_construction": 200, "ef_search": 100, "max_neighbors": 32}


class TweetIndexError(TweetMakerError):
    """Base class of the index errors; the message says what happened and what to run."""


class StaleIndexError(TweetIndexError):
    """The index was built from other towers / data / schema, or its build never completed."""


class IncompleteIndexError(StaleIndexError):
    """The build was interrupted: running the same build again resumes it (no --rebuild needed)."""


class IndexNotFoundError(TweetIndexError, FileNotFoundError):
    """No index at the given place."""


class IndexLockedError(TweetIndexError):
    """Another process is building (writing) this index."""


class IndexNotWritableError(TweetIndexError, PermissionError):
    """The index directory cannot be written by this process (its permissions, or a read-only disk)."""


class IndexDiskFullError(TweetIndexError, OSError):
    """The disk under the index directory is full (or a file hit the process's size limit); resumable once fixed."""


class IndexUnavailableError(TweetIndexError):
    """The Chroma server did not answer; nothing is lost, and the same call works once it is back."""


def _server_answers(method):
    """Turn a Chroma server that cannot be reached into ``IndexUnavailableError`` (the app shows its message).

    The HTTP client holds no connection state, so nothing needs reopening: the next call after the server is back
    simply succeeds, and the app recovers without a restart.
    """
    @functools.wraps(method)
    def wrapped(self: TweetIndex, *args: Any, **kwargs: Any):
        import httpx  # chromadb's HTTP client; imported here to keep `import tweetmaker.index` cheap

        try:
            return method(self, *args, **kwargs)
        except httpx.TransportError as error:
            raise IndexUnavailableError(
                f"The Chroma server at {self.location} did not answer ({type(error).__name__}: {error}). "
                "It may be restarting: try again in a moment."
            ) from error
    return wrapped


# --------------------------------------------------------------------------------------------- manifest


@dataclass
class Manifest:
    """What built an index. Two manifests are compatible when ``differences`` is empty."""

    towers: dict[str, Any]
    embedding_dim: int
    dataset: dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    hnsw: dict[str, Any] = field(default_factory=dict)
    built_at: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        known = {name: raw[name] for name in cls.__dataclass_fields__ if name in raw}
        return cls(**known)

    def differences(self, expected: Manifest, *, check_dataset: bool = True) -> list[str]:
        """Human-readable reasons why an index with this manifest cannot serve ``expected``."""
        reasons = []
        if self.schema_version != expected.schema_version:
            reasons.append(f"index schema version {self.schema_version}, this code writes {expected.schema_version}")
        if towers_key(self.towers) != towers_key(expected.towers):
            reasons.append(f"built with towers {describe_towers(self.towers)}, not {describe_towers(expected.towers)}")
        if self.embedding_dim != expected.embedding_dim:
            reasons.append(f"embedding size {self.embedding_dim}, the towers produce {expected.embedding_dim}")
        if check_dataset and self.dataset.get("content_hash") != expected.dataset.get("content_hash"):
            mine, theirs = self.dataset, expected.dataset
            reasons.append(
                f"built from data set {mine.get('source')!r} (content {short_hash(mine.get('content_hash'))}), "
                f"not {theirs.get('source')!r} (content {short_hash(theirs.get('content_hash'))})"
            )
        return reasons


def short_hash(value: Any) -> str:
    return str(value)[:12] if value else "unknown"


def towers_key(identity: dict[str, Any]) -> str:
    """What makes two towers the same: their content hash when known, else their whole identity."""
    for key in ("content_hash", "sha256", "hash"):
        if identity.get(key):
            return str(identity[key])
    return json.dumps(identity, sort_keys=True, default=str)


def describe_towers(identity: dict[str, Any]) -> str:
    source = identity.get("source", "?")
    revision = identity.get("revision")
    content = identity.get("content_hash") or identity.get("sha256") or identity.get("hash")
    text = str(source) + (f"@{revision}" if revision else "")
    return text + (f" (content {short_hash(content)})" if content else "")


def towers_manifest_fields(towers: Towers) -> tuple[dict[str, Any], int]:
    identity = dict(getattr(towers, "identity", None) or {})
    return identity, int(towers.embedding_dim)


# --------------------------------------------------------------------------------------------- clients


def make_client(index_dir: str | Path | None = None, host: str | None = None, port: int | None = None) -> ClientAPI:
    """A Chroma client: a server at ``host:port`` when a host is given, else the database in ``INDEX_DIR/chroma``."""
    import chromadb
    from chromadb.config import Settings
    from chromadb.errors import InternalError

    settings = Settings(anonymized_telemetry=False)
    if host:
        return chromadb.HttpClient(host=host, port=int(port or 8000), settings=settings)
    if index_dir is None:
        raise ValueError("Pass an index directory, or a Chroma server host and port.")
    database = Path(index_dir) / CHROMA_DIRNAME
    try:
        return chromadb.PersistentClient(path=str(database), settings=settings)
    except InternalError as error:
        if "readonly" not in str(error):
            raise
        # Chroma writes to its database even to open it for reading, so a read-only copy cannot be served as is.
        raise IndexNotWritableError(
            f"The index database in {str(database)!r} cannot be opened: Chroma needs write access to it even to "
            "read. Make that directory writable by this user, or copy the index to a writable directory and pass "
            "that as --index_dir. Nothing in it was changed."
        ) from None


def collection_name(modality: str, prefix: str = "") -> str:
    return f"{prefix}{modality}"


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index directory's writer lock; fail at once when another build holds it.

    An OS file lock (not a pid file) so that a builder killed with SIGKILL releases it with its process.
    """
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / LOCK_FILENAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise IndexLockedError(
            f"Another process is building the index in {str(index_dir)!r}; wait for it to finish "
            "(one writer at a time: Chroma is not safe for several processes on one directory)."
        ) from None
    try:
        yield
    finally:
        lock.release()


def is_locked(index_dir: Path) -> bool:
    """Whether a builder holds the directory's lock right now."""
    from filelock import FileLock, Timeout

    if not (index_dir / LOCK_FILENAME).exists():
        return False
    lock = FileLock(str(index_dir / LOCK_FILENAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:  # a read-only directory (a pulled snapshot on a read-only disk): nobody can be writing
        return False
    lock.release()
    return False


# --------------------------------------------------------------------------------------------- reading


@dataclass
class Hit:
    """One neighbour: the tweet id, cosine similarity to the query, and the tweet's metadata."""

    id: str
    similarity: float
    metadata: dict[str, Any]
    embedding: np.ndarray | None = None


class TweetIndex:
    """Read access to a built index: the three collections, their manifest and the stored images.

    Made by ``open_index``. It never writes, so the app can hold it while nothing else builds.
    """

    def __init__(
        self,
        client: ClientAPI,
        collections: dict[str, Collection],
        manifest: Manifest,
        index_dir: Path | None,
        location: str,
    ) -> None:
        self.client = client
        self.collections = collections
        self.manifest = manifest
        self.index_dir = index_dir
        self.location = location
        self.completed = True

    @property
    def embedding_dim(self) -> int:
        return self.manifest.embedding_dim

    @_server_answers
    def count(self, modality: str) -> int:
        return self.collections[modality].count()

    def check_towers(self, towers: Towers) -> None:
        """Raise ``StaleIndexError`` unless ``towers`` are the ones that built this index."""
        identity, dim = towers_manifest_fields(towers)
        expected = Manifest(towers=identity, embedding_dim=dim, dataset={})
        reasons = self.manifest.differences(expected, check_dataset=False)
        if reasons:
            raise StaleIndexError(_stale_message(self.location, reasons))

    @_server_answers
    def query(self, modality: str, embeddings: np.ndarray, k: int, *, with_embeddings: bool = False
              ) -> list[list[Hit]]:
        """The ``k`` nearest tweets of each query row (fewer when the collection is smaller)."""
        queries = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        collection = self.collections[modality]
        size = collection.count()
        if size == 0 or k <= 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        include = ["metadatas", "distances"] + (["embeddings"] if with_embeddings else [])
        result = collection.query(query_embeddings=queries, n_results=min(int(k), size), include=include)
        hits = []
        for row in range(len(queries)):
            row_embeddings = result["embeddings"][row] if with_embeddings else None
            hits.append([
                Hit(
                    id=tweet_id,
                    similarity=1.0 - float(distance),  # Chroma's cosine distance is 1 - cosine similarity
                    metadata=dict(metadata or {}),
                    embedding=None if row_embeddings is None else np.asarray(row_embeddings[i], dtype=np.float32),
                )
                for i, (tweet_id, distance, metadata) in enumerate(
                    zip(result["ids"][row], result["distances"][row], result["metadatas"][row])
                )
            ])
        return hits

    @_server_answers
    def get(self, modality: str, ids: Sequence[str], *, with_embeddings: bool = True) -> dict[str, Hit]:
        """Records by id (missing ids are left out); ``similarity`` is NaN as there is no query."""
        collection = self.collections[modality]
        found: dict[str, Hit] = {}
        ids = list(dict.fromkeys(ids))
        step = max(1, self.client.get_max_batch_size())
        for start in range(0, len(ids), step):
            include = ["metadatas"] + (["embeddings"] if with_embeddings else [])
            result = collection.get(ids=ids[start:start + step], include=include)
            for i, tweet_id in enumerate(result["ids"]):
                embedding = np.asarray(result["embeddings"][i], dtype=np.float32) if with_embeddings else None
                found[tweet_id] = Hit(tweet_id, math.nan, dict(result["metadatas"][i] or {}), embedding)
        return found

    @_server_answers
    def all_embeddings(self, modality: str) -> tuple[list[str], np.ndarray]:
        """Every id and embedding of a collection, page by page (for tuning, evaluation and checks)."""
        collection = self.collections[modality]
        ids: list[str] = []
        rows: list[np.ndarray] = []
        step = max(1, self.client.get_max_batch_size())
        offset = 0
        while True:
            page = collection.get(include=["embeddings"], limit=step, offset=offset)
            if not page["ids"]:
                break
            ids.extend(page["ids"])
            rows.append(np.asarray(page["embeddings"], dtype=np.float32))
            offset += len(page["ids"])
        matrix = np.concatenate(rows) if rows else np.zeros((0, self.embedding_dim), np.float32)
        return ids, matrix

    def image_path(self, metadata: dict[str, Any]) -> Path | None:
        """The stored copy of a hit's image, or None when there is none."""
        name = metadata.get("image")
        if not name or self.index_dir is None:
            return None
        path = self.index_dir / IMAGES_DIRNAME / str(name)
        return path if path.is_file() else None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _stale_message(location: str, reasons: Sequence[str]) -> str:
    return (
        f"The index at {location} does not match: " + "; ".join(reasons) + ". Rebuild it with "
        "`python -m tweetmaker.index build --dataset ... --towers ... --index_dir ... --rebuild` "
        "(or pull the index built for these towers)."
    )


def _location(index_dir: Path | None, host: str | None, port: int | None, prefix: str) -> str:
    if host:
        return f"chroma://{host}:{port or 8000}" + (f" (collections {prefix}*)" if prefix else "")
    return repr(str(index_dir))


def open_index(
    index_dir: str | Path | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    prefix: str = "",
    towers: Towers | None = None,
    require_complete: bool = True,
) -> TweetIndex:
    """Open a built index for reading (the app's entry point).

    Checks that all three collections exist with one manifest, that their build completed, and, when
    ``towers`` are given, that those towers built it; raises ``IndexNotFoundError`` / ``StaleIndexError``
    with a message that says what to run. ``index_dir`` is still where the images are in server mode.
    """
    from chromadb.errors import NotFoundError

    index_path = Path(index_dir) if index_dir is not None else None
    location = _location(index_path, host, port, prefix)
    if not host:
        if index_path is None or not (index_path / CHROMA_DIRNAME).is_dir():
            raise IndexNotFoundError(
                f"No index at {location}. Build one with `python -m tweetmaker.index build` or fetch one with "
                "`python -m tweetmaker.index pull`."
            )
        if is_locked(index_path):
            raise IndexLockedError(f"The index at {location} is being built right now; open it when the build ends.")
    client = make_client(index_path, host, port)
    try:
        collections = {}
        manifests = {}
        completed = {}
        for modality in MODALITIES:
            try:
                collection = client.get_collection(collection_name(modality, prefix))
            except (NotFoundError, ValueError):
                raise IndexNotFoundError(
                    f"The index at {location} has no {modality!r} collection: it was never built or its build was "
                    "interrupted while rebuilding. Run `python -m tweetmaker.index build` to finish it."
                ) from None
            metadata = collection.metadata or {}
            if MANIFEST_KEY not in metadata:
                raise StaleIndexError(f"Collection {collection.name!r} at {location} was not built by TweetMaker.")
            collections[modality] = collection
            manifests[modality] = metadata[MANIFEST_KEY]
            completed[modality] = bool(metadata.get(COMPLETED_KEY))
        manifest = Manifest.from_json(manifests["image"])
        for modality in MODALITIES[1:]:
            if Manifest.from_json(manifests[modality]).differences(manifest):
                raise StaleIndexError(_stale_message(
                    location, ["its collections come from different builds (an interrupted --rebuild); run it again"]
                ))
        index = TweetIndex(client, collections, manifest, index_path, location)
        index.completed = all(completed.values())
        if require_complete and not index.completed:
            raise IncompleteIndexError(
                f"The index at {location} is incomplete: its build was interrupted. Run the same "
                "`python -m tweetmaker.index build` command again to finish it (it resumes where it stopped)."
            )
        if towers is not None:
            index.check_towers(towers)
    except BaseException:
        client.close()
        raise
    return index


# --------------------------------------------------------------------------------------------- corpus


def image_file_name(tweet_id: str) -> str:
    """The stored image's file name: a hash, as tweet ids may hold characters no file system likes."""
    return hashlib.sha1(tweet_id.encode("utf-8")).hexdigest()[:24] + ".jpg"


def to_epoch_seconds(value: Any) -> int | None:
    """A tweet's date as integer seconds since 1970 (UTC), so Chroma can filter and we can rank by recency."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else int(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(moment.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp())
    if isinstance(value, str) and value.strip():
        import pandas as pd

        try:
            moment = pd.Timestamp(value.strip())
        except (ValueError, TypeError):
            return None
        if pd.isna(moment):
            return None
        if moment.tzinfo is None:
            moment = moment.tz_localize("UTC")
        return int(moment.timestamp())
    if hasattr(value, "timestamp"):  # pandas / numpy datetime-likes
        with contextlib.suppress(Exception):
            return to_epoch_seconds(value.to_pydatetime())
    return None


def _int_or_zero(value: Any) -> int:
    try:
        return 0 if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)
    except (TypeError, ValueError):
        return 0


def record_metadata(row: dict[str, Any], split: str, attribute_names: Sequence[str], image_name: str) -> dict:
    """The metadata stored with a tweet in every collection (Chroma refuses None and empty lists)."""
    metadata: dict[str, Any] = {
        "text": row.get("text") or "",
        "hashtags": row.get("hashtags") or "",
        "likes": _int_or_zero(row.get("likes")),
        "retweets": _int_or_zero(row.get("retweets")),
        "replies": _int_or_zero(row.get("replies")),
        "image": image_name,
        "split": split,
    }
    tags = [str(tag) for tag in (row.get("hashtag_list") or []) if str(tag)]
    if tags:
        metadata["hashtag_list"] = tags
    epoch = to_epoch_seconds(row.get("date"))
    if epoch is not None:
        metadata["date"] = epoch
    if row.get("username"):
        metadata["username"] = str(row["username"])
    for name in attribute_names:
        value = row.get(name)
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            value = value.item()
        if isinstance(value, (str, int, float, bool)):
            metadata[name] = value
    return metadata


class Corpus:
    """The rows to index: the chosen splits of a data set, images left undecoded until a batch needs them."""

    def __init__(
        self, dataset: datasets.Dataset | datasets.DatasetDict, source: str, split: str | None = None
    ) -> None:
        import datasets as hf_datasets

        from tweetmaker.data import attribute_columns

        if isinstance(dataset, hf_datasets.DatasetDict):
            wanted = [part.strip() for part in split.split(",")] if split else list(dataset.keys())
            missing = [name for name in wanted if name not in dataset]
            if missing:
                raise KeyError(f"Data set {source!r} has no split {missing[0]!r}; it has {sorted(dataset)}.")
            parts = [(name, dataset[name]) for name in wanted]
        else:
            parts = [(split or "train", dataset)]
        self.source = source
        self.parts = [(name, part.cast_column("image", hf_datasets.Image(decode=False))) for name, part in parts]
        self.attribute_names = attribute_columns(parts[0][1]) if parts else []
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.hashtags: list[str] = []
        self.locations: list[tuple[int, int]] = []  # (part, row) of each corpus row
        for part_number, (_, part) in enumerate(self.parts):
            columns = part.select_columns(["tweet_id", "text", "hashtags"])
            for row_number, row in enumerate(columns):
                self.ids.append(str(row["tweet_id"]))
                self.texts.append(row["text"] or "")
                self.hashtags.append(row["hashtags"] or "")
                self.locations.append((part_number, row_number))
        if len(set(self.ids)) != len(self.ids):
            duplicate = next(tweet_id for tweet_id in self.ids if self.ids.count(tweet_id) > 1)
            raise ValueError(f"Data set {source!r} repeats tweet_id {duplicate!r}; ids must be unique to index it.")

    def __len__(self) -> int:
        return len(self.ids)

    def expected_ids(self, modality: str) -> set[str]:
        """Ids a complete index holds in a collection. Blank texts / hashtags get no text / hashtag vector:
        the embedding of "" is one point shared by all of them, a neighbour to everything and about nothing."""
        if modality == "text":
            return {tweet_id for tweet_id, text in zip(self.ids, self.texts) if text.strip()}
        if modality == "hashtag":
            return {tweet_id for tweet_id, raw in zip(self.ids, self.hashtags) if raw.strip()}
        return set(self.ids)

    def content_hash(self) -> str:
        """sha256 over ids, texts, hashtags and image bytes: the same data gives the same index wherever it
        was loaded from (a local copy, the Hub), and any changed row makes the index stale."""
        digest = hashlib.sha256()
        for _, part in self.parts:
            for batch in part.select_columns(["tweet_id", "text", "hashtags", "image"]).iter(batch_size=512):
                for tweet_id, text, hashtags, image in zip(
                    batch["tweet_id"], batch["text"], batch["hashtags"], batch["image"]
                ):
                    for value in (str(tweet_id), text or "", hashtags or ""):
                        encoded = value.encode("utf-8")
                        digest.update(len(encoded).to_bytes(8, "little") + encoded)
                    image_bytes = (image or {}).get("bytes") or str((image or {}).get("path") or "").encode("utf-8")
                    digest.update(len(image_bytes).to_bytes(8, "little") + image_bytes)
        return digest.hexdigest()

    def rows(self, positions: Sequence[int]) -> list[tuple[str, dict[str, Any]]]:
        """(split, row) of the given corpus positions, images as {"bytes", "path"} dicts."""
        by_part: dict[int, list[tuple[int, int]]] = {}
        for order, position in enumerate(positions):
            part_number, row_number = self.locations[position]
            by_part.setdefault(part_number, []).append((order, row_number))
        out: list[Any] = [None] * len(positions)
        for part_number, wanted in by_part.items():
            name, part = self.parts[part_number]
            selected = part.select([row_number for _, row_number in wanted])
            for (order, _), row in zip(wanted, selected):
                out[order] = (name, row)
        return out


def _decode_row_image(row: dict[str, Any]) -> Image.Image | None:
    from tweetmaker.data import ImageDecodeError, decode_image

    image = row.get("image") or {}
    source = image.get("bytes") or image.get("path")
    if not source:
        return None
    try:
        return decode_image(source)
    except ImageDecodeError as error:
        logger.warning("tweet %s: image left out of the index: %s", row.get("tweet_id"), error)
        return None


def _write_image_atomically(image: Image.Image, path: Path, max_side: int) -> None:
    copy = image.copy()
    copy.thumbnail((max_side, max_side))
    _write_atomically(path, lambda stream: copy.save(stream, format="JPEG", quality=88), suffix=".jpg")


def _write_text_atomically(path: Path, text: str) -> None:
    _write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))


def _write_atomically(path: Path, write: Callable[[BinaryIO], Any], suffix: str = "") -> None:
    """Write through a temporary file and rename it into place: a reader (or a resumed build) sees the whole
    file or none. The file gets the permissions a plain ``open`` would (mkstemp makes it 0600), so an app run by
    another user than the builder can still read the index."""
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    """This process's umask, read without changing it (``os.umask`` would set it to 0 for every thread meanwhile)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022  # no /proc (not Linux): the common default


# --------------------------------------------------------------------------------------------- building


@dataclass
class BuildReport:
    """What a build did: rows embedded this run, per-collection counts, and whether the index is complete."""

    location: str
    embedded: int
    counts: dict[str, int]
    completed: bool
    skipped_images: list[str] = field(default_factory=list)
    seconds: float = 0.0
    up_to_date: bool = False


def _list_ids(collection: Collection, step: int) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        page = collection.get(include=[], limit=step, offset=offset)
        if not page["ids"]:
            return ids
        ids.update(page["ids"])
        offset += len(page["ids"])


def _prepare_collections(
    client: ClientAPI, manifest: Manifest, prefix: str, location: str
) -> tuple[dict[str, Collection], Manifest]:
    """Open the collections, refusing ones built for something else, and create the missing ones.

    Returns the collections and the manifest in force: an existing collection's (so a resumed build keeps
    one manifest across all three, even when an interrupted rebuild left only some of them), else ``manifest``.
    """
    from chromadb.errors import NotFoundError

    existing = {}
    for modality in MODALITIES:
        name = collection_name(modality, prefix)
        try:
            existing[modality] = client.get_collection(name)
        except (NotFoundError, ValueError):
            continue
    in_force = manifest
    for collection in existing.values():
        stored = (collection.metadata or {}).get(MANIFEST_KEY)
        if stored is None:
            raise StaleIndexError(
                f"Collection {collection.name!r} at {location} exists but was not built by TweetMaker; "
                "pass --rebuild to replace it (or use another --collection_prefix)."
            )
        stored_manifest = Manifest.from_json(stored)
        reasons = stored_manifest.differences(manifest)
        if reasons:
            raise StaleIndexError(_stale_message(location, reasons))
        in_force = stored_manifest
    collections = dict(existing)
    for modality in MODALITIES:
        if modality not in collections:
            collections[modality] = client.create_collection(
                collection_name(modality, prefix),
                configuration={"hnsw": dict(in_force.hnsw or DEFAULT_HNSW)},
                metadata={MANIFEST_KEY: in_force.to_json(), COMPLETED_KEY: False, "modality": modality},
                embedding_function=None,  # we always pass embeddings; Chroma's default would download a model
            )
    return {modality: collections[modality] for modality in MODALITIES}, in_force


def delete_index(client: ClientAPI, index_dir: Path, prefix: str = "") -> None:
    """Remove the collections, stored images and manifest copy (a builder's first step of --rebuild)."""
    from chromadb.errors import NotFoundError

    (index_dir / MANIFEST_FILENAME).unlink(missing_ok=True)
    for modality in MODALITIES:
        with contextlib.suppress(NotFoundError, ValueError):
            client.delete_collection(collection_name(modality, prefix))
    shutil.rmtree(index_dir / IMAGES_DIRNAME, ignore_errors=True)


# Room a build needs to start: a probe file this big must fit. After a failed write, the probe asks for more (a batch's
# worth of 512-d records and their journal), as SQLite gives back the space of the transaction it rolled back.
START_ROOM_BYTES = 1 << 20
FAILED_WRITE_ROOM_BYTES = 16 << 20
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# How Chroma words a storage failure it does not attribute (a full disk among them).
_STORAGE_ERROR = re.compile(r"disk|I/O|compaction|space|full|readonly|read-only|database|sqlite|write", re.IGNORECASE)
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def write_problem(index_dir: str | Path, *, room: int = START_ROOM_BYTES) -> OSError | None:
    """Why a build cannot write to ``index_dir`` right now (the OSError a write there gets), or None if it can.

    Real writes rather than permission bits (root, ACLs and read-only mounts make those lie): a probe file is made
    in each directory a build writes (INDEX_DIR, chroma/, images/) and removed, the first one filled with ``room``
    bytes and synced. Files a build changes in place (the database, the lock) are checked with ``os.access``, as
    opening the database here could drop the locks SQLite holds in this process; and the database must be able to
    grow by ``room`` under the process's file size limit (``ulimit -f``).
    """
    index_path = Path(index_dir)
    try:
        index_path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return error
    chroma_dir = index_path / CHROMA_DIRNAME
    in_place = [path for path in chroma_dir.rglob("*") if path.is_file()] if chroma_dir.is_dir() else []
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
    for number, directory in enumerate(path for path in (index_path, chroma_dir, index_path / IMAGES_DIRNAME)
                                       if path.is_dir()):
        try:
            handle, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=directory)
        except OSError as error:
            return error
        try:
            with os.fdopen(handle, "wb") as stream:
                if number == 0:  # one file system under all three, as a rule: its room is measured once
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


def _write_error(index_path: Path, problem: OSError, *, changed: bool) -> TweetIndexError | None:
    """The error to show for a write ``problem`` under ``index_path``: what happened and what to do next."""
    where = (problem.strerror or str(problem)) + (f": {problem.filename}" if problem.filename else "")
    then = ("then run the same `python -m tweetmaker.index build` command again: it resumes where it stopped."
            if changed else "then run the build again. Nothing in the index directory was changed.")
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


def check_writable(index_dir: str | Path) -> None:
    """Raise ``IndexNotWritableError`` / ``IndexDiskFullError`` unless a build can write to ``index_dir``."""
    problem = write_problem(index_dir)
    error = _write_error(Path(index_dir), problem, changed=False) if problem is not None else None
    if error is not None:
        raise error from problem
    if problem is not None:  # e.g. --index_dir names a file: still a message, not a traceback
        raise TweetIndexError(
            f"Cannot use {str(index_dir)!r} as the index directory ({problem}). Pass an --index_dir that is a "
            "directory this user can write (it is created if missing). Nothing was changed."
        ) from problem


@contextlib.contextmanager
def _explain_write_errors(index_path: Path) -> Iterator[None]:
    """Turn a write that fails mid-build (a disk filling up) into an error that says so and what to do.

    Chroma reports a full disk as a bare 'disk I/O error' or a failed compaction, without the cause, so when an OS or
    Chroma error ends a build, a probe (``write_problem``) asks the directory itself whether, and why, it refuses
    writes; when it does not, the original error goes on unchanged.
    """
    from chromadb.errors import ChromaError

    try:
        yield
    except TweetIndexError:
        raise
    except (OSError, ChromaError) as error:
        if not isinstance(error, OSError) and not _STORAGE_ERROR.search(str(error)):
            raise  # a Chroma error about the request itself (dimension, ids, ...): no disk to blame
        problem = write_problem(index_path, room=FAILED_WRITE_ROOM_BYTES)
        explained = _write_error(index_path, problem, changed=True) if problem is not None else None
        if explained is None:
            raise
        raise explained from error


def build_index(
    dataset: str | Path | datasets.Dataset | datasets.DatasetDict,
    towers: Towers | str | Path,
    index_dir: str | Path,
    *,
    source: str | None = None,
    split: str | None = None,
    host: str | None = None,
    port: int | None = None,
    prefix: str = "",
    rebuild: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    hnsw: dict[str, Any] | None = None,
    image_max_side: int = IMAGE_MAX_SIDE,
    progress: bool = True,
    revision: str | None = None,
    token: str | None = None,
) -> BuildReport:
    """Embed the corpus into the three collections; resumable and idempotent.

    Rows already in every collection they belong to (under a matching manifest) are skipped, so a killed
    build run again finishes the job, and a finished one run again changes nothing. A manifest that does
    not match (other towers, data, schema) raises ``StaleIndexError`` unless ``rebuild``. ``max_batches``
    stops after that many batches, leaving the index incomplete (resumable), as an interruption would.
    A directory this process cannot write, or a disk without room, raises ``IndexNotWritableError`` /
    ``IndexDiskFullError`` before anything is changed (a --rebuild deletes first); a disk that fills up mid-way
    raises ``IndexDiskFullError``, and the same build run again once there is room resumes.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    index_path = Path(index_dir)
    location = _location(index_path, host, port, prefix)
    if isinstance(dataset, (str, Path)):
        from tweetmaker.data import load_tweets

        source = source or str(dataset)
        dataset = load_tweets(str(dataset), revision=revision, token=token)
    if isinstance(towers, (str, Path)):
        from tweetmaker.towers import load_towers

        towers = load_towers(str(towers), token=token)
    check_writable(index_path)  # before the lock file, a --rebuild's deletions or any other change
    with _explain_write_errors(index_path), build_lock(index_path):
        corpus = Corpus(dataset, source or "<in-memory data set>", split)
        identity, dim = towers_manifest_fields(towers)
        dataset_info = {
            "source": corpus.source,
            "revision": revision,
            "splits": [name for name, _ in corpus.parts],
            "num_rows": len(corpus),
            "content_hash": corpus.content_hash(),
        }
        manifest = Manifest(
            towers=identity,
            embedding_dim=dim,
            dataset=dataset_info,
            hnsw=dict(hnsw or DEFAULT_HNSW),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        client = make_client(index_path, host, port)
        try:
            if rebuild:
                logger.info("rebuild: deleting the collections and images at %s", location)
                delete_index(client, index_path, prefix)
            images_dir = index_path / IMAGES_DIRNAME
            images_dir.mkdir(parents=True, exist_ok=True)
            collections, manifest = _prepare_collections(client, manifest, prefix, location)
            step = max(1, min(int(batch_size), client.get_max_batch_size()))
            if all((c.metadata or {}).get(COMPLETED_KEY) for c in collections.values()):
                counts = {m: c.count() for m, c in collections.items()}
                logger.info("index at %s is complete and up to date: %s", location, counts)
                return BuildReport(location, 0, counts, True, seconds=time.perf_counter() - started, up_to_date=True)

            present = {modality: _list_ids(collection, step) for modality, collection in collections.items()}
            expected = {modality: corpus.expected_ids(modality) for modality in MODALITIES}
            for modality, collection in collections.items():
                extra = sorted(present[modality] - expected[modality])
                for start in range(0, len(extra), step):  # only possible after a crash mid-way of an old schema
                    collection.delete(ids=extra[start:start + step])
            stored_images = {path.name for path in images_dir.glob("*.jpg")}
            todo = [
                position
                for position, tweet_id in enumerate(corpus.ids)
                if any(tweet_id in expected[m] and tweet_id not in present[m] for m in MODALITIES)
                or image_file_name(tweet_id) not in stored_images
            ]
            logger.info("%d of %d tweets to embed into %s (batches of %d)", len(todo), len(corpus), location, step)
            skipped: list[str] = []
            embedded = 0
            bar = tqdm(total=len(todo), desc="indexing tweets", unit="tweet", disable=not progress)
            for batch_number, start in enumerate(range(0, len(todo), step)):
                if max_batches is not None and batch_number >= max_batches:
                    bar.close()
                    counts = {m: c.count() for m, c in collections.items()}
                    logger.info("stopped after %d batches; run the build again to finish", batch_number)
                    return BuildReport(location, embedded, counts, False, skipped, time.perf_counter() - started)
                positions = todo[start:start + step]
                skipped += _index_batch(corpus, positions, towers, collections, images_dir, image_max_side)
                embedded += len(positions)
                bar.update(len(positions))
                logger.info("batch %d done: %d/%d tweets embedded", batch_number + 1, embedded, len(todo))
            bar.close()

            for collection in collections.values():
                metadata = dict(collection.metadata or {})
                metadata[COMPLETED_KEY] = True
                collection.modify(metadata=metadata)
            _remove_orphan_images(images_dir, {image_file_name(tweet_id) for tweet_id in corpus.ids})
            manifest_text = json.dumps(json.loads(manifest.to_json()), indent=2)
            _write_text_atomically(index_path / MANIFEST_FILENAME, manifest_text)
            counts = {m: c.count() for m, c in collections.items()}
            logger.info("index at %s complete: %s", location, counts)
            return BuildReport(location, embedded, counts, True, skipped, time.perf_counter() - started)
        finally:
            client.close()  # releases the database files (the embedded client is shared per path)


def _index_batch(
    corpus: Corpus,
    positions: Sequence[int],
    towers: Towers,
    collections: dict[str, Collection],
    images_dir: Path,
    image_max_side: int,
) -> list[str]:
    """Embed one batch and upsert it into every collection; returns ids whose image could not be read."""
    rows = corpus.rows(positions)
    ids, metadatas, images, skipped = [], [], [], []
    for split_name, row in rows:
        tweet_id = str(row["tweet_id"])
        image = _decode_row_image(row)
        name = image_file_name(tweet_id)
        if image is None:
            skipped.append(tweet_id)
            name = ""
        else:
            # Images first: a record in a collection always has its image on disk, even if we die next.
            _write_image_atomically(image, images_dir / name, image_max_side)
        ids.append(tweet_id)
        images.append(image)
        metadatas.append(record_metadata(row, split_name, corpus.attribute_names, name))

    def upsert(modality: str, keep: list[int], vectors_of: Any) -> None:
        if not keep:
            return
        vectors = np.asarray(vectors_of([i for i in keep]), dtype=np.float32)
        collections[modality].upsert(
            ids=[ids[i] for i in keep], embeddings=vectors, metadatas=[metadatas[i] for i in keep]
        )

    with_image = [i for i, image in enumerate(images) if image is not None]
    with_text = [i for i, (_, row) in enumerate(rows) if (row.get("text") or "").strip()]
    with_tags = [i for i, (_, row) in enumerate(rows) if (row.get("hashtags") or "").strip()]
    upsert("image", with_image, lambda keep: towers.encode_images([images[i] for i in keep]))
    upsert("text", with_text, lambda keep: towers.encode_texts([rows[i][1]["text"] for i in keep]))
    upsert("hashtag", with_tags, lambda keep: towers.encode_hashtags([rows[i][1]["hashtags"] for i in keep]))
    return skipped


def _remove_orphan_images(images_dir: Path, wanted: set[str]) -> None:
    for path in images_dir.iterdir():
        if path.name not in wanted:  # leftovers of a killed write, or of rows no longer in the data set
            with contextlib.suppress(OSError):
                path.unlink()


# --------------------------------------------------------------------------------------------- tuning


def exact_neighbours(embeddings: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices of the exact top-k by cosine (rows are L2-normalised), best first."""
    scores = queries @ embeddings.T
    k = min(k, embeddings.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def measure_hnsw(
    embeddings: np.ndarray,
    settings: Sequence[dict[str, Any]],
    *,
    k: int = 10,
    n_queries: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Recall@k against exact search and query latency of each HNSW setting on these embeddings.

    Builds a throw-away collection per setting in a temporary directory, queries it with ``n_queries``
    corpus rows (one query per call, as the app does) and compares with brute force. Returns one row per
    setting: the setting, ``recall@k``, mean / p95 latency in ms and the build time in seconds.
    """
    import chromadb
    from chromadb.config import Settings

    vectors = np.asarray(embeddings, dtype=np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    query_rows = rng.choice(len(vectors), size=min(n_queries, len(vectors)), replace=False)
    truth = exact_neighbours(vectors, vectors[query_rows], k)
    ids = [str(i) for i in range(len(vectors))]
    table = []
    with tempfile.TemporaryDirectory(prefix="tweetmaker-tune-") as scratch:
        client = chromadb.PersistentClient(path=scratch, settings=Settings(anonymized_telemetry=False))
        step = client.get_max_batch_size()
        for number, setting in enumerate(settings):
            config = {"space": "cosine", **setting}
            collection = client.create_collection(f"tune{number}", configuration={"hnsw": config},
                                                  embedding_function=None)
            began = time.perf_counter()
            for start in range(0, len(vectors), step):
                collection.add(ids=ids[start:start + step], embeddings=vectors[start:start + step])
            collection.query(query_embeddings=vectors[:1], n_results=k)  # the first query loads the index
            build_seconds = time.perf_counter() - began
            latencies, found = [], []
            for row in query_rows:
                began = time.perf_counter()
                result = collection.query(query_embeddings=vectors[row:row + 1], n_results=k, include=[])
                latencies.append((time.perf_counter() - began) * 1000)
                found.append([int(i) for i in result["ids"][0]])
            # Tie-aware: a returned item counts when it is as similar as the exact k-th neighbour, so identical
            # embeddings (tweets with the same hashtag string) cannot make a correct answer look wrong.
            recall = float(np.mean([
                np.sum(vectors[f] @ vectors[row] >= vectors[t[-1]] @ vectors[row] - 1e-6) / len(t)
                for f, t, row in zip(found, truth, query_rows)
            ]))
            table.append({
                **setting,
                f"recall@{k}": round(recall, 4),
                "latency_ms_mean": round(float(np.mean(latencies)), 3),
                "latency_ms_p95": round(float(np.percentile(latencies, 95)), 3),
                "build_s": round(build_seconds, 2),
                "n": len(vectors),
            })
            client.delete_collection(f"tune{number}")
    return table


TUNING_GRID: list[dict[str, Any]] = [
    {"max_neighbors": m, "ef_construction": efc, "ef_search": efs}
    for m, efc in ((8, 50), (16, 100), (32, 200))
    for efs in (10, 50, 100, 200)
]


# --------------------------------------------------------------------------------------------- Hub


def push_index(
    index_dir: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision_message: str | None = None,
    api: Any = None,
) -> Any:
    """Upload a complete, embedded index directory to a Hub dataset repo (the Space pulls it at start)."""
    from tweetmaker.cards import index_card
    from tweetmaker.hub import upload_folder_to_hub

    index_path = Path(index_dir)
    manifest_file = index_path / MANIFEST_FILENAME
    if not manifest_file.is_file() or not (index_path / CHROMA_DIRNAME).is_dir():
        raise IndexNotFoundError(
            f"{str(index_path)!r} holds no complete embedded index (manifest.json and chroma/); build it first."
        )
    with build_lock(index_path):  # nobody writes while we copy
        manifest = Manifest.from_json(manifest_file.read_text(encoding="utf-8"))
        with tempfile.TemporaryDirectory(prefix="tweetmaker-push-") as scratch:
            staged = Path(scratch) / "index"
            shutil.copytree(index_path, staged, ignore=shutil.ignore_patterns(LOCK_FILENAME, ".tmp-*"))
            (staged / "README.md").write_text(index_card(repo_id, manifest), encoding="utf-8")
            return upload_folder_to_hub(
                staged,
                repo_id,
                repo_type="dataset",
                private=private,
                token=token,
                commit_message=revision_message or f"TweetMaker index ({manifest.dataset.get('num_rows')} tweets)",
                api=api,
            )


def pull_index(
    repo_id: str,
    index_dir: str | Path,
    *,
    revision: str | None = None,
    token: str | None = None,
    api: Any = None,
) -> Path:
    """Download an index pushed by ``push_index`` into ``index_dir`` and check it is complete.

    ``api`` is an ``HfApi`` (made from the token when not given; tests inject ``tests/hub_fake.FakeHubApi``).
    """
    from tweetmaker.hub import make_api

    index_path = Path(index_dir)
    index_path.mkdir(parents=True, exist_ok=True)
    with build_lock(index_path):  # a pull writes the directory: same rule as a build
        make_api(token, api).snapshot_download(
            repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=str(index_path)
        )
    if not (index_path / MANIFEST_FILENAME).is_file() or not (index_path / CHROMA_DIRNAME).is_dir():
        raise IndexNotFoundError(f"Dataset repo {repo_id!r} does not hold a TweetMaker index (no manifest.json).")
    return index_path


# --------------------------------------------------------------------------------------------- CLI


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index_dir", required=True, help="index directory (embedded Chroma + stored images)")
    parser.add_argument("--chroma_host", default=None, help="use a Chroma server at this host instead")
    parser.add_argument("--chroma_port", type=int, default=8000, help="port of the Chroma server")
    parser.add_argument("--collection_prefix", default="", help="prefix of the collection names (shared servers)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tweetmaker.index", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="embed a data set into the index (resumes an interrupted build)")
    build.add_argument("--dataset", required=True, help="Hub dataset id or local data set directory")
    build.add_argument("--towers", required=True, help="trained towers directory or Hub model id")
    build.add_argument("--split", default=None, help="comma-separated splits to index (default: all)")
    build.add_argument("--revision", default=None, help="data set revision on the Hub")
    build.add_argument("--rebuild", action="store_true", help="delete an existing index and build it anew")
    build.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE, help="tweets per batch")
    build.add_argument("--max_batches", type=int, default=None, help="stop after N batches (resume later)")
    build.add_argument("--no_progress", action="store_true", help="no progress bar")
    _add_location(build)
    info = commands.add_parser("info", help="print an index's manifest and counts")
    _add_location(info)
    tune = commands.add_parser("tune", help="measure HNSW settings (recall@10 vs exact, latency) on an index")
    _add_location(tune)
    tune.add_argument("--modality", default="image", choices=MODALITIES)
    tune.add_argument("--queries", type=int, default=200)
    push = commands.add_parser("push", help="upload a built index directory to a Hub dataset repo")
    push.add_argument("--index_dir", required=True)
    push.add_argument("--repo_id", required=True)
    push.add_argument("--private", action="store_true")
    pull = commands.add_parser("pull", help="download an index from a Hub dataset repo")
    pull.add_argument("--repo_id", required=True)
    pull.add_argument("--index_dir", required=True)
    pull.add_argument("--revision", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        if args.command == "build":
            report = build_index(
                args.dataset, args.towers, args.index_dir, split=args.split, host=args.chroma_host,
                port=args.chroma_port, prefix=args.collection_prefix, rebuild=args.rebuild,
                batch_size=args.batch_size, max_batches=args.max_batches, progress=not args.no_progress,
                revision=args.revision,
            )
            print(json.dumps(asdict(report), indent=2))
        elif args.command == "info":
            index = open_index(args.index_dir, host=args.chroma_host, port=args.chroma_port,
                               prefix=args.collection_prefix, require_complete=False)
            counts = {modality: index.count(modality) for modality in MODALITIES}
            print(json.dumps({"location": index.location, "completed": index.completed, "counts": counts,
                              "manifest": json.loads(index.manifest.to_json())}, indent=2))
        elif args.command == "tune":
            index = open_index(args.index_dir, host=args.chroma_host, port=args.chroma_port,
                               prefix=args.collection_prefix)
            _, embeddings = index.all_embeddings(args.modality)
            from tweetmaker.cards import markdown_table

            print(markdown_table(measure_hnsw(embeddings, TUNING_GRID, n_queries=args.queries)))
        elif args.command == "push":
            push_index(args.index_dir, args.repo_id, private=args.private)
        elif args.command == "pull":
            print(pull_index(args.repo_id, args.index_dir, revision=args.revision))
    except (TweetIndexError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
