"""Checkpoints that a killed job can always resume from: written whole or not at all.

A checkpoint is Accelerate's ``save_state`` (weights, optimizer, scheduler, every rank's RNG state) plus the
``TrainState`` below, under OUT/checkpoints/NAME. It is written under ``.partial-NAME``, flushed to disk and then
renamed (``tweetmaker.atomic``), so ``latest`` never picks a half-written one; a run's start removes the partial
directories a killed job left behind.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tweetmaker.atomic import PARTIAL_PREFIX, commit_directory, partial_path, remove_stale_partials
from tweetmaker.errors import InvalidInputError

logger = logging.getLogger(__name__)
CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "finetune_state.json"


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

    @classmethod
    def load(cls, checkpoint: Path) -> TrainState:
        return cls(**json.loads((checkpoint / STATE_FILE).read_text()))


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    """Complete checkpoints under OUT/checkpoints, oldest first (by optimizer steps completed).

    A save is written under a ``.partial-`` name and renamed when done (``save_checkpoint``), so what a job killed
    mid-save left behind is never listed; neither is a directory without a readable state file (a checkpoint from
    before that rule, cut short).
    """
    root = Path(output_dir) / CHECKPOINTS_DIR
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


def remove_unfinished_checkpoints(output_dir: Path) -> list[Path]:
    """Delete the ``.partial-*`` saves a killed job left under OUT/checkpoints. Call at the start of a run, on the
    main process only, before any rank saves (a later save of the same name would also replace it, but a partial
    of a step this run never reaches would otherwise stay forever)."""
    removed = remove_stale_partials(Path(output_dir) / CHECKPOINTS_DIR)
    for path in removed:
        logger.info("Removed %s, a checkpoint whose save did not finish", path)
    return removed


def save_checkpoint(accelerator: Any, output_dir: Path, name: str, state: TrainState, limit: int | None) -> Path:
    """Save the training state as OUT/checkpoints/NAME, atomically; keep only the newest ``limit`` checkpoints.

    Everything goes into ``.partial-NAME`` first; once every rank has written its part (each saves its own RNG
    state) and the state file is in, the main process flushes the directory to disk and renames it to NAME (an
    older NAME, saved before a resume from an earlier checkpoint, is replaced only once the new one is complete).
    A job killed at any moment therefore leaves either the previous checkpoints alone or a complete new one.
    """
    root = Path(output_dir) / CHECKPOINTS_DIR
    path = root / name
    partial = partial_path(path)
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # left by a job killed while saving this same checkpoint
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()  # save_state does not wait: other ranks may still be writing their files
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
        commit_directory(partial, path)  # fsync the files and the directory, then the rename that commits them
        if limit is not None:
            for old in checkpoint_dirs(output_dir)[:-limit]:
                shutil.rmtree(old, ignore_errors=True)
        logger.info("Saved checkpoint %s", path)
    accelerator.wait_for_everyone()
    return path


def resolve_checkpoint(value: str, output_dir: Path) -> Path | None:
    """``--resume_from_checkpoint``'s value -> a complete checkpoint directory (None: 'latest' found none)."""
    output_dir = Path(output_dir)
    if value == "latest":
        found = checkpoint_dirs(output_dir)
        if not found:
            logger.warning("--resume_from_checkpoint latest: no checkpoint under %s yet; starting fresh", output_dir)
            return None
        return found[-1]
    path = Path(value)
    if path.name.startswith(PARTIAL_PREFIX):
        raise InvalidInputError(
            f"--resume_from_checkpoint {value!r} is a checkpoint whose save did not finish; use a directory under "
            f"{output_dir / CHECKPOINTS_DIR} without the {PARTIAL_PREFIX!r} prefix, or 'latest'."
        )
    if _checkpoint_steps(path) is None:
        raise InvalidInputError(
            f"--resume_from_checkpoint {value!r} is not a checkpoint written by this script (no readable "
            f"{STATE_FILE}); use a directory under {output_dir / CHECKPOINTS_DIR} or 'latest'."
        )
    return path
