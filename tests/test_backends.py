"""Inference backends (tweetmaker.inference): agreement with fp32 on the twin, the export cache, clear errors.

No timings here: latency is measured by ``python -m tweetmaker.inference.compare latency`` and benchmarks/run.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tweetmaker.errors import TweetMakerError
from tweetmaker.inference import (
    BACKENDS,
    DEFAULT_CPU_BACKEND,
    BackendError,
    default_backend,
    ensure_export,
    export_backend,
    find_export,
    is_onnx,
    resolve_backend,
)
from tweetmaker.inference import export as export_module
from tweetmaker.inference.choice import MEETS_AGREEMENT_BAR
from tweetmaker.inference.compare import (
    AGREEMENT_BAR,
    QUALITY_TOLERANCE,
    agreement,
    quality_deltas,
    search_quality,
    tower_quality,
)
from tweetmaker.towers import TOWERS_FILE, build_towers_from_base, load_towers, main, write_tiny_clip

REPO_ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["Three red robots on a striped background", "#AI #ml 🚀 https://t.co/x", "GPU chips, 4 of them!"]


def _save_tiny_towers(directory: Path, seed: int = 0) -> Path:
    base = write_tiny_clip(directory / "base", seed=seed)
    return build_towers_from_base(str(base), device="cpu").save(directory / "towers")


@pytest.fixture(scope="module")
def tiny_towers_master(tmp_path_factory) -> Path:
    return _save_tiny_towers(tmp_path_factory.mktemp("backend_towers"))


@pytest.fixture()
def tiny_towers(tiny_towers_master, tmp_path) -> Path:
    """Saved tiny towers of this test's own (their export cache starts empty)."""
    return Path(shutil.copytree(tiny_towers_master, tmp_path / "towers"))


@pytest.fixture()
def exports(monkeypatch) -> list[str]:
    """Counts the exports made (the backend of each), by wrapping the one function that writes them."""
    made: list[str] = []
    real = export_module.write_export

    def counting(towers, backend, output_dir):
        made.append(backend)
        return real(towers, backend, output_dir)

    monkeypatch.setattr(export_module, "write_export", counting)
    return made


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(export_module.CACHE_ENV, str(tmp_path / "user-cache"))


def _images():
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40 + 9 * i, 50, 3), dtype=np.uint8)) for i in range(3)]


# -- the switch ---------------------------------------------------------------------------------------------------
def test_an_unknown_backend_is_a_clear_error_listing_the_choices(tiny_towers, capsys):
    with pytest.raises(BackendError) as caught:
        load_towers(tiny_towers, device="cpu", backend="tensorrt")
    assert isinstance(caught.value, TweetMakerError) and isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert "'tensorrt'" in message and all(name in message for name in BACKENDS) and "auto" in message
    assert main(["export", "--towers", str(tiny_towers), "--backend", "onnx-fp8"]) == 2
    printed = capsys.readouterr().err
    assert all(name in printed for name in BACKENDS)


def test_auto_is_the_measured_cpu_default_and_torch_on_a_gpu():
    assert "torch" in BACKENDS and DEFAULT_CPU_BACKEND in MEETS_AGREEMENT_BAR
    assert resolve_backend("auto", "cpu") == resolve_backend(None, "cpu") == default_backend("cpu")
    assert default_backend("cpu") == DEFAULT_CPU_BACKEND
    assert resolve_backend("auto", "cuda") == default_backend("cuda") == "torch"
    assert resolve_backend("torch", "cuda") == "torch"
    for backend in BACKENDS[1:]:
        with pytest.raises(BackendError, match="CPU only"):
            resolve_backend(backend, "cuda")


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_keeps_the_encode_interface_and_the_towers_identity(tiny_towers, backend):
    reference = load_towers(tiny_towers, device="cpu")
    towers = load_towers(tiny_towers, device="cpu", backend=backend)
    assert towers.backend == backend
    # The backend changes arithmetic only: an index built by fp32 torch stays valid for it.
    assert towers.identity == reference.identity
    assert (towers.embedding_dim, towers.max_text_length) == (reference.embedding_dim, reference.max_text_length)
    for encode, items in (("encode_texts", TEXTS), ("encode_hashtags", ["#AI #ml", ""]), ("encode_images", _images())):
        expected = getattr(reference, encode)(items)
        got = getattr(towers, encode)(items, batch_size=2)  # padding and batch splits as an index build does
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert (got * expected).sum(1).min() > 0.99
    assert towers.encode_texts([]).shape == (0, reference.embedding_dim)
    if is_onnx(backend):  # inference only: no modules to train, no weights to save
        with pytest.raises(BackendError, match="backend='torch'"):
            towers.as_module()
        with pytest.raises(BackendError):
            towers.save(tiny_towers.parent / "copy")


