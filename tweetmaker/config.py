"""App settings, from command-line flags and environment variables (a Space sets the latter).

Every flag has an environment variable (``TWEETMAKER_<FLAG>``); a flag given on the command line wins over the
environment, which wins over the default. ``python app.py --help`` lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from tweetmaker.errors import InvalidInputError
from tweetmaker.evaluate import BASE as COMPARE_BASE  # --compare_towers base: the main towers' own base CLIP

DEFAULT_TOWERS = "tweetmaker/tweetmaker-clip-towers"
DEFAULT_DATASET = "tweetmaker/ai-tweets"
ENV_PREFIX = "TWEETMAKER_"
# Gradio's own variables are honoured too, so a Space (which sets GRADIO_SERVER_NAME=0.0.0.0) just works.
GRADIO_ENV = {"host": "GRADIO_SERVER_NAME", "port": "GRADIO_SERVER_PORT"}
# A batch's first query waits this long at most for company: past it, waiting costs a lone query more than sharing a
# forward saves (one small forward on a CPU takes some 5-50 ms).
MAX_BATCH_WAIT_MS = 100.0
# --max_concurrency by default: with batching, requests in flight wait together for a shared forward; without,
# each runs its own forward and more than about the cores' count only contend.
BATCHED_CONCURRENCY = 16
UNBATCHED_CONCURRENCY = 2


@dataclass
class AppSettings:
    towers: str = field(
        default=DEFAULT_TOWERS,
        metadata={"help": "Trained towers: a Hub model id or a local directory written by train/finetune.py."},
    )
    towers_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of the towers."})
    compare_towers: str | None = field(
        default=None,
        metadata={"help": "Second towers served beside the main ones in a Compare tab: a local directory, a Hub model "
                          "id, or 'base' (the untrained base CLIP the main towers were fine-tuned from, zero-shot). "
                          "Each gets its own index, cached per towers under cache_dir/indexes."},
    )
    compare_towers_revision: str | None = field(
        default=None, metadata={"help": "Branch, tag or commit of --compare_towers (a Hub id)."}
    )
    backend: str = field(
        default="auto",
        metadata={"help": "Inference backend of the towers: auto (the device's measured default: onnx on a CPU, "
                          "torch on a GPU), torch (fp32), torch-int8, onnx or onnx-int8. Changes arithmetic only: an "
                          "index built with one backend serves the others. The ONNX export is made on first use and "
                          "cached beside the towers (or pushed with them: finetune.py --export_backend)."},
    )
    dataset: str = field(
        default=DEFAULT_DATASET,
        metadata={"help": "Tweets data set (Hub id, save_to_disk dir or parquet dir), used to build the index."},
    )
    dataset_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of the data set."})
    dataset_split: str | None = field(
        default=None, metadata={"help": "Split(s) to index, comma-separated; default all splits."}
    )
    index_dir: str = field(
        default=".tweetmaker_cache/index", metadata={"help": "Directory of the persisted Chroma index."}
    )
    index_repo: str | None = field(
        default=None, metadata={"help": "Hub dataset repo holding a built index, pulled when index_dir is empty."}
    )
    chroma_host: str | None = field(default=None, metadata={"help": "Use a Chroma server at this host."})
    chroma_port: int = field(default=8000, metadata={"help": "Port of the Chroma server."})
    cache_dir: str = field(
        default=".tweetmaker_cache", metadata={"help": "Where the offline demo keeps its corpus, model and index."}
    )
    demo: bool = field(
        default=False, metadata={"help": "Force the synthetic offline demo (tiny model trained on the twin)."}
    )
    host: str = field(default="127.0.0.1", metadata={"help": "Address to serve on (0.0.0.0 to expose it)."})
    port: int = field(default=7860, metadata={"help": "Port to serve on."})
    share: bool = field(default=False, metadata={"help": "Create a public Gradio share link."})
    max_concurrency: int | None = field(
        default=None,
        metadata={"help": "Model-bound requests handled at once. Default: 16 with batching, as each tower runs one "
                          "forward at a time shared by the requests waiting for it (--batch_max_size), so more "
                          "requests in flight make bigger batches, not more contention; 2 with batching off "
                          "(--batch_max_size 1), where each request runs its own forward."},
    )
    queue_size: int = field(
        default=64, metadata={"help": "Requests waiting at most (beyond those running); beyond it users are asked "
                                      "to retry."}
    )
    batch_max_size: int = field(
        default=16,
        metadata={"help": "Most queries encoded in one forward per tower: queries that arrive together share it, "
                          "which is cheaper than one forward each. 1 turns batching off."},
    )
    batch_wait_ms: float = field(
        default=3.0,
        metadata={"help": "How long (ms) a query waits for others to share its forward; a lone query waits no "
                          f"longer. At most {MAX_BATCH_WAIT_MS:g}."},
    )
    max_file_size_mb: float = field(default=10.0, metadata={"help": "Largest upload accepted, in megabytes."})
    max_text_chars: int = field(default=2000, metadata={"help": "Longest draft text accepted."})
    rebuild_stale_index: bool = field(
        default=True, metadata={"help": "Rebuild an index made by other towers instead of refusing to start."}
    )
    mcp: bool = field(
        default=False, metadata={"help": "Also serve the recommendation endpoints as MCP tools at /gradio_api/mcp/ "
                                         "(Gradio's GRADIO_MCP_SERVER=true works too)."}
    )
    feedback_dir: str | None = field(
        default=None, metadata={"help": "Record the choices people confirm in Compose as JSON lines here (off "
                                        "by default; no IP address or cookie is ever recorded)."}
    )
    feedback_repo: str | None = field(
        default=None, metadata={"help": "Hub data set (OWNER/NAME) the feedback folder is pushed to periodically."}
    )
    feedback_every_minutes: float = field(
        default=5.0, metadata={"help": "Minutes between two pushes of the feedback folder to --feedback_repo."}
    )

    def __post_init__(self) -> None:
        from tweetmaker.inference.choice import AUTO, check_backend

        if self.backend != AUTO:
            check_backend(self.backend)  # a typo is an error at start, not a silent fall back to the offline demo
        if not 0 < self.port < 65536:
            raise InvalidInputError(f"--port must be between 1 and 65535, got {self.port}.")
        if self.queue_size < 1:
            raise InvalidInputError("--queue_size must be at least 1.")
        if self.batch_max_size < 1:
            raise InvalidInputError(f"--batch_max_size must be at least 1 (1 turns batching off), got "
                                    f"{self.batch_max_size}.")
        if self.max_concurrency is None:
            self.max_concurrency = BATCHED_CONCURRENCY if self.batch_max_size > 1 else UNBATCHED_CONCURRENCY
        if self.max_concurrency < 1:
            raise InvalidInputError("--max_concurrency must be at least 1.")
        if not 0 <= self.batch_wait_ms <= MAX_BATCH_WAIT_MS:
            raise InvalidInputError(f"--batch_wait_ms must be between 0 and {MAX_BATCH_WAIT_MS:g} (a lone query "
                                    f"waits that long), got {self.batch_wait_ms:g}.")
        if self.max_file_size_mb <= 0:
            raise InvalidInputError("--max_file_size_mb must be positive.")
        if self.max_text_chars < 1:
            raise InvalidInputError("--max_text_chars must be at least 1.")
        if self.feedback_repo and not self.feedback_dir:
            raise InvalidInputError("--feedback_repo needs --feedback_dir (the folder whose records it pushes).")
        if not self.feedback_every_minutes > 0:
            raise InvalidInputError("--feedback_every_minutes must be positive.")
        if self.compare_towers is not None and not self.compare_towers.strip():
            self.compare_towers = None  # an empty TWEETMAKER_COMPARE_TOWERS means: no comparison
        if self.compare_towers_revision and (self.compare_towers is None or self.compare_towers == COMPARE_BASE):
            raise InvalidInputError("--compare_towers_revision needs --compare_towers naming a Hub id or directory.")

    @property
    def index_path(self) -> Path:
        return Path(self.index_dir).expanduser()

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser()


def env_defaults(environ: Mapping[str, str]) -> dict[str, object]:
    """Settings found in the environment, converted to each field's type."""
    values: dict[str, object] = {}
    for item in fields(AppSettings):
        names = [ENV_PREFIX + item.name.upper()]
        if item.name in GRADIO_ENV:
            names.append(GRADIO_ENV[item.name])
        raw = next((environ[name] for name in names if environ.get(name) not in (None, "")), None)
        if raw is None:
            continue
        kind = item.type if isinstance(item.type, str) else getattr(item.type, "__name__", str(item.type))
        try:
            if kind.startswith("bool"):
                values[item.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif kind.startswith("int"):
                values[item.name] = int(raw)
            elif kind.startswith("float"):
                values[item.name] = float(raw)
            else:
                values[item.name] = raw
        except ValueError:
            raise InvalidInputError(f"Environment variable {names[0]}={raw!r} is not a valid {kind}.") from None
    return values


def parse_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> AppSettings:
    """Settings from flags (``argv``) over environment variables (``environ``) over defaults."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(AppSettings, description="TweetMaker: recommend images and hashtags for a tweet.")
    parser.set_defaults(**env_defaults(os.environ if environ is None else environ))
    (settings,) = parser.parse_args_into_dataclasses(args=list(argv) if argv is not None else None)
    return settings
