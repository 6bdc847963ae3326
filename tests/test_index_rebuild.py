"""``--rebuild`` never destroys the index it replaces.

Killed with SIGKILL (mid-way, or at the very step that publishes), past the file size limit or on a full disk, a
rebuild leaves the previous index complete and serving the same records; run again, it finishes the job and the new
index replaces the old one. Indexes written in the flat layout of earlier versions (and pulled copies) are read as
they are and replaced by a rebuild. Against the embedded database and, where it applies, a ``chroma run`` server.
"""

# ruff: noqa: F811 - the fixtures imported from tests/test_index.py are redefined as parameters, as pytest uses them

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chroma_server import Backend
from tests.faults_limits import preexec_file_size_limit, private_tmpfs_available, run_in_private_mount_namespace
from tests.helpers import tree_digest
from tests.test_index import (  # noqa: F401 - fixtures are used by name
    _assert_out_of_room,
    assert_dump_matches,
    assert_index_matches,
    assert_one_generation,
    backend,
    dataset,
    dump_index,
    reference_a,
    reference_embeddings,
    small_dataset,
    small_reference,
    towers,
    towers_dirs,
)
from tweetmaker.index import (
    CHROMA_DIRNAME,
    GENERATIONS_DIRNAME,
    IMAGES_DIRNAME,
    LIVE_LINK,
    MANIFEST_FILENAME,
    MODALITIES,
    POINTER_COLLECTION,
    build_index,
    make_client,
    open_index,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
# The subprocesses import this checkout's package, however (or whether) it is installed.
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture(scope="module")
def small_dataset_dir(small_dataset, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("small") / "dataset"
    small_dataset.save_to_disk(str(directory))
    return directory


@pytest.fixture(scope="module")
def reference_b(dataset, towers):
    return reference_embeddings(dataset, towers["b"])


def snapshot(index_dir: Path, backend: Backend, prefix: str, towers) -> dict:
    """Everything a reader gets: ids, embeddings, nearest neighbours and every record's metadata, per modality."""
    index = open_index(index_dir, towers=towers, **backend.location(prefix))
    try:
        assert index.completed
        dump = dump_index(index)
        for modality in MODALITIES:
            records = index.get(modality, dump[modality]["ids"], with_embeddings=False)
            dump[modality]["metadata"] = {tweet_id: hit.metadata for tweet_id, hit in sorted(records.items())}
        return dump
    finally:
        index.close()


def rebuild_command(dataset_dir: Path, towers_dir: Path, index_dir: Path, backend: Backend, prefix: str,
                    batch_size: int = 16) -> list[str]:
    return ["-m", "tweetmaker.index", "build", "--dataset", str(dataset_dir), "--towers", str(towers_dir),
            "--index_dir", str(index_dir), "--rebuild", "--batch_size", str(batch_size), "--no_progress",
            *backend.cli_args(prefix)]


def finish(command: list[str]) -> dict:
    """Run the same command again, to completion; its report."""
    done = subprocess.run([sys.executable, *command], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def test_rebuild_killed_with_sigkill_mid_way_leaves_the_old_index_serving(
    backend, small_dataset, small_dataset_dir, towers_dirs, towers, small_reference, tmp_path
):
    index_dir, prefix = tmp_path / "index", backend.new_prefix()
    build_index(small_dataset, towers["a"], index_dir, progress=False, **backend.location(prefix))
    before = snapshot(index_dir, backend, prefix, towers["a"])
    assert_dump_matches(before, small_reference["a"])

    command = rebuild_command(small_dataset_dir, towers_dirs["b"], index_dir, backend, prefix)
    process = subprocess.Popen([sys.executable, *command], cwd=REPO_ROOT, env=ENV, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True)
    try:
        for line in process.stderr:
            if "batch 2 done" in line:  # two batches of the new index written, three to go
                os.kill(process.pid, signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait(timeout=60)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, "the rebuild finished before it could be killed"

    # The old index serves as before, every record the same (read by the towers that built it).
    assert snapshot(index_dir, backend, prefix, towers["a"]) == before
    report = finish(command)  # the same rebuild again: it resumes the unfinished generation
    assert report["completed"] and 0 < report["embedded"] < 72
    assert_index_matches(index_dir, backend, prefix, small_reference["b"], tmp_path)
    assert_one_generation(index_dir, backend, prefix)


@pytest.mark.parametrize("marker, published", [
    ("rename:/" + LIVE_LINK, False),  # killed just before the rename that publishes the new generation
    # just after it, before the generation the previous publish kept for roll-back is removed
    (f"rmtree:/{GENERATIONS_DIRNAME}/", True),
])
def test_rebuild_killed_at_the_publishing_step(
    marker, published, small_dataset, small_dataset_dir, towers_dirs, towers, small_reference, tmp_path
):
    """Either the old index or the new one is live and whole at every moment; the next rebuild cleans up."""
    embedded = Backend("embedded")
    index_dir = tmp_path / "index"
    build_index(small_dataset, towers["a"], index_dir, progress=False)
    if published:  # a generation kept for roll-back, which the next publish removes
        build_index(small_dataset, towers["a"], index_dir, progress=False, rebuild=True)
    before = snapshot(index_dir, embedded, "", towers["a"])
    command = rebuild_command(small_dataset_dir, towers_dirs["b"], index_dir, embedded, "")
    killed = subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "faults_kill_on_write.py"), marker,
                             str(REPO_ROOT / "tweetmaker" / "index" / "__main__.py"), *command[2:]],
                            cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-4000:]

    if published:
        index = open_index(index_dir, towers=towers["b"])
        assert_dump_matches(dump_index(index), small_reference["b"])
        index.close()
    else:
        assert snapshot(index_dir, embedded, "", towers["a"]) == before
    report = finish(command)
    assert report["completed"] and report["embedded"] == (72 if published else 0)  # a finished generation: published
    assert_index_matches(index_dir, embedded, "", small_reference["b"], tmp_path, fresh_process=False)
    assert_one_generation(index_dir, embedded, "")
    assert not list(index_dir.glob(".tmp-*")), "a temporary link of the killed run was left behind"


def test_rebuild_past_the_file_size_limit_keeps_the_old_index_and_resumes(
    tweets_dir, dataset, towers_dirs, towers, reference_a, reference_b, tmp_path
):
    """``ulimit -f`` stops the new generation's database half-way; the old one is not written at all."""
    index_dir = tmp_path / "index"
    build_index(dataset, towers["a"], index_dir, source=str(tweets_dir), progress=False)
    live_files = (index_dir / LIVE_LINK).resolve()
    before = tree_digest(live_files)
    # The 240-tweet index's database grows to about 1.9 MB; 1.5 MB lets a few batches in and stops the rest.
    command = rebuild_command(tweets_dir, towers_dirs["b"], index_dir, Backend("embedded"), "", batch_size=32)
    limited = subprocess.run([sys.executable, *command], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True,
                             timeout=600, preexec_fn=preexec_file_size_limit(1_500_000))
    assert limited.returncode == 2, limited.stderr[-4000:]
    _assert_out_of_room(limited.stderr, index_dir, "file size limit", "File too large", "ulimit -f")

    assert tree_digest(live_files) == before, "the rebuild wrote into the live index"
    index = open_index(index_dir, towers=towers["a"])
    try:
        assert_dump_matches(dump_index(index), reference_a)
    finally:
        index.close()
    report = build_index(dataset, towers["b"], index_dir, rebuild=True, source=str(tweets_dir), progress=False)
    assert report.completed and 0 < report.embedded < 240
    assert_index_matches(index_dir, Backend("embedded"), "", reference_b, tmp_path, fresh_process=False)
    assert (index_dir / "previous").resolve() == live_files, "the replaced generation is kept for roll-back"


# In a private mount namespace: a tmpfs with room for one index and a bit; the rebuild fills it, the old index is
# read back (from a fresh process), then the tmpfs grows and the same rebuild finishes. The finished index is copied
# out for the checks, as the tmpfs goes away with the namespace.
_FULL_DISK_SCRIPT = """
mount -t tmpfs -o size=7000k tmpfs "$DISK" || exit 90
python "$@" --towers "$TOWERS_A" >"$OUT/first.out" 2>"$OUT/first.err" || exit 92
python "$@" --towers "$TOWERS_B" --rebuild >"$OUT/rebuild.out" 2>"$OUT/rebuild.err"; echo $? >"$OUT/rebuild.rc"
python -c "$DUMP" "$DISK/index" "$OUT/after.json" 2>"$OUT/dump.err" || exit 93
mount -o remount,size=256m "$DISK" || exit 91
python "$@" --towers "$TOWERS_B" --rebuild >"$OUT/second.out" 2>"$OUT/second.err"; echo $? >"$OUT/second.rc"
cp -a "$DISK/index" "$OUT/index"
"""
_DUMP = ("import json, sys; from tweetmaker.index import open_index; from tests.test_index import dump_index; "
         "index = open_index(sys.argv[1]); json.dump(dump_index(index), open(sys.argv[2], 'w')); index.close()")


def test_rebuild_on_a_full_disk_keeps_the_old_index_and_resumes_once_there_is_room(
    tweets_dir, towers_dirs, reference_a, reference_b, tmp_path
):
    """A real full disk (ENOSPC) mid-rebuild; skipped where no tmpfs can be mounted (no CAP_SYS_ADMIN)."""
    why_not = private_tmpfs_available()
    if why_not:
        pytest.skip(why_not)
    command = ["-m", "tweetmaker.index", "build", "--dataset", str(tweets_dir), "--index_dir",
               str(tmp_path / "disk" / "index"), "--batch_size", "32", "--no_progress"]
    env = {**ENV, "DUMP": _DUMP, "TOWERS_A": str(towers_dirs["a"]), "TOWERS_B": str(towers_dirs["b"]),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # `python` is this interpreter
    disk, out, finished = run_in_private_mount_namespace(_FULL_DISK_SCRIPT, command, tmp_path, cwd=REPO_ROOT, env=env)
    logs = {name: (out / name).read_text()[-3000:] for name in ("first.err", "rebuild.err", "dump.err")
            if (out / name).exists()}
    assert finished.returncode == 0, (finished.returncode, finished.stderr[-2000:], logs)
    rebuild_err = (out / "rebuild.err").read_text()
    assert (out / "rebuild.rc").read_text().strip() == "2", rebuild_err[-4000:]
    _assert_out_of_room(rebuild_err, disk / "index", "the disk is full", "No space left on device",
                        "The live index was not touched and still serves")

    # The old index, whole, opened by a new process: the rebuild gave back the room it took (Chroma cannot open even
    # a database it only reads on a disk without room), so that run starts over.
    assert_dump_matches(json.loads((out / "after.json").read_text()), reference_a)
    assert (out / "second.rc").read_text().strip() == "0", (out / "second.err").read_text()[-4000:]
    report = json.loads((out / "second.out").read_text())
    assert report["completed"] and report["embedded"] == 240
    assert_index_matches(out / "index", Backend("embedded"), "", reference_b, tmp_path, fresh_process=False)


def to_flat_layout(index_dir: Path, backend: Backend, prefix: str) -> None:
    """Turn a built index into the flat layout of indexes written before generations (a pulled copy's layout too)."""
    live = (index_dir / LIVE_LINK).resolve()
    for name in (CHROMA_DIRNAME, IMAGES_DIRNAME, MANIFEST_FILENAME, LIVE_LINK):
        (index_dir / name).unlink(missing_ok=True)
    for path in live.iterdir():
        path.rename(index_dir / path.name)
    shutil.rmtree(index_dir / GENERATIONS_DIRNAME)
    if backend.host is not None:
        client = make_client(host=backend.host, port=backend.port)
        client.delete_collection(prefix + POINTER_COLLECTION)
        for collection in client.list_collections():
            if collection.name.startswith(prefix):  # <prefix><modality>-<date>T<time>-<random> -> <prefix><modality>
                collection.modify(name=collection.name.rsplit("-", 2)[0])


def test_an_index_in_the_flat_layout_is_read_as_it_is_and_replaced_by_a_rebuild(
    backend, small_dataset, towers, small_reference, tmp_path
):
    index_dir, prefix = tmp_path / "index", backend.new_prefix()
    location = backend.location(prefix)
    build_index(small_dataset, towers["a"], index_dir, progress=False, **location)
    to_flat_layout(index_dir, backend, prefix)
    flat = open_index(index_dir, towers=towers["a"], **location)
    first = flat.all_embeddings("image")[0][0]
    assert flat.generation is None
    assert flat.image_path(flat.get("image", [first])[first].metadata).parent == index_dir / IMAGES_DIRNAME
    flat.close()
    before = snapshot(index_dir, backend, prefix, towers["a"])
    assert_dump_matches(before, small_reference["a"])
    report = build_index(small_dataset, towers["a"], index_dir, progress=False, **location)
    assert report.up_to_date  # the flat index matches: nothing to do, nothing moved
    assert not (index_dir / LIVE_LINK).exists()

    report = build_index(small_dataset, towers["b"], index_dir, rebuild=True, progress=False, **location)
    assert report.completed and report.embedded == 72
    assert (index_dir / LIVE_LINK).is_symlink() and (index_dir / IMAGES_DIRNAME).is_symlink()
    assert_index_matches(index_dir, backend, prefix, small_reference["b"], tmp_path, fresh_process=False)
    assert_one_generation(index_dir, backend, prefix)  # the flat layout's collections and files are gone
