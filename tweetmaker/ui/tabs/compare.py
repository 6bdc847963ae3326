"""Compare: one draft (and/or image) answered by two models side by side, and how much their answers agree.

Present only with ``--compare_towers``. The button runs ``/compare`` (``CompareHandler.compare``: plain JSON, the
API's answer), then fills the two columns from that answer, so the page shows exactly what an API client gets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from tweetmaker.ui.compare_handlers import EMPTY_AGREEMENT, SIDES, CompareHandler
from tweetmaker.ui.controls import Shared, copy_box, uploaded_image
from tweetmaker.ui.handlers import DEFAULT_K, MAX_K

if TYPE_CHECKING:
    from tweetmaker.resources import Resources


def build(resources: Resources, shared: Shared) -> None:
    """The tab, when a second model is loaded; nothing otherwise."""
    if resources.compare is None:
        return
    handler = CompareHandler(resources)
    with gr.Tab("Compare", elem_id="compare-tab"):
        gr.Markdown("The same query, answered by both models. Each caption starts with the image's rank here, its "
                    "score, and where the other model ranked it: *#3 there*, *same* (the same rank) or *new* (the "
                    "other model did not return it).")
        with gr.Row():
            text = gr.Textbox(label="Draft tweet", lines=3, elem_id="compare-input",
                              placeholder="e.g. two red robots on a striped background")
            image = uploaded_image(label="Image (optional)", height=200)
        k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Results per model (k)")
        button = gr.Button("Compare", variant="primary", elem_id="compare-button")
        agreement = gr.Markdown(EMPTY_AGREEMENT, elem_id="compare-agreement")
        outputs = []
        with gr.Row():
            for side in SIDES:
                model = handler.models[side]
                with gr.Column():
                    gr.Markdown(f"### {side.capitalize()}: `{model.label}`")
                    outputs.append(gr.Gallery(label=f"Images — {model.label}", columns=3, height="auto",
                                              object_fit="contain", elem_id=f"compare-gallery-{side}"))
                    outputs.append(copy_box(f"Hashtags — {model.label}"))
        with gr.Accordion("The answer as the /compare API returns it", open=False):
            answer = gr.JSON(label="/compare")
    event = {"fn": handler.compare, "inputs": [text, image, k], "outputs": [answer], **shared.model_bound}
    for trigger in (button.click(**event, api_name="compare"), text.submit(**event, api_name=False)):
        trigger.success(handler.galleries, [answer], [*outputs, agreement], api_name=False, queue=False)
