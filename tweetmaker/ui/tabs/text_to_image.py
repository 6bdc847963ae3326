"""Text → Image: images (with their tweets) that fit a draft, and why each ranked where it did."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from tweetmaker.ui.controls import Shared, result_gallery
from tweetmaker.ui.formatting import BREAKDOWN_HEADERS

if TYPE_CHECKING:
    from tweetmaker.ui.handlers import Handlers


def build(handlers: Handlers, shared: Shared) -> gr.Textbox:
    """The tab; returns its draft box (the tweet preview follows it)."""
    examples = handlers.resources.examples
    with gr.Tab("Text → Image"):
        text = gr.Textbox(label="Draft tweet", lines=3, max_lines=8, elem_id="text-to-image-input",
                          placeholder="e.g. two red robots on a striped background")
        button = gr.Button("Find images", variant="primary", elem_id="text-to-image-button")
        gallery = result_gallery("Matching images", elem_id="text-to-image-gallery")
        why = gr.Dataframe(headers=BREAKDOWN_HEADERS, label="Why they ranked", interactive=False)
        if examples:
            gr.Examples([[example["text"]] for example in examples if example["text"]], inputs=[text],
                        label="Tweets from the corpus")
    event = {"fn": handlers.text_to_image, "inputs": [text, *shared.ranking], "outputs": [gallery, why],
             **shared.model_bound}
    button.click(**event, api_name="text_to_image")
    text.submit(**event, api_name=False)  # Enter runs the same query, without a second API endpoint
    return text
