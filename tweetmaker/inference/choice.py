"""The names of the inference backends, the default per device, and what a machine gives them (cores, runtimes)."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import torch

from tweetmaker.errors import InvalidInputError

BACKENDS = ("torch", "torch-int8", "onnx", "onnx-int8")
AUTO = "auto"  # the device's default: DEFAULT_CPU_BACKEND on a CPU, torch on a GPU
# Chosen by measurement (issue 13). Provisional ratios, taken interleaved on 2 CPU cores shared with other work;
# benchmarks/run.py reports the final ones. Batch-of-one encode latency at ViT-B/32 shapes vs fp32 torch
# (`python -m tweetmaker.inference.compare latency --towers DIR [--threads 1]`), text / image:
#   onnx       0.55x / 0.47-0.51x   (18.5 vs 32.9 ms and 61.6 vs 122 ms at 1 thread, load average ~3)
#   onnx-int8  0.17-0.22x / 0.18-0.20x
#   torch-int8 0.24-0.32x / 0.24-0.26x
# (On busier cores, load 5-9, torch's two-thread OpenMP pool collapsed to 0.9-1.9 s a forward; onnx stayed at 30 and
# 74 ms.) Top-10 agreement with fp32 on the twin with trained towers (`compare agreement`), index rebuilt by the
# backend / built by fp32 torch: onnx 1.000 / 1.000, all 15 quality figures equal; onnx-int8 0.68-0.74 / 0.77-0.89
# and torch-int8 0.54-0.59 / 0.70-0.83, though their quality figures stay within 0.01 (torch-int8's text->image
# recall@10 at exactly 0.01): the twin's top-10 scores sit a median 0.0015 apart, and int8's error (cosine ~0.9999
# to fp32) reorders them. Per-channel weights (0.70-0.90), layer groups kept in fp32 (at most 0.92) and 8-bit
# weight-only MatMulNBits (0.92-0.97, and slower than fp32) did not reach 0.95 either. Only onnx meets the bar
# (>= 95% of positions, every figure within 0.01), so it is the CPU default; the int8 backends stay selectable
# where speed matters more than exact order.
DEFAULT_CPU_BACKEND = "onnx"
# The backends measured to meet the bar on the twin (tests/test_backends.py holds them to it).
MEETS_AGREEMENT_BAR = ("torch", "onnx")
THREADS_ENV = "TWEETMAKER_THREADS"


class BackendError(InvalidInputError):
    """An inference backend that cannot be used as asked (unknown name, wrong device, missing runtime)."""


def check_backend(name: str) -> str:
    """``name`` if it is one of ``BACKENDS``, else a ``BackendError`` that lists the choices."""
    if name not in BACKENDS:
        raise BackendError(
            f"Unknown inference backend {name!r}; choose one of {', '.join(BACKENDS)} (or {AUTO!r} for the "
            f"device's default: {DEFAULT_CPU_BACKEND} on a CPU, torch on a GPU)."
        )
    return name


def default_backend(device: str | torch.device | None = None) -> str:
    """What ``auto`` picks: ``DEFAULT_CPU_BACKEND`` on a CPU, fp32 torch on a GPU (int8 and ONNX Runtime's CPU
    provider are CPU speed-ups; on a GPU the eager forward is already fast and keeps the GPU's precision choices)."""
    from tweetmaker.towers import default_device

    device = torch.device(device) if device is not None else default_device()
    return DEFAULT_CPU_BACKEND if device.type == "cpu" else "torch"


def resolve_backend(name: str | None, device: str | torch.device | None = None) -> str:
    """A backend name (``None`` or ``auto``: the device's default), checked against the device."""
    backend = default_backend(device) if name in (None, AUTO) else check_backend(str(name))
    if backend != "torch" and device is not None and torch.device(device).type != "cpu":
        raise BackendError(f"The {backend} backend runs on the CPU only; use the torch backend on {device}.")
    return backend


def is_onnx(backend: str) -> bool:
    return backend.startswith("onnx")


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask, capped by a cgroup v2 CPU quota (containers, Spaces), then
    shared with the other processes a launcher started on this machine (``$LOCAL_WORLD_SIZE``: torchrun, accelerate
    launch), then capped by ``$TWEETMAKER_THREADS`` (per process)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError, IndexError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    with contextlib.suppress(ValueError):  # the processes share what the machine (or its quota) gives them
        cores //= max(1, int(os.environ.get("LOCAL_WORLD_SIZE") or 1))
    with contextlib.suppress(ValueError):  # an explicit per-process cap has the last word
        cores = min(max(1, cores), int(os.environ.get(THREADS_ENV) or cores))
    return max(1, cores)


def require_runtime(export: bool = False) -> None:
    """A clear error when ONNX Runtime (or, to export, onnx and onnxscript) is not installed."""
    for module in ["onnxruntime"] + (["onnx", "onnxscript"] if export else []):
        try:
            __import__(module)
        except ImportError as error:
            raise BackendError(
                f"The ONNX backends need {module} ({error}): `pip install -r requirements.txt`, "
                "or use the torch backend."
            ) from error
