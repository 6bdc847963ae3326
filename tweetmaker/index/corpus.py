"""The rows a build indexes and what each record stores: metadata shaped for Chroma, image file names, dates.

Images stay undecoded until a batch needs them, so a corpus of 100k tweets costs its ids and texts in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import datasets
    from PIL import Image

logger = logging.getLogger(__name__)


def image_file_name(tweet_id: str) -> str:
    """The stored image's file name: a hash, as tweet ids may hold characters no file system likes."""
    return hashlib.sha1(tweet_id.encode("utf-8")).hexdigest()[:24] + ".jpg"


def to_epoch_seconds(value: Any) -> int | None:
    """A tweet's date as integer seconds since 1970 (UTC), so Chroma can filter and we can rank by recency."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else int(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(moment.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp())
    if isinstance(value, str) and value.strip():
        import pandas as pd

        try:
            moment = pd.Timestamp(value.strip())
        except (ValueError, TypeError):
            return None
        if pd.isna(moment):
            return None
        if moment.tzinfo is None:
            moment = moment.tz_localize("UTC")
        return int(moment.timestamp())
    if hasattr(value, "timestamp"):  # pandas / numpy datetime-likes
        with contextlib.suppress(Exception):
            return to_epoch_seconds(value.to_pydatetime())
    return None


def _int_or_zero(value: Any) -> int:
    try:
        return 0 if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)
    except (TypeError, ValueError):
        return 0


def record_metadata(row: dict[str, Any], split: str, attribute_names: Sequence[str], image_name: str) -> dict:
    """The metadata stored with a tweet in every collection (Chroma refuses None and empty lists)."""
    metadata: dict[str, Any] = {
        "text": row.get("text") or "",
        "hashtags": row.get("hashtags") or "",
        "likes": _int_or_zero(row.get("likes")),
        "retweets": _int_or_zero(row.get("retweets")),
        "replies": _int_or_zero(row.get("replies")),
        "image": image_name,
        "split": split,
    }
    tags = [str(tag) for tag in (row.get("hashtag_list") or []) if str(tag)]
    if tags:
        metadata["hashtag_list"] = tags
    epoch = to_epoch_seconds(row.get("date"))
    if epoch is not None:
        metadata["date"] = epoch
    if row.get("username"):
        metadata["username"] = str(row["username"])
    for name in attribute_names:
        value = row.get(name)
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            value = value.item()
        if isinstance(value, (str, int, float, bool)):
            metadata[name] = value
    return metadata


class Corpus:
    """The rows to index: the chosen splits of a data set, images left undecoded until a batch needs them."""

    def __init__(
        self, dataset: datasets.Dataset | datasets.DatasetDict, source: str, split: str | None = None
    ) -> None:
        import datasets as hf_datasets

        from tweetmaker.data import attribute_columns, select_splits

        self.source = source
        self.selected = select_splits(dataset, split, source)  # as loaded: what the data set identity describes
        undecoded = hf_datasets.Image(decode=False)
        self.parts = [(name, part.cast_column("image", undecoded)) for name, part in self.selected]
        self.attribute_names = attribute_columns(self.selected[0][1]) if self.selected else []
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.hashtags: list[str] = []
        self.locations: list[tuple[int, int]] = []  # (part, row) of each corpus row
        for part_number, (_, part) in enumerate(self.parts):
            columns = part.select_columns(["tweet_id", "text", "hashtags"])
            for row_number, row in enumerate(columns):
                self.ids.append(str(row["tweet_id"]))
                self.texts.append(row["text"] or "")
                self.hashtags.append(row["hashtags"] or "")
                self.locations.append((part_number, row_number))
        if len(set(self.ids)) != len(self.ids):
            duplicate = next(tweet_id for tweet_id in self.ids if self.ids.count(tweet_id) > 1)
            raise ValueError(f"Data set {source!r} repeats tweet_id {duplicate!r}; ids must be unique to index it.")

    def __len__(self) -> int:
        return len(self.ids)

    def identity(self, revision: str | None = None) -> dict[str, Any]:
        """``tweetmaker.data.dataset_identity`` of the indexed splits: the manifest's ``dataset``, comparable with the
        data set recorded on a model card."""
        import datasets as hf_datasets

        from tweetmaker.data import dataset_identity

        return dataset_identity(self.source, hf_datasets.DatasetDict(dict(self.selected)), revision)

    def content_hash(self) -> str:
        """``tweetmaker.data.content_hash`` of the indexed splits."""
        from tweetmaker.data import content_hash

        return content_hash([part for _, part in self.parts])

    def expected_ids(self, modality: str) -> set[str]:
        """Ids a complete index holds in a collection. Blank texts / hashtags get no text / hashtag vector:
        the embedding of "" is one point shared by all of them, a neighbour to everything and about nothing."""
        if modality == "text":
            return {tweet_id for tweet_id, text in zip(self.ids, self.texts) if text.strip()}
        if modality == "hashtag":
            return {tweet_id for tweet_id, raw in zip(self.ids, self.hashtags) if raw.strip()}
        return set(self.ids)

    def rows(self, positions: Sequence[int]) -> list[tuple[str, dict[str, Any]]]:
        """(split, row) of the given corpus positions, images as {"bytes", "path"} dicts."""
        by_part: dict[int, list[tuple[int, int]]] = {}
        for order, position in enumerate(positions):
            part_number, row_number = self.locations[position]
            by_part.setdefault(part_number, []).append((order, row_number))
        out: list[Any] = [None] * len(positions)
        for part_number, wanted in by_part.items():
            name, part = self.parts[part_number]
            selected = part.select([row_number for _, row_number in wanted])
            for (order, _), row in zip(wanted, selected):
                out[order] = (name, row)
        return out


def decode_row_image(row: dict[str, Any]) -> Image.Image | None:
    """A row's image, decoded; None (logged) when it has none or it cannot be read: the tweet is indexed without."""
    from tweetmaker.data import ImageDecodeError, decode_image, row_image_source

    source = row_image_source(row.get("image"))
    if not source:
        return None
    try:
        return decode_image(source)
    except ImageDecodeError as error:
        logger.warning("tweet %s: image left out of the index: %s", row.get("tweet_id"), error)
        return None
