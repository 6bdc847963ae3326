"""The offline demo (tweetmaker.demo): its typed recipe, its cached, resumable assets, and the app resources on them.

The full recipe's quality is checked by tests/test_finetune.py (the conftest's ``learned`` fixture is made by
``prepare_demo_assets``); here a much smaller recipe runs the same code path in seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from tweetmaker.demo import DEMO_RECIPE, DemoRecipe, demo_paths, prepare_demo_assets
from tweetmaker.training import parse_arguments

# The demo's path end to end at toy size: 60 tweets, a few optimizer steps.
SMALL_RECIPE = replace(DEMO_RECIPE, rows=60, per_device_train_batch_size=16, num_train_epochs=1, num_warmup_steps=0,
                       dataloader_num_workers=0)


def test_the_typed_recipe_and_its_flags_give_the_same_settings(tmp_path):
    typed = DEMO_RECIPE.arguments("data", "base", tmp_path)
    flags = parse_arguments(["--dataset", "data", "--base_model", "base", "--output_dir", str(tmp_path),
                             *DEMO_RECIPE.finetune_flags()])
    assert typed == flags
    assert typed[2].learning_rate == 1e-3 and typed[2].lr_scheduler_type == "cosine"
    assert DEMO_RECIPE.arguments("d", "b", tmp_path, num_train_epochs=1)[2].num_train_epochs == 1


def test_the_old_names_stay_importable_from_resources():
    from tweetmaker import resources

    assert resources.DEMO_ROWS == DEMO_RECIPE.rows and resources.DEMO_SEED == DEMO_RECIPE.seed
    assert resources.DEMO_TINY_CLIP == asdict(DEMO_RECIPE.tiny_clip)
    assert resources.DEMO_FINETUNE_ARGS == DEMO_RECIPE.finetune_flags()
    assert resources.prepare_demo_assets is prepare_demo_assets


def test_a_recipe_with_an_unknown_training_setting_fails_clearly(tmp_path):
    with pytest.raises(TypeError, match="learning_rat"):
        DEMO_RECIPE.arguments("d", "b", tmp_path, learning_rat=1.0)
    assert isinstance(DEMO_RECIPE, DemoRecipe) and hash(DEMO_RECIPE)  # frozen: one shared, unchangeable recipe


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    """The demo's assets at toy size, made once with a leftover of a killed first start in the way."""
    cache = tmp_path_factory.mktemp("demo_cache")
    paths = demo_paths(cache)
    leftover = paths.root / ".partial-towers"  # a training that was killed: redone, never used
    leftover.mkdir(parents=True)
    (leftover / "all_results.json").write_text("{}")
    messages: list[str] = []
    prepare_demo_assets(cache, progress=messages.append, recipe=SMALL_RECIPE)
    return cache, paths, messages


def test_prepare_makes_every_asset_then_reuses_them(small_demo):
    cache, paths, messages = small_demo
    assert [message.split(":")[0] for message in messages] == ["Offline demo"] * 3
    assert (paths.corpus / "train.csv").is_file() and (paths.dataset / "dataset_dict.json").is_file()
    assert (paths.base / "config.json").is_file() and (paths.towers / "towers.json").is_file()
    results = json.loads(paths.results.read_text())
    assert results["dataset"]["num_rows"]["train"] + results["dataset"]["num_rows"]["test"] == SMALL_RECIPE.rows
    assert results["args"]["train"]["per_device_train_batch_size"] == 16
    assert sorted(path.name for path in paths.root.iterdir()) == [".prepare.lock", "base", "corpus", "dataset",
                                                                   "towers"]
    stamp = paths.results.stat().st_mtime_ns
    again: list[str] = []
    assert prepare_demo_assets(cache, progress=again.append, recipe=SMALL_RECIPE) == paths
    assert again == [] and paths.results.stat().st_mtime_ns == stamp


def test_demo_resources_serve_the_cached_assets(small_demo):
    from tweetmaker.config import AppSettings
    from tweetmaker.resources import load_resources

    cache, paths, _ = small_demo
    messages: list[str] = []
    resources = load_resources(AppSettings(demo=True, cache_dir=str(cache)), progress=messages.append)
    try:
        assert resources.is_demo and "Synthetic offline demo" in resources.banner
        assert resources.towers_source == str(paths.towers) and resources.results["train"]["optimizer_steps"] > 0
        assert resources.index.count("image") == SMALL_RECIPE.rows
        assert not any("training" in message for message in messages)  # reused, not trained again
    finally:
        resources.close()
