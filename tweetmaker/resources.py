"""Everything the app loads once at start: towers, index, recommender, and what the About panel shows.

``load_resources(settings)`` resolves, in order:

1. the towers (a local directory or a Hub model id);
2. the index (``ensure_index``): opened from ``index_dir`` (or a Chroma server) and checked against the towers; when
   missing it is pulled from ``index_repo`` or built from the data set; when built by other towers it is rebuilt
   (unless ``rebuild_stale_index`` is off);
3. when the towers cannot be had (no network, nothing local) or ``--demo`` is set: the synthetic offline demo
   (``tweetmaker.demo``), which makes the twin, trains a tiny model on it and indexes it, all cached under
   ``cache_dir`` so the next start reuses them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweetmaker.config import AppSettings
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
class Resources:
    """What the handlers need, loaded once (the clip-retrieval ``ClipResource`` pattern)."""

    settings: AppSettings
    towers: Towers
    index: TweetIndex
    recommender: Recommender
    towers_source: str
    dataset_source: str
    demo_reason: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_demo(self) -> bool:
        return self.demo_reason is not None

    @property
    def banner(self) -> str | None:
        return DEMO_BANNER.format(reason=self.demo_reason) if self.is_demo else None

    def close(self) -> None:
        self.index.close()


def _print_progress(message: str) -> None:
    logger.info(message)
    print(f"[tweetmaker] {message}", flush=True)


def load_resources(settings: AppSettings, progress: Progress = _print_progress, *, hub_api: Any | None = None
                   ) -> Resources:
    """Load towers and index per ``settings``, falling back to the synthetic offline demo when needed.

    ``hub_api`` replaces ``huggingface_hub.HfApi`` for pulling the index (tests pass a stand-in)."""
    from tweetmaker.towers import load_towers

    if settings.demo:
        return load_demo_resources(settings, "It was asked for with --demo.", progress)
    try:
        progress(f"Loading towers from {settings.towers} ...")
        towers = load_towers(settings.towers, revision=settings.towers_revision)
    except Exception as error:  # noqa: BLE001 - any failure to get towers from the Hub means: offline demo
        if is_local_source(settings.towers):
            raise ResourceError(f"Could not load towers from {settings.towers!r}: {error}") from error
        reason = (f"The towers {settings.towers!r} could not be loaded from the Hugging Face Hub "
                  f"({type(error).__name__}: {_first_line(error)}).")
        progress(reason + " Starting the synthetic offline demo instead.")
        return load_demo_resources(settings, reason, progress)
    index = ensure_index(settings, towers, settings.index_path, settings.dataset, progress, hub_api=hub_api)
    return _assemble(settings, towers, index, settings.towers, settings.dataset, None)


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
        return open_index(index_dir, towers=towers, **location)
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
            return open_index(index_dir, towers=towers, **location)
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
    return open_index(index_dir, towers=towers, **location)


def load_demo_resources(settings: AppSettings, reason: str, progress: Progress = _print_progress) -> Resources:
    """The synthetic offline demo: the cached tiny model and index, made on first use."""
    from tweetmaker.towers import load_towers

    progress("Starting the SYNTHETIC OFFLINE DEMO: " + reason)
    paths = prepare_demo_assets(settings.cache_path, progress)
    towers = load_towers(paths.towers)
    # The demo's index is always its own, embedded one, of every split of the twin.
    demo_settings = AppSettings(**{**settings.__dict__, "chroma_host": None, "index_repo": None,
                                   "dataset_split": None})
    index = ensure_index(demo_settings, towers, paths.index, str(paths.dataset), progress)
    progress(f"Demo ready: tiny towers at {paths.towers}, index at {paths.index}. To use real towers run "
             "`python app.py --towers OWNER/NAME_OR_DIR --dataset OWNER/NAME_OR_DIR`.")
    return _assemble(settings, towers, index, str(paths.towers), str(paths.dataset), reason)


def _assemble(settings: AppSettings, towers: Towers, index: TweetIndex, towers_source: str, dataset_source: str,
              demo_reason: str | None) -> Resources:
    from tweetmaker.search import Recommender

    return Resources(
        settings=settings, towers=towers, index=index, recommender=Recommender(towers, index),
        towers_source=towers_source, dataset_source=dataset_source, demo_reason=demo_reason,
        results=_read_results(towers_source), examples=pick_examples(index),
    )


def _read_results(towers_source: str) -> dict[str, Any]:
    """The training run's ``all_results.json`` when the towers are local (the About panel shows it)."""
    path = Path(towers_source).expanduser() / "all_results.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
    return {}


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
