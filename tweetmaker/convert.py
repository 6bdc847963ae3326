"""Convert the Kaggle layout (``train.csv``, ``test.csv``, ``images/``) into the tweets ``DatasetDict``.

Each row becomes one tweet with a stable ``tweet_id``, its text, the raw and parsed hashtags, the image bytes
embedded with the ``datasets.Image`` feature (so the copy is self-contained) and every other CSV column, typed.
Rows whose image cannot be used are skipped and reported with their reason; they never stop the run.

``prepare_dataset(source_dir, output_dir)`` is the whole step behind ``train/prepare_dataset.py``: check the layout,
convert, save (atomically: a killed run leaves the previous output or none, never half) with
``conversion_report.json``, and optionally push parquet shards and a dataset card to the Hub.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweetmaker.atomic import staged_directory
from tweetmaker.data import MAX_IMAGE_PIXELS, ImageDecodeError, decode_image, parse_hashtags
from tweetmaker.errors import InvalidInputError

if TYPE_CHECKING:
    import datasets
    import pandas as pd

logger = logging.getLogger(__name__)
SPLITS = ("train", "test")
REPORT_NAME = "conversion_report.json"  # saved beside the data set (and pushed with it): every skipped row and why
CSV_REQUIRED_COLUMNS = ("image_id", "text", "hashtags")
ID_COLUMNS = ("tweet_id", "id")  # a CSV's own tweet id, when it has one, becomes our stable id
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")
_DATE_COLUMN = re.compile(r"(date|time|created)", re.IGNORECASE)


@dataclass
class ConversionReport:
    """What the conversion kept and skipped; written as JSON next to the output."""

    source_dir: str
    kept: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)

    def skip(self, split: str, row: int, tweet_id: str, image_id: str, reason: str) -> None:
        self.skipped.append({"split": split, "row": str(row), "tweet_id": tweet_id, "image_id": image_id,
                             "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {"source_dir": self.source_dir, "rows_read": self.rows_read, "kept": self.kept,
                "skipped_count": len(self.skipped), "skipped": self.skipped}

    def summary(self) -> str:
        lines = [f"Converted {self.source_dir}:"]
        for split, read in self.rows_read.items():
            lines.append(f"  {split}: {read} rows read, {self.kept.get(split, 0)} kept, "
                         f"{read - self.kept.get(split, 0)} skipped")
        reasons: dict[str, int] = {}
        for entry in self.skipped:
            reasons[entry["reason"].split(":")[0]] = reasons.get(entry["reason"].split(":")[0], 0) + 1
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
            lines.append(f"  skipped {count}: {reason}")
        return "\n".join(lines)


def read_split_csv(source_dir: Path, split: str) -> pd.DataFrame:
    """Read one split's CSV and check it has the columns the conversion needs."""
    import pandas as pd

    path = source_dir / f"{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the Kaggle layout needs train.csv, test.csv and images/.")
    frame = pd.read_csv(path, keep_default_na=True)
    missing = [column for column in CSV_REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; it has {list(frame.columns)}.")
    return frame


def metadata_features(frames: list[pd.DataFrame]) -> dict[str, datasets.Value]:
    """Type the extra CSV columns: dates as timestamps, whole numbers as int64, other numbers float, text str."""
    import datasets
    import pandas as pd

    columns: list[str] = []
    for frame in frames:
        columns += [c for c in frame.columns if c not in columns]
    features: dict[str, datasets.Value] = {}
    for column in columns:
        if column in (*CSV_REQUIRED_COLUMNS, *ID_COLUMNS):
            continue
        values = pd.concat([frame[column] for frame in frames if column in frame.columns]).dropna()
        if _DATE_COLUMN.search(column) and not pd.api.types.is_numeric_dtype(values):
            parsed = pd.to_datetime(values, errors="coerce", utc=True)
            if len(values) and parsed.notna().mean() > 0.9:
                features[column] = datasets.Value("timestamp[s]")
                continue
        if pd.api.types.is_bool_dtype(values):
            features[column] = datasets.Value("bool")
        elif pd.api.types.is_numeric_dtype(values) and len(values):
            whole = bool((values.astype(float) % 1 == 0).all())
            features[column] = datasets.Value("int64" if whole else "float64")
        else:
            features[column] = datasets.Value("string")
    return features


def tweets_features(metadata: dict[str, datasets.Value]) -> datasets.Features:
    import datasets

    return datasets.Features({
        "tweet_id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "hashtags": datasets.Value("string"),
        "hashtag_list": datasets.List(datasets.Value("string")),
        "image": datasets.Image(),
        **metadata,
    })


def resolve_image_path(images_dir: Path, image_id: str) -> Path:
    """The file of ``image_id`` inside ``images_dir``; refuses names that would escape it.

    Kaggle ids come with or without an extension, so a bare id is tried with the usual extensions.
    """
    name = str(image_id).strip()
    if not name:
        raise ImageDecodeError("empty image_id")
    candidate = Path(name)
    if candidate.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ImageDecodeError(f"unsafe image_id {name!r}: absolute paths are not allowed")
    if ".." in re.split(r"[\\/]", name):
        raise ImageDecodeError(f"unsafe image_id {name!r}: it would escape images/")
    root = images_dir.resolve()
    path = (images_dir / candidate).resolve()
    if root not in path.parents:  # catches symlinks that lead out of images/
        raise ImageDecodeError(f"unsafe image_id {name!r}: it resolves outside images/")
    if path.is_file():
        return path
    if not candidate.suffix:
        for extension in IMAGE_EXTENSIONS:
            if path.with_suffix(extension).is_file():
                return path.with_suffix(extension)
    raise ImageDecodeError(f"missing image file {name!r}")


def stable_tweet_id(split: str, row: dict[str, Any]) -> str:
    """The CSV's own id when present, else a content hash: the same tweet keeps its id across conversions."""
    for column in ID_COLUMNS:
        value = row.get(column)
        if value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value).strip():
            text = str(value).strip()
            return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text
    digest = hashlib.sha1(
        "\x1f".join(str(row.get(c, "")) for c in ("image_id", "text", "hashtags")).encode("utf-8")
    ).hexdigest()
    return f"{split}-{digest[:16]}"


