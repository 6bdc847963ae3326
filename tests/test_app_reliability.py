"""The app under faults and load: a Chroma server that goes away and comes back, many clients at once, overload.

Each test starts the real app (``app.main``) on 127.0.0.1 and talks to it through ``gradio_client`` over HTTP.
"""

from __future__ import annotations

import random
import resource
import statistics
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client, handle_file

from tests.chroma_server import ChromaServer, free_port
from tweetmaker.synthetic import render_image

pytestmark = pytest.mark.slow


def start_app(*flags: str):
    import app

    port = free_port()
    demo, resources = app.main([*flags, "--port", str(port)], prevent_thread_lock=True)
    return demo, resources, Client(f"http://127.0.0.1:{port}/", verbose=False)


def stop_app(demo, resources, client) -> None:
    client.close()
    demo.close()
    resources.close()


# ------------------------------------------------------------------------------------------ Chroma server outage


def test_chroma_server_outage_gives_a_clear_error_and_the_app_recovers_without_restart(learned, tmp_path):
    server = ChromaServer(tmp_path / "chroma").start()
    demo = resources = client = None
    try:
        # The app builds the index into the server on its first start, then serves from it.
        demo, resources, client = start_app(
            "--towers", str(learned["towers"]), "--dataset", str(learned["dataset"]),
            "--index_dir", str(tmp_path / "index"), "--chroma_host", server.host, "--chroma_port", str(server.port))
        before, _ = client.predict("a blue rocket launch", 5, 0, 0, 0, api_name="/text_to_image")
        assert len(before) == 5

        server.stop()
        with pytest.raises(Exception, match="Chroma server .* did not answer"):
            client.predict("a blue rocket launch", 5, 0, 0, 0, api_name="/text_to_image")
        # The app itself keeps serving what needs no index.
        preview, _ = client.predict("still here", "#AI", api_name="/compose_tweet")
        assert preview == "still here #AI"

        server.start()  # same port, same data
        after, _ = client.predict("a blue rocket launch", 5, 0, 0, 0, api_name="/text_to_image")
        assert [item["caption"] for item in after] == [item["caption"] for item in before]
    finally:
        if client is not None:
            stop_app(demo, resources, client)
        server.stop()


# ------------------------------------------------------------------------------------------ load


def _picture(path, topic: str, color: str) -> str:
    render_image(topic, color, 2, "plain", (256, 192), seed=5).save(path, format="PNG")
    return str(path)


def test_eight_clients_two_hundred_mixed_queries(running_app, learned, tmp_path):
    """8 concurrent clients, 200 mixed queries: none fails and each answer is the one that query gets alone."""
    client, resources = running_app
    url = client.src
    topics = ["robot", "rocket", "chip", "brain", "cloud", "chart", "eye", "lightbulb"]
    pictures = {topic: _picture(tmp_path / f"{topic}.png", topic, "blue") for topic in topics}
    rng = random.Random(0)
    queries = []
    for number in range(200):
        topic = rng.choice(topics)
        kind = ("text", "image", "combined")[number % 3]
        if kind == "text":
            queries.append(("/text_to_image", (f"two {topic}s in blue", 5, 0, 0, 0)))
        elif kind == "image":
            queries.append(("/image_to_hashtags", (handle_file(pictures[topic]), 5, 0, 0, 0)))
        else:
            queries.append(("/combined", (f"a {topic}", handle_file(pictures[topic]), 0.5, 5, 0, 0, 0)))

    def fingerprint(endpoint: str, answer) -> tuple:
        # What identifies an answer: the tweets returned, in order (image paths differ per upload).
        if endpoint == "/text_to_image":
            return tuple(row[1] for row in answer[1]["data"])
        if endpoint == "/image_to_hashtags":
            return (tuple(row[0] for row in answer[0]["data"]), tuple(item["caption"] for item in answer[2]))
        return (tuple(item["caption"] for item in answer[0]), tuple(row[0] for row in answer[1]["data"]))

    # The expected answer of each distinct query, asked alone.
    expected = {}
    for endpoint, args in queries:
        key = (endpoint, repr(args))
        if key not in expected:
            expected[key] = fingerprint(endpoint, client.predict(*args, api_name=endpoint))

    local = threading.local()
    latencies: list[float] = []
    rss_before = _current_rss_mib()

    def ask(query):
        if not hasattr(local, "client"):
            local.client = Client(url, verbose=False)
        endpoint, args = query
        started = time.perf_counter()
        answer = local.client.predict(*args, api_name=endpoint)
        latencies.append(time.perf_counter() - started)
        return fingerprint(endpoint, answer) == expected[(endpoint, repr(args))]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(ask, queries))
    assert len(outcomes) == 200 and all(outcomes), Counter(outcomes)

    rss_after = _current_rss_mib()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the whole test session's peak
    p95 = statistics.quantiles(latencies, n=20)[-1]
    median = statistics.median(latencies)
    print(f"load: 200 queries, 8 clients, p95 {p95 * 1000:.0f} ms, median {median * 1000:.0f} ms, "
          f"RSS {rss_before:.0f} -> {rss_after:.0f} MiB (session peak {peak:.0f} MiB)")
    # Memory stays bounded: 200 queries may not grow the (app + clients) process by more than 300 MiB.
    assert rss_after - rss_before < 300


