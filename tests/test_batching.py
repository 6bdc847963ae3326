"""Micro-batching of concurrent queries (tweetmaker.inference.batching): answers identical to one query at a time.

No timings here: coalescing is made certain, not likely. Either the batch size equals the number of callers and the
wait is long (the worker dispatches the moment the last one arrives), or the first forward is held until the others
are queued. Throughput and latency are measured by benchmarks/run.py (figure 4).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from gradio_client import Client, handle_file

from tweetmaker.config import parse_settings
from tweetmaker.errors import InvalidInputError
from tweetmaker.inference import BatchedTowers, MicroBatcher, batched_towers, unbatched
from tweetmaker.resources import serving_towers
from tweetmaker.search import Recommender
from tweetmaker.synthetic import render_image

LONG_WAIT_MS = 60_000.0  # a batch leaves when full, long before this: the wait only makes coalescing certain
TEXTS = ["two red robots on a plain background", "#AI", "a green processor chip, 4 cores!", "",
         "clouds over a data center at night 🌙", "brain scans and charts", "rocket", "a lightbulb moment " * 30]
HASHTAGS = ["#AI #ml", "#robots", "", "#SpaceTech #rockets #launch", "#cloud", "#GPU", "#brain #health", "#idea"]
TOPICS = ["robot", "rocket", "chip", "brain", "cloud", "chart", "eye", "lightbulb"]


@pytest.fixture(scope="module")
def towers(tiny_clip_dir, tmp_path_factory):
    from tweetmaker.towers import build_towers_from_base, load_towers

    saved = build_towers_from_base(tiny_clip_dir, device="cpu").save(tmp_path_factory.mktemp("towers") / "t")
    return load_towers(saved, device="cpu")


@pytest.fixture(scope="module")
def images():
    return [render_image(topic, color, 2, "plain", (96 + 8 * n, 64), seed=n)
            for n, (topic, color) in enumerate(zip(TOPICS, ["red", "blue", "green"] * 3))]


def together(calls):
    """Run every call in its own thread, all released at once; the answers (or errors) in order."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait(timeout=60)
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - the test compares errors too
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.mark.parametrize("tower", ["text", "hashtag", "image"])
def test_concurrent_queries_share_one_forward_and_get_their_own_rows(towers, images, tower):
    items = {"text": TEXTS, "hashtag": HASHTAGS, "image": images}[tower]
    encode = {"text": "encode_texts", "hashtag": "encode_hashtags", "image": "encode_images"}[tower]
    alone = [getattr(towers, encode)([item])[0] for item in items]
    batched = BatchedTowers(towers, max_batch_size=len(items), max_wait_ms=LONG_WAIT_MS)
    try:
        answers = together([lambda item=item: getattr(batched, encode)([item]) for item in items])
    finally:
        batched.close()
    for row, answer in zip(alone, answers):
        assert answer.shape == (1, towers.embedding_dim) and answer.dtype == np.float32
        np.testing.assert_allclose(answer[0], row, atol=1e-5)
    stats = batched.stats()[tower]
    assert stats["requests"] == len(items) and stats["forwards"] == 1 and stats["largest"] == len(items)


def test_a_lone_query_is_answered_in_a_forward_of_its_own(towers):
    batched = BatchedTowers(towers)  # the defaults: a few milliseconds of wait at most
    try:
        np.testing.assert_allclose(batched.encode_texts([TEXTS[0]]), towers.encode_texts([TEXTS[0]]), atol=1e-5)
        assert batched.stats()["text"] == {"requests": 1, "items": 1, "forwards": 1, "largest": 1, "retried": 0,
                                           "bypassed": 0}
    finally:
        batched.close()


