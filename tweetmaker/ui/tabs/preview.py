"""Tweet preview: the draft and chosen hashtags as they would be posted, counted as Twitter counts.

It runs no model (no queue, no concurrency limit) and follows the other tabs' drafts and hashtags. ``compose_tweet``
is also the ``/compose_tweet`` API endpoint (``blocks.build_demo`` adds it after the tabs).
"""

from __future__ import annotations

import gradio as gr

from tweetmaker.ui.formatting import EMPTY_PREVIEW, TWEET_LIMIT, compose_tweet


def _same(value):
    return value


def build(draft_from: gr.Textbox, hashtags_from: list[gr.Textbox]) -> None:
    """The tab, filled from ``draft_from`` and whichever of ``hashtags_from`` changed last."""
    with gr.Tab("Tweet preview"):
        draft = gr.Textbox(label="Draft tweet", lines=3)
        hashtags = gr.Textbox(label="Hashtags", placeholder="#AI #Robotics")
        preview = gr.Markdown(EMPTY_PREVIEW)
        counter = gr.Markdown(f"0 / {TWEET_LIMIT} characters")
        for source in (draft, hashtags):
            source.change(compose_tweet, [draft, hashtags], [preview, counter], api_name=False, queue=False,
                          show_progress="hidden")
        for tags in hashtags_from:
            tags.change(_same, tags, hashtags, api_name=False, queue=False)
        draft_from.change(_same, draft_from, draft, api_name=False, queue=False)
