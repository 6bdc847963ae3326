"""train/finetune.py and tweetmaker.training end to end: it learns, it resumes, it runs on two processes, it saves,
pushes and fails clearly.

Every run uses the real script's ``main([...])`` (or ``torchrun`` on the script), which parses the flags and calls
``tweetmaker.training.train``, with a tiny random CLIP made by ``tweetmaker.towers`` and the synthetic twin converted
by ``tweetmaker.convert``. Checkpoint helpers are tested where they live, in ``tweetmaker.training``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import free_port
from tests.hub_fake import FakeHubApi
from train import finetune
from tweetmaker import training
from tweetmaker.towers import TowersError, content_hash, load_towers, write_tiny_clip
from tweetmaker.training import loop

REPO_ROOT = Path(__file__).resolve().parents[1]
DIRECTIONS = ("text_to_image", "hashtag_to_image", "image_to_hashtag")
METRIC_NAMES = {f"recall@{k}" for k in (1, 5, 10, 50, 100)} | {"mrr", "median_rank", "mean_rank"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread, and the machine's cores are shared with other test runs.

    Module-scoped so that every run in this file (fixtures included) uses the same thread count: the resume test
    compares losses bit for bit, and reductions split over threads round differently."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def small_clip_dir(tmp_path_factory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("finetune_clip"), hidden_size=32, intermediate_size=64,
                           projection_dim=32, image_size=32, patch_size=8)


def _args(dataset: Path, base: Path, output: Path, *extra: str) -> list[str]:
    return ["--dataset", str(dataset), "--base_model", str(base), "--output_dir", str(output),
            "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "32", "--learning_rate", "1e-3",
            "--logging_steps", "2", "--seed", "7", *extra]


class Interrupted(Exception):
    """Stands for a killed job: raised right after a checkpoint is written."""


@pytest.fixture(scope="module")
def pushed_run(tweets_dir, small_clip_dir, tmp_path_factory):
    """One uninterrupted run with gradient accumulation, checkpoints and a push to the Hub stand-in."""
    output = tmp_path_factory.mktemp("run_full")
    hub = FakeHubApi(root=tmp_path_factory.mktemp("hub"))
    # Everything the run prints or logs, kept for the check that the Hub token never appears in it.
    console = io.StringIO()
    handler = logging.StreamHandler(console)
    logging.getLogger().addHandler(handler)
    try:
        with contextlib.redirect_stdout(console), contextlib.redirect_stderr(console):
            results = finetune.main(
                _args(tweets_dir, small_clip_dir, output / "out", "--num_train_epochs", "2",
                      "--gradient_accumulation_steps", "2", "--checkpointing_steps", "4", "--checkpoints_total_limit",
                      "2", "--num_warmup_steps", "2", "--push_to_hub", "--hub_model_id", "someone/tweetmaker-towers",
                      "--hub_token", "secret-token", "--export_backend", "onnx"),
                hub_api=hub,
            )
    finally:
        logging.getLogger().removeHandler(handler)
    (output / "console.log").write_text(console.getvalue())
    return output / "out", results, hub


def test_the_hub_token_is_never_printed_logged_or_written(pushed_run):
    output, _, hub = pushed_run
    console = (output.parent / "console.log").read_text()
    assert "Pushed" in console or "push" in console.lower()  # the capture did catch the run's own output
    assert "secret-token" not in console
    for path in output.rglob("*"):
        if path.is_file():
            assert b"secret-token" not in path.read_bytes(), path


def test_run_writes_results_plot_card_and_loadable_towers(pushed_run):
    output, results, _ = pushed_run
    on_disk = json.loads((output / "all_results.json").read_text())
    assert on_disk["after"] == results["after"]
    for phase in ("before", "after"):
        assert set(on_disk[phase]) == set(DIRECTIONS)
        for direction in DIRECTIONS:
            assert METRIC_NAMES | {"precision@10"} <= set(on_disk[phase][direction])
    train = on_disk["train"]
    # 192 training rows, 16 per batch, 2 micro-batches per step: 6 steps per epoch.
    assert train["optimizer_steps"] == 12 and train["epochs"] == 2 and len(train["step_losses"]) == 12
    assert [entry["epoch"] for entry in on_disk["history"]] == [0, 1, 2]
    assert on_disk["args"]["train"]["gradient_accumulation_steps"] == 2
    assert on_disk["args"]["train"]["hub_token"] == "***" and "secret-token" not in json.dumps(on_disk)
    assert on_disk["dataset"]["source"].endswith("dataset") and on_disk["dataset"]["num_rows"]["train"] == 192
    assert on_disk["base_model"]["content_hash"].startswith("sha256:")
    with Image.open(output / "loss.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 500
    assert sorted(path.name for path in (output / "checkpoints").iterdir()) == ["step_12", "step_8"]

    towers = load_towers(str(output), device="cpu")
    assert towers.identity["base_model"]["content_hash"] == on_disk["base_model"]["content_hash"]
    assert towers.logit_scale == pytest.approx(20.0)
    embeddings = towers.encode_texts(["three red robots"])
    assert embeddings.shape == (1, 32) and np.isclose(np.linalg.norm(embeddings), 1.0, atol=1e-5)
    card = (output / "README.md").read_text()
    assert "| text_to_image | recall@10 |" in card and 'load_towers("someone/tweetmaker-towers")' in card


def test_push_uploads_towers_and_card_without_checkpoints(pushed_run):
    output, results, hub = pushed_run
    assert results["hub"]["repo_id"] == "someone/tweetmaker-towers"
    kinds = [name for name, _ in hub.calls]
    assert kinds == ["create_repo", "upload_folder"]
    assert hub.calls[0][1]["repo_type"] == "model" and hub.calls[0][1]["private"] is False
    repo = hub.repo_dir("someone/tweetmaker-towers", "model")
    assert {path.name for path in repo.iterdir()} == {"image", "text", "hashtag", "towers.json", "README.md",
                                                      "all_results.json", "loss.png", ".onnx"}
    assert not list(repo.rglob("*.lock"))
    pushed = load_towers(str(repo), device="cpu")
    local = load_towers(str(output), device="cpu")
    assert pushed.identity["content_hash"] == local.identity["content_hash"]
    # --export_backend onnx: the run wrote the export and pushed it, so towers from the repo serve ONNX without
    # exporting again (the export found is the pushed one).
    assert results["towers"]["export"].startswith(".onnx/")
    served = load_towers(str(repo), device="cpu", backend="onnx")
    assert served.export_dir == repo / results["towers"]["export"]
    np.testing.assert_allclose(served.encode_texts(["three red robots"]), local.encode_texts(["three red robots"]),
                               atol=1e-5)
    assert (repo / "README.md").read_text().startswith("---\nlibrary_name: transformers")


def test_resume_after_interruption_matches_the_uninterrupted_run(pushed_run, tweets_dir, small_clip_dir, tmp_path,
                                                                 monkeypatch):
    reference_dir, reference, _ = pushed_run
    output = tmp_path / "out"
    args = _args(tweets_dir, small_clip_dir, output, "--num_train_epochs", "2", "--gradient_accumulation_steps", "2",
                 "--checkpointing_steps", "4", "--num_warmup_steps", "2")
    real_save = training.save_checkpoint

    def save_then_die(accelerator, output_dir, name, state, limit):
        path = real_save(accelerator, output_dir, name, state, limit)
        if name == "step_8":  # mid-way through the second epoch
            raise Interrupted(name)
        return path

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)  # where the loop looks it up
    with pytest.raises(Interrupted):
        finetune.main(args)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    assert not (output / "all_results.json").exists()

    resumed = finetune.main([*args, "--resume_from_checkpoint", "latest"])
    assert resumed["after"] == reference["after"]
    assert resumed["before"] == reference["before"]
    assert resumed["train"]["step_losses"] == reference["train"]["step_losses"]
    assert resumed["train"]["samples_this_run"] == 4 * 16 * 2  # only the last 4 steps were trained again
    for tower in ("image", "text", "hashtag"):
        assert content_hash(output / tower) == content_hash(reference_dir / tower)


FINETUNE_SCRIPT = REPO_ROOT / "train" / "finetune.py"


def _script_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


def _complete_checkpoints(output: Path) -> list[str]:
    """Checkpoint directories that hold a state file, looked up directly on disk (not through finetune's code)."""
    root = output / training.CHECKPOINTS_DIR
    return sorted(path.name for path in root.glob("step_*") if (path / training.STATE_FILE).is_file())


def _assert_finished_after_resume(output: Path, results: dict, total_steps: int, resumed_from: int) -> None:
    """The resumed run finished the configured steps, no more: it went on from ``resumed_from``, did not restart."""
    on_disk = json.loads((output / "all_results.json").read_text())
    train = on_disk["train"]
    assert train == results["train"]
    assert train["optimizer_steps"] == train["max_steps"] == total_steps
    assert len(train["step_losses"]) == total_steps
    # 16 tweets per optimizer step: this process trained only the steps the checkpoint did not hold.
    assert train["samples_this_run"] == (total_steps - resumed_from) * 16
    assert on_disk["history"][0]["step"] == 0 and on_disk["history"][-1]["step"] == total_steps
    towers = load_towers(str(output), device="cpu")
    assert towers.encode_texts(["three red robots"]).shape == (1, 32)
    assert not list((output / training.CHECKPOINTS_DIR).glob(".*")), "a partial checkpoint was left behind"


def test_sigkill_between_checkpoints_then_resume_latest_finishes_the_configured_steps(
    tweets_dir, small_clip_dir, tmp_path
):
    """kill -9 of a real training process once it has written a checkpoint; `latest` then finishes the job."""
    output, log = tmp_path / "out", tmp_path / "first_run.log"
    # Over three epochs of 12 steps: seconds of training after the first checkpoint (the poll is every 20 ms), and a
    # loaded machine slows training as much as the poll, so the margin holds there too.
    total = 40
    args = _args(tweets_dir, small_clip_dir, output, "--max_train_steps", str(total), "--checkpointing_steps", "4")
    with open(log, "wb") as stream:
        process = subprocess.Popen([sys.executable, str(FINETUNE_SCRIPT), *args], stdout=stream,
                                   stderr=subprocess.STDOUT, env=_script_env(), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300  # bounded: a run that never checkpoints fails here, it does not hang
        while not _complete_checkpoints(output) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"not killed mid-run (rc {process.returncode}):\n{_tail(log)}"
    assert _complete_checkpoints(output), f"killed before any checkpoint:\n{_tail(log)}"
    assert not (output / "all_results.json").exists()

    latest = training.resolve_checkpoint("latest", output)
    resumed_from = json.loads((latest / training.STATE_FILE).read_text())["completed_steps"]
    assert latest.name == f"step_{resumed_from}" and 4 <= resumed_from < total
    results = finetune.main([*args, "--resume_from_checkpoint", "latest"])
    _assert_finished_after_resume(output, results, total, resumed_from)


def test_sigkill_while_writing_a_checkpoint_resumes_from_the_previous_one(tweets_dir, small_clip_dir, tmp_path):
    """kill -9 half-way through saving step_8 (weights and optimizer state written, the state file that marks it
    complete not yet): `latest` is step_4. (torch and safetensors write from C, unseen by Python's audit hook, so the
    kill lands on the state file, the last file of a save.)"""
    output, log = tmp_path / "out", tmp_path / "first_run.log"
    args = _args(tweets_dir, small_clip_dir, output, "--max_train_steps", "12", "--checkpointing_steps", "4")
    with open(log, "wb") as stream:
        finished = subprocess.run(
            [sys.executable, str(REPO_ROOT / "tests" / "faults_kill_on_write.py"), "step_8/" + training.STATE_FILE,
             str(FINETUNE_SCRIPT), *args],
            stdout=stream, stderr=subprocess.STDOUT, env=_script_env(), cwd=tmp_path, timeout=600,
        )
    assert finished.returncode == -signal.SIGKILL, f"rc {finished.returncode}:\n{_tail(log)}"
    leftovers = [path for path in (output / training.CHECKPOINTS_DIR).iterdir() if "step_8" in path.name]
    assert len(leftovers) == 1, leftovers
    written = {path.name for path in leftovers[0].iterdir()}
    assert {"model.safetensors", "optimizer.bin"} <= written, "the kill did not land inside the save"
    assert training.STATE_FILE not in written

    assert training.resolve_checkpoint("latest", output).name == "step_4"
    results = finetune.main([*args, "--resume_from_checkpoint", "latest"])
    _assert_finished_after_resume(output, results, 12, 4)
    assert _complete_checkpoints(output) == ["step_12", "step_4", "step_8"]


def test_latest_skips_checkpoints_whose_save_did_not_finish(tmp_path):
    root = tmp_path / training.CHECKPOINTS_DIR

    def checkpoint(name: str, state: str | None, files: dict[str, bytes]) -> Path:
        path = root / name
        path.mkdir(parents=True)
        for file_name, content in files.items():
            (path / file_name).write_bytes(content)
        if state is not None:
            (path / training.STATE_FILE).write_text(state)
        return path

    def state(steps: int) -> str:
        return json.dumps(asdict(training.TrainState(completed_steps=steps)))

    weights = {"model.safetensors": b"\0" * 64, "optimizer.bin": b"\0" * 64}
    checkpoint("step_4", state(4), weights)
    checkpoint("step_12", None, {"model.safetensors": b"\0" * 10})  # written in place, killed before its state
    checkpoint(".partial-step_16", state(16), weights)  # complete files, killed before the rename that commits it
    checkpoint("step_20", state(20)[:15], weights)  # a state file cut short
    assert [path.name for path in training.checkpoint_dirs(tmp_path)] == ["step_4"]
    assert training.resolve_checkpoint("latest", tmp_path).name == "step_4"
    with pytest.raises(ValueError, match="did not finish"):
        training.resolve_checkpoint(str(root / ".partial-step_16"), tmp_path)
    with pytest.raises(ValueError, match="not a checkpoint"):
        training.resolve_checkpoint(str(root / "step_20"), tmp_path)


def test_saving_a_checkpoint_again_replaces_it_whole(tmp_path, monkeypatch):
    """After resuming from an older checkpoint, a later one is saved again under its old name: all new files. Each
    save is flushed to disk (fsync) while still under its .partial- name, before the rename that commits it."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from tweetmaker import atomic

    flushed = []
    real_fsync_tree = atomic.fsync_tree

    def record_fsync(directory):
        flushed.append((Path(directory).name, sorted(p.name for p in Path(directory).iterdir())))
        real_fsync_tree(directory)

    monkeypatch.setattr(atomic, "fsync_tree", record_fsync)
    AcceleratorState._reset_state()
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(torch.nn.Linear(4, 4))
    path = training.save_checkpoint(accelerator, tmp_path, "step_8", training.TrainState(completed_steps=8), None)
    (path / "left_from_the_first_save.txt").write_text("old")
    with torch.no_grad():
        model.weight.fill_(3.0)
    again = training.save_checkpoint(accelerator, tmp_path, "step_8", training.TrainState(completed_steps=8), None)
    assert again == path and not (path / "left_from_the_first_save.txt").exists()
    assert sorted(p.name for p in (tmp_path / training.CHECKPOINTS_DIR).iterdir()) == ["step_8"]
    from safetensors.torch import load_file

    assert torch.all(load_file(path / "model.safetensors")["weight"] == 3.0)
    assert [name for name, _ in flushed] == [".partial-step_8", ".partial-step_8"]
    assert all({"model.safetensors", training.STATE_FILE} <= set(files) for _, files in flushed)
    accelerator.end_training()


def test_it_learns_on_the_synthetic_twin(learned):
    """A small, fast version of the README's 5-minute run (the offline demo's typed recipe, trained by the
    conftest's ``learned`` fixture through tweetmaker.demo and tweetmaker.training): attributes and exact pairs are
    learned."""
    results = learned["results"]
    before, after = results["before"], results["after"]
    pairs = (("text_to_image", "precision@10"), ("image_to_hashtag", "precision@5"))
    for direction, metric in pairs:
        assert after[direction][metric] >= 0.8, (direction, metric, after[direction][metric])
        assert after[direction][metric] >= 4 * before[direction][metric]
    assert after["text_to_image"]["recall@10"] >= 3 * before["text_to_image"]["recall@10"]
    print({f"{d}/{m}": (before[d][m], after[d][m]) for d, m in (*pairs, ("text_to_image", "recall@10"))},
          results["train"]["runtime_seconds"])


# Runs finetune.py as torchrun's entry point, recording every file this rank writes (Python opens for writing,
# directory creation and safetensors saves, which bypass Python's open).
_AUDITED_ENTRY = textwrap.dedent(
    """
    import os, runpy, sys
    watched, log = os.environ["AUDIT_WATCH"], os.path.join(os.environ["AUDIT_DIR"], f"rank{os.environ['RANK']}.txt")

    def record(path):
        if str(path).startswith(watched):
            with open(log, "a") as handle:
                handle.write(f"{path}\\n")

    def hook(event, args):
        if event == "open" and args[0] and isinstance(args[0], (str, bytes, os.PathLike)):
            mode = args[1] or "r"
            if any(flag in str(mode) for flag in "wax+") and not str(args[0]).startswith(log):
                record(os.fsdecode(args[0]))
        elif event in ("os.mkdir", "os.rename", "os.remove", "shutil.rmtree"):
            record(os.fsdecode(args[0]))

    sys.addaudithook(hook)
    import safetensors.torch
    _save_file = safetensors.torch.save_file
    def save_file(tensors, filename, *args, **kwargs):
        record(filename)
        return _save_file(tensors, filename, *args, **kwargs)
    safetensors.torch.save_file = save_file
    sys.argv = [os.environ["FINETUNE"], *sys.argv[1:]]
    runpy.run_path(os.environ["FINETUNE"], run_name="__main__")
    """
)


def test_two_processes_with_torchrun(tweets_dir, small_clip_dir, tmp_path):
    entry = tmp_path / "audited_finetune.py"
    entry.write_text(_AUDITED_ENTRY)
    audit = tmp_path / "audit"
    audit.mkdir()
    output = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AUDIT_DIR": str(audit), "AUDIT_WATCH": str(output),
           "FINETUNE": str(REPO_ROOT / "train" / "finetune.py"), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", str(entry),
               *_args(tweets_dir, small_clip_dir, output, "--cpu", "--per_device_train_batch_size", "8",
                      "--max_train_steps", "6", "--dataloader_num_workers", "1")]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-4000:]

    results = json.loads((output / "all_results.json").read_text())
    train = results["train"]
    assert train["world_size"] == 2 and "MULTI_CPU" in train["distributed_type"]
    ranks = sorted(train["ranks"], key=lambda rank: rank["rank"])
    assert [rank["rank"] for rank in ranks] == [0, 1]
    for rank in ranks:
        # Both ranks trained 6 steps of 8 local tweets, each scoring against the 16 gathered from both ranks.
        assert rank["batches"] == 6 and rank["samples"] == 48
        assert rank["gathered_batch_size"] == 16
    assert train["global_batch_size"] == 16 and train["optimizer_steps"] == 6
    # Evaluation gathered the 48 eval rows from both ranks (finetune checks each row came back exactly once).
    assert results["after"]["text_to_image"]["median_rank"] <= 48
    written_by_rank0 = (audit / "rank0.txt").read_text().splitlines()
    assert any(line.endswith("all_results.json") for line in written_by_rank0)
    assert any(line.endswith(".safetensors") for line in written_by_rank0)
    assert not (audit / "rank1.txt").exists(), (audit / "rank1.txt").read_text()
    towers = load_towers(str(output), device="cpu")
    assert towers.encode_hashtags(["#AI"]).shape == (1, 32)
    assert "Training:" in finished.stderr and finished.stderr.count("Training:") == 1  # main process logs only


def test_freeze_flags_per_tower_rates_bf16_and_checkpointing(tweets_dir, small_clip_dir, tmp_path):
    from tweetmaker.towers import build_towers_from_base

    output = tmp_path / "out"
    # A save a killed job left unfinished, of a step this run never reaches: the run's start removes it.
    stale = output / training.CHECKPOINTS_DIR / ".partial-step_99"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"\0" * 16)
    results = finetune.main(
        _args(tweets_dir, small_clip_dir, output, "--max_train_steps", "2", "--freeze_text_tower",
              "--hashtag_loss_weight", "0", "--image_learning_rate", "5e-3", "--learn_logit_scale",
              "--mixed_precision", "bf16", "--cpu", "--gradient_checkpointing", "--no_symmetric_loss",
              "--lr_scheduler_type", "exponential", "--lr_decay_steps", "1")
    )
    assert results["train"]["optimizer_steps"] == 2 and results["train"]["mixed_precision"] == "bf16"
    assert results["train"]["logit_scale"] != pytest.approx(20.0)  # learned
    base = build_towers_from_base(small_clip_dir, device="cpu")
    trained = load_towers(str(output), device="cpu")
    def same(name: str) -> bool:
        pairs = zip(getattr(base, name).state_dict().values(), getattr(trained, name).state_dict().values())
        return all(torch.equal(before, after) for before, after in pairs)

    # The text tower is frozen; the hashtag tower is unused (and so frozen) when its loss weight is 0.
    assert same("text_model") and same("hashtag_model") and not same("image_model")
    assert not stale.exists()


@pytest.fixture(scope="module")
def dataset_without_hashtags(tweets_dir, tmp_path_factory) -> Path:
    import datasets

    loaded = datasets.load_from_disk(str(tweets_dir))
    target = tmp_path_factory.mktemp("no_hashtags") / "dataset"
    loaded.remove_columns(["hashtags"]).save_to_disk(str(target))
    return target


def test_clear_errors_for_wrong_inputs(tweets_dir, small_clip_dir, dataset_without_hashtags, tmp_path):
    with pytest.raises(ValueError, match="hashtags"):
        finetune.main(_args(dataset_without_hashtags, small_clip_dir, tmp_path / "a"))
    not_clip = tmp_path / "bert"
    not_clip.mkdir()
    (not_clip / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(TowersError, match="not a CLIP checkpoint"):
        finetune.main(_args(tweets_dir, not_clip, tmp_path / "b"))
    with pytest.raises(ValueError, match="larger than the 192 training rows"):
        finetune.main(_args(tweets_dir, small_clip_dir, tmp_path / "c", "--per_device_train_batch_size", "500"))
    with pytest.raises(ValueError, match="no split 'validation'"):
        finetune.main(_args(tweets_dir, small_clip_dir, tmp_path / "d", "--eval_split", "validation"))
    with pytest.raises(ValueError, match="not a checkpoint"):
        finetune.main(_args(tweets_dir, small_clip_dir, tmp_path / "e", "--resume_from_checkpoint",
                            str(tmp_path)))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--checkpointing_steps", "often"], "checkpointing_steps"),
        (["--push_to_hub"], "hub_model_id"),
        (["--per_device_train_batch_size", "0"], "per_device_train_batch_size"),
        (["--freeze_image_tower", "--freeze_text_tower", "--freeze_hashtag_tower"], "nothing would be trained"),
        (["--learning_rate", "-1"], "learning_rate"),
        (["--export_backend", "torch-int8"], "export_backend"),
    ],
)
def test_argument_validation(extra, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        training.parse_arguments(["--dataset", "x", "--output_dir", str(tmp_path), *extra])


def test_arguments_from_code_are_validated_like_flags(tmp_path):
    data, model, train = training.make_arguments(dataset=tmp_path, output_dir=tmp_path / "out", learning_rate=1e-3,
                                                 freeze_text_tower=True, checkpointing_steps=4)
    assert data.dataset == str(tmp_path) and train.output_dir == str(tmp_path / "out")
    assert model.frozen_towers() == {"image": False, "text": True, "hashtag": False}
    assert train.checkpointing_steps == "4" and train.tower_learning_rate("hashtag") == 1e-3
    with pytest.raises(TypeError, match="learning_rat"):
        training.make_arguments(dataset="d", output_dir=str(tmp_path), learning_rat=1e-3)
    with pytest.raises(ValueError, match="lr_scheduler_type"):
        training.make_arguments(dataset="d", output_dir=str(tmp_path), lr_scheduler_type="sometimes")


def test_arguments_from_a_json_file(tmp_path):
    config = tmp_path / "args.json"
    config.write_text(json.dumps({"dataset": "d", "output_dir": str(tmp_path), "image_learning_rate": 3e-4}))
    data, model, train = training.parse_arguments([str(config)])
    assert data.dataset == "d" and train.tower_learning_rate("image") == 3e-4
    assert train.tower_learning_rate("text") == 1e-5
    assert model.base_model == "openai/clip-vit-base-patch32"


@pytest.mark.parametrize(("name", "distributed_type"), [("single_gpu.yaml", "NO"), ("multi_gpu.yaml", "MULTI_GPU")])
def test_accelerate_configs_load(name, distributed_type):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(REPO_ROOT / "train" / "configs" / name))
    assert config.distributed_type.value == distributed_type
    assert config.mixed_precision == "bf16" and not config.use_cpu
