"""What an index is made of and where it lives: the names on disk, the manifest, the location, the client, the lock.

Every other module of ``tweetmaker.index`` (and ``benchmarks/``, through ``IndexWriter``) takes these names from here,
so the format is written down once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweetmaker.index.errors import IndexLockedError, IndexNotFoundError, IndexNotWritableError, StaleIndexError

if TYPE_CHECKING:  # keep `import tweetmaker.index` cheap: chromadb and torch load on first use
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from tweetmaker.towers import Towers

SCHEMA_VERSION = 1
MODALITIES = ("image", "text", "hashtag")
MANIFEST_KEY = "tweetmaker_manifest"
COMPLETED_KEY = "tweetmaker_completed"
IMAGES_DIRNAME = "images"
CHROMA_DIRNAME = "chroma"
MANIFEST_FILENAME = "manifest.json"
LOCK_FILENAME = ".build.lock"
# Generations (see tweetmaker/index/generations.py): INDEX_DIR/generations/<id>/ holds one complete or unfinished
# copy of the index; INDEX_DIR/current is the symlink that says which one is live.
GENERATIONS_DIRNAME = "generations"
LIVE_LINK = "current"
# On a Chroma server the live generation is recorded in the metadata of this (empty) collection.
POINTER_COLLECTION = "tweetmaker-live"
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


@dataclass
class Manifest:
    """What built an index. Two manifests are compatible when ``differences`` is empty."""

    towers: dict[str, Any]
    embedding_dim: int
    dataset: dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    hnsw: dict[str, Any] = field(default_factory=dict)
    built_at: str | None = None

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str, indent=indent)

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

    @property
    def num_rows(self) -> int | None:
        """Tweets in the data set that built it (manifests before ``dataset_identity`` held the total itself)."""
        rows = self.dataset.get("num_rows")
        return sum(rows.values()) if isinstance(rows, dict) else rows


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


def stale_message(location: str, reasons: Sequence[str]) -> str:
    return (
        f"The index at {location} does not match: " + "; ".join(reasons) + ". Rebuild it with "
        "`python -m tweetmaker.index build --dataset ... --towers ... --index_dir ... --rebuild` "
        "(or pull the index built for these towers)."
    )


@dataclass(frozen=True)
class IndexLocation:
    """Where an index lives: ``index_dir`` alone (the embedded database, the stored images, the lock), or a Chroma
    server at ``host:port`` holding the collections (names start with ``prefix``) while ``index_dir`` keeps the
    images and the lock."""

    index_dir: Path | None = None
    host: str | None = None
    port: int | None = None
    prefix: str = ""

    def __post_init__(self) -> None:
        if self.index_dir is not None and not isinstance(self.index_dir, Path):
            object.__setattr__(self, "index_dir", Path(self.index_dir))
        if self.host and self.port is None:
            object.__setattr__(self, "port", 8000)

    @property
    def embedded(self) -> bool:
        return not self.host

    def describe(self) -> str:
        """How messages name this place."""
        if self.host:
            return f"chroma://{self.host}:{self.port}" + (f" (collections {self.prefix}*)" if self.prefix else "")
        return repr(str(self.index_dir))


def make_client(index_dir: str | Path | None = None, host: str | None = None, port: int | None = None) -> ClientAPI:
    """A Chroma client: a server at ``host:port`` when a host is given, else the database in ``INDEX_DIR/chroma``.

    The path is resolved first: Chroma shares one system per path string within a process, and one database reached
    through two spellings (a symlink, a relative path) would get two systems writing it.
    """
    import chromadb
    from chromadb.config import Settings
    from chromadb.errors import InternalError

    settings = Settings(anonymized_telemetry=False)
    if host:
        return chromadb.HttpClient(host=host, port=int(port or 8000), settings=settings)
    if index_dir is None:
        raise ValueError("Pass an index directory, or a Chroma server host and port.")
    database = (Path(index_dir) / CHROMA_DIRNAME).resolve()
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


def collection_name(modality: str, prefix: str = "", generation: str | None = None) -> str:
    """``image``, or ``image-<generation>`` for a generation's collection on a Chroma server."""
    return f"{prefix}{modality}" + (f"-{generation}" if generation else "")


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


def stored_manifest(collections: dict[str, Collection], location: str) -> tuple[Manifest, bool]:
    """The manifest a generation's collections share, and whether every one of its three collections completed.

    Raises ``StaleIndexError`` for a collection TweetMaker did not write or collections of different builds.
    """
    manifests = {}
    for modality, collection in collections.items():
        metadata = collection.metadata or {}
        if MANIFEST_KEY not in metadata:
            raise StaleIndexError(
                f"Collection {collection.name!r} at {location} was not built by TweetMaker; pass --rebuild to "
                "replace it, or use another --collection_prefix."
            )
        manifests[modality] = Manifest.from_json(metadata[MANIFEST_KEY])
    first = next(iter(manifests.values()))
    if any(manifest.differences(first) for manifest in manifests.values()):
        raise StaleIndexError(stale_message(location, ["its collections come from different builds; run it again"]))
    completed = len(collections) == len(MODALITIES) and all(
        bool((collection.metadata or {}).get(COMPLETED_KEY)) for collection in collections.values()
    )
    return first, completed


def missing_index(location: str) -> IndexNotFoundError:
    return IndexNotFoundError(
        f"No index at {location}. Build one with `python -m tweetmaker.index build` or fetch one with "
        "`python -m tweetmaker.index pull`."
    )
