"""Timing helpers and the figure record the report is made of.

Every figure is a ratio against a reference measured in the same run, and the two sides are measured
interleaved (A B B A ...) so that load from other processes on a shared machine hits both alike.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

MS = 1000.0  # seconds -> milliseconds


@dataclass
class Stats:
    """Summary of repeated measurements (warm-up already excluded)."""

    n: int
    median: float
    p95: float
    mean: float
    min: float
    max: float
    unit: str = "s"

    @classmethod
    def of(cls, samples: Sequence[float], unit: str = "s") -> Stats:
        values = np.asarray(list(samples), dtype=np.float64)
        if values.size == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan, unit)
        return cls(
            int(values.size),
            float(np.median(values)),
            float(np.percentile(values, 95)),
            float(values.mean()),
            float(values.min()),
            float(values.max()),
            unit,
        )

    def scaled(self, factor: float, unit: str) -> Stats:
        """The same summary in another unit (seconds -> ms: factor 1000)."""
        return Stats(self.n, self.median * factor, self.p95 * factor, self.mean * factor, self.min * factor,
                     self.max * factor, unit)


def median(samples: Sequence[float]) -> float:
    """The median of the samples (NaN when there are none): the value a figure reports."""
    return float(np.median(samples)) if len(samples) else math.nan


def ms_stats(samples: Sequence[float]) -> Stats:
    """The summary of samples taken in seconds, in milliseconds."""
    return Stats.of(samples).scaled(MS, "ms")


FIGURE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_\-]*)+$")


def size_tag(count: int) -> str:
    """A count as it appears in a figure id: 10000 -> "10k", 1500 -> "1500"."""
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)


@dataclass
class Figure:
    """One reported figure: a value, the reference it is compared with, their ratio and the target.

    ``id`` is stable across runs and profiles' repetitions (``group.what.variant``, e.g.
    ``latency.text_to_image.10k``): BENCHMARKS.json readers and the targets table find a figure by it, so renaming a
    figure's title never breaks them. ``ratio`` is value / reference. ``target`` is a predicate on the ratio
    (``("<=", 1.3)``) or on the value when ``target_on`` is "value"; ``met`` is None when the issue sets no target
    for the figure, or when the figure could not be measured: ``unavailable`` then says why (a feature another part
    of the project has not shipped yet, a runtime not installed), and value and reference are NaN.
    """

    id: str
    number: int
    name: str
    value: float
    reference: float
    unit: str
    description: str = ""
    reference_description: str = ""
    target: tuple[str, float] | None = None
    target_on: str = "ratio"
    extra_targets: list[tuple[str, str, float]] = field(default_factory=list)  # (on, op, bound)
    value_stats: Stats | None = None
    reference_stats: Stats | None = None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    unavailable: str = ""

    def __post_init__(self) -> None:
        if not FIGURE_ID.match(self.id):
            raise ValueError(f"Figure id {self.id!r} is not of the form group.what[.variant] (lowercase, digits, _ -)")

    @classmethod
    def not_available(cls, id: str, number: int, name: str, unit: str, reason: str, **fields: Any) -> Figure:
        """A figure that could not be measured in this run, and why (it keeps its id, name and target)."""
        return cls(id=id, number=number, name=name, value=math.nan, reference=math.nan, unit=unit,
                   unavailable=reason, **fields)

    @property
    def available(self) -> bool:
        return not self.unavailable

    @property
    def ratio(self) -> float:
        if self.reference == 0 or not math.isfinite(self.reference) or not math.isfinite(self.value):
            return math.nan
        return self.value / self.reference

    def _checks(self) -> list[tuple[str, str, float]]:
        checks = [(self.target_on, *self.target)] if self.target else []
        return checks + list(self.extra_targets)

    @property
    def met(self) -> bool | None:
        checks = self._checks()
        if not checks or not self.available:
            return None
        return all(_holds(self.ratio if on == "ratio" else self.value, op, bound) for on, op, bound in checks)

    @property
    def target_text(self) -> str:
        parts = [f"{'ratio' if on == 'ratio' else 'value'} {op} {bound:g}" for on, op, bound in self._checks()]
        return " and ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "name": self.name,
            "value": _finite(self.value),
            "reference": _finite(self.reference),
            "ratio": _finite(self.ratio),
            "unit": self.unit,
            "target": self.target_text or None,
            "met": self.met,
            "description": self.description,
            "reference_description": self.reference_description,
            "value_stats": asdict(self.value_stats) if self.value_stats else None,
            "reference_stats": asdict(self.reference_stats) if self.reference_stats else None,
            "notes": self.notes,
            "details": self.details,
            "available": self.available,
            "unavailable": self.unavailable or None,
        }


def _holds(value: float, op: str, bound: float) -> bool:
    if not math.isfinite(value):
        return False
    return {"<=": value <= bound, ">=": value >= bound, "<": value < bound, ">": value > bound}[op]


def _finite(value: float) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def interleaved(
    subject: Callable[[int], Any],
    reference: Callable[[int], Any],
    *,
    repeats: int,
    warmup: int = 1,
) -> tuple[list[float], list[float]]:
    """Seconds per call of ``subject(i)`` and ``reference(i)``, measured alternately, warm-up excluded.

    The order flips every repetition (A B, B A, ...) so a slow spell on the machine is shared by both sides.
    """
    subject_times, reference_times = rotated([subject, reference], repeats=repeats, warmup=warmup)
    return subject_times, reference_times


def rotated(functions: Sequence[Callable[[int], Any]], *, repeats: int, warmup: int = 1) -> list[list[float]]:
    """Seconds per call of each function, all measured in every repetition in a rotating order."""
    for i in range(warmup):
        for function in functions:
            function(i)
    times: list[list[float]] = [[] for _ in functions]
    count = len(functions)
    for i in range(repeats):
        for offset in range(count):
            which = (i + offset) % count
            began = time.perf_counter()
            functions[which](warmup + i)
            times[which].append(time.perf_counter() - began)
    return times


def repeated(function: Callable[[int], Any], *, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of ``function(i)``, warm-up excluded."""
    for i in range(warmup):
        function(i)
    times = []
    for i in range(repeats):
        began = time.perf_counter()
        function(warmup + i)
        times.append(time.perf_counter() - began)
    return times


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask): what the figures' machine offers."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def load_average() -> tuple[float, float, float]:
    """The 1/5/15-minute load average (how busy the shared machine was)."""
    try:
        return os.getloadavg()
    except OSError:
        return (math.nan, math.nan, math.nan)
