"""A stand-in for the Hugging Face Hub's HTTP API, for tests on machines that cannot reach the Hub.

This is the only fake in the test suite, and it replaces only what the network would do: it implements the
``huggingface_hub.HfApi`` methods TweetMaker calls with the same signatures, keeps each repo as a folder under
``root`` (``root/{repo_type}s/{owner}/{name}``), and records every call so tests can check which repo, files
and cards were sent. Everything the code under test writes is real and is read back from these folders.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class RepoNotFound(Exception):
    """Raised like huggingface_hub's RepositoryNotFoundError when a repo was never created."""


@dataclass
class FakeHubApi:
    root: Path
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    hardware: dict[str, str] = field(default_factory=dict)
    private: dict[str, bool] = field(default_factory=dict)

    def repo_dir(self, repo_id: str, repo_type: str | None = "model") -> Path:
        return Path(self.root) / f"{repo_type or 'model'}s" / repo_id

    def _existing(self, repo_id: str, repo_type: str | None) -> Path:
        path = self.repo_dir(repo_id, repo_type)
        if not path.is_dir():
            raise RepoNotFound(f"{repo_type} repo {repo_id} not found")
        return path

    def create_repo(self, repo_id: str, *, repo_type: str | None = None, private: bool | None = None,
                    exist_ok: bool = False, space_sdk: str | None = None, space_hardware: str | None = None,
                    **kwargs: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, "repo_type": repo_type, "private": private,
                                           "exist_ok": exist_ok, "space_sdk": space_sdk,
                                           "space_hardware": space_hardware, **kwargs}))
        path = self.repo_dir(repo_id, repo_type)
        if path.exists() and not exist_ok:
            raise FileExistsError(f"{repo_id} exists")
        path.mkdir(parents=True, exist_ok=True)
        self.private[repo_id] = bool(private)
        return f"https://huggingface.co/{'' if repo_type in (None, 'model') else repo_type + 's/'}{repo_id}"

    def upload_folder(self, *, folder_path: str, repo_id: str, repo_type: str | None = None,
                      path_in_repo: str | None = None, commit_message: str | None = None, revision: str | None = None,
                      **kwargs: Any) -> str:
        self.calls.append(("upload_folder", {"folder_path": folder_path, "repo_id": repo_id, "repo_type": repo_type,
                                             "path_in_repo": path_in_repo, "commit_message": commit_message,
                                             "revision": revision, **kwargs}))
        target = self._existing(repo_id, repo_type) / (path_in_repo or "")
        shutil.copytree(folder_path, target, dirs_exist_ok=True)
        return f"commit:{len(self.calls)}"

    def upload_file(self, *, path_or_fileobj: str | bytes, path_in_repo: str, repo_id: str,
                    repo_type: str | None = None, commit_message: str | None = None, **kwargs: Any) -> str:
        self.calls.append(("upload_file", {"path_in_repo": path_in_repo, "repo_id": repo_id, "repo_type": repo_type,
                                           "commit_message": commit_message, **kwargs}))
        target = self._existing(repo_id, repo_type) / path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(path_or_fileobj, bytes):
            target.write_bytes(path_or_fileobj)
        else:
            shutil.copyfile(path_or_fileobj, target)
        return f"commit:{len(self.calls)}"

    def snapshot_download(self, repo_id: str, *, repo_type: str | None = None, revision: str | None = None,
                          local_dir: str | None = None, **kwargs: Any) -> str:
        self.calls.append(("snapshot_download", {"repo_id": repo_id, "repo_type": repo_type, "revision": revision,
                                                 "local_dir": local_dir, **kwargs}))
        source = self._existing(repo_id, repo_type)
        if local_dir is None:
            return str(source)
        shutil.copytree(source, local_dir, dirs_exist_ok=True)
        return str(local_dir)

    def add_space_variable(self, repo_id: str, key: str, value: str, **kwargs: Any) -> None:
        self.calls.append(("add_space_variable", {"repo_id": repo_id, "key": key, "value": value}))
        self.variables.setdefault(repo_id, {})[key] = value

    def add_space_secret(self, repo_id: str, key: str, value: str, **kwargs: Any) -> None:
        # Record only that a secret was set, never its value: tests check secrets do not leak anywhere.
        self.calls.append(("add_space_secret", {"repo_id": repo_id, "key": key}))
        self.secrets.setdefault(repo_id, {})[key] = value

    def request_space_hardware(self, repo_id: str, hardware: str, **kwargs: Any) -> None:
        self.calls.append(("request_space_hardware", {"repo_id": repo_id, "hardware": hardware}))
        self.hardware[repo_id] = hardware

    def calls_named(self, name: str) -> list[dict[str, Any]]:
        return [arguments for call, arguments in self.calls if call == name]
