"""What the benchmarks run on, made offline in a work directory.

- a base CLIP with the exact shapes of ``openai/clip-vit-base-patch32`` (random weights: speed does not depend
  on them, and nothing can be downloaded here), with the tiny offline BPE tokenizer of ``tweetmaker.towers``
  capped at CLIP's 77-token context, and the real checkpoint's image preprocessing config;
- the synthetic twin of the corpus, converted by the real ``train/prepare_dataset.py``;
- Chroma indexes filled with synthetic unit vectors of the towers' size plus the metadata every record carries,
  written by ``tweetmaker.index.IndexWriter`` (the writer builds use), so the app opens them like a built index and a
  change of the index's layout reaches them too. Embedding
  100k real images with ViT-B/32 on two CPU cores would take hours, and query latency depends only on the
  vectors' count, size and spread, not on where they came from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

# openai/clip-vit-base-patch32's config.json, minus the token ids (those come from the offline tokenizer).
VIT_B32_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 512,
    "intermediate_size": 2048,
    "num_hidden_layers": 12,
    "num_attention_heads": 8,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 512,
}
VIT_B32_VISION = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "image_size": 224,
    "patch_size": 32,
    "hidden_act": "quick_gelu",
    "projection_dim": 512,
}
VIT_B32_PROJECTION_DIM = 512
# The checkpoint's preprocessor_config.json, so AutoImageProcessor resolves the same class as for the real one.
VIT_B32_PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}


def write_vit_b32_base(output_dir: str | Path, seed: int = 0) -> Path:
    """A randomly initialised CLIPModel of the ViT-B/32 shapes, saved like a Hub checkpoint (safetensors)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from tweetmaker.towers import tiny_tokenizer

    output = Path(output_dir)
    if (output / "config.json").is_file() and any(output.glob("*.safetensors")):
        return output  # made by an earlier run in the same work directory
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer()
    tokenizer.model_max_length = VIT_B32_TEXT["max_position_embeddings"]
    config = CLIPConfig(
        text_config={
            **VIT_B32_TEXT,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=VIT_B32_VISION,
        projection_dim=VIT_B32_PROJECTION_DIM,
        logit_scale_init_value=2.6592,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    (output / "preprocessor_config.json").write_text(json.dumps(VIT_B32_PREPROCESSOR, indent=2))
    return output


def write_tiny_base(output_dir: str | Path) -> Path:
    """The project's tiny CLIP (smoke runs use it in place of ViT-B/32 so they finish in seconds)."""
    from tweetmaker.towers import write_tiny_clip

    output = Path(output_dir)
    if (output / "config.json").is_file():
        return output
    return write_tiny_clip(output)


def make_twin(workdir: str | Path, rows: int, seed: int = 0) -> Path:
    """The synthetic twin (Kaggle layout) converted into a DatasetDict by the real prepare script."""
    from train import prepare_dataset
    from tweetmaker.synthetic import generate_corpus

    root = Path(workdir) / f"twin-{rows}-{seed}"
    dataset_dir = root / "dataset"
    if (dataset_dir / "dataset_dict.json").is_file():
        return dataset_dir
    generate_corpus(root / "corpus", rows=rows, seed=seed)
    prepare_dataset.main(["--source_dir", str(root / "corpus"), "--output_dir", str(dataset_dir)])
    return dataset_dir


# ------------------------------------------------------------------------------------------- synthetic vectors


def synthetic_vectors(count: int, dim: int, seed: int = 0, clusters: int = 1000) -> np.ndarray:
    """Unit vectors spread like real embeddings: clusters in a low-dimensional subspace plus isotropic noise.

    Uniformly random vectors in 512-d are HNSW's worst case (every point is about equally far from every other),
    which no embedding model produces; clustered data gives recall and latency representative of a corpus.
    """
    rng = np.random.default_rng(seed)
    rank = min(64, dim)
    basis = rng.standard_normal((rank, dim)).astype(np.float32)
    centres = rng.standard_normal((clusters, rank)).astype(np.float32)
    labels = rng.integers(0, clusters, count)
    vectors = np.empty((count, dim), dtype=np.float32)
    step = 20000  # bounded temporaries
    for start in range(0, count, step):
        stop = min(start + step, count)
        local = centres[labels[start:stop]] + 0.5 * rng.standard_normal((stop - start, rank)).astype(np.float32)
        noise = 2.4 * rng.standard_normal((stop - start, dim)).astype(np.float32)
        vectors[start:stop] = local @ basis + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def synthetic_queries(vectors: np.ndarray, count: int, seed: int = 1, noise: float = 0.05) -> np.ndarray:
    """Queries near corpus points but not on them, as a text query lands near, not on, its image."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(count, len(vectors)), replace=False)
    queries = vectors[rows] + noise * rng.standard_normal((len(rows), vectors.shape[1])).astype(np.float32)
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------- synthetic indexes


def towers_identity(towers_dir: str | Path) -> dict[str, Any]:
    """The identity ``load_towers(towers_dir)`` reports, so the index manifest matches the towers the app loads."""
    from tweetmaker.towers import content_hash

    return {"source": str(towers_dir), "revision": None, "content_hash": content_hash(towers_dir), "kind": "towers"}


def _records(count: int, texts: Sequence[str], image_names: Sequence[str], offset: int = 0
             ) -> tuple[list[str], list[dict[str, Any]]]:
    """Ids and metadata shaped by ``tweetmaker.index.record_metadata``, as a real build stores them."""
    from tweetmaker.index import record_metadata

    rng = np.random.default_rng(offset)
    ids, metadatas = [], []
    base = datetime(2023, 1, 1, tzinfo=timezone.utc).timestamp()
    for number in range(offset, offset + count):
        text = texts[number % len(texts)]
        row = {
            "tweet_id": f"syn{number:07d}",
            "text": text,
            "hashtags": "#AI #MachineLearning",
            "hashtag_list": ["AI", "MachineLearning"],
            "likes": int(rng.integers(0, 500)),
            "retweets": int(rng.integers(0, 100)),
            "replies": int(rng.integers(0, 50)),
            "date": int(base + number * 97),
            "username": f"user{number % 997}",
        }
        ids.append(row["tweet_id"])
        metadatas.append(record_metadata(row, "train", [], image_names[number % len(image_names)]))
    return ids, metadatas


def fill_collection(collection: Any, vectors: np.ndarray, ids: Sequence[str], metadatas: Sequence[dict] | None,
                    step: int) -> None:
    """Add records to a scratch collection (not an index: the HNSW figures' throw-away ones) ``step`` at a time."""
    for start in range(0, len(ids), step):
        stop = start + step
        collection.add(ids=list(ids[start:stop]), embeddings=vectors[start:stop],
                       metadatas=None if metadatas is None else list(metadatas[start:stop]))


def write_synthetic_index(
    index_dir: str | Path,
    identity: dict[str, Any],
    image_vectors: np.ndarray,
    texts: Sequence[str],
    *,
    side_count: int = 200,
    hnsw: dict[str, Any] | None = None,
    stored_images: int = 16,
) -> Path:
    """An index directory the app opens like a built one, whose ``image`` collection holds ``image_vectors``.

    The ``text`` and ``hashtag`` collections get ``side_count`` records only: the text -> image query never
    touches them, and the app's start-up needs them to exist. ``stored_images`` small JPEGs are shared by all
    records, so results have an image file to show as in a real index.
    """
    from PIL import Image

    from tweetmaker.index import DEFAULT_HNSW, IndexLocation, IndexWriter, Manifest, build_lock, image_file_name

    index_path = Path(index_dir)
    done = index_path / ".benchmark-complete"
    count, dim = image_vectors.shape
    stamp = {"count": count, "dim": dim, "identity": identity.get("content_hash"), "hnsw": hnsw or DEFAULT_HNSW}
    if done.is_file() and json.loads(done.read_text()) == stamp:
        return index_path  # an earlier run in the same work directory made this very index
    if index_path.exists():
        import shutil

        shutil.rmtree(index_path)
    manifest = Manifest(
        towers=identity, embedding_dim=dim,
        dataset={"source": "benchmarks:synthetic-vectors", "num_rows": count, "content_hash": f"synthetic-{count}"},
        hnsw=dict(hnsw or DEFAULT_HNSW), built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    names = [image_file_name(f"stored{number}") for number in range(stored_images)]
    ids, metadatas = _records(max(count, side_count), texts, names)
    side_vectors = synthetic_vectors(side_count, dim, seed=99)
    with build_lock(index_path), IndexWriter(IndexLocation(index_path)) as writer:
        writer.create(manifest)
        for number, name in enumerate(names):
            colour = tuple(int(c) for c in np.random.default_rng(number).integers(0, 255, 3))
            writer.store_image(name, Image.new("RGB", (384, 288), colour))
        writer.add(ids[:side_count], {"text": side_vectors, "hashtag": side_vectors}, metadatas[:side_count])
        step = 20000  # bounded temporaries in Chroma's client
        for start in range(0, count, step):
            writer.add(ids[start:start + step], {"image": image_vectors[start:start + step]},
                       metadatas[start:start + step])
        writer.complete()
    done.write_text(json.dumps(stamp))
    return index_path
