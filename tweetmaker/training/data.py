"""The training data: the train and eval splits (images left undecoded) and the collator that turns rows into
tensors inside DataLoader workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from tweetmaker.data import ImageDecodeError, dataset_identity, decode_image, load_tweets, row_image_source
from tweetmaker.errors import InvalidInputError
from tweetmaker.towers import preprocess_images, tokenize_texts

if TYPE_CHECKING:
    import datasets

    from tweetmaker.training.args import DataArguments

# The columns training reads; the relevance column (attribute precision@k) is added when the data set has it.
TRAINING_COLUMNS = ["tweet_id", "text", "hashtags", "image"]


class TweetCollator:
    """Rows -> tensors: decodes and preprocesses images and tokenizes texts inside DataLoader workers.

    Nothing is cached: each batch is decoded when it is drawn, so memory stays flat whatever the data set size.
    """

    def __init__(self, image_processor: Any, tokenizer: Any, max_length: int) -> None:
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images = []
        for row in rows:
            try:
                images.append(decode_image(row_image_source(row["image"])))
            except ValueError as error:
                raise ImageDecodeError(f"Tweet {row.get('tweet_id')!r}: {error}") from error
        text = tokenize_texts(self.tokenizer, [row["text"] for row in rows], self.max_length)
        hashtags = tokenize_texts(self.tokenizer, [row["hashtags"] for row in rows], self.max_length)
        return {
            "pixel_values": preprocess_images(self.image_processor, images),
            "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"],
            "hashtag_input_ids": hashtags["input_ids"],
            "hashtag_attention_mask": hashtags["attention_mask"],
            "index": torch.tensor([row["_index"] for row in rows], dtype=torch.long),
        }


def load_splits(data_args: DataArguments) -> tuple[datasets.Dataset, datasets.Dataset, dict[str, Any]]:
    """The train and eval splits with only the columns training needs, images left undecoded, and the data set's
    identity (source, revision, content hash, rows) for the results and the model card."""
    import datasets

    loaded = load_tweets(data_args.dataset, revision=data_args.dataset_revision)
    for split in (data_args.train_split, data_args.eval_split):
        if split not in loaded:
            raise InvalidInputError(
                f"Data set {data_args.dataset!r} has no split {split!r}; it has {sorted(loaded)}."
            )
    identity = dataset_identity(data_args.dataset, loaded, data_args.dataset_revision)
    prepared = []
    for split, limit in ((data_args.train_split, data_args.max_train_samples),
                         (data_args.eval_split, data_args.max_eval_samples)):
        part = loaded[split]
        if limit is not None:
            part = part.select(range(min(limit, len(part))))
        keep = list(TRAINING_COLUMNS)
        if data_args.relevance_column and data_args.relevance_column in part.column_names:
            keep.append(data_args.relevance_column)
        part = part.select_columns(keep).cast_column("image", datasets.Image(decode=False))
        # The row number travels with each example so gathered eval embeddings can be put back in order.
        part = part.add_column("_index", list(range(len(part))))
        prepared.append(part)
    if len(prepared[1]) == 0:
        raise InvalidInputError(f"The {data_args.eval_split!r} split of {data_args.dataset!r} is empty.")
    return prepared[0], prepared[1], identity


def relevance_labels(eval_data: datasets.Dataset, data_args: DataArguments) -> list[Any] | None:
    """The eval rows' relevance values (equal values count as relevant for precision@k), when the column exists."""
    if data_args.relevance_column and data_args.relevance_column in eval_data.column_names:
        return list(eval_data[data_args.relevance_column])
    return None
