"""The towers served by each backend: torch int8 (dynamic quantization) and ONNX Runtime sessions.

Every backend keeps the ``Towers`` encode interface, preprocessing (the towers' image processor and tokenizer) and
identity: a backend changes the arithmetic only, so an index built by one backend serves the queries of another.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tweetmaker.inference.choice import BackendError, available_cores, check_backend, require_runtime
from tweetmaker.inference.export import ensure_export
from tweetmaker.towers import TOWER_NAMES, Towers, l2_normalize


def quantize_torch(towers: Towers) -> Towers:
    """``towers`` with every ``nn.Linear`` dynamically quantized to int8, in place (the fp32 weights are freed)."""
    from torch.ao.quantization import quantize_dynamic

    if towers.device.type != "cpu":
        raise BackendError(f"torch-int8 runs on the CPU only; the towers are on {towers.device}.")
    with warnings.catch_warnings():
        # torch.ao.quantization and quantized tensors are deprecated upstream in favour of torchao (pytorch#184982,
        # pytorch/ao#2259); they still work in the pinned torch, and this backend is an option, not the default.
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning)
        for model in towers.models():
            quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
    towers.backend = "torch-int8"
    return towers


def session_options() -> Any:
    """ONNX Runtime options for one tower's session.

    ``intra_op_num_threads`` is the number of cores this process may use (``available_cores``): left at 0, ORT
    sizes its pool from the cores it sees on the host, which in a container or a Space with a CPU quota is more
    than the quota, and threads past it only contend. Spinning is off: ORT's pool otherwise busy-waits after each
    run and takes the CPU from whatever runs next (the Chroma query, another tower) for no gain at these sizes.
    A tower is one chain of operators, so there is no inter-op pool.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = available_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OnnxTower:
    """One exported tower in an ONNX Runtime session, with the transformers ``config`` of the tower it came from."""

    def __init__(self, path: str | Path, config: Any) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.config = config
        self.session = ort.InferenceSession(str(self.path), session_options(), providers=["CPUExecutionProvider"])
        self.input_names = [item.name for item in self.session.get_inputs()]

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Projected embeddings (not normalised) of ``pixel_values``, or of ``input_ids`` + ``attention_mask``."""
        feed = {name: inputs[name].cpu().numpy() for name in self.input_names}
        return torch.from_numpy(self.session.run(None, feed)[0])

    def to(self, device: str | torch.device) -> OnnxTower:
        if torch.device(device).type != "cpu":
            raise BackendError(f"ONNX towers run on the CPU only, not on {device}.")
        return self

    def eval(self) -> OnnxTower:
        return self


class OnnxTowers(Towers):
    """Towers served by ONNX Runtime: the same encode interface, preprocessing and identity; inference only."""

    def __init__(self, export_dir: str | Path, backend: str, configs: Sequence[Any], image_processor: Any,
                 tokenizer: Any, identity: dict[str, Any], logit_scale: float | None = None) -> None:
        require_runtime()
        self.export_dir = Path(export_dir)
        image, text, hashtag = (OnnxTower(self.export_dir / f"{name}.onnx", config)
                                for name, config in zip(TOWER_NAMES, configs))
        super().__init__(image, text, hashtag, image_processor, tokenizer, identity=identity, device="cpu",
                         logit_scale=logit_scale)
        self.backend = backend

    def _embed_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return l2_normalize(self.image_model(pixel_values=pixel_values))

    def _embed_text(self, model: Any, texts: Sequence[str]) -> torch.Tensor:
        return l2_normalize(model(**self.tokenize(texts)))

    def as_module(self) -> nn.Module:
        raise BackendError(f"{self.backend} towers are for inference; load them with backend='torch' to train.")

    def save(self, output_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
        raise BackendError(f"{self.backend} towers hold no weights to save; save the torch towers they came from.")


def onnx_towers(export_dir: str | Path, backend: str, towers_dir: str | Path, identity: dict[str, Any],
                logit_scale: float | None = None) -> OnnxTowers:
    """ONNX towers from a cached export plus the saved towers' configs, image processor and tokenizer. No torch
    weights are loaded, which keeps start-up fast and a second copy of the weights out of memory."""
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPTextConfig, CLIPVisionConfig

    towers_dir = Path(towers_dir)
    configs = [CLIPVisionConfig.from_pretrained(towers_dir / "image"),
               CLIPTextConfig.from_pretrained(towers_dir / "text"),
               CLIPTextConfig.from_pretrained(towers_dir / "hashtag")]
    return OnnxTowers(export_dir, backend, configs, AutoImageProcessor.from_pretrained(towers_dir / "image"),
                      AutoTokenizer.from_pretrained(towers_dir / "text"), identity, logit_scale)


def apply_backend(towers: Towers, backend: str, towers_dir: str | Path | None = None,
                  cache_dir: str | Path | None = None, beside: bool = True) -> Towers:
    """fp32 torch ``towers`` served by ``backend`` (ONNX exports cached as ``ensure_export`` says)."""
    backend = check_backend(backend)
    if backend == "torch":
        return towers
    if backend == "torch-int8":
        return quantize_torch(towers)
    if towers.device.type != "cpu":
        raise BackendError(f"The {backend} backend runs on the CPU only; the towers are on {towers.device}.")
    export_dir = ensure_export(towers, towers_dir, backend, cache_dir, beside)
    configs = [model.config for model in towers.models()]
    return OnnxTowers(export_dir, backend, configs, towers.image_processor, towers.tokenizer, towers.identity,
                      towers.logit_scale)
