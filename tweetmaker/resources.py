"""Everything the app loads once at start: towers, index, recommender, and what the About panel shows.

``load_resources(settings)`` resolves, in order:

1. the towers (a local directory or a Hub model id);
2. the index (``ensure_index``): opened from ``index_dir`` (or a Chroma server) and checked against the towers; when
   missing it is pulled from ``index_repo`` or built from the data set; when built by other towers it is rebuilt
   (unless ``rebuild_stale_index`` is off);
3. when the towers cannot be had (no network, nothing local) or ``--demo`` is set: the synthetic offline demo
   (``tweetmaker.demo``), which makes the twin, trains a tiny model on it and indexes it, all cached under
   ``cache_dir`` so the next start reuses them;
4. with ``--compare_towers``: a second model, loaded like the first (a directory, a Hub id, or ``base``: the main
   towers' own untrained base), with its own index under ``cache_dir/indexes/<towers and data set key>``, built once
   and reused by every later start, whichever side it is served on.

The served towers go through ``tweetmaker.inference.BatchedTowers`` (``--batch_max_size`` > 1, the default): queries
that arrive together share one forward per tower. Indexes are built before, with the towers themselves (an index
build's big batches gain nothing from the batcher), and the wrapper reads its identity from the towers, so index
checks are the same either way.

Each served model is a ``LoadedModel``: towers, index, recommender, the run's ``all_results.json`` and loss plot
(downloaded with towers from the Hub; absent means "not recorded") and its hard cases, computed once per index.
``Resources.models`` lists them, main first; ``Resources.towers``/``index``/``recommender``/``results`` are the main
model's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweetmaker.config import COMPARE_BASE, AppSettings
from tweetmaker.demo import (  # noqa: F401 - the demo's settings, importable from here as before
    DEMO_BANNER,
    DEMO_RECIPE,
    DEMO_ROWS,
    DEMO_SEED,
    DEMO_TINY_CLIP,
    DemoRecipe,
    demo_paths,
    prepare_demo_assets,
)
from tweetmaker.errors import TweetMakerError
from tweetmaker.sources import is_local_source

if TYPE_CHECKING:
    from tweetmaker.evaluation import HardCase
    from tweetmaker.index import TweetIndex
    from tweetmaker.search import Recommender
    from tweetmaker.towers import Towers

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]

# Deprecated: the demo recipe's training settings as train/finetune.py flags, for code written before DemoRecipe.
# In-process training takes the typed recipe: ``train(*DEMO_RECIPE.arguments(dataset, base, output_dir))``.
DEMO_FINETUNE_ARGS = DEMO_RECIPE.finetune_flags()


class ResourceError(TweetMakerError):
    """The app cannot start with these settings; the message says why and what to change."""


@dataclass
class LoadedModel:
    """One set of towers the app serves, with its own index and what the Models tab shows of it."""

    label: str  # how the page names it: the towers' folder name, Hub id, or "base"
    source: str  # what it was loaded from (a directory, a Hub id, or the base CLIP's source)
    towers: Towers
    index: TweetIndex
    recommender: Recommender
    results: dict[str, Any] = field(default_factory=dict)  # the run's all_results.json; {} when not recorded
    loss_plot: Path | None = None  # the run's loss.png; None when not recorded
    hard_cases: list[HardCase] = field(default_factory=list)


def _on_main(name: str) -> property:
    """An attribute of the main model, readable and settable on ``Resources`` as before there were several."""
    return property(lambda self: getattr(self.main, name), lambda self, value: setattr(self.main, name, value),
                    doc=f"The main model's ``{name}``.")


@dataclass
class Resources:
    """What the handlers need, loaded once (the clip-retrieval ``ClipResource`` pattern).

    ``models`` holds the main model first and, with ``--compare_towers``, the model it is compared with."""

    settings: AppSettings
    models: list[LoadedModel]
    dataset_source: str
    demo_reason: str | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)

    towers = _on_main("towers")
    index = _on_main("index")
    recommender = _on_main("recommender")
    results = _on_main("results")
    towers_source = _on_main("source")

    @property
    def main(self) -> LoadedModel:
        return self.models[0]

    @property
    def compare(self) -> LoadedModel | None:
        """The model compared with the main one, or None without ``--compare_towers``."""
        return self.models[1] if len(self.models) > 1 else None

    @property
    def is_demo(self) -> bool:
        return self.demo_reason is not None

    @property
    def banner(self) -> str | None:
        return DEMO_BANNER.format(reason=self.demo_reason) if self.is_demo else None

    def close(self) -> None:
        for model in self.models:
            model.index.close()  # a shared index is closed twice: harmless, close() swallows it
            stop = getattr(model.towers, "close", None)  # BatchedTowers' worker threads; twice is harmless too
            if stop is not None:
                stop()


def _print_progress(message: str) -> None:
    logger.info(message)
    print(f"[tweetmaker] {message}", flush=True)


def load_resources(settings: AppSettings, progress: Progress = _print_progress, *, hub_api: Any | None = None
                   ) -> Resources:
    """Load towers and index per ``settings``, falling back to the synthetic offline demo when needed.

    ``hub_api`` replaces ``huggingface_hub.HfApi`` for downloading towers and pulling the index (tests pass a
    stand-in)."""
    from tweetmaker.towers import load_towers

    if settings.demo:
        return load_demo_resources(settings, "It was asked for with --demo.", progress)
    try:
        progress(f"Loading towers from {settings.towers} ...")
        towers = load_towers(settings.towers, revision=settings.towers_revision, api=hub_api,
                             backend=settings.backend)
    except Exception as error:  # noqa: BLE001 - any failure to get towers from the Hub means: offline demo
        if is_local_source(settings.towers):
            raise ResourceError(f"Could not load towers from {settings.towers!r}: {error}") from error
        reason = (f"The towers {settings.towers!r} could not be loaded from the Hugging Face Hub "
                  f"({type(error).__name__}: {_first_line(error)}).")
        progress(reason + " Starting the synthetic offline demo instead.")
        return load_demo_resources(settings, reason, progress, hub_api=hub_api)
    index = ensure_index(settings, towers, settings.index_path, settings.dataset, progress, hub_api=hub_api)
    return _assemble(settings, towers, index, settings.towers, settings.dataset, None, progress, hub_api)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""


def ensure_index(settings: AppSettings, towers: Towers, index_dir: Path, dataset: str,
                 progress: Progress = _print_progress, *, hub_api: Any | None = None) -> TweetIndex:
    """Open the index built by ``towers``; pull, build or rebuild it when missing or stale.

    - found and made by ``towers``: opened as it is;
    - missing: pulled from ``settings.index_repo`` when set (embedded index only), else built from ``dataset``; a
      pull that fails, or that brings an index of other towers, falls back to building it here;
    - made by other towers (stale): rebuilt, or refused with a ``ResourceError`` naming ``--rebuild_stale_index``
      when ``settings.rebuild_stale_index`` is off.

    ``hub_api`` replaces ``huggingface_hub.HfApi`` for the pull (tests pass a stand-in).
    """
    from tweetmaker.index import IndexNotFoundError, StaleIndexError, build_index, open_index, pull_index

    location = {"host": settings.chroma_host, "port": settings.chroma_port}
    try:
        return open_index(index_dir, towers=towers, follow=True, **location)
    except IndexNotFoundError as error:
        progress(f"No index yet ({_first_line(error)}).")
        rebuild = False
    except StaleIndexError as error:
        if not settings.rebuild_stale_index:
            raise ResourceError(f"{error} (start with --rebuild_stale_index to rebuild it automatically)") from error
        progress(f"The index does not fit these towers; rebuilding it. ({_first_line(error)})")
        rebuild = True
    if not rebuild and settings.index_repo and not settings.chroma_host:
        try:
            progress(f"Pulling the index from {settings.index_repo} ...")
            pull_index(settings.index_repo, index_dir, api=hub_api)
            return open_index(index_dir, towers=towers, follow=True, **location)
        except Exception as error:  # noqa: BLE001 - a failed pull falls back to building locally
            progress(f"Could not use the index from {settings.index_repo} ({_first_line(error)}); building it.")
            rebuild = True
    progress(f"Building the index from {dataset} (embedding every tweet once; later starts reuse it) ...")
    started = time.perf_counter()
    try:
        build_index(dataset, towers, index_dir, split=settings.dataset_split, rebuild=rebuild,
                    revision=settings.dataset_revision, **location)
    except (ConnectionError, FileNotFoundError) as error:
        raise ResourceError(f"Cannot build the index: {error}") from error
    progress(f"Index built in {time.perf_counter() - started:.0f} s.")
    return open_index(index_dir, towers=towers, follow=True, **location)


def load_demo_resources(settings: AppSettings, reason: str, progress: Progress = _print_progress, *,
                        hub_api: Any | None = None) -> Resources:
    """The synthetic offline demo: the cached tiny model and index, made on first use (``--compare_towers base``
    compares them with the demo's tiny untrained base)."""
    from tweetmaker.towers import load_towers

    progress("Starting the SYNTHETIC OFFLINE DEMO: " + reason)
    paths = prepare_demo_assets(settings.cache_path, progress)
    towers = load_towers(paths.towers, backend=settings.backend)
    # The demo's index is always its own, embedded one, of every split of the twin.
    demo_settings = dataclasses.replace(settings, chroma_host=None, index_repo=None, dataset_split=None)
    index = ensure_index(demo_settings, towers, paths.index, str(paths.dataset), progress)
    progress(f"Demo ready: tiny towers at {paths.towers}, index at {paths.index}. To use real towers run "
             "`python app.py --towers OWNER/NAME_OR_DIR --dataset OWNER/NAME_OR_DIR`.")
    return _assemble(demo_settings, towers, index, str(paths.towers), str(paths.dataset), reason, progress, hub_api,
                     served=settings)


def _assemble(settings: AppSettings, towers: Towers, index: TweetIndex, towers_source: str, dataset_source: str,
              demo_reason: str | None, progress: Progress, hub_api: Any | None, served: AppSettings | None = None
              ) -> Resources:
    """The main model, the compared one when asked for, and the examples. ``settings`` are those the indexes were
    made with; ``served`` (default: the same) are what the ``Resources`` carry."""
    try:
        models = [loaded_model(settings, towers, index, towers_source, progress)]
        if settings.compare_towers is not None:
            models.append(load_compare_model(settings, models[0], dataset_source, progress, hub_api=hub_api))
    except BaseException:
        index.close()
        raise
    return Resources(settings=served or settings, models=models, dataset_source=dataset_source,
                     demo_reason=demo_reason, examples=pick_examples(index))


def loaded_model(settings: AppSettings, towers: Towers, index: TweetIndex, source: str, progress: Progress,
                 label: str | None = None) -> LoadedModel:
    """A served model: its recommender, the run's recorded files beside the towers, and its hard cases."""
    from tweetmaker.search import Recommender
    from tweetmaker.training.outputs import PLOT_FILE

    directory = towers_directory(towers, source)
    plot = directory / PLOT_FILE if directory is not None else None
    served = serving_towers(settings, towers)
    return LoadedModel(
        label=label or model_label(source), source=source, towers=served, index=index,
        recommender=Recommender(served, index), results=read_results(directory),
        loss_plot=plot if plot is not None and plot.is_file() else None,
        hard_cases=_hard_cases(index, settings, progress),
    )


def serving_towers(settings: AppSettings, towers: Towers) -> Towers:
    """``towers`` as the app serves them: wrapped in ``BatchedTowers`` per ``--batch_max_size``/``--batch_wait_ms``
    (as they are with batching off)."""
    from tweetmaker.inference.batching import batched_towers

    return batched_towers(towers, settings.batch_max_size, settings.batch_wait_ms)


def load_compare_model(settings: AppSettings, main: LoadedModel, dataset: str, progress: Progress = _print_progress,
                       *, hub_api: Any | None = None) -> LoadedModel:
    """The ``--compare_towers`` model with its own embedded index of ``dataset``, cached per towers and data set
    under ``cache_dir/indexes`` (built on the first start, reused by later ones). Towers identical to the main ones
    share the main model's index and recommender."""
    from tweetmaker.evaluate import load_model
    from tweetmaker.index import towers_key
    from tweetmaker.towers import load_towers

    spec = str(settings.compare_towers)
    progress(f"Loading the towers to compare with from {spec} ...")
    try:
        if spec == COMPARE_BASE:
            towers = load_model(COMPARE_BASE, reference=main.towers)
        else:
            towers = load_towers(spec, revision=settings.compare_towers_revision, api=hub_api,
                                 backend=settings.backend)
    except Exception as error:  # noqa: BLE001 - asked for explicitly: say why it cannot be had, never serve less
        raise ResourceError(f"Could not load --compare_towers {spec!r}: {_first_line(error)}") from error
    source = str(towers.identity.get("source") or spec) if spec == COMPARE_BASE else spec
    label = model_label(spec)
    if label == main.label:
        label += " (compared)"
    if towers_key(towers.identity) == towers_key(main.towers.identity):
        progress("The towers to compare with are the main towers; they share its index.")
        return dataclasses.replace(main, label=label, source=source)
    index_dir = model_index_dir(settings, towers, dataset)
    # The compared model's index is always its own, embedded one: a pulled index or a Chroma server hold the main's.
    own = dataclasses.replace(settings, chroma_host=None, index_repo=None)
    index = ensure_index(own, towers, index_dir, dataset, progress)
    try:
        return loaded_model(own, towers, index, source, progress, label=label)
    except BaseException:
        index.close()
        raise


def model_index_dir(settings: AppSettings, towers: Towers, dataset: str) -> Path:
    """Where the index of ``dataset`` (as ``settings`` select it) built by ``towers`` is kept under ``cache_dir``."""
    from tweetmaker.index import towers_key

    where = str(Path(dataset).expanduser().resolve()) if is_local_source(dataset) else dataset
    what = [towers_key(towers.identity), where, settings.dataset_revision, settings.dataset_split]
    return settings.cache_path / "indexes" / hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]


