"""An index on the Hugging Face Hub: push a built one as a dataset repo, pull it where it is served.

A Space's disk is wiped on restart, so a Space pulls the index its towers built instead of embedding every tweet again.
What is pushed is the live generation alone, in the flat layout (chroma/, images/, manifest.json, README.md); a pull
becomes a new generation of the local index and is published only once it is all there and checked, so a failed
download leaves the local index as it was.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from tweetmaker.atomic import PARTIAL_PREFIX
from tweetmaker.index.errors import IndexNotFoundError
from tweetmaker.index.generations import Generations, new_generation_id
from tweetmaker.index.layout import (
    CHROMA_DIRNAME,
    GENERATIONS_DIRNAME,
    LIVE_LINK,
    LOCK_FILENAME,
    MANIFEST_FILENAME,
    IndexLocation,
    Manifest,
    build_lock,
)


def push_index(
    index_dir: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision_message: str | None = None,
    api: Any = None,
) -> Any:
    """Upload the live generation of a complete, embedded index to a Hub dataset repo (the Space pulls it at start)."""
    from tweetmaker.cards import index_card
    from tweetmaker.hub import upload_folder_to_hub

    index_path = Path(index_dir)
    live = Generations(IndexLocation(index_path)).live() if index_path.is_dir() else None
    if live is None or not live.manifest_file.is_file() or not (live.root / CHROMA_DIRNAME).is_dir():
        raise IndexNotFoundError(
            f"{str(index_path)!r} holds no complete embedded index (manifest.json and chroma/); build it first."
        )
    with build_lock(index_path):  # nobody writes while we copy
        manifest = Manifest.from_json(live.manifest_file.read_text(encoding="utf-8"))
        with tempfile.TemporaryDirectory(prefix="tweetmaker-push-") as scratch:
            staged = Path(scratch) / "index"
            # The flat layout's root is INDEX_DIR itself: leave out what is not part of the index.
            ignored = shutil.ignore_patterns(LOCK_FILENAME, ".tmp-*", PARTIAL_PREFIX + "*", ".cache",
                                             GENERATIONS_DIRNAME, LIVE_LINK)
            shutil.copytree(live.root, staged, ignore=ignored)
            (staged / "README.md").write_text(index_card(repo_id, manifest), encoding="utf-8")
            return upload_folder_to_hub(
                staged,
                repo_id,
                repo_type="dataset",
                private=private,
                token=token,
                commit_message=revision_message or f"TweetMaker index ({manifest.num_rows} tweets)",
                api=api,
            )


def pull_index(
    repo_id: str,
    index_dir: str | Path,
    *,
    revision: str | None = None,
    token: str | None = None,
    api: Any = None,
) -> Path:
    """Download an index pushed by ``push_index`` and make it the live generation of ``index_dir``.

    ``api`` is an ``HfApi`` (made from the token when not given; tests inject ``tests/hub_fake.FakeHubApi``).
    """
    from tweetmaker.hub import make_api

    index_path = Path(index_dir)
    index_path.mkdir(parents=True, exist_ok=True)
    with build_lock(index_path):  # a pull writes the directory: same rule as a build
        store = Generations(IndexLocation(index_path))
        store.tidy()  # what a killed pull or build left
        generation = store.generation(new_generation_id())
        staging = index_path / f"{PARTIAL_PREFIX}pull-{generation.id}"
        try:
            make_api(token, api).snapshot_download(
                repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=str(staging)
            )
            if not (staging / MANIFEST_FILENAME).is_file() or not (staging / CHROMA_DIRNAME).is_dir():
                raise IndexNotFoundError(
                    f"Dataset repo {repo_id!r} does not hold a TweetMaker index (no manifest.json)."
                )
            generation.root.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(generation.root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        store.publish(generation)
        store.close()
    return index_path
