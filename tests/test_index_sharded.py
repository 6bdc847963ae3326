"""Sharded index builds: ``torchrun`` / ``accelerate launch`` with 2 processes, into the embedded database and into a
real ``chroma run`` server, equal a 1-process build; a rank killed with SIGKILL mid-build resumes to exactly one
record per tweet. Every build here is the real command line under the real launcher (gloo process group on CPUs).
"""

# ruff: noqa: F811 - the fixtures imported from tests/test_index.py are redefined as parameters, as pytest uses them

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

from tests.helpers import free_port
from tests.test_index import (  # noqa: F401 - fixtures are used by name
    REPO_ROOT,
    assert_index_matches,
    backend,
    big_dataset,
    big_dataset_dir,
    big_reference,
    dataset,
    towers,
    towers_dirs,
)
from tweetmaker.index import MODALITIES, IncompleteIndexError, build_index, open_index

LAUNCHERS = {
    "torchrun": lambda port: [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                              "--master_addr", "127.0.0.1", "--master_port", str(port)],
    # Accelerate's multi-process launcher (torch's elastic launch underneath); on CPUs the processes use gloo.
    "accelerate": lambda port: [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                                "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                                "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
                                "--main_process_port", str(port)],
}


def launch_command(launcher: str, dataset_dir: Path, towers_dir: Path, index_dir: Path, cli_args: list[str],
                   batch_size: int) -> list[str]:
    return [*LAUNCHERS[launcher](free_port()), "-m", "tweetmaker.index", "build", "--dataset", str(dataset_dir),
            "--towers", str(towers_dir), "--index_dir", str(index_dir), "--batch_size", str(batch_size),
            "--no_progress", *cli_args]


def launcher_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}


def contents(index_dir: Path, location: dict) -> dict[str, dict[str, tuple[dict, np.ndarray]]]:
    """{modality: {tweet_id: (metadata, embedding)}} of a complete index, and its image files."""
    index = open_index(index_dir, **location)
    try:
        out = {}
        for modality in MODALITIES:
            ids, _ = index.all_embeddings(modality)
            hits = index.get(modality, ids, with_embeddings=True)
            assert len(hits) == len(ids) == index.count(modality)
            out[modality] = {tweet_id: (hit.metadata, np.asarray(hit.embedding)) for tweet_id, hit in hits.items()}
        out["files"] = sorted(path.name for path in index.images_dir.iterdir())
        return out
    finally:
        index.close()


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_a_two_process_build_equals_a_one_process_build(backend, launcher, tweets_dir, dataset, towers_dirs, towers,
                                                        tmp_path):
    single_prefix, sharded_prefix = backend.new_prefix(), backend.new_prefix()
    report = build_index(dataset, towers["a"], tmp_path / "single", source=str(tweets_dir), batch_size=32,
                         progress=False, **backend.location(single_prefix))
    assert report.completed

    command = launch_command(launcher, tweets_dir, towers_dirs["a"], tmp_path / "sharded",
                             backend.cli_args(sharded_prefix), batch_size=32)
    finished = subprocess.run(command, env=launcher_env(), cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr[-4000:]
    sharded = json.loads(finished.stdout)  # one report, printed by the main process only
    rows = len(dataset["train"]) + len(dataset["test"])
    # Each process embedded its own half of the rows (not one process doing it all).
    assert sorted(sharded["embedded_by_process"]) == [rows // 2, rows - rows // 2]
    assert sharded["completed"] and sharded["counts"] == report.counts
    assert "process 2/2: batch 1 done" in finished.stderr

    expected = contents(tmp_path / "single", backend.location(single_prefix))
    got = contents(tmp_path / "sharded", backend.location(sharded_prefix))
    assert got["files"] == expected["files"]
    for modality in MODALITIES:
        assert sorted(got[modality]) == sorted(expected[modality]), f"{modality}: ids differ"
        for tweet_id, (metadata, embedding) in expected[modality].items():
            assert got[modality][tweet_id][0] == metadata, f"{modality} {tweet_id}: metadata differ"
            np.testing.assert_allclose(got[modality][tweet_id][1], embedding, atol=1e-5,
                                       err_msg=f"{modality} {tweet_id}: embeddings differ")


def _pid_of_rank(launcher_pid: int, rank: int) -> int:
    """The pid of the worker process with ``RANK=rank`` among the launcher's descendants."""
    import psutil

    for child in psutil.Process(launcher_pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank):
                return child.pid
        except psutil.Error:
            continue
    raise AssertionError(f"no process with RANK={rank} under the launcher")


@pytest.mark.parametrize("killed_rank", [0, 1])
def test_a_rank_killed_with_sigkill_mid_build_resumes_to_exactly_one_record_per_tweet(
    backend, killed_rank, big_dataset_dir, big_reference, towers_dirs, tmp_path
):
    """SIGKILL one process of a 2-process build (1,100 tweets) once both have written batches; the launcher stops the
    other; the same command run again resumes and completes the index."""
    index_dir, prefix = tmp_path / "index", backend.new_prefix()
    command = launch_command("torchrun", big_dataset_dir, towers_dirs["a"], index_dir, backend.cli_args(prefix),
                             batch_size=100)
    process = subprocess.Popen(command, env=launcher_env(), cwd=REPO_ROOT, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        for line in process.stderr:
            if f"process {killed_rank + 1}/2: batch 2 done" in line:
                break
        time.sleep(0.2)  # land somewhere inside the next batch
        os.kill(_pid_of_rank(process.pid, killed_rank), signal.SIGKILL)
        process.stderr.read()
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        process.stderr.close()
    assert process.returncode != 0, "the build finished before a rank could be killed"
    with pytest.raises(IncompleteIndexError, match="incomplete"):
        open_index(index_dir, **backend.location(prefix))

    finished = subprocess.run(command, env=launcher_env(), cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr[-4000:]
    report = json.loads(finished.stdout)
    assert report["completed"] and 0 < report["embedded"] < 1100  # resumed, not started over
    assert report["counts"] == {"image": 1100, "text": 1100, "hashtag": 1100}
    assert_index_matches(index_dir, backend, prefix, big_reference, tmp_path)
