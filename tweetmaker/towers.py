"""The three CLIP towers of TweetMaker: image, tweet text and hashtags.

A base CLIP checkpoint (a ``CLIPModel`` on the Hub, e.g. ``openai/clip-vit-base-patch32``, or any local directory
in the standard transformers format) is split into an image tower (``CLIPVisionModelWithProjection``), a text tower
and a hashtag tower (two ``CLIPTextModelWithProjection`` that start from the same text weights). Trained towers are
saved as ``DIR/image``, ``DIR/text``, ``DIR/hashtag`` (weights + processor/tokenizer each) plus ``DIR/towers.json``.

Weights are read from safetensors only and ``trust_remote_code`` is never used. ``write_tiny_clip`` makes a tiny,
randomly initialised CLIP base offline (tokenizer included) for tests, benchmarks and the offline demo::

    python -m tweetmaker.towers tiny --output_dir DIR
    python -m tweetmaker.towers info SOURCE
    python -m tweetmaker.towers export --towers DIR --backend onnx-int8

``load_towers(..., backend=...)`` serves the towers with another inference backend (ONNX Runtime, int8): see
``tweetmaker.inference``; the towers' identity, preprocessing and encode interface stay the same.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tweetmaker.errors import InvalidInputError
from tweetmaker.tiny_clip import TINY_DEFAULTS, tiny_tokenizer, write_tiny_clip  # noqa: F401 - re-exported

TOWER_NAMES = ("image", "text", "hashtag")
TOWERS_FILE = "towers.json"
TOWERS_FORMAT = "tweetmaker-towers"
DEFAULT_BASE_MODEL = "openai/clip-vit-base-patch32"
# Files worth fetching from a Hub repo: configs, tokenizer files and safetensors weights (never pickles), plus the
# ONNX exports pushed with the towers (tweetmaker.inference; ``*`` also matches "/" in these patterns) and the run's
# loss.png (all_results.json is a *.json), which the app's Models tab shows.
_HUB_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*/*.json", "*/*.txt", "*/*.safetensors", "*.md", "*.onnx",
                 "*.png"]


class TowersError(InvalidInputError):
    """A source that cannot be used as CLIP towers (not CLIP, no safetensors weights, missing files)."""


def default_device() -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def l2_normalize(embeddings: torch.Tensor) -> torch.Tensor:
    """Unit-length rows; the epsilon keeps an all-zero row finite."""
    return embeddings / embeddings.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def image_embeddings(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """L2-normalised projected embeddings of an image tower (keeps gradients)."""
    return l2_normalize(model(pixel_values=pixel_values).image_embeds)


def text_embeddings(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """L2-normalised projected embeddings of a text or hashtag tower (keeps gradients)."""
    return l2_normalize(model(input_ids=input_ids, attention_mask=attention_mask).text_embeds)


def preprocess_images(image_processor: Any, images: Sequence[Any]) -> torch.Tensor:
    """PIL images (any mode) -> ``pixel_values`` (batch, 3, H, W) float32, as the image tower expects."""
    rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
    return image_processor(images=rgb, return_tensors="pt")["pixel_values"]


def tokenize_texts(tokenizer: Any, texts: Sequence[str | None], max_length: int) -> dict[str, torch.Tensor]:
    """Texts (None counts as "") -> padded ``input_ids``/``attention_mask`` truncated to ``max_length`` tokens."""
    clean = [text if isinstance(text, str) else "" for text in texts]
    encoded = tokenizer(clean, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


class TowersModule(nn.Module):
    """The three towers as one ``nn.Module`` so training can ``prepare`` (and DDP-wrap) them together."""

    def __init__(self, image_model: nn.Module, text_model: nn.Module, hashtag_model: nn.Module) -> None:
        super().__init__()
        self.image = image_model
        self.text = text_model
        self.hashtag = hashtag_model

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        hashtag_input_ids: torch.Tensor | None = None,
        hashtag_attention_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Embed whatever inputs are given; returns ``{"image"|"text"|"hashtag": (batch, dim)}``."""
        out: dict[str, torch.Tensor] = {}
        if pixel_values is not None:
            out["image"] = image_embeddings(self.image, pixel_values)
        if input_ids is not None:
            out["text"] = text_embeddings(self.text, input_ids, attention_mask)
        if hashtag_input_ids is not None:
            out["hashtag"] = text_embeddings(self.hashtag, hashtag_input_ids, hashtag_attention_mask)
        return out


