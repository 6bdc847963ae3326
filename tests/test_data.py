"""Loading and validating the tweets data set, hashtag parsing, and defensive image decoding."""

from __future__ import annotations

import shutil

import datasets
import numpy as np
import pytest

from tests import image_inputs
from tweetmaker.data import (
    DatasetSchemaError,
    ImageDecodeError,
    attribute_columns,
    decode_image,
    format_hashtags,
    load_tweets,
    normalize_hashtag,
    parse_hashtags,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("#AI #ai #MachineLearning", ["AI", "MachineLearning"]),
        ("#AI,#ML;  #DeepLearning", ["AI", "ML", "DeepLearning"]),
        ("ai ml #AI", ["ai", "ml"]),
        ("", []),
        (None, []),
        (float("nan"), []),
        ("#KI #künstlicheIntelligenz #KÜNSTLICHEINTELLIGENZ", ["KI", "künstlicheIntelligenz"]),
        ("#인공지능 #AI", ["인공지능", "AI"]),
    ],
)
def test_parse_hashtags_dedupes_case_insensitively_and_keeps_first_spelling(raw, expected):
    assert parse_hashtags(raw) == expected


def test_normalize_and_format_hashtags():
    assert normalize_hashtag("#MachineLearning") == "machinelearning"
    assert format_hashtags(["AI", "#ML"]) == "#AI #ML"


def test_load_save_to_disk_directory(tweets_dir):
    tweets = load_tweets(tweets_dir)
    assert set(tweets) == {"train", "test"}
    assert tweets["train"].num_rows + tweets["test"].num_rows == 240
    assert attribute_columns(tweets) == ["attr_topic", "attr_color", "attr_count", "attr_background"]
    test = load_tweets(tweets_dir, split="test")
    assert isinstance(test, datasets.Dataset) and test.num_rows == 48
    with pytest.raises(KeyError, match="validation"):
        load_tweets(tweets_dir, split="validation")


def test_load_parquet_directory_matches_save_to_disk(tweets_dir, tmp_path):
    saved = load_tweets(tweets_dir)
    for split, part in saved.items():
        (tmp_path / "data").mkdir(exist_ok=True)
        part.to_parquet(str(tmp_path / "data" / f"{split}-00000-of-00001.parquet"))
    loaded = load_tweets(tmp_path)
    assert set(loaded) == {"train", "test"}
    assert loaded["test"]["tweet_id"] == saved["test"]["tweet_id"]
    assert isinstance(loaded["test"].features["image"], datasets.Image)
    assert np.array_equal(np.asarray(loaded["test"][0]["image"]), np.asarray(saved["test"][0]["image"]))


def test_load_hub_id_goes_through_load_dataset(monkeypatch, tweets_dir):
    # The Hub cannot be reached here: stand in for the download itself, keep TweetMaker's code path real.
    calls = {}

    def fake_load_dataset(repo_id, revision=None, token=None):
        calls.update(repo_id=repo_id, revision=revision, token=token)
        return datasets.load_from_disk(str(tweets_dir))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    tweets = load_tweets("someone/ai-tweets", revision="v1.0", token="secret")
    assert calls == {"repo_id": "someone/ai-tweets", "revision": "v1.0", "token": "secret"}
    assert set(tweets) == {"train", "test"}


def test_unreachable_hub_gives_a_clear_error():
    with pytest.raises(ConnectionError, match="local directory"):
        load_tweets("nobody/no-such-tweets-dataset")


def test_missing_column_names_the_column_and_the_source(tweets_dir, tmp_path):
    broken = load_tweets(tweets_dir).remove_columns("hashtag_list")
    broken.save_to_disk(str(tmp_path / "broken"))
    with pytest.raises(DatasetSchemaError, match=r"hashtag_list.*") as error:
        load_tweets(tmp_path / "broken")
    assert str(tmp_path / "broken") in str(error.value)


def test_image_column_must_be_an_image_feature(tweets_dir, tmp_path):
    tweets = load_tweets(tweets_dir, split="test").cast_column("image", datasets.Image(decode=False))
    paths = [row["path"] for row in tweets["image"]]
    plain = tweets.remove_columns("image").add_column("image", paths)
    plain.save_to_disk(str(tmp_path / "plain"))
    with pytest.raises(DatasetSchemaError, match="datasets.Image"):
        load_tweets(tmp_path / "plain")


def test_missing_directory_and_non_dataset_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_dataset"):
        load_tweets(tmp_path / "nothing" / "here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetSchemaError, match="neither"):
        load_tweets(tmp_path / "empty")
    shutil.rmtree(tmp_path / "empty")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (image_inputs.truncated_jpeg, "truncated or corrupt"),
        (image_inputs.truncated_png, "truncated or corrupt|damaged"),
        (image_inputs.not_an_image, "not an image"),
        (image_inputs.svg_bytes, "not an image"),
        (image_inputs.bomb_png, "pixel limit"),
        (lambda: b"", "empty"),
    ],
)
def test_bad_images_raise_clear_errors(make, message):
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(make())


@pytest.mark.parametrize(
    ("make", "size"),
    [
        (image_inputs.cmyk_jpeg, (200, 150)),
        (image_inputs.sixteen_bit_png, (200, 150)),
        (image_inputs.palette_with_transparency, (200, 150)),
        (image_inputs.animated_gif, (200, 150)),
        (image_inputs.tiny_png, (1, 1)),
        (image_inputs.very_wide_png, (10_000, 10)),
        (image_inputs.exif_rotated_jpeg, (100, 200)),  # EXIF orientation applied: portrait now
    ],
)
def test_awkward_images_decode_to_rgb(make, size):
    image = decode_image(make())
    assert image.mode == "RGB" and image.size == size


def test_sixteen_bit_image_keeps_its_contrast():
    pixels = np.asarray(decode_image(image_inputs.sixteen_bit_png()))
    assert pixels.min() < 100 and pixels.max() > 200  # not clipped to white


def test_animated_gif_uses_first_frame():
    pixels = np.asarray(decode_image(image_inputs.animated_gif())).reshape(-1, 3).astype(int)
    blue = (np.abs(pixels - [35, 75, 215]).sum(axis=1) < 60).mean()
    red = (np.abs(pixels - [215, 30, 35]).sum(axis=1) < 60).mean()
    assert blue > 0.02 and red < 0.005


def test_decode_from_path_and_pil(tmp_path):
    path = tmp_path / "picture.jpg"
    path.write_bytes(image_inputs.jpeg_bytes())
    assert decode_image(path).size == (200, 150)
    assert decode_image(image_inputs.picture().convert("RGBA")).mode == "RGB"
    with pytest.raises(ImageDecodeError, match="does not exist"):
        decode_image(tmp_path / "missing.jpg")
