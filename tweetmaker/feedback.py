"""Learning from use, recorded: the choices people make in Compose, as JSON lines (off unless asked for).

With ``--feedback_dir DIR`` every choice a person confirms in Compose (copying or posting the tweet) is appended to
``DIR/feedback-<run>.jsonl`` as one JSON object: the draft, the tweet id of the image they picked, the hashtags
they kept, the "more like this" seed and "not" text when used, the towers identity that served the answer, and a
UTC timestamp. Nothing identifies the person: no IP address, no cookie, no session id, no user agent. These
records are the positive (draft, image, hashtags) pairs a later fine-tune can learn from.

With ``--feedback_repo OWNER/NAME`` too, the folder is pushed to that Hub data set every
``--feedback_every_minutes`` by ``huggingface_hub.CommitScheduler`` (the Spaces convention: each run appends to its
own file, so replicas never overwrite each other, and writes hold the scheduler's lock so a push never sends half a
line).
"""

from __future__ import annotations

import json
import threading
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tweetmaker.errors import InvalidInputError

RECORD_FIELDS = ("timestamp", "draft", "image_id", "hashtags", "tweet", "not", "towers")
MAX_DRAFT_CHARS = 2000
NOTICE = ("Choices you confirm here (the draft, the image you picked and the hashtags you kept; never who you are) "
          "are recorded to improve the recommendations.")


@dataclass(frozen=True)
class Choice:
    """What a person chose in Compose: the record's content, before it is stamped."""

    draft: str
    image_id: str | None
    hashtags: tuple[str, ...] = ()
    tweet: str | None = None
    not_text: str | None = None

    def record(self, towers: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        return {"timestamp": moment.isoformat(timespec="seconds"), "draft": self.draft[:MAX_DRAFT_CHARS],
                "image_id": self.image_id, "hashtags": list(self.hashtags), "tweet": self.tweet or None,
                "not": self.not_text or None, "towers": towers}


@dataclass
class FeedbackLog:
    """Appends ``Choice`` records to a JSON-lines file under ``directory``, pushed to ``repo_id`` when given.

    ``hf_api`` replaces ``huggingface_hub.HfApi`` for the pushes (tests pass the Hub stand-in)."""

    directory: Path
    towers: dict[str, Any]
    repo_id: str | None = None
    every_minutes: float = 5.0
    hf_api: Any = None
    path: Path = field(init=False)
    scheduler: Any = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).expanduser()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidInputError(f"--feedback_dir {str(self.directory)!r} cannot be created: {error}") from None
        if not self.every_minutes > 0:
            raise InvalidInputError("--feedback_every_minutes must be positive.")
        self.path = self.directory / f"feedback-{uuid.uuid4().hex[:12]}.jsonl"
        if self.repo_id:
            from huggingface_hub import CommitScheduler

            self.scheduler = CommitScheduler(repo_id=self.repo_id, repo_type="dataset", folder_path=self.directory,
                                             path_in_repo="data", every=self.every_minutes, hf_api=self.hf_api,
                                             allow_patterns=["*.jsonl"])

    def record(self, choice: Choice) -> dict[str, Any]:
        """Append one record (a line of JSON) and return it."""
        record = choice.record(self.towers)
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock, (self.scheduler.lock if self.scheduler is not None else nullcontext()):
            with self.path.open("a", encoding="utf-8") as stream:
                stream.write(line)
        return record

    def push(self) -> Any:
        """Push now (what the scheduler does every ``every_minutes``); None without a repo."""
        return self.scheduler.trigger().result() if self.scheduler is not None else None

    def close(self) -> None:
        """Push what is left and stop the scheduler."""
        if self.scheduler is not None:
            self.push()
            self.scheduler.stop()


def read_records(directory: str | Path) -> list[dict[str, Any]]:
    """Every record under ``directory`` (all runs' files), in file then line order."""
    records = []
    for path in sorted(Path(directory).glob("feedback-*.jsonl")):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return records


def open_feedback(settings: Any, towers: dict[str, Any], *, hf_api: Any = None) -> FeedbackLog | None:
    """The app's feedback log per its settings, or None when recording is off (the default)."""
    directory = getattr(settings, "feedback_dir", None)
    repo = getattr(settings, "feedback_repo", None)  # AppSettings refuses a repo without a directory
    if not directory:
        return None
    return FeedbackLog(Path(directory), towers, repo_id=repo or None,
                       every_minutes=getattr(settings, "feedback_every_minutes", 5.0), hf_api=hf_api)
