"""tweetmaker.resources.ensure_index, branch by branch, and load_resources' refusal of unusable local towers.

Real towers (two different tiny CLIPs, untrained), real indexes built by tweetmaker.index on a small slice of the
synthetic twin, and the Hub stand-in (tests/hub_fake.py) for the pull: nothing else is faked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tweetmaker.config import AppSettings
from tweetmaker.index import StaleIndexError, build_index, open_index, push_index
from tweetmaker.resources import ResourceError, ensure_index, load_resources

TRAIN_ROWS, TEST_ROWS = 16, 8


@pytest.fixture(scope="module")
def towers(tiny_clip_dir, tmp_path_factory) -> dict[str, object]:
    """Two different sets of towers: "a" from the session's tiny CLIP, "b" from another seed (saved and loaded, as
    the app gets them)."""
    from tweetmaker.towers import build_towers_from_base, load_towers, write_tiny_clip

    root = tmp_path_factory.mktemp("resources_towers")
    bases = {"a": tiny_clip_dir, "b": write_tiny_clip(root / "base_b", seed=1)}
    return {name: load_towers(build_towers_from_base(base, device="cpu").save(root / name), device="cpu")
            for name, base in bases.items()}


@pytest.fixture(scope="module")
def dataset_dir(tweets_dir, tmp_path_factory) -> Path:
    """A small slice of the twin saved as a data set directory (what --dataset names)."""
    import datasets

    loaded = datasets.load_from_disk(str(tweets_dir))
    small = datasets.DatasetDict({"train": loaded["train"].select(range(TRAIN_ROWS)),
                                  "test": loaded["test"].select(range(TEST_ROWS))})
    target = tmp_path_factory.mktemp("resources_data") / "dataset"
    small.save_to_disk(str(target))
    return target


@pytest.fixture(scope="module")
def pushed_index(towers, dataset_dir, tmp_path_factory) -> tuple[object, dict[str, str]]:
    """A Hub stand-in holding two pushed indexes of the slice: one built by towers "a", one by towers "b"."""
    from tests.hub_fake import FakeHubApi

    root = tmp_path_factory.mktemp("resources_hub")
    hub = FakeHubApi(root=root / "hub")
    repos = {}
    for name in ("a", "b"):
        index_dir = root / f"index_{name}"
        build_index(str(dataset_dir), towers[name], index_dir, progress=False)
        repos[name] = f"someone/index-by-{name}"
        push_index(index_dir, repos[name], api=hub)
    hub.calls.clear()
    return hub, repos


def _settings(dataset_dir: Path, index_dir: Path, **overrides) -> AppSettings:
    return AppSettings(**{"towers": "unused-here", "dataset": str(dataset_dir), "index_dir": str(index_dir),
                          **overrides})


def _ensure(settings: AppSettings, towers, messages: list[str], hub_api=None):
    return ensure_index(settings, towers, settings.index_path, settings.dataset, messages.append, hub_api=hub_api)


def _assert_serves(index, towers) -> None:
    """The index holds every tweet of the slice and is the one ``towers`` built (open_index checks the manifest)."""
    assert index.count("image") == TRAIN_ROWS + TEST_ROWS
    index.close()
    reopened = open_index(index.index_dir, towers=towers)
    reopened.close()


def test_a_missing_index_is_built(towers, dataset_dir, tmp_path):
    messages: list[str] = []
    index = _ensure(_settings(dataset_dir, tmp_path / "index"), towers["a"], messages)
    assert any(message.startswith("No index yet") for message in messages), messages
    assert any(message.startswith("Building the index") for message in messages), messages
    assert not any("Pulling" in message for message in messages)
    _assert_serves(index, towers["a"])


def test_a_stale_index_is_rebuilt_for_these_towers(towers, dataset_dir, tmp_path):
    index_dir = tmp_path / "index"
    build_index(str(dataset_dir), towers["b"], index_dir, progress=False)
    messages: list[str] = []
    index = _ensure(_settings(dataset_dir, index_dir), towers["a"], messages)
    assert any("does not fit these towers; rebuilding" in message for message in messages), messages
    _assert_serves(index, towers["a"])
    with pytest.raises(StaleIndexError):
        open_index(index_dir, towers=towers["b"])  # the old index is gone, not kept beside the new one


def test_a_stale_index_is_refused_when_automatic_rebuild_is_off(towers, dataset_dir, tmp_path):
    index_dir = tmp_path / "index"
    build_index(str(dataset_dir), towers["b"], index_dir, progress=False)
    messages: list[str] = []
    settings = _settings(dataset_dir, index_dir, rebuild_stale_index=False)
    with pytest.raises(ResourceError, match="--rebuild_stale_index") as raised:
        _ensure(settings, towers["a"], messages)
    assert "towers" in str(raised.value).lower()
    assert not any("Building" in message for message in messages)
    open_index(index_dir, towers=towers["b"]).close()  # left exactly as it was


def test_a_missing_index_is_pulled_from_the_hub(towers, dataset_dir, pushed_index, tmp_path):
    hub, repos = pushed_index
    hub.calls.clear()
    messages: list[str] = []
    settings = _settings(dataset_dir, tmp_path / "index", index_repo=repos["a"])
    index = _ensure(settings, towers["a"], messages, hub_api=hub)
    assert any(message.startswith(f"Pulling the index from {repos['a']}") for message in messages), messages
    assert not any("Building" in message for message in messages), messages
    (download,) = hub.calls_named("snapshot_download")
    assert download["repo_id"] == repos["a"] and download["repo_type"] == "dataset"
    _assert_serves(index, towers["a"])


@pytest.mark.parametrize("repo", ["someone/no-such-index", "index of other towers"])
def test_a_pull_that_fails_falls_back_to_building(repo, towers, dataset_dir, pushed_index, tmp_path):
    hub, repos = pushed_index
    repo_id = repos["b"] if repo == "index of other towers" else repo
    messages: list[str] = []
    settings = _settings(dataset_dir, tmp_path / "index", index_repo=repo_id)
    index = _ensure(settings, towers["a"], messages, hub_api=hub)
    assert any(message.startswith(f"Could not use the index from {repo_id}") for message in messages), messages
    assert any(message.startswith("Building the index") for message in messages), messages
    _assert_serves(index, towers["a"])


def test_local_towers_that_do_not_load_are_an_error_not_the_demo(tmp_path):
    settings = AppSettings(towers=str(tmp_path / "no-towers-here"), index_dir=str(tmp_path / "index"))
    with pytest.raises(ResourceError, match="Could not load towers"):
        load_resources(settings, progress=lambda message: None)
    assert not (tmp_path / "index").exists()


# --------------------------------------------------------------------------------------------- --compare_towers


def _start(dataset_dir: Path, root: Path, messages: list[str], hub_api=None, **settings):
    """One start of the app's resource loading, as app.main does it, recording the progress it shows."""
    return load_resources(AppSettings(**{"dataset": str(dataset_dir), "index_dir": str(root / "index"),
                                         "cache_dir": str(root / "cache"), **settings}),
                          progress=messages.append, hub_api=hub_api)


