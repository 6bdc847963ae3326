"""Push TweetMaker artefacts (data set, towers, index) to the Hugging Face Hub.

Everything goes through one path: write the artefact and its card into a local folder, then create the repo
and upload the folder with ``huggingface_hub.HfApi``. The ``api`` argument is injectable so tests can hand in
a stand-in for the Hub's HTTP API (these machines cannot reach the Hub); production code uses ``HfApi``.
The token comes from the argument or the ``HF_TOKEN`` environment variable and is never printed or logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)
TOKEN_ENV_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def get_token(token: str | None = None) -> str | None:
    """The Hub token to use: the explicit one, else ``HF_TOKEN`` from the environment, else None."""
    if token:
        return token
    for name in TOKEN_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value
    return None


def make_api(token: str | None = None, api: Any | None = None) -> Any:
    """The injected API object, or a real ``HfApi`` carrying the token."""
    if api is not None:
        return api
    from huggingface_hub import HfApi

    return HfApi(token=get_token(token))


def upload_folder_to_hub(
    folder: str | Path,
    repo_id: str,
    repo_type: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload with TweetMaker",
    revision: str | None = None,
    api: Any | None = None,
) -> str:
    """Create ``repo_id`` (if needed) and upload ``folder`` to it; return the repo URL.

    ``repo_type`` is ``"model"``, ``"dataset"`` or ``"space"``.
    """
    if repo_type not in ("model", "dataset", "space"):
        raise ValueError(f"repo_type must be 'model', 'dataset' or 'space', not {repo_type!r}.")
    if not repo_id or repo_id.count("/") > 1:
        raise ValueError(f"{repo_id!r} is not a Hub repo id; use 'name' or 'owner/name'.")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Nothing to upload: {folder} is not a directory.")
    hub = make_api(token, api)
    repo_url = hub.create_repo(repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=True)
    logger.info("Uploading %s to %s repo %s", folder, repo_type, repo_id)  # never log the token
    hub.upload_folder(
        folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, commit_message=commit_message,
        revision=revision,
    )
    return str(repo_url)


def write_dataset_folder(dataset: datasets.DatasetDict, folder: str | Path, card: str,
                         extra_files: dict[str, str] | None = None, max_shard_bytes: int = 400 * 1024 * 1024) -> Path:
    """Lay a ``DatasetDict`` out as the Hub expects: ``data/{split}-0000i-of-0000n.parquet`` and ``README.md``."""
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split, part in dataset.items():
        size = max(1, part.data.nbytes)
        shards = max(1, -(-size // max_shard_bytes))
        for index in range(shards):
            shard = part.shard(num_shards=shards, index=index, contiguous=True)
            shard.to_parquet(str(folder / "data" / f"{split}-{index:05d}-of-{shards:05d}.parquet"))
    (folder / "README.md").write_text(card, encoding="utf-8")
    for name, content in (extra_files or {}).items():
        (folder / name).write_text(content, encoding="utf-8")
    return folder
