"""Compose in the running app: through gradio_client, through MCP, and in Chromium (shared links with no click, the
same results after a restart, an embedding iframe, the phone-width screenshot, feedback recorded when on and not when
off), and hostile inputs refused with a message while the app keeps serving.

One app (``--mcp --feedback_dir``) serves the whole module, one browser drives it; the feedback-off test uses the
session's ``running_app`` (started without feedback). The numbers of the "more like this" and "not" measurements
are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import http.server
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers import free_port
from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, save_screenshot

pytestmark = pytest.mark.slow
LINK = "/?q=three%20blue%20robots%20on%20dots"
K = 10
GALLERY_IMAGES = "#compose-gallery img"
IMAGES_LOADED = f"() => [...document.querySelectorAll('{GALLERY_IMAGES}')].some(i => i.naturalWidth > 0)"
needs_chromium = pytest.mark.skipif(
    not CHROMIUM, reason="Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")


@dataclass
class ComposeApp:
    """The app under test, restartable on the same port, index and feedback folder."""

    argv: list[str]
    port: int
    feedback_dir: Path
    demo: Any = None
    resources: Any = None
    client: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from gradio_client import Client

        import app

        self.demo, self.resources = app.main([*self.argv, "--port", str(self.port)], prevent_thread_lock=True)
        self.client = Client(self.url + "/", verbose=False)

    def stop(self) -> None:
        self.client.close()
        self.demo.close()
        self.resources.close()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def compose_app(learned, tmp_path_factory):
    root = tmp_path_factory.mktemp("compose_app")
    feedback_dir = root / "feedback"
    argv = ["--towers", str(learned["towers"]), "--dataset", str(learned["dataset"]), "--index_dir",
            str(root / "index"), "--mcp", "--feedback_dir", str(feedback_dir)]
    running = ComposeApp(argv, free_port(), feedback_dir)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def open_page(browser, url: str, width: int = 1280, height: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url, wait_until="load", timeout=120_000)
    return page


def result_alts(page, timeout: float = 120_000) -> list[str]:
    """The result images' alt texts (score and tweet), once the first has loaded."""
    page.wait_for_function(IMAGES_LOADED, timeout=timeout)
    return [image.get_attribute("alt") for image in page.locator(GALLERY_IMAGES).all()]


def topics_of(resources, ids: list[str], attribute: str = "attr_topic") -> list[Any]:
    found = resources.index.get("image", ids, with_embeddings=False)
    return [found[tweet_id].metadata.get(attribute) for tweet_id in ids]


# -- a shared link: results with no click, the same after a restart (first: the app is freshly started) ---------------
@needs_chromium
def test_a_shared_link_shows_results_with_no_click_and_the_same_after_a_restart(compose_app, browser):
    page = open_page(browser, compose_app.url + LINK)
    try:
        first = result_alts(page)
        assert first and all(alt for alt in first)  # alt text from the tweet
        tab = page.get_by_role("tab").first
        assert tab.inner_text().strip() == "Compose" and tab.get_attribute("aria-selected") == "true"
        assert page.locator("#compose-draft textarea").input_value() == "three blue robots on dots"
        assert page.locator("#compose-tweet textarea").input_value().startswith("three blue robots on dots")
    finally:
        page.close()
    compose_app.restart()
    page = open_page(browser, compose_app.url + LINK)
    try:
        assert result_alts(page)[:4] == first[:4]
    finally:
        page.close()


# -- gradio_client and MCP --------------------------------------------------------------------------------------------
def test_compose_returns_images_hashtags_and_a_preview_in_one_call(compose_app):
    gallery, answer = compose_app.client.predict("three blue robots on dots", None, "", "", False, 6, 0, 0, 0,
                                                 api_name="/compose")
    assert len(gallery) == len(answer["images"]) == 6
    assert all(Path(item["image"]).is_file() and item["caption"] for item in gallery)
    assert answer["hashtags"] and any(tag["chosen"] for tag in answer["hashtags"])
    chosen = [f"#{tag['tag']}" for tag in answer["hashtags"] if tag["chosen"]]
    assert answer["preview"]["text"] == " ".join(["three blue robots on dots", *chosen])
    assert answer["preview"]["counter"].startswith(f"{answer['preview']['length']} / 280")
    assert answer["preview"]["intent_url"].startswith("https://twitter.com/intent/tweet?text=three%20blue")
    assert answer["similar_tweets"] and answer["share"] == "?q=three%20blue%20robots%20on%20dots&k=6"
    topics = topics_of(compose_app.resources, [image["id"] for image in answer["images"]])
    assert topics.count("robot") >= 4, topics


