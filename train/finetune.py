"""Fine-tune TweetMaker's three CLIP towers (image, tweet text, hashtags) with Accelerate.

    python train/finetune.py --dataset DATASET --base_model ID_OR_DIR --output_dir OUT [options]
    accelerate launch --config_file train/configs/multi_gpu.yaml train/finetune.py --dataset ... --output_dir OUT
    torchrun --nproc_per_node=2 train/finetune.py --cpu ...        # several CPU processes (gloo)

DATASET is what ``tweetmaker.data.load_tweets`` reads (a Hub dataset id or a directory made by
``train/prepare_dataset.py``). The base model is a CLIPModel checkpoint (``openai/clip-vit-base-patch32`` by
default, or a local directory such as ``python -m tweetmaker.towers tiny --output_dir DIR``).

The loop follows transformers' ``run_*_no_trainer.py`` examples: data loading under ``main_process_first``,
``prepare``, gradient accumulation, an LR schedule with warmup, ``save_state`` checkpoints (committed by a rename, so a
job killed mid-save never resumes from a half-written one) that ``--resume_from_checkpoint`` continues mid-epoch
(same result as an uninterrupted run), evaluation before training and after every epoch (``gather_for_metrics``),
and main-process-only writing of OUT/image, OUT/text, OUT/hashtag, OUT/all_results.json, OUT/loss.png and
OUT/README.md (the model card), plus an optional push to the Hub.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from any directory

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from transformers import HfArgumentParser, get_scheduler  # noqa: E402

from tweetmaker.cards import model_card  # noqa: E402
from tweetmaker.losses import MultipleNegativesRankingLoss  # noqa: E402
from tweetmaker.metrics import K_VALUES, tower_metrics  # noqa: E402
from tweetmaker.towers import (  # noqa: E402
    DEFAULT_BASE_MODEL,
    TOWER_NAMES,
    Towers,
    TowersModule,
    build_towers_from_base,
    preprocess_images,
    tokenize_texts,
)

logger = logging.getLogger("finetune")
CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "finetune_state.json"
PARTIAL_PREFIX = ".partial-"  # a checkpoint being written; renamed to its real name when complete
RESULTS_FILE = "all_results.json"
PLOT_FILE = "loss.png"
CARD_FILE = "README.md"
# Schedules that step once per optimizer step with no extra inputs, plus the original notebook's exponential decay.
SCHEDULERS = ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "exponential"]
MIXED_PRECISION = ("no", "fp16", "bf16")


# -- arguments -------------------------------------------------------------------------------------------------------
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
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be >= 1, got {value}.")
        if self.dataloader_num_workers < 0:
            raise ValueError("--dataloader_num_workers must be >= 0.")


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
        if self.logit_scale <= 0:
            raise ValueError("--logit_scale must be > 0.")
        if self.hashtag_loss_weight < 0:
            raise ValueError("--hashtag_loss_weight must be >= 0.")
        if self.freeze_image_tower and self.freeze_text_tower and self.freeze_hashtag_tower:
            raise ValueError("All three towers are frozen: nothing would be trained.")


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

    def __post_init__(self) -> None:
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "num_train_epochs",
                     "gradient_accumulation_steps", "logging_steps", "lr_decay_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if self.max_train_steps is not None and self.max_train_steps < 1:
            raise ValueError("--max_train_steps must be >= 1.")
        if self.num_warmup_steps < 0 or self.max_grad_norm < 0 or self.weight_decay < 0:
            raise ValueError("--num_warmup_steps, --max_grad_norm and --weight_decay must be >= 0.")
        for name in ("learning_rate", "image_learning_rate", "text_learning_rate", "hashtag_learning_rate"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"--{name} must be > 0, got {value}.")
        if not 0 < self.lr_decay_rate <= 1:
            raise ValueError("--lr_decay_rate must be in (0, 1].")
        if self.checkpointing_steps is not None and self.checkpointing_steps != "epoch":
            if not self.checkpointing_steps.isdigit() or int(self.checkpointing_steps) < 1:
                raise ValueError(f"--checkpointing_steps must be a positive integer or 'epoch', "
                                 f"got {self.checkpointing_steps!r}.")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ValueError("--checkpoints_total_limit must be >= 1.")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id (e.g. 'your-name/tweetmaker-towers').")

    def tower_learning_rate(self, tower: str) -> float:
        value = getattr(self, f"{tower}_learning_rate")
        return self.learning_rate if value is None else value


def parse_arguments(argv: list[str] | None = None) -> tuple[DataArguments, ModelArguments, FinetuneArguments]:
    parser = HfArgumentParser((DataArguments, ModelArguments, FinetuneArguments), description=__doc__.split("\n")[0])
    if argv is not None and len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=argv[0])
    if argv is not None and len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(yaml_file=argv[0])
    return parser.parse_args_into_dataclasses(args=argv)


# -- data -------------------------------------------------------------------------------------------------------------
class TweetCollator:
    """Rows -> tensors: decodes and preprocesses images and tokenizes texts inside DataLoader workers.

    Nothing is cached: each batch is decoded when it is drawn, so memory stays flat whatever the data set size.
    """

    def __init__(self, image_processor: Any, tokenizer: Any, max_length: int) -> None:
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        from tweetmaker.data import decode_image

        images = []
        for row in rows:
            image = row["image"]
            try:
                images.append(decode_image(image.get("bytes") or image.get("path")))
            except ValueError as error:
                raise ValueError(f"Tweet {row.get('tweet_id')!r}: {error}") from error
        text = tokenize_texts(self.tokenizer, [row["text"] for row in rows], self.max_length)
        hashtags = tokenize_texts(self.tokenizer, [row["hashtags"] for row in rows], self.max_length)
        return {
            "pixel_values": preprocess_images(self.image_processor, images),
            "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"],
            "hashtag_input_ids": hashtags["input_ids"],
            "hashtag_attention_mask": hashtags["attention_mask"],
            "index": torch.tensor([row["_index"] for row in rows], dtype=torch.long),
        }


def load_splits(data_args: DataArguments) -> tuple[Any, Any, dict[str, Any]]:
    """The train and eval splits with only the columns training needs, images left undecoded."""
    import datasets

    from tweetmaker.data import dataset_identity, load_tweets

    loaded = load_tweets(data_args.dataset, revision=data_args.dataset_revision)
    for split in (data_args.train_split, data_args.eval_split):
        if split not in loaded:
            raise ValueError(f"Data set {data_args.dataset!r} has no split {split!r}; it has {sorted(loaded)}.")
    identity = dataset_identity(data_args.dataset, loaded, data_args.dataset_revision)
    prepared = []
    for split, limit in ((data_args.train_split, data_args.max_train_samples),
                         (data_args.eval_split, data_args.max_eval_samples)):
        part = loaded[split]
        if limit is not None:
            part = part.select(range(min(limit, len(part))))
        keep = ["tweet_id", "text", "hashtags", "image"]
        if data_args.relevance_column and data_args.relevance_column in part.column_names:
            keep.append(data_args.relevance_column)
        part = part.select_columns(keep).cast_column("image", datasets.Image(decode=False))
        # The row number travels with each example so gathered eval embeddings can be put back in order.
        part = part.add_column("_index", list(range(len(part))))
        prepared.append(part)
    if len(prepared[1]) == 0:
        raise ValueError(f"The {data_args.eval_split!r} split of {data_args.dataset!r} is empty.")
    return prepared[0], prepared[1], identity


# -- model ------------------------------------------------------------------------------------------------------------
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
    if args.lr_scheduler_type == "exponential":
        # The original notebook: x lr_decay_rate every lr_decay_steps steps, after an optional warmup.
        def factor(step: int) -> float:
            if step < args.num_warmup_steps:
                return (step + 1) / args.num_warmup_steps
            return args.lr_decay_rate ** ((step - args.num_warmup_steps) / args.lr_decay_steps)

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return get_scheduler(
        args.lr_scheduler_type, optimizer=optimizer, num_warmup_steps=args.num_warmup_steps,
        num_training_steps=total_steps,
    )


# -- training state and checkpoints --------------------------------------------------------------------------------
@dataclass
class TrainState:
    """What a checkpoint needs besides Accelerate's state to finish exactly like an uninterrupted run."""

    completed_steps: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of ``epoch`` already consumed
    epoch_start_step: int = 0  # index in step_losses where ``epoch`` began
    step_losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # evaluations: before training, after each epoch


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    """Complete checkpoints under OUT/checkpoints, oldest first (by optimizer steps completed).

    A save is written under a ``.partial-`` name and renamed when done (``save_checkpoint``), so what a job killed
    mid-save left behind is never listed; neither is a directory without a readable state file (a checkpoint from
    before that rule, cut short).
    """
    root = output_dir / CHECKPOINTS_DIR
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not path.is_dir() or path.name.startswith("."):
            continue
        steps = _checkpoint_steps(path)
        if steps is None:
            logger.warning("Ignoring %s: it has no readable %s (a save that did not finish)", path, STATE_FILE)
            continue
        found.append((steps, path.name, path))
    return [path for _, _, path in sorted(found)]


