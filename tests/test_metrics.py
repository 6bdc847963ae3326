"""Retrieval metrics checked against a brute-force reference, and the shipped evaluate module."""

from __future__ import annotations

import numpy as np
import pytest

from tweetmaker import metrics
from tweetmaker.metrics import DIRECTIONS, K_VALUES, flatten, load_metric, retrieval_metrics, tower_metrics


def _brute_force(queries, documents, positives, query_labels=None, document_labels=None, k_values=K_VALUES):
    """Python loops: sort every document by (-score, index) and read off ranks and hits."""
    ranks, precision = [], {k: [] for k in k_values}
    for i, query in enumerate(queries):
        scores = [float(np.dot(query, document)) for document in documents]
        order = sorted(range(len(documents)), key=lambda j: (-scores[j], j))
        ranks.append(order.index(positives[i]) + 1)
        if query_labels is not None:
            for k in k_values:
                top = order[: min(k, len(documents))]
                precision[k].append(sum(document_labels[j] == query_labels[i] for j in top) / len(top))
    ranks = np.array(ranks)
    expected = {f"recall@{k}": float(np.mean(ranks <= k)) for k in k_values}
    expected.update(mrr=float(np.mean(1.0 / ranks)), median_rank=float(np.median(ranks)), mean_rank=ranks.mean())
    if query_labels is not None:
        expected.update({f"precision@{k}": float(np.mean(precision[k])) for k in k_values})
    return expected


def _embeddings(rows: int, dim: int, seed: int, levels: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(rows, dim))
    if levels is not None:
        # Small integers: dot products are exact in float32 whatever the summation order, and many of them tie.
        return np.round(matrix * levels / 2).clip(-levels, levels).astype(np.float32)
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    ("n_queries", "n_documents", "levels", "seed"),
    [(30, 30, None, 0), (17, 120, None, 1), (40, 25, 1, 2), (60, 60, 2, 3), (1, 1, None, 4)],
)
def test_matches_brute_force_reference(monkeypatch, n_queries, n_documents, levels, seed):
    monkeypatch.setattr(metrics, "_CHUNK", 7)  # several chunks, so chunk boundaries are exercised
    queries = _embeddings(n_queries, 6, seed, levels)
    documents = _embeddings(n_documents, 6, seed + 100, levels)
    rng = np.random.default_rng(seed)
    positives = rng.integers(0, n_documents, n_queries)
    topics = ["robot", "brain", "chip"]
    query_labels = [topics[i] for i in rng.integers(0, 3, n_queries)]
    document_labels = [topics[i] for i in rng.integers(0, 3, n_documents)]
    got = retrieval_metrics(queries, documents, positives, query_labels, document_labels)
    expected = _brute_force(queries, documents, positives, query_labels, document_labels)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


def test_exact_pairs_by_default_and_known_values():
    identity = np.eye(4, dtype=np.float32)
    perfect = retrieval_metrics(identity, identity, k_values=[1, 5])
    assert perfect == {"recall@1": 1.0, "recall@5": 1.0, "mrr": 1.0, "median_rank": 1.0, "mean_rank": 1.0}
    # Reversed documents: query i finds its pair last among 4 equally scored (zero) others only by index order.
    reversed_docs = identity[::-1]
    result = retrieval_metrics(identity, reversed_docs, k_values=[1, 4])
    assert result["recall@4"] == 1.0 and result["recall@1"] == 0.0
    labels = ["a", "a", "b", "b"]
    with_labels = retrieval_metrics(identity, identity, query_labels=labels, document_labels=labels, k_values=[1, 2])
    # Top 2 for query 0 is (0, 1) by score then index: both "a".
    assert with_labels["precision@1"] == 1.0 and with_labels["precision@2"] == pytest.approx(0.75)


def test_input_validation():
    a = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="2-D"):
        retrieval_metrics(a[0], a)
    with pytest.raises(ValueError, match="sizes differ"):
        retrieval_metrics(a, a[:, :2])
    with pytest.raises(ValueError, match="positives"):
        retrieval_metrics(a, a, positives=[0, 1, 3])
    with pytest.raises(ValueError, match="both"):
        retrieval_metrics(a, a, query_labels=["x"] * 3)
    with pytest.raises(ValueError, match="one label per"):
        retrieval_metrics(a, a, query_labels=["x"] * 2, document_labels=["x"] * 3)
    with pytest.raises(ValueError, match="k values"):
        retrieval_metrics(a, a, k_values=[0])
    with pytest.raises(ValueError, match="at least one"):
        retrieval_metrics(np.zeros((0, 3)), a)


def test_tower_metrics_cover_the_three_directions():
    embeddings = {name: _embeddings(12, 5, seed) for seed, name in enumerate(("image", "text", "hashtag"))}
    labels = [i % 3 for i in range(12)]
    result = tower_metrics(embeddings, labels)
    assert list(result) == [f"{q}_to_{d}" for q, d in DIRECTIONS] == ["text_to_image", "hashtag_to_image",
                                                                        "image_to_hashtag"]
    expected = _brute_force(embeddings["image"], embeddings["hashtag"], list(range(12)), labels, labels)
    assert result["image_to_hashtag"] == pytest.approx(expected)
    flat = flatten(result, prefix="eval/")
    assert flat["eval/text_to_image/recall@10"] == result["text_to_image"]["recall@10"]
    assert "precision@5" not in tower_metrics(embeddings)["text_to_image"]


def test_evaluate_module_loads_offline_from_its_path_and_agrees():
    metric = load_metric()
    queries, documents = _embeddings(20, 4, 7), _embeddings(25, 4, 8)
    positives = list(np.random.default_rng(0).integers(0, 25, 20))
    labels_q, labels_d = [i % 4 for i in range(20)], [i % 4 for i in range(25)]
    got = metric.compute(
        predictions=queries.tolist(), references=positives, document_embeddings=documents,
        query_labels=labels_q, document_labels=labels_d,
    )
    assert got == pytest.approx(retrieval_metrics(queries, documents, positives, labels_q, labels_d))
    with pytest.raises(ValueError, match="document_embeddings"):
        metric.compute(predictions=queries.tolist(), references=positives)
