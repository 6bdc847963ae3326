"""Figure 4: the same query through the running app (gradio_client and Gradio's REST API), serial and from
concurrent clients, against the handler called in this process."""

from __future__ import annotations

import contextlib
from typing import Any

from benchmarks.context import Context, K
from benchmarks.harness import App, ask, ask_http, concurrent
from benchmarks.stats import MS, Figure, Stats, interleaved, median, ms_stats


def serving_overhead(ctx: Context, resources: Any, app: App) -> list[Figure]:
    """Figure 4: the same query through gradio_client against the running app vs the handler directly."""
    import httpx
    from gradio_client import Client

    from tweetmaker.ui import Handlers

    profile = ctx.profile
    texts = ctx.query_texts
    handlers = Handlers(resources)
    client = app.client

    def through_app(i: int) -> None:
        ask(client, texts[(3 * i + 1) % len(texts)])

    def direct(i: int) -> None:
        handlers.text_to_image(texts[(3 * i + 1) % len(texts)], K, 0.0, 0.0, 0.0)

    app_times, direct_times = interleaved(through_app, direct, repeats=profile.serve_serial, warmup=profile.warmup)
    with httpx.Client(base_url=app.url, timeout=120) as http:
        http_times, direct_again = interleaved(lambda i: ask_http(http, texts[(3 * i + 2) % len(texts)]),
                                               lambda i: direct(i + 1), repeats=profile.serve_serial,
                                               warmup=profile.warmup)
    figures = [Figure(
        number=4,
        name="Serving overhead, serial: gradio_client → app vs handler directly",
        value=median(app_times) * MS,
        reference=median(direct_times) * MS,
        unit="ms",
        description="gradio_client.Client.predict(api_name='/text_to_image', k=10) against `python app.py` on "
                    "127.0.0.1 (files not downloaded)",
        reference_description="ui.Handlers.text_to_image called in this process",
        value_stats=ms_stats(app_times),
        reference_stats=ms_stats(direct_times),
    ), Figure(
        number=4,
        name="Serving overhead, serial: Gradio REST API (no gradio_client) → app vs handler directly",
        value=median(http_times) * MS,
        reference=median(direct_again) * MS,
        unit="ms",
        description="POST /gradio_api/call/text_to_image then read the event stream (httpx, one connection)",
        reference_description="ui.Handlers.text_to_image called in this process",
        value_stats=ms_stats(http_times),
        reference_stats=ms_stats(direct_again),
        notes="Separates what the server adds from gradio_client's own cost (it polls for messages every 50 ms).",
    )]
    clients = [Client(app.url, verbose=False, download_files=False, analytics_enabled=False)
               for _ in range(profile.serve_clients)]
    try:
        workers = profile.serve_clients
        app_wall, app_latency = concurrent(
            [lambda i, c=c: ask(c, texts[(7 * i + 3) % len(texts)]) for c in clients], profile.serve_per_client)
        direct_wall, direct_latency = concurrent(
            [lambda i: handlers.text_to_image(texts[(7 * i + 3) % len(texts)], K, 0.0, 0.0, 0.0)] * workers,
            profile.serve_per_client)
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                c.close()
    total = workers * profile.serve_per_client
    figures += [
        Figure(
            number=4,
            name=f"Serving throughput, {workers} concurrent clients: app vs handler directly",
            value=total / app_wall,
            reference=total / direct_wall,
            unit="queries/s",
            description=f"{workers} gradio_client clients in threads, {profile.serve_per_client} queries each "
                        f"(the app runs at most {resources.settings.max_concurrency} model-bound requests at once)",
            reference_description=f"{workers} threads calling the handler directly",
            details={"app_wall_s": app_wall, "direct_wall_s": direct_wall},
        ),
        Figure(
            number=4,
            name=f"Serving p95 latency, {workers} concurrent clients: app vs handler directly",
            value=Stats.of(app_latency).p95 * MS,
            reference=Stats.of(direct_latency).p95 * MS,
            unit="ms",
            description="p95 of the per-query latency seen by each client",
            reference_description="p95 of the direct handler calls from the same number of threads",
            value_stats=ms_stats(app_latency),
            reference_stats=ms_stats(direct_latency),
        ),
    ]
    return figures
