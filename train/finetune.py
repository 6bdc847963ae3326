"""Fine-tune TweetMaker's three CLIP towers (image, tweet text, hashtags) with Accelerate.

    python train/finetune.py --dataset DATASET --base_model ID_OR_DIR --output_dir OUT [options]
    accelerate launch --config_file train/configs/multi_gpu.yaml train/finetune.py --dataset ... --output_dir OUT
    torchrun --nproc_per_node=2 train/finetune.py --cpu ...        # several CPU processes (gloo)
    python train/finetune.py args.json                              # every flag from one JSON (or YAML) file

DATASET is what ``tweetmaker.data.load_tweets`` reads (a Hub dataset id or a directory made by
``train/prepare_dataset.py``). The base model is a CLIPModel checkpoint (``openai/clip-vit-base-patch32`` by
default, or a local directory such as ``python -m tweetmaker.towers tiny --output_dir DIR``).

OUT receives OUT/image, OUT/text, OUT/hashtag (the towers), OUT/all_results.json (recall@k before and after),
OUT/loss.png, OUT/README.md (the model card) and OUT/checkpoints/ (with --checkpointing_steps); --push_to_hub
uploads all but the checkpoints. The loop itself is ``tweetmaker.training.train`` (run it from code with
``train(*make_arguments(dataset=..., output_dir=...))``); this script only parses the flags. It needs the package
installed: ``pip install -e .`` in the repository root (``requirements-dev.txt`` does it).
"""

from __future__ import annotations

import sys
from typing import Any

from tweetmaker.errors import TweetMakerError
from tweetmaker.training import parse_arguments, train


def main(argv: list[str] | None = None, *, hub_api: Any | None = None) -> dict[str, Any]:
    """Parse the flags and train; returns what OUT/all_results.json holds (on the main process, {} elsewhere).
    ``hub_api`` replaces ``huggingface_hub.HfApi`` for --push_to_hub (tests pass a stand-in)."""
    data_args, model_args, train_args = parse_arguments(argv, description=__doc__.split("\n")[0])
    return train(data_args, model_args, train_args, hub_api=hub_api)


if __name__ == "__main__":
    try:
        main()
    except TweetMakerError as error:
        # What to change is in the message; a traceback would only hide it.
        sys.exit(f"error: {error}")
