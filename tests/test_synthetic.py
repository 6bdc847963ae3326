"""The synthetic twin: deterministic, in the Kaggle layout, and its attribute columns match what is drawn."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tests.helpers import tree_digest
from tweetmaker.data import decode_image, parse_hashtags
from tweetmaker.synthetic import COLORS, TOPIC_TAGS, TOPIC_WORDS, generate_corpus, main


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate_corpus(tmp_path / "a", rows=40, seed=7, bad_rows=True)
    generate_corpus(tmp_path / "b", rows=40, seed=7, bad_rows=True)
    generate_corpus(tmp_path / "c", rows=40, seed=8)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert (tmp_path / "a" / "train.csv").read_bytes() != (tmp_path / "c" / "train.csv").read_bytes()


def test_kaggle_layout_and_split_sizes(tmp_path):
    summary = main(["--output_dir", str(tmp_path), "--rows", "50", "--seed", "1", "--test_fraction", "0.2"])
    assert summary["rows"] == {"train": 40, "test": 10}
    for split in ("train", "test"):
        with open(tmp_path / f"{split}.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert {"image_id", "text", "hashtags", "likes", "date"} <= set(rows[0])
        for row in rows:
            assert (tmp_path / "images" / row["image_id"]).is_file()


PALETTE = np.array(list(COLORS.values()))


def _color_share(pixels: np.ndarray, rgb: tuple[int, int, int]) -> float:
    """Share of pixels whose nearest palette colour is ``rgb`` (and which are close to it)."""
    distance = np.abs(pixels.astype(int)[..., None, :] - PALETTE).sum(axis=-1)
    nearest = PALETTE[distance.argmin(axis=-1)]
    return float(((nearest == np.array(rgb)).all(axis=-1) & (distance.min(axis=-1) < 60)).mean())


def test_attribute_columns_agree_with_pictures_and_words(tmp_path):
    generate_corpus(tmp_path, rows=120, seed=3)
    with open(tmp_path / "train.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    modes = set()
    for row in rows:
        image = decode_image(tmp_path / "images" / row["image_id"])
        # Nearest-neighbour downscaling keeps colours exact and makes the per-pixel check cheap.
        pixels = np.asarray(image.resize((image.width // 4, image.height // 4), resample=0))
        shares = {name: _color_share(pixels, rgb) for name, rgb in COLORS.items()}
        # The drawn colour covers a real part of the picture and beats every other palette colour.
        assert shares[row["attr_color"]] > 0.02, (row, shares)
        assert max(shares, key=shares.get) == row["attr_color"], (row, shares)
        # Every motif sits in its own grid cell: each occupied cell holds the colour, empty ones do not.
        count = int(row["attr_count"])
        height, width = pixels.shape[:2]
        columns, grid_rows = (1 if count == 1 else 2), (1 if count <= 2 else 2)
        for index in range(columns * grid_rows):
            column, grid_row = index % columns, index // columns
            cell = pixels[grid_row * height // grid_rows:(grid_row + 1) * height // grid_rows,
                          column * width // columns:(column + 1) * width // columns]
            share = _color_share(cell, COLORS[row["attr_color"]])
            assert (share > 0.01) == (index < count), (row, index, share)
        # The text names the topic (some synonym); the hashtags carry at least one tag of the topic.
        words = [w for pair in TOPIC_WORDS[row["attr_topic"]] for w in pair]
        assert any(word.lower() in row["text"].lower() for word in words), row
        tags = {tag.casefold() for tag in parse_hashtags(row["hashtags"])}
        assert tags & {tag.casefold() for tag in TOPIC_TAGS[row["attr_topic"]]}, row
        with open(tmp_path / "images" / row["image_id"], "rb") as handle:
            from PIL import Image

            modes.add(Image.open(handle).mode)
    assert {"RGB", "P"} <= modes  # a mix of modes, like real tweet images


def test_bad_rows_are_listed(tmp_path):
    summary = generate_corpus(tmp_path, rows=20, seed=0, bad_rows=True)
    kinds = sorted(set(summary["bad_rows"].values()))
    assert kinds == sorted(["missing_file", "truncated_jpeg", "not_an_image", "path_traversal",
                            "decompression_bomb", "absolute_path"])
    assert len(summary["bad_rows"]) == 2 * len(kinds)


@pytest.mark.parametrize("rows", [0, 1])
def test_too_few_rows_is_a_clear_error(tmp_path, rows):
    with pytest.raises(ValueError, match="at least 2"):
        generate_corpus(tmp_path, rows=rows)
