"""Choosing HNSW settings by measurement: recall@k against exact search, and query latency, per setting.

``python -m tweetmaker.index tune`` runs ``measure_hnsw`` over ``TUNING_GRID`` on a built index's embeddings;
``DEFAULT_HNSW`` (tweetmaker/index/layout.py) records what was chosen and why.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def exact_neighbours(embeddings: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices of the exact top-k by cosine (rows are L2-normalised), best first."""
    scores = queries @ embeddings.T
    k = min(k, embeddings.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def measure_hnsw(
    embeddings: np.ndarray,
    settings: Sequence[dict[str, Any]],
    *,
    k: int = 10,
    n_queries: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Recall@k against exact search and query latency of each HNSW setting on these embeddings.

    Builds a throw-away collection per setting in a temporary directory, queries it with ``n_queries``
    corpus rows (one query per call, as the app does) and compares with brute force. Returns one row per
    setting: the setting, ``recall@k``, mean / p95 latency in ms and the build time in seconds.
    """
    from tweetmaker.index.layout import make_client

    vectors = np.asarray(embeddings, dtype=np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    query_rows = rng.choice(len(vectors), size=min(n_queries, len(vectors)), replace=False)
    truth = exact_neighbours(vectors, vectors[query_rows], k)
    ids = [str(i) for i in range(len(vectors))]
    table = []
    with tempfile.TemporaryDirectory(prefix="tweetmaker-tune-") as scratch:
        client = make_client(scratch)
        try:
            step = client.get_max_batch_size()
            for number, setting in enumerate(settings):
                config = {"space": "cosine", **setting}
                collection = client.create_collection(f"tune{number}", configuration={"hnsw": config},
                                                      embedding_function=None)
                began = time.perf_counter()
                for start in range(0, len(vectors), step):
                    collection.add(ids=ids[start:start + step], embeddings=vectors[start:start + step])
                collection.query(query_embeddings=vectors[:1], n_results=k)  # the first query loads the index
                build_seconds = time.perf_counter() - began
                latencies, found = [], []
                for row in query_rows:
                    began = time.perf_counter()
                    result = collection.query(query_embeddings=vectors[row:row + 1], n_results=k, include=[])
                    latencies.append((time.perf_counter() - began) * 1000)
                    found.append([int(i) for i in result["ids"][0]])
                # Tie-aware: a returned item counts when it is as similar as the exact k-th neighbour, so identical
                # embeddings (tweets with the same hashtag string) cannot make a correct answer look wrong.
                recall = float(np.mean([
                    np.sum(vectors[f] @ vectors[row] >= vectors[t[-1]] @ vectors[row] - 1e-6) / len(t)
                    for f, t, row in zip(found, truth, query_rows)
                ]))
                table.append({
                    **setting,
                    f"recall@{k}": round(recall, 4),
                    "latency_ms_mean": round(float(np.mean(latencies)), 3),
                    "latency_ms_p95": round(float(np.percentile(latencies, 95)), 3),
                    "build_s": round(build_seconds, 2),
                    "n": len(vectors),
                })
                client.delete_collection(f"tune{number}")
        finally:
            client.close()
    return table


TUNING_GRID: list[dict[str, Any]] = [
    {"max_neighbors": m, "ef_construction": efc, "ef_search": efs}
    for m, efc in ((8, 50), (16, 100), (32, 200))
    for efs in (10, 50, 100, 200)
]
