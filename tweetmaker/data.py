"""Load and validate the tweets data set, and decode images defensively.

The data set is a ``datasets.DatasetDict`` with ``train`` and ``test`` splits, made by
``train/prepare_dataset.py`` from the Kaggle layout. Every split carries the columns in
``REQUIRED_COLUMNS``; metadata (engagement, date, author) and, for the synthetic twin, latent
``attr_*`` columns ride along.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweetmaker.errors import InvalidInputError, TweetMakerError
from tweetmaker.sources import is_local_source

if TYPE_CHECKING:  # keep `import tweetmaker.data` cheap: datasets and PIL load on first use
    import datasets
    from PIL import Image

REQUIRED_COLUMNS = ("tweet_id", "text", "hashtags", "hashtag_list", "image")
ATTRIBUTE_PREFIX = "attr_"
# Images above this many pixels are refused before decoding: a 40-megapixel photo is far beyond any tweet
# image, and a small file claiming more is almost certainly a decompression bomb.
MAX_IMAGE_PIXELS = 40_000_000
# Formats a tweet image may come in. Anything else (SVG, PDF, PSD, ...) is refused: Pillow plugins for rarer
# formats are a common source of parser bugs, and the towers were never trained on them anyway.
ALLOWED_IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "MPO", "TIFF")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
_HASHTAG_TOKEN = re.compile(r"#?([^\W_][\w]*)", re.UNICODE)


class ImageDecodeError(InvalidInputError):
    """An image could not be used; the message says why and what to do, in words fit for a user."""


class DatasetNotFoundError(TweetMakerError, FileNotFoundError):
    """No data set at the given local path."""


class DatasetSchemaError(InvalidInputError):
    """A data set lacks a column TweetMaker needs, or a column has the wrong type."""


def parse_hashtags(raw: str | None) -> list[str]:
    """Split a raw hashtag string into distinct tags, keeping the first spelling of each.

    ``"#AI #ai, #MachineLearning"`` -> ``["AI", "MachineLearning"]``. Tags compare case-insensitively
    (``normalize_hashtag``) so ``#AI`` and ``#ai`` are one tag, but the original case is kept for display.
    """
    if not raw or not isinstance(raw, str):
        return []
    tags: list[str] = []
    seen: set[str] = set()
    for match in _HASHTAG_TOKEN.finditer(raw):
        tag = match.group(1)
        key = normalize_hashtag(tag)
        if key not in seen:
            seen.add(key)
            tags.append(tag)
    return tags


def normalize_hashtag(tag: str) -> str:
    """The matching key of a tag: no leading ``#``, case-folded (``#MachineLearning`` -> ``machinelearning``)."""
    return tag.lstrip("#").casefold()


def format_hashtags(tags: Sequence[str]) -> str:
    """Tags as a copy-ready string: ``["AI", "ML"]`` -> ``"#AI #ML"``."""
    return " ".join(f"#{tag.lstrip('#')}" for tag in tags)


