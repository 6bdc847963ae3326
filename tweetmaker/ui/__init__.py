"""The Gradio app: one tab per use case, over the recommender loaded once at start. The only code that imports
gradio lives in this package.

- ``blocks``: ``build_demo`` (the page, tab by tab) and ``launch_demo`` (queue, limits, the files it may serve);
- ``tabs/``: one module per tab, each laying itself out and wiring its events;
- ``handlers``: ``Handlers``, the endpoint functions (and API names) bound to the loaded resources;
- ``compare_handlers``: ``CompareHandler``, the ``/compare`` endpoint over the main and the compared model;
- ``controls``: inputs several tabs share (ranking controls, the image upload, result galleries);
- ``formatting``: pure functions from the library's results to captions, tables and the tweet preview;
- ``boundary``: ``user_errors``, the one place where the library's errors become ``gr.Error``.

Inputs are checked by the library (``tweetmaker.search``), never here.
"""

from __future__ import annotations

from tweetmaker.ui.blocks import build_demo, launch_demo
from tweetmaker.ui.boundary import user_errors, user_message
from tweetmaker.ui.compare_handlers import CompareHandler
from tweetmaker.ui.controls import CONCURRENCY_ID, uploaded_image
from tweetmaker.ui.formatting import (
    BREAKDOWN_HEADERS,
    TWEET_LIMIT,
    breakdown_rows,
    caption,
    compose_tweet,
    gallery_items,
    hashtag_rows,
    tweet_length,
)
from tweetmaker.ui.handlers import DEFAULT_K, MAX_K, Handlers
from tweetmaker.ui.tabs.models import about_markdown, model_markdown

__all__ = [
    "BREAKDOWN_HEADERS", "CONCURRENCY_ID", "DEFAULT_K", "MAX_K", "TWEET_LIMIT", "Handlers", "about_markdown",
    "breakdown_rows", "build_demo", "caption", "compose_tweet", "gallery_items", "hashtag_rows", "launch_demo",
    "tweet_length", "uploaded_image", "user_errors", "user_message",
    "CompareHandler", "model_markdown",
]
