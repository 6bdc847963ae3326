"""Figure 1: the app's text -> image and image -> hashtags handlers against the least work the same query needs
(fp32 torch towers, and the chosen inference backend)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import capabilities
from benchmarks.context import Context, K
from benchmarks.stats import MS, Figure, interleaved, median, ms_stats, repeated, rotated, size_tag


def bare_text_query(towers: Any, vectors: np.ndarray, k: int = K) -> Callable[[str], np.ndarray]:
    """The least work a text -> image query needs: tokenize, text tower forward, exact top-k.

    The top-k runs in torch, on the tower's own thread pool. A numpy matmul of this size starts OpenBLAS's second
    pool, whose threads keep spinning after it returns and take the cores from the next torch call (one text
    encoded in 26 ms alone took 89 ms right after a 10k x 512 numpy matmul): interleaved with the handler, that
    penalty fell on the handler and measured the two pools' fight, not the app.
    """
    import torch

    tokenizer, model = towers.tokenizer, towers.text_model
    max_length = towers.max_text_length
    matrix = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))

    def query(text: str) -> np.ndarray:
        tokens = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            embedding = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).text_embeds
            scores = matrix @ torch.nn.functional.normalize(embedding[0], dim=0)
            return torch.topk(scores, k).indices.numpy()

    return query


def query_latency(ctx: Context, resources: Any, size: int, with_target: bool) -> list[Figure]:
    """Figure 1: the app's text -> image handler (k=10) vs the bare minimum over the same embeddings."""
    from tweetmaker.ui import Handlers

    profile = ctx.profile
    texts = ctx.query_texts
    handlers = Handlers(resources)
    bare = bare_text_query(resources.towers, ctx.vectors(size))

    def handler(i: int) -> None:
        handlers.text_to_image(texts[i % len(texts)], K, 0.0, 0.0, 0.0)

    def reference(i: int) -> None:
        bare(texts[i % len(texts)])

    app_times, bare_times = interleaved(handler, reference, repeats=profile.latency_repeats, warmup=profile.warmup)
    # Where the handler's time goes: the same calls split into their layers (distinct texts again).
    recommender, index, towers = resources.recommender, resources.index, resources.towers
    offset = 10_000
    parts = max(5, profile.latency_repeats // 3)
    embed = repeated(lambda i: towers.encode_texts([texts[(offset + i) % len(texts)]]), repeats=parts, warmup=1)
    query_vectors = towers.encode_texts([texts[(offset + i) % len(texts)] for i in range(parts + 1)])
    chroma = repeated(lambda i: index.query("image", query_vectors[i], K), repeats=parts, warmup=1)
    search = repeated(lambda i: recommender.text_to_images(texts[(2 * offset + i) % len(texts)], k=K),
                      repeats=parts, warmup=1)
    # Last: numpy's OpenBLAS threads spin on after it and would slow whatever torch call came next.
    numpy_topk = repeated(lambda i: _exact_top(ctx.vectors(size), query_vectors[i]), repeats=parts, warmup=1)
    tokens = [len(towers.tokenizer(text)["input_ids"]) for text in texts[:200]]
    figure = Figure(
        id=f"latency.text_to_image.{size_tag(size)}",
        number=1,
        name=f"Query latency: text→image handler vs bare minimum, {size:,} items",
        value=median(app_times) * MS,
        reference=median(bare_times) * MS,
        unit="ms",
        description="ui.Handlers.text_to_image(text, k=10) as the app serves it: validation, text tower, Chroma "
                    "HNSW query with metadata, re-ranking, gallery items and score table",
        reference_description="tokenize + text tower forward (inference_mode) + exact torch top-10 over the "
                              "same embeddings",
        target=("<=", 1.3) if with_target else None,
        value_stats=ms_stats(app_times),
        reference_stats=ms_stats(bare_times),
        details={
            "breakdown_median_ms": {
                "towers.encode_texts (1 text)": median(embed) * MS,
                "index.query (Chroma, k=10, metadata)": median(chroma) * MS,
                "numpy exact top-10": median(numpy_topk) * MS,
                "recommender.text_to_images": median(search) * MS,
            },
            "query_tokens_median": float(np.median(tokens)),
            "indexed_items": size,
        },
        notes="Index filled with synthetic unit vectors (see Method); the text tower is the real ViT-B/32 text "
              "transformer. Served by fp32 torch towers (the chosen backend's figures follow).",
    )
    return [figure]


def bare_image_query(towers: Any, vectors: np.ndarray, k: int) -> Callable[[str], np.ndarray]:
    """The least work an image -> hashtags query needs: decode the upload, preprocess, image tower, exact top-k of
    the image vectors (the neighbours whose hashtags vote), all on fp32 torch; the vote itself is left out."""
    import torch
    from PIL import Image

    processor, model = towers.image_processor, towers.image_model
    matrix = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))

    def query(path: str) -> np.ndarray:
        with Image.open(path) as image:
            pixels = processor(images=[image.convert("RGB")], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            embedding = model(pixel_values=pixels).image_embeds
            scores = matrix @ torch.nn.functional.normalize(embedding[0], dim=0)
            return torch.topk(scores, k).indices.numpy()

    return query


def chosen_backend_latency(ctx: Context, index_dir: Any, size: int) -> list[Figure]:
    """Issue 13's handler targets: text -> image (<= 0.5x) and image -> hashtags (<= 0.6x) served by the chosen
    backend, against the bare fp32 PyTorch forward + exact top-k over the same vectors, interleaved."""
    from tweetmaker.search import HASHTAG_NEIGHBOURS
    from tweetmaker.ui import Handlers

    profile = ctx.profile
    backend = ctx.chosen_backend
    texts, images = ctx.query_texts, [str(path) for path in ctx.query_image_paths]
    vectors = ctx.vectors(size)
    fp32 = ctx.speed_towers(capabilities.TORCH)
    resources = ctx.load_resources(index_dir, backend=backend)
    try:
        handlers, towers, index = Handlers(resources), resources.towers, resources.index
        served_by = getattr(towers, "backend", capabilities.TORCH)
        bare_text, bare_image = bare_text_query(fp32, vectors), bare_image_query(fp32, vectors, HASHTAG_NEIGHBOURS)
        # Distinct inputs on both sides of each pair, and different ones from figure 1's.
        text_at = lambda i: texts[(5 * i + 2) % len(texts)]  # noqa: E731
        image_at = lambda i: images[i % len(images)]  # noqa: E731
        text_app, text_bare = interleaved(lambda i: handlers.text_to_image(text_at(i), K, 0.0, 0.0, 0.0),
                                          lambda i: bare_text(text_at(i)), repeats=profile.latency_repeats,
                                          warmup=profile.warmup)
        image_app, image_bare = interleaved(lambda i: handlers.image_to_hashtags(image_at(i), K, 0.0, 0.0, 0.0),
                                            lambda i: bare_image(image_at(i)), repeats=profile.latency_repeats,
                                            warmup=profile.warmup)
        # Where the time goes, with the served towers and fp32 side by side (medians of separate runs).
        parts = max(5, profile.latency_repeats // 3)
        decoded = [_decoded(path) for path in images[:parts + 1]]
        text_served, text_fp32, image_served, image_fp32 = rotated([
            lambda i: towers.encode_texts([text_at(i + 7)]), lambda i: fp32.encode_texts([text_at(i + 7)]),
            lambda i: towers.encode_images([decoded[i % len(decoded)]]),
            lambda i: fp32.encode_images([decoded[i % len(decoded)]]),
        ], repeats=parts, warmup=1)
        vector = towers.encode_texts([text_at(1)])[0]
        chroma_images = repeated(lambda i: index.query("image", vector, K), repeats=parts, warmup=1)
        chroma_votes = repeated(lambda i: index.query("image", vector, HASHTAG_NEIGHBOURS), repeats=parts, warmup=1)
    finally:
        resources.close()
    common = {"backend": served_by, "indexed_items": size}
    note = ("The handler runs the chosen backend's towers (tweetmaker.inference.DEFAULT_CPU_BACKEND); the reference "
            "is today's fp32 eager forward with an exact top-k, so the ratio shows what the backend buys and what "
            "Chroma, validation and formatting cost on top.")
    if capabilities.backends_missing():
        note += f" No backends in the library yet ({capabilities.backends_missing()}): both sides are fp32 torch."
    return [
        Figure(
            id="latency.text_to_image.chosen_backend",
            number=1,
            name=f"Handler latency: text→image with the chosen backend ({served_by}) vs bare fp32 forward + exact "
                 f"top-10, {size:,} items",
            value=median(text_app) * MS,
            reference=median(text_bare) * MS,
            unit="ms",
            description=f"ui.Handlers.text_to_image(text, k=10), towers served by {served_by}, Chroma HNSW query",
            reference_description="tokenize + fp32 PyTorch text tower (inference_mode) + exact torch top-10 over the "
                                  "same vectors",
            target=("<=", 0.5),
            value_stats=ms_stats(text_app),
            reference_stats=ms_stats(text_bare),
            details={**common, "breakdown_median_ms": {
                f"encode_texts (1 text), {served_by}": median(text_served) * MS,
                "encode_texts (1 text), fp32 torch": median(text_fp32) * MS,
                "index.query (Chroma, k=10, metadata)": median(chroma_images) * MS,
            }},
            notes=note,
        ),
        Figure(
            id="latency.image_to_hashtags.chosen_backend",
            number=1,
            name=f"Handler latency: image→hashtags with the chosen backend ({served_by}) vs bare fp32 forward + "
                 f"exact top-{HASHTAG_NEIGHBOURS}, {size:,} items",
            value=median(image_app) * MS,
            reference=median(image_bare) * MS,
            unit="ms",
            description=f"ui.Handlers.image_to_hashtags(path, k=10) on twin images (files, as Gradio passes an "
                        f"upload), towers served by {served_by}: decode, image tower, Chroma queries (k=10 tweets, "
                        f"{HASHTAG_NEIGHBOURS} voting neighbours), hashtag vote, formatting",
            reference_description="open + preprocess + fp32 PyTorch image tower + exact torch "
                                  f"top-{HASHTAG_NEIGHBOURS} over the same vectors (the neighbours whose tags vote)",
            target=("<=", 0.6),
            value_stats=ms_stats(image_app),
            reference_stats=ms_stats(image_bare),
            details={**common, "breakdown_median_ms": {
                f"encode_images (1 decoded image), {served_by}": median(image_served) * MS,
                "encode_images (1 decoded image), fp32 torch": median(image_fp32) * MS,
                "index.query (Chroma, k=10, metadata)": median(chroma_images) * MS,
                f"index.query (Chroma, k={HASHTAG_NEIGHBOURS}, metadata)": median(chroma_votes) * MS,
            }},
            notes=note,
        ),
    ]


def _decoded(path: str) -> Any:
    from tweetmaker.data import decode_image

    return decode_image(path)


def _exact_top(vectors: np.ndarray, query: np.ndarray, k: int = K) -> np.ndarray:
    from tweetmaker.index import exact_neighbours

    return exact_neighbours(vectors, query[None, :], k)[0]
