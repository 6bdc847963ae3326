"""Text + Image: images and hashtags for a draft and an image together, mixed by a balance slider."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from tweetmaker.ui.controls import Shared, copy_box, hashtag_table, result_gallery, uploaded_image

if TYPE_CHECKING:
    from tweetmaker.ui.handlers import Handlers


def build(handlers: Handlers, shared: Shared) -> gr.Textbox:
    """The tab; returns its copy-ready hashtags (the tweet preview follows them)."""
    with gr.Tab("Text + Image"):
        with gr.Row():
            text = gr.Textbox(label="Draft tweet", lines=3)
            image = uploaded_image(label="Your image", height=240)
        balance = gr.Slider(0, 1, value=0.5, step=0.05, label="Balance: image ← → text",
                            info="0 searches by the image alone, 1 by the text alone.")
        button = gr.Button("Recommend", variant="primary")
        gallery = result_gallery("Matching images")
        with gr.Row():
            tags = hashtag_table()
            tag_string = copy_box()
    button.click(handlers.combined, [text, image, balance, *shared.ranking], [gallery, tags, tag_string],
                 api_name="combined", **shared.model_bound)
    return tag_string
