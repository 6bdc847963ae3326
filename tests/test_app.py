"""The real app, launched over HTTP and called through gradio_client with real text and image files."""

from __future__ import annotations

from collections import Counter

import pytest
from gradio_client import handle_file

from tests import image_inputs
from tweetmaker.data import load_tweets, normalize_hashtag
from tweetmaker.synthetic import TOPIC_TAGS, render_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def topics(learned) -> dict[str, str]:
    tweets = load_tweets(learned["dataset"])
    return {row["tweet_id"]: row["attr_topic"] for split in tweets.values()
            for row in split.select_columns(["tweet_id", "attr_topic"])}


def topic_tags(topic: str) -> set[str]:
    return {normalize_hashtag(tag) for tag in TOPIC_TAGS[topic]}


def write_picture(directory, topic: str, color: str, name: str, fmt: str = "JPEG") -> str:
    path = directory / name
    render_image(topic, color, 2, "plain", (320, 240), seed=3).save(path, format=fmt)
    return str(path)


def test_text_to_image_returns_attribute_relevant_images(running_app, topics):
    client, _ = running_app
    gallery, why = client.predict("two red robots on a plain background 🤖", 8, 0.0, 0.0, 0.0,
                                  api_name="/text_to_image")
    assert len(gallery) == 8
    for item in gallery:
        assert item["image"] and item["caption"] and "score" in item["caption"]
    ids = [row[1] for row in why["data"]]
    share = sum(topics[tweet_id] == "robot" for tweet_id in ids) / len(ids)
    assert share >= 0.5, Counter(topics[tweet_id] for tweet_id in ids)


def test_image_to_hashtags_recommends_the_images_own_tags(running_app, tmp_path):
    client, _ = running_app
    path = write_picture(tmp_path, "rocket", "blue", "rocket.jpg")
    table, tag_string, similar = client.predict(handle_file(path), 8, 0.0, 0.0, 0.0, api_name="/image_to_hashtags")
    tags = [row[0].lstrip("#") for row in table["data"]]
    assert tags and tag_string.startswith("#")
    assert {normalize_hashtag(tag) for tag in tags[:5]} & topic_tags("rocket"), tags
    assert similar


def test_combined_query_blends_text_and_image(running_app, tmp_path, topics):
    client, _ = running_app
    path = write_picture(tmp_path, "chip", "green", "chip.png", fmt="PNG")
    gallery, table, tag_string = client.predict("a green processor chip", handle_file(path), 0.5, 6, 0.0, 0.0, 0.0,
                                                api_name="/combined")
    assert len(gallery) == 6 and table["data"] and tag_string
    # Either input alone works too.
    gallery, _, _ = client.predict("", handle_file(path), 0.0, 4, 0.0, 0.0, 0.0, api_name="/combined")
    assert len(gallery) == 4


def test_ranking_controls_change_the_breakdown(running_app):
    client, _ = running_app
    _, plain = client.predict("a cloud platform", 6, 0.0, 0.0, 0.0, api_name="/text_to_image")
    _, blended = client.predict("a cloud platform", 6, 1.0, 1.0, 0.5, api_name="/text_to_image")
    engagement = plain["headers"].index("engagement")
    assert all(row[engagement] == 0 for row in plain["data"])
    assert any(row[engagement] != 0 for row in blended["data"])


def test_compose_tweet_counts_like_twitter(running_app):
    client, _ = running_app
    preview, counter = client.predict("Launch day https://example.com/very/long/link", "#AI #SpaceTech",
                                      api_name="/compose_tweet")
    assert preview == "Launch day https://example.com/very/long/link #AI #SpaceTech"
    assert counter.startswith(f"{len('Launch day ') + 23 + len(' #AI #SpaceTech')} / 280")


