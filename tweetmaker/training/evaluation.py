"""Evaluation during training: embed the eval split on every process, gather, score with tweetmaker.metrics."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from tweetmaker.metrics import K_VALUES, tower_metrics

Metrics = dict[str, dict[str, float]]
# The numbers the log and the console show for a run's before/after (the full table is in all_results.json).
HEADLINE = (("text_to_image", "recall@10"), ("text_to_image", "precision@10"), ("image_to_hashtag", "precision@5"),
            ("hashtag_to_image", "recall@10"))


def evaluate(
    accelerator: Any, model: nn.Module, dataloader: DataLoader, rows: int, labels: list[Any] | None
) -> Metrics | None:
    """Embed the eval split on every process, gather in order, score on the main process (None elsewhere)."""
    model.eval()
    chunks: dict[str, list[torch.Tensor]] = {"image": [], "text": [], "hashtag": [], "index": []}
    with torch.no_grad():
        for batch in dataloader:
            embeddings = model(**batch, compute_loss=False)
            gathered = accelerator.gather_for_metrics(
                (embeddings["image"].float(), embeddings["text"].float(), embeddings["hashtag"].float(),
                 batch["index"])
            )
            for key, value in zip(("image", "text", "hashtag", "index"), gathered):
                chunks[key].append(value.cpu())
    model.train()
    if not accelerator.is_main_process:
        return None
    indices = torch.cat(chunks["index"])
    if not torch.equal(torch.sort(indices).values, torch.arange(rows)):
        # gather_for_metrics must hand back each eval row exactly once, whatever the number of processes.
        raise RuntimeError(f"Evaluation gathered {len(indices)} rows for an eval split of {rows}")
    order = torch.argsort(indices)
    embeddings = {key: torch.cat(chunks[key])[order].numpy() for key in ("image", "text", "hashtag")}
    return tower_metrics(embeddings, labels=labels, k_values=K_VALUES)


def headline(metrics: Metrics | None) -> str:
    """A one-line summary of ``metrics`` for the log."""
    if not metrics:
        return ""
    return ", ".join(f"{d} {m} {metrics[d][m]:.3f}" for d, m in HEADLINE if m in metrics.get(d, {}))
