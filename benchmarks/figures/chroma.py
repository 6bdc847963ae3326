"""Figure 2: Chroma's HNSW index against exact search, latency and recall@10, at the project's chosen settings
and at Chroma's defaults, on synthetic vectors and on the twin's own embeddings."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from benchmarks import workspace
from benchmarks.context import Context, K, log
from benchmarks.stats import MS, Figure, interleaved, median, ms_stats, size_tag

CHROMA_DEFAULT_HNSW: dict[str, Any] = {"space": "cosine"}  # only the space set: Chroma's default HNSW settings


def chroma_vs_exact(
    ctx: Context,
    collection: Any,
    vectors: np.ndarray,
    ids: Sequence[str],
    queries: np.ndarray,
    label: str,
    setting: str,
    hnsw: dict[str, Any],
    key: str,
) -> list[Figure]:
    """Figure 2: one collection's query latency against exact numpy top-k, and its recall@10 against exact.

    ``key``: the figures' id part for the data and the setting, e.g. ``synthetic.10k.chosen``."""
    from tweetmaker.index import exact_neighbours

    profile = ctx.profile
    count = len(queries)

    def chroma(i: int) -> None:
        collection.query(query_embeddings=queries[i % count][None, :], n_results=K,
                         include=["metadatas", "distances"])

    def exact(i: int) -> None:
        exact_neighbours(vectors, queries[i % count][None, :], K)

    chroma_times, exact_times = interleaved(chroma, exact, repeats=profile.latency_repeats, warmup=profile.warmup)
    truth = exact_neighbours(vectors, queries, K)
    found = collection.query(query_embeddings=queries, n_results=K, include=[])["ids"]
    position = {tweet_id: number for number, tweet_id in enumerate(ids)}
    recalls = [len({position[i] for i in hits} & set(row.tolist())) / K for hits, row in zip(found, truth)]
    recall = float(np.mean(recalls))
    common = {"hnsw": hnsw, "items": len(vectors), "queries": count, "dim": int(vectors.shape[1])}
    return [
        Figure(
            id=f"chroma.latency.{key}",
            number=2,
            name=f"Chroma vs exact latency, {label}, {setting} HNSW",
            value=median(chroma_times) * MS,
            reference=median(exact_times) * MS,
            unit="ms",
            description="Chroma collection.query, one query, k=10, metadata + distances",
            reference_description="numpy exact top-10 (tweetmaker.index.exact_neighbours) over the same vectors",
            value_stats=ms_stats(chroma_times),
            reference_stats=ms_stats(exact_times),
            details=common,
        ),
        Figure(
            id=f"chroma.recall_at_10.{key}",
            number=2,
            name=f"Chroma recall@10 vs exact, {label}, {setting} HNSW",
            value=recall,
            reference=1.0,
            unit="recall@10",
            description=f"mean recall@10 of Chroma over {count} queries",
            reference_description="exact search (recall 1 by definition)",
            target=(">=", 0.99),
            target_on="value",
            details={**common, "worst_query_recall": float(np.min(recalls))},
        ),
    ]


@contextlib.contextmanager
def scratch_collection(ctx: Context, name: str, vectors: np.ndarray, ids: Sequence[str],
                       metadatas: Sequence[dict] | None, hnsw: dict[str, Any]) -> Iterator[Any]:
    """A throw-away collection with these HNSW settings in ``WORKDIR/scratch-NAME``, filled, its index loaded;
    closed and removed on exit."""
    from tweetmaker.index import make_client

    path = ctx.workdir / f"scratch-{name}"
    shutil.rmtree(path, ignore_errors=True)
    client = make_client(path)
    try:
        collection = client.create_collection("bench", configuration={"hnsw": hnsw}, embedding_function=None)
        workspace.fill_collection(collection, vectors, ids, metadatas, client.get_max_batch_size())
        collection.query(query_embeddings=vectors[:1], n_results=K)  # load the index before timing
        yield collection
    finally:
        client.close()
        shutil.rmtree(path, ignore_errors=True)


def chroma_defaults(ctx: Context, size: int) -> list[Figure]:
    """Figure 2 at Chroma's default HNSW settings on the synthetic vectors of one size."""
    from tweetmaker.index import record_metadata

    vectors = ctx.vectors(size)
    ids = [f"syn{number:07d}" for number in range(size)]
    metadata = record_metadata({"text": ctx.query_texts[0], "hashtags": "#AI"}, "train", [], "x.jpg")
    log(f"filling a {size}-item collection with Chroma's default HNSW settings")
    with scratch_collection(ctx, f"defaults-{size}", vectors, ids, [metadata] * size,
                            CHROMA_DEFAULT_HNSW) as collection:
        queries = workspace.synthetic_queries(vectors, ctx.profile.recall_queries, seed=size + 1)
        return chroma_vs_exact(ctx, collection, vectors, ids, queries, f"{size:,} synthetic", "Chroma default",
                               dict(CHROMA_DEFAULT_HNSW), f"synthetic.{size_tag(size)}.chroma_default")


def chosen_settings(ctx: Context, collection: Any, size: int) -> list[Figure]:
    """Figure 2 at the project's chosen HNSW settings: the image collection of the app index of ``size`` items."""
    from tweetmaker.index import DEFAULT_HNSW

    ids = [f"syn{number:07d}" for number in range(size)]
    queries = workspace.synthetic_queries(ctx.vectors(size), ctx.profile.recall_queries, seed=size + 1)
    return chroma_vs_exact(ctx, collection, ctx.vectors(size), ids, queries, f"{size:,} synthetic", "chosen",
                           dict(DEFAULT_HNSW), f"synthetic.{size_tag(size)}.chosen")


def twin_hnsw(ctx: Context) -> list[Figure]:
    """Figure 2 on the twin's own embeddings (fine-tuned towers): text queries against the image vectors."""
    from tweetmaker.index import DEFAULT_HNSW

    embeddings = ctx.quality_embeddings
    vectors, queries = embeddings["all_images"], embeddings["trained"]["text"]
    ids = [str(number) for number in range(len(vectors))]
    figures = []
    for setting, key, hnsw in (("chosen", "chosen", dict(DEFAULT_HNSW)),
                               ("Chroma default", "chroma_default", dict(CHROMA_DEFAULT_HNSW))):
        with scratch_collection(ctx, "twin", vectors, ids, None, hnsw) as collection:
            figures += chroma_vs_exact(ctx, collection, vectors, ids, queries,
                                       f"twin {len(vectors):,} image embeddings", setting, hnsw, f"twin.{key}")
    return figures
