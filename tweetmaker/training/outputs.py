"""What a finished run leaves behind: the towers, all_results.json, the loss plot, the model card, and the push.

The loop gathers what happened into a ``RunSummary``; ``write_outputs`` turns it into OUT/image, OUT/text,
OUT/hashtag, OUT/towers.json, OUT/all_results.json, OUT/loss.png and OUT/README.md (main process only), and
``push_outputs`` uploads those files (never the checkpoints) to a Hub model repo.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tweetmaker.cards import model_card
from tweetmaker.towers import TOWER_NAMES, TOWERS_FILE, Towers
from tweetmaker.training.args import DataArguments, FinetuneArguments, ModelArguments
from tweetmaker.training.checkpoints import TrainState
from tweetmaker.training.evaluation import headline

logger = logging.getLogger(__name__)
RESULTS_FILE = "all_results.json"
PLOT_FILE = "loss.png"
CARD_FILE = "README.md"


@dataclass
class RunSummary:
    """What a run did, collected by the loop on the main process: everything the outputs are made from."""

    state: TrainState  # steps, losses and the before/after evaluations
    ranks: list[dict[str, int]]  # per process: rank, batches, samples, gathered_batch_size
    runtime_seconds: float
    max_steps: int
    global_batch_size: int
    world_size: int
    distributed_type: str
    mixed_precision: str
    dataset: dict[str, Any]  # tweetmaker.data.dataset_identity of the training data
    args: dict[str, Any]  # run_arguments(...): the settings, token masked

    def results(self, towers: Towers) -> dict[str, Any]:
        """The content of all_results.json (without the ``towers`` entry that saving adds)."""
        state = self.state
        samples = sum(rank["samples"] for rank in self.ranks)
        runtime = self.runtime_seconds
        train = {
            "optimizer_steps": state.completed_steps,
            "max_steps": self.max_steps,
            "epochs": len(state.epoch_losses),
            "world_size": self.world_size,
            "distributed_type": self.distributed_type,
            "mixed_precision": self.mixed_precision,
            "global_batch_size": self.global_batch_size,
            "logit_scale": towers.logit_scale,
            "embedding_dim": towers.embedding_dim,
            "final_loss": state.step_losses[-1] if state.step_losses else None,
            "step_losses": state.step_losses,
            "epoch_losses": state.epoch_losses,
            "runtime_seconds": round(runtime, 3),
            "samples_this_run": samples,
            "samples_per_second": round(samples / runtime, 3) if runtime > 0 else None,
            "ranks": self.ranks,
        }
        return {
            "before": state.history[0]["metrics"],
            "after": state.history[-1]["metrics"],
            "history": state.history,
            "train": train,
            "args": self.args,
            "dataset": self.dataset,
            "base_model": towers.identity.get("base_model", towers.identity),
        }


def run_arguments(data_args: DataArguments, model_args: ModelArguments, train_args: FinetuneArguments
                  ) -> dict[str, dict[str, Any]]:
    """The run's settings for the results and the card, with the Hub token masked."""
    train = asdict(train_args)
    train["hub_token"] = None if train.get("hub_token") is None else "***"
    return {"data": asdict(data_args), "model": asdict(model_args), "train": train}


def write_outputs(output_dir: Path, towers: Towers, summary: RunSummary) -> dict[str, Any]:
    """Save the trained ``towers`` and the run's results, plot and model card under ``output_dir``."""
    output_dir = Path(output_dir)
    results = summary.results(towers)
    towers.save(output_dir, extra={"training": {"dataset": summary.dataset, "results_file": RESULTS_FILE}})
    plot_losses(summary.state.step_losses, summary.state.epoch_losses, output_dir / PLOT_FILE)
    results["towers"] = {"path": str(output_dir), "files": [f"{name}/" for name in TOWER_NAMES] + [TOWERS_FILE]}
    backend = summary.args["train"].get("export_backend")
    if backend:
        from tweetmaker.inference import export_backend

        try:
            export = export_backend(output_dir, backend)
            results["towers"]["export"] = str(export.relative_to(output_dir)) if export is not None else None
        except Exception as error:  # noqa: BLE001 - a failed export must not cost the trained run its results
            logger.error("The %s export failed (%s); the towers are saved without it: the app exports them on its "
                         "first start, or run `python -m tweetmaker.towers export --towers DIR --backend B`.", backend,
                         error)
            results["towers"]["export"] = None
            results["towers"]["export_error"] = str(error)
    (output_dir / CARD_FILE).write_text(model_card(results, summary.args["train"].get("hub_model_id")))
    write_results(output_dir, results)
    logger.info("Before: %s", headline(results["before"]))
    logger.info("After:  %s", headline(results["after"]))
    logger.info("Saved towers, %s, %s and %s to %s", RESULTS_FILE, PLOT_FILE, CARD_FILE, output_dir)
    return results


def write_results(output_dir: Path, results: dict[str, Any]) -> None:
    (Path(output_dir) / RESULTS_FILE).write_text(json.dumps(results, indent=2, default=str) + "\n")


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
    """The files a model repo gets (no checkpoints; the ONNX export when the run wrote one), hard-linked where
    possible so big weights are not copied."""
    from tweetmaker.inference.export import EXPORT_DIRNAME

    output_dir, staging = Path(output_dir), Path(staging)
    names = [*TOWER_NAMES, TOWERS_FILE, RESULTS_FILE, PLOT_FILE, CARD_FILE, EXPORT_DIRNAME]
    staging.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = output_dir / name
        if source.is_dir():
            # Not the export's lock files, nor what an interrupted export left half-written.
            shutil.copytree(source, staging / name, copy_function=_link_or_copy,
                            ignore=shutil.ignore_patterns("*.lock", ".partial-*"))
        elif source.is_file():
            _link_or_copy(source, staging / name)
    return staging


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        Path(target).hardlink_to(source)
    except OSError:
        shutil.copy2(source, target)


def push_outputs(output_dir: Path, train_args: FinetuneArguments, hub_api: Any | None = None) -> dict[str, str]:
    """Upload the towers, results, plot and card to ``train_args.hub_model_id``; ``hub_api`` replaces ``HfApi``."""
    from tweetmaker.hub import upload_folder_to_hub

    with tempfile.TemporaryDirectory(dir=output_dir) as tmp:
        staging = stage_for_upload(output_dir, Path(tmp) / "upload")
        url = upload_folder_to_hub(
            staging, train_args.hub_model_id, repo_type="model", private=train_args.hub_private,
            token=train_args.hub_token, commit_message="Upload TweetMaker towers", api=hub_api,
        )
    logger.info("Pushed the towers to %s", url)
    return {"repo_id": train_args.hub_model_id, "url": url}
