"""Models: for every served model, where it comes from, its training metrics and loss plot, and its hard cases.

Replaces the former About tab (same facts, plus the compared model and the failures). Everything here is computed
when the app starts (``tweetmaker.resources.LoadedModel``: ``all_results.json``, ``loss.png`` and the hard cases
cached per index), so a page view costs nothing. A file the run did not leave is "not recorded", never an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from tweetmaker.evaluation import report_table

if TYPE_CHECKING:
    from tweetmaker.resources import LoadedModel, Resources

NOT_RECORDED = "not recorded"
ROLES = ("Main model", "Compared with")
ABOUT = ("TweetMaker recommends images, hashtags and similar tweets for a tweet you are writing, using three CLIP "
         "towers (image, text, hashtags) fine-tuned together and one Chroma collection per modality.")


def metrics_table(results: dict[str, Any]) -> str | None:
    """The run's before/after table (``all_results.json``), one row per figure; None when none was recorded."""
    before, after = results.get("before") or {}, results.get("after") or {}
    if not before and not after:
        return None
    columns = {"before fine-tuning": before, "after": after}
    reports = {name: {"exact_pairs": _by_direction(metrics)} for name, metrics in columns.items() if metrics}
    return report_table(reports)


def _by_direction(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    # all_results.json holds {direction: {metric: value}}; a flat {metric: value} is read as one direction.
    if all(isinstance(value, dict) for value in metrics.values()):
        return metrics
    return {"": {name: value for name, value in metrics.items() if isinstance(value, (int, float))}}


def model_markdown(model: LoadedModel, role: str = ROLES[0]) -> str:
    """Where one model comes from and its training metrics (or that none were recorded)."""
    kind = model.towers.identity.get("kind")
    lines = [
        f"### {role}: `{model.label}`",
        f"- Towers: `{model.source}` (embedding size {model.towers.embedding_dim}"
        + (", the untrained base CLIP: zero-shot" if kind == "base" else "") + ")",
        f"- Index: {model.index.location}; indexed tweets: {model.index.count('image')}",
    ]
    train = model.results.get("train") or {}
    if train.get("optimizer_steps"):
        lines.append(f"- Training: {train['optimizer_steps']} optimizer steps, {train.get('epochs', '?')} epochs, "
                     f"global batch {train.get('global_batch_size', '?')}")
    table = metrics_table(model.results)
    lines += ["", "**Training metrics (test split)**", ""]
    if table:
        lines.append(table)
    else:
        lines.append(f"Training metrics: {NOT_RECORDED} (no `all_results.json` with these towers)."
                     + (" An untrained base records no run: the *before fine-tuning* column of towers trained from "
                        "it measures it." if kind == "base" else ""))
    return "\n".join(lines)


def about_markdown(resources: Resources) -> str:
    """Every served model's description and metrics, then what TweetMaker is (the former About text)."""
    parts = [f"Data set: `{resources.dataset_source}`"]
    parts += [model_markdown(model, role) for model, role in zip(resources.models, ROLES)]
    return "\n\n".join([*parts, ABOUT])


def hard_cases_markdown(model: LoadedModel) -> str:
    """The test tweets whose own image this model ranks worst, and what it put first instead."""
    if not model.hard_cases:
        return f"Hard cases: {NOT_RECORDED} (the index has no test-split tweets to look at)."
    lines = ["Test tweets whose own image ranks worst for their text (among every indexed image).", "",
             "| # | rank of its own image | tweet (the query) | came first instead |", "|---:|---:|---|---|"]
    for number, case in enumerate(model.hard_cases, start=1):
        lines.append(f"| {number} | {case.rank} | {_cell(case.text)} | {_cell(case.first_text)} |")
    return "\n".join(lines)


def hard_case_items(model: LoadedModel) -> list[tuple[str, str]]:
    """Gallery pairs, one row per case: the tweet's true image, then the image that came first instead."""
    items = []
    for number, case in enumerate(model.hard_cases, start=1):
        true_image = model.index.image_path({"image": case.image})
        first_image = model.index.image_path({"image": case.first_image})
        if true_image is None or first_image is None:
            continue
        items.append((str(true_image), f"#{number} true image (ranked {case.rank}): {case.text[:80]}"))
        items.append((str(first_image), f"#{number} came first instead: {case.first_text[:80]}"))
    return items


def _cell(text: str) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= 90 else text[:87] + "..."


def build(resources: Resources) -> None:
    with gr.Tab("Models", elem_id="models-tab"):
        gr.Markdown(f"Data set: `{resources.dataset_source}`")
        with gr.Row():
            for model, role in zip(resources.models, ROLES):
                with gr.Column():
                    gr.Markdown(model_markdown(model, role))
                    if model.loss_plot is not None:
                        gr.Image(str(model.loss_plot), label=f"Training loss — {model.label}", interactive=False)
                    else:
                        gr.Markdown(f"Loss plot: {NOT_RECORDED}.")
                    with gr.Accordion(f"Hard cases — {model.label}", open=False):
                        gr.Markdown(hard_cases_markdown(model))
                        items = hard_case_items(model)
                        if items:
                            gr.Gallery(items, label="True image | came first instead", columns=2, height="auto",
                                       object_fit="contain")
        gr.Markdown(ABOUT)
