"""Shared fixtures. Everything is generated into temporary directories; nothing is downloaded.

The environment is set before any library import so Hugging Face, Gradio and Chroma stay offline and quiet.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}.items():
    os.environ[_name] = _value

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pytest  # noqa: E402

SYNTHETIC_ROWS = 240


@pytest.fixture(scope="session")
def synthetic_source(tmp_path_factory) -> Path:
    """A small synthetic twin in the Kaggle layout (train.csv, test.csv, images/), with no bad rows."""
    from tweetmaker.synthetic import generate_corpus

    directory = tmp_path_factory.mktemp("synthetic")
    generate_corpus(directory, rows=SYNTHETIC_ROWS, seed=0)
    return directory


@pytest.fixture(scope="session")
def tweets_dir(synthetic_source, tmp_path_factory) -> Path:
    """The synthetic twin converted by the real prepare_dataset script (a save_to_disk DatasetDict)."""
    from train import prepare_dataset

    output = tmp_path_factory.mktemp("tweets") / "dataset"
    prepare_dataset.main(["--source_dir", str(synthetic_source), "--output_dir", str(output)])
    return output


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A tiny, randomly initialised CLIP base in the Hub checkpoint format."""
    from tweetmaker.towers import write_tiny_clip

    return write_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture()
def fake_hub(tmp_path):
    """A stand-in for the Hub's HTTP API (see tests/hub_fake.py): the only thing the tests fake."""
    from tests.hub_fake import FakeHubApi

    return FakeHubApi(root=tmp_path / "hub")