class Towers:
    """Image, text and hashtag towers with their processor/tokenizer and one encode interface."""

    backend = "torch"  # the inference backend (tweetmaker.inference); never part of the identity
    # The local folder the towers were read from (a Hub download's snapshot too), where a run's all_results.json and
    # loss.png are; None for towers made in memory. Set by load_towers / build_towers_from_base.
    local_dir: Path | None = None

    def __init__(
        self,
        image_model: nn.Module,
        text_model: nn.Module,
        hashtag_model: nn.Module,
        image_processor: Any,
        tokenizer: Any,
        identity: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        logit_scale: float | None = None,
    ) -> None:
        self.image_model = image_model
        self.text_model = text_model
        self.hashtag_model = hashtag_model
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.identity = dict(identity or {})
        self.logit_scale = logit_scale
        self.device = torch.device(device) if device is not None else default_device()
        self.to(self.device)
        for model in self.models():
            model.eval()

    def models(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        return self.image_model, self.text_model, self.hashtag_model

    def to(self, device: str | torch.device) -> Towers:
        self.device = torch.device(device)
        for model in self.models():
            model.to(self.device)
        return self

    @property
    def embedding_dim(self) -> int:
        return int(self.image_model.config.projection_dim)

    @property
    def max_text_length(self) -> int:
        """The text towers' context length (77 for OpenAI CLIP); longer texts are truncated."""
        lengths = (self.text_model.config.max_position_embeddings, self.hashtag_model.config.max_position_embeddings)
        return int(min(lengths))

    def as_module(self) -> TowersModule:
        """The towers as one trainable module (shares the parameters, no copy)."""
        return TowersModule(self.image_model, self.text_model, self.hashtag_model)

    # -- preprocessing (shared by encoding and the training collate function) --------------------------------------
    def preprocess_images(self, images: Sequence[Any]) -> torch.Tensor:
        """PIL images -> ``pixel_values`` (batch, 3, H, W) float32 on the CPU."""
        return preprocess_images(self.image_processor, images)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Texts -> padded ``input_ids``/``attention_mask``, truncated to the context length."""
        return tokenize_texts(self.tokenizer, texts, self.max_text_length)

    # -- encoding ----------------------------------------------------------------------------------------------------
    def encode_images(self, images: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 image embeddings, shape (len(images), embedding_dim)."""
        return self._encode(images, batch_size, self._embed_images)

    def encode_pixel_values(self, pixel_values: torch.Tensor, batch_size: int = 32) -> np.ndarray:
        """``encode_images`` of images already through ``preprocess_images``: an index build decodes and preprocesses
        the next images in another thread while the towers embed these."""
        return self._encode(list(pixel_values), batch_size, lambda rows: self._embed_pixels(torch.stack(rows)))

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised float32 embeddings of tweet texts (text tower)."""
        return self._encode(texts, batch_size, lambda batch: self._embed_text(self.text_model, batch))

    def encode_hashtags(self, hashtags: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised float32 embeddings of raw hashtag strings such as ``"#AI #ml"`` (hashtag tower)."""
        return self._encode(hashtags, batch_size, lambda batch: self._embed_text(self.hashtag_model, batch))

    def _embed_images(self, images: Sequence[Any]) -> torch.Tensor:
        return self._embed_pixels(self.preprocess_images(images))

    def _embed_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return image_embeddings(self.image_model, self._on_device(pixel_values))

    def _embed_text(self, model: nn.Module, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenize(texts)
        return text_embeddings(model, self._on_device(tokens["input_ids"]), self._on_device(tokens["attention_mask"]))

    def _on_device(self, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.is_floating_point():
            # The towers may have been cast (bf16 on a GPU); inputs follow the weights' dtype.
            tensor = tensor.to(dtype=next(self.image_model.parameters()).dtype)
        return tensor.to(self.device)

    def _encode(self, items: Sequence[Any], batch_size: int, embed: Any) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        items = list(items)
        if not items:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(items), batch_size):
                chunks.append(embed(items[start : start + batch_size]).float().cpu().numpy())
        return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)

    # -- persistence -------------------------------------------------------------------------------------------------
    def save(self, output_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``output_dir/{image,text,hashtag}`` (safetensors + processor/tokenizer) and ``towers.json``."""
        output = Path(output_dir)
        output.mkdir(parents=True, exist_ok=True)
        for name, model in zip(TOWER_NAMES, self.models()):
            model.save_pretrained(output / name, safe_serialization=True)
        self.image_processor.save_pretrained(output / "image")
        self.tokenizer.save_pretrained(output / "text")
        self.tokenizer.save_pretrained(output / "hashtag")
        manifest = {
            "format": TOWERS_FORMAT,
            "version": 1,
            "towers": {name: name for name in TOWER_NAMES},
            "embedding_dim": self.embedding_dim,
            "max_text_length": self.max_text_length,
            "logit_scale": self.logit_scale,
            # The base this was built from keeps its identity; the saved towers get their own content hash on load.
            "base_model": self.identity.get("base_model", self.identity),
            **(extra or {}),
        }
        (output / TOWERS_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        return output


# -- identity ---------------------------------------------------------------------------------------------------------
def content_hash(directory: str | Path, subdirs: Sequence[str] | None = None) -> str:
    """sha256 over the ``*.safetensors`` files under ``directory`` (or only its ``subdirs``): relative path + bytes."""
    root = Path(directory)
    digest = hashlib.sha256()
    if subdirs is None:
        files = sorted(root.rglob("*.safetensors"))
    else:
        files = sorted(path for name in subdirs for path in (root / name).rglob("*.safetensors"))
    if not files:
        raise TowersError(f"No .safetensors weights under {root}")
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def resolve_source(
    source: str | Path, revision: str | None = None, token: str | None = None, api: Any | None = None
) -> tuple[Path, str | None]:
    """A local directory as is, or a Hub repo id downloaded (safetensors/configs only) -> (local dir, revision)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path, revision
    if path.exists() or str(source).startswith((".", "/", "~")) or str(source).count("/") > 1:
        raise TowersError(f"{source} is not a directory nor a Hub repo id")
    import huggingface_hub

    # ``api`` (an ``HfApi``-like object, e.g. the tests' Hub stand-in) replaces the Hub for the download. The run's
    # all_results.json and loss.png come along (_HUB_PATTERNS), so the app can show a Hub model's metrics too.
    download = api.snapshot_download if api is not None else huggingface_hub.snapshot_download
    try:
        local = download(str(source), revision=revision, token=token, allow_patterns=_HUB_PATTERNS)
    except Exception as error:  # offline, missing repo, no access: say which source failed and why
        raise TowersError(f"Could not fetch {source!r} (revision {revision!r}) from the Hub: {error}") from error
    # The snapshot folder is named after the resolved commit, which pins the revision exactly.
    return Path(local), Path(local).name


def _identity(
    source: str | Path, local: Path, revision: str | None, subdirs: Sequence[str] | None = None
) -> dict[str, Any]:
    return {"source": str(source), "revision": revision, "content_hash": content_hash(local, subdirs)}


# -- building and loading ------------------------------------------------------------------------------------------
def _read_config(path: Path, source: str | Path) -> dict[str, Any]:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise TowersError(f"{source} has no config.json: not a transformers CLIP checkpoint")
    return json.loads(config_file.read_text())


def build_towers_from_base(
    base: str | Path = DEFAULT_BASE_MODEL,
    revision: str | None = None,
    token: str | None = None,
    device: str | torch.device | None = None,
    api: Any | None = None,
) -> Towers:
    """Split a base ``CLIPModel`` checkpoint (Hub id or directory) into image, text and hashtag towers.

    ``api`` replaces the Hub for the download (an ``HfApi``-like object; tests pass a stand-in)."""
    from transformers import (
        AutoImageProcessor,
        AutoTokenizer,
        CLIPModel,
        CLIPTextModelWithProjection,
        CLIPVisionModelWithProjection,
    )

    local, resolved = resolve_source(base, revision, token, api)
    config = _read_config(local, base)
    if config.get("model_type") != "clip":
        raise TowersError(
            f"{base} is not a CLIP checkpoint (config.json model_type={config.get('model_type')!r}); "
            f"the base model must be a CLIPModel such as {DEFAULT_BASE_MODEL}"
        )
    if not any(local.glob("*.safetensors")):
        raise TowersError(f"{base} has no safetensors weights; only .safetensors files are loaded (no pickles)")
    clip = CLIPModel.from_pretrained(local, use_safetensors=True, dtype=torch.float32)
    projection_dim = clip.config.projection_dim
    # The towers take their projection size from the top-level config, which is what CLIPModel itself uses.
    vision_config = copy.deepcopy(clip.config.vision_config)
    vision_config.projection_dim = projection_dim
    text_config = copy.deepcopy(clip.config.text_config)
    text_config.projection_dim = projection_dim
    with torch.device("meta"):
        image_model = CLIPVisionModelWithProjection(vision_config)
        text_model = CLIPTextModelWithProjection(text_config)
    # Reuse the loaded modules instead of copying weights: same tensors, no second random init.
    image_model.vision_model, image_model.visual_projection = clip.vision_model, clip.visual_projection
    text_model.text_model, text_model.text_projection = clip.text_model, clip.text_projection
    hashtag_model = copy.deepcopy(text_model)
    image_processor = AutoImageProcessor.from_pretrained(local)
    tokenizer = AutoTokenizer.from_pretrained(local)
    identity = _identity(base, local, resolved)
    return _read_from(local, Towers(
        image_model, text_model, hashtag_model, image_processor, tokenizer,
        identity={**identity, "kind": "base", "base_model": identity},
        device=device, logit_scale=float(clip.logit_scale.exp().item()),
    ))


def _read_from(local: Path, towers: Towers) -> Towers:
    towers.local_dir = local
    return towers


def load_towers(
    source: str | Path,
    revision: str | None = None,
    token: str | None = None,
    device: str | torch.device | None = None,
    backend: str | None = "torch",
    cache_dir: str | Path | None = None,
    api: Any | None = None,
) -> Towers:
    """Load trained towers (a directory or Hub repo with ``towers.json``); a plain CLIP base is split instead.

    ``api`` replaces the Hub for the download (an ``HfApi``-like object; tests pass a stand-in); the folder read
    from is kept as ``Towers.local_dir``.

    ``backend`` picks the inference backend (``tweetmaker.inference.BACKENDS``; ``"auto"`` is the device's default,
    ``DEFAULT_CPU_BACKEND`` on a CPU). ONNX exports are cached beside local towers, else under ``cache_dir``
    (default ``tweetmaker.inference.default_cache_dir()``), and made on the first load only.
    """
    from transformers import (
        AutoImageProcessor,
        AutoTokenizer,
        CLIPTextModelWithProjection,
        CLIPVisionModelWithProjection,
    )

    from tweetmaker import inference

    backend = inference.resolve_backend(backend, device)
    local, resolved = resolve_source(source, revision, token, api)
    beside = Path(source).expanduser().is_dir()  # a Hub download's folder belongs to the Hub cache: export elsewhere
    manifest_file = local / TOWERS_FILE
    if not manifest_file.is_file():
        if (local / "config.json").is_file():
            towers = build_towers_from_base(local if beside else source, revision, token, device, api)
            return _read_from(local, inference.apply_backend(towers, backend, local, cache_dir, beside))
        raise TowersError(f"{source} holds neither trained towers ({TOWERS_FILE}) nor a CLIP checkpoint")
    manifest = json.loads(manifest_file.read_text())
    missing = [name for name in TOWER_NAMES if not (local / name / "config.json").is_file()]
    if missing:
        raise TowersError(f"{source} is missing the tower folder(s) {missing}")
    identity = {
        # Only the towers count: a training output folder may also hold checkpoints.
        **_identity(source, local, resolved, TOWER_NAMES),
        "kind": "towers",
        "base_model": manifest.get("base_model"),
    }
    exported = inference.find_export(local, identity, backend, cache_dir) if inference.is_onnx(backend) else None
    if exported is not None:  # no torch weights needed: faster start, less memory
        towers = inference.onnx_towers(exported, backend, local, identity, manifest.get("logit_scale"))
        return _read_from(local, towers)
    kwargs = {"use_safetensors": True, "dtype": torch.float32}
    image_model = CLIPVisionModelWithProjection.from_pretrained(local / "image", **kwargs)
    text_model = CLIPTextModelWithProjection.from_pretrained(local / "text", **kwargs)
    hashtag_model = CLIPTextModelWithProjection.from_pretrained(local / "hashtag", **kwargs)
    image_processor = AutoImageProcessor.from_pretrained(local / "image")
    tokenizer = AutoTokenizer.from_pretrained(local / "text")
    towers = Towers(
        image_model, text_model, hashtag_model, image_processor, tokenizer,
        identity=identity, device=device, logit_scale=manifest.get("logit_scale"),
    )
    return _read_from(local, inference.apply_backend(towers, backend, local, cache_dir, beside))


def main(argv: list[str] | None = None) -> int:
    """``python -m tweetmaker.towers``: see ``tweetmaker.towers_cli``."""
    from tweetmaker.towers_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