def test_requests_piled_up_behind_a_busy_worker_leave_together(towers):
    """No wait at all (``max_wait_ms=0``): what queued while a forward ran is the next batch, whole."""
    batcher: MicroBatcher | None = None
    release = threading.Event()

    def forward(items):
        if batcher is not None and batcher.stats.forwards == 1:
            release.wait(timeout=60)  # the first forward holds the worker until the others are queued
        return towers.encode_texts(items, batch_size=len(items))

    batcher = MicroBatcher(forward, max_batch_size=16, max_wait_ms=0)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher, [TEXTS[0]])
        while batcher.stats.forwards < 1:
            time.sleep(0.005)
        rest = [pool.submit(batcher, [text]) for text in TEXTS[1:6]]
        while batcher.pending < 5:
            time.sleep(0.005)
        release.set()
        answers = [first.result()] + [future.result() for future in rest]
    batcher.close()
    for text, answer in zip(TEXTS, answers):
        np.testing.assert_allclose(answer, towers.encode_texts([text]), atol=1e-5)
    assert batcher.stats.forwards == 2 and batcher.stats.largest == 5


def test_one_bad_input_fails_only_its_own_caller(towers, images):
    """The batch's forward fails on a non-image; each request is then asked alone, so only that caller gets it."""
    items = [images[0], "not an image", images[1], images[2]]
    batched = BatchedTowers(towers, max_batch_size=len(items), max_wait_ms=LONG_WAIT_MS)
    try:
        answers = together([lambda item=item: batched.encode_images([item]) for item in items])
        # The worker lives on, and batches again.
        again = together([lambda image=image: batched.encode_images([image]) for image in images[4:8]])
    finally:
        batched.close()
    assert isinstance(answers[1], AttributeError)
    for image, answer in zip([items[0], *items[2:], *images[4:8]], [answers[0], *answers[2:], *again]):
        np.testing.assert_allclose(answer, towers.encode_images([image]), atol=1e-5)
    stats = batched.stats()["image"]
    assert stats["retried"] == len(items) and stats["forwards"] == 1 + len(items) + 1


def test_a_forward_that_raises_reaches_every_caller_and_the_worker_keeps_serving():
    def forward(items):
        if "boom" in items:
            raise RuntimeError("the forward failed")
        return np.array([[float(len(item))] for item in items], dtype=np.float32)

    batcher = MicroBatcher(forward, max_batch_size=1 + 1, max_wait_ms=LONG_WAIT_MS)
    try:
        answers = together([lambda: batcher(["boom"]), lambda: batcher(["ok"])])
        assert isinstance(answers[0], RuntimeError) and answers[1].tolist() == [[2.0]]
        with pytest.raises(RuntimeError, match="the forward failed"):
            batcher(["boom", "x"])  # as many items as a batch holds: run in the caller's thread, its error too
        assert batcher.stats.bypassed == 1
    finally:
        batcher.close()


def test_big_calls_and_closed_batchers_go_straight_to_the_towers(towers):
    batched = BatchedTowers(towers, max_batch_size=4)
    many = TEXTS * 3
    np.testing.assert_allclose(batched.encode_texts(many, batch_size=5), towers.encode_texts(many), atol=1e-5)
    assert batched.encode_texts([]).shape == (0, towers.embedding_dim)
    batched.close()
    batched.close()
    np.testing.assert_allclose(batched.encode_texts(TEXTS[:1]), towers.encode_texts(TEXTS[:1]), atol=1e-5)
    stats = batched.stats()["text"]
    assert stats["requests"] == 0 and stats["bypassed"] == 3
    with pytest.raises(ValueError, match="batch_size"):
        batched.encode_texts(TEXTS[:1], batch_size=0)


def test_the_wrapper_is_the_towers_for_everything_but_encoding(towers):
    batched = batched_towers(towers, 8, 1.0)
    try:
        assert batched_towers(towers, 1, 1.0) is towers  # batching off
        assert batched_towers(batched, 8, 1.0) is batched and unbatched(batched) is towers
        assert unbatched(towers) is towers
        for name in ("identity", "embedding_dim", "backend", "device", "logit_scale", "local_dir", "tokenizer",
                     "image_processor", "max_text_length"):
            assert getattr(batched, name) == getattr(towers, name), name
        assert batched.models() == towers.models()
    finally:
        batched.close()


# ------------------------------------------------------------------------------------------ settings


