"""Figure 4: the same query through the running app (gradio_client and Gradio's REST API), serial and from 1, 4
and 8 concurrent clients, against the handler called in this process.

The app shares each tower's forward among queries that arrive together (``tweetmaker.inference.BatchedTowers``,
``--batch_max_size``/``--batch_wait_ms``); every figure's ``details`` say whether it did and with which settings. The
handler called in this process runs over the towers themselves: a lone call through the batcher would wait
``batch_wait_ms`` for company that never comes, which is a cost of serving, not of the reference. The batcher's
counters live in the app's own process and are not read here; tests/test_batching.py checks that it coalesces.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.context import Context, K
from benchmarks.harness import App, ask, ask_http, concurrent
from benchmarks.stats import MS, Figure, Stats, interleaved, median, ms_stats, usable_cores


def serving_overhead(ctx: Context, resources: Any, app: App) -> list[Figure]:
    """Figure 4: the same query through gradio_client against the running app vs the handler directly."""
    import httpx

    from tweetmaker.search import Recommender
    from tweetmaker.ui import Handlers

    profile = ctx.profile
    texts = ctx.query_texts
    handlers = Handlers(resources)
    raw = unbatched(resources.towers)
    if raw is not resources.towers:  # the reference never waits for a batch (see the module's docstring)
        handlers.recommender = Recommender(raw, resources.index, check=False, limits=handlers.recommender.limits)
    client = app.client
    backend = getattr(resources.towers, "backend", "torch")
    batching = batching_details(resources.settings)

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
        id="serving.serial.gradio_client",
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
        details={"backend": backend, **batching},
    ), Figure(
        id="serving.serial.rest",
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
        details=batching,
    )]
    figures += concurrent_clients(ctx, app, direct, median(app_times), backend, resources.settings.max_concurrency,
                                  batching)
    return figures


def unbatched(towers: Any) -> Any:
    """The towers under the app's batcher, or ``towers`` themselves (a library without ``tweetmaker.inference
    .batching``, batching off)."""
    try:
        from tweetmaker.inference.batching import unbatched as inner
    except ImportError:
        return towers
    return inner(towers)


def batching_details(settings: Any) -> dict[str, Any]:
    """Whether the app (started with the same flags as ``settings``) batched its forwards, and how."""
    size = int(getattr(settings, "batch_max_size", 1) or 1)
    return {"batching": size > 1, "batch_max_size": size, "batch_wait_ms": getattr(settings, "batch_wait_ms", None)}


def concurrent_clients(ctx: Context, app: App, direct: Callable[[int], Any], serial_client_s: float, backend: str,
                       max_concurrency: int, batching: dict[str, Any] | None = None) -> list[Figure]:
    """Issue 13's serving targets: throughput of 1, 4 and 8 concurrent gradio_client clients against the handler
    called serially in this process (8 clients: >= 1.5x), and their p95 latency against the serial gradio_client
    latency measured just before (8 clients: <= 3x).

    The serial direct handler is timed before and after the client rounds (the same number of calls each time) and
    its two rounds pooled, so a slow spell during the client rounds is not all on one side.
    """
    from gradio_client import Client

    profile = ctx.profile
    texts = ctx.query_texts
    counts = profile.serve_client_counts
    clients = [Client(app.url, verbose=False, download_files=False, analytics_enabled=False)
               for _ in range(max(counts))]
    direct_calls = max(profile.serve_serial, max(counts) * profile.serve_per_client) // 2
    serial_walls: list[float] = []
    rounds: dict[int, tuple[float, list[float]]] = {}
    cpu: dict[int, dict[str, float]] = {}  # per round: CPU ms a query cost the clients' process and the app
    try:
        serial_walls.append(_serial_wall(direct, direct_calls, offset=50_000))
        for count in counts:
            before = _cpu_seconds(app)
            rounds[count] = concurrent(
                [lambda i, c=c, n=n: ask(c, texts[(11 * i + 5 + 997 * n) % len(texts)])
                 for n, c in enumerate(clients[:count])], profile.serve_per_client)
            queries = count * (profile.serve_per_client + 1)  # concurrent() warms each client up once
            cpu[count] = {side: (spent - before[side]) * MS / queries for side, spent in _cpu_seconds(app).items()}
        serial_walls.append(_serial_wall(direct, direct_calls, offset=60_000))
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                c.close()
    serial_rate = 2 * direct_calls / sum(serial_walls)
    figures = []
    for count, (wall, latencies) in rounds.items():
        label = f"{count} client" + ("s" if count > 1 else "")
        common = {"clients": count, "queries_per_client": profile.serve_per_client, "backend": backend,
                  "app_max_concurrency": max_concurrency, **(batching or {})}
        figures += [
            Figure(
                id=f"serving.throughput.{count}_client{'s' if count > 1 else ''}",
                number=4,
                name=f"Serving throughput, {label} (gradio_client) vs the handler called serially",
                value=count * profile.serve_per_client / wall,
                reference=serial_rate,
                unit="queries/s",
                description=f"{label} (gradio_client, one thread each) sending {profile.serve_per_client} text→image "
                            f"queries each, all at once, to `python app.py` (at most {max_concurrency} model-bound "
                            f"requests run at once; {_batching_words(batching)})",
                reference_description=f"ui.Handlers.text_to_image called serially in this process ({direct_calls} "
                                      "calls before and after the client rounds)",
                target=(">=", 1.5) if count == 8 else None,
                details={**common, "wall_s": wall, "serial_direct_walls_s": serial_walls,
                         "client_cpu_ms_per_query": cpu[count]["client"],
                         "app_cpu_ms_per_query": cpu[count]["app"], "cores": usable_cores()},
            ),
            Figure(
                id=f"serving.p95.{count}_client{'s' if count > 1 else ''}",
                number=4,
                name=f"Serving p95 latency, {label} (gradio_client) vs serial gradio_client latency",
                value=Stats.of(latencies).p95 * MS,
                reference=serial_client_s * MS,
                unit="ms",
                description=f"p95 of the per-query latency each of {label} saw (the rounds above)",
                reference_description="median latency of one gradio_client asking serially (the first figure of this "
                                      "group)",
                target=("<=", 3.0) if count == 8 else None,
                value_stats=ms_stats(latencies),
                details=common,
            ),
        ]
    return figures


def _cpu_seconds(app: App) -> dict[str, float]:
    """CPU seconds (user + system) spent so far by this process (the gradio_client threads) and by the app."""
    import resource

    mine = resource.getrusage(resource.RUSAGE_SELF)
    fields = Path(f"/proc/{app.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"client": mine.ru_utime + mine.ru_stime, "app": (int(fields[11]) + int(fields[12])) / ticks}


def _serial_wall(call: Callable[[int], Any], count: int, offset: int) -> float:
    call(offset - 1)  # warm-up
    began = time.perf_counter()
    for i in range(count):
        call(offset + i)
    return time.perf_counter() - began


def _batching_words(batching: dict[str, Any] | None) -> str:
    if not batching or not batching.get("batching"):
        return "one forward per query"
    return (f"queries arriving within {batching['batch_wait_ms']:g} ms share a forward per tower, up to "
            f"{batching['batch_max_size']}")
