"""The page: the tabs in order, over the recommender loaded once at start, and how the app is launched.

Every model-bound event shares one concurrency limit (``--max_concurrency``), and the queue's ``max_size`` turns
overload into a clear "try again" message. The limit is well above the core count on purpose: the towers' forwards
are serialized and shared by the batcher (``tweetmaker.inference.BatchedTowers``), so requests handled together are
embedded in one forward per tower instead of crowding the CPU with one forward each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from tweetmaker.feedback import FeedbackLog, open_feedback
from tweetmaker.ui.compose_handlers import ComposeHandler
from tweetmaker.ui.controls import CONCURRENCY_ID, Shared, ranking_controls
from tweetmaker.ui.formatting import compose_tweet
from tweetmaker.ui.handlers import Handlers
from tweetmaker.ui.tabs import combined, compare, compose, image_to_hashtags, models, preview, text_to_image

if TYPE_CHECKING:
    from tweetmaker.resources import Resources


# The demo banner's one line; the full text (why, and how to use real towers) is folded under it.
DEMO_LINE = "**Synthetic offline demo.** A tiny model trained on synthetic tweets answers here, not real towers."


def build_demo(resources: Resources, feedback: FeedbackLog | None = None) -> gr.Blocks:
    """The Blocks app. Launch it with ``launch_demo`` (queue, limits and allowed paths set there).

    ``feedback``: where Compose records confirmed choices; by default per the settings (``--feedback_dir``), off."""
    handlers = Handlers(resources)
    if feedback is None:
        feedback = open_feedback(resources.settings, resources.towers.identity)
    with gr.Blocks(title="TweetMaker") as demo:
        gr.Markdown("# TweetMaker\nWrite a tweet: get matching images, hashtags and similar tweets.")
        if resources.banner:
            gr.Markdown(DEMO_LINE, elem_id="demo-banner")
            with gr.Accordion("About this demo", open=False, elem_id="demo-banner-details"):
                gr.Markdown(resources.banner)
        shared = Shared(ranking=ranking_controls(), model_bound={
            "concurrency_limit": resources.settings.max_concurrency, "concurrency_id": CONCURRENCY_ID})
        compose.build(ComposeHandler(resources, feedback), shared, demo)  # first: the tab a visitor lands on
        draft = text_to_image.build(handlers, shared)
        image_tags = image_to_hashtags.build(handlers, shared)
        combined_tags = combined.build(handlers, shared)
        preview.build(draft_from=draft, hashtags_from=[image_tags, combined_tags])
        compare.build(resources, shared)  # only with --compare_towers
        models.build(resources)
        # Endpoints without a button of their own. After the last tab: what gr.api lays out would split the tabs.
        gr.api(compose_tweet, api_name="compose_tweet")
    return demo


def launch_demo(demo: gr.Blocks, resources: Resources, *, prevent_thread_lock: bool = False, **overrides: Any):
    """Launch with the app's limits: a bounded queue, an upload size cap, and only the index's images served."""
    settings = resources.settings
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.max_concurrency)
    # Only image folders, never a generation as a whole (it holds the Chroma database). Gradio resolves symlinks at
    # each request, so INDEX_DIR/images follows the live generation as builds publish new ones; the folder of the
    # generation served at launch stays allowed too, for as long as the app keeps serving it.
    allowed = sorted({str(path) for model in resources.models if model.index.index_dir is not None
                      for path in (model.index.index_dir / "images", model.index.images_dir) if path is not None})
    options = {
        "server_name": settings.host,
        "server_port": settings.port,
        "share": settings.share,
        "max_file_size": f"{settings.max_file_size_mb:g}mb",
        "allowed_paths": allowed,
        "show_error": True,
        "prevent_thread_lock": prevent_thread_lock,
        "quiet": False,
        "css": compose.CSS,
        # --mcp / TWEETMAKER_MCP; None lets Gradio read its own GRADIO_MCP_SERVER.
        "mcp_server": True if getattr(settings, "mcp", False) else None,
    }
    options.update(overrides)
    return demo.launch(**options)