def call_mcp(url: str, tool: str, arguments: dict[str, Any]) -> tuple[list[str], Any]:
    from mcp import ClientSession
    from mcp.client import streamable_http

    # The newer name, else the older one (mcp < 1.24).
    connect = getattr(streamable_http, "streamable_http_client", None) or streamable_http.streamablehttp_client

    async def session() -> tuple[list[str], Any]:
        async with connect(url) as (read, write, _), ClientSession(read, write) as client:
            await client.initialize()
            tools = await client.list_tools()
            return [(item.name, item) for item in tools.tools], await client.call_tool(tool, arguments)

    # In a thread: the module's Playwright browser keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, session()).result()


def test_mcp_lists_the_recommendation_tools_with_described_arguments_and_compose_answers(compose_app):
    tools, result = call_mcp(compose_app.url + "/gradio_api/mcp/", "compose",
                             {"draft": "three blue robots on dots", "k": 5})
    tools = dict(tools)
    assert {"compose", "more_like_this", "text_to_image", "image_to_hashtags", "combined"} <= set(tools)
    for name in ("compose", "more_like_this", "text_to_image"):
        properties = tools[name].inputSchema["properties"]
        assert tools[name].description and all(spec.get("description") for spec in properties.values()), name
    assert tools["more_like_this"].inputSchema.get("required") == ["tweet"]  # every other argument has a default
    assert not result.isError, result.content
    # Gradio's MCP server answers a queued endpoint with several outputs as one text: the outputs' Python literal.
    (content,) = result.content
    gallery, answer = ast.literal_eval(content.text)
    assert len(gallery) == len(answer["images"]) == 5
    assert all(item["image"]["url"].startswith(compose_app.url + "/gradio_api/file=") for item in gallery)
    assert answer["hashtags"] and answer["preview"]["text"].startswith("three blue robots on dots")

    _, text_result = call_mcp(compose_app.url + "/gradio_api/mcp/", "text_to_image", {"text": "a red rocket"})
    assert not text_result.isError and text_result.content


def test_more_like_this_from_a_tweet_id_returns_mostly_that_tweets_topic(compose_app):
    resources = compose_app.resources
    seeds = ["syn000010", "syn000400", "syn000777"]
    shares = []
    for seed in seeds:
        (topic,) = topics_of(resources, [seed])
        assert topic is not None, seed
        _, answer = compose_app.client.predict(seed, "", "", False, K, 0, 0, 0, api_name="/more_like_this")
        ids = [image["id"] for image in answer["images"]]
        assert seed not in ids and answer["seed"] == seed and len(ids) == K
        shares.append(topics_of(resources, ids).count(topic) / len(ids))
        print(f"more like this {seed} ({topic}): {shares[-1]:.0%} of {K} results share its topic")
    assert min(shares) >= 0.6, shares
    _, result = call_mcp(compose_app.url + "/gradio_api/mcp/", "more_like_this", {"tweet": seeds[0], "k": 4})
    assert not result.isError


def test_a_not_text_lowers_the_share_of_results_with_that_attribute(compose_app):
    """Measured on the twin: for a topic query, the share of its top 20 images in the colour most frequent there,
    without and with that colour as the "not" text (``steering.NOT_WEIGHT``), and the share of the asked topic."""
    resources = compose_app.resources
    top = 20
    before_total = after_total = 0.0
    for query, topic in (("robots", "robot"), ("clouds", "cloud"), ("charts", "chart"), ("eyes", "eye")):
        _, plain = compose_app.client.predict(query, None, "", "", False, top, 0, 0, 0, api_name="/compose")
        colours = topics_of(resources, [image["id"] for image in plain["images"]], "attr_color")
        colour = Counter(colours).most_common(1)[0][0]
        _, steered = compose_app.client.predict(query, None, colour, "", False, top, 0, 0, 0, api_name="/compose")
        ids = [image["id"] for image in steered["images"]]
        before = colours.count(colour) / top
        after = topics_of(resources, ids, "attr_color").count(colour) / top
        on_topic = topics_of(resources, ids).count(topic) / top
        print(f"'{query}' not '{colour}': {colour} {before:.0%} -> {after:.0%} of the top {top}; "
              f"{topic} {on_topic:.0%} with the 'not'")
        assert not steered["notes"] and after <= before and on_topic >= 0.6, (query, colour, after, on_topic)
        before_total += before
        after_total += after
    print(f"mean share of the 'not' colour: {before_total / 4:.0%} -> {after_total / 4:.0%}")
    assert after_total <= 0.5 * before_total


