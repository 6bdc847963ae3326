"""Two models side by side: the real app (app.main) started with --compare_towers, queried through gradio_client
and a real browser.

One app serves the towers the demo recipe trains (the session's ``learned`` fixture) against ``base``, their own
untrained base CLIP; a second app shares its indexes and serves the trained towers on both sides.
"""

from __future__ import annotations

import contextlib
import io

import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS, save_screenshot

pytestmark = pytest.mark.slow
K = 8
QUERIES = 6  # test-split tweets used as drafts


def _start(argv: list[str]):
    """app.main on a free port, with what it printed while loading (its progress messages)."""
    from gradio_client import Client

    import app
    from tests.helpers import free_port

    port = free_port()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        demo, resources = app.main([*argv, "--port", str(port)], prevent_thread_lock=True)
    return demo, resources, Client(f"http://127.0.0.1:{port}/", verbose=False), printed.getvalue()


@pytest.fixture(scope="module")
def compare_app(learned, tmp_path_factory):
    """``--towers LEARNED --compare_towers base``: (client, resources, what the start printed, its flags)."""
    root = tmp_path_factory.mktemp("compare_app")
    flags = ["--towers", str(learned["towers"]), "--dataset", str(learned["dataset"]),
             "--index_dir", str(root / "index"), "--cache_dir", str(root / "cache")]
    demo, resources, client, printed = _start([*flags, "--compare_towers", "base"])
    yield client, resources, printed, flags
    client.close()
    demo.close()
    resources.close()


@pytest.fixture(scope="module")
def topics(learned) -> dict[str, str]:
    import datasets

    tweets = datasets.load_from_disk(str(learned["dataset"]))
    return {row["tweet_id"]: row["attr_topic"] for split in tweets.values()
            for row in split.select_columns(["tweet_id", "attr_topic"])}


@pytest.fixture(scope="module")
def drafts(learned) -> list[tuple[str, str]]:
    """(text, topic) of a few test-split tweets, spread over the split."""
    import datasets

    test = datasets.load_from_disk(str(learned["dataset"]))["test"]
    step = len(test) // QUERIES
    return [(test[i]["text"], test[i]["attr_topic"]) for i in range(0, step * QUERIES, step)]


def test_the_start_built_the_compared_index_with_progress(compare_app):
    _, resources, printed, _ = compare_app
    assert "Loading the towers to compare with from base" in printed
    # Both indexes were missing: the main one and base's own, each built with a message saying so.
    assert printed.count("Building the index") == 2, printed
    assert resources.compare.index.index_dir.parent.name == "indexes"
    assert resources.compare.towers.identity["kind"] == "base"


def test_trained_and_base_answer_differently_and_the_trained_side_is_on_topic(compare_app, drafts, topics):
    client, _, _, _ = compare_app
    share = {"main": [], "compare": []}
    differing = 0
    for text, topic in drafts:
        answer = client.predict(text, None, K, api_name="/compare")
        assert answer["labels"] == {"main": "towers", "compare": "base"}
        assert len(answer["main"]) == len(answer["compare"]) == K and 0.0 <= answer["overlap"] < 1.0
        main_ids = [item["id"] for item in answer["main"]]
        compare_ids = [item["id"] for item in answer["compare"]]
        differing += main_ids != compare_ids
        # rank_in_other is where the other model put the same tweet (1-based), null when it did not return it.
        for item in answer["main"]:
            other = item["rank_in_other"]
            assert (compare_ids[other - 1] == item["id"]) if other is not None else item["id"] not in compare_ids
        assert answer["overlap"] == pytest.approx(len(set(main_ids) & set(compare_ids)) / K)
        for side, ids in (("main", main_ids), ("compare", compare_ids)):
            share[side].append(sum(topics[tweet_id] == topic for tweet_id in ids) / K)
    assert differing == len(drafts)
    trained, base = (sum(values) / len(values) for values in (share["main"], share["compare"]))
    assert trained > 0.5, share  # most results share the query tweet's topic
    assert trained > base + 0.2, share


def test_compare_takes_an_image_too_and_refuses_an_empty_query(compare_app, learned):
    from gradio_client import handle_file

    client, resources, _, _ = compare_app
    image = next((resources.index.index_dir / "images").glob("*.jpg"))
    answer = client.predict("", handle_file(str(image)), 4, api_name="/compare")
    assert len(answer["main"]) == len(answer["compare"]) == 4
    # Whatever the towers, an indexed image's closest match is itself (or a pixel-identical twin).
    assert answer["main"][0]["score"] > 0.99 and answer["compare"][0]["score"] > 0.99
    with pytest.raises(Exception, match="draft text, an image, or both"):
        client.predict("", None, 4, api_name="/compare")


def test_the_same_towers_on_both_sides_give_identical_lists(compare_app, learned, drafts):
    _, _, _, flags = compare_app
    # A second start on the same index and cache: the compared towers are the main ones, nothing is built.
    demo, resources, client, printed = _start([*flags, "--compare_towers", str(learned["towers"])])
    try:
        assert "Building" not in printed, printed
        for text, _ in drafts[:3]:
            answer = client.predict(text, None, K, api_name="/compare")
            assert answer["overlap"] == 1.0
            assert answer["main"] == answer["compare"] and answer["hashtags"]["main"] == answer["hashtags"]["compare"]
            assert [item["rank_in_other"] for item in answer["main"]] == list(range(1, K + 1))
    finally:
        client.close()
        demo.close()
        resources.close()


def test_the_models_tab_shows_both_models(compare_app):
    from tweetmaker.ui import about_markdown

    _, resources, _, _ = compare_app
    text = about_markdown(resources)
    main, compared = text.split("### Compared with")
    assert "text_to_image recall@10" in main and "optimizer steps" in main  # the trained run's all_results.json
    assert "Training metrics: not recorded" in compared and "untrained base CLIP" in compared
    assert resources.main.loss_plot is not None and resources.main.loss_plot.name == "loss.png"
    for model in resources.models:  # hard cases, computed once at start from the test split
        assert model.hard_cases and model.hard_cases[0].rank > 1


@pytest.mark.skipif(not CHROMIUM,
                    reason="Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
def test_the_compare_tab_shows_two_galleries_in_a_browser(compare_app, drafts):
    from playwright.sync_api import sync_playwright

    client, _, _, _ = compare_app
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            # "load", not "networkidle": a tab's on-load event may keep the queue's stream open.
            page.goto(client.src, wait_until="load", timeout=60_000)
            page.get_by_role("tab", name="Compare", exact=True).click()
            box = page.locator("#compare-input textarea")
            box.click()
            box.type(drafts[0][0], delay=2)
            page.locator("#compare-button").click()
            for side in ("main", "compare"):
                shown = f"[...document.querySelectorAll('#compare-gallery-{side} img')].some(i => i.naturalWidth > 0)"
                page.wait_for_function(f"() => {shown}", timeout=60_000)
                assert page.locator(f"#compare-gallery-{side} img").count() >= 1
            assert "overlap@8" in page.locator("#compare-agreement").inner_text()
            save_screenshot(page, "compare.png")
        finally:
            browser.close()
