"""The training loop, top to bottom, in the manner of transformers' ``run_*_no_trainer.py`` examples.

``train(data_args, model_args, train_args)`` runs on every process of a launch (plain ``python``, ``torchrun`` or
``accelerate launch``): data loading under ``main_process_first``, ``prepare``, gradient accumulation, an LR schedule
with warmup, ``save_state`` checkpoints that ``resume_from_checkpoint`` continues mid-epoch (the same result as an
uninterrupted run), evaluation before training and after every epoch (``gather_for_metrics``), then main-process-only
writing of the towers, results, plot and card, and an optional push to the Hub.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from tweetmaker.errors import InvalidInputError
from tweetmaker.towers import build_towers_from_base
from tweetmaker.training.args import DataArguments, FinetuneArguments, ModelArguments
from tweetmaker.training.checkpoints import (
    TrainState,
    remove_unfinished_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
)
from tweetmaker.training.data import TweetCollator, load_splits, relevance_labels
from tweetmaker.training.evaluation import evaluate, headline
from tweetmaker.training.model import contrastive_model, make_scheduler, parameter_groups
from tweetmaker.training.outputs import RunSummary, push_outputs, run_arguments, write_outputs, write_results

logger = logging.getLogger(__name__)


def train(data_args: DataArguments, model_args: ModelArguments, train_args: FinetuneArguments, *,
          hub_api: Any | None = None) -> dict[str, Any]:
    """Fine-tune, evaluate, save (and push) the towers; returns what OUT/all_results.json holds on the main process
    ({} on the others). ``hub_api`` replaces ``huggingface_hub.HfApi`` for the push (tests pass a stand-in)."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    args = train_args
    accelerator = _fresh_accelerator(args)
    _setup_logging(accelerator)
    logger.info("Processes: %d (%s), device %s, mixed precision %s", accelerator.num_processes,
                accelerator.distributed_type, accelerator.device, accelerator.mixed_precision)
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        remove_unfinished_checkpoints(output_dir)
    accelerator.wait_for_everyone()

    # The main process downloads/converts first; the others then read its cache.
    with accelerator.main_process_first():
        train_data, eval_data, dataset_identity = load_splits(data_args)
        towers = build_towers_from_base(
            model_args.base_model, revision=model_args.base_model_revision, token=args.hub_token, device="cpu"
        )
    global_batch = args.per_device_train_batch_size * accelerator.num_processes
    if len(train_data) < global_batch:
        raise InvalidInputError(
            f"The batch ({args.per_device_train_batch_size} per process x {accelerator.num_processes} processes = "
            f"{global_batch}) is larger than the {len(train_data)} training rows; lower "
            "--per_device_train_batch_size."
        )
    labels = relevance_labels(eval_data, data_args)

    collate = TweetCollator(towers.image_processor, towers.tokenizer, towers.max_text_length)
    loader_options = {"collate_fn": collate, "num_workers": data_args.dataloader_num_workers}
    # drop_last: every rank needs same-sized batches for the gather, and a tiny last batch has too few negatives.
    train_loader = DataLoader(
        train_data, shuffle=True, batch_size=args.per_device_train_batch_size, drop_last=True, **loader_options
    )
    eval_loader = DataLoader(eval_data, shuffle=False, batch_size=args.per_device_eval_batch_size, **loader_options)

    model = contrastive_model(towers, model_args)
    optimizer = torch.optim.AdamW(parameter_groups(model, args, model_args.frozen_towers()))
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
        state = TrainState.load(checkpoint)
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
            logger.info("epoch %d: mean loss %.4f, %s", epoch + 1, state.epoch_losses[-1], headline(metrics))
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
    results: dict[str, Any] = {}
    if accelerator.is_main_process:
        trained = accelerator.unwrap_model(model).copy_into(towers)
        summary = RunSummary(
            state=state, ranks=per_rank, runtime_seconds=runtime, max_steps=max_steps,
            global_batch_size=global_batch, world_size=accelerator.num_processes,
            distributed_type=str(accelerator.distributed_type), mixed_precision=accelerator.mixed_precision,
            dataset=dataset_identity, args=run_arguments(data_args, model_args, args),
        )
        results = write_outputs(output_dir, trained, summary)
        if args.push_to_hub:
            results["hub"] = push_outputs(output_dir, args, hub_api)
            write_results(output_dir, results)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def _fresh_accelerator(args: FinetuneArguments) -> Any:
    """An Accelerator configured by ``args`` alone, whatever an earlier run in this process configured.

    Accelerate keeps its settings (mixed precision, device choice) in a process-wide singleton that refuses a
    second, different configuration, and it has no public way to start over. ``train`` runs many times in one
    process (tests, the offline demo, notebooks, benchmarks), so this is the one place that resets the singleton
    before each run. Only the settings are reset: the process group (``PartialState``) is kept, so a ``torchrun``
    or ``accelerate launch`` with several processes is unaffected.
    """
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    return Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        cpu=args.cpu,
        # Seeded shuffling (seed + epoch): a resumed run draws exactly the batches an uninterrupted one would.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )


def _setup_logging(accelerator: Any) -> None:
    import datasets
    import transformers

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # Progress and logs from the main process only; the other ranks speak up for errors.
    main_process = accelerator.is_local_main_process
    logging.getLogger("tweetmaker.training").setLevel(logging.INFO if main_process else logging.ERROR)
    for library in (datasets, transformers):
        library.utils.logging.set_verbosity(logging.WARNING if main_process else logging.ERROR)
    if not main_process:
        datasets.utils.logging.disable_progress_bar()
