"""Short, number-driven explanations: where the time goes under each figure group, and for every target that is not
met, what limits it (read from the same run's breakdowns, so the text moves with the numbers)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.stats import Figure, usable_cores

# Issue 13's targets table: (target, figure id; "{chosen}" is the chosen backend's name).
ISSUE_TARGETS: tuple[tuple[str, str], ...] = (
    ("text→image handler latency, chosen backend vs bare fp32 PyTorch forward + exact top-k, 10k items: <= 0.5x",
     "latency.text_to_image.chosen_backend"),
    ("image→hashtags handler latency, same comparison: <= 0.6x", "latency.image_to_hashtags.chosen_backend"),
    ("throughput, 8 concurrent gradio_client clients vs serial direct handler: >= 1.5x",
     "serving.throughput.8_clients"),
    ("p95 latency with 8 concurrent clients vs serial gradio_client latency: <= 3x", "serving.p95.8_clients"),
    ("indexing throughput vs bare fp32 three-tower forward: >= 1.0x", "indexing.build_vs_three_towers"),
    ("top-10 agreement of the chosen backend with fp32 (twin, trained towers): >= 0.95",
     "backends.agreement.{chosen}"),
    ("cold start (app start to first answer) vs loading the towers alone: <= 1.5x", "cold_start.first_answer"),
)


def analyse(figures: Sequence[Figure]) -> dict[str, str]:
    notes: dict[str, str] = {}
    groups: tuple[tuple[int, Callable[[Sequence[Figure]], str]], ...] = (
        (1, _latency), (3, _indexing), (4, _serving), (5, _training), (6, _cold_start), (8, _backends),
        (9, lambda group: _sharding(group, figures)), (10, _memory),
    )
    for number, explain in groups:
        group = [figure for figure in figures if figure.number == number and figure.available]
        if group:
            text = explain(group)
            if text:
                notes[str(number)] = text
    return notes


def targets(figures: Sequence[Figure], chosen_backend: str) -> list[dict[str, Any]]:
    """Issue 13's targets, each with its figure's ratio or value, met / not met / not measured, and for an unmet
    one what limits it."""
    by_id = {figure.id: figure for figure in figures}
    rows = []
    for text, pattern in ISSUE_TARGETS:
        figure_id = pattern.format(chosen=chosen_backend)
        figure = by_id.get(figure_id)
        row: dict[str, Any] = {"target": text, "id": figure_id, "met": None, "measured": None, "limits": None}
        if figure is None:
            row["status"] = "not measured (not in this run)"
        elif not figure.available:
            row["status"] = f"not measured: {figure.unavailable}"
        else:
            on_value = figure.target_on == "value"
            row["measured"] = _finite(figure.value if on_value else figure.ratio)
            row["measured_is"] = "value" if on_value else "ratio"
            row["met"] = figure.met
            row["status"] = "met" if figure.met else "not met"
            if figure.met is False:
                row["limits"] = limits(figure, by_id)
        rows.append(row)
    return rows


def limits(figure: Figure, by_id: dict[str, Figure]) -> str:
    """What keeps ``figure`` from its target, in numbers from this run."""
    explain = LIMITS.get(figure.id) or (_agreement_limits if figure.id.startswith("backends.agreement.") else None)
    text = explain(figure, by_id) if explain else ""
    return text or f"{figure.name}: {_f(figure.value)} {figure.unit} vs {_f(figure.reference)} {figure.unit}."


def _f(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _part(parts: dict[str, float], prefix: str, suffix: str = "") -> float:
    return next((value for name, value in parts.items() if name.startswith(prefix) and name.endswith(suffix)),
                math.nan)


# -- what limits each unmet target ----------------------------------------------------------------------------------
def _handler_limits(figure: Figure, encode_prefix: str, chroma_keys: Sequence[str], target: float) -> str:
    parts = figure.details.get("breakdown_median_ms", {})
    backend = figure.details.get("backend", "?")
    served = _part(parts, encode_prefix, f", {backend}")
    fp32 = _part(parts, encode_prefix, ", fp32 torch")
    chroma = sum(parts.get(key, 0.0) for key in chroma_keys)
    floor = (served + chroma) / figure.reference if figure.reference else math.nan
    text = (
        f"With {backend} the tower alone takes {_f(served)} ms (fp32: {_f(fp32)} ms) and Chroma {_f(chroma)} ms, "
        f"against the bare fp32 reference's {_f(figure.reference)} ms in all: the handler cannot go below "
        f"{_f(floor, 2)}x with this backend before validation, re-ranking and formatting "
        f"({_f(max(0.0, figure.value - served - chroma))} ms here). "
    )
    if backend == "torch":
        text += ("No faster backend is the default yet (tweetmaker.inference.DEFAULT_CPU_BACKEND is torch), so "
                 "the tower costs what the reference's does and the ratio is at least 1x. ")
    needed = target * figure.reference - chroma - max(0.0, figure.value - served - chroma)
    text += (f"Meeting {target}x needs the tower at or under {_f(max(needed, 0.0))} ms with the rest as measured"
             + (" (Chroma and formatting alone exceed the budget)." if needed <= 0 else "."))
    return text


def _text_handler_limits(figure: Figure, by_id: dict[str, Figure]) -> str:
    return _handler_limits(figure, "encode_texts", ["index.query (Chroma, k=10, metadata)"], 0.5)


def _image_handler_limits(figure: Figure, by_id: dict[str, Figure]) -> str:
    parts = figure.details.get("breakdown_median_ms", {})
    chroma = [key for key in parts if key.startswith("index.query")]
    return _handler_limits(figure, "encode_images", chroma, 0.6) + (
        " The handler's image is decoded by tweetmaker.data.decode_image (defensive checks, EXIF, mode mapping), the "
        "reference's by a bare PIL open.")


def _throughput_limits(figure: Figure, by_id: dict[str, Figure]) -> str:
    concurrency = figure.details.get("app_max_concurrency", "?")
    serial = by_id.get("serving.serial.gradio_client")
    one = by_id.get("serving.throughput.1_client")
    cores = usable_cores()
    text = (f"8 clients got {_f(figure.value)} queries/s against {_f(figure.reference)} from the handler called "
            f"serially ({_f(figure.ratio, 2)}x). ")
    if one is not None and one.available:
        text += f"One client alone gets {_f(one.value)} queries/s ({_f(one.ratio, 2)}x): "
        if serial is not None and serial.available:
            text += (f"gradio_client and the server add {_f(serial.value - serial.reference, 0)} ms to each "
                     f"{_f(serial.reference, 0)} ms query. ")
    client_ms, app_ms = figure.details.get("client_cpu_ms_per_query"), figure.details.get("app_cpu_ms_per_query")
    if client_ms is not None and app_ms is not None:
        cores = figure.details.get("cores", cores)
        ceiling = cores * 1000.0 / (client_ms + app_ms)
        text += (f"Measured CPU per query in this round: {_f(client_ms, 1)} ms in the gradio_client process and "
                 f"{_f(app_ms, 1)} ms in the app (Gradio's queue, event stream and file handling, plus the handler), "
                 f"against {_f(1000.0 / figure.reference, 1)} ms of wall time per serial direct call. With clients "
                 f"and app on the same {cores} cores that caps throughput at about {_f(ceiling)} queries/s, "
                 f"{_f(ceiling / figure.reference, 2)}x the serial handler, whatever the server does; the 1.5x target "
                 "needs the clients on other machines (as real visitors are) or a cheaper client. ")
    batching = "queries that arrive together share one forward per tower" if figure.details.get("batching") else (
        "each request runs a batch-of-one forward")
    text += (f"The app runs at most {concurrency} model-bound requests at once and {batching}; on {cores} cores "
             "concurrency hides the server's waiting (queue hops, gradio_client's polling) but adds no compute.")
    return text


def _p95_limits(figure: Figure, by_id: dict[str, Figure]) -> str:
    concurrency = figure.details.get("app_max_concurrency", 1) or 1
    clients = figure.details.get("clients", 8)
    direct = by_id.get("serving.serial.gradio_client")
    service = direct.reference if direct is not None and direct.available else math.nan
    text = (f"p95 with {clients} clients is {_f(figure.value, 0)} ms against {_f(figure.reference, 0)} ms for one "
            f"serial gradio_client query ({_f(figure.ratio, 2)}x). ")
    if clients > concurrency:
        text += (f"With {concurrency} requests served at once, a request that arrives with the others waits behind "
                 f"about {clients // concurrency - 1} rounds of {concurrency} (the handler alone takes "
                 f"{_f(service, 0)} ms serially), so the tail grows with the queue. ")
    else:
        text += (f"All {clients} requests are admitted at once (up to {concurrency} run together), so no request "
                 "queues behind a round of others; the tail is the time they take sharing the cores. ")
    throughput = by_id.get(figure.id.replace("serving.p95.", "serving.throughput."))
    client_ms = throughput.details.get("client_cpu_ms_per_query") if throughput is not None else None
    if client_ms is not None:
        app_ms = throughput.details.get("app_cpu_ms_per_query", math.nan)
        text += (f"Each query costs {_f(client_ms, 1)} ms of CPU in gradio_client and {_f(app_ms, 1)} ms in the app "
                 f"(the handler alone: {_f(service, 0)} ms), so {clients} queries at once queue for the same cores "
                 "in Gradio and gradio_client rather than in the towers")
        text += ("; the app already shares one forward among waiting queries." if figure.details.get("batching")
                 else ".")
    return text


def _indexing_limits(figure: Figure, by_id: dict[str, Figure]) -> str:
    other = by_id.get("indexing.build_vs_image_tower")
    stages = (other.details if other is not None else {}).get("build_stage_seconds_per_image", {})
    per_image_reference = 1.0 / figure.reference if figure.reference else math.nan
    text = (f"The build indexes {_f(figure.value)} tweets/s against {_f(figure.reference)} for the fp32 three-tower "
            f"forward alone ({_f(per_image_reference * 1000)} ms a tweet). ")
    if stages:
        total = sum(stages.values())
        listed = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in stages.items())
        text += (f"Per tweet the build's stages take {listed}: {total * 1000:.1f} ms one after the other, which caps "
                 f"it at {_f(per_image_reference / total, 2) if total else '–'}x before Chroma's writes. Reaching 1x "
                 "needs the towers faster than fp32 (the backend) by at least what decoding, preprocessing and the "
                 "stored copies cost, or those stages overlapped with the forward (issue 13 part 3).")
    return text


def _agreement_limits(figure: Figure, by_id: dict[str, Figure]) -> str:
    agreements = figure.details.get("agreement", {})
    worst = min(agreements, key=agreements.get) if agreements else "?"
    drift = by_id.get(figure.id.replace(".agreement.", ".quality_delta."))
    listed = ", ".join(f"{name} {value:.3f}" for name, value in agreements.items())
    text = (f"Agreement by direction and index: {listed}; the worst is {worst}. The backend moves each embedding a "
            "little (int8 weights and activations), which reorders near-tied neighbours; the tiny twin towers have "
            "many near ties among same-topic tweets.")
    if drift is not None and drift.available:
        text += f" Their quality figures move by at most {_f(drift.value, 4)} (bar: 0.01)."
    return text


def _cold_start_limits(figure: Figure, by_id: dict[str, Figure]) -> str:
    phases = figure.details.get("app_phases_seconds_since_start", {})
    if not phases:
        return ""
    towers = phases.get("loading towers")
    listening = phases.get("server listening")
    answer = phases.get("first answer")
    text = (f"The app answers first after {_f(figure.value)} s against {_f(figure.reference)} s to load the towers "
            "alone. ")
    if towers is not None and listening is not None and answer is not None:
        text += (f"It starts loading the towers {towers:.1f} s in (imports of gradio, chromadb, transformers), "
                 f"listens at {listening:.1f} s (towers, index open, UI built) and answers at {answer:.1f} s "
                 f"(gradio_client's connection and the first query, {answer - listening:.1f} s). ")
    return text + "The imports the towers-only process does not make (gradio, chromadb) are the part to defer."


LIMITS: dict[str, Callable[[Figure, dict[str, Figure]], str]] = {
    "latency.text_to_image.chosen_backend": _text_handler_limits,
    "latency.image_to_hashtags.chosen_backend": _image_handler_limits,
    "serving.throughput.8_clients": _throughput_limits,
    "serving.p95.8_clients": _p95_limits,
    "indexing.build_vs_three_towers": _indexing_limits,
    "cold_start.first_answer": _cold_start_limits,
}


# -- notes under each group -------------------------------------------------------------------------------------------
def _latency(group: Sequence[Figure]) -> str:
    lines = []
    for figure in group:
        if not figure.id.startswith("latency.text_to_image.") or figure.id.endswith("chosen_backend"):
            continue
        parts = figure.details.get("breakdown_median_ms", {})
        encode = parts.get("towers.encode_texts (1 text)", math.nan)
        chroma = parts.get("index.query (Chroma, k=10, metadata)", math.nan)
        exact = parts.get("numpy exact top-10", math.nan)
        items = figure.details.get("indexed_items", 0)
        lines.append(
            f"At {items:,} items the fp32 handler's {_f(figure.value)} ms is mostly the text tower "
            f"({_f(encode)} ms for one text); Chroma answers in {_f(chroma)} ms where exact numpy top-10 takes "
            f"{_f(exact)} ms; the rest ({_f(max(0.0, figure.value - encode - chroma))} ms) is validation, "
            "re-ranking and formatting (the parts are medians of separate runs, so they need not add up exactly)."
        )
    return "**Where the time goes.** " + " ".join(lines) if lines else ""


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
    backend = figure.details.get("backend", "torch")
    text = (
        f"**Where the time goes.** Per image, the {backend} image tower takes {forward * 1000:.1f} ms; the build adds "
        f"{listed} — {extra * 1000:.1f} ms in all ({extra / forward:.0%} of the image forward), one after the other "
        f"on the main thread. Done serially, the build cannot exceed {forward / (forward + extra):.2f}x of an "
        f"image-only forward at the {backend} tower's speed even before Chroma writes"
    )
    towers = stages.get("text + hashtag towers", 0.0)
    if towers:
        text += (f"; the text and hashtag towers alone ({towers * 1000:.1f} ms) cap it at "
                 f"{forward / (forward + towers):.2f}x, which is why the like-for-like reference is shown too")
    return text + "."


def _serving(group: Sequence[Figure]) -> str:
    by_id = {figure.id: figure for figure in group}
    client, rest = by_id.get("serving.serial.gradio_client"), by_id.get("serving.serial.rest")
    text = ""
    if client is not None and rest is not None:
        text = (
            f"Serially, gradio_client adds {client.value - client.reference:.0f} ms to the handler and the plain REST "
            f"call {rest.value - rest.reference:.0f} ms: the difference is gradio_client's own machinery (it polls "
            "its message queue every 50 ms), not the app. A browser talks to the same queue over one event stream."
        )
    rounds = [figure for figure in group if figure.id.startswith("serving.throughput.")]
    if rounds:
        listed = ", ".join(f"{figure.details.get('clients')}: {_f(figure.value)} q/s ({_f(figure.ratio, 2)}x)"
                           for figure in rounds)
        text += f" Throughput by concurrent clients against the serial handler — {listed}."
    return text.strip()


def _training(group: Sequence[Figure]) -> str:
    figure = group[0]
    reported = figure.details.get("loop_reported_samples_per_second")
    if reported is None:
        return ""
    return (f"The loop itself reports {reported:.2f} samples/s for this run (all_results.json); that runtime includes "
            "the per-epoch evaluation, which is why the figure times optimizer steps instead.")


def _cold_start(group: Sequence[Figure]) -> str:
    figure = group[0]
    phases = figure.details.get("app_phases_seconds_since_start", {})
    if not phases:
        return ""
    listed = ", ".join(f"{name} at {seconds:.1f} s" for name, seconds in phases.items())
    return f"**Phases of the last app start** (seconds since the process started): {listed}."


def _backends(group: Sequence[Figure]) -> str:
    lines = []
    for tower in ("text", "image"):
        rows = [figure for figure in group if figure.id.startswith(f"backends.{tower}_tower.")]
        if rows:
            fastest = min(rows, key=lambda figure: figure.value)
            listed = ", ".join(f"{figure.id.rsplit('.', 1)[1]} {_f(figure.value)} ms" for figure in rows)
            lines.append(f"{tower} tower (batch of 1): {listed}; fastest {fastest.id.rsplit('.', 1)[1]} "
                         f"({_f(fastest.ratio, 2)}x of fp32).")
    agreements = [figure for figure in group if figure.id.startswith("backends.agreement.")]
    if agreements:
        listed = ", ".join(f"{figure.id.rsplit('.', 1)[1]} {_f(figure.value, 3)}"
                           + ("" if figure.met else " (below the 0.95 bar)") for figure in agreements)
        lines.append(f"Top-10 agreement with fp32: {listed}.")
    chosen = next((figure for figure in group if figure.details.get("chosen")), None)
    if chosen is not None:
        lines.append(f"The library's default on a CPU (the chosen backend) is {chosen.id.rsplit('.', 1)[1]}.")
    return "**Backends side by side.** " + " ".join(lines) if lines else ""


def _sharding(group: Sequence[Figure], everything: Sequence[Figure]) -> str:
    figure = group[0]
    walls = figure.details.get("wall_s", {})
    rows = figure.details.get("tweets", 0)
    one = walls.get(1) or walls.get("1")
    build = next((f for f in everything if f.id == "indexing.build_vs_three_towers" and f.available), None)
    if not one or build is None or not build.value:
        return ""
    one = min(one)
    embed = rows / build.value  # the in-process build's time for these tweets
    fixed = max(0.0, one - embed)  # start-up: interpreter, imports, towers, launcher
    estimates = ", ".join(f"{n} GPUs ~{one / (fixed + embed / n):.2f}x" for n in (2, 4, 8))
    large = 100_000 / build.value
    estimates_large = ", ".join(f"{n} GPUs ~{(fixed + large) / (fixed + large / n):.1f}x" for n in (2, 4, 8))
    return (
        f"**On N GPUs.** Here one process takes {one:.1f} s for {rows} tweets, of which about {embed:.1f} s is the "
        f"build's own work (at figure 3's {build.value:.1f} tweets/s) and {fixed:.1f} s start-up. Two processes on "
        "two cores share the cores, so the ratio above only shows the extra start-up. With one GPU per process each "
        f"embeds 1/N of the tweets while the start-up stays: for these {rows} tweets {estimates}; for 100k tweets "
        f"{estimates_large} (upper bounds: the single writer of an embedded index, and Chroma's own insert rate, are "
        "not divided)."
    )


def _memory(group: Sequence[Figure]) -> str:
    listed = ", ".join(f"{figure.id.rsplit('.', 1)[1]} {figure.value:.0f} MiB ({_f(figure.ratio, 2)}x)"
                       for figure in group)
    return (f"**Resident memory after the first answer:** {listed}. The ONNX backends load no PyTorch weights "
            "(the export is cached beside the towers); torch-int8 keeps int8 copies of the linear layers only.")