def _clean_text(value: Any) -> str:
    # The original notebook filled NaN with a blank: a tweet with an image is useful even without words.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _clean_metadata(value: Any, feature: datasets.Value) -> Any:
    import pandas as pd

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None if feature.dtype != "string" else ""
    if feature.dtype.startswith("timestamp"):
        parsed = pd.to_datetime(value, errors="coerce", utc=True)
        return None if pd.isna(parsed) else parsed.tz_convert(None).to_pydatetime()
    if feature.dtype == "int64":
        return int(float(value))
    if feature.dtype == "float64":
        return float(value)
    if feature.dtype == "bool":
        return bool(value)
    return str(value)


def iter_split_rows(
    source_dir: Path,
    split: str,
    frame: pd.DataFrame,
    metadata: dict[str, datasets.Value],
    report: ConversionReport,
    seen_ids: set[str],
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> Iterator[dict[str, Any]]:
    """Yield the good rows of one split as data set records; record the bad ones in ``report``."""
    from tqdm.auto import tqdm

    images_dir = source_dir / "images"
    kept = 0
    for position, row in enumerate(tqdm(frame.to_dict("records"), desc=f"Converting {split}", unit="row")):
        tweet_id = stable_tweet_id(split, row)
        image_id = _clean_text(row.get("image_id"))
        if tweet_id in seen_ids:
            report.skip(split, position, tweet_id, image_id, f"duplicate tweet id {tweet_id!r}")
            continue
        try:
            path = resolve_image_path(images_dir, image_id)
            data = path.read_bytes()
            decode_image(data, max_pixels=max_image_pixels)  # the full decode catches truncation
        except ImageDecodeError as error:
            report.skip(split, position, tweet_id, image_id, str(error))
            continue
        except OSError as error:
            report.skip(split, position, tweet_id, image_id, f"unreadable image file: {error}")
            continue
        seen_ids.add(tweet_id)
        kept += 1
        raw_hashtags = _clean_text(row.get("hashtags"))
        yield {
            "tweet_id": tweet_id,
            "text": _clean_text(row.get("text")),
            "hashtags": raw_hashtags,
            "hashtag_list": parse_hashtags(raw_hashtags),
            "image": {"bytes": data, "path": path.name},
            **{column: _clean_metadata(row.get(column), feature) for column, feature in metadata.items()},
        }
    report.rows_read[split] = len(frame)
    report.kept[split] = kept


def convert_kaggle_layout(
    source_dir: str | Path, work_dir: str | Path, max_image_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[datasets.DatasetDict, ConversionReport]:
    """Build the tweets ``DatasetDict`` from a Kaggle-layout directory; return it with its report.

    Rows stream from the CSVs through a generator into Arrow files under ``work_dir`` (images are never all
    held in memory, as in the original notebook); the result is backed by those files, so keep ``work_dir``
    until the data set is saved.
    """
    import datasets

    source = Path(source_dir)
    if not (source / "images").is_dir():
        raise FileNotFoundError(f"{source / 'images'} is missing: the Kaggle layout needs an images/ folder.")
    frames = {split: read_split_csv(source, split) for split in SPLITS}
    metadata = metadata_features(list(frames.values()))
    features = tweets_features(metadata)
    report = ConversionReport(source_dir=str(source))
    seen_ids: set[str] = set()
    splits = {}
    for split, frame in frames.items():
        # A cache directory of this run's own: from_generator reuses a cache keyed by its arguments, which
        # would hand back stale rows after the CSVs or images changed.
        splits[split] = datasets.Dataset.from_generator(
            iter_split_rows,
            features=features,
            cache_dir=str(Path(work_dir) / split),
            gen_kwargs={"source_dir": source, "split": split, "frame": frame, "metadata": metadata,
                        "report": report, "seen_ids": seen_ids, "max_image_pixels": max_image_pixels},
        )
    return datasets.DatasetDict(splits), report




def check_kaggle_layout(source_dir: str | Path, output_dir: str | Path | None = None) -> None:
    """Fail clearly unless ``source_dir`` holds train.csv, test.csv and images/ (and differs from ``output_dir``)."""
    source = Path(source_dir)
    if not source.is_dir():
        raise InvalidInputError(f"--source_dir {str(source_dir)!r} is not a directory.")
    for needed in ("train.csv", "test.csv", "images"):
        if not (source / needed).exists():
            raise InvalidInputError(f"--source_dir {str(source_dir)!r} lacks {needed}: expected the Kaggle layout.")
    if output_dir is not None and Path(output_dir).resolve() == source.resolve():
        raise InvalidInputError("--output_dir must differ from --source_dir.")


def save_converted(dataset: datasets.DatasetDict, report: ConversionReport, output_dir: str | Path) -> Path:
    """``save_to_disk`` the data set with its report into ``output_dir``, replacing what was there only once the new
    copy is complete (``tweetmaker.atomic.staged_directory``)."""
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with staged_directory(output_dir) as staging:
        dataset.save_to_disk(str(staging))
        (staging / REPORT_NAME).write_text(json.dumps(report.as_dict(), indent=2))
    return output_dir


def push_converted(
    dataset: datasets.DatasetDict, report: ConversionReport, repo_id: str, work_dir: str | Path, *,
    private: bool = False, token: str | None = None, api: Any | None = None,
) -> str:
    """Upload the data set as parquet shards with its dataset card and report to the Hub dataset ``repo_id``;
    returns the repo URL. ``api`` replaces ``huggingface_hub.HfApi`` (tests pass a stand-in)."""
    from tweetmaker.cards import dataset_card
    from tweetmaker.hub import upload_folder_to_hub, write_dataset_folder

    folder = write_dataset_folder(
        dataset, Path(work_dir) / "hub", dataset_card(dataset, report, repo_id),
        extra_files={REPORT_NAME: json.dumps(report.as_dict(), indent=2)},
    )
    url = upload_folder_to_hub(folder, repo_id, "dataset", private=private, token=token,
                               commit_message="Add TweetMaker tweets data set", api=api)
    logger.info("Pushed the data set to %s", url)
    return url


def prepare_dataset(
    source_dir: str | Path, output_dir: str | Path, *, max_image_pixels: int = MAX_IMAGE_PIXELS,
    push_to_hub: str | None = None, private: bool = False, hub_token: str | None = None, hub_api: Any | None = None,
) -> ConversionReport:
    """Convert the Kaggle layout in ``source_dir`` into the tweets data set saved at ``output_dir`` (and pushed to
    the Hub dataset repo ``push_to_hub`` when given); returns the report of kept and skipped rows."""
    check_kaggle_layout(source_dir, output_dir)
    if max_image_pixels <= 0:
        raise InvalidInputError("--max_image_pixels must be positive.")
    output_dir = Path(output_dir)
    # The Arrow files the conversion streams into live next to the output (same disk), and only until it is saved.
    work_parent = output_dir.parent if output_dir.parent.exists() else None
    with tempfile.TemporaryDirectory(prefix="tweetmaker-convert-", dir=work_parent) as work_dir:
        dataset, report = convert_kaggle_layout(source_dir, work_dir, max_image_pixels=max_image_pixels)
        save_converted(dataset, report, output_dir)
        if push_to_hub:
            push_converted(dataset, report, push_to_hub, work_dir, private=private, token=hub_token, api=hub_api)
    return report
