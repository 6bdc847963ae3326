"""The synthetic offline demo: what the app serves when no real towers can be had (offline, nothing local, --demo).

``prepare_demo_assets(cache_dir)`` makes, once, under ``cache_dir/demo``: the synthetic twin of the corpus in the
Kaggle layout, its converted data set, a tiny random CLIP base, and towers fine-tuned on the twin with the
``DEMO_RECIPE`` below, all by the library's own functions (``tweetmaker.synthetic``, ``tweetmaker.convert``,
``tweetmaker.towers``, ``tweetmaker.training``). Each step is written into a staging directory and renamed into place
when complete (``tweetmaker.atomic``), so an interrupted first start is redone next time and a finished step is
never repeated. ``tweetmaker.resources.load_demo_resources`` then indexes and serves them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tweetmaker.training.args import Arguments

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]

DEMO_BANNER = (
    "**Synthetic offline demo.** {reason} These results come from a tiny model trained in a minute on TweetMaker's "
    "synthetic twin of the AI Tweets corpus, not from real tweets. To use real towers, start the app with "
    "`python app.py --towers OWNER/NAME_OR_DIR --dataset OWNER/NAME_OR_DIR` (or set `TWEETMAKER_TOWERS` and "
    "`TWEETMAKER_DATASET`)."
)


@dataclass(frozen=True)
class TinyClipShape:
    """The sizes of the demo's tiny CLIP base (keyword options of ``tweetmaker.towers.write_tiny_clip``)."""

    image_size: int = 32
    patch_size: int = 8
    hidden_size: int = 128
    intermediate_size: int = 256
    projection_dim: int = 64


@dataclass(frozen=True)
class DemoRecipe:
    """How the demo's towers are made: the twin's size and seed, the tiny base, and the fine-tuning settings.

    The training fields are named like ``tweetmaker.training`` settings (the flags of ``train/finetune.py``); the
    rest keep their defaults. A tiny CLIP from random init (no weights can be downloaded offline) learns the twin in
    about a minute on two CPU cores with these values; tests/test_finetune.py checks the recipe reaches the Training
    issue's quality bar, and the app and search tests serve the towers it trains. A warmup of 50 steps at lr 1e-3
    avoids the early collapse that a shorter warmup or a higher rate runs into (text->image precision@10 stuck near
    chance).
    """

    rows: int = 1500
    seed: int = 1
    tiny_clip: TinyClipShape = TinyClipShape()
    per_device_train_batch_size: int = 32
    learning_rate: float = 1e-3
    num_train_epochs: int = 7
    num_warmup_steps: int = 50
    lr_scheduler_type: str = "cosine"
    logging_steps: int = 50
    dataloader_num_workers: int = 1

    def training_settings(self) -> dict[str, Any]:
        """The fine-tuning settings of the recipe, by setting name."""
        own = {"rows", "seed", "tiny_clip"}
        return {item.name: getattr(self, item.name) for item in fields(self) if item.name not in own}

    def arguments(self, dataset: str | Path, base_model: str | Path, output_dir: str | Path,
                  **overrides: Any) -> Arguments:
        """The three ``tweetmaker.training`` argument objects for training this recipe (``overrides`` win)."""
        from tweetmaker.training import make_arguments

        return make_arguments(dataset=str(dataset), base_model=str(base_model), output_dir=str(output_dir),
                              **{**self.training_settings(), **overrides})

    def finetune_flags(self) -> list[str]:
        """The recipe as ``train/finetune.py`` flags, for showing or running the same training from a shell."""
        return [part for name, value in self.training_settings().items() for part in (f"--{name}", str(value))]


DEMO_RECIPE = DemoRecipe()
# The recipe's parts under their historical names (tests and benchmarks import them from tweetmaker.resources).
DEMO_ROWS = DEMO_RECIPE.rows
DEMO_SEED = DEMO_RECIPE.seed
DEMO_TINY_CLIP = asdict(DEMO_RECIPE.tiny_clip)


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo's assets live under a cache directory (``demo_paths``)."""

    root: Path
    corpus: Path  # the synthetic twin in the Kaggle layout
    dataset: Path  # its converted DatasetDict
    base: Path  # the tiny random CLIP
    towers: Path  # towers fine-tuned on the twin (with all_results.json)
    index: Path  # their index of the twin

    @property
    def results(self) -> Path:
        return self.towers / "all_results.json"


def demo_paths(cache_dir: str | Path) -> DemoPaths:
    root = Path(cache_dir) / "demo"
    return DemoPaths(root, *(root / name for name in ("corpus", "dataset", "base", "towers", "index")))


def _log_progress(message: str) -> None:
    logger.info(message)


def prepare_demo_assets(cache_dir: str | Path, progress: Progress = _log_progress,
                        recipe: DemoRecipe = DEMO_RECIPE) -> DemoPaths:
    """Make (or reuse) the synthetic twin, its data set, a tiny base and towers trained on it per ``recipe``."""
    from tweetmaker.atomic import staged_directory

    paths = demo_paths(cache_dir)
    with _demo_lock(paths.root):
        if not (paths.corpus / "test.csv").is_file():
            from tweetmaker.synthetic import generate_corpus

            progress(f"Offline demo: writing the synthetic twin ({recipe.rows} tweets) ...")
            with staged_directory(paths.corpus) as staging:
                generate_corpus(staging, rows=recipe.rows, seed=recipe.seed)
        if not (paths.dataset / "dataset_dict.json").is_file():
            from tweetmaker.convert import prepare_dataset

            progress("Offline demo: converting it into a data set ...")
            prepare_dataset(paths.corpus, paths.dataset)  # saved atomically by itself
        if not (paths.base / "config.json").is_file():
            from tweetmaker.towers import write_tiny_clip

            with staged_directory(paths.base) as staging:
                write_tiny_clip(staging, **asdict(recipe.tiny_clip))
        if not paths.results.is_file():
            from tweetmaker.training import train

            progress("Offline demo: training a tiny model on the twin (about a minute on CPU, once) ...")
            with staged_directory(paths.towers) as staging:
                train(*recipe.arguments(paths.dataset, paths.base, staging))
    return paths


@contextmanager
def _demo_lock(directory: Path) -> Iterator[None]:
    """One process prepares the demo at a time; a second start waits instead of training twice."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".prepare.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
