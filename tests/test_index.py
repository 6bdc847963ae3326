"""Index build: exact contents, resumption after interruptions (incl. SIGKILL), staleness, persistence, Hub round trip.

Every check runs against the embedded database and, through the ``--chroma_host`` path, against a real
``chroma run`` server started by the tests. The expected embeddings are computed here, straight from the data
set and the towers, and compared with what Chroma returns; persistence is checked from a freshly started process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.chroma_server import Backend, backend_fixture
from tests.faults_limits import (
    make_unwritable,
    make_writable_again,
    preexec_file_size_limit,
    preexec_without_root_file_powers,
    private_tmpfs_available,
    run_in_private_mount_namespace,
)
from tests.helpers import tree_digest
from tweetmaker import index as index_module
from tweetmaker.cards import markdown_table
from tweetmaker.index import (
    GENERATIONS_DIRNAME,
    IMAGES_DIRNAME,
    MODALITIES,
    IncompleteIndexError,
    IndexLockedError,
    IndexNotFoundError,
    StaleIndexError,
    build_index,
    build_lock,
    make_client,
    open_index,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Equal up to float noise: the index embeds in its own batch sizes, the reference in others.
ATOL = 1e-5
NEIGHBOURS = 10  # how deep the check looks for an item queried with its own embedding


@pytest.fixture(scope="module", params=["embedded", "server"])
def backend(request, tmp_path_factory):
    yield from backend_fixture(request, tmp_path_factory)


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def towers_dirs(tiny_clip_dir, tmp_path_factory) -> dict[str, Path]:
    """Two different sets of saved towers ("a" from the session's tiny CLIP, "b" from another seed)."""
    from tweetmaker.towers import build_towers_from_base, write_tiny_clip

    root = tmp_path_factory.mktemp("towers")
    other_base = write_tiny_clip(root / "base_b", seed=1)
    dirs = {}
    for name, base in (("a", tiny_clip_dir), ("b", other_base)):
        dirs[name] = build_towers_from_base(base, device="cpu").save(root / name)
    return dirs


@pytest.fixture(scope="module")
def towers(towers_dirs):
    from tweetmaker.towers import load_towers

    return {name: load_towers(path, device="cpu") for name, path in towers_dirs.items()}


@pytest.fixture(scope="module")
def dataset(tweets_dir):
    from tweetmaker.data import load_tweets

    return load_tweets(tweets_dir)


@pytest.fixture(scope="module")
def small_dataset(dataset):
    """A 72-row slice of both splits: keeps the many builds of the property test quick."""
    import datasets

    return datasets.DatasetDict(
        {"train": dataset["train"].select(range(48)), "test": dataset["test"].select(range(24))}
    )


@pytest.fixture(scope="module")
def big_dataset_dir(tmp_path_factory) -> Path:
    """1,100 tweets: above Chroma's sync threshold (1,000), where its HNSW index is flushed differently."""
    from train import prepare_dataset
    from tweetmaker.synthetic import generate_corpus

    root = tmp_path_factory.mktemp("big")
    generate_corpus(root / "source", rows=1100, seed=1)
    prepare_dataset.main(["--source_dir", str(root / "source"), "--output_dir", str(root / "dataset")])
    return root / "dataset"


def reference_embeddings(dataset, towers) -> dict[str, dict[str, np.ndarray]]:
    """{modality: {tweet_id: embedding}} computed directly from the rows, the way a reader of the spec would."""
    import datasets

    from tweetmaker.data import decode_image

    rows = []
    for part in dataset.values():
        rows.extend(part.cast_column("image", datasets.Image(decode=False)))
    images = [decode_image(row["image"]["bytes"] or row["image"]["path"]) for row in rows]
    with_text = [row for row in rows if row["text"].strip()]
    with_tags = [row for row in rows if row["hashtags"].strip()]
    return {
        "image": dict(zip([row["tweet_id"] for row in rows], towers.encode_images(images))),
        "text": dict(zip([row["tweet_id"] for row in with_text], towers.encode_texts([r["text"] for r in with_text]))),
        "hashtag": dict(
            zip([row["tweet_id"] for row in with_tags], towers.encode_hashtags([r["hashtags"] for r in with_tags]))
        ),
    }


@pytest.fixture(scope="module")
def small_reference(small_dataset, towers):
    return {name: reference_embeddings(small_dataset, t) for name, t in towers.items()}


@pytest.fixture(scope="module")
def reference_a(dataset, towers):
    return reference_embeddings(dataset, towers["a"])


# ------------------------------------------------------------------------------------------------ checks


def dump_index(index) -> dict[str, dict[str, list]]:
    """Ids, embeddings and each item's nearest neighbours (the top 10, queried with its own embedding) per
    modality."""
    out = {}
    for modality in MODALITIES:
        ids, embeddings = index.all_embeddings(modality)
        nearest = [[hit.id for hit in hits] for hits in index.query(modality, embeddings, k=NEIGHBOURS)] if ids else []
        out[modality] = {"ids": ids, "embeddings": embeddings.tolist(), "nearest": nearest,
                         "count": index.count(modality)}
    return out


def dump_from_fresh_process(index_dir: Path, backend: Backend, prefix: str, tmp_path: Path) -> dict:
    """The same dump, made by a newly started Python process (persistence across a restart)."""
    output = tmp_path / f"dump-{time.monotonic_ns()}.json"
    script = (
        "import json, sys; from tweetmaker.index import open_index; from tests.test_index import dump_index; "
        "host = sys.argv[2] or None; port = int(sys.argv[3]) if sys.argv[3] else None; "
        "index = open_index(sys.argv[1], host=host, port=port, prefix=sys.argv[4]); "
        "json.dump(dump_index(index), open(sys.argv[5], 'w')); index.close()"
    )
    args = [str(index_dir), backend.host or "", str(backend.port or ""), prefix, str(output)]
    subprocess.run([sys.executable, "-c", script, *args], cwd=REPO_ROOT, check=True, timeout=120)
    return json.loads(output.read_text())


def assert_dump_matches(dump: dict, reference: dict[str, dict[str, np.ndarray]]) -> None:
    """Exactly the corpus ids, once each, the towers' embeddings, and every item found by its own embedding."""
    for modality in MODALITIES:
        got, expected = dump[modality], reference[modality]
        assert len(got["ids"]) == len(set(got["ids"])), f"{modality}: duplicate ids"
        assert sorted(got["ids"]) == sorted(expected), f"{modality}: ids differ from the corpus"
        assert got["count"] == len(expected)
        embeddings = np.asarray(got["embeddings"], dtype=np.float32)
        wanted = np.stack([expected[tweet_id] for tweet_id in got["ids"]])
        np.testing.assert_allclose(embeddings, wanted, atol=ATOL, err_msg=f"{modality}: embeddings differ")
        # Every item is found by its own embedding: among its top 10, or behind exact duplicates (identical texts
        # and hashtags exist, more than 10 of some). Not strictly first: the untrained towers put distinct synthetic
        # images within 2e-3 cosine of each other, and HNSW (approximate, its graph shaped by the insertion order of
        # a resumed build) may rank such a near-twin above the item itself. A record stored under the wrong id, or
        # missing from the graph, still fails.
        position = {tweet_id: i for i, tweet_id in enumerate(got["ids"])}
        for i, nearest in enumerate(got["nearest"]):
            tweet_id = got["ids"][i]
            duplicate = bool(nearest) and float(wanted[i] @ wanted[position[nearest[0]]]) >= 1 - 1e-6
            assert tweet_id in nearest or duplicate, f"{modality}: {tweet_id} is not among its own nearest {nearest}"


def assert_index_matches(index_dir, backend, prefix, reference, tmp_path, fresh_process=True) -> None:
    index = open_index(index_dir, **backend.location(prefix))
    try:
        assert index.completed
        assert_dump_matches(dump_index(index), reference)
        ids, _ = index.all_embeddings("image")
        for hit in index.get("image", ids[:5], with_embeddings=False).values():
            assert index.image_path(hit.metadata) is not None, "a record's image copy is missing"
    finally:
        index.close()
    if fresh_process:
        backend.restart()  # a server must serve the same index after a restart, as a new process must read it
        assert_dump_matches(dump_from_fresh_process(index_dir, backend, prefix, tmp_path), reference)


# ------------------------------------------------------------------------------------------------ tests


def test_build_holds_the_corpus_with_metadata_and_a_second_run_changes_nothing(
    backend, dataset, towers, reference_a, tmp_path
):
    prefix = backend.new_prefix()
    report = build_index(dataset, towers["a"], tmp_path / "index", source="synthetic", progress=False,
                         batch_size=100, **backend.location(prefix))
    assert report.completed and report.embedded == 240 and not report.skipped_images
    assert_index_matches(tmp_path / "index", backend, prefix, reference_a, tmp_path, fresh_process=False)

    index = open_index(tmp_path / "index", towers=towers["a"], **backend.location(prefix))
    row = dataset["train"][0]
    hit = index.get("text", [row["tweet_id"]], with_embeddings=False)[row["tweet_id"]]
    meta = hit.metadata
    assert meta["text"] == row["text"] and meta["hashtags"] == row["hashtags"]
    assert meta["hashtag_list"] == row["hashtag_list"]
    assert (meta["likes"], meta["retweets"], meta["replies"]) == (row["likes"], row["retweets"], row["replies"])
    assert isinstance(meta["date"], int) and abs(meta["date"] - index_module.to_epoch_seconds(row["date"])) == 0
    assert meta["attr_topic"] == row["attr_topic"] and meta["split"] == "train"
    from PIL import Image

    with Image.open(index.image_path(meta)) as stored:
        assert max(stored.size) <= index_module.IMAGE_MAX_SIDE
    # Readable by an app that runs as another user than the builder (atomic writes must not leave them 0600).
    assert index.image_path(meta).stat().st_mode & 0o044 == 0o044
    assert (tmp_path / "index" / "manifest.json").stat().st_mode & 0o044 == 0o044
    config = index.collections["image"].configuration["hnsw"]
    assert config["space"] == "cosine" and config["ef_search"] == index_module.DEFAULT_HNSW["ef_search"]
    assert index.manifest.embedding_dim == towers["a"].embedding_dim
    index.close()

    images_before = sorted(p.name for p in (tmp_path / "index" / IMAGES_DIRNAME).iterdir())
    again = build_index(dataset, towers["a"], tmp_path / "index", source="elsewhere", progress=False,
                        **backend.location(prefix))
    assert again.up_to_date and again.embedded == 0 and again.counts == report.counts
    assert sorted(p.name for p in (tmp_path / "index" / IMAGES_DIRNAME).iterdir()) == images_before
    if backend.host is None:
        assert (tmp_path / "index" / "manifest.json").is_file()


BUILD_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["build", "rebuild"]),
        st.sampled_from(["a", "b"]),
        st.one_of(st.none(), st.integers(min_value=0, max_value=2)),  # stop after N batches (an interruption)
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(steps=BUILD_STEPS)
def test_random_sequences_of_builds_interruptions_and_rebuilds(
    backend, small_dataset, towers, small_reference, tmp_path_factory, steps
):
    """Whatever happened before, finishing the build leaves exactly the corpus, embedded by the right towers; and at
    every step in between, a complete index that was live stays live and whole until a finished build replaces it."""
    index_dir = tmp_path_factory.mktemp("sequence") / "index"
    prefix = backend.new_prefix()
    live = unfinished = None  # the towers of the live index, and of an unfinished build
    for action, which, max_batches in steps:
        kwargs = {"batch_size": 32, "max_batches": max_batches, "progress": False, **backend.location(prefix)}
        resumes = unfinished == which  # an unfinished build of the same towers is resumed, with or without --rebuild
        if action == "build" and not resumes and (live or unfinished) not in (None, which):
            with pytest.raises(StaleIndexError, match="--rebuild"):
                build_index(small_dataset, towers[which], index_dir, **kwargs)
            continue
        report = build_index(small_dataset, towers[which], index_dir, rebuild=action == "rebuild", **kwargs)
        assert report.up_to_date == (action == "build" and not resumes and live == which)
        if report.completed:
            live, unfinished = which, (None if resumes or not report.up_to_date else unfinished)
        else:
            unfinished = which
        if live is None:
            with pytest.raises(StaleIndexError, match="incomplete"):
                open_index(index_dir, **backend.location(prefix))
        else:  # not touched by an unfinished build: opens, complete, every record there
            index = open_index(index_dir, towers=towers[live], **backend.location(prefix))
            assert [index.count(modality) for modality in MODALITIES] == [72, 72, 72]
            index.close()
    final = unfinished or live or "a"
    report = build_index(small_dataset, towers[final], index_dir, batch_size=32, progress=False,
                         **backend.location(prefix))
    assert report.completed
    assert_index_matches(index_dir, backend, prefix, small_reference[final], tmp_path_factory.mktemp("dump"))
    assert_one_generation(index_dir, backend, prefix)