@pytest.mark.parametrize(
    ("endpoint", "make_args", "message"),
    [
        ("/text_to_image", lambda tmp: ("", 8, 0, 0, 0), "Type a draft"),
        ("/text_to_image", lambda tmp: ("   \n\t ", 8, 0, 0, 0), "Type a draft"),
        ("/text_to_image", lambda tmp: ("a" * 20_000, 8, 0, 0, 0), "limit is 2,000"),
        # Gradio's slider refuses k=0 before the handler runs; the handler refuses it too (tests/test_ui.py).
        ("/text_to_image", lambda tmp: ("robots", 0, 0, 0, 0), "between 1 and|less than minimum value 1"),
        ("/image_to_hashtags", lambda tmp: (_file(tmp, "notes.jpg", image_inputs.not_an_image()), 8, 0, 0, 0),
         "not an image"),
        ("/image_to_hashtags", lambda tmp: (_file(tmp, "cut.jpg", image_inputs.truncated_jpeg()), 8, 0, 0, 0),
         "truncated or corrupt"),
        ("/image_to_hashtags", lambda tmp: (_file(tmp, "bomb.png", image_inputs.bomb_png()), 8, 0, 0, 0),
         "pixel limit"),
        ("/image_to_hashtags", lambda tmp: (_file(tmp, "cut.png", image_inputs.truncated_png()), 8, 0, 0, 0),
         "truncated or corrupt|damaged"),
        ("/image_to_hashtags", lambda tmp: (_file(tmp, "vector.png", image_inputs.svg_bytes()), 8, 0, 0, 0),
         "not an image"),
        ("/text_to_image", lambda tmp: ("robots", -3, 0, 0, 0), "between 1 and|less than minimum value 1"),
        ("/text_to_image", lambda tmp: ("robots", 10**9, 0, 0, 0), "between 1 and|greater than maximum value"),
        ("/combined", lambda tmp: ("", None, 0.5, 8, 0, 0, 0), "draft text, an image, or both"),
    ],
)
def test_bad_inputs_get_clear_errors_and_the_app_keeps_serving(running_app, tmp_path, endpoint, make_args, message):
    client, _ = running_app
    with pytest.raises(Exception, match=message):
        client.predict(*make_args(tmp_path), api_name=endpoint)
    gallery, _ = client.predict("a robot", 3, 0, 0, 0, api_name="/text_to_image")
    assert len(gallery) == 3


@pytest.mark.parametrize("make", [image_inputs.tiny_png, image_inputs.very_wide_png,
                                  image_inputs.cmyk_jpeg, image_inputs.animated_gif, image_inputs.exif_rotated_jpeg,
                                  image_inputs.palette_with_transparency, image_inputs.sixteen_bit_png])
def test_awkward_images_get_sensible_results(running_app, tmp_path, make):
    client, _ = running_app
    extension = "gif" if make is image_inputs.animated_gif else "png" if "png" in make.__name__ else "jpg"
    path = _file(tmp_path, f"upload.{extension}", make())
    table, tag_string, similar = client.predict(path, 5, 0, 0, 0, api_name="/image_to_hashtags")
    assert similar and isinstance(tag_string, str)


def _file(directory, name: str, data: bytes):
    path = directory / name
    path.write_bytes(data)
    return handle_file(str(path))


def test_app_serves_only_the_index_images(running_app):
    import urllib.error
    import urllib.request

    client, resources = running_app
    base = client.src.rstrip("/")
    for secret in ("/etc/passwd", str(resources.settings.index_path / "chroma" / "chroma.sqlite3")):
        for url in (f"{base}/gradio_api/file={secret}", f"{base}/file={secret}"):
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            assert status >= 400, url
    # ... while the index's own images are served (an app that serves nothing would pass the checks above).
    image = next((resources.settings.index_path / "images").glob("*.jpg"))
    with urllib.request.urlopen(f"{base}/gradio_api/file={image}", timeout=10) as response:
        assert response.status == 200 and response.read(3) == b"\xff\xd8\xff"  # a JPEG


UNUSUAL_DRAFTS = [
    "🤖🚀🧠✨",  # emoji only
    "빨간 로봇 두 대가 있는 그림",  # Korean
    "روبوت أحمر على خلفية مخططة",  # right-to-left (Arabic)
    "red\x00robot\x07 \x1b[31mchip\u202e cloud\ufeff",  # control characters, an RTL override, a BOM
    "#NeverSeenBeforeTag #qwxzv robots",  # hashtags no tweet has
]


@pytest.mark.parametrize("draft", UNUSUAL_DRAFTS)
def test_unusual_text_gets_results_through_the_api_and_the_library(running_app, draft):
    client, resources = running_app
    gallery, why = client.predict(draft, 5, 0, 0, 0, api_name="/text_to_image")
    assert len(gallery) == 5 and len(why["data"]) == 5
    # The same draft through the library: the same tweets, in the same order.
    from tweetmaker.search import clean_text

    results = resources.recommender.text_to_images(clean_text(draft, 2000), k=5)
    assert [result.id for result in results] == [row[1] for row in why["data"]]
    preview, counter = client.predict(draft, "#NeverSeenBeforeTag", api_name="/compose_tweet")
    assert preview.endswith("#NeverSeenBeforeTag") and "/ 280" in counter


def test_uploads_over_the_size_limit_are_refused(running_app, tmp_path):
    client, resources = running_app
    limit = int(resources.settings.max_file_size_mb * 1024 * 1024)
    big = tmp_path / "huge.png"
    big.write_bytes(image_inputs.tiny_png() + b"\0" * limit)  # a valid PNG header, one limit's worth of padding
    with pytest.raises(Exception, match="(?i)size|too large|413"):
        client.predict(handle_file(str(big)), 5, 0, 0, 0, api_name="/image_to_hashtags")
    gallery, _ = client.predict("a robot", 3, 0, 0, 0, api_name="/text_to_image")
    assert len(gallery) == 3
