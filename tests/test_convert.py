"""``tweetmaker.convert``'s pieces, one at a time: image paths, tweet ids, metadata typing, and the row loop.

The whole conversion (``train/prepare_dataset.py`` on a corpus with bad rows) is tested in test_prepare_dataset.py;
here each function is held to its own contract, including the cases a generated corpus does not produce.
"""

from __future__ import annotations

import math
import os
import re
from datetime import datetime

import datasets
import pandas as pd
import pytest

from tests import image_inputs
from tweetmaker.convert import (
    ConversionReport,
    _clean_metadata,
    iter_split_rows,
    metadata_features,
    resolve_image_path,
    stable_tweet_id,
)
from tweetmaker.data import ImageDecodeError


@pytest.fixture
def images_dir(tmp_path):
    images = tmp_path / "source" / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.jpg").write_bytes(image_inputs.jpeg_bytes())
    (images / "b.png").write_bytes(image_inputs.tiny_png())
    (images / "sub" / "c.jpg").write_bytes(image_inputs.jpeg_bytes())
    (tmp_path / "secret.jpg").write_bytes(image_inputs.jpeg_bytes())
    return images


# ------------------------------------------------------------------------------------------------ image paths


def test_resolve_image_path_finds_a_file_with_or_without_its_extension(images_dir):
    root = images_dir.resolve()
    assert resolve_image_path(images_dir, "a.jpg") == root / "a.jpg"
    assert resolve_image_path(images_dir, " a.jpg ") == root / "a.jpg"
    assert resolve_image_path(images_dir, "b") == root / "b.png"  # Kaggle ids often come without one
    assert resolve_image_path(images_dir, "sub/c.jpg") == root / "sub" / "c.jpg"


@pytest.mark.parametrize(("image_id", "reason"), [
    ("../secret.jpg", "would escape images/"),
    ("sub/../../secret.jpg", "would escape images/"),
    ("..\\secret.jpg", "would escape images/"),
    ("sub/../a.jpg", "would escape images/"),  # '..' is refused even when it would land inside
    ("/etc/passwd", "absolute paths are not allowed"),
    ("\\server\\share\\x.jpg", "absolute paths are not allowed"),
    ("C:\\images\\a.jpg", "absolute paths are not allowed"),
    ("c:a.jpg", "absolute paths are not allowed"),
])
def test_resolve_image_path_refuses_names_that_leave_images(images_dir, image_id, reason):
    with pytest.raises(ImageDecodeError, match=f"unsafe image_id .*{re.escape(reason)}"):
        resolve_image_path(images_dir, image_id)


def test_resolve_image_path_refuses_a_symlink_that_leads_out(images_dir):
    os.symlink(images_dir.parent.parent / "secret.jpg", images_dir / "link.jpg")
    os.symlink(images_dir.parent.parent, images_dir / "up")
    for image_id in ("link.jpg", "up/secret.jpg"):
        with pytest.raises(ImageDecodeError, match="resolves outside images/"):
            resolve_image_path(images_dir, image_id)


@pytest.mark.parametrize(("image_id", "reason"), [("", "empty image_id"), ("   ", "empty image_id"),
                                                  ("nothing.jpg", "missing image file 'nothing.jpg'"),
                                                  ("nothing", "missing image file"), ("sub", "missing image file")])
def test_resolve_image_path_says_what_is_missing(images_dir, image_id, reason):
    with pytest.raises(ImageDecodeError, match=reason):
        resolve_image_path(images_dir, image_id)


# ------------------------------------------------------------------------------------------------ tweet ids


def test_stable_tweet_id_prefers_the_csvs_own_id():
    assert stable_tweet_id("train", {"tweet_id": " 123 ", "id": "9"}) == "123"
    assert stable_tweet_id("train", {"tweet_id": 1234567.0}) == "1234567"  # a pandas float column, not "1234567.0"
    assert stable_tweet_id("train", {"tweet_id": "v1.0"}) == "v1.0"
    assert stable_tweet_id("train", {"tweet_id": math.nan, "id": "abc"}) == "abc"
    assert stable_tweet_id("train", {"tweet_id": "  ", "id": 7}) == "7"


def test_stable_tweet_id_without_an_id_hashes_the_content_and_names_the_split():
    row = {"image_id": "a.jpg", "text": "two robots", "hashtags": "#AI", "likes": 3}
    first = stable_tweet_id("train", row)
    assert re.fullmatch(r"train-[0-9a-f]{16}", first)
    assert stable_tweet_id("train", {**row, "likes": 99, "id": None}) == first  # engagement changes, the id does not
    assert stable_tweet_id("test", row) == "test-" + first.split("-")[1]
    assert stable_tweet_id("train", {**row, "text": "three robots"}) != first


# ------------------------------------------------------------------------------------------------ metadata