def model_label(spec: str) -> str:
    """How the page names a model: a directory by its name, a Hub id or ``base`` as given."""
    return Path(spec).expanduser().name if is_local_source(spec) else spec


def towers_directory(towers: Towers, source: str) -> Path | None:
    """The local folder the towers were read from (a Hub download's snapshot too), where the run's files are."""
    local = getattr(towers, "local_dir", None)
    if local is not None:
        return Path(local)
    path = Path(source).expanduser()
    return path if path.is_dir() else None


def read_results(directory: Path | None) -> dict[str, Any]:
    """The training run's ``all_results.json`` in ``directory``, or {} when it is not there (not recorded)."""
    from tweetmaker.training.outputs import RESULTS_FILE

    path = directory / RESULTS_FILE if directory is not None else None
    if path is None or not path.is_file():
        return {}
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return results if isinstance(results, dict) else {}


def _hard_cases(index: TweetIndex, settings: AppSettings, progress: Progress) -> list[HardCase]:
    """The index's hard cases, computed on the first load of this index and cached under ``cache_dir``."""
    from tweetmaker.evaluation import cached_hard_cases

    try:
        return cached_hard_cases(index, settings.cache_path / "hard_cases")
    except Exception as error:  # noqa: BLE001 - a view of failures must never stop the app from serving
        progress(f"Hard cases are not available for the index at {index.location} ({_first_line(error)}).")
        return []


def pick_examples(index: TweetIndex, count: int = 4) -> list[dict[str, Any]]:
    """A few tweets spread over the corpus, so a first visit has something to click."""
    total = index.count("text")
    examples = []
    for position in range(0, total, max(1, total // count))[:count]:
        page = index.collections["text"].get(limit=1, offset=position, include=["metadatas"])
        if page["ids"]:
            metadata = dict(page["metadatas"][0] or {})
            examples.append({"id": page["ids"][0], "text": metadata.get("text", ""),
                             "image": index.image_path(metadata)})
    return examples
