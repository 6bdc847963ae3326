"""Deploy the app as a Hugging Face Space from the spec in ``space.yaml``.

    python -m tweetmaker.deploy [--spec space.yaml] [--dry_run]

Creates the Space repo (``create_repo(repo_type="space")``), uploads the app files, sets the variables (the
towers/dataset/index repos become ``TWEETMAKER_*`` variables) and the secrets named in the spec (values from the
environment, never printed), and requests the hardware.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tweetmaker.hub import get_token, make_api, upload_folder_to_hub

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_VARIABLES = {"towers": "TWEETMAKER_TOWERS", "dataset": "TWEETMAKER_DATASET", "index": "TWEETMAKER_INDEX_REPO"}


@dataclass
class SpaceSpec:
    space_id: str
    sdk: str
    sdk_version: str
    python_version: str
    app_file: str
    hardware: str
    repos: dict[str, str]
    variables: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    private: bool = False

    @classmethod
    def load(cls, path: str | Path) -> SpaceSpec:
        import yaml

        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        missing = [name for name in ("space_id", "sdk", "sdk_version", "python_version", "app_file", "hardware",
                                     "repos") if name not in raw]
        if missing:
            raise ValueError(f"{path} lacks {missing}; see the space.yaml in the TweetMaker repository.")
        unknown = set(raw) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"{path} has unknown keys {sorted(unknown)}.")
        raw["variables"] = {key: str(value) for key, value in (raw.get("variables") or {}).items()}
        raw["sdk_version"] = str(raw["sdk_version"])
        raw["python_version"] = str(raw["python_version"])
        return cls(**raw)

    def all_variables(self) -> dict[str, str]:
        """The spec's variables plus the repo ids the app reads (TWEETMAKER_TOWERS, ...)."""
        derived = {REPO_VARIABLES[kind]: repo for kind, repo in self.repos.items() if kind in REPO_VARIABLES}
        return {**derived, **self.variables}


def stage_files(spec: SpaceSpec, root: Path, target: Path) -> Path:
    """Copy the files the Space needs into ``target`` (no caches, no tests, no data)."""
    for name in spec.files:
        source = root / name
        if not source.exists():
            raise FileNotFoundError(f"space.yaml lists {name!r}, which does not exist in {root}.")
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target / name)
    return target


def deploy(spec: SpaceSpec, *, root: Path = REPO_ROOT, token: str | None = None, api: Any | None = None,
           environ: dict[str, str] | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Apply ``spec``: create the Space, upload its files, set variables, secrets and hardware."""
    environ = dict(os.environ if environ is None else environ)
    secrets = {name: environ[name] for name in spec.secrets if environ.get(name)}
    skipped = [name for name in spec.secrets if name not in secrets]
    plan = {"space_id": spec.space_id, "hardware": spec.hardware, "variables": spec.all_variables(),
            "secrets": sorted(secrets), "secrets_not_set": skipped, "files": spec.files}
    if dry_run:
        return plan
    hub = make_api(token, api)
    with tempfile.TemporaryDirectory(prefix="tweetmaker-space-") as staging:
        hub.create_repo(repo_id=spec.space_id, repo_type="space", space_sdk=spec.sdk, private=spec.private,
                        exist_ok=True)
        upload_folder_to_hub(stage_files(spec, root, Path(staging)), spec.space_id, "space", private=spec.private,
                             token=token, commit_message="Deploy TweetMaker", api=hub)
    for key, value in spec.all_variables().items():
        hub.add_space_variable(spec.space_id, key, value)
    for key, value in secrets.items():
        hub.add_space_secret(spec.space_id, key, value)
    for name in skipped:
        logger.warning("Secret %s is not set in this environment; the Space will run without it.", name)
    hub.request_space_hardware(spec.space_id, spec.hardware)
    return plan


def main(argv: list[str] | None = None, api: Any | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Deploy TweetMaker as a Hugging Face Space.")
    parser.add_argument("--spec", default=str(REPO_ROOT / "space.yaml"), help="The deployment spec (space.yaml).")
    parser.add_argument("--dry_run", action="store_true", help="Print what would be done and stop.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    spec = SpaceSpec.load(args.spec)
    plan = deploy(spec, root=Path(args.spec).resolve().parent, token=get_token(), api=api, dry_run=args.dry_run)
    print(("Would deploy " if args.dry_run else "Deployed ") + f"{spec.space_id}: hardware {plan['hardware']}, "
          f"variables {sorted(plan['variables'])}, secrets set {plan['secrets']}, "
          f"secrets not set {plan['secrets_not_set']}")
    return plan


if __name__ == "__main__":
    main()
