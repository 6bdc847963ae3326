"""Figure 7: exact-search retrieval quality of the tiny towers after fine-tuning on the twin against before."""

from __future__ import annotations

from benchmarks.context import Context
from benchmarks.stats import Figure


def quality(ctx: Context) -> list[Figure]:
    """Figure 7: exact-search retrieval quality before vs after fine-tuning on the twin."""
    from tweetmaker.metrics import tower_metrics

    embeddings = ctx.quality_embeddings
    before = tower_metrics(embeddings["before"], labels=embeddings["labels"])
    after = tower_metrics(embeddings["trained"], labels=embeddings["labels"])
    rows = len(embeddings["labels"])
    # Targets from the Training issue's acceptance criteria (the same twin, exact search).
    wanted = [
        ("text_to_image", "precision@10", [("value", ">=", 0.8), ("ratio", ">=", 4.0)]),
        ("image_to_hashtag", "precision@5", [("value", ">=", 0.8), ("ratio", ">=", 4.0)]),
        ("text_to_image", "recall@10", [("ratio", ">=", 3.0)]),
        ("hashtag_to_image", "recall@10", []),
        ("text_to_image", "recall@1", []),
        ("image_to_hashtag", "recall@10", []),
    ]
    figures = []
    for direction, metric, targets in wanted:
        figures.append(Figure(
            id=f"quality.{direction}.{metric.replace('@', '_at_')}",
            number=7,
            name=f"Quality: {direction.replace('_to_', '→')} {metric}, after vs before fine-tuning",
            value=after[direction][metric],
            reference=before[direction][metric],
            unit=metric,
            description=f"fine-tuned tiny towers, exact search over the twin's {rows}-row test split",
            reference_description="the same towers before fine-tuning (random tiny CLIP)",
            target=None,
            extra_targets=list(targets),
            details={"before": before[direction], "after": after[direction]},
        ))
    return figures
