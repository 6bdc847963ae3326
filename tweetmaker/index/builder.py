"""Building an index: embed the corpus with the towers and write it through ``IndexWriter``; resumable, idempotent.

``build_from`` takes what it needs already loaded (a data set, towers) plus where (``IndexLocation``) and how
(``BuildOptions``). ``build_index`` is the older one-call form that also accepts a data set or towers by Hub id or
path; the app's start-up calls it.

Which generation a build writes (see ``tweetmaker.index.generations``):

- an unfinished generation built as this build would build it is resumed, whatever else is there;
- otherwise a --rebuild starts a new generation beside the live index, which serves until the new one is published;
- otherwise the live index, when it matches, is up to date; when it does not, the build is refused (StaleIndexError:
  pass --rebuild), and so is an unfinished build of something else;
- an index of the flat layout whose first build was interrupted is resumed in place, as it was written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tweetmaker.index.corpus import Corpus, decode_row_image, image_file_name, record_metadata
from tweetmaker.index.errors import StaleIndexError
from tweetmaker.index.generations import Generation, Generations, new_generation_id
from tweetmaker.index.layout import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_HNSW,
    IMAGE_MAX_SIDE,
    MODALITIES,
    IndexLocation,
    Manifest,
    build_lock,
    stale_message,
    towers_manifest_fields,
)
from tweetmaker.index.storage import check_writable, explain_write_errors
from tweetmaker.index.writer import IndexWriter

if TYPE_CHECKING:
    import datasets

    from tweetmaker.towers import Towers

logger = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    """How a build runs: which splits, a new generation or not, batch size, HNSW settings, image copies' size."""

    split: str | None = None  # comma-separated splits to index (default: all)
    rebuild: bool = False  # build a new generation even when the live one matches; it replaces the live one when done
    batch_size: int = DEFAULT_BATCH_SIZE
    max_batches: int | None = None  # stop after this many batches, leaving the build resumable (as a kill would)
    hnsw: dict[str, Any] | None = None  # default: DEFAULT_HNSW
    image_max_side: int = IMAGE_MAX_SIDE
    progress: bool = True


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


