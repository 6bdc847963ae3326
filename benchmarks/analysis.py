"""Short, number-driven explanations under each figure group: where the time goes and what would move it."""

from __future__ import annotations

import math
from collections.abc import Sequence

from benchmarks.stats import Figure


def analyse(figures: Sequence[Figure]) -> dict[str, str]:
    notes: dict[str, str] = {}
    for number, explain in ((1, _latency), (3, _indexing), (4, _serving), (5, _training), (6, _cold_start)):
        group = [figure for figure in figures if figure.number == number]
        if group:
            text = explain(group)
            if text:
                notes[str(number)] = text
    return notes


def _f(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.1f}"


def _latency(group: Sequence[Figure]) -> str:
    lines = []
    for figure in group:
        parts = figure.details.get("breakdown_median_ms", {})
        encode = parts.get("towers.encode_texts (1 text)", math.nan)
        chroma = parts.get("index.query (Chroma, k=10, metadata)", math.nan)
        exact = parts.get("numpy exact top-10", math.nan)
        items = figure.details.get("indexed_items", 0)
        lines.append(
            f"At {items:,} items the handler's {_f(figure.value)} ms is mostly the text tower "
            f"({_f(encode)} ms for one text); Chroma answers in {_f(chroma)} ms where exact numpy top-10 takes "
            f"{_f(exact)} ms; the rest ({_f(max(0.0, figure.value - encode - chroma))} ms) is validation, "
            "re-ranking and formatting (the parts are medians of separate runs, so they need not add up exactly)."
        )
    return "**Where the time goes.** " + " ".join(lines)


def _indexing(group: Sequence[Figure]) -> str:
    figure = group[0]
    stages = figure.details.get("build_stage_seconds_per_image", {})
    if not stages:
        return ""
    key = "image tower forward (batch 32)"
    forward = stages.get(key, math.nan)
    others = {name: seconds for name, seconds in stages.items() if name != key}
    listed = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in others.items())
    extra = sum(others.values())
    text = (
        f"**Where the time goes.** Per image, the image tower takes {forward * 1000:.1f} ms; the build adds "
        f"{listed} — {extra * 1000:.1f} ms in all ({extra / forward:.0%} of the image forward), one after the other "
        f"on the main thread. Done serially, the build cannot exceed {forward / (forward + extra):.2f}x of the "
        "image-only reference even before Chroma writes"
    )
    towers = stages.get("text + hashtag towers", 0.0)
    if towers:
        text += (f"; the text and hashtag towers alone ({towers * 1000:.1f} ms) cap it at "
                 f"{forward / (forward + towers):.2f}x, which is why the like-for-like reference is shown too")
    return text + "."


def _serving(group: Sequence[Figure]) -> str:
    client = next((f for f in group if "gradio_client" in f.name and "serial" in f.name), None)
    rest = next((f for f in group if "REST" in f.name), None)
    if client is None or rest is None:
        return ""
    return (
        f"Serially, gradio_client adds {client.value - client.reference:.0f} ms to the handler and the plain REST "
        f"call {rest.value - rest.reference:.0f} ms: the difference is gradio_client's own machinery (it polls its "
        "message queue every 50 ms), not the app. A browser talks to the same queue over one event stream."
    )


def _training(group: Sequence[Figure]) -> str:
    figure = group[0]
    reported = figure.details.get("finetune_reported_samples_per_second")
    if reported is None:
        return ""
    return (f"finetune.py itself reports {reported:.2f} samples/s for this run; that runtime includes the per-epoch "
            "evaluation, which is why the figure times optimizer steps instead.")


def _cold_start(group: Sequence[Figure]) -> str:
    figure = group[0]
    phases = figure.details.get("app_phases_seconds_since_start", {})
    if not phases:
        return ""
    listed = ", ".join(f"{name} at {seconds:.1f} s" for name, seconds in phases.items())
    return f"**Phases of the last app start** (seconds since the process started): {listed}."
