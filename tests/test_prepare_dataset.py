"""The conversion script (train/prepare_dataset.py over tweetmaker.convert.prepare_dataset) on a synthetic corpus
with injected bad rows, its atomic save, and its Hub push."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from train import prepare_dataset
from tweetmaker.data import decode_image, load_tweets
from tweetmaker.synthetic import generate_corpus


@pytest.fixture(scope="module")
def corpus_with_bad_rows(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bad_corpus")
    summary = generate_corpus(directory, rows=60, seed=5, bad_rows=True)
    return directory, summary


def _csv_rows(directory, split):
    with open(directory / f"{split}.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_good_rows_kept_bad_rows_reported_counts_add_up(corpus_with_bad_rows, tmp_path, capsys):
    source, summary = corpus_with_bad_rows
    output = tmp_path / "out"
    report = prepare_dataset.main(["--source_dir", str(source), "--output_dir", str(output)])
    tweets = load_tweets(output)
    on_disk = json.loads((output / "conversion_report.json").read_text())
    bad_ids = set(summary["bad_rows"])
    assert {entry["tweet_id"] for entry in on_disk["skipped"]} == bad_ids
    assert all(entry["reason"] for entry in on_disk["skipped"])
    for split in ("train", "test"):
        rows = _csv_rows(source, split)
        good = [row for row in rows if row["id"] not in bad_ids]
        assert tweets[split]["tweet_id"] == [row["id"] for row in good]
        assert report.rows_read[split] == len(rows)
        assert report.kept[split] + sum(entry["split"] == split for entry in on_disk["skipped"]) == len(rows)
        # Blank text and hashtags are kept as empty strings, not dropped.
        blank = tweets[split][tweets[split]["tweet_id"].index(f"blank-{split}")]
        assert blank["text"] == "" and blank["hashtag_list"] == []
    reasons = {entry["tweet_id"].split("-", 2)[2]: entry["reason"] for entry in on_disk["skipped"]}
    assert "escape" in reasons["path_traversal"] and "absolute" in reasons["absolute_path"]
    assert "missing" in reasons["missing_file"] and "pixel limit" in reasons["decompression_bomb"]
    assert "truncated" in reasons["truncated_jpeg"] and "not an image" in reasons["not_an_image"]
    printed = capsys.readouterr().out
    assert "skipped" in printed and "conversion_report.json" in printed


def test_images_round_trip_to_the_same_pixels(corpus_with_bad_rows, tmp_path):
    source, _ = corpus_with_bad_rows
    prepare_dataset.main(["--source_dir", str(source), "--output_dir", str(tmp_path / "out")])
    test = load_tweets(tmp_path / "out", split="test")
    rows = {row["id"]: row for row in _csv_rows(source, "test")}
    for record in test:
        original = decode_image(source / "images" / rows[record["tweet_id"]]["image_id"])
        assert np.array_equal(np.asarray(decode_image(record["image"])), np.asarray(original))


def test_metadata_columns_are_typed(tweets_dir):
    features = load_tweets(tweets_dir, split="train").features
    assert features["likes"].dtype == "int64" and features["attr_count"].dtype == "int64"
    assert features["date"].dtype == "timestamp[s]" and features["username"].dtype == "string"


def test_rerun_replaces_output_atomically(corpus_with_bad_rows, tmp_path):
    source, _ = corpus_with_bad_rows
    output = tmp_path / "out"
    prepare_dataset.main(["--source_dir", str(source), "--output_dir", str(output)])
    first = load_tweets(output)["train"]["tweet_id"]
    prepare_dataset.main(["--source_dir", str(source), "--output_dir", str(output)])
    assert load_tweets(output)["train"]["tweet_id"] == first
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no staging leftovers


def test_a_save_that_fails_half_way_leaves_the_previous_output(corpus_with_bad_rows, tmp_path, monkeypatch):
    import datasets

    source, _ = corpus_with_bad_rows
    output = tmp_path / "out"
    prepare_dataset.main(["--source_dir", str(source), "--output_dir", str(output)])
    first = load_tweets(output)["test"]["tweet_id"]
    real_save = datasets.DatasetDict.save_to_disk

    def save_then_fail(self, path, *args, **kwargs):
        real_save(self, path, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", save_then_fail)
    with pytest.raises(OSError, match="No space"):
        prepare_dataset.main(["--source_dir", str(source), "--output_dir", str(output)])
    assert load_tweets(output)["test"]["tweet_id"] == first
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # the staging copy is gone too


def test_missing_csv_column_is_a_clear_error(tmp_path):
    generate_corpus(tmp_path / "src", rows=10, seed=0)
    rows = _csv_rows(tmp_path / "src", "train")
    with open(tmp_path / "src" / "train.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[name for name in rows[0] if name != "hashtags"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match="hashtags"):
        prepare_dataset.main(["--source_dir", str(tmp_path / "src"), "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_not_a_kaggle_layout_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="train.csv"):
        prepare_dataset.main(["--source_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])


def test_push_to_hub_sends_parquet_shards_card_and_report(corpus_with_bad_rows, tmp_path, fake_hub):
    source, summary = corpus_with_bad_rows
    prepare_dataset.main(
        ["--source_dir", str(source), "--output_dir", str(tmp_path / "out"), "--push_to_hub", "me/ai-tweets",
         "--private"],
        hub_api=fake_hub,
    )
    (created,) = fake_hub.calls_named("create_repo")
    assert created["repo_id"] == "me/ai-tweets" and created["repo_type"] == "dataset" and created["private"]
    (uploaded,) = fake_hub.calls_named("upload_folder")
    assert uploaded["repo_type"] == "dataset"
    remote = fake_hub.repo_dir("me/ai-tweets", "dataset")
    names = sorted(str(path.relative_to(remote)) for path in remote.rglob("*") if path.is_file())
    assert names == ["README.md", "conversion_report.json", "data/test-00000-of-00001.parquet",
                     "data/train-00000-of-00001.parquet"]
    card = (remote / "README.md").read_text()
    assert card.startswith("---\n") and "path: data/train-*.parquet" in card
    local = load_tweets(tmp_path / "out")
    for split, part in local.items():
        assert f"| {split} | {part.num_rows} |" in card
    assert "`hashtag_list`" in card and "skipped: 12" in card
    # What was sent loads back through the parquet path of load_tweets, images included.
    pushed = load_tweets(remote)
    assert pushed["test"]["tweet_id"] == local["test"]["tweet_id"]
    assert np.array_equal(np.asarray(pushed["test"][0]["image"]), np.asarray(local["test"][0]["image"]))