def test_a_dominating_not_text_gives_a_message_and_results_not_an_error(compose_app):
    gallery, answer = compose_app.client.predict("robots", None, "robots", "", False, K, 0, 0, 0,
                                                 api_name="/compose")
    assert gallery and answer["notes"] and "says nearly what the query says" in answer["notes"][0]


def test_hide_weak_matches_keeps_the_best_and_counts_what_it_hid(compose_app):
    _, everything = compose_app.client.predict("three blue robots on dots", None, "", "", False, 30, 0, 0, 0,
                                               api_name="/compose")
    _, strong = compose_app.client.predict("three blue robots on dots", None, "", "", True, 30, 0, 0, 0,
                                           api_name="/compose")
    assert strong["images"][0] == everything["images"][0]
    assert strong["hidden_weak"] > 0 and len(strong["images"]) < len(everything["images"])
    best = strong["images"][0]["score"]
    assert all(image["score"] >= best - 0.07 * abs(best) - 1e-4 for image in strong["images"])


# -- hostile inputs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (("robots", None, "", "../../etc", False, 5, 0, 0, 0), "is not a tweet id"),
    (("robots", None, "", "syn999999", False, 5, 0, 0, 0), "No tweet with id 'syn999999'"),
    (("", None, "", "", False, 5, 0, 0, 0), "Give a draft text"),
    (("robots", None, "x" * 3000, "", False, 5, 0, 0, 0), "limit is 2,000"),
    (("robots", None, "", "", False, 10**9, 0, 0, 0), "greater than maximum value 50"),  # Gradio's slider says it
    (("robots", None, "", "", False, 5, "lots", 0, 0), "Expected a `float`"),
])
def test_hostile_api_inputs_get_a_clear_message(compose_app, args, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        compose_app.client.predict(*args, api_name="/compose")


def test_hostile_more_like_this_inputs_get_a_clear_message_and_hostile_text_is_just_text(compose_app):
    from gradio_client.exceptions import AppError

    for tweet, message in (("", "Click an image"), ("../../etc", "not a tweet id"), ("nope", "No tweet with id")):
        with pytest.raises(AppError, match=message):
            compose_app.client.predict(tweet, "", "", False, 5, 0, 0, 0, api_name="/more_like_this")
    gallery, answer = compose_app.client.predict("<script>alert(1)</script> robots", None, "", "", False, 3, 0, 0,
                                                 0, api_name="/compose")
    assert len(gallery) == 3 and answer["preview"]["text"].startswith("<script>")  # the app keeps serving


@needs_chromium
@pytest.mark.parametrize(("query", "words", "results"), [
    ("?q=robots&k=abc", "k='abc' was ignored", True),
    ("?q=robots&k=1e9", "k='1e9' was ignored", True),
    ("?q=robots&tweet=../../etc", "is not a tweet id", True),
    ("?tweet=syn999999", "No tweet with id", False),
    ("?q=" + quote("<img src=x onerror=alert(1)>") + "&not=" + quote("**bold** [x](javascript:alert(1))"), None, True),
])
def test_malformed_links_give_a_message_and_the_app_keeps_serving(compose_app, browser, query, words, results):
    page = open_page(browser, compose_app.url + "/" + query)
    try:
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        if words:
            page.wait_for_function(f"() => document.querySelector('#compose-notes')?.innerText.includes({words!r})",
                                   timeout=120_000)
        if results:
            assert result_alts(page)
        assert not dialogs and page.locator("#compose-notes a").count() == 0
    finally:
        page.close()
    gallery, _ = compose_app.client.predict("robots", None, "", "", False, 3, 0, 0, 0, api_name="/compose")
    assert len(gallery) == 3


# -- embedding, phone, feedback ---------------------------------------------------------------------------------------
@needs_chromium
def test_the_app_embedded_in_an_iframe_shows_results_inside_it(compose_app, browser, tmp_path):
    (tmp_path / "index.html").write_text(
        "<!doctype html><html><body><h1>A page that embeds TweetMaker</h1>"
        f'<iframe id="tweetmaker" src="{compose_app.url}{LINK}" width="1000" height="1400" '
        'style="border:0" title="TweetMaker"></iframe></body></html>', encoding="utf-8")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    host = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Quiet)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    page = browser.new_page(viewport={"width": 1100, "height": 1500})
    try:
        page.goto(f"http://127.0.0.1:{host.server_address[1]}/index.html", wait_until="load", timeout=120_000)
        frame = page.frame_locator("#tweetmaker")
        frame.locator(GALLERY_IMAGES).first.wait_for(state="visible", timeout=120_000)
        inner = page.frame(url=lambda url: url.startswith(compose_app.url))
        inner.wait_for_function(IMAGES_LOADED, timeout=60_000)
        assert frame.locator(GALLERY_IMAGES).count() >= 1
    finally:
        page.close()
        host.shutdown()
        host.server_close()