def assert_one_generation(index_dir: Path, backend: Backend, prefix: str) -> None:
    """Nothing left behind: the live generation and at most the one kept for roll-back, on disk and, on a server,
    their three collections each and the live pointer."""
    generations = list((index_dir / GENERATIONS_DIRNAME).iterdir())
    kept = (index_dir / "previous").is_symlink() if backend.host is None else None
    assert 1 <= len(generations) <= 2, generations
    if backend.host is None:
        assert len(generations) == 1 + kept, generations
    if backend.host is not None:
        client = make_client(host=backend.host, port=backend.port)
        names = [c.name for c in client.list_collections() if c.name.startswith(prefix)]
        assert len(names) == 1 + 3 * len(generations), names


@pytest.fixture(scope="module")
def big_dataset(big_dataset_dir):
    from tweetmaker.data import load_tweets

    return load_tweets(big_dataset_dir)


@pytest.fixture(scope="module")
def big_reference(big_dataset, towers):
    return reference_embeddings(big_dataset, towers["a"])


def test_build_killed_with_sigkill_resumes_to_exactly_one_record_per_tweet(
    backend, big_dataset_dir, big_dataset, big_reference, towers_dirs, towers, tmp_path
):
    """SIGKILL mid-build (1,100 tweets, past Chroma's 1,000-item flush threshold), then resume, then restart."""
    index_dir = tmp_path / "index"
    prefix = backend.new_prefix()
    command = [sys.executable, "-m", "tweetmaker.index", "build", "--dataset", str(big_dataset_dir),
               "--towers", str(towers_dirs["a"]), "--index_dir", str(index_dir), "--batch_size", "150",
               "--no_progress", *backend.cli_args(prefix)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        for line in process.stderr:
            if "batch 3 done" in line:
                break
        time.sleep(0.3)  # land somewhere inside the next batch
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    with pytest.raises(IncompleteIndexError, match="incomplete"):
        open_index(index_dir, **backend.location(prefix))

    report = build_index(big_dataset, towers["a"], index_dir, source=str(big_dataset_dir), progress=False,
                         **backend.location(prefix))
    assert report.completed and 0 < report.embedded < 1100
    assert report.counts == {"image": 1100, "text": 1100, "hashtag": 1100}
    assert_index_matches(index_dir, backend, prefix, big_reference, tmp_path)


def test_stale_index_is_refused_with_a_clear_message_and_rebuild_replaces_it(
    backend, small_dataset, dataset, towers, small_reference, tmp_path
):
    index_dir = tmp_path / "index"
    prefix = backend.new_prefix()
    location = backend.location(prefix)
    build_index(small_dataset, towers["a"], index_dir, progress=False, **location)

    with pytest.raises(StaleIndexError, match="built with towers") as error:
        open_index(index_dir, towers=towers["b"], **location)
    assert "--rebuild" in str(error.value)
    with pytest.raises(StaleIndexError, match="built from data set"):  # same towers, other data
        build_index(dataset, towers["a"], index_dir, progress=False, **location)
    with pytest.raises(StaleIndexError, match="built with towers .* --rebuild"):  # other towers, same data
        build_index(small_dataset, towers["b"], index_dir, progress=False, **location)
    # Refused builds wrote nothing: the index still serves towers "a", complete, with their embeddings.
    index = open_index(index_dir, towers=towers["a"], **location)
    try:
        assert_dump_matches(dump_index(index), small_reference["a"])
    finally:
        index.close()

    report = build_index(dataset, towers["b"], index_dir, rebuild=True, progress=False, **location)
    assert report.completed and report.counts["image"] == 240
    open_index(index_dir, towers=towers["b"], **location).close()
    if backend.host is None:
        stored = {p.name for p in (index_dir / IMAGES_DIRNAME).iterdir()}
        assert stored == {index_module.image_file_name(i) for part in dataset.values() for i in part["tweet_id"]}


def _cli_error(stderr: str) -> str:
    """The one line the CLI prints for a failed command; a traceback instead fails the test."""
    assert "Traceback" not in stderr, stderr[-4000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr[-4000:]
    return errors[0]


# The library call, in a process that may not write the index: both a plain build and a --rebuild (which deletes
# before it writes) must refuse before changing anything.
_BUILD_BOTH_WAYS = """
import json, sys
from tweetmaker.index import build_index
outcome = {}
for rebuild in (False, True):
    try:
        build_index(sys.argv[1], sys.argv[2], sys.argv[3], rebuild=rebuild, progress=False)
        outcome[str(rebuild)] = None
    except Exception as error:
        outcome[str(rebuild)] = [type(error).__name__, str(error)]
print(json.dumps(outcome))
"""


def test_build_into_a_directory_it_may_not_write_fails_clearly_and_changes_nothing(
    small_dataset, towers_dirs, towers, small_reference, tmp_path
):
    """The index directory belongs to someone else and is read-only: a clear error, and the index is left as it was.

    Tests run as root, whom file modes do not stop, so the builds run as root without its file powers (see
    tests/faults_limits.py): the kernel refuses their writes as it would an ordinary user's.
    """
    source = tmp_path / "data"
    small_dataset.save_to_disk(str(source))
    index_dir = tmp_path / "index"
    build_index(small_dataset, towers["a"], index_dir, progress=False)
    before = tree_digest(index_dir)
    make_unwritable(index_dir)
    try:
        run = {"cwd": REPO_ROOT, "capture_output": True, "text": True, "timeout": 600,
               "preexec_fn": preexec_without_root_file_powers}
        library = subprocess.run([sys.executable, "-c", _BUILD_BOTH_WAYS, str(source), str(towers_dirs["a"]),
                                  str(index_dir)], **run)
        cli = subprocess.run([sys.executable, "-m", "tweetmaker.index", "build", "--dataset", str(source),
                              "--towers", str(towers_dirs["a"]), "--index_dir", str(index_dir), "--rebuild",
                              "--no_progress"], **run)
        # Reading needs write access too (Chroma's database), so the app and `info` refuse it clearly as well.
        info = subprocess.run([sys.executable, "-m", "tweetmaker.index", "info", "--index_dir", str(index_dir)], **run)
        app = subprocess.run([sys.executable, "app.py", "--towers", str(towers_dirs["a"]), "--dataset", str(source),
                              "--index_dir", str(index_dir)], **{**run, "timeout": 300})
        after = tree_digest(index_dir)
    finally:
        make_writable_again(index_dir)

    assert library.returncode == 0, library.stderr[-4000:]
    outcome = json.loads(library.stdout.splitlines()[-1])
    for rebuild in ("False", "True"):
        assert outcome[rebuild] is not None, f"rebuild={rebuild}: the build succeeded in a read-only directory"
        kind, message = outcome[rebuild]
        assert kind == "IndexNotWritableError", outcome[rebuild]
        assert f"Cannot write the index directory {str(index_dir)!r}" in message and "Permission denied" in message
        assert "Make it writable" in message and "--index_dir" in message and "Nothing" in message
    assert cli.returncode == 2, cli.stderr[-4000:]
    assert _cli_error(cli.stderr).startswith(f"error: Cannot write the index directory {str(index_dir)!r}")
    for reader in (info, app):
        assert reader.returncode != 0 and "Traceback" not in reader.stderr, reader.stderr[-4000:]
        assert "cannot be opened: Chroma needs write access to it even to read" in _cli_error(reader.stderr)
    assert after == before
    index = open_index(index_dir, towers=towers["a"])
    try:
        assert_dump_matches(dump_index(index), small_reference["a"])
    finally:
        index.close()


def _assert_out_of_room(stderr: str, index_dir: Path, *phrases: str) -> None:
    message = _cli_error(stderr)
    assert message.startswith(f"error: Cannot write the index directory {str(index_dir)!r}: "), message
    assert all(phrase in message for phrase in phrases), message
    assert "run the same `python -m tweetmaker.index build` command again" in message
    # It stopped part-way, after records were written: what follows is a resumption, not a first build.
    assert "batch 1 done" in stderr, stderr[-4000:]


def _build_command(dataset_dir: Path, towers_dir: Path) -> list[str]:
    """The CLI build in small batches (several before the room runs out), without its --index_dir."""
    return [sys.executable, "-m", "tweetmaker.index", "build", "--dataset", str(dataset_dir), "--towers",
            str(towers_dir), "--batch_size", "32", "--no_progress"]


def test_build_past_the_file_size_limit_fails_clearly_and_resumes_once_lifted(
    tweets_dir, dataset, towers_dirs, towers, reference_a, tmp_path
):
    """``ulimit -f`` (EFBIG) stops the database half-way; with the limit gone, the same build finishes the job."""
    index_dir = tmp_path / "index"
    # The 240-tweet index's database grows to about 1.9 MB; 1.5 MB lets a few batches in and stops the rest.
    limited = subprocess.run([*_build_command(tweets_dir, towers_dirs["a"]), "--index_dir", str(index_dir)],
                             cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=600,
                             preexec_fn=preexec_file_size_limit(1_500_000))
    assert limited.returncode == 2, limited.stderr[-4000:]
    _assert_out_of_room(limited.stderr, index_dir, "file size limit", "File too large", "ulimit -f")
    with pytest.raises(IncompleteIndexError):
        open_index(index_dir)

    report = build_index(dataset, towers["a"], index_dir, source=str(tweets_dir), progress=False)
    assert report.completed and 0 < report.embedded < 240
    assert report.counts == {"image": 240, "text": 240, "hashtag": 240}
    assert_index_matches(index_dir, Backend("embedded"), "", reference_a, tmp_path)  # also from a fresh process
    assert not list(index_dir.rglob(".tmp-*")), "a probe or partial image was left behind"


# Inside a private mount namespace: a 1.8 MB tmpfs fills up during the build; grown to 256 MB, the build resumes.
# The namespace (and the tmpfs) goes away with the shell, so the finished index is copied out for the checks.
_FULL_DISK_SCRIPT = """
mount -t tmpfs -o size=1800k tmpfs "$DISK" || exit 90
"$@" --index_dir "$DISK/index" >"$OUT/first.out" 2>"$OUT/first.err"; echo $? >"$OUT/first.rc"
mount -o remount,size=256m "$DISK" || exit 91
"$@" --index_dir "$DISK/index" >"$OUT/second.out" 2>"$OUT/second.err"; echo $? >"$OUT/second.rc"
cp -a "$DISK/index" "$OUT/index"
"""


def test_build_on_a_full_disk_fails_clearly_and_resumes_once_there_is_room(
    tweets_dir, towers_dirs, towers, reference_a, tmp_path
):
    """A real full disk (ENOSPC) on a small tmpfs; skipped where no tmpfs can be mounted (no CAP_SYS_ADMIN)."""
    why_not = private_tmpfs_available()
    if why_not:
        pytest.skip(why_not)
    command = _build_command(tweets_dir, towers_dirs["a"])  # the script adds --index_dir on the tmpfs
    disk, out, finished = run_in_private_mount_namespace(_FULL_DISK_SCRIPT, command, tmp_path, cwd=REPO_ROOT)
    assert finished.returncode == 0, finished.stderr[-4000:]
    first_rc, first_err = (out / "first.rc").read_text().strip(), (out / "first.err").read_text()
    assert first_rc == "2", first_err[-4000:]
    _assert_out_of_room(first_err, disk / "index", "the disk is full", "No space left on device")

    assert (out / "second.rc").read_text().strip() == "0", (out / "second.err").read_text()[-4000:]
    report = json.loads((out / "second.out").read_text())
    assert report["completed"] and 0 < report["embedded"] < 240
    assert report["counts"] == {"image": 240, "text": 240, "hashtag": 240}
    assert_index_matches(out / "index", Backend("embedded"), "", reference_a, tmp_path, fresh_process=False)


def test_one_writer_at_a_time(small_dataset, towers, tmp_path):
    index_dir = tmp_path / "index"
    build_index(small_dataset, towers["a"], index_dir, progress=False)
    with build_lock(index_dir):
        with pytest.raises(IndexLockedError, match="Another process"):
            build_index(small_dataset, towers["a"], index_dir, progress=False)
        open_index(index_dir).close()  # a build writes a generation of its own: the live one can still be read
    open_index(index_dir).close()


def test_missing_index_says_how_to_make_one(tmp_path):
    with pytest.raises(IndexNotFoundError, match="tweetmaker.index build"):
        open_index(tmp_path / "nothing")


def test_cli_build_info_push_and_pull_round_trip(small_dataset, towers_dirs, towers, fake_hub, tmp_path, capsys):
    source = tmp_path / "data"
    small_dataset.save_to_disk(str(source))
    index_dir = tmp_path / "index"
    assert index_module.main(["build", "--dataset", str(source), "--towers", str(towers_dirs["a"]),
                              "--index_dir", str(index_dir), "--no_progress"]) == 0
    assert json.loads(capsys.readouterr().out)["completed"] is True
    assert index_module.main(["info", "--index_dir", str(index_dir)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"] == {"image": 72, "text": 72, "hashtag": 72}
    assert info["manifest"]["towers"]["content_hash"] == towers["a"].identity["content_hash"]

    index_module.push_index(index_dir, "someone/tweet-index", api=fake_hub)
    repo = fake_hub.repo_dir("someone/tweet-index", "dataset")
    assert (repo / "manifest.json").is_file() and (repo / "README.md").is_file() and (repo / "chroma").is_dir()
    assert not (repo / index_module.LOCK_FILENAME).exists()
    assert fake_hub.calls_named("create_repo")[0]["repo_type"] == "dataset"

    pulled = index_module.pull_index("someone/tweet-index", tmp_path / "pulled", api=fake_hub)
    original = open_index(index_dir, towers=towers["a"])
    copy = open_index(pulled, towers=towers["a"])
    query = towers["a"].encode_texts(["a robot on a red background"])
    assert [h.id for h in copy.query("image", query, 5)[0]] == [h.id for h in original.query("image", query, 5)[0]]
    hit = copy.query("image", query, 1)[0][0]
    # The pulled copy serves its own images (the live generation's, which INDEX_DIR/images links to).
    assert copy.image_path(hit.metadata).parent.resolve() == (pulled / IMAGES_DIRNAME).resolve()
    original.close()
    copy.close()


def test_query_edge_cases_never_crash(small_dataset, towers, tmp_path):
    index_dir = tmp_path / "index"
    build_index(small_dataset, towers["a"], index_dir, progress=False)
    index = open_index(index_dir)
    query = towers["a"].encode_texts(["robot"])
    assert len(index.query("image", query, 10_000)[0]) == 72  # k above the collection size
    assert index.query("image", query, 0) == [[]]
    assert index.get("image", ["no-such-id"]) == {}
    index.close()


def test_measure_hnsw_reports_recall_against_exact_search():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, 16)).astype(np.float32)
    table = index_module.measure_hnsw(vectors, [{"max_neighbors": 16, "ef_construction": 100, "ef_search": 100}],
                                      n_queries=50)
    assert table[0]["recall@10"] >= 0.99 and table[0]["latency_ms_mean"] > 0
    exact = index_module.exact_neighbours(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), vectors[:3], 1)
    assert exact[:, 0].tolist() == [0, 1, 2]
    assert "recall@10" in markdown_table(table).splitlines()[0]


def test_dates_become_epoch_seconds():
    from datetime import datetime, timezone

    assert index_module.to_epoch_seconds(datetime(2024, 1, 1, tzinfo=timezone.utc)) == 1704067200
    assert index_module.to_epoch_seconds(datetime(2024, 1, 1)) == 1704067200  # naive dates are UTC
    assert index_module.to_epoch_seconds("2024-01-01 00:00:00") == 1704067200
    assert index_module.to_epoch_seconds(None) is None and index_module.to_epoch_seconds("not a date") is None


def test_the_manifest_records_the_data_sets_identity_as_tweetmaker_data_computes_it(small_dataset, towers, tmp_path):
    """One identity for a data set wherever it is recorded: the index manifest's is ``dataset_identity``'s, and its
    content hash follows the content, not where the data was loaded from."""
    from tweetmaker.data import dataset_identity, load_tweets

    build_index(small_dataset, towers["a"], tmp_path / "index", source="synthetic", progress=False)
    index = open_index(tmp_path / "index")
    assert index.manifest.dataset == dataset_identity("synthetic", small_dataset)
    assert index.manifest.num_rows == 72 and index.manifest.dataset["splits"] == ["train", "test"]
    index.close()
    small_dataset.save_to_disk(str(tmp_path / "copy"))
    copy = dataset_identity("elsewhere", load_tweets(tmp_path / "copy"))
    assert copy["content_hash"] == index.manifest.dataset["content_hash"]
    changed = small_dataset["train"].map(lambda row, i: {"text": row["text"] + ("!" if i == 7 else "")},
                                         with_indices=True)
    edited = type(small_dataset)({"train": changed, "test": small_dataset["test"]})
    assert dataset_identity("synthetic", edited)["content_hash"] != copy["content_hash"]
    assert dataset_identity("synthetic", small_dataset, splits="test")["num_rows"] == {"test": 24}


def test_the_benchmarks_synthetic_index_is_written_by_the_index_writer(tmp_path):
    """benchmarks/workspace.py writes through IndexWriter: the app opens what it writes like a built index."""
    from benchmarks import workspace

    vectors = workspace.synthetic_vectors(300, 16)
    index_dir = workspace.write_synthetic_index(tmp_path / "index", {"source": "x", "content_hash": "abc"}, vectors,
                                                ["robots at work", "a red sunset"])
    index = open_index(index_dir)
    try:
        assert [index.count(modality) for modality in MODALITIES] == [300, 200, 200]
        assert index.manifest.towers["content_hash"] == "abc" and index.generation is not None
        hit = index.query("image", vectors[:1], 1)[0][0]
        assert hit.id == "syn0000000" and index.image_path(hit.metadata) is not None
        assert hit.metadata["hashtag_list"] == ["AI", "MachineLearning"]
    finally:
        index.close()
