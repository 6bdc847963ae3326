"""The multiple-negatives ranking loss that ties tweet texts and hashtags to their images.

Every other pair in the (global) batch is a negative: for a batch of n tweets, the n x n similarity matrix between
queries (texts or hashtags) and images is scored with a softmax cross-entropy whose targets are the diagonal
(InfoNCE, as in CLIP and open_clip's ``ClipLoss``). Directions: text->image and hashtag->image, plus the symmetric
image->text and image->hashtag. The image tower thus learns from both query towers, the text tower from the text
pairs only and the hashtag tower from the hashtag pairs only, as in the original notebook.

With several processes the embeddings of all ranks are gathered with ``torch.distributed.nn.functional.all_gather``,
whose backward sends each rank the gradients of its own rows, so negatives come from the whole global batch. Each
rank scores its local rows against the gathered ones; averaged by DDP, this gives exactly the gradient of the
global-batch loss.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import distributed as dist
from torch import nn


def world_info() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, keeping gradients; a no-op in one process.

    All ranks must pass the same shape (training drops the last incomplete batch for that reason).
    """
    _, world_size = world_info()
    if world_size == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():
        # Deprecated in favour of a private API (torch.distributed._functional_collectives); still the public,
        # autograd-aware gather, so keep it and keep the log clean.
        warnings.filterwarnings("ignore", message=".*all_gather is deprecated", category=FutureWarning)
        return torch.cat(all_gather(tensor), dim=0)


@dataclass
class LossOutput:
    """The loss to backpropagate, its parts (detached floats) and the number of candidates each query saw."""

    loss: torch.Tensor
    parts: dict[str, float]
    gathered_batch_size: int


class MultipleNegativesRankingLoss(nn.Module):
    """InfoNCE over query->image pairs with in-batch (and cross-process) negatives.

    Inputs are L2-normalised embeddings of the same tweets in the same order. ``logit_scale`` is the inverse
    temperature; with ``learnable_scale`` its log is trained (clamped at ``max_logit_scale``), as in CLIP.
    """

    def __init__(
        self,
        logit_scale: float = 20.0,
        learnable_scale: bool = False,
        symmetric: bool = True,
        hashtag_weight: float = 1.0,
        max_logit_scale: float = 100.0,
    ) -> None:
        super().__init__()
        if logit_scale <= 0:
            raise ValueError(f"logit_scale must be > 0, got {logit_scale}")
        if hashtag_weight < 0:
            raise ValueError(f"hashtag_weight must be >= 0, got {hashtag_weight}")
        log_scale = torch.tensor(math.log(logit_scale), dtype=torch.float32)
        if learnable_scale:
            self.log_logit_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_logit_scale", log_scale)
        self.symmetric = symmetric
        self.hashtag_weight = hashtag_weight
        self.max_log_scale = math.log(max_logit_scale)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.clamp(max=self.max_log_scale).exp()

    def forward(
        self, image: torch.Tensor, text: torch.Tensor | None = None, hashtag: torch.Tensor | None = None
    ) -> LossOutput:
        if text is None and hashtag is None:
            raise ValueError("The loss needs text and/or hashtag embeddings as queries")
        rank, _ = world_info()
        local = image.shape[0]
        # Positives of the local rows sit at this rank's offset inside the gathered batch.
        labels = torch.arange(local, device=image.device) + rank * local
        all_images = gather_with_grad(image)
        scale = self.logit_scale
        total = image.new_zeros((), dtype=torch.float32)
        parts: dict[str, float] = {}
        weights = 0.0
        for name, queries, weight in (("text", text, 1.0), ("hashtag", hashtag, self.hashtag_weight)):
            if queries is None or weight == 0:
                continue
            if queries.shape != image.shape:
                raise ValueError(f"{name} embeddings {tuple(queries.shape)} do not match images {tuple(image.shape)}")
            forward = F.cross_entropy(scale * queries.float() @ all_images.float().T, labels)
            parts[f"{name}_to_image"] = float(forward.detach())
            direction = forward
            if self.symmetric:
                all_queries = gather_with_grad(queries)
                backward = F.cross_entropy(scale * image.float() @ all_queries.float().T, labels)
                parts[f"image_to_{name}"] = float(backward.detach())
                direction = (forward + backward) / 2
            total = total + weight * direction
            weights += weight
        loss = total / weights
        parts["logit_scale"] = float(scale.detach())
        return LossOutput(loss=loss, parts=parts, gathered_batch_size=int(all_images.shape[0]))