def _towers_dir(towers) -> str:
    return towers.identity["source"]


def test_compared_towers_get_their_own_index_built_once_with_progress(towers, dataset_dir, tmp_path):
    first: list[str] = []
    resources = _start(dataset_dir, tmp_path, first, towers=_towers_dir(towers["a"]),
                       compare_towers=_towers_dir(towers["b"]))
    try:
        main, compared = resources.models
        assert resources.main is main and resources.compare is compared and resources.index is main.index
        assert compared.index is not main.index and compared.index.count("image") == TRAIN_ROWS + TEST_ROWS
        # Its own embedded index, under cache_dir/indexes, opened for the compared towers.
        assert compared.index.index_dir.parent == tmp_path / "cache" / "indexes"
        assert sum(message.startswith("Building the index") for message in first) == 2, first
        assert any(message.startswith("Loading the towers to compare with") for message in first), first
        # Hard cases: computed at load, from the test split, and cached beside the other cached things.
        assert main.hard_cases and {case.rank for case in main.hard_cases} and len(main.hard_cases) <= TEST_ROWS
        assert len(list((tmp_path / "cache" / "hard_cases").glob("hard_cases-*.json"))) == 2
    finally:
        resources.close()
    again: list[str] = []
    resources = _start(dataset_dir, tmp_path, again, towers=_towers_dir(towers["a"]),
                       compare_towers=_towers_dir(towers["b"]))
    resources.close()
    assert not any("Building" in message or "No index" in message for message in again), again


