"""Chroma collections of the corpus: build (resumable, non-destructive), open for reading, tune, push and pull.

One collection per modality (``image``, ``text``, ``hashtag``), ids = ``tweet_id``, embeddings from the towers
(Chroma's own embedding function is never used), cosine HNSW, and the tweet's metadata on every record so any hit can
be shown on its own. The images the app shows are downscaled copies kept in the index directory, so the app needs
neither the data set nor its original images.

An index directory looks like::

    INDEX_DIR/generations/<id>/  one complete copy of the index (or an unfinished build):
        chroma/                    the embedded Chroma database (absent when a Chroma server holds the collections)
        images/                    <sha1(tweet_id)>.jpg, downscaled copies of the tweets' images
        manifest.json              what built it, written when its build completes
    INDEX_DIR/current            symlink to the live generation; chroma, images, manifest.json: symlinks through it
    INDEX_DIR/previous           symlink to the generation kept for ``rollback``
    INDEX_DIR/.build.lock        held by the one process that may write (Chroma is not process-safe on a directory)

A build writes a new generation beside the live one and publishes it in one atomic step (``generations``), so a
rebuild that is killed or fills the disk leaves the old index serving. Indexes from before generations (chroma/,
images/, manifest.json right in INDEX_DIR) are read as they are and replaced by a generation when rebuilt.

The manifest (stored in every collection's metadata, so it travels with the data it describes) records the towers,
the embedding size, the data set's identity (``tweetmaker.data.dataset_identity``, with its content hash) and a
schema version; an index whose manifest does not match what the caller has raises ``StaleIndexError`` instead of
answering with wrong neighbours.

The modules, in the order a build uses them: ``layout`` (names, manifest, location, client, lock), ``generations``
(live pointer, publishing), ``corpus`` (rows, record metadata), ``storage`` (disk checks, image copies), ``writer``
(``IndexWriter``, the only code that writes an index), ``builder`` (``build_from`` / ``build_index``), ``reader``
(``open_index``, ``TweetIndex``), ``follow`` (``FollowingIndex``: the app's reader, which moves to each newly
published generation of its towers between requests), ``tuning`` (HNSW measurements), ``remote`` (Hub push /
pull), ``cli`` (``python -m tweetmaker.index``). Importing this package loads neither chromadb nor torch.
"""

from tweetmaker.index.builder import BuildOptions, BuildReport, build_from, build_index
from tweetmaker.index.cli import main
from tweetmaker.index.corpus import Corpus, image_file_name, record_metadata, to_epoch_seconds
from tweetmaker.index.errors import (
    IncompleteIndexError,
    IndexDiskFullError,
    IndexLockedError,
    IndexNotFoundError,
    IndexNotWritableError,
    IndexUnavailableError,
    StaleIndexError,
    TweetIndexError,
)
from tweetmaker.index.follow import FollowingIndex
from tweetmaker.index.generations import Generation, Generations
from tweetmaker.index.layout import (
    CHROMA_DIRNAME,
    COMPLETED_KEY,
    DEFAULT_BATCH_SIZE,
    DEFAULT_HNSW,
    GENERATIONS_DIRNAME,
    IMAGE_MAX_SIDE,
    IMAGES_DIRNAME,
    LIVE_LINK,
    LOCK_FILENAME,
    MANIFEST_FILENAME,
    MANIFEST_KEY,
    MODALITIES,
    POINTER_COLLECTION,
    SCHEMA_VERSION,
    IndexLocation,
    Manifest,
    build_lock,
    collection_name,
    describe_towers,
    is_locked,
    make_client,
    short_hash,
    towers_key,
    towers_manifest_fields,
)
from tweetmaker.index.reader import Hit, TweetIndex, open_index
from tweetmaker.index.remote import pull_index, push_index
from tweetmaker.index.storage import FAILED_WRITE_ROOM_BYTES, START_ROOM_BYTES, check_writable, write_problem
from tweetmaker.index.tuning import TUNING_GRID, exact_neighbours, measure_hnsw
from tweetmaker.index.writer import IndexWriter

__all__ = [
    "BuildOptions", "BuildReport", "CHROMA_DIRNAME", "COMPLETED_KEY", "Corpus", "DEFAULT_BATCH_SIZE",
    "DEFAULT_HNSW", "FAILED_WRITE_ROOM_BYTES", "FollowingIndex", "GENERATIONS_DIRNAME", "Generation", "Generations",
    "Hit",
    "IMAGES_DIRNAME", "IMAGE_MAX_SIDE", "IncompleteIndexError", "IndexDiskFullError", "IndexLocation",
    "IndexLockedError", "IndexNotFoundError", "IndexNotWritableError", "IndexUnavailableError", "IndexWriter",
    "LIVE_LINK", "LOCK_FILENAME", "MANIFEST_FILENAME", "MANIFEST_KEY", "MODALITIES", "Manifest",
    "POINTER_COLLECTION", "SCHEMA_VERSION", "START_ROOM_BYTES", "StaleIndexError", "TUNING_GRID", "TweetIndex",
    "TweetIndexError", "build_from", "build_index", "build_lock", "check_writable", "collection_name",
    "describe_towers", "exact_neighbours", "image_file_name", "is_locked", "main", "make_client", "measure_hnsw",
    "open_index", "pull_index", "push_index", "record_metadata", "short_hash", "to_epoch_seconds", "towers_key",
    "towers_manifest_fields", "write_problem"
]
