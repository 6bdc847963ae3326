"""Inputs more than one tab uses: the results-and-ranking controls, and an image upload the handler decodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from tweetmaker.ui.formatting import HASHTAG_HEADERS
from tweetmaker.ui.handlers import DEFAULT_K, MAX_K

CONCURRENCY_ID = "model"


@dataclass
class Shared:
    """What every tab's builder gets besides the handlers.

    ``ranking``: the k, engagement, recency and diversity inputs, in the order the handlers take them last.
    ``model_bound``: the options of every event that runs the model: one concurrency limit shared by all of
    them. The batcher serializes the forwards themselves, so the limit is how many requests may share one.
    """

    ranking: list[gr.components.Component]
    model_bound: dict[str, Any] = field(default_factory=dict)


def ranking_controls() -> list[gr.components.Component]:
    """The folded "Results and ranking" row: k and the three re-ranking weights."""
    with gr.Accordion("Results and ranking", open=False):
        with gr.Row():
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Results (k)")
            engagement = gr.Slider(0, 1, value=0.0, step=0.05, label="Engagement weight",
                                   info="Favour tweets with many likes and retweets.")
            recency = gr.Slider(0, 1, value=0.0, step=0.05, label="Recency weight", info="Favour recent tweets.")
            diversity = gr.Slider(0, 1, value=0.0, step=0.05, label="Diversity (MMR)",
                                  info="Avoid near-duplicate results.")
    return [k, engagement, recency, diversity]


def uploaded_image(**options: Any) -> gr.Image:
    """An image input that hands the handler the uploaded file untouched.

    ``gr.Image`` opens uploads with Pillow before any handler runs, so a broken or hostile file would fail there
    with Pillow's message. Passing the path on lets ``decode_image`` refuse it with a message that says what to do.
    (Overridden on the instance: a ``gr.Image`` subclass would make Gradio write a .pyi file into the package.)
    """
    component = gr.Image(type="filepath", sources=["upload", "clipboard"], **options)

    def pass_path(payload: Any) -> str | None:
        if payload is None:
            return None
        if getattr(payload, "path", None) is None:
            raise gr.Error("The upload did not arrive complete; try again.")
        return str(payload.path)

    component.preprocess = pass_path
    return component


def copy_box(label: str = "Copy-ready hashtags") -> gr.Textbox:
    """A read-out with a copy button (the hashtags a tab recommends)."""
    return gr.Textbox(label=label, buttons=["copy"])


def hashtag_table() -> gr.Dataframe:
    """The recommended hashtags with their scores and support (``formatting.hashtag_rows``)."""
    return gr.Dataframe(headers=HASHTAG_HEADERS, label="Hashtags", interactive=False)


def result_gallery(label: str, **options: Any) -> gr.Gallery:
    """Result images with their captions (``formatting.gallery_items``)."""
    return gr.Gallery(label=label, columns=4, height="auto", **options)
