"""What the library offers right now, asked of the library itself, so a figure that needs a feature still to come
records "not available" (with the reason) instead of failing the run.

- inference backends: ``tweetmaker.inference`` (``BACKENDS``, ``DEFAULT_CPU_BACKEND``) and ``load_towers(...,
  backend=...)``;
- the app's ``--backend`` (a field of ``tweetmaker.config.AppSettings``);
- sharded index builds (``torchrun --nproc_per_node N -m tweetmaker.index build``) and the build's ``--backend``:
  read from ``python -m tweetmaker.index build --help``, the interface a user reads.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import subprocess
import sys
from functools import lru_cache

TORCH = "torch"  # fp32 eager PyTorch: the reference of every backend figure, always there
# Words a build's --help uses once it splits the corpus across processes (not "split": --split picks data splits).
SHARDING_WORDS = re.compile(r"torchrun|shard|nproc|accelerate launch|split_between_processes", re.IGNORECASE)


@lru_cache(maxsize=1)
def backends_missing() -> str:
    """Why the inference backends cannot be used ("" when they can)."""
    try:
        import tweetmaker.inference as inference
        from tweetmaker.towers import load_towers
    except ImportError as error:
        return f"tweetmaker.inference is not there yet ({error})"
    if "backend" not in inspect.signature(load_towers).parameters:
        return "load_towers() takes no backend= yet"
    if not hasattr(inference, "BACKENDS"):
        return "tweetmaker.inference has no BACKENDS"
    return ""


def backends() -> tuple[str, ...]:
    """Every inference backend the library offers, fp32 torch first (just torch when there are none yet)."""
    if backends_missing():
        return (TORCH,)
    from tweetmaker.inference import BACKENDS

    return (TORCH, *[name for name in BACKENDS if name != TORCH])


def chosen_backend() -> str:
    """The backend the library serves on a CPU by default (``DEFAULT_CPU_BACKEND``): the issue's "chosen" one."""
    if backends_missing():
        return TORCH
    import tweetmaker.inference as inference

    return str(getattr(inference, "DEFAULT_CPU_BACKEND", TORCH))


def backend_unusable(backend: str) -> str:
    """Why ``backend`` cannot run on this machine ("" when it can): its runtime not installed, say."""
    if backend == TORCH:
        return ""
    if backend not in backends():
        return backends_missing() or f"the library has no {backend!r} backend"
    if backend.startswith("onnx"):
        try:
            import onnxruntime  # noqa: F401
        except ImportError as error:
            return f"onnxruntime is not installed ({error})"
    return ""


def app_backend_missing() -> str:
    """Why ``app.py --backend`` cannot be used ("" when it can)."""
    from tweetmaker.config import AppSettings

    if "backend" not in {item.name for item in dataclasses.fields(AppSettings)}:
        return "app.py has no --backend yet (tweetmaker.config.AppSettings has no backend field)"
    return backends_missing()


@lru_cache(maxsize=1)
def index_build_help() -> str:
    """``python -m tweetmaker.index build --help``, as a user would read it."""
    from benchmarks.harness import child_env

    completed = subprocess.run([sys.executable, "-m", "tweetmaker.index", "build", "--help"], env=child_env(),
                               capture_output=True, text=True, timeout=300)
    return completed.stdout + completed.stderr


def sharded_build_missing() -> str:
    """Why a sharded build cannot be measured ("" when it can)."""
    import shutil

    if not SHARDING_WORDS.search(index_build_help()):
        return ("`python -m tweetmaker.index build --help` does not mention sharding across processes (torchrun / "
                "accelerate launch) yet")
    if shutil.which("torchrun") is None:
        return "torchrun is not on PATH"
    return ""


def build_takes_backend() -> bool:
    """Whether ``python -m tweetmaker.index build`` takes ``--backend``."""
    return "--backend" in index_build_help()
