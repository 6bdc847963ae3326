"""Fine-tuning the three towers with Accelerate: the library behind ``train/finetune.py``.

- ``args``: the settings (``DataArguments``, ``ModelArguments``, ``FinetuneArguments``), ``parse_arguments`` for the
  command line and ``make_arguments`` for code;
- ``data``: the train/eval splits and the collator that decodes images in DataLoader workers;
- ``model``: the towers + loss module, per-tower parameter groups, the LR schedule;
- ``checkpoints``: the training state and atomically committed checkpoints;
- ``evaluation``: before/after retrieval metrics gathered across processes;
- ``outputs``: ``RunSummary`` -> towers, all_results.json, loss plot, model card, Hub push;
- ``loop``: ``train(data_args, model_args, train_args)``, the loop itself, top to bottom.

Importing the package loads torch but nothing else heavy; Accelerate is imported when ``train`` runs.
"""

from tweetmaker.training.args import (
    MIXED_PRECISION,
    SCHEDULERS,
    DataArguments,
    FinetuneArguments,
    ModelArguments,
    make_arguments,
    parse_arguments,
)
from tweetmaker.training.checkpoints import (
    CHECKPOINTS_DIR,
    STATE_FILE,
    TrainState,
    checkpoint_dirs,
    remove_unfinished_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
)
from tweetmaker.training.data import TweetCollator, load_splits
from tweetmaker.training.evaluation import evaluate
from tweetmaker.training.loop import train
from tweetmaker.training.model import ContrastiveTowers, make_scheduler, parameter_groups
from tweetmaker.training.outputs import (
    CARD_FILE,
    PLOT_FILE,
    RESULTS_FILE,
    RunSummary,
    plot_losses,
    push_outputs,
    stage_for_upload,
    write_outputs,
)

__all__ = [
    "CARD_FILE", "CHECKPOINTS_DIR", "MIXED_PRECISION", "PLOT_FILE", "RESULTS_FILE", "SCHEDULERS", "STATE_FILE",
    "ContrastiveTowers", "DataArguments", "FinetuneArguments", "ModelArguments", "RunSummary", "TrainState",
    "TweetCollator", "checkpoint_dirs", "evaluate", "load_splits", "make_arguments", "make_scheduler",
    "parameter_groups", "parse_arguments", "plot_losses", "push_outputs", "remove_unfinished_checkpoints",
    "resolve_checkpoint", "save_checkpoint", "stage_for_upload", "train", "write_outputs",
]