def build_from(
    dataset: datasets.Dataset | datasets.DatasetDict,
    towers: Towers,
    location: IndexLocation,
    options: BuildOptions | None = None,
    *,
    source: str | None = None,
    revision: str | None = None,
) -> BuildReport:
    """Embed the corpus into a generation of the index at ``location``; resumable and idempotent.

    Rows already in every collection they belong to are skipped, so a killed build run again finishes the job, and a
    finished one run again changes nothing. The live index is never written: a new generation is published in one
    step when complete, so a rebuild that is killed or runs out of disk leaves the previous index serving. A
    directory this process cannot write, or a disk without room, raises ``IndexNotWritableError`` /
    ``IndexDiskFullError`` before anything is changed; a disk that fills up mid-way raises ``IndexDiskFullError``,
    and the same build run again once there is room resumes (a rebuild beside a live index starts over: it deletes
    what it wrote, so the live index on that disk can still be opened).
    """
    options = options or BuildOptions()
    started = time.perf_counter()
    index_path, where = location.index_dir, location.describe()
    check_writable(index_path)  # before the lock file or any other change
    with explain_write_errors(index_path), build_lock(index_path):
        corpus = Corpus(dataset, source or "<in-memory data set>", options.split)
        identity, dim = towers_manifest_fields(towers)
        manifest = Manifest(
            towers=identity, embedding_dim=dim, dataset=corpus.identity(revision),
            hnsw=dict(options.hnsw or DEFAULT_HNSW), built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        with IndexWriter(location, image_max_side=options.image_max_side) as writer:
            store = writer.generations
            store.tidy()
            live = store.live()
            target, up_to_date = _target(store, live, manifest, options.rebuild, where)
            if up_to_date:
                logger.info("index at %s is complete and up to date", where)
                counts = {modality: collection.count() for modality, collection in store.collections(live).items()}
                return BuildReport(where, 0, counts, True, seconds=time.perf_counter() - started, up_to_date=True)
            generation = target or store.generation(new_generation_id())
            check_writable(index_path, writing=generation.root)
            for other in store.unpublished(live):
                if other.id != generation.id:
                    store.discard(other)  # an unfinished build of something else: this build replaces it
            # A rebuild beside a live index gives the room back on a full disk, so the live index can still be opened.
            give_back = (lambda: store.discard(generation)) if live is not None and generation != live else None
            with explain_write_errors(index_path, generation.root, give_back):
                writer.create(manifest, generation)
                return _fill(writer, corpus, towers, options, started)


def _target(store: Generations, live: Generation | None, manifest: Manifest, rebuild: bool, where: str
            ) -> tuple[Generation | None, bool]:
    """The generation this build writes (None: a new one) and whether the live index is already what it would build.

    Raises ``StaleIndexError`` when the build must not go on without --rebuild.
    """
    others = []
    for generation in store.unpublished(live):
        state = store.state(generation)
        if state is not None and not state[0].differences(manifest):
            return generation, False
        others.append(state)
    if rebuild:
        return None, False
    if live is not None:
        state = store.state(live)
        if state is None:  # a flat-layout directory whose build stopped before its collections existed
            return live, False
        reasons = state[0].differences(manifest)
        if reasons:
            raise StaleIndexError(stale_message(where, reasons))
        return live, state[1]
    for state in others:
        if state is not None:  # an interrupted first build of other towers or data: replacing it takes --rebuild
            raise StaleIndexError(stale_message(where, state[0].differences(manifest)))
    return None, False


def _fill(writer: IndexWriter, corpus: Corpus, towers: Towers, options: BuildOptions, started: float) -> BuildReport:
    """Embed what the generation lacks, batch by batch, and complete it (unless ``max_batches`` stops it first)."""
    from tqdm.auto import tqdm

    where = writer.location.describe()
    step = max(1, min(int(options.batch_size), writer.batch_limit))
    expected = {modality: corpus.expected_ids(modality) for modality in MODALITIES}
    present = {}
    for modality in MODALITIES:
        present[modality] = writer.ids(modality)
        # Records of rows no longer in the data set: only possible after a crash mid-way of an old schema.
        writer.delete(modality, sorted(present[modality] - expected[modality]))
    stored_images = writer.stored_images()
    todo = [
        position
        for position, tweet_id in enumerate(corpus.ids)
        if any(tweet_id in expected[m] and tweet_id not in present[m] for m in MODALITIES)
        or image_file_name(tweet_id) not in stored_images
    ]
    logger.info("%d of %d tweets to embed into %s (batches of %d)", len(todo), len(corpus), where, step)
    skipped: list[str] = []
    embedded = 0
    with tqdm(total=len(todo), desc="indexing tweets", unit="tweet", disable=not options.progress) as bar:
        for batch_number, start in enumerate(range(0, len(todo), step)):
            if options.max_batches is not None and batch_number >= options.max_batches:
                logger.info("stopped after %d batches; run the build again to finish", batch_number)
                return BuildReport(where, embedded, writer.counts(), False, skipped, time.perf_counter() - started)
            positions = todo[start:start + step]
            skipped += _index_batch(corpus, positions, towers, writer)
            embedded += len(positions)
            bar.update(len(positions))
            logger.info("batch %d done: %d/%d tweets embedded", batch_number + 1, embedded, len(todo))
    counts = writer.complete(keep_images={image_file_name(tweet_id) for tweet_id in corpus.ids})
    return BuildReport(where, embedded, counts, True, skipped, time.perf_counter() - started)


def _index_batch(corpus: Corpus, positions: Sequence[int], towers: Towers, writer: IndexWriter) -> list[str]:
    """Embed one batch and write it into every collection; returns ids whose image could not be read."""
    rows = corpus.rows(positions)
    ids, metadatas, images, skipped = [], [], [], []
    for split_name, row in rows:
        tweet_id = str(row["tweet_id"])
        image = decode_row_image(row)
        if image is None:
            skipped.append(tweet_id)
        ids.append(tweet_id)
        images.append(image)
        name = image_file_name(tweet_id) if image is not None else ""
        metadatas.append(record_metadata(row, split_name, corpus.attribute_names, name))

    def write(modality: str, keep: list[int], encode: Any, inputs: list[Any], **extra: Any) -> None:
        if keep:
            vectors = np.asarray(encode([inputs[i] for i in keep]), dtype=np.float32)
            writer.add([ids[i] for i in keep], {modality: vectors}, [metadatas[i] for i in keep],
                       **{name: [values[i] for i in keep] for name, values in extra.items()})

    texts = [row.get("text") or "" for _, row in rows]
    tags = [row.get("hashtags") or "" for _, row in rows]
    # The image call goes first: it stores the image files that every record of the batch names.
    write("image", [i for i, image in enumerate(images) if image is not None], towers.encode_images, images,
          images=images)
    write("text", [i for i, text in enumerate(texts) if text.strip()], towers.encode_texts, texts)
    write("hashtag", [i for i, raw in enumerate(tags) if raw.strip()], towers.encode_hashtags, tags)
    return skipped


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
    """``build_from`` in one call, for callers that name the data set or towers by Hub id or path (the app's start).

    Strings are loaded first (``tweetmaker.data.load_tweets``, ``tweetmaker.towers.load_towers``); the keywords are
    ``IndexLocation``'s and ``BuildOptions``' fields.
    """
    if isinstance(dataset, (str, Path)):
        from tweetmaker.data import load_tweets

        source = source or str(dataset)
        dataset = load_tweets(str(dataset), revision=revision, token=token)
    if isinstance(towers, (str, Path)):
        from tweetmaker.towers import load_towers

        towers = load_towers(str(towers), token=token)
    options = BuildOptions(split=split, rebuild=rebuild, batch_size=batch_size, max_batches=max_batches, hnsw=hnsw,
                           image_max_side=image_max_side, progress=progress)
    return build_from(dataset, towers, IndexLocation(index_dir, host, port, prefix), options, source=source,
                      revision=revision)
