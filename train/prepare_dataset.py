"""Convert the Kaggle "AI Tweets" layout into TweetMaker's Hugging Face data set.

    python train/prepare_dataset.py --source_dir DIR --output_dir OUT [--push_to_hub REPO_ID] [--private]

DIR holds train.csv, test.csv and images/. OUT receives a ``save_to_disk`` DatasetDict (train/test) and
``conversion_report.json`` listing every skipped row with its reason. The output is replaced atomically, so an
interrupted run never leaves a half-written data set behind.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from any directory

from transformers import HfArgumentParser  # noqa: E402

from tweetmaker.cards import dataset_card  # noqa: E402
from tweetmaker.convert import ConversionReport, convert_kaggle_layout  # noqa: E402
from tweetmaker.data import MAX_IMAGE_PIXELS  # noqa: E402
from tweetmaker.hub import upload_folder_to_hub, write_dataset_folder  # noqa: E402

logger = logging.getLogger("prepare_dataset")
REPORT_NAME = "conversion_report.json"


@dataclass
class PrepareArguments:
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

    def __post_init__(self) -> None:
        source = Path(self.source_dir)
        if not source.is_dir():
            raise ValueError(f"--source_dir {self.source_dir!r} is not a directory.")
        for needed in ("train.csv", "test.csv", "images"):
            if not (source / needed).exists():
                raise ValueError(f"--source_dir {self.source_dir!r} lacks {needed}: expected the Kaggle layout.")
        if Path(self.output_dir).resolve() == source.resolve():
            raise ValueError("--output_dir must differ from --source_dir.")
        if self.max_image_pixels <= 0:
            raise ValueError("--max_image_pixels must be positive.")


def save_atomically(dataset, report: ConversionReport, output_dir: Path) -> None:
    """Save next to ``output_dir`` first, then swap it in, so a crash never leaves a partial data set."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    try:
        dataset.save_to_disk(str(staging / "data"))
        (staging / "data" / REPORT_NAME).write_text(json.dumps(report.as_dict(), indent=2))
        previous = output_dir.with_name(f".{output_dir.name}.previous")
        if previous.exists():
            shutil.rmtree(previous)
        if output_dir.exists():
            output_dir.rename(previous)
        (staging / "data").rename(output_dir)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str] | None = None, hub_api=None) -> ConversionReport:
    """Run the conversion. ``hub_api`` replaces ``huggingface_hub.HfApi`` (tests pass a stand-in)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    (args,) = HfArgumentParser(PrepareArguments).parse_args_into_dataclasses(args=argv)
    output_dir = Path(args.output_dir)
    with tempfile.TemporaryDirectory(prefix="tweetmaker-convert-", dir=output_dir.parent if output_dir.parent.exists()
                                     else None) as work_dir:
        dataset, report = convert_kaggle_layout(args.source_dir, work_dir, max_image_pixels=args.max_image_pixels)
        save_atomically(dataset, report, output_dir)
        if args.push_to_hub:
            folder = write_dataset_folder(
                dataset, Path(work_dir) / "hub", dataset_card(dataset, report, args.push_to_hub),
                extra_files={REPORT_NAME: json.dumps(report.as_dict(), indent=2)},
            )
            url = upload_folder_to_hub(folder, args.push_to_hub, "dataset", private=args.private,
                                       token=args.hub_token, commit_message="Add TweetMaker tweets data set",
                                       api=hub_api)
            logger.info("Pushed the data set to %s", url)
    print(report.summary())
    print(f"Saved to {output_dir}; skipped rows are listed in {output_dir / REPORT_NAME}")
    return report


if __name__ == "__main__":
    main()