# -- the export cache ----------------------------------------------------------------------------------------------
def test_an_export_is_made_once_beside_the_towers_and_reused_without_loading_torch_weights(
    tiny_towers, exports, monkeypatch
):
    first = load_towers(tiny_towers, device="cpu", backend="onnx")
    assert exports == ["onnx"]
    assert first.export_dir.parent.parent == tiny_towers / ".onnx"
    assert first.export_dir.name == f"onnx-v{export_module.EXPORT_VERSION}"
    stamps = {path: path.stat().st_mtime_ns for path in first.export_dir.iterdir()}
    expected = first.encode_texts(TEXTS)

    import transformers

    def no_weights(*args, **kwargs):
        raise AssertionError("a cached export must not load the torch weights")

    monkeypatch.setattr(transformers.CLIPVisionModelWithProjection, "from_pretrained", no_weights)
    monkeypatch.setattr(transformers.CLIPTextModelWithProjection, "from_pretrained", no_weights)
    second = load_towers(tiny_towers, device="cpu", backend="onnx")
    assert exports == ["onnx"] and second.export_dir == first.export_dir
    assert {path: path.stat().st_mtime_ns for path in second.export_dir.iterdir()} == stamps
    np.testing.assert_array_equal(second.encode_texts(TEXTS), expected)
    assert second.identity == first.identity


def test_exports_are_keyed_by_towers_identity_and_backend(tiny_towers, tmp_path, exports):
    onnx = load_towers(tiny_towers, device="cpu", backend="onnx")
    other_dir = _save_tiny_towers(tmp_path / "other", seed=1)
    other = load_towers(other_dir, device="cpu", backend="onnx")
    int8 = load_towers(tiny_towers, device="cpu", backend="onnx-int8")
    assert exports == ["onnx", "onnx", "onnx-int8"]
    assert other.identity["content_hash"] != onnx.identity["content_hash"]
    assert len({onnx.export_dir, other.export_dir, int8.export_dir}) == 3
    assert int8.export_dir.parent == onnx.export_dir.parent  # same towers, another backend
    assert find_export(tiny_towers, onnx.identity, "onnx") == onnx.export_dir
    assert find_export(tiny_towers, other.identity, "onnx") is None  # other towers' export is not these towers'
    # Towers copied elsewhere (same weights, same hash) reuse the export that travelled with them.
    copy = Path(shutil.copytree(tiny_towers, tmp_path / "copy"))
    travelled = copy / onnx.export_dir.relative_to(tiny_towers)
    assert load_towers(copy, device="cpu", backend="onnx").export_dir == travelled
    assert exports == ["onnx", "onnx", "onnx-int8"]


def test_towers_whose_folder_is_not_ours_export_into_the_cache_directory(tiny_towers, tmp_path, exports):
    towers = load_towers(tiny_towers, device="cpu")
    cache = tmp_path / "cache"
    made = ensure_export(towers, tiny_towers, "onnx", cache_dir=cache, beside=False)
    assert made.is_relative_to(cache) and not (tiny_towers / ".onnx").exists()
    assert ensure_export(towers, tiny_towers, "onnx", cache_dir=cache, beside=False) == made
    assert load_towers(tiny_towers, device="cpu", backend="onnx", cache_dir=cache).export_dir == made
    assert exports == ["onnx"]


