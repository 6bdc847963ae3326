"""The multiple-negatives ranking loss: a brute-force reference, its directions, and the cross-process gather."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import free_port
from tweetmaker.losses import MultipleNegativesRankingLoss, gather_with_grad, world_info


def _unit(rows: int, dim: int = 8, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(rows, dim, generator=generator), dim=-1)


def _reference_direction(queries: torch.Tensor, documents: torch.Tensor, scale: float) -> float:
    """-mean log softmax of the diagonal, written out with loops."""
    total = 0.0
    for i in range(queries.shape[0]):
        logits = [scale * float(queries[i] @ documents[j]) for j in range(documents.shape[0])]
        top = max(logits)
        log_norm = top + math.log(sum(math.exp(value - top) for value in logits))
        total += log_norm - logits[i]
    return total / queries.shape[0]


def test_matches_a_brute_force_reference():
    image, text, hashtag = _unit(6, seed=0), _unit(6, seed=1), _unit(6, seed=2)
    loss = MultipleNegativesRankingLoss(logit_scale=10.0)
    output = loss(image, text, hashtag)
    parts = {
        "text_to_image": _reference_direction(text, image, 10.0),
        "image_to_text": _reference_direction(image, text, 10.0),
        "hashtag_to_image": _reference_direction(hashtag, image, 10.0),
        "image_to_hashtag": _reference_direction(image, hashtag, 10.0),
    }
    for name, value in parts.items():
        assert output.parts[name] == pytest.approx(value, rel=1e-5)
    assert float(output.loss) == pytest.approx(sum(parts.values()) / 4, rel=1e-5)
    assert output.gathered_batch_size == 6 and output.parts["logit_scale"] == pytest.approx(10.0)


def test_directions_and_weights():
    image, text, hashtag = _unit(5, seed=3), _unit(5, seed=4), _unit(5, seed=5)
    one_way = MultipleNegativesRankingLoss(logit_scale=5.0, symmetric=False)(image, text=text)
    assert set(one_way.parts) == {"text_to_image", "logit_scale"}
    assert float(one_way.loss) == pytest.approx(_reference_direction(text, image, 5.0), rel=1e-5)
    text_only = MultipleNegativesRankingLoss(logit_scale=5.0, hashtag_weight=0.0)(image, text, hashtag)
    assert "hashtag_to_image" not in text_only.parts
    with pytest.raises(ValueError, match="queries"):
        MultipleNegativesRankingLoss()(image)
    with pytest.raises(ValueError, match="do not match"):
        MultipleNegativesRankingLoss()(image, text=text[:3])
    with pytest.raises(ValueError, match="logit_scale"):
        MultipleNegativesRankingLoss(logit_scale=0)


def test_matched_pairs_score_lower_and_gradients_flow_to_every_tower():
    image = _unit(8, seed=6).requires_grad_()
    text = (image.detach() + 0.05 * _unit(8, seed=7)).requires_grad_()
    hashtag = _unit(8, seed=8).requires_grad_()
    loss = MultipleNegativesRankingLoss(logit_scale=20.0, learnable_scale=True)
    output = loss(image, text, hashtag)
    assert output.parts["text_to_image"] < output.parts["hashtag_to_image"]
    output.loss.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (image, text, hashtag))
    assert loss.log_logit_scale.grad is not None


def test_learnable_scale_is_clamped():
    loss = MultipleNegativesRankingLoss(logit_scale=500.0, learnable_scale=True, max_logit_scale=100.0)
    assert float(loss.logit_scale.detach()) == pytest.approx(100.0)


def test_single_process_gather_is_identity():
    tensor = _unit(3)
    assert world_info() == (0, 1)
    assert gather_with_grad(tensor) is tensor


def _two_rank_worker(rank: int, world_size: int, port: int, results) -> None:
    """Each rank holds half of the batch; its loss and gradients must match the global-batch reference."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        full_image, full_text = _unit(8, seed=10), _unit(8, seed=11)
        rows = slice(rank * 4, rank * 4 + 4)
        image = full_image[rows].clone().requires_grad_()
        text = full_text[rows].clone().requires_grad_()
        output = MultipleNegativesRankingLoss(logit_scale=7.0)(image, text=text)
        output.loss.backward()

        # The reference is written out without the module, which would gather inside this process group.
        reference_image, reference_text = full_image.clone().requires_grad_(), full_text.clone().requires_grad_()
        labels = torch.arange(8)
        reference_loss = (
            F.cross_entropy(7.0 * reference_text @ reference_image.T, labels)
            + F.cross_entropy(7.0 * reference_image @ reference_text.T, labels)
        ) / 2
        reference_loss.backward()
        mean_loss = output.loss.detach().clone()
        dist.all_reduce(mean_loss)
        results.put(
            {
                "rank": rank,
                "gathered": output.gathered_batch_size,
                "mean_loss": float(mean_loss) / world_size,
                "reference_loss": float(reference_loss.detach()),
                # DDP averages parameter gradients over ranks, so each rank's rows carry world_size x the share.
                "image_grad_ok": torch.allclose(image.grad / world_size, reference_image.grad[rows], atol=1e-6),
                "text_grad_ok": torch.allclose(text.grad / world_size, reference_text.grad[rows], atol=1e-6),
            }
        )
    finally:
        dist.destroy_process_group()


def test_two_processes_gather_negatives_with_gradients():
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.Queue()
    mp.spawn(_two_rank_worker, args=(2, free_port(), results), nprocs=2, join=True)
    reports = sorted((results.get(timeout=30) for _ in range(2)), key=lambda report: report["rank"])
    for report in reports:
        assert report["gathered"] == 8
        assert report["mean_loss"] == pytest.approx(report["reference_loss"], rel=1e-5)
        assert report["image_grad_ok"] and report["text_grad_ok"]