def test_compare_base_is_the_main_towers_own_base_and_same_towers_share_one_index(towers, dataset_dir, tiny_clip_dir,
                                                                                  tmp_path):
    messages: list[str] = []
    resources = _start(dataset_dir, tmp_path, messages, towers=_towers_dir(towers["a"]), compare_towers="base")
    try:
        compared = resources.compare
        assert compared.label == "base" and compared.towers.identity["kind"] == "base"
        assert compared.source == str(tiny_clip_dir)  # the base CLIP towers "a" were built from
        assert compared.results == {} and compared.loss_plot is None  # an untrained base recorded no run
    finally:
        resources.close()
    resources = _start(dataset_dir, tmp_path, messages, towers=_towers_dir(towers["a"]),
                       compare_towers=_towers_dir(towers["a"]))
    try:
        main, compared = resources.models
        assert compared.index is main.index and compared.recommender is main.recommender
        assert compared.label != main.label  # the page can tell the two columns apart
    finally:
        resources.close()


def test_without_compare_towers_nothing_extra_is_loaded(towers, dataset_dir, tmp_path):
    resources = _start(dataset_dir, tmp_path, [], towers=_towers_dir(towers["a"]))
    resources.close()
    assert len(resources.models) == 1 and resources.compare is None
    assert not (tmp_path / "cache" / "indexes").exists()


def test_compare_towers_that_cannot_be_loaded_stop_the_start_with_a_clear_error(towers, dataset_dir, tmp_path):
    with pytest.raises(ResourceError, match="Could not load --compare_towers"):
        _start(dataset_dir, tmp_path, [], towers=_towers_dir(towers["a"]),
               compare_towers=str(tmp_path / "no-towers-here"))


# --------------------------------------------------------------------------------------------- Hub metrics files

RESULTS = {"before": {"text_to_image": {"recall@10": 0.125, "mrr": 0.05}},
           "after": {"text_to_image": {"recall@10": 0.5, "mrr": 0.25}},
           "train": {"optimizer_steps": 12, "epochs": 2, "global_batch_size": 8}}


def _push_towers(hub, towers, repo_id: str, tmp_path: Path, *, with_run_files: bool) -> None:
    import shutil

    from PIL import Image

    from tweetmaker.hub import upload_folder_to_hub

    folder = tmp_path / repo_id.replace("/", "--")
    shutil.copytree(_towers_dir(towers), folder)
    if with_run_files:
        (folder / "all_results.json").write_text(json.dumps(RESULTS), encoding="utf-8")
        Image.new("RGB", (40, 20), "white").save(folder / "loss.png")
    upload_folder_to_hub(folder, repo_id, "model", api=hub)


def test_metrics_of_towers_from_the_hub_are_downloaded_and_shown(towers, dataset_dir, fake_hub, tmp_path):
    from fnmatch import fnmatch

    from tweetmaker.ui import about_markdown, build_demo

    _push_towers(fake_hub, towers["a"], "someone/towers", tmp_path, with_run_files=True)
    _push_towers(fake_hub, towers["b"], "someone/older-towers", tmp_path, with_run_files=False)
    resources = _start(dataset_dir, tmp_path, [], hub_api=fake_hub, towers="someone/towers",
                       compare_towers="someone/older-towers")
    try:
        main, compared = resources.models
        assert [model.label for model in resources.models] == ["someone/towers", "someone/older-towers"]
        for download in fake_hub.calls_named("snapshot_download"):
            patterns = download["allow_patterns"]
            assert any(fnmatch("all_results.json", p) for p in patterns)
            assert any(fnmatch("loss.png", p) for p in patterns)
        assert main.results["after"] == RESULTS["after"] and main.loss_plot.is_file()
        assert compared.results == {} and compared.loss_plot is None
        text = about_markdown(resources)
        main_part, compared_part = text.split("### Compared with")
        assert "| text_to_image recall@10 | 0.1250 | **0.5000** |" in main_part
        assert "| text_to_image mrr | 0.0500 | **0.2500** |" in main_part
        assert "12 optimizer steps" in main_part
        assert "Training metrics: not recorded" in compared_part
        page = json.dumps(build_demo(resources).get_config_file(), default=str)
        assert "Loss plot: not recorded." in page  # the compared towers' run left no loss.png
        assert page.count("Training loss") == 1  # the main one's is shown as an image
    finally:
        resources.close()