def _checkpoint_steps(path: Path) -> int | None:
    """The optimizer steps a checkpoint holds, or None when its state file is missing or cut short."""
    try:
        return int(json.loads((path / STATE_FILE).read_text())["completed_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_checkpoint(accelerator: Any, output_dir: Path, name: str, state: TrainState, limit: int | None) -> Path:
    """Save the training state as OUT/checkpoints/NAME, atomically.

    Everything goes into ``.partial-NAME`` first; once every rank has written its part (each saves its own RNG
    state) and the state file is in, the main process renames it to NAME. A job killed at any moment therefore
    leaves either the previous checkpoints alone or a complete new one: ``latest`` cannot pick a half-written one.
    """
    root = output_dir / CHECKPOINTS_DIR
    path, partial = root / name, root / f"{PARTIAL_PREFIX}{name}"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # left by a job killed while saving this same checkpoint
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()  # save_state does not wait: other ranks may still be writing their files
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
        if path.exists():
            # Saved again after resuming from an older checkpoint. A directory cannot be renamed over a non-empty
            # one, so the old copy steps aside first; killed in between, NAME is missing and an older one is used.
            replaced = root / f"{PARTIAL_PREFIX}replaced-{name}"
            shutil.rmtree(replaced, ignore_errors=True)
            path.rename(replaced)
            partial.rename(path)
            shutil.rmtree(replaced, ignore_errors=True)
        else:
            partial.rename(path)
        if limit is not None:
            for old in checkpoint_dirs(output_dir)[:-limit]:
                shutil.rmtree(old, ignore_errors=True)
        logger.info("Saved checkpoint %s", path)
    accelerator.wait_for_everyone()
    return path


def resolve_checkpoint(value: str, output_dir: Path) -> Path | None:
    if value == "latest":
        found = checkpoint_dirs(output_dir)
        if not found:
            logger.warning("--resume_from_checkpoint latest: no checkpoint under %s yet; starting fresh", output_dir)
            return None
        return found[-1]
    path = Path(value)
    if path.name.startswith(PARTIAL_PREFIX):
        raise ValueError(f"--resume_from_checkpoint {value!r} is a checkpoint whose save did not finish; use a "
                         f"directory under {output_dir / CHECKPOINTS_DIR} without the {PARTIAL_PREFIX!r} prefix, "
                         "or 'latest'.")
    if _checkpoint_steps(path) is None:
        raise ValueError(f"--resume_from_checkpoint {value!r} is not a checkpoint written by this script "
                         f"(no readable {STATE_FILE}); use a directory under {output_dir / CHECKPOINTS_DIR} or "
                         "'latest'.")
    return path


# -- evaluation -----------------------------------------------------------------------------------------------------
def evaluate(
    accelerator: Any, model: nn.Module, dataloader: DataLoader, rows: int, labels: list[Any] | None
) -> dict[str, dict[str, float]] | None:
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


# -- outputs ----------------------------------------------------------------------------------------------------------
def plot_losses(step_losses: list[float], epoch_losses: list[float], path: Path) -> None:
    """Training loss per optimizer step and per epoch, side by side (as the original notebook plotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (per_step, per_epoch) = plt.subplots(1, 2, figsize=(11, 4))
    per_step.plot(range(1, len(step_losses) + 1), step_losses, linewidth=1)
    per_step.set(title="Training loss per step", xlabel="optimizer step", ylabel="loss")
    per_epoch.plot(range(1, len(epoch_losses) + 1), epoch_losses, marker="o")
    per_epoch.set(title="Mean training loss per epoch", xlabel="epoch", ylabel="loss")
    for axis in (per_step, per_epoch):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def stage_for_upload(output_dir: Path, staging: Path) -> Path:
    """The files a model repo gets (no checkpoints), hard-linked where possible so big weights are not copied."""
    names = [*TOWER_NAMES, "towers.json", RESULTS_FILE, PLOT_FILE, CARD_FILE]
    for name in names:
        source = output_dir / name
        if source.is_dir():
            shutil.copytree(source, staging / name, copy_function=_link_or_copy)
        elif source.is_file():
            _link_or_copy(source, staging / name)
    return staging


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        Path(target).hardlink_to(source)
    except OSError:
        shutil.copy2(source, target)


# -- main -------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None, *, hub_api: Any | None = None) -> dict[str, Any]:
    """Fine-tune, evaluate, save (and push); returns what OUT/all_results.json holds (on every process)."""
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    data_args, model_args, args = parse_arguments(argv)
    # Accelerate keeps its settings in a process-wide singleton that refuses a second, different mixed
    # precision. main() runs many times in one process (tests, notebooks), so each run starts from fresh
    # settings; the process group (PartialState) is kept, so a torchrun launch is unaffected.
    AcceleratorState._reset_state()
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        cpu=args.cpu,
        # Seeded shuffling (seed + epoch): a resumed run draws exactly the batches an uninterrupted one would.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    _setup_logging(accelerator)
    logger.info("Processes: %d (%s), device %s, mixed precision %s", accelerator.num_processes,
                accelerator.distributed_type, accelerator.device, accelerator.mixed_precision)
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    # The main process downloads/converts first; the others then read its cache.
    with accelerator.main_process_first():
        train_data, eval_data, dataset_identity = load_splits(data_args)
        towers = build_towers_from_base(
            model_args.base_model, revision=model_args.base_model_revision, token=args.hub_token, device="cpu"
        )
    global_batch = args.per_device_train_batch_size * accelerator.num_processes
    if len(train_data) < global_batch:
        raise ValueError(
            f"The batch ({args.per_device_train_batch_size} per process x {accelerator.num_processes} processes = "
            f"{global_batch}) is larger than the {len(train_data)} training rows; lower "
            "--per_device_train_batch_size."
        )
    labels = None
    if data_args.relevance_column and data_args.relevance_column in eval_data.column_names:
        labels = list(eval_data[data_args.relevance_column])

    collate = TweetCollator(towers.image_processor, towers.tokenizer, towers.max_text_length)
    loader_options = {"collate_fn": collate, "num_workers": data_args.dataloader_num_workers}
    # drop_last: every rank needs same-sized batches for the gather, and a tiny last batch has too few negatives.
    train_loader = DataLoader(
        train_data, shuffle=True, batch_size=args.per_device_train_batch_size, drop_last=True, **loader_options
    )
    eval_loader = DataLoader(eval_data, shuffle=False, batch_size=args.per_device_eval_batch_size, **loader_options)

    frozen = {"image": model_args.freeze_image_tower, "text": model_args.freeze_text_tower,
              "hashtag": model_args.freeze_hashtag_tower or model_args.hashtag_loss_weight == 0}
    for tower, model in zip(TOWER_NAMES, towers.models()):
        model.requires_grad_(not frozen[tower])
        if model_args.gradient_checkpointing:
            _enable_checkpointing(model)
    loss_fn = MultipleNegativesRankingLoss(
        logit_scale=model_args.logit_scale, learnable_scale=model_args.learn_logit_scale,
        symmetric=model_args.symmetric_loss, hashtag_weight=model_args.hashtag_loss_weight,
    )
    model = ContrastiveTowers(towers.as_module(), loss_fn, train_hashtags=model_args.hashtag_loss_weight > 0)
    optimizer = torch.optim.AdamW(parameter_groups(model, args, frozen))
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)

    # Recompute the schedule after prepare: the sharded loader is shorter with several processes.
    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    max_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_steps / steps_per_epoch)
    # Not prepared: stepped once per optimizer step on every rank, and saved with the state via registration.
    scheduler = make_scheduler(optimizer, args, max_steps)
    accelerator.register_for_checkpointing(scheduler)

    state = TrainState()
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir) if args.resume_from_checkpoint else None
    if checkpoint is not None:
        logger.info("Resuming from %s", checkpoint)
        accelerator.load_state(str(checkpoint))
        state = TrainState(**json.loads((checkpoint / STATE_FILE).read_text()))
    else:
        logger.info("Evaluating before training")
        before = evaluate(accelerator, model, eval_loader, len(eval_data), labels)
        state.history.append({"epoch": 0, "step": 0, "metrics": before})

    logger.info("Training: %d rows, %d epochs, %d optimizer steps, global batch %d x %d accumulation",
                len(train_data), num_epochs, max_steps, global_batch, args.gradient_accumulation_steps)
    progress = tqdm(total=max_steps, initial=state.completed_steps, disable=not accelerator.is_local_main_process,
                    desc="steps")
    rank_stats = {"batches": 0, "samples": 0, "gathered_batch_size": 0}
    started = time.perf_counter()
    model.train()
    for epoch in range(state.epoch, num_epochs):
        train_loader.set_epoch(epoch)
        # Mid-epoch resume: skip (at the sampler, nothing is decoded) the batches the checkpoint had consumed.
        skip = state.batches_in_epoch
        if not skip:
            state.epoch_start_step = len(state.step_losses)
        batches = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
        micro_losses: list[torch.Tensor] = []
        for batch in batches:
            if state.completed_steps >= max_steps:
                break
            with accelerator.accumulate(model):
                output = model(**batch)
                accelerator.backward(output["loss"])
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    scheduler.step()
                optimizer.zero_grad()
            state.batches_in_epoch += 1
            micro_losses.append(output["loss"].detach())
            rank_stats["batches"] += 1
            rank_stats["samples"] += int(batch["index"].shape[0])
            rank_stats["gathered_batch_size"] = int(output["gathered_batch_size"])
            if not accelerator.sync_gradients:
                continue
            state.completed_steps += 1
            step_loss = accelerator.reduce(torch.stack(micro_losses).mean(), reduction="mean").item()
            micro_losses = []
            state.step_losses.append(step_loss)
            progress.update(1)
            if state.completed_steps % args.logging_steps == 0 or state.completed_steps == max_steps:
                progress.set_postfix(loss=f"{step_loss:.4f}")
                logger.info("step %d/%d epoch %d loss %.4f lr %.3g negatives/query %d", state.completed_steps,
                            max_steps, epoch + 1, step_loss, scheduler.get_last_lr()[0],
                            rank_stats["gathered_batch_size"])
            if args.checkpointing_steps not in (None, "epoch") and (
                state.completed_steps % int(args.checkpointing_steps) == 0
            ):
                save_checkpoint(accelerator, output_dir, f"step_{state.completed_steps}", state,
                                args.checkpoints_total_limit)
        epoch_steps = state.step_losses[state.epoch_start_step:]
        state.epoch_losses.append(sum(epoch_steps) / max(len(epoch_steps), 1))
        metrics = evaluate(accelerator, model, eval_loader, len(eval_data), labels)
        state.history.append({"epoch": epoch + 1, "step": state.completed_steps, "metrics": metrics})
        if accelerator.is_main_process:
            logger.info("epoch %d: mean loss %.4f, %s", epoch + 1, state.epoch_losses[-1], _headline(metrics))
        state.epoch, state.batches_in_epoch = epoch + 1, 0
        if args.checkpointing_steps == "epoch":
            save_checkpoint(accelerator, output_dir, f"epoch_{epoch + 1}", state, args.checkpoints_total_limit)
        if state.completed_steps >= max_steps:
            break
    progress.close()
    runtime = time.perf_counter() - started

    # Every rank reports what it did; the main process records it (proof that all ranks trained and gathered).
    stats = torch.tensor([[accelerator.process_index, rank_stats["batches"], rank_stats["samples"],
                           rank_stats["gathered_batch_size"]]], device=accelerator.device)
    per_rank = [dict(zip(("rank", "batches", "samples", "gathered_batch_size"), map(int, row)))
                for row in accelerator.gather(stats).cpu().tolist()]
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    logit_scale = float(unwrapped.loss.logit_scale.detach())
    results: dict[str, Any] = {}
    if accelerator.is_main_process:
        results = _write_outputs(
            output_dir, towers, unwrapped, state, per_rank, runtime, logit_scale, dataset_identity,
            {"data": asdict(data_args), "model": asdict(model_args), "train": _public_args(args)},
            accelerator, max_steps, global_batch,
        )
        if args.push_to_hub:
            results["hub"] = _push(output_dir, args, hub_api)
            (output_dir / RESULTS_FILE).write_text(json.dumps(results, indent=2, default=str) + "\n")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def _write_outputs(
    output_dir: Path, towers: Towers, unwrapped: ContrastiveTowers, state: TrainState, per_rank: list[dict],
    runtime: float, logit_scale: float, dataset_identity: dict[str, Any], args: dict[str, Any], accelerator: Any,
    max_steps: int, global_batch: int,
) -> dict[str, Any]:
    towers.image_model, towers.text_model, towers.hashtag_model = (
        unwrapped.towers.image, unwrapped.towers.text, unwrapped.towers.hashtag
    )
    towers.logit_scale = logit_scale
    samples = sum(rank["samples"] for rank in per_rank)
    train = {
        "optimizer_steps": state.completed_steps,
        "max_steps": max_steps,
        "epochs": len(state.epoch_losses),
        "world_size": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type),
        "mixed_precision": accelerator.mixed_precision,
        "global_batch_size": global_batch,
        "logit_scale": logit_scale,
        "embedding_dim": towers.embedding_dim,
        "final_loss": state.step_losses[-1] if state.step_losses else None,
        "step_losses": state.step_losses,
        "epoch_losses": state.epoch_losses,
        "runtime_seconds": round(runtime, 3),
        "samples_this_run": samples,
        "samples_per_second": round(samples / runtime, 3) if runtime > 0 else None,
        "ranks": per_rank,
    }
    results = {
        "before": state.history[0]["metrics"],
        "after": state.history[-1]["metrics"],
        "history": state.history,
        "train": train,
        "args": args,
        "dataset": dataset_identity,
        "base_model": towers.identity.get("base_model", towers.identity),
    }
    towers.save(output_dir, extra={"training": {"dataset": dataset_identity, "results_file": RESULTS_FILE}})
    plot_losses(state.step_losses, state.epoch_losses, output_dir / PLOT_FILE)
    results["towers"] = {"path": str(output_dir), "files": [f"{name}/" for name in TOWER_NAMES] + ["towers.json"]}
    (output_dir / CARD_FILE).write_text(model_card(results, args["train"].get("hub_model_id")))
    (output_dir / RESULTS_FILE).write_text(json.dumps(results, indent=2, default=str) + "\n")
    logger.info("Before: %s", _headline(results["before"]))
    logger.info("After:  %s", _headline(results["after"]))
    logger.info("Saved towers, %s, %s and %s to %s", RESULTS_FILE, PLOT_FILE, CARD_FILE, output_dir)
    return results


def _push(output_dir: Path, args: FinetuneArguments, hub_api: Any | None) -> dict[str, str]:
    import tempfile

    from tweetmaker.hub import upload_folder_to_hub

    with tempfile.TemporaryDirectory(dir=output_dir) as tmp:
        staging = stage_for_upload(output_dir, Path(tmp) / "upload")
        url = upload_folder_to_hub(
            staging, args.hub_model_id, repo_type="model", private=args.hub_private, token=args.hub_token,
            commit_message="Upload TweetMaker towers", api=hub_api,
        )
    logger.info("Pushed the towers to %s", url)
    return {"repo_id": args.hub_model_id, "url": url}


def _enable_checkpointing(model: nn.Module) -> None:
    """Recompute activations in backward; transformers 5 renamed the method (the old name warns)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _public_args(args: FinetuneArguments) -> dict[str, Any]:
    """Training arguments for results and cards, without the token."""
    values = asdict(args)
    values["hub_token"] = None if values.get("hub_token") is None else "***"
    return values


def _headline(metrics: dict[str, dict[str, float]] | None) -> str:
    if not metrics:
        return ""
    keys = [("text_to_image", "recall@10"), ("text_to_image", "precision@10"), ("image_to_hashtag", "precision@5"),
            ("hashtag_to_image", "recall@10")]
    return ", ".join(f"{d} {m} {metrics[d][m]:.3f}" for d, m in keys if m in metrics.get(d, {}))


def _setup_logging(accelerator: Any) -> None:
    import datasets
    import transformers

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # Progress and logs from the main process only; the other ranks speak up for errors.
    main_process = accelerator.is_local_main_process
    logger.setLevel(logging.INFO if main_process else logging.ERROR)
    for library in (datasets, transformers):
        library.utils.logging.set_verbosity(logging.WARNING if main_process else logging.ERROR)
    if not main_process:
        datasets.utils.logging.disable_progress_bar()


if __name__ == "__main__":
    main()