def test_export_backend_writes_beside_saved_towers_and_the_cli_too(tiny_towers, exports, capsys):
    assert export_backend(tiny_towers, "torch") is None and export_backend(tiny_towers, "torch-int8") is None
    made = export_backend(tiny_towers, "onnx")
    assert made.parent.parent == tiny_towers / ".onnx" and (made / "export.json").is_file()
    assert main(["export", "--towers", str(tiny_towers), "--backend", "onnx"]) == 0
    assert capsys.readouterr().out.strip() == str(made)
    assert exports == ["onnx"]
    assert (tiny_towers / TOWERS_FILE).is_file()  # the towers themselves are untouched


def test_towers_from_the_hub_use_the_export_pushed_with_them(tiny_towers, tmp_path, monkeypatch, exports):
    """A Space's disk is wiped on restart: the export pushed with the towers comes down with them (the download's
    patterns take it) and is used as is; a missing one is made in the cache directory, never in the Hub's cache."""
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    from tweetmaker.towers import _HUB_PATTERNS

    export_backend(tiny_towers, "onnx")
    downloads: list[Path] = []

    def snapshot_download(repo_id, revision=None, token=None, allow_patterns=None, **kwargs):
        files = [path.relative_to(tiny_towers).as_posix() for path in tiny_towers.rglob("*") if path.is_file()]
        snapshot = tmp_path / "hub-cache" / "snapshots" / f"commit{len(downloads)}"
        for name in filter_repo_objects(files, allow_patterns=allow_patterns):
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tiny_towers / name, snapshot / name)
        downloads.append(snapshot)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    towers = load_towers("someone/tweet-towers", device="cpu", backend="onnx")
    assert allow_patterns_cover_exports(_HUB_PATTERNS)
    assert towers.export_dir.is_relative_to(downloads[0]) and exports == ["onnx"]
    int8 = load_towers("someone/tweet-towers", device="cpu", backend="onnx-int8")
    assert int8.export_dir.is_relative_to(tmp_path / "user-cache") and exports == ["onnx", "onnx-int8"]
    assert not list(downloads[1].rglob("onnx-int8*"))


def allow_patterns_cover_exports(patterns: list[str]) -> bool:
    from huggingface_hub.utils import filter_repo_objects

    names = [".onnx/abc/onnx-v1/text.onnx", ".onnx/abc/onnx-v1/export.json"]
    return list(filter_repo_objects(names, allow_patterns=patterns)) == names


def test_a_failed_export_leaves_no_half_model(tiny_towers, monkeypatch):
    real = export_module._export_tower

    def fail_after_image(towers, name, model, path):
        real(towers, name, model, path)  # the image tower is written, then the export dies
        if name == "image":
            raise RuntimeError("export interrupted")

    monkeypatch.setattr(export_module, "_export_tower", fail_after_image)
    with pytest.raises(RuntimeError, match="interrupted"):
        load_towers(tiny_towers, device="cpu", backend="onnx")
    assert not [path for path in (tiny_towers / ".onnx").rglob("*.onnx") if path.is_file()]
    assert not list((tiny_towers / ".onnx").rglob(".partial-*"))
    identity = load_towers(tiny_towers, device="cpu").identity
    assert find_export(tiny_towers, identity, "onnx") is None
    monkeypatch.setattr(export_module, "_export_tower", real)
    assert find_export(tiny_towers, identity, "onnx") is None
    assert load_towers(tiny_towers, device="cpu", backend="onnx").encode_texts(TEXTS).shape[0] == len(TEXTS)


KILLED_EXPORT = """
import os, signal, sys
from tweetmaker.inference import export
from tweetmaker.towers import load_towers
real = export._export_tower
def die_after_image(towers, name, model, path):
    real(towers, name, model, path)
    if name == "image":
        os.kill(os.getpid(), signal.SIGKILL)
export._export_tower = die_after_image
load_towers(sys.argv[1], device="cpu", backend=sys.argv[2])
"""


