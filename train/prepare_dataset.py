"""Convert the Kaggle "AI Tweets" layout into TweetMaker's Hugging Face data set.

    python train/prepare_dataset.py --source_dir DIR --output_dir OUT [--push_to_hub REPO_ID] [--private]

DIR holds train.csv, test.csv and images/. OUT receives a ``save_to_disk`` DatasetDict (train/test) and
``conversion_report.json`` listing every skipped row with its reason. The output is replaced atomically, so an
interrupted run never leaves a half-written data set behind. The work is ``tweetmaker.convert.prepare_dataset``;
this script only parses the flags (it needs the package installed: ``pip install -e .`` in the repository root).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

from tweetmaker.convert import REPORT_NAME, ConversionReport, prepare_dataset
from tweetmaker.data import MAX_IMAGE_PIXELS
from tweetmaker.errors import TweetMakerError


@dataclass
class PrepareArguments:
    """The flags; ``tweetmaker.convert.prepare_dataset`` checks their values."""

    source_dir: str = field(metadata={"help": "Kaggle layout directory: train.csv, test.csv and images/."})
    output_dir: str = field(metadata={"help": "Where the DatasetDict is saved (save_to_disk) with its report."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Also push to this Hub dataset repo id."})
    private: bool = field(default=False, metadata={"help": "Create the Hub dataset repo as private."})
    hub_token: str | None = field(
        default=None, metadata={"help": "Hub token; by default the HF_TOKEN environment variable is used."}
    )
    max_image_pixels: int = field(
        default=MAX_IMAGE_PIXELS, metadata={"help": "Images with more pixels are skipped as likely bombs."}
    )


def main(argv: list[str] | None = None, hub_api: Any | None = None) -> ConversionReport:
    """Run the conversion. ``hub_api`` replaces ``huggingface_hub.HfApi`` (tests pass a stand-in)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    (args,) = HfArgumentParser(PrepareArguments, description=__doc__.split("\n")[0]).parse_args_into_dataclasses(
        args=argv
    )
    report = prepare_dataset(
        args.source_dir, args.output_dir, max_image_pixels=args.max_image_pixels, push_to_hub=args.push_to_hub,
        private=args.private, hub_token=args.hub_token, hub_api=hub_api,
    )
    print(report.summary())
    output_dir = Path(args.output_dir)
    print(f"Saved to {output_dir}; skipped rows are listed in {output_dir / REPORT_NAME}")
    return report


if __name__ == "__main__":
    try:
        main()
    except TweetMakerError as error:
        sys.exit(f"error: {error}")