def test_metadata_features_types_extra_columns_from_every_split():
    train = pd.DataFrame({
        "id": [1, 2], "image_id": ["a", "b"], "text": ["x", "y"], "hashtags": ["", ""],
        "likes": [3, None], "score": [0.5, 1.0], "verified": [True, False],
        "date": ["2023-01-02 10:00:00", "2023-02-03 04:05:06"], "created_at": [1672650000, 1672650001],
        "timezone": ["x", "y"], "username": ["ann", "bob"], "empty": [None, None],
    })
    test = pd.DataFrame({"image_id": ["c"], "text": ["z"], "hashtags": [""], "likes": [4], "lang": ["en"]})
    features = metadata_features([train, test])
    assert {name: feature.dtype for name, feature in features.items()} == {
        "likes": "int64",  # whole numbers, though a missing value made the column float
        "score": "float64",
        "verified": "bool",
        "date": "timestamp[s]",
        "created_at": "int64",  # a date-like name with numbers stays a number
        "timezone": "string",  # a date-like name whose values are not dates
        "username": "string",
        "empty": "string",
        "lang": "string",  # a column only one split has
    }


@pytest.mark.parametrize(("value", "dtype", "expected"), [
    (math.nan, "int64", None), (None, "float64", None), (math.nan, "string", ""), (None, "timestamp[s]", None),
    ("12", "int64", 12), (12.0, "int64", 12), ("1.5", "float64", 1.5), (1, "bool", True), (42, "string", "42"),
    ("2023-01-02T03:04:05+02:00", "timestamp[s]", datetime(2023, 1, 2, 1, 4, 5)),  # UTC, without a zone
    ("2023-01-02", "timestamp[s]", datetime(2023, 1, 2)),
    ("not a date", "timestamp[s]", None),
])
def test_clean_metadata_gives_each_type_its_value_and_missing_its_empty(value, dtype, expected):
    assert _clean_metadata(value, datasets.Value(dtype)) == expected


# ------------------------------------------------------------------------------------------------ the row loop


def test_iter_split_rows_keeps_good_rows_and_reports_each_bad_one_with_its_reason(images_dir):
    source = images_dir.parent
    (images_dir / "notes.jpg").write_bytes(image_inputs.not_an_image())
    (images_dir / "cut.jpg").write_bytes(image_inputs.truncated_jpeg())
    (images_dir / "big.png").write_bytes(image_inputs.very_wide_png())
    frame = pd.DataFrame({
        "id": ["t1", "t2", "t1", "t4", "t5", "t6", "t7", "t8", "seen"],
        "image_id": ["a.jpg", "b", "a.jpg", "gone.jpg", "../secret.jpg", "notes.jpg", "cut.jpg", "big.png", "a.jpg"],
        "text": [" two robots ", math.nan, "copy", "x", "x", "x", "x", "x", "x"],
        "hashtags": ["#AI #ai, #Robots", math.nan, "", "", "", "", "", "", ""],
        "likes": [5, None, 1, 1, 1, 1, 1, 1, 1],
    })
    metadata = {"likes": datasets.Value("int64")}
    report = ConversionReport(source_dir=str(source))
    seen = {"seen"}  # an id an earlier split already used
    rows = list(iter_split_rows(source, "train", frame, metadata, report, seen, max_image_pixels=50_000))

    assert [row["tweet_id"] for row in rows] == ["t1", "t2"] and seen == {"seen", "t1", "t2"}
    first, second = rows
    assert first["text"] == "two robots" and first["hashtags"] == "#AI #ai, #Robots"
    assert first["hashtag_list"] == ["AI", "Robots"] and first["likes"] == 5
    assert first["image"] == {"bytes": (images_dir / "a.jpg").read_bytes(), "path": "a.jpg"}
    assert second["text"] == "" and second["hashtag_list"] == [] and second["likes"] is None
    assert second["image"]["path"] == "b.png"

    reasons = {entry["tweet_id"]: (entry["row"], entry["image_id"], entry["reason"]) for entry in report.skipped}
    assert set(reasons) == {"t1", "t4", "t5", "t6", "t7", "t8", "seen"}
    assert reasons["t1"][:2] == ("2", "a.jpg") and "duplicate tweet id 't1'" in reasons["t1"][2]
    assert "missing image file" in reasons["t4"][2]
    assert "escape" in reasons["t5"][2]
    assert "not an image" in reasons["t6"][2]
    assert "truncated or corrupt" in reasons["t7"][2]
    assert "pixel limit" in reasons["t8"][2]
    assert "duplicate" in reasons["seen"][2]
    assert all(entry["split"] == "train" for entry in report.skipped)
    assert report.rows_read == {"train": 9} and report.kept == {"train": 2}
    assert report.as_dict()["skipped_count"] == 7
    summary = report.summary()
    assert "train: 9 rows read, 2 kept, 7 skipped" in summary and "skipped 1: missing image file" in summary