def test_batching_flags_and_their_checks():
    settings = parse_settings([], environ={})
    assert (settings.batch_max_size, settings.batch_wait_ms) == (16, 3.0)
    assert settings.max_concurrency >= 8  # enough requests at once for 8 clients to be coalesced
    # Batching off: each request runs its own forward, so the default admits about the cores' worth, not 16.
    assert parse_settings(["--batch_max_size", "1"], environ={}).max_concurrency == 2
    assert parse_settings(["--batch_max_size", "1", "--max_concurrency", "6"], environ={}).max_concurrency == 6
    settings = parse_settings(["--batch_wait_ms", "0"], environ={"TWEETMAKER_BATCH_MAX_SIZE": "4"})
    assert (settings.batch_max_size, settings.batch_wait_ms) == (4, 0.0)
    for argv, message in [(["--batch_max_size", "0"], "batch_max_size"), (["--batch_wait_ms", "-1"], "batch_wait"),
                          (["--batch_wait_ms", "5000"], "batch_wait")]:
        with pytest.raises(InvalidInputError, match=message):
            parse_settings(argv, environ={})


# ------------------------------------------------------------------------------------------ the app


def test_the_app_serves_batched_towers_with_the_same_answers(running_app):
    _, resources = running_app
    served = resources.towers
    assert isinstance(served, BatchedTowers) and resources.recommender.towers is served
    resources.index.check_towers(served)
    assert serving_towers(dataclasses.replace(resources.settings, batch_max_size=1), served.inner) is served.inner
    raw = Recommender(served.inner, resources.index)
    batched = Recommender(BatchedTowers(served.inner, max_batch_size=len(TEXTS), max_wait_ms=LONG_WAIT_MS),
                          resources.index)
    try:
        answers = together([lambda text=text: batched.text_to_images(text or "blank", k=8) for text in TEXTS])
    finally:
        batched.towers.close()
    for text, answer in zip(TEXTS, answers):
        alone = raw.text_to_images(text or "blank", k=8)
        assert [hit.id for hit in answer] == [hit.id for hit in alone]
    assert batched.towers.stats()["text"]["forwards"] == 1


def test_concurrent_clients_get_the_answers_of_serial_calls_in_shared_forwards(running_app, tmp_path, monkeypatch):
    client, resources = running_app
    batcher = resources.towers.batchers["text"]
    texts = [f"{count} {topic}s in blue" for count, topic in zip(range(2, 10), TOPICS)]
    pictures = []
    for n, topic in enumerate(TOPICS[:4]):
        pictures.append(str(tmp_path / f"{topic}.png"))
        render_image(topic, "red", 2, "plain", (128, 96), seed=n).save(pictures[-1])

    def ids(answer):
        return [row[1] for row in answer[1]["data"]]

    def tags(answer):
        return [row[0] for row in answer[0]["data"]]

    serial = [ids(client.predict(text, 5, 0, 0, 0, api_name="/text_to_image")) for text in texts]
    serial_tags = [tags(client.predict(handle_file(p), 5, 0, 0, 0, api_name="/image_to_hashtags")) for p in pictures]

    before = batcher.stats
    real = batcher.forward

    def held(items):
        # The first forward of the round waits until every text is with the batcher (running or queued), so the
        # others can only leave together: coalescing is certain, whatever the machine's load.
        deadline = time.monotonic() + 60
        while batcher.stats.requests + batcher.pending < before.requests + len(texts) and time.monotonic() < deadline:
            time.sleep(0.005)
        return real(items)

    monkeypatch.setattr(batcher, "forward", held)
    clients = [Client(client.src, verbose=False) for _ in texts]
    try:
        answers = together([lambda c=c, t=t: ids(c.predict(t, 5, 0, 0, 0, api_name="/text_to_image"))
                            for c, t in zip(clients, texts)])
        monkeypatch.setattr(batcher, "forward", real)
        picture_answers = together([lambda c=c, p=p: tags(c.predict(handle_file(p), 5, 0, 0, 0,
                                                                    api_name="/image_to_hashtags"))
                                    for c, p in zip(clients, pictures)])
    finally:
        for each in clients:
            each.close()
    assert answers == serial
    assert picture_answers == serial_tags
    after = batcher.stats
    assert after.requests - before.requests == len(texts)
    assert after.forwards - before.forwards < len(texts)  # shared forwards
