"""``python -m tweetmaker.towers``: write a tiny CLIP, print towers' identity, export an inference backend.

    python -m tweetmaker.towers tiny --output_dir DIR
    python -m tweetmaker.towers info SOURCE
    python -m tweetmaker.towers export --towers DIR --backend onnx-int8
"""

from __future__ import annotations

import argparse
import json
import sys

from tweetmaker.tiny_clip import TINY_DEFAULTS, write_tiny_clip
from tweetmaker.towers import load_towers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tweetmaker.towers", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tiny = commands.add_parser("tiny", help="write a tiny random CLIP base checkpoint (offline)")
    tiny.add_argument("--output_dir", required=True)
    for key, value in TINY_DEFAULTS.items():
        if isinstance(value, bool):
            tiny.add_argument(f"--{key}", action=argparse.BooleanOptionalAction, default=value)
        else:
            tiny.add_argument(f"--{key}", type=type(value), default=value)
    info = commands.add_parser("info", help="load towers (or a CLIP base) and print their identity")
    info.add_argument("source")
    info.add_argument("--revision", default=None)
    export = commands.add_parser("export", help="write the ONNX export of saved towers for a backend (made once)")
    export.add_argument("--towers", required=True, help="directory of saved towers (towers.json)")
    export.add_argument("--backend", default="auto", help="onnx or onnx-int8 (default auto: the CPU default)")
    export.add_argument("--cache_dir", default=None, help="where to write if the towers' directory is read-only")
    args = parser.parse_args(argv)
    if args.command == "tiny":
        options = {key: getattr(args, key) for key in TINY_DEFAULTS}
        print(write_tiny_clip(args.output_dir, **options))
        return 0
    if args.command == "export":
        from tweetmaker.errors import TweetMakerError
        from tweetmaker.inference import export_backend

        try:
            print(export_backend(args.towers, args.backend, args.cache_dir) or f"{args.backend}: nothing to export")
        except TweetMakerError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    towers = load_towers(args.source, revision=args.revision, device="cpu")
    summary = {"embedding_dim": towers.embedding_dim, "max_text_length": towers.max_text_length, **towers.identity}
    print(json.dumps(summary, indent=2, default=str))
    return 0
