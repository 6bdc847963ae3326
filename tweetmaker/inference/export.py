"""ONNX exports of the towers, made once and cached beside them.

An export is keyed by what makes two exports interchangeable: the towers' content hash, the backend and
``EXPORT_VERSION``. It lives beside the towers (``TOWERS/.onnx/<hash>/<backend>-v<N>/``) when that directory is a
writable local folder, so it travels with them (a Hub push, a copy), else under ``default_cache_dir()``. It is
written into a staging directory and renamed into place (``tweetmaker.atomic.staged_directory``) under a file lock:
a killed export never leaves half a model, and concurrent processes (the ranks of a sharded build) export once.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tweetmaker.atomic import staged_directory
from tweetmaker.inference.choice import (
    AUTO,
    BACKENDS,
    BackendError,
    check_backend,
    is_onnx,
    require_runtime,
    resolve_backend,
)
from tweetmaker.towers import TOWER_NAMES, Towers

# Bump when the export recipe changes (opset, quantization settings, inputs): older cached exports are then ignored.
EXPORT_VERSION = 1
EXPORT_DIRNAME = ".onnx"
EXPORT_FILE = "export.json"
EXPORT_FORMAT = "tweetmaker-onnx"
ONNX_OPSET = 18
CACHE_ENV = "TWEETMAKER_ONNX_CACHE"


def default_cache_dir() -> Path:
    """Where exports go when the towers' directory cannot take them: ``$TWEETMAKER_ONNX_CACHE``, else
    ``$XDG_CACHE_HOME/tweetmaker/onnx`` (``~/.cache/tweetmaker/onnx``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "tweetmaker" / "onnx"


def export_key(identity: dict[str, Any], backend: str) -> Path:
    """``<content hash>/<backend>-v<EXPORT_VERSION>``, relative to a cache root."""
    content = str(identity.get("content_hash") or "")
    if not content:
        raise BackendError("These towers have no content hash (they were never saved): save them, then load them.")
    return Path(content.split(":")[-1]) / f"{backend}-v{EXPORT_VERSION}"


def _roots(towers_dir: str | Path | None, cache_dir: str | Path | None) -> list[Path]:
    roots = [Path(towers_dir) / EXPORT_DIRNAME] if towers_dir is not None else []
    return roots + [Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()]


def _complete(directory: Path, identity: dict[str, Any], backend: str) -> bool:
    """Whether ``directory`` holds a whole export of these towers for ``backend`` (its manifest is written last)."""
    with contextlib.suppress(OSError, ValueError):
        manifest = json.loads((directory / EXPORT_FILE).read_text())
        return (
            manifest.get("format") == EXPORT_FORMAT
            and manifest.get("version") == EXPORT_VERSION
            and manifest.get("backend") == backend
            and manifest.get("content_hash") == identity.get("content_hash")
            and all((directory / f"{name}.onnx").is_file() for name in TOWER_NAMES)
        )
    return False


def find_export(
    towers_dir: str | Path | None, identity: dict[str, Any], backend: str, cache_dir: str | Path | None = None
) -> Path | None:
    """The cached export of these towers for ``backend``: beside the towers first, then in the cache directory."""
    key = export_key(identity, backend)
    for root in _roots(towers_dir, cache_dir):
        if _complete(root / key, identity, backend):
            return root / key
    return None


def _writable_root(towers_dir: str | Path | None, cache_dir: str | Path | None, beside: bool) -> Path:
    """Beside the towers when ``beside`` and their directory can take it, else the cache directory."""
    roots = _roots(towers_dir if beside else None, cache_dir)
    for root in roots:
        with contextlib.suppress(OSError):
            root.mkdir(parents=True, exist_ok=True)
            if os.access(root, os.W_OK):
                return root
    raise BackendError(f"No writable place for the ONNX export (tried {[str(root) for root in roots]}); "
                       f"set {CACHE_ENV} to a writable directory.")


@contextlib.contextmanager
def _export_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``, released by the kernel if the process dies, so that one process exports."""
    import fcntl

    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_export(
    towers: Towers, towers_dir: str | Path | None, backend: str, cache_dir: str | Path | None = None,
    beside: bool = True,
) -> Path:
    """The export of fp32 torch ``towers`` for an ONNX ``backend``, made now (atomically, once) if not cached.

    A new export goes beside the towers (``towers_dir/.onnx``) when ``beside`` and that is writable, else into the
    cache directory; ``beside=False`` is for towers in a Hub download, whose folder belongs to the Hub's cache.
    """
    if not is_onnx(check_backend(backend)):
        raise BackendError(f"{backend} needs no export; only {[name for name in BACKENDS if is_onnx(name)]} do.")
    found = find_export(towers_dir, towers.identity, backend, cache_dir)
    if found is not None:
        return found
    require_runtime(export=True)
    target = _writable_root(towers_dir, cache_dir, beside) / export_key(towers.identity, backend)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _export_lock(target.with_name(target.name + ".lock")):
        if _complete(target, towers.identity, backend):  # another process made it while this one waited
            return target
        with staged_directory(target) as staging:
            write_export(towers, backend, staging)
    return target


def write_export(towers: Towers, backend: str, output_dir: str | Path) -> Path:
    """Export the three towers for ``backend`` into ``output_dir``: ``{image,text,hashtag}.onnx`` + manifest."""
    import onnx
    import onnxruntime

    output = Path(output_dir)
    with tempfile.TemporaryDirectory(dir=output) as scratch:
        for name, model in zip(TOWER_NAMES, towers.models()):
            fp32 = output / f"{name}.onnx" if backend == "onnx" else Path(scratch) / f"{name}.onnx"
            _export_tower(towers, name, model, fp32)
            if backend == "onnx-int8":
                quantize_onnx(fp32, output / f"{name}.onnx")
    manifest = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "backend": backend,
        "content_hash": towers.identity.get("content_hash"),
        "source": towers.identity.get("source"),
        "opset": ONNX_OPSET,
        "embedding_dim": towers.embedding_dim,
        "max_text_length": towers.max_text_length,
        "made_with": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
    (output / EXPORT_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return output


class _ImageEmbeds(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).image_embeds


class _TextEmbeds(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).text_embeds


def _export_tower(towers: Towers, name: str, model: nn.Module, path: Path) -> None:
    """One tower -> ONNX: projected (not yet normalised) embeddings out; batch (and sequence) axes dynamic."""
    import logging

    from PIL import Image

    batch = torch.export.Dim("batch", min=1, max=4096)
    model = model.to("cpu").eval()
    if name == "image":
        # The image processor's own output fixes the size, whatever its resize and crop settings.
        pixels = towers.preprocess_images([Image.new("RGB", (64, 48)), Image.new("RGB", (48, 64))])
        wrapper, args, names = _ImageEmbeds(model), (pixels,), ["pixel_values"]
        shapes: dict[str, Any] = {"pixel_values": {0: batch}}
    else:
        # Real tokens (start, words, end, padding) so that the export traces the pooling at the end token.
        tokens = towers.tokenize(["a photo of three red robots", "ai"])
        sequence = torch.export.Dim("sequence", min=2, max=towers.max_text_length)
        wrapper, names = _TextEmbeds(model), ["input_ids", "attention_mask"]
        args = (tokens["input_ids"], tokens["attention_mask"])
        shapes = {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it logs every torchvision op it skips: noise, not problems
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about code paths the towers do not take
            program = torch.onnx.export(wrapper, args, input_names=names, output_names=["embeds"], dynamo=True,
                                        dynamic_shapes=shapes, opset_version=ONNX_OPSET, verbose=False)
    finally:
        exporter_log.setLevel(level)
    program.save(str(path), external_data=False)


def quantize_onnx(source: str | Path, target: str | Path) -> None:
    """int8 weights for the matrix multiplications (dynamic: activations are quantized per batch at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(Path(source), Path(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])


def export_backend(towers_dir: str | Path, backend: str | None = AUTO, cache_dir: str | Path | None = None
                   ) -> Path | None:
    """Write the export of the saved towers in ``towers_dir`` for ``backend`` (``auto``: the CPU default) beside
    them, e.g. right after training, so that the app finds it instead of exporting on its first start. Returns its
    directory; ``None`` for the torch backends, which need no export."""
    from tweetmaker.towers import load_towers

    backend = resolve_backend(backend, "cpu")
    if not is_onnx(backend):
        return None
    if not Path(towers_dir).is_dir():
        raise BackendError(f"{towers_dir} is not a directory of saved towers; export_backend writes beside them.")
    # Loading with the backend finds a cached export, else exports, and proves that the export loads.
    return load_towers(towers_dir, device="cpu", backend=backend, cache_dir=cache_dir).export_dir
