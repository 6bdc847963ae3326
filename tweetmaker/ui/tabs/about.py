"""About: which towers, data set and index are serving, and the towers' training metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:
    from tweetmaker.resources import Resources


def about_markdown(resources: Resources) -> str:
    results = resources.results or {}
    lines = [
        "### About this model",
        f"- Towers: `{resources.towers_source}` (embedding size {resources.towers.embedding_dim})",
        f"- Data set: `{resources.dataset_source}`; indexed tweets: {resources.index.count('image')}",
        f"- Index: {resources.index.location}",
    ]
    before, after = results.get("before", {}), results.get("after", {})
    metrics = sorted(set(before) | set(after))
    if metrics:
        lines += ["", "| metric (test split) | before fine-tuning | after |", "|---|---|---|"]
        lines += [f"| {name} | {_fmt(before.get(name))} | {_fmt(after.get(name))} |" for name in metrics]
    else:
        lines.append("- No training metrics (`all_results.json`) were found next to the towers.")
    lines += ["", "TweetMaker recommends images, hashtags and similar tweets for a tweet you are writing, using "
              "three CLIP towers (image, text, hashtags) fine-tuned together and one Chroma collection per modality."]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def build(resources: Resources) -> None:
    with gr.Tab("About"):
        gr.Markdown(about_markdown(resources))