def test_an_export_killed_with_sigkill_leaves_no_half_model_and_the_next_load_finishes(tiny_towers):
    backend = "onnx-int8"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(tiny_towers), backend], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == -9, run.stderr[-2000:]
    identity = load_towers(tiny_towers, device="cpu").identity
    assert find_export(tiny_towers, identity, backend) is None
    staged = list((tiny_towers / ".onnx").rglob(".partial-*"))
    assert staged, "the kill should have hit mid-export"  # staging, never the target name
    towers = load_towers(tiny_towers, device="cpu", backend=backend)
    assert find_export(tiny_towers, identity, backend) == towers.export_dir
    assert not list((tiny_towers / ".onnx").rglob(".partial-*"))


def test_concurrent_first_loads_export_once(tiny_towers, exports):
    towers = load_towers(tiny_towers, device="cpu")
    results, errors = [], []

    def export():
        try:
            results.append(ensure_export(towers, tiny_towers, "onnx"))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results)) == 1 and exports == ["onnx"]


# -- agreement with fp32 on the twin with trained towers (issue 13's bar) -------------------------------------------
SEARCH_QUERIES = 60  # evaluate_search's query tweets (as tests/test_search.py); agreement uses the whole test split


@pytest.fixture(scope="module")
def twin(learned, tmp_path_factory) -> dict:
    """The trained towers copied (their exports stay out of the shared fixture), the data set, an fp32 index."""
    from tweetmaker.data import load_tweets

    root = tmp_path_factory.mktemp("backend_twin")
    towers_dir = Path(shutil.copytree(learned["towers"], root / "towers"))
    dataset = load_tweets(learned["dataset"])
    reference = load_towers(towers_dir, device="cpu")
    quality = {**tower_quality(reference, dataset["test"]),
               **search_quality(reference, root / "index", dataset, limit=SEARCH_QUERIES)}
    return {"towers": towers_dir, "dataset": dataset, "reference": reference, "index": root / "index",
            "quality": quality}


@pytest.mark.slow
@pytest.mark.parametrize("backend", [name for name in BACKENDS if name != "torch"])
def test_backends_agree_with_fp32_on_the_twin_with_trained_towers(twin, backend):
    towers = load_towers(twin["towers"], device="cpu", backend=backend)
    agreements = agreement(twin["reference"], towers, twin["dataset"])
    # The index built by fp32 torch serves this backend's queries (same towers identity).
    quality = {**tower_quality(towers, twin["dataset"]["test"]),
               **search_quality(towers, twin["index"], twin["dataset"], limit=SEARCH_QUERIES)}
    deltas = quality_deltas(twin["quality"], quality)
    print(backend, "agreement:", agreements, "quality deltas:", deltas)
    assert set(deltas) == set(twin["quality"]) and len(deltas) >= 9
    worst = max(abs(delta) for delta in deltas.values())
    if backend in MEETS_AGREEMENT_BAR:
        assert min(agreements.values()) >= AGREEMENT_BAR
        assert worst <= QUALITY_TOLERANCE + 1e-9  # 3 queries in 300 is 0.01 exactly, give or take a rounding
    else:
        # Measured below the bar (agreement 0.54-0.89: int8 reorders the twin's tightly packed top-10; quality
        # within 0.01, torch-int8's text->image recall@10 right at it), which is why it is not the default. Int8
        # kernels differ between CPUs, so this only guards that it is still the same model.
        assert min(agreements.values()) >= 0.4
        assert worst <= 2 * QUALITY_TOLERANCE


def test_cores_are_shared_between_a_launchers_processes_and_capped_per_process(monkeypatch):
    from tweetmaker.inference.choice import THREADS_ENV, available_cores

    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv(THREADS_ENV, raising=False)
    machine = available_cores()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun --nproc_per_node 2: each gets half, at least one
    assert available_cores() == max(1, machine // 2)
    monkeypatch.setenv(THREADS_ENV, "1")  # an explicit per-process cap has the last word
    assert available_cores() == 1
    monkeypatch.setenv(THREADS_ENV, "64")  # a cap above the share does not raise it
    assert available_cores() == max(1, machine // 2)
