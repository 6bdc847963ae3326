"""``IndexWriter``: the one code path that writes an index, for builds and for the benchmarks' synthetic indexes.

It writes one generation (see ``tweetmaker.index.generations``): ``create`` starts a new one beside the live index
(or resumes an unfinished one), ``add`` stores records and their images, ``complete`` marks the generation complete
and publishes it in one atomic step. Until then the live index is untouched, so a writer that is killed, or that
runs out of disk, leaves the previous index serving and an unfinished generation the next build resumes::

    with IndexWriter(IndexLocation(index_dir)) as writer:
        writer.create(manifest)
        writer.add(ids, {"image": image_vectors, "text": text_vectors}, metadatas, images)
        writer.complete()

Callers hold the directory's ``build_lock`` (one writer at a time), as ``build_index`` does.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tweetmaker.atomic import write_text_atomically
from tweetmaker.index.errors import StaleIndexError
from tweetmaker.index.generations import Generation, Generations, new_generation_id, stored_manifest
from tweetmaker.index.layout import (
    COMPLETED_KEY,
    DEFAULT_HNSW,
    IMAGE_MAX_SIDE,
    MANIFEST_KEY,
    MODALITIES,
    IndexLocation,
    Manifest,
    stale_message,
)
from tweetmaker.index.storage import remove_orphan_images, write_image_copy

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from PIL import Image

logger = logging.getLogger(__name__)


class IndexWriter:
    """Writes one generation of the index at ``location`` and publishes it when complete."""

    def __init__(self, location: IndexLocation, *, image_max_side: int = IMAGE_MAX_SIDE) -> None:
        self.location = location
        self.image_max_side = image_max_side
        self.generations = Generations(location)
        self.generation: Generation | None = None
        self.manifest: Manifest | None = None
        self.collections: dict[str, Collection] = {}

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- starting

    def create(self, manifest: Manifest, generation: Generation | None = None) -> Manifest:
        """Start writing ``generation`` (default: a new one) as ``manifest`` says; what it holds already is resumed.

        Returns the manifest in force: a resumed generation keeps the one it was started with (its collections must
        match ``manifest``), so one manifest covers all three collections even when an interruption left only some.
        """
        generation = generation or self.generations.generation(new_generation_id())
        if generation.images_dir is not None:
            generation.images_dir.mkdir(parents=True, exist_ok=True)
        existing = self.generations.collections(generation)
        in_force = manifest
        if existing:
            where = self.location.describe()
            in_force, _ = stored_manifest(existing, where)
            reasons = in_force.differences(manifest)
            if reasons:
                raise StaleIndexError(stale_message(where, reasons))
        client = self.generations.client(generation)
        for modality in MODALITIES:
            if modality not in existing:
                existing[modality] = client.create_collection(
                    self.generations.collection_name(generation, modality),
                    configuration={"hnsw": dict(in_force.hnsw or DEFAULT_HNSW)},
                    metadata={MANIFEST_KEY: in_force.to_json(), COMPLETED_KEY: False, "modality": modality},
                    embedding_function=None,  # we always pass embeddings; Chroma's default would download a model
                )
        self.generation, self.manifest = generation, in_force
        self.collections = {modality: existing[modality] for modality in MODALITIES}
        logger.info("writing generation %s at %s", generation.id or "(flat layout)", self.location.describe())
        return in_force

    @property
    def completed(self) -> bool:
        return all((c.metadata or {}).get(COMPLETED_KEY) for c in self.collections.values())

    @functools.cached_property
    def batch_limit(self) -> int:
        """The most records one Chroma call takes."""
        return max(1, self.generations.client(self.generation).get_max_batch_size())

    # ------------------------------------------------------------------------------------------- what is there

    def ids(self, modality: str) -> set[str]:
        """Every id stored in a collection of this generation, page by page."""
        ids: set[str] = set()
        collection, offset = self.collections[modality], 0
        while True:
            page = collection.get(include=[], limit=self.batch_limit, offset=offset)
            if not page["ids"]:
                return ids
            ids.update(page["ids"])
            offset += len(page["ids"])

    def stored_images(self) -> set[str]:
        images_dir = self.generation.images_dir
        return {path.name for path in images_dir.glob("*.jpg")} if images_dir is not None else set()

    def counts(self) -> dict[str, int]:
        return {modality: collection.count() for modality, collection in self.collections.items()}

    # ------------------------------------------------------------------------------------------- writing

    def store_image(self, name: str, image: Image.Image) -> None:
        """A downscaled copy of ``image`` in this generation's images/, under ``name`` (what records name)."""
        write_image_copy(image, self.generation.images_dir / name, self.image_max_side)

    def add(
        self,
        ids: Sequence[str],
        embeddings_by_modality: Mapping[str, np.ndarray],
        metadatas: Sequence[dict[str, Any]],
        images: Sequence[Image.Image | None] | None = None,
    ) -> None:
        """Store records (again, if present: ids are keys) in the collections named by ``embeddings_by_modality``.

        Each array there has one row per id; a modality some of the ids must not have (a tweet without text) is
        written by another call with only the ids it has. ``images`` (one per id, or None) are stored first, under
        the name each metadata's ``image`` gives, so a record on disk always has its image, whenever a kill lands.
        """
        ids = list(ids)
        if images is not None:
            for metadata, image in zip(metadatas, images):
                if image is not None:
                    self.store_image(str(metadata["image"]), image)
        step = self.batch_limit
        for modality, vectors in embeddings_by_modality.items():
            vectors = np.asarray(vectors, dtype=np.float32)
            if len(vectors) != len(ids):
                raise ValueError(f"{len(vectors)} {modality} embeddings for {len(ids)} ids")
            for start in range(0, len(ids), step):
                self.collections[modality].upsert(
                    ids=ids[start:start + step], embeddings=vectors[start:start + step],
                    metadatas=list(metadatas[start:start + step]),
                )

    def delete(self, modality: str, ids: Sequence[str]) -> None:
        ids, step = list(ids), self.batch_limit
        for start in range(0, len(ids), step):
            self.collections[modality].delete(ids=ids[start:start + step])

    def complete(self, *, keep_images: set[str] | None = None) -> dict[str, int]:
        """Mark the generation complete and publish it, then remove the generation it replaces. Returns the counts.

        ``keep_images``: the image names the records use; any other file in images/ is removed first.
        """
        for collection in self.collections.values():
            metadata = dict(collection.metadata or {})
            metadata[COMPLETED_KEY] = True
            collection.modify(metadata=metadata)
        counts = self.counts()
        generation = self.generation
        if keep_images is not None and generation.images_dir is not None:
            remove_orphan_images(generation.images_dir, keep_images)
        if generation.manifest_file is not None:
            write_text_atomically(generation.manifest_file, self.manifest.to_json(indent=2))
        live = self.generations.live()
        if generation.id is not None and (live is None or live.id != generation.id):
            self.generations.publish(generation)
        logger.info("index at %s complete: %s", self.location.describe(), counts)
        return counts

    def close(self) -> None:
        """Release the database; an unfinished generation stays as it is, for the next build to resume."""
        self.generations.close()