@needs_chromium
def test_phone_width_screenshot_reads_well(compose_app, browser):
    page = open_page(browser, compose_app.url + LINK, width=390, height=844)
    try:
        result_alts(page)
        page.wait_for_function("() => document.querySelector('#compose-tweet textarea').value.includes('#')",
                               timeout=30_000)  # the preview carries the chosen hashtags
        for image in page.locator(GALLERY_IMAGES).all():
            image.scroll_into_view_if_needed()  # lazy images load before the full-page shot
        page.evaluate("window.scrollTo(0, 0)")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off the side
        fits = page.evaluate("""() => [...document.querySelectorAll('#compose-gallery img')].every(i => {
            const s = getComputedStyle(i); return s.objectFit === 'contain'; })""")
        assert fits  # whole images, not cropped
        save_screenshot(page, "compose_phone.png")
    finally:
        page.close()


def choose_and_copy(page) -> tuple[str, list[str]]:
    """Click the second result image, drop the first chosen hashtag and add the first unchosen one, then copy the
    tweet. Returns the chosen image's tweet id and the hashtags kept."""
    result_alts(page)
    page.locator(GALLERY_IMAGES).nth(1).click()
    chosen = page.locator("#compose-chosen textarea, #compose-chosen input").first
    page.wait_for_function("() => { const box = document.querySelector('#compose-chosen textarea, "
                           "#compose-chosen input'); return box && box.value; }", timeout=30_000)
    boxes = page.locator("#compose-hashtags input[type=checkbox]")
    states = [boxes.nth(i).is_checked() for i in range(boxes.count())]
    assert any(states) and not all(states)
    boxes.nth(states.index(True)).uncheck()
    boxes.nth(states.index(False)).check()
    labels = page.locator("#compose-hashtags label")
    kept = [labels.nth(i).inner_text().strip().lstrip("#") for i in range(boxes.count()) if boxes.nth(i).is_checked()]
    page.wait_for_function(
        f"() => document.querySelector('#compose-tweet textarea').value.endsWith({('#' + kept[-1])!r})",
        timeout=30_000)
    page.locator("#compose-copy").click()
    page.wait_for_function("() => document.querySelector('#compose-status')?.innerText.includes('Copied')",
                           timeout=30_000)
    return chosen.input_value(), kept


@needs_chromium
def test_with_feedback_on_a_confirmed_choice_writes_one_record_with_those_ids(compose_app, browser):
    from tweetmaker.feedback import read_records

    before = read_records(compose_app.feedback_dir)
    page = open_page(browser, compose_app.url + LINK)
    try:
        assert "are recorded" in page.locator("#compose-feedback-notice").inner_text()
        image_id, kept = choose_and_copy(page)
        page.locator("#compose-copy").click()  # the same choice again is not a second record
        page.wait_for_timeout(1500)
    finally:
        page.close()
    records = read_records(compose_app.feedback_dir)[len(before):]
    assert len(records) == 1, records
    (record,) = records
    assert record["image_id"] == image_id and record["hashtags"] == kept
    assert record["draft"] == "three blue robots on dots"
    assert record["towers"] == compose_app.resources.towers.identity
    assert not {"ip", "client", "cookie", "session", "headers"} & set(record)


def feedback_files(roots: list[Path]) -> set[str]:
    found = set()
    for root in roots:
        if root.is_dir():
            found |= {str(path) for path in root.rglob("feedback-*.jsonl")}
    return found


@needs_chromium
def test_with_feedback_off_nothing_is_written_anywhere(running_app, browser, monkeypatch):
    from tweetmaker.feedback import FeedbackLog

    client, resources = running_app
    opened = []
    monkeypatch.setattr(FeedbackLog, "__post_init__", lambda self: opened.append(self))
    monkeypatch.setattr(FeedbackLog, "record", lambda self, choice: opened.append(choice))
    roots = [Path.cwd(), Path(resources.index.index_dir).parent, resources.settings.cache_path,
             Path(os.environ.get("TMPDIR", "/tmp")) / "gradio"]
    before = feedback_files(roots)
    page = open_page(browser, client.src.rstrip("/") + LINK)
    try:
        assert page.locator("#compose-feedback-notice").count() == 0
        choose_and_copy(page)
        assert page.locator("#compose-status").inner_text().strip() == "Copied."
    finally:
        page.close()
    assert opened == [] and feedback_files(roots) == before

