"""Image → Hashtags: hashtags for an uploaded image, and the tweets whose images look like it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from tweetmaker.ui.controls import Shared, copy_box, hashtag_table, result_gallery, uploaded_image

if TYPE_CHECKING:
    from tweetmaker.ui.handlers import Handlers


def build(handlers: Handlers, shared: Shared) -> gr.Textbox:
    """The tab; returns its copy-ready hashtags (the tweet preview follows them)."""
    examples = handlers.resources.examples
    with gr.Tab("Image → Hashtags"):
        image = uploaded_image(label="Your image", height=280)
        button = gr.Button("Recommend hashtags", variant="primary")
        with gr.Row():
            tags = hashtag_table()
            tag_string = copy_box()
        gallery = result_gallery("Similar tweets")
        if examples:
            gr.Examples([[str(example["image"])] for example in examples if example["image"]],
                        inputs=[image], label="Images from the corpus")
    button.click(handlers.image_to_hashtags, [image, *shared.ranking], [tags, tag_string, gallery],
                 api_name="image_to_hashtags", **shared.model_bound)
    return tag_string
