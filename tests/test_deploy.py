"""Space deployment: space.yaml agrees with the README front matter, and the deploy command applies it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from tweetmaker.deploy import SpaceSpec, main

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space's YAML front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_space_yaml_agrees_with_readme_front_matter():
    spec = SpaceSpec.load(ROOT / "space.yaml")
    meta = front_matter()
    assert meta["sdk"] == spec.sdk == "gradio"
    assert str(meta["sdk_version"]) == spec.sdk_version
    assert str(meta["python_version"]) == spec.python_version
    assert meta["app_file"] == spec.app_file and (ROOT / spec.app_file).is_file()
    assert meta["suggested_hardware"] == spec.hardware
    assert spec.repos["towers"] in meta["models"]
    assert {spec.repos["dataset"], spec.repos["index"]} <= set(meta["datasets"])
    for name in spec.files:
        assert (ROOT / name).exists(), name


def test_the_library_never_imports_the_scripts():
    """The Space ships tweetmaker/ without train/ or benchmarks/: no library module may import them."""
    import ast

    for path in sorted((ROOT / "tweetmaker").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in {"train", "benchmarks", "tests"}, f"{path}: imports {name}"


def test_requirements_leave_the_package_install_to_development():
    """A Space installs requirements.txt before the repo is copied: an `-e .` there would fail the build. The
    editable install of the package (for train/ and benchmarks/) is in requirements-dev.txt."""
    runtime = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert not any(line.startswith("-e") or line == "." for line in runtime)
    assert "-e ." in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_pinned_sdk_version_satisfies_requirements():
    from packaging.requirements import Requirement

    spec = SpaceSpec.load(ROOT / "space.yaml")
    gradio = next(Requirement(line) for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("gradio") and not line.startswith("gradio_client"))
    assert spec.sdk_version in gradio.specifier


def test_deploy_creates_space_uploads_files_sets_variables_secrets_hardware(fake_hub, caplog):
    # The Hub's HTTP API is the stand-in (tests/hub_fake.py); everything else is the real deploy path.
    caplog.set_level(logging.DEBUG)
    token_value = "hf_secret_value_that_must_not_leak"
    from tweetmaker import deploy as deploy_module

    spec = SpaceSpec.load(ROOT / "space.yaml")
    plan = deploy_module.deploy(spec, root=ROOT, api=fake_hub, environ={"HF_TOKEN": token_value})
    (created, *_) = fake_hub.calls_named("create_repo")
    assert created["repo_id"] == spec.space_id and created["repo_type"] == "space"
    assert created["space_sdk"] == "gradio"
    remote = fake_hub.repo_dir(spec.space_id, "space")
    assert (remote / "app.py").is_file()
    library = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tweetmaker").rglob("*.py")
                     if "__pycache__" not in path.parts)
    assert "tweetmaker/resources.py" in library
    assert library == sorted(str(path.relative_to(remote)) for path in (remote / "tweetmaker").rglob("*.py"))
    assert (remote / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    assert not list(remote.rglob("__pycache__")) and not (remote / "tests").exists()
    assert not (remote / "train").exists() and not (remote / "benchmarks").exists()  # the app needs neither
    variables = fake_hub.variables[spec.space_id]
    assert variables["TWEETMAKER_TOWERS"] == spec.repos["towers"]
    assert variables["TWEETMAKER_INDEX_REPO"] == spec.repos["index"]
    assert fake_hub.secrets[spec.space_id] == {"HF_TOKEN": token_value}
    assert fake_hub.hardware[spec.space_id] == spec.hardware
    assert plan["secrets"] == ["HF_TOKEN"]
    assert token_value not in caplog.text and token_value not in repr(plan)


def test_deploy_without_secret_warns_and_dry_run_sends_nothing(fake_hub, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    plan = main(["--dry_run"], api=fake_hub)
    assert fake_hub.calls == [] and plan["secrets_not_set"] == ["HF_TOKEN"]
    assert "Would deploy" in capsys.readouterr().out


def test_spec_errors_are_clear(tmp_path):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump({"space_id": "me/x", "sdk": "gradio"}))
    with pytest.raises(ValueError, match="lacks"):
        SpaceSpec.load(tmp_path / "space.yaml")
