"""Retrieval metrics for the towers: recall@k, MRR and median rank on exact pairs, precision@k on attributes.

Exact pairs (the original notebook's definition): query i (a tweet's text, hashtags or image) has exactly one
relevant document, the other modality of the same tweet (document i). Attribute relevance (the synthetic twin):
every document whose label (``attr_topic``) equals the query's is relevant, scored as precision@k.

Documents are ranked by cosine similarity (dot product of L2-normalised embeddings), best first; ties are broken
by document index, like a stable sort, so the numbers are deterministic. The same functions back the ``evaluate``
module shipped in ``tweetmaker/metrics_module`` (``load_metric()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

K_VALUES = (1, 5, 10, 50, 100)
# The three directions reported everywhere: query modality -> document modality.
DIRECTIONS = (("text", "image"), ("hashtag", "image"), ("image", "hashtag"))
METRIC_MODULE_PATH = Path(__file__).resolve().parent / "metrics_module"
_CHUNK = 512  # queries scored at once: bounds memory at _CHUNK x documents floats


def _as_matrix(embeddings: Any, name: str) -> np.ndarray:
    matrix = np.asarray(embeddings, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, dim), got shape {matrix.shape}")
    return matrix


def retrieval_metrics(
    query_embeddings: Any,
    document_embeddings: Any,
    positives: Sequence[int] | np.ndarray | None = None,
    query_labels: Sequence[Any] | None = None,
    document_labels: Sequence[Any] | None = None,
    k_values: Sequence[int] = K_VALUES,
) -> dict[str, float]:
    """Metrics of ranking ``document_embeddings`` for each query.

    ``positives[i]`` is the index of query i's one relevant document (default: i, the exact pair). Returns
    ``recall@k`` for each k, ``mrr``, ``median_rank`` and ``mean_rank`` (1 = best), plus ``precision@k`` on
    attribute labels when ``query_labels`` and ``document_labels`` are given (k above the number of documents
    counts over all documents).
    """
    queries = _as_matrix(query_embeddings, "query_embeddings")
    documents = _as_matrix(document_embeddings, "document_embeddings")
    if queries.shape[1] != documents.shape[1]:
        raise ValueError(f"Embedding sizes differ: queries {queries.shape[1]}, documents {documents.shape[1]}")
    n_queries, n_documents = queries.shape[0], documents.shape[0]
    if n_queries == 0 or n_documents == 0:
        raise ValueError("Retrieval metrics need at least one query and one document")
    k_values = sorted({int(k) for k in k_values})
    if not k_values or k_values[0] < 1:
        raise ValueError(f"k values must be >= 1, got {k_values}")
    targets = np.arange(n_queries) if positives is None else np.asarray(positives, dtype=np.int64)
    if targets.shape != (n_queries,) or targets.min() < 0 or targets.max() >= n_documents:
        raise ValueError(f"positives must hold one document index in [0, {n_documents}) per query")
    with_labels = query_labels is not None or document_labels is not None
    if with_labels:
        if query_labels is None or document_labels is None:
            raise ValueError("Attribute precision needs both query_labels and document_labels")
        query_codes, document_codes = _encode_labels(query_labels, document_labels)
        if len(query_codes) != n_queries or len(document_codes) != n_documents:
            raise ValueError("There must be one label per query and one per document")
    top = min(max(k_values), n_documents)

    ranks = np.empty(n_queries, dtype=np.int64)
    hits_at = {k: 0.0 for k in k_values}
    for start in range(0, n_queries, _CHUNK):
        stop = min(start + _CHUNK, n_queries)
        scores = queries[start:stop] @ documents.T
        rows = np.arange(stop - start)
        positive_scores = scores[rows, targets[start:stop]][:, None]
        before = np.arange(n_documents)[None, :] < targets[start:stop, None]
        ranks[start:stop] = 1 + (scores > positive_scores).sum(1) + ((scores == positive_scores) & before).sum(1)
        if with_labels:
            order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
            relevant = document_codes[order] == query_codes[start:stop, None]
            cumulative = np.cumsum(relevant, axis=1)
            for k in k_values:
                kk = min(k, n_documents)
                hits_at[k] += float((cumulative[:, kk - 1] / kk).sum())

    results = {f"recall@{k}": float((ranks <= k).mean()) for k in k_values}
    results["mrr"] = float((1.0 / ranks).mean())
    results["median_rank"] = float(np.median(ranks))
    results["mean_rank"] = float(ranks.mean())
    if with_labels:
        results.update({f"precision@{k}": hits_at[k] / n_queries for k in k_values})
    return results


def _encode_labels(query_labels: Sequence[Any], document_labels: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Map labels of any hashable type to shared integer codes."""
    codes: dict[Any, int] = {}
    query_codes = np.array([codes.setdefault(label, len(codes)) for label in query_labels], dtype=np.int64)
    document_codes = np.array([codes.setdefault(label, len(codes)) for label in document_labels], dtype=np.int64)
    return query_codes, document_codes


def tower_metrics(
    embeddings: dict[str, Any], labels: Sequence[Any] | None = None, k_values: Sequence[int] = K_VALUES
) -> dict[str, dict[str, float]]:
    """Metrics for each of ``DIRECTIONS`` given row-aligned ``{"image"|"text"|"hashtag": (n, d)}`` embeddings.

    Row i of every modality is the same tweet; ``labels`` (one per tweet, e.g. ``attr_topic``) add precision@k.
    """
    results = {}
    for query, document in DIRECTIONS:
        results[f"{query}_to_{document}"] = retrieval_metrics(
            embeddings[query], embeddings[document], query_labels=labels, document_labels=labels, k_values=k_values
        )
    return results


def flatten(metrics: dict[str, dict[str, float]], prefix: str = "") -> dict[str, float]:
    """``{"text_to_image": {"recall@1": x}}`` -> ``{"<prefix>text_to_image/recall@1": x}`` for logs and tables."""
    return {
        f"{prefix}{direction}/{name}": value for direction, values in metrics.items() for name, value in values.items()
    }


def load_metric(**kwargs: Any) -> Any:
    """The shipped ``evaluate`` module, loaded from its local path (no Hub access; set HF_EVALUATE_OFFLINE=1)."""
    import evaluate

    return evaluate.load(str(METRIC_MODULE_PATH), **kwargs)
