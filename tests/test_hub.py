"""``tweetmaker.hub`` against the Hub stand-in (tests/hub_fake.py): the token, uploads, and the data set layout."""

from __future__ import annotations

import logging
import math

import datasets
import pyarrow.parquet as pq
import pytest

from tweetmaker.hub import get_token, make_api, upload_folder_to_hub, write_dataset_folder

SECRET = "hf_secret_value_that_must_not_leak"


@pytest.fixture
def no_token_env(monkeypatch):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_get_token_explicit_then_hf_token_then_the_old_variable_then_none(no_token_env):
    monkeypatch = no_token_env
    assert get_token() is None and get_token("") is None
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "old")
    assert get_token() == "old"
    monkeypatch.setenv("HF_TOKEN", "")  # set but empty: skipped
    assert get_token() == "old"
    monkeypatch.setenv("HF_TOKEN", "new")
    assert get_token() == "new"
    assert get_token("explicit") == "explicit"


def test_make_api_uses_the_injected_api_or_a_real_client_with_the_token(fake_hub, no_token_env):
    assert make_api("ignored", api=fake_hub) is fake_hub
    no_token_env.setenv("HF_TOKEN", "from-env")
    assert make_api().token == "from-env"  # HfApi stores it; constructing one sends nothing
    assert make_api("explicit").token == "explicit"


def _folder(tmp_path, name="artefact"):
    folder = tmp_path / name
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text("# card\n")
    (folder / "sub" / "weights.bin").write_bytes(b"\x00\x01")
    return folder


@pytest.mark.parametrize(("repo_type", "url"), [
    ("model", "https://huggingface.co/someone/thing"),
    ("dataset", "https://huggingface.co/datasets/someone/thing"),
    ("space", "https://huggingface.co/spaces/someone/thing"),
])
def test_upload_creates_the_repo_and_sends_the_folder_for_each_repo_type(fake_hub, tmp_path, repo_type, url, caplog):
    caplog.set_level(logging.DEBUG)
    folder = _folder(tmp_path)
    returned = upload_folder_to_hub(folder, "someone/thing", repo_type, private=True, token=SECRET,
                                    commit_message="first", api=fake_hub)
    assert returned == url
    (created,) = fake_hub.calls_named("create_repo")
    assert created["repo_type"] == repo_type and created["private"] is True and created["exist_ok"] is True
    (uploaded,) = fake_hub.calls_named("upload_folder")
    assert uploaded["commit_message"] == "first" and uploaded["revision"] is None
    remote = fake_hub.repo_dir("someone/thing", repo_type)
    assert (remote / "README.md").read_text() == "# card\n"
    assert (remote / "sub" / "weights.bin").read_bytes() == b"\0\1"
    # A second upload to the same repo is an update, not an error; the token is never logged.
    upload_folder_to_hub(folder, "someone/thing", repo_type, revision="main", api=fake_hub)
    assert fake_hub.calls_named("upload_folder")[-1]["revision"] == "main"
    assert "someone/thing" in caplog.text and SECRET not in caplog.text and SECRET not in repr(fake_hub.calls)


def test_a_bare_name_is_a_repo_id_too(fake_hub, tmp_path):
    upload_folder_to_hub(_folder(tmp_path), "thing", "model", api=fake_hub)
    assert (fake_hub.repo_dir("thing", "model") / "README.md").is_file()


@pytest.mark.parametrize(("repo_id", "repo_type", "error", "message"), [
    ("someone/thing", "models", ValueError, "repo_type must be 'model', 'dataset' or 'space', not 'models'"),
    ("someone/thing", None, ValueError, "repo_type must be"),
    ("", "model", ValueError, "is not a Hub repo id; use 'name' or 'owner/name'"),
    ("a/b/c", "dataset", ValueError, "'a/b/c' is not a Hub repo id"),
])
def test_bad_repo_type_or_id_is_refused_before_anything_is_sent(fake_hub, tmp_path, repo_id, repo_type, error,
                                                                 message):
    with pytest.raises(error, match=message):
        upload_folder_to_hub(_folder(tmp_path), repo_id, repo_type, api=fake_hub)
    assert fake_hub.calls == []


def test_a_missing_folder_or_a_file_is_refused_before_anything_is_sent(fake_hub, tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing to upload: .*missing is not a directory"):
        upload_folder_to_hub(tmp_path / "missing", "someone/thing", "model", api=fake_hub)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="Nothing to upload"):
        upload_folder_to_hub(tmp_path / "file.txt", "someone/thing", "model", api=fake_hub)
    assert fake_hub.calls == []


def _tweets(rows: int, text_size: int = 10) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"tweet_id": [f"t{i}" for i in range(rows)],
                                       "text": [f"{i:04d}" + "x" * text_size for i in range(rows)]})


def _read(paths) -> list[str]:
    return [value for path in paths for value in pq.read_table(path).column("tweet_id").to_pylist()]


def test_dataset_folder_has_one_parquet_file_per_split_a_card_and_the_extra_files(tmp_path):
    splits = datasets.DatasetDict({"train": _tweets(12), "test": _tweets(5)})
    folder = write_dataset_folder(splits, tmp_path / "out", "---\nlicense: mit\n---\n# Tweets\n",
                                  extra_files={"conversion_report.json": "{}"})
    assert sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()) == [
        "README.md", "conversion_report.json", "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]
    assert (folder / "README.md").read_text().startswith("---\nlicense: mit")
    assert _read([folder / "data" / "train-00000-of-00001.parquet"]) == splits["train"]["tweet_id"]
    # The layout is the one `datasets` (and so the Hub's viewer) reads as splits.
    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert {name: part["tweet_id"] for name, part in loaded.items()} == {
        name: part["tweet_id"] for name, part in splits.items()}


def test_a_split_over_the_shard_size_is_cut_into_ordered_shards(tmp_path):
    train, test = _tweets(40, text_size=1000), _tweets(3)
    limit = 8_000
    shards = math.ceil(train.data.nbytes / limit)
    assert shards >= 3  # the test means something only if train must be cut
    folder = write_dataset_folder(datasets.DatasetDict({"train": train, "test": test}), tmp_path / "out", "# card",
                                  max_shard_bytes=limit)
    names = sorted(path.name for path in (folder / "data").glob("train-*.parquet"))
    assert names == [f"train-{i:05d}-of-{shards:05d}.parquet" for i in range(shards)]
    assert _read([folder / "data" / name for name in names]) == train["tweet_id"]  # every row, once, in order
    assert [path.name for path in (folder / "data").glob("test-*")] == ["test-00000-of-00001.parquet"]
