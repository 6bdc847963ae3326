"""Figure 1: the app's text -> image handler against the least work the same query needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.context import Context, K
from benchmarks.stats import MS, Figure, interleaved, median, ms_stats, repeated


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
              "transformer.",
    )
    return [figure]


def _exact_top(vectors: np.ndarray, query: np.ndarray, k: int = K) -> np.ndarray:
    from tweetmaker.index import exact_neighbours

    return exact_neighbours(vectors, query[None, :], k)[0]
