"""Shared fixtures. Everything is generated into temporary directories; nothing is downloaded.

The environment is set before any library import so Hugging Face, Gradio and Chroma stay offline and quiet.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The package is installed in editable mode (requirements-dev.txt: -e .); the insertion keeps a plain checkout
# without the install testable too (tests are the one place allowed to touch sys.path).
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tweetmaker.offline import OFFLINE_ENV  # noqa: E402 - imports nothing else

os.environ.update(OFFLINE_ENV)

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
    """The synthetic twin converted by the library's conversion (a save_to_disk DatasetDict)."""
    from tweetmaker.convert import prepare_dataset

    output = tmp_path_factory.mktemp("tweets") / "dataset"
    prepare_dataset(synthetic_source, output)
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


# The offline demo's recipe (tweetmaker.demo.DEMO_RECIPE): a tiny model that learns the twin in about a minute on
# 2 CPU cores. tests/test_finetune.py asserts it reaches the Training issue's bar; the app and search tests serve it.


@pytest.fixture(scope="session")
def learned(tmp_path_factory) -> dict:
    """The offline demo's assets, made by the demo's own code: the twin (DEMO_RECIPE.rows tweets), converted, and
    towers trained on it with the typed recipe through tweetmaker.training.

    Returns ``{"dataset": Path, "towers": Path, "results": all_results dict}``.
    """
    from tweetmaker.demo import prepare_demo_assets

    paths = prepare_demo_assets(tmp_path_factory.mktemp("learned"))
    results = json.loads(paths.results.read_text(encoding="utf-8"))
    return {"dataset": paths.dataset, "towers": paths.towers, "results": results}


@pytest.fixture(scope="session")
def running_app(learned, tmp_path_factory):
    """The real app (app.main) serving the learned towers over HTTP on 127.0.0.1, and a gradio_client for it."""
    from gradio_client import Client

    import app
    from tests.helpers import free_port

    port = free_port()
    index_dir = tmp_path_factory.mktemp("app_index") / "index"
    demo, resources = app.main(
        ["--towers", str(learned["towers"]), "--dataset", str(learned["dataset"]), "--index_dir", str(index_dir),
         "--port", str(port), "--max_text_chars", "2000"],
        prevent_thread_lock=True,
    )
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    yield client, resources
    client.close()
    demo.close()
    resources.close()
