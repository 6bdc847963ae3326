"""Command line of the index::

    python -m tweetmaker.index build --dataset SRC --towers DIR_OR_ID --index_dir DIR [--rebuild]
        [--chroma_host H --chroma_port P] [--collection_prefix P] [--split train] [--batch_size 256] [--backend B]
    torchrun --nproc_per_node N -m tweetmaker.index build ...   (or accelerate launch --num_processes N -m ...)
    python -m tweetmaker.index info --index_dir DIR [--chroma_host H --chroma_port P]
    python -m tweetmaker.index rollback --index_dir DIR [--chroma_host H --chroma_port P]
    python -m tweetmaker.index tune --index_dir DIR [--modality image]
    python -m tweetmaker.index push --index_dir DIR --repo_id OWNER/NAME [--private]
    python -m tweetmaker.index pull --repo_id OWNER/NAME --index_dir DIR [--revision REV]

A failed command prints one line, ``error: <what happened and what to do>``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict

from tweetmaker.errors import TweetMakerError
from tweetmaker.index.builder import BuildOptions, BuildReport, build_from
from tweetmaker.index.errors import IndexNotFoundError
from tweetmaker.index.generations import Generations
from tweetmaker.index.layout import DEFAULT_BATCH_SIZE, MODALITIES, IndexLocation, build_lock
from tweetmaker.index.reader import open_index
from tweetmaker.index.remote import pull_index, push_index
from tweetmaker.index.sharding import Shard, ShardAbortedError
from tweetmaker.index.tuning import TUNING_GRID, measure_hnsw


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index_dir", required=True, help="index directory (embedded Chroma + stored images)")
    parser.add_argument("--chroma_host", default=None, help="use a Chroma server at this host instead")
    parser.add_argument("--chroma_port", type=int, default=8000, help="port of the Chroma server")
    parser.add_argument("--collection_prefix", default="", help="prefix of the collection names (shared servers)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tweetmaker.index",
                                     description="Build, inspect, tune, push and pull the TweetMaker index.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build", help="embed a data set into the index (resumes an interrupted build)",
        description="Embed a data set into the index; an interrupted build resumes. Sharded across processes when "
                    "started by a launcher: `torchrun --nproc_per_node N -m tweetmaker.index build ...` (or "
                    "`accelerate launch --num_processes N -m tweetmaker.index build ...`) splits the rows between "
                    "the N processes (Accelerate's split_between_processes); with --chroma_host each writes to the "
                    "server, else the main process writes the embedded database for all.")
    build.add_argument("--dataset", required=True, help="Hub dataset id or local data set directory")
    build.add_argument("--towers", required=True, help="trained towers directory or Hub model id")
    build.add_argument("--split", default=None, help="comma-separated splits to index (default: all)")
    build.add_argument("--revision", default=None, help="data set revision on the Hub")
    build.add_argument("--rebuild", action="store_true",
                       help="build the index anew beside the old one, which serves until the new one replaces it")
    build.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE, help="tweets per batch")
    build.add_argument("--max_batches", type=int, default=None,
                       help="stop after N batches (each process, when sharded); run again to resume")
    build.add_argument("--no_progress", action="store_true", help="no progress bar")
    build.add_argument("--backend", default="auto",
                       help="inference backend of the towers: auto (default: the device's measured default, onnx on "
                            "a CPU, torch on a GPU), torch (fp32), torch-int8, onnx or onnx-int8; it changes "
                            "arithmetic only, not the index's towers")
    _add_location(build)
    info = commands.add_parser("info", help="print an index's manifest and counts")
    _add_location(info)
    rollback = commands.add_parser("rollback", help="make the generation kept for roll-back live again")
    _add_location(rollback)
    tune = commands.add_parser("tune", help="measure HNSW settings (recall@10 vs exact, latency) on an index")
    _add_location(tune)
    tune.add_argument("--modality", default="image", choices=MODALITIES)
    tune.add_argument("--queries", type=int, default=200)
    push = commands.add_parser("push", help="upload a built index directory to a Hub dataset repo")
    push.add_argument("--index_dir", required=True)
    push.add_argument("--repo_id", required=True)
    push.add_argument("--private", action="store_true")
    pull = commands.add_parser("pull", help="download an index from a Hub dataset repo")
    pull.add_argument("--repo_id", required=True)
    pull.add_argument("--index_dir", required=True)
    pull.add_argument("--revision", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    shard = Shard.from_environment() if args.command == "build" else Shard()
    try:
        if args.command == "build":
            report = _build(args, shard)
            if shard.main:
                print(json.dumps(asdict(report), indent=2))
        elif args.command == "info":
            index = open_index(args.index_dir, host=args.chroma_host, port=args.chroma_port,
                               prefix=args.collection_prefix, require_complete=False)
            counts = {modality: index.count(modality) for modality in MODALITIES}
            print(json.dumps({"location": index.location, "generation": index.generation, "completed": index.completed,
                              **_generations_info(args), "counts": counts,
                              "manifest": json.loads(index.manifest.to_json())}, indent=2))
            index.close()
        elif args.command == "rollback":
            print(json.dumps(_rollback(args), indent=2))
        elif args.command == "tune":
            index = open_index(args.index_dir, host=args.chroma_host, port=args.chroma_port,
                               prefix=args.collection_prefix)
            _, embeddings = index.all_embeddings(args.modality)
            index.close()
            from tweetmaker.cards import markdown_table

            print(markdown_table(measure_hnsw(embeddings, TUNING_GRID, n_queries=args.queries)))
        elif args.command == "push":
            push_index(args.index_dir, args.repo_id, private=args.private)
        elif args.command == "pull":
            print(pull_index(args.repo_id, args.index_dir, revision=args.revision))
        code = 0
    except ShardAbortedError:  # the main process of a sharded build says why
        code = 2
    except (TweetMakerError, ValueError) as error:  # a message written for the person at the terminal
        print(f"error: {error}", file=sys.stderr)
        code = 2
    finally:
        shard.close()
    if shard.count > 1:
        shard.exit(code)
    return code


def _build(args: argparse.Namespace, shard: Shard) -> BuildReport:
    """The data set and towers named on the command line, loaded, then built into the index (this process's part)."""
    from tweetmaker.data import load_tweets
    from tweetmaker.towers import load_towers

    dataset = load_tweets(args.dataset, revision=args.revision)
    towers = load_towers(args.towers, backend=args.backend, device=shard.device)
    location = IndexLocation(args.index_dir, args.chroma_host, args.chroma_port, args.collection_prefix)
    options = BuildOptions(split=args.split, rebuild=args.rebuild, batch_size=args.batch_size,
                           max_batches=args.max_batches, progress=not args.no_progress)
    return build_from(dataset, towers, location, options, source=args.dataset, revision=args.revision, shard=shard)


def _location(args: argparse.Namespace) -> IndexLocation:
    return IndexLocation(args.index_dir, args.chroma_host, args.chroma_port, args.collection_prefix)


def _generations_info(args: argparse.Namespace) -> dict:
    """When the live generation was published and what is kept beside it (for ``info``)."""
    store = Generations(_location(args))
    try:
        live = store.live()
        previous = store.previous()
        kept = store.retained(live)
        return {
            "published_at": store.published_at() if live is not None and live.id is not None else None,
            "rollback_to": previous.id if previous is not None else None,
            "kept": [{"generation": generation.id,
                      "why": "roll-back" if previous is not None and generation.id == previous.id else "in use"}
                     for generation in kept],
            "unfinished": [generation.id for generation in store.unpublished(live)],
        }
    finally:
        store.close()


def _rollback(args: argparse.Namespace) -> dict:
    """Publish the generation kept for roll-back again; the one it replaces is kept in its place."""
    location = _location(args)
    with build_lock(location.index_dir):
        store = Generations(location)
        try:
            live, previous = store.live(), store.previous()
            if previous is None:
                raise IndexNotFoundError(
                    f"The index at {location.describe()} keeps no earlier generation to roll back to (one is kept "
                    "when a build publishes a new generation)."
                )
            store.publish(previous)
            return {"location": location.describe(), "generation": previous.id,
                    "rolled_back_from": live.id if live is not None else None, "published_at": store.published_at()}
        finally:
            store.close()
