"""``is_local_source``: one answer, for towers, data sets and indexes, to "local path or Hub repo id?"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tweetmaker.sources import is_local_source


@pytest.mark.parametrize("source", ["name", "owner/name", "tweetmaker/ai-tweets-index",
                                    "openai/clip-vit-base-patch32"])
def test_hub_ids_are_not_local(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of that name here
    assert not is_local_source(source)


@pytest.mark.parametrize("source", ["./x", "../x", ".", "/x", "/tmp/towers", "~/x", "~", "a/b/c", "owner/name/sub",
                                    "C:\\x", "c:/towers", "D:x", "a\\b", "towers\\"])
def test_paths_are_local_even_when_they_do_not_exist(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_local_source(source)


def test_an_existing_relative_directory_is_local_even_if_it_looks_like_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "towers").mkdir()
    (tmp_path / "owner" / "name").mkdir(parents=True)
    assert is_local_source("towers") and is_local_source("owner/name")
    assert not is_local_source("other")


def test_a_path_object_is_always_local_and_an_empty_string_never():
    assert is_local_source(Path("name")) and is_local_source(Path("owner/name"))
    assert not is_local_source("")
