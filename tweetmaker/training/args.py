"""The fine-tuning settings: three dataclasses with help texts, parsed by ``HfArgumentParser``.

Each field is one command line flag of ``train/finetune.py`` (``--name value``); ``__post_init__`` validates, so a
wrong value fails with a message that names the flag whether it came from the command line, a JSON/YAML file or code
(``make_arguments(dataset=..., output_dir=..., learning_rate=1e-3)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from tweetmaker.errors import InvalidInputError
from tweetmaker.towers import DEFAULT_BASE_MODEL

# Schedules that step once per optimizer step with no extra inputs, plus the original notebook's exponential decay.
SCHEDULERS = ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "exponential"]
MIXED_PRECISION = ("no", "fp16", "bf16")
DESCRIPTION = "Fine-tune TweetMaker's three CLIP towers (image, tweet text, hashtags) with Accelerate."


@dataclass
class DataArguments:
    dataset: str = field(
        metadata={"help": "Hub dataset id or a directory made by train/prepare_dataset.py (train and test splits)."}
    )
    dataset_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub dataset."})
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str = field(default="test", metadata={"help": "Split evaluated before training and after each epoch."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N evaluation rows."})
    relevance_column: str = field(
        default="attr_topic",
        metadata={"help": "Column whose equal values count as relevant for attribute precision@k, when present."},
    )
    dataloader_num_workers: int = field(
        default=0, metadata={"help": "DataLoader worker processes that decode and preprocess images."}
    )

    def __post_init__(self) -> None:
        self.dataset = str(self.dataset)  # a Path from code is as good as a string from the command line
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidInputError(f"--{name} must be >= 1, got {value}.")
        if self.dataloader_num_workers < 0:
            raise InvalidInputError("--dataloader_num_workers must be >= 0.")


@dataclass
class ModelArguments:
    base_model: str = field(
        default=DEFAULT_BASE_MODEL, metadata={"help": "CLIPModel checkpoint: a Hub model id or a local directory."}
    )
    base_model_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of the base."})
    freeze_image_tower: bool = field(default=False, metadata={"help": "Keep the image tower's weights fixed."})
    freeze_text_tower: bool = field(default=False, metadata={"help": "Keep the text tower's weights fixed."})
    freeze_hashtag_tower: bool = field(default=False, metadata={"help": "Keep the hashtag tower's weights fixed."})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in the backward pass to save memory."}
    )
    logit_scale: float = field(
        default=20.0, metadata={"help": "Inverse temperature of the loss (initial value if it is learned)."}
    )
    learn_logit_scale: bool = field(default=False, metadata={"help": "Train the logit scale too (clamped at 100)."})
    symmetric_loss: bool = field(
        default=True, metadata={"help": "Also score image->text and image->hashtag (--no_symmetric_loss to skip)."}
    )
    hashtag_loss_weight: float = field(
        default=1.0, metadata={"help": "Weight of the hashtag<->image terms against text<->image (0 = text only)."}
    )

    def __post_init__(self) -> None:
        self.base_model = str(self.base_model)
        if self.logit_scale <= 0:
            raise InvalidInputError("--logit_scale must be > 0.")
        if self.hashtag_loss_weight < 0:
            raise InvalidInputError("--hashtag_loss_weight must be >= 0.")
        if self.freeze_image_tower and self.freeze_text_tower and self.freeze_hashtag_tower:
            raise InvalidInputError("All three towers are frozen: nothing would be trained.")

    def frozen_towers(self) -> dict[str, bool]:
        """Which towers keep their weights; the hashtag tower is unused (so frozen) when its loss weight is 0."""
        return {"image": self.freeze_image_tower, "text": self.freeze_text_tower,
                "hashtag": self.freeze_hashtag_tower or self.hashtag_loss_weight == 0}


@dataclass
class FinetuneArguments:
    output_dir: str = field(metadata={"help": "Where towers, results, plots, checkpoints and the card are written."})
    per_device_train_batch_size: int = field(
        default=32, metadata={"help": "Tweets per process per step; negatives come from all processes' batches."}
    )
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Tweets per process per eval batch."})
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate of every tower by default."})
    image_learning_rate: float | None = field(default=None, metadata={"help": "Image tower learning rate."})
    text_learning_rate: float | None = field(default=None, metadata={"help": "Text tower learning rate."})
    hashtag_learning_rate: float | None = field(default=None, metadata={"help": "Hashtag tower learning rate."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (not on biases and norms)."})
    num_train_epochs: int = field(default=4, metadata={"help": "Passes over the training split."})
    max_train_steps: int | None = field(
        default=None, metadata={"help": "Stop after this many optimizer steps (overrides --num_train_epochs)."}
    )
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    lr_scheduler_type: str = field(
        default="linear", metadata={"help": "LR schedule after warmup.", "choices": SCHEDULERS}
    )
    num_warmup_steps: int = field(default=0, metadata={"help": "Linear warmup steps."})
    lr_decay_rate: float = field(default=0.7, metadata={"help": "exponential schedule: factor per decay period."})
    lr_decay_steps: int = field(default=100, metadata={"help": "exponential schedule: steps per decay period."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    seed: int = field(default=42, metadata={"help": "Seed for weights order, shuffling and everything random."})
    mixed_precision: str | None = field(
        default=None,
        metadata={"help": "no, fp16 or bf16; default: the accelerate config / launcher's choice.",
                  "choices": MIXED_PRECISION},
    )
    cpu: bool = field(default=False, metadata={"help": "Run on CPU even if a GPU is there (gloo across processes)."})
    checkpointing_steps: str | None = field(
        default=None, metadata={"help": "Save the training state every N optimizer steps, or 'epoch'."}
    )
    checkpoints_total_limit: int | None = field(
        default=None, metadata={"help": "Keep only the newest N checkpoints."}
    )
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "A checkpoint directory, or 'latest' (under OUT/checkpoints) to continue."}
    )
    logging_steps: int = field(default=10, metadata={"help": "Log the loss every N optimizer steps."})
    push_to_hub: bool = field(default=False, metadata={"help": "Upload the towers and the model card to the Hub."})
    hub_model_id: str | None = field(default=None, metadata={"help": "Hub model repo id ('owner/name')."})
    hub_private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})
    hub_token: str | None = field(default=None, metadata={"help": "Hub token; default: the HF_TOKEN variable."})
    export_backend: str | None = field(
        default=None,
        metadata={"help": "Also write the towers' ONNX export for this inference backend beside them (onnx, "
                          "onnx-int8, or auto: the CPU default) and push it with them, so the app and index builds "
                          "find it instead of exporting on their first start."},
    )

    def __post_init__(self) -> None:
        self.output_dir = str(self.output_dir)
        if self.checkpointing_steps is not None:
            self.checkpointing_steps = str(self.checkpointing_steps)  # an int from code means "every N steps"
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "num_train_epochs",
                     "gradient_accumulation_steps", "logging_steps", "lr_decay_steps"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if self.max_train_steps is not None and self.max_train_steps < 1:
            raise InvalidInputError("--max_train_steps must be >= 1.")
        if self.num_warmup_steps < 0 or self.max_grad_norm < 0 or self.weight_decay < 0:
            raise InvalidInputError("--num_warmup_steps, --max_grad_norm and --weight_decay must be >= 0.")
        if self.export_backend not in (None, "auto", "onnx", "onnx-int8"):
            raise InvalidInputError(f"--export_backend must be onnx, onnx-int8 or auto, got {self.export_backend!r} "
                                    "(the torch backends need no export).")
        if self.export_backend is not None:
            from tweetmaker.inference.choice import require_runtime

            require_runtime(export=True)  # now, not after hours of training
        for name in ("learning_rate", "image_learning_rate", "text_learning_rate", "hashtag_learning_rate"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InvalidInputError(f"--{name} must be > 0, got {value}.")
        if self.lr_scheduler_type not in SCHEDULERS:
            raise InvalidInputError(f"--lr_scheduler_type must be one of {SCHEDULERS}, got "
                                    f"{self.lr_scheduler_type!r}.")
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION:
            raise InvalidInputError(f"--mixed_precision must be one of {MIXED_PRECISION}, got "
                                    f"{self.mixed_precision!r}.")
        if not 0 < self.lr_decay_rate <= 1:
            raise InvalidInputError("--lr_decay_rate must be in (0, 1].")
        if self.checkpointing_steps is not None and self.checkpointing_steps != "epoch":
            if not self.checkpointing_steps.isdigit() or int(self.checkpointing_steps) < 1:
                raise InvalidInputError(f"--checkpointing_steps must be a positive integer or 'epoch', "
                                        f"got {self.checkpointing_steps!r}.")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise InvalidInputError("--checkpoints_total_limit must be >= 1.")
        if self.push_to_hub and not self.hub_model_id:
            raise InvalidInputError("--push_to_hub needs --hub_model_id (e.g. 'your-name/tweetmaker-towers').")

    def tower_learning_rate(self, tower: str) -> float:
        value = getattr(self, f"{tower}_learning_rate")
        return self.learning_rate if value is None else value


Arguments = tuple[DataArguments, ModelArguments, FinetuneArguments]
ARGUMENT_CLASSES = (DataArguments, ModelArguments, FinetuneArguments)


def parse_arguments(argv: list[str] | None = None, description: str = DESCRIPTION) -> Arguments:
    """Command line flags (or one JSON/YAML file holding them) -> the three argument dataclasses."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(ARGUMENT_CLASSES, description=description)
    if argv is not None and len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=argv[0])
    if argv is not None and len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(yaml_file=argv[0])
    return parser.parse_args_into_dataclasses(args=argv)


def make_arguments(**values: Any) -> Arguments:
    """The three argument dataclasses from keyword values named like the flags, for calling the library from code:
    ``train(*make_arguments(dataset=DIR, base_model=BASE, output_dir=OUT, learning_rate=1e-3))``."""
    names = [{item.name for item in fields(kind)} for kind in ARGUMENT_CLASSES]
    unknown = sorted(set(values) - set().union(*names))
    if unknown:
        raise TypeError(f"Unknown fine-tuning settings: {', '.join(unknown)}.")
    data, model, train = (kind(**{key: value for key, value in values.items() if key in known})
                          for kind, known in zip(ARGUMENT_CLASSES, names))
    return data, model, train
