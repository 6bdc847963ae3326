"""Inference backends of the towers: one switch between PyTorch and ONNX Runtime, in fp32 or int8.

- ``torch``: the towers as loaded, fp32 eager PyTorch (training's own modules); always selectable.
- ``torch-int8``: ``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear`` (int8 weights, activations
  quantized per batch at run time), made at load time in about a second; nothing is cached.
- ``onnx``: each tower exported by ``torch.onnx.export`` (dynamic batch axis, and dynamic sequence length for the
  text towers) and run by ONNX Runtime's CPU provider.
- ``onnx-int8``: those exports with int8 weights by ``onnxruntime.quantization.quantize_dynamic``.

``tweetmaker.towers.load_towers(..., backend=...)`` is the switch (``auto``: ``DEFAULT_CPU_BACKEND`` on a CPU,
torch on a GPU). A backend never changes the towers' identity nor their preprocessing, so an index built by one
backend serves the queries of another; ``compare`` measures how far each one agrees with fp32 (issue 13's bar:
top-10 agreement on >= 95% of positions, every quality figure within 0.01) and how fast it is.

``batching``: the app's served towers (``BatchedTowers``) share one forward per tower among queries that arrive
together (``--batch_max_size``, ``--batch_wait_ms``); answers are those of the same queries asked one at a time.
"""

from tweetmaker.inference.batching import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_WAIT_MS,
    BatchedTowers,
    BatchStats,
    MicroBatcher,
    batched_towers,
    unbatched,
)
from tweetmaker.inference.choice import (
    AUTO,
    BACKENDS,
    DEFAULT_CPU_BACKEND,
    BackendError,
    available_cores,
    check_backend,
    default_backend,
    is_onnx,
    resolve_backend,
)
from tweetmaker.inference.export import (
    EXPORT_VERSION,
    default_cache_dir,
    ensure_export,
    export_backend,
    find_export,
    write_export,
)
from tweetmaker.inference.runtime import OnnxTowers, apply_backend, onnx_towers, quantize_torch, session_options

__all__ = [
    "AUTO",
    "BACKENDS",
    "DEFAULT_CPU_BACKEND",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_WAIT_MS",
    "EXPORT_VERSION",
    "BackendError",
    "BatchStats",
    "BatchedTowers",
    "MicroBatcher",
    "OnnxTowers",
    "apply_backend",
    "available_cores",
    "batched_towers",
    "check_backend",
    "default_backend",
    "default_cache_dir",
    "ensure_export",
    "export_backend",
    "find_export",
    "is_onnx",
    "onnx_towers",
    "quantize_torch",
    "resolve_backend",
    "session_options",
    "unbatched",
    "write_export",
]
