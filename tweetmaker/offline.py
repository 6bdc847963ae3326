"""The environment that keeps Hugging Face, Gradio and Chroma offline and quiet: nothing downloaded, nothing
reported home.

Several of those libraries read it once, when they are imported, so set it first: the test suite and the
benchmark runner set it for themselves and pass it to the processes they start. The app does not set it (a Space
downloads its towers from the Hub).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

OFFLINE_ENV: Mapping[str, str] = MappingProxyType({
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
})
