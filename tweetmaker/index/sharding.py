"""The processes of one index build: alone, or one of N started by a distributed launcher.

``torchrun --nproc_per_node N -m tweetmaker.index build ...`` (or ``accelerate launch``) starts N processes; each
builds a ``Shard`` from the launcher's environment through Accelerate's ``PartialState``, which joins the process
group. The main process (rank 0) decides what to build and broadcasts the plan; every process embeds its part of the
work (``PartialState.split_between_processes``); the main process publishes the result. Outside a launcher (or with
one process) every collective is a no-op, so a build has one code path whatever the process count.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from tweetmaker.errors import TweetMakerError

logger = logging.getLogger(__name__)
T = TypeVar("T")
COLLECTIVE_TIMEOUT = timedelta(hours=6)  # how long a process waits for the others in one collective


class ShardAbortedError(TweetMakerError):
    """The main process of a sharded build stopped before it could say what to build (its error is the message)."""


@dataclass
class Shard:
    """This process's place in a build: ``index`` of ``count`` processes, and the collectives between them."""

    index: int = 0
    count: int = 1
    state: Any = None  # accelerate.PartialState when count > 1

    @classmethod
    def from_environment(cls) -> Shard:
        """The launcher's processes (``WORLD_SIZE`` > 1 as torchrun and accelerate launch set it), else alone."""
        if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        # Joins the process group: nccl on GPUs; gloo on CPUs, where Accelerate must be told it runs on CPUs (it
        # would otherwise start each process alone). The other processes wait in a collective while the main one
        # plans alone (listing every stored id when a large build resumes), so the default 10-30 minute timeout of
        # a collective could abort a big build; a failed process is still noticed at once by the launcher.
        state = PartialState(cpu=not torch.cuda.is_available(), timeout=COLLECTIVE_TIMEOUT)
        if state.device.type == "cpu":
            from tweetmaker.inference.choice import available_cores

            # torchrun sets OMP_NUM_THREADS=1 for every process; the machine's cores shared out use them all.
            torch.set_num_threads(available_cores())
        return cls(state.process_index, state.num_processes, state)

    @property
    def main(self) -> bool:
        return self.index == 0

    @property
    def device(self) -> Any:
        """The device this process embeds on: its own GPU under a launcher on a GPU machine, else the default."""
        return self.state.device if self.state is not None else None

    def describe(self) -> str:
        return f"process {self.index + 1}/{self.count}" if self.count > 1 else "this process"

    def part(self, items: Sequence[T]) -> list[T]:
        """This process's contiguous part of ``items``: parts differ by at most one item and cover all of them."""
        if self.count == 1:
            return list(items)
        with self.state.split_between_processes(list(items)) as part:
            return list(part)

    def largest_part(self, total: int) -> int:
        """The size of the largest part ``part`` gives of ``total`` items (every process steps as often as it)."""
        return -(-total // self.count)

    def broadcast(self, value: Any = None) -> Any:
        """The main process's ``value``, on every process."""
        if self.count == 1:
            return value
        import torch.distributed as dist

        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any] | None:
        """Every process's ``value`` in process order, on the main process (None elsewhere)."""
        if self.count == 1:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] | None = [None] * self.count if self.main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered

    def barrier(self) -> None:
        if self.count > 1:
            self.state.wait_for_everyone()

    @contextlib.contextmanager
    def announcing(self) -> Iterator[Callable[[Any], Any]]:
        """On the main process: yields ``announce(plan)``, which broadcasts the plan to the others. An error raised
        before the plan is announced is broadcast instead, so the other processes stop with it rather than wait."""
        announced = False

        def announce(plan: Any) -> Any:
            nonlocal announced
            announced = True
            return self.broadcast({"plan": plan})

        try:
            yield announce
        except BaseException as error:
            if not announced and self.count > 1:
                self.broadcast({"error": str(error) or type(error).__name__})
            raise

    def receive_plan(self) -> Any:
        """On the other processes: the plan the main process announced (``ShardAbortedError`` if it failed)."""
        message = self.broadcast()
        if "error" in message:
            raise ShardAbortedError(f"The main process of the build stopped: {message['error']}")
        return message["plan"]

    def close(self) -> None:
        """Leave the process group (a clean exit; torchrun would otherwise warn about a leaked group)."""
        if self.count > 1:
            with contextlib.suppress(Exception):
                self.state.destroy_process_group()

    def exit(self, code: int) -> NoReturn:
        """End this process with ``code`` once its output is flushed, skipping the interpreter's finalization.

        Gloo's worker threads can outlive ``destroy_process_group`` and abort the interpreter's finalization
        ("terminate called without an active exception": pytorch/pytorch#179291), about one 2-process build in ten
        here, which would turn a finished build into a failed exit code and make torchrun report it as such. By
        now everything this process wrote is closed and durable (each batch is committed as it is written).
        """
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