def decode_image(source: bytes | str | Path | Image.Image, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode an image defensively and return it as RGB.

    Accepts raw bytes, a file path or a PIL image. Refuses formats outside ``ALLOWED_IMAGE_FORMATS``,
    images above ``max_pixels`` (checked from the header, before any pixel is decoded), and truncated or
    corrupt files. Applies the EXIF orientation, keeps the first frame of an animation, composites
    transparency onto white and maps any mode (CMYK, 16-bit, palette, grayscale) to 8-bit RGB.
    Raises ``ImageDecodeError`` with a message that says what was wrong and what to do.
    """
    from PIL import Image, ImageFile, UnidentifiedImageError

    # A truncated file must fail loudly rather than decode into a half-grey picture.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    if isinstance(source, Image.Image):
        image = source
    else:
        data = _read_image_bytes(source)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise ImageDecodeError(
                f"This image claims more pixels than the {max_pixels:,}-pixel limit (a likely decompression bomb). "
                "Upload a smaller picture."
            ) from None
        except UnidentifiedImageError:
            raise ImageDecodeError(
                "This file is not an image we can read. Upload a JPEG, PNG, GIF or WebP picture."
            ) from None
        except (OSError, ValueError, SyntaxError) as error:  # Pillow raises all three on broken headers
            raise ImageDecodeError(
                f"This image file is damaged ({error}). Try re-saving or re-exporting it."
            ) from None
        if image.format not in ALLOWED_IMAGE_FORMATS:
            raise ImageDecodeError(
                f"Images in {image.format} format are not supported. Upload a JPEG, PNG, GIF or WebP picture."
            )
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageDecodeError("This image has no pixels. Upload a real picture.")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"This image is {width}x{height} pixels, more than the {max_pixels:,}-pixel limit. "
            "Downscale it (for example to 2048 pixels on the long side) and try again."
        )
    try:
        if getattr(image, "is_animated", False):
            image.seek(0)  # recommendations are made from the first frame of an animation
        image.load()
    except Image.DecompressionBombError:
        raise ImageDecodeError("This image expands to too many pixels to be safe. Upload a smaller picture.") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageDecodeError(
            f"This image file is truncated or corrupt ({error}). Try re-saving or re-exporting it."
        ) from None
    return _to_rgb(_apply_exif_orientation(image))


def row_image_source(image: dict[str, Any] | None) -> bytes | str | None:
    """What an undecoded ``datasets.Image`` cell points at: its bytes, else its file path, else None."""
    image = image or {}
    return image.get("bytes") or image.get("path") or None


def _read_image_bytes(source: bytes | str | Path) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageDecodeError(f"Image file {path.name!r} does not exist.")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise ImageDecodeError(
                f"This image file is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB. Upload a smaller one."
            )
        data = path.read_bytes()
    if not data:
        raise ImageDecodeError("This image file is empty. Upload a real picture.")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageDecodeError(f"This image file is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.")
    return data


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make a fine picture unusable
        return image


def _to_rgb(image: Image.Image) -> Image.Image:
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        # Scale 16/32-bit samples into 8 bits; Pillow's own conversion clips them to white.
        pixels = np.asarray(image, dtype=np.float64)
        peak = pixels.max() if pixels.size else 0.0
        scaled = (pixels * (255.0 / peak)) if peak > 0 else pixels
        image = Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def attribute_columns(dataset: datasets.Dataset | datasets.DatasetDict) -> list[str]:
    """The latent ``attr_*`` columns of a data set (those of the synthetic twin); empty for real tweets."""
    names = _column_names(dataset)
    return [name for name in names if name.startswith(ATTRIBUTE_PREFIX)]


def _column_names(dataset: Any) -> list[str]:
    names = dataset.column_names
    if isinstance(names, dict):  # a DatasetDict answers per split
        names = next(iter(names.values()), [])
    return list(names)


def load_tweets(
    source: str | Path,
    split: str | None = None,
    revision: str | None = None,
    token: str | None = None,
) -> datasets.DatasetDict | datasets.Dataset:
    """Load the tweets data set and check its schema.

    ``source`` is a Hub dataset id (``revision`` picks a branch, tag or commit), a directory written by
    ``save_to_disk``, or a directory of parquet files (``train-*.parquet`` / ``test-*.parquet``, as on the Hub).
    Returns the ``DatasetDict``, or one split when ``split`` is given.
    """
    import datasets

    source_name = str(source)
    path = Path(source).expanduser()
    if path.is_dir():
        loaded = _load_local(path)
    elif path.exists():
        raise DatasetSchemaError(f"{source_name!r} is a file; pass the data set directory or a Hub dataset id.")
    elif is_local_source(source_name):
        raise DatasetNotFoundError(
            f"Data set directory {source_name!r} does not exist. Create it with train/prepare_dataset.py."
        )
    else:
        loaded = _load_from_hub(source_name, revision, token)
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({split or "train": loaded})
    for split_name, split_data in loaded.items():
        validate_schema(split_data, f"{source_name} [{split_name}]")
    if split is None:
        return loaded
    if split not in loaded:
        raise KeyError(f"Data set {source_name!r} has no split {split!r}; it has {sorted(loaded)}.")
    return loaded[split]


def _load_local(path: Path) -> datasets.DatasetDict | datasets.Dataset:
    import datasets

    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return datasets.load_from_disk(str(path))
    parquet_files = sorted(path.rglob("*.parquet"))
    if not parquet_files:
        raise DatasetSchemaError(
            f"{str(path)!r} holds neither a saved data set (dataset_dict.json) nor parquet files. "
            "Create it with train/prepare_dataset.py."
        )
    data_files: dict[str, list[str]] = {}
    for file in parquet_files:
        split_name = re.split(r"[-_.]", file.name, maxsplit=1)[0]
        data_files.setdefault(split_name, []).append(str(file))
    return datasets.load_dataset("parquet", data_files=data_files)


def _load_from_hub(repo_id: str, revision: str | None, token: str | None) -> datasets.DatasetDict:
    import datasets

    try:
        return datasets.load_dataset(repo_id, revision=revision, token=token)
    except (ConnectionError, OSError) as error:
        raise ConnectionError(
            f"Could not load data set {repo_id!r} from the Hugging Face Hub ({type(error).__name__}: {error}). "
            "Check the id and your network, or pass a local directory made by train/prepare_dataset.py."
        ) from error


def validate_schema(dataset: datasets.Dataset, source: str) -> None:
    """Raise ``DatasetSchemaError`` naming the first missing or mistyped column and the source."""
    import datasets

    columns = dataset.column_names
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            raise DatasetSchemaError(
                f"Data set {source} lacks column {column!r}. TweetMaker needs {list(REQUIRED_COLUMNS)}; "
                "create the data set with train/prepare_dataset.py."
            )
    if not isinstance(dataset.features["image"], datasets.Image):
        raise DatasetSchemaError(
            f"Data set {source}: column 'image' must have the datasets.Image feature, "
            f"not {type(dataset.features['image']).__name__}."
        )


def select_splits(dataset: datasets.DatasetDict | datasets.Dataset, splits: str | Sequence[str] | None = None,
                  source: str = "the data set") -> list[tuple[str, datasets.Dataset]]:
    """``(name, split)`` pairs in order: the named splits (a list or ``"train,test"``), else all of them.

    A bare ``Dataset`` is one split, named by ``splits`` or ``"train"``.
    """
    import datasets as hf_datasets

    if not isinstance(dataset, hf_datasets.DatasetDict):
        name = splits if isinstance(splits, str) else ",".join(splits or [])
        return [(name or "train", dataset)]
    if isinstance(splits, str):
        splits = [part.strip() for part in splits.split(",")]
    wanted = list(splits) if splits else list(dataset.keys())
    missing = [name for name in wanted if name not in dataset]
    if missing:
        raise KeyError(f"Data set {source!r} has no split {missing[0]!r}; it has {sorted(dataset)}.")
    return [(name, dataset[name]) for name in wanted]


def content_hash(parts: Sequence[datasets.Dataset]) -> str:
    """sha256 over every row's id, text, hashtags and image bytes (or path), split after split.

    The same data gives the same hash wherever it was loaded from (a local copy, the Hub), and any changed row
    changes it: what an index manifest and a model card compare to tell whether they describe the same data.
    """
    import hashlib

    import datasets as hf_datasets

    digest = hashlib.sha256()
    for part in parts:
        columns = part.select_columns(["tweet_id", "text", "hashtags", "image"])
        columns = columns.cast_column("image", hf_datasets.Image(decode=False))
        for batch in columns.iter(batch_size=512):
            for tweet_id, text, hashtags, image in zip(
                batch["tweet_id"], batch["text"], batch["hashtags"], batch["image"]
            ):
                for value in (str(tweet_id), text or "", hashtags or ""):
                    encoded = value.encode("utf-8")
                    digest.update(len(encoded).to_bytes(8, "little") + encoded)
                source = row_image_source(image)
                image_bytes = source if isinstance(source, bytes) else str(source or "").encode("utf-8")
                digest.update(len(image_bytes).to_bytes(8, "little") + image_bytes)
    return digest.hexdigest()


def dataset_identity(source: str | Path, dataset: datasets.DatasetDict | datasets.Dataset, revision: str | None = None,
                     splits: str | Sequence[str] | None = None) -> dict[str, Any]:
    """What identifies a data set wherever it is recorded (an index manifest, a model card, a results file).

    Where it came from (``source``, ``revision``), which ``splits`` (all unless named), their rows and datasets
    fingerprints, and the ``content_hash`` of those splits: two records describe the same data exactly when their
    content hashes are equal, whatever the source string says.
    """
    parts = select_splits(dataset, splits, str(source))
    return {
        "source": str(source),
        "revision": revision,
        "splits": [name for name, _ in parts],
        "num_rows": {name: part.num_rows for name, part in parts},
        "fingerprints": {name: part._fingerprint for name, part in parts},
        "content_hash": content_hash([part for _, part in parts]),
    }
