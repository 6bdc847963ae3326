"""Run sizes (profiles) and the lazily made, shared inputs of the figures."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import workspace

REPO_ROOT = Path(__file__).resolve().parents[1]
K = 10  # every query the figures make asks for the top 10


@dataclass(frozen=True)
class Profile:
    """How big and how often: ``full`` (documented run), ``quick`` (< 10 min on 2 cores), ``smoke`` (tests)."""

    name: str
    speed_model: str  # "vit-b32": the real shapes; "tiny": smoke runs only
    twin_rows: int  # synthetic twin used for queries, indexing, training and quality
    latency_sizes: tuple[int, ...]  # indexed items for query latency; the first is where the 1.3x target applies
    defaults_sizes: tuple[int, ...]  # sizes at which Chroma's default HNSW settings are measured too
    latency_repeats: int
    warmup: int
    recall_queries: int
    index_images: int  # rows embedded by the measured index builds
    build_repeats: int
    forward_batch_sizes: tuple[int, ...]  # candidates for the plain image-tower forward (best one is the reference)
    forward_repeats: int
    serve_serial: int
    serve_clients: int
    serve_per_client: int
    train_batch: int
    train_warmup_steps: int
    train_steps: int
    cold_repeats: int
    quality_rows: int
    quality_args: tuple[str, ...] | None  # None: the offline demo's recipe (tweetmaker.resources.DEMO_FINETUNE_ARGS)


PROFILES = {
    "full": Profile(
        name="full", speed_model="vit-b32", twin_rows=3000, latency_sizes=(10_000, 100_000),
        defaults_sizes=(10_000, 100_000), latency_repeats=100, warmup=5, recall_queries=500, index_images=512,
        build_repeats=3, forward_batch_sizes=(8, 16, 32, 64), forward_repeats=5, serve_serial=100, serve_clients=4,
        serve_per_client=25, train_batch=32, train_warmup_steps=2, train_steps=10, cold_repeats=5,
        quality_rows=3000, quality_args=None,
    ),
    "quick": Profile(
        # 50k, not 100k, as the second size: filling a 100k collection alone took 206 s of a 10.9-minute run, over
        # the 10-minute budget. The full run keeps 100k.
        name="quick", speed_model="vit-b32", twin_rows=2000, latency_sizes=(10_000, 50_000),
        defaults_sizes=(10_000,), latency_repeats=30, warmup=3, recall_queries=200, index_images=96,
        build_repeats=2, forward_batch_sizes=(16, 32), forward_repeats=3, serve_serial=20, serve_clients=4,
        serve_per_client=5, train_batch=8, train_warmup_steps=1, train_steps=4, cold_repeats=3,
        quality_rows=2000, quality_args=None,
    ),
    "smoke": Profile(
        name="smoke", speed_model="tiny", twin_rows=120, latency_sizes=(300, 1000), defaults_sizes=(300,),
        latency_repeats=4, warmup=1, recall_queries=20, index_images=24, build_repeats=1, forward_batch_sizes=(8,),
        forward_repeats=2, serve_serial=3, serve_clients=2, serve_per_client=2, train_batch=4, train_warmup_steps=1,
        train_steps=2, cold_repeats=1, quality_rows=120,
        quality_args=("--num_train_epochs", "1", "--per_device_train_batch_size", "16", "--learning_rate", "2e-3",
                      "--seed", "0"),
    ),
}


def log(message: str) -> None:
    """Progress on stderr, so a long run shows where it is."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Context:
    """Inputs shared by the figures, made on first use in ``workdir`` (reused when a work directory is kept)."""

    def __init__(self, profile: Profile, workdir: Path) -> None:
        self.profile = profile
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._vectors: dict[int, np.ndarray] = {}

    def settings(self) -> dict[str, Any]:
        return {"profile": asdict(self.profile), "quality_args": self.quality_args, "workdir": str(self.workdir)}

    # -- models ----------------------------------------------------------------------------------------------------
    @cached_property
    def speed_base_dir(self) -> Path:
        """The base CLIP the speed figures use: ViT-B/32 shapes (tiny in smoke runs)."""
        if self.profile.speed_model == "tiny":
            return workspace.write_tiny_base(self.workdir / "tiny-base")
        log("writing the ViT-B/32-shaped base CLIP (random weights)")
        return workspace.write_vit_b32_base(self.workdir / "vit-b32-base")

    @cached_property
    def speed_towers_dir(self) -> Path:
        """The base split into towers and saved as the app loads trained towers (``load_towers``)."""
        from tweetmaker.towers import build_towers_from_base

        directory = self.workdir / f"{self.profile.speed_model}-towers"
        if not (directory / "towers.json").is_file():
            log("saving the speed towers")
            build_towers_from_base(self.speed_base_dir, device="cpu").save(directory)
        return directory

    @cached_property
    def speed_dim(self) -> int:
        return int(json.loads((self.speed_towers_dir / "towers.json").read_text())["embedding_dim"])

    @cached_property
    def speed_identity(self) -> dict[str, Any]:
        return workspace.towers_identity(self.speed_towers_dir)

    def load_speed_towers(self) -> Any:
        from tweetmaker.towers import load_towers

        return load_towers(self.speed_towers_dir, device="cpu")

    @cached_property
    def tiny_base_dir(self) -> Path:
        return workspace.write_tiny_base(self.workdir / "tiny-base")

    # -- data ------------------------------------------------------------------------------------------------------
    @cached_property
    def twin_dir(self) -> Path:
        log(f"writing the synthetic twin ({self.profile.twin_rows} rows)")
        return workspace.make_twin(self.workdir, self.profile.twin_rows)

    @cached_property
    def twin(self) -> Any:
        from tweetmaker.data import load_tweets

        return load_tweets(str(self.twin_dir))

    @cached_property
    def query_texts(self) -> list[str]:
        """Tweet texts of the twin, used as draft queries (distinct, so no cache can answer a repeat)."""
        texts = [text for split in ("test", "train") for text in self.twin[split]["text"] if (text or "").strip()]
        return list(dict.fromkeys(texts))

    # -- indexes ---------------------------------------------------------------------------------------------------
    def vectors(self, size: int) -> np.ndarray:
        if size not in self._vectors:
            self._vectors[size] = workspace.synthetic_vectors(size, self.speed_dim, seed=size)
        return self._vectors[size]

    def speed_index_dir(self, size: int) -> Path:
        """An app index of ``size`` synthetic image vectors at the project's chosen HNSW settings."""
        directory = self.workdir / f"index-{self.profile.speed_model}-{size}"
        began = time.perf_counter()
        log(f"filling the {size}-item Chroma index (chosen HNSW settings)")
        workspace.write_synthetic_index(directory, self.speed_identity, self.vectors(size), self.query_texts)
        log(f"index of {size} ready in {time.perf_counter() - began:.0f} s")
        return directory

    def app_argv(self, index_dir: Path, port: int | None = None) -> list[str]:
        """The app's flags for the speed towers and an index (a Space would set the same via environment)."""
        argv = ["--towers", str(self.speed_towers_dir), "--index_dir", str(index_dir), "--dataset", str(self.twin_dir),
                "--cache_dir", str(self.workdir / "app-cache"), "--host", "127.0.0.1"]
        return argv + (["--port", str(port)] if port else [])

    def load_resources(self, index_dir: Path) -> Any:
        """The app's resources exactly as ``app.py`` loads them (``parse_settings`` + ``load_resources``)."""
        from tweetmaker.config import parse_settings
        from tweetmaker.resources import load_resources

        settings = parse_settings(self.app_argv(index_dir), {"TWEETMAKER_REBUILD_STALE_INDEX": "false"})
        return load_resources(settings, progress=lambda message: log(f"app: {message}"))

    # -- quality ---------------------------------------------------------------------------------------------------
    @cached_property
    def quality_dataset_dir(self) -> Path:
        if self.profile.quality_rows == self.profile.twin_rows:
            return self.twin_dir
        return workspace.make_twin(self.workdir, self.profile.quality_rows)

    @cached_property
    def trained_towers_dir(self) -> Path:
        """Tiny towers fine-tuned on the twin by the real ``train/finetune.py`` (the quality figures' model)."""
        from train import finetune

        output = self.workdir / "quality-towers"
        if not (output / "all_results.json").is_file():
            log("fine-tuning tiny towers on the twin with train/finetune.py")
            finetune.main(["--dataset", str(self.quality_dataset_dir), "--base_model", str(self.tiny_base_dir),
                           "--output_dir", str(output), *self.quality_args])
        return output

    @cached_property
    def quality_embeddings(self) -> dict[str, Any]:
        """Test-split embeddings of the base and the fine-tuned tiny towers, plus every twin image (fine-tuned)."""
        from tweetmaker.data import load_tweets
        from tweetmaker.towers import build_towers_from_base, load_towers

        trained_dir = self.trained_towers_dir
        data = load_tweets(str(self.quality_dataset_dir))
        test = data["test"]
        images, texts, tags = list(test["image"]), list(test["text"]), list(test["hashtags"])
        out: dict[str, Any] = {"labels": list(test["attr_topic"])}
        for name, towers in (("before", build_towers_from_base(self.tiny_base_dir, device="cpu")),
                             ("trained", load_towers(trained_dir, device="cpu"))):
            out[name] = {"image": towers.encode_images(images), "text": towers.encode_texts(texts),
                         "hashtag": towers.encode_hashtags(tags)}
            if name == "trained":
                out["all_images"] = np.concatenate([towers.encode_images(list(data["train"]["image"])),
                                                    out[name]["image"]])
        return out

    @property
    def quality_args(self) -> list[str]:
        if self.profile.quality_args is not None:
            return list(self.profile.quality_args)
        from tweetmaker.resources import DEMO_FINETUNE_ARGS

        return list(DEMO_FINETUNE_ARGS)
