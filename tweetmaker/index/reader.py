"""Reading a built index: ``open_index`` finds the live generation and checks it; ``TweetIndex`` answers queries.

A reader never writes. It resolves the live generation once, when it opens the index, and keeps reading that one's
files, so a build that publishes a new generation meanwhile cannot change what an open index answers.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tweetmaker.index.errors import (
    IncompleteIndexError,
    IndexLockedError,
    IndexNotFoundError,
    IndexUnavailableError,
    StaleIndexError,
)
from tweetmaker.index.generations import Generations, missing_index, stored_manifest
from tweetmaker.index.layout import (
    IMAGES_DIRNAME,
    MODALITIES,
    IndexLocation,
    Manifest,
    is_locked,
    stale_message,
    towers_manifest_fields,
)

if TYPE_CHECKING:  # keep `import tweetmaker.index` cheap: chromadb and torch load on first use
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from tweetmaker.towers import Towers


def _server_answers(method):
    """Turn a Chroma server that cannot be reached into ``IndexUnavailableError`` (the app shows its message).

    The HTTP client holds no connection state, so nothing needs reopening: the next call after the server is back
    simply succeeds, and the app recovers without a restart.
    """
    @functools.wraps(method)
    def wrapped(self: TweetIndex, *args: Any, **kwargs: Any):
        import sqlite3

        import httpx  # chromadb's HTTP client; imported here to keep `import tweetmaker.index` cheap
        from chromadb.errors import ChromaError

        try:
            return method(self, *args, **kwargs)
        except httpx.TransportError as error:
            raise IndexUnavailableError(
                f"The Chroma server at {self.location} did not answer ({type(error).__name__}: {error}). "
                "It may be restarting: try again in a moment."
            ) from error
        except (ChromaError, sqlite3.Error) as error:  # e.g. a collection removed under a reader that kept it open
            raise IndexUnavailableError(
                f"The index at {self.location} could not answer ({type(error).__name__}: {error}). It may have "
                "been replaced by a new build: try again in a moment."
            ) from error
    return wrapped


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
        *,
        images_dir: Path | None = None,
        generation: str | None = None,
    ) -> None:
        self.client = client
        self.collections = collections
        self.manifest = manifest
        self.index_dir = index_dir  # INDEX_DIR, as given: opening it again opens the index live by then
        self.location = location
        self.completed = True
        # The generation served, resolved once when opened: None for the flat layout of indexes made before
        # generations. Its images/ holds the copies its hits name, whatever is published meanwhile.
        self.generation = generation
        self.images_dir = images_dir if images_dir is not None or index_dir is None else index_dir / IMAGES_DIRNAME

    @property
    def embedding_dim(self) -> int:
        return self.manifest.embedding_dim

    @_server_answers
    def count(self, modality: str) -> int:
        return self.collections[modality].count()

    def check_towers(self, towers: Towers) -> None:
        """Raise ``StaleIndexError`` unless ``towers`` are the ones that built this index."""
        reasons = _towers_differences(self.manifest, towers)
        if reasons:
            raise StaleIndexError(stale_message(self.location, reasons))

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
        if not name or self.images_dir is None:
            return None
        path = self.images_dir / str(name)
        return path if path.is_file() else None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def open_index(
    index_dir: str | Path | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    prefix: str = "",
    towers: Towers | None = None,
    require_complete: bool = True,
    follow: bool = False,
    check_interval: float = 2.0,
) -> TweetIndex:
    """Open the live generation of a built index for reading (the app's entry point).

    Checks that all three collections exist with one manifest, that their build completed, and, when ``towers`` are
    given, that those towers built it; raises ``IndexNotFoundError`` / ``StaleIndexError`` with a message that says
    what to run. ``index_dir`` is still where the images are in server mode. With ``require_complete=False`` an index
    whose first build was interrupted is opened as it is (``info`` shows it).

    With ``follow=True`` the answer is a ``follow.FollowingIndex``: the same interface, and it moves to a newly
    published (or rolled back) generation built by the same towers, between calls (checked at most every
    ``check_interval`` seconds).
    """
    if follow:
        from tweetmaker.index.follow import FollowingIndex

        return FollowingIndex(index_dir, host=host, port=port, prefix=prefix, towers=towers,
                              check_interval=check_interval)
    location = IndexLocation(index_dir, host, port, prefix)
    where = location.describe()
    if location.embedded and location.index_dir is None:
        raise missing_index(where)
    store = Generations(location)
    try:
        generation = store.live()
        published = generation is not None
        if generation is None:
            unfinished = store.unpublished()
            if not unfinished:
                raise missing_index(where)
            if require_complete:
                raise _incomplete(where)
            generation = unfinished[-1]
        # A published generation is never written again (a build writes its own new one): only the flat layout of
        # earlier versions may be written in place by a running build.
        if location.embedded and (generation.id is None or not published) and is_locked(location.index_dir):
            raise IndexLockedError(f"The index at {where} is being built right now; open it when the build ends.")
        collections = store.collections(generation)
        for modality in MODALITIES:
            if modality not in collections:
                raise IndexNotFoundError(
                    f"The index at {where} has no {modality!r} collection: it was never built or its build was "
                    "interrupted. Run `python -m tweetmaker.index build` to finish it."
                )
        manifest, completed = stored_manifest(collections, where)
        if require_complete and not completed:
            raise _incomplete(where)
        reasons = _towers_differences(manifest, towers) if towers is not None else []
        if reasons:
            raise StaleIndexError(stale_message(where, reasons))
    except BaseException:
        store.close()
        raise
    index = TweetIndex(store.detach(generation), collections, manifest, location.index_dir, where,
                       images_dir=generation.images_dir, generation=generation.id)
    index.completed = completed
    return index


def _incomplete(where: str) -> IncompleteIndexError:
    return IncompleteIndexError(
        f"The index at {where} is incomplete: its build was interrupted. Run the same "
        "`python -m tweetmaker.index build` command again to finish it (it resumes where it stopped)."
    )


def _towers_differences(manifest: Manifest, towers: Towers) -> list[str]:
    """Why ``towers`` did not build the index of ``manifest`` (empty when they did)."""
    identity, dim = towers_manifest_fields(towers)
    return manifest.differences(Manifest(towers=identity, embedding_dim=dim, dataset={}), check_dataset=False)
