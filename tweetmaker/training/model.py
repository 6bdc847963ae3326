"""What is trained: the towers and the loss in one module, the optimizer's parameter groups, the LR schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tweetmaker.losses import MultipleNegativesRankingLoss
from tweetmaker.towers import TOWER_NAMES, Towers, TowersModule

if TYPE_CHECKING:
    from tweetmaker.training.args import FinetuneArguments, ModelArguments


class ContrastiveTowers(nn.Module):
    """The towers plus the loss in one module, so DDP syncs the towers and a learned logit scale alike."""

    def __init__(self, towers: TowersModule, loss: MultipleNegativesRankingLoss, train_hashtags: bool) -> None:
        super().__init__()
        self.towers = towers
        self.loss = loss
        self.train_hashtags = train_hashtags

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        hashtag_input_ids: torch.Tensor,
        hashtag_attention_mask: torch.Tensor,
        compute_loss: bool = True,
        **_: Any,
    ) -> dict[str, Any]:
        use_hashtags = self.train_hashtags or not compute_loss
        embeddings = self.towers(
            pixel_values=pixel_values,
            input_ids=input_ids,
            attention_mask=attention_mask,
            hashtag_input_ids=hashtag_input_ids if use_hashtags else None,
            hashtag_attention_mask=hashtag_attention_mask if use_hashtags else None,
        )
        if not compute_loss:
            return embeddings
        output = self.loss(embeddings["image"], embeddings["text"], embeddings.get("hashtag"))
        return {"loss": output.loss, "parts": output.parts, "gathered_batch_size": output.gathered_batch_size}

    @property
    def logit_scale(self) -> float:
        return float(self.loss.logit_scale.detach())

    def copy_into(self, towers: Towers) -> Towers:
        """Put the trained tower modules and logit scale back into ``towers`` (which then saves them)."""
        towers.image_model, towers.text_model, towers.hashtag_model = (
            self.towers.image, self.towers.text, self.towers.hashtag
        )
        towers.logit_scale = self.logit_scale
        return towers


def contrastive_model(towers: Towers, model_args: ModelArguments) -> ContrastiveTowers:
    """The module to train: frozen towers marked, activation checkpointing switched on if asked, the loss attached."""
    frozen = model_args.frozen_towers()
    for tower, model in zip(TOWER_NAMES, towers.models()):
        model.requires_grad_(not frozen[tower])
        if model_args.gradient_checkpointing:
            enable_activation_checkpointing(model)
    loss = MultipleNegativesRankingLoss(
        logit_scale=model_args.logit_scale, learnable_scale=model_args.learn_logit_scale,
        symmetric=model_args.symmetric_loss, hashtag_weight=model_args.hashtag_loss_weight,
    )
    return ContrastiveTowers(towers.as_module(), loss, train_hashtags=model_args.hashtag_loss_weight > 0)


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Recompute activations in backward; transformers 5 renamed the method (the old name warns)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def parameter_groups(
    model: ContrastiveTowers, args: FinetuneArguments, frozen: dict[str, bool]
) -> list[dict[str, Any]]:
    """One AdamW group per tower (its own LR), split into decayed weights and undecayed biases/norms."""
    groups = []
    for tower in TOWER_NAMES:
        if frozen[tower]:
            continue
        decay, no_decay = [], []
        for name, parameter in getattr(model.towers, tower).named_parameters():
            if parameter.requires_grad:
                (no_decay if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
        lr = args.tower_learning_rate(tower)
        groups.append({"params": decay, "weight_decay": args.weight_decay, "lr": lr, "name": f"{tower}"})
        groups.append({"params": no_decay, "weight_decay": 0.0, "lr": lr, "name": f"{tower}_no_decay"})
    if isinstance(model.loss.log_logit_scale, nn.Parameter):
        groups.append({"params": [model.loss.log_logit_scale], "weight_decay": 0.0, "lr": args.learning_rate,
                       "name": "logit_scale"})
    return [group for group in groups if group["params"]]


def make_scheduler(optimizer: torch.optim.Optimizer, args: FinetuneArguments, total_steps: int) -> Any:
    """The LR schedule (stepped once per optimizer step): a transformers schedule, or the notebook's exponential."""
    if args.lr_scheduler_type == "exponential":
        # The original notebook: x lr_decay_rate every lr_decay_steps steps, after an optional warmup.
        def factor(step: int) -> float:
            if step < args.num_warmup_steps:
                return (step + 1) / args.num_warmup_steps
            return args.lr_decay_rate ** ((step - args.num_warmup_steps) / args.lr_decay_steps)

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    from transformers import get_scheduler

    return get_scheduler(
        args.lr_scheduler_type, optimizer=optimizer, num_warmup_steps=args.num_warmup_steps,
        num_training_steps=total_steps,
    )