def _current_rss_mib() -> float:
    """Resident memory of this process now (ru_maxrss is the session's peak, set long before by training)."""
    import gc

    gc.collect()
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_a_full_queue_turns_overload_into_a_clear_message(learned, tmp_path):
    """With one worker and room for two waiting requests, a burst of 16 gets "queue is full" answers, never a hang."""
    demo, resources, client = start_app(
        "--towers", str(learned["towers"]), "--dataset", str(learned["dataset"]),
        "--index_dir", str(tmp_path / "index"), "--max_concurrency", "1", "--queue_size", "2")
    try:
        long_draft = "robots rockets chips brains clouds charts eyes light bulbs " * 20
        burst = 16
        clients = [Client(client.src, verbose=False) for _ in range(burst)]  # connected before the burst
        start = threading.Barrier(burst)

        def ask(burst_client):
            start.wait(timeout=60)  # all requests leave together: far more than 1 running + 2 waiting
            try:
                burst_client.predict(long_draft, 50, 0.5, 0.5, 0.5, api_name="/text_to_image")
                return "ok"
            except Exception as error:  # noqa: BLE001 - the message is what is checked
                return str(error)

        try:
            with ThreadPoolExecutor(max_workers=burst) as pool:
                answers = list(pool.map(ask, clients))
        finally:
            for burst_client in clients:
                burst_client.close()
        rejected = [answer for answer in answers if answer != "ok"]
        assert "ok" in answers
        assert rejected and all("queue is full" in answer.lower() for answer in rejected), answers
        # Served again once the burst is over.
        gallery, _ = client.predict("a robot", 3, 0, 0, 0, api_name="/text_to_image")
        assert len(gallery) == 3
    finally:
        stop_app(demo, resources, client)


# ------------------------------------------------------------------------------------------ offline first start

SECRET_TOKEN = "hf_tweetmakerTestSecret0123456789abcdef"


def _start_app_process(tmp_path, log_name: str):
    """`python app.py` as the README launches it, offline, with a fake Hub token in its environment."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_TOKEN": SECRET_TOKEN,
           "TWEETMAKER_CACHE_DIR": str(tmp_path / "cache"), "TWEETMAKER_INDEX_DIR": str(tmp_path / "index")}
    log = open(tmp_path / log_name, "wb")  # noqa: SIM115 - closed by _stop_app_process
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO_ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    process.log = log
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return process, Client(f"http://127.0.0.1:{port}/", verbose=False)
        except Exception:  # noqa: BLE001 - not serving yet
            time.sleep(2)
    process.kill()
    process.wait(timeout=30)
    log.close()
    raise AssertionError(f"the app did not come up (rc {process.returncode}):\n"
                         + (tmp_path / log_name).read_text(errors="replace")[-3000:])


def _stop_app_process(process, client) -> None:
    client.close()
    process.terminate()
    try:
        process.wait(timeout=30)
    except Exception:  # noqa: BLE001
        process.kill()
        process.wait(timeout=30)
    process.log.close()


def test_offline_first_start_serves_the_synthetic_demo_and_the_second_start_reuses_it(tmp_path):
    process, client = _start_app_process(tmp_path, "first.log")
    try:
        first, _ = client.predict("two red robots", 6, 0, 0, 0, api_name="/text_to_image")
        with urllib.request.urlopen(client.src.rstrip("/") + "/config", timeout=30) as response:
            page_config = response.read().decode()
        assert "Synthetic offline demo." in page_config  # the banner the UI shows
    finally:
        _stop_app_process(process, client)
    log = (tmp_path / "first.log").read_text(errors="replace")
    assert len(first) == 6
    # It says plainly why and what it is, and how to point it at real towers.
    assert "could not be loaded from the Hugging Face Hub" in log and "SYNTHETIC OFFLINE DEMO" in log
    assert "--towers" in log
    assert "training a tiny model" in log and "Building the index" in log

    process, client = _start_app_process(tmp_path, "second.log")
    try:
        second, _ = client.predict("two red robots", 6, 0, 0, 0, api_name="/text_to_image")
    finally:
        _stop_app_process(process, client)
    log_again = (tmp_path / "second.log").read_text(errors="replace")
    assert "SYNTHETIC OFFLINE DEMO" in log_again
    assert "training a tiny model" not in log_again and "Building the index" not in log_again  # cache reused
    assert [item["caption"] for item in second] == [item["caption"] for item in first]
    # The Hub token is read from the environment and never printed.
    assert SECRET_TOKEN not in log + log_again
