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

How it embeds: batch by batch through ``tweetmaker.index.pipeline`` (a reader thread decodes and preprocesses ahead of
the towers), and across processes when a launcher started several (``tweetmaker.index.sharding``)::

    torchrun --nproc_per_node 2 -m tweetmaker.index build --dataset ... --towers ... --index_dir ...
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweetmaker.index.corpus import Corpus, image_file_name
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
from tweetmaker.index.pipeline import BatchReader, EmbeddedBatch, embed
from tweetmaker.index.sharding import Shard
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
    max_batches: int | None = None  # stop after this many batches (per process), leaving the build resumable
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
    embedded_by_process: list[int] = field(default_factory=list)  # rows embedded by each process


def build_from(
    dataset: datasets.Dataset | datasets.DatasetDict,
    towers: Towers,
    location: IndexLocation,
    options: BuildOptions | None = None,
    *,
    source: str | None = None,
    revision: str | None = None,
    shard: Shard | None = None,
) -> BuildReport:
    """Embed the corpus into a generation of the index at ``location``; resumable and idempotent.

    Rows already in every collection they belong to are skipped, so a killed build run again finishes the job, and a
    finished one run again changes nothing. The live index is never written: a new generation is published in one
    step when complete, so a rebuild that is killed or runs out of disk leaves the previous index serving. A
    directory this process cannot write, or a disk without room, raises ``IndexNotWritableError`` /
    ``IndexDiskFullError`` before anything is changed; a disk that fills up mid-way raises ``IndexDiskFullError``,
    and the same build run again once there is room resumes (a rebuild beside a live index starts over: it deletes
    what it wrote, so the live index on that disk can still be opened).

    ``shard``: this process's place in a build shared by several (``Shard.from_environment()`` under torchrun or
    accelerate launch; see ``tweetmaker.index.sharding``). The main process decides and publishes; every process
    embeds its part; records go straight to a Chroma server, or through the main process into the embedded database
    (one writer per database).
    """
    options = options or BuildOptions()
    shard = shard or Shard()
    started = time.perf_counter()
    if not shard.main:
        return _build_part(dataset, towers, location, options, shard, source, started)
    index_path, where = location.index_dir, location.describe()
    with shard.announcing() as announce:
        check_writable(index_path)  # before the lock file or any other change
        with explain_write_errors(index_path), build_lock(index_path):
            corpus = Corpus(dataset, source or "<in-memory data set>", options.split)
            identity, dim = towers_manifest_fields(towers)
            manifest = Manifest(
                towers=identity, embedding_dim=dim, dataset=corpus.identity(revision),
                hnsw=dict(options.hnsw or DEFAULT_HNSW),
                built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            with IndexWriter(location, image_max_side=options.image_max_side) as writer:
                store = writer.generations
                store.tidy()
                live = store.live()
                target, up_to_date = _target(store, live, manifest, options.rebuild, where)
                if up_to_date:
                    logger.info("index at %s is complete and up to date", where)
                    announce(None)
                    counts = {modality: collection.count() for modality, collection in store.collections(live).items()}
                    return BuildReport(where, 0, counts, True, seconds=time.perf_counter() - started, up_to_date=True)
                generation = target or store.generation(new_generation_id())
                check_writable(index_path, writing=generation.root)
                for other in store.unpublished(live):
                    if other.id != generation.id:
                        store.discard(other)  # an unfinished build of something else: this build replaces it
                # A rebuild beside a live index gives the room back on a full disk, so the live index can still be
                # opened.
                give_back = (lambda: store.discard(generation)) if live is not None and generation != live else None
                with explain_write_errors(index_path, generation.root, give_back):
                    in_force = writer.create(manifest, generation)
                    plan = _Plan(generation.id, in_force.to_json(), _todo(writer, corpus),
                                 max(1, min(int(options.batch_size), writer.batch_limit)))
                    announce(plan)
                    return _fill(writer, corpus, towers, options, shard, plan, generation.images_dir, started,
                                 where)


@dataclass
class _Plan:
    """What the main process tells the others to build: the generation, its manifest, the rows, the batch size."""

    generation: str | None
    manifest: str
    todo: list[int]  # corpus positions still to embed
    step: int


def _build_part(dataset: datasets.Dataset | datasets.DatasetDict, towers: Towers, location: IndexLocation,
                options: BuildOptions, shard: Shard, source: str | None, started: float) -> BuildReport:
    """The build on a process other than the main one: its part of the plan the main process announces."""
    where = location.describe()
    plan = shard.receive_plan()
    if plan is None:
        return BuildReport(where, 0, {}, True, seconds=time.perf_counter() - started, up_to_date=True)
    corpus = Corpus(dataset, source or "<in-memory data set>", options.split)
    generation = Generations(location).generation(plan.generation)
    with explain_write_errors(location.index_dir, generation.root):  # this process writes image copies too
        if location.embedded:  # one writer per database: the records go through the main process
            return _fill(None, corpus, towers, options, shard, plan, generation.images_dir, started, where)
        with IndexWriter(location, image_max_side=options.image_max_side) as writer:
            writer.create(Manifest.from_json(plan.manifest), generation)
            return _fill(writer, corpus, towers, options, shard, plan, generation.images_dir, started, where)


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


def _todo(writer: IndexWriter, corpus: Corpus) -> list[int]:
    """Corpus positions the generation lacks a record (or the image copy) of; records of rows no longer in the data
    set are deleted (only possible after a crash mid-way of an old schema)."""
    expected = {modality: corpus.expected_ids(modality) for modality in MODALITIES}
    present = {}
    for modality in MODALITIES:
        present[modality] = writer.ids(modality)
        writer.delete(modality, sorted(present[modality] - expected[modality]))
    stored_images = writer.stored_images()
    return [
        position
        for position, tweet_id in enumerate(corpus.ids)
        if any(tweet_id in expected[m] and tweet_id not in present[m] for m in MODALITIES)
        or image_file_name(tweet_id) not in stored_images
    ]


def _fill(writer: IndexWriter | None, corpus: Corpus, towers: Towers, options: BuildOptions, shard: Shard,
          plan: _Plan, images_dir: Path | None, started: float, where: str) -> BuildReport:
    """Embed this process's part of ``plan.todo`` batch by batch, write it, and (main process) complete the
    generation, unless ``max_batches`` stops every process first.

    ``writer`` is None on a process whose records the main process writes (an embedded database in a sharded build).
    Every process takes as many steps as the largest part needs, so the per-step gather pairs up.
    """
    from tqdm.auto import tqdm

    step = plan.step
    mine = shard.part(plan.todo)
    needed = -(-shard.largest_part(len(plan.todo)) // step)
    steps = needed if options.max_batches is None else min(needed, options.max_batches)
    batches = [mine[number * step:(number + 1) * step] for number in range(steps)]
    gathering = shard.count > 1 and (writer is None or writer.location.embedded)
    label = f"{shard.describe()}: " if shard.count > 1 else ""
    logger.info("%s%d of %d tweets to embed into %s (batches of %d)", label, len(mine), len(corpus), where, step)
    skipped: list[str] = []
    embedded = 0
    with tqdm(total=len(mine), desc="indexing tweets", unit="tweet", disable=not (options.progress and shard.main)
              ) as bar, \
            BatchReader(corpus, [batch for batch in batches if batch], towers, images_dir,
                        options.image_max_side) as reader:
        ready = iter(reader)
        for number, positions in enumerate(batches):
            done = embed(next(ready), towers, corpus.attribute_names) if positions else EmbeddedBatch([], [])
            for part in (shard.gather(done) or []) if gathering else [done]:
                part.write(writer)
            skipped += done.skipped_images
            embedded += len(positions)
            bar.update(len(positions))
            logger.info("%sbatch %d done: %d/%d tweets embedded", label, number + 1, embedded, len(mine))
    shard.barrier()  # every process's records are written
    totals = shard.gather((embedded, skipped))
    finished = steps == needed
    if not finished:
        logger.info("stopped after %d batches; run the build again to finish", steps)
    if not shard.main:  # its part is written; the main process publishes (no one waits on it meanwhile)
        return BuildReport(where, embedded, {}, finished, skipped, time.perf_counter() - started)
    counts = (writer.complete(keep_images={image_file_name(tweet_id) for tweet_id in corpus.ids}) if finished
              else writer.counts())
    return BuildReport(where, sum(count for count, _ in totals), counts, finished,
                       [tweet_id for _, ids in totals for tweet_id in ids], time.perf_counter() - started,
                       embedded_by_process=[count for count, _ in totals])


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
