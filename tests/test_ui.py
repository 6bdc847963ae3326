"""The UI without a server: its pure functions, and every refusal of the library reaching the page as ``gr.Error``.

The handlers run here against a stub model and index (no towers, no Chroma), so what is checked is the path a
request takes: the handler passes its inputs on unchecked, ``tweetmaker.search`` refuses them, and
``tweetmaker.ui.boundary.user_errors`` shows the library's message.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from tweetmaker.errors import TweetMakerError
from tweetmaker.search import Ranking, Recommender, check_k, clean_text
from tweetmaker.ui import MAX_K, Handlers, compose_tweet, tweet_length, user_errors

ROOT = Path(__file__).resolve().parents[1]


class StubTowers:
    """Every text and image embeds to the same unit vector; counts what it was asked to encode."""

    embedding_dim = 4

    def __init__(self) -> None:
        self.calls = 0

    def encode_texts(self, texts):
        self.calls += 1
        return np.ones((len(texts), self.embedding_dim), dtype=np.float32)

    def encode_images(self, images):
        self.calls += 1
        return np.ones((len(images), self.embedding_dim), dtype=np.float32)


class StubIndex:
    """An index with no tweets."""

    def query(self, modality, vector, k, with_embeddings=False):
        return [[]]

    def get(self, modality, ids, with_embeddings=True):
        return {}

    def image_path(self, metadata):
        return None


@pytest.fixture
def handlers():
    recommender = Recommender(StubTowers(), StubIndex(), check=False)
    return Handlers(SimpleNamespace(recommender=recommender, settings=SimpleNamespace(max_text_chars=100)))


def test_clean_text_strips_control_characters_and_refuses_empty_or_oversized(handlers):
    assert clean_text("  red\x00robot\x07  ", 100) == "red robot"
    assert clean_text("", 100, required=False) == ""
    with pytest.raises(gr.Error, match="Type a draft"):
        handlers.text_to_image(" \t\n")
    with pytest.raises(gr.Error, match="101 characters long; the limit is 100"):
        handlers.text_to_image("a" * 101)


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1, 10**9, "many", None])
def test_clean_k_refuses_what_is_not_1_to_max(handlers, k):
    with pytest.raises(gr.Error, match=f"between 1 and {MAX_K}"):
        handlers.text_to_image("robots", k)


def test_clean_k_accepts_the_range():
    assert [check_k(1, MAX_K), check_k(MAX_K, MAX_K), check_k(7.0, MAX_K)] == [1, MAX_K, 7]


def test_ranking_weights_must_lie_in_0_1(handlers):
    ranking = Ranking(0, 0.5, 1)
    assert (ranking.engagement, ranking.recency, ranking.diversity) == (0.0, 0.5, 1.0)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(gr.Error, match="between 0 and 1"):
            handlers.text_to_image("robots", 8, bad, 0, 0)


def test_combined_and_image_queries_are_refused_by_the_library_with_its_messages(handlers, tmp_path):
    with pytest.raises(gr.Error, match="draft text, an image, or both"):
        handlers.combined("", None)
    with pytest.raises(gr.Error, match="balance"):
        handlers.combined("robots", None, 1.5)
    with pytest.raises(gr.Error, match="Upload an image first"):
        handlers.image_to_hashtags(None)
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")
    with pytest.raises(gr.Error, match="not an image"):
        handlers.image_to_hashtags(str(notes))


def test_cheap_checks_run_before_the_model(handlers):
    towers = handlers.recommender.towers
    for call in (lambda: handlers.text_to_image("robots", 0), lambda: handlers.text_to_image("a" * 101),
                 lambda: handlers.combined("robots", None, 2.0), lambda: handlers.image_to_hashtags("x.png", 8, 3)):
        with pytest.raises(gr.Error):
            call()
    assert towers.calls == 0


def test_a_query_with_no_results_answers_empty_and_warns(handlers):
    with pytest.warns(UserWarning, match="No matching images"):
        assert handlers.text_to_image("robots", 5) == ([], [])
    assert handlers.combined("robots", None) == ([], [], "")


def test_user_errors_shows_library_messages_and_lets_bugs_through():
    from tweetmaker.index import IndexUnavailableError

    def failing(error):
        @user_errors
        def handler():
            raise error
        return handler

    with pytest.raises(gr.Error) as shown:
        failing(IndexUnavailableError("The Chroma server did not answer; try again in a moment."))()
    assert shown.value.message == "The index is unavailable: The Chroma server did not answer; try again in a moment."
    with pytest.raises(gr.Error) as shown:
        failing(TweetMakerError("Say it plainly."))()
    assert shown.value.message == "Say it plainly."
    with pytest.raises(KeyError):  # a bug is not dressed up as a user's mistake
        failing(KeyError("bug"))()


def test_only_the_ui_package_imports_gradio():
    importers = []
    for path in sorted((ROOT / "tweetmaker").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name == "gradio" or name.startswith("gradio.") for name in names):
                importers.append(path.relative_to(ROOT).as_posix())
    assert importers and all(path.startswith("tweetmaker/ui/") for path in importers), importers
    assert "tweetmaker/ui/formatting.py" not in importers
    for pure in ("tweetmaker/compose.py", "tweetmaker/share.py", "tweetmaker/feedback.py"):
        assert pure not in importers


# -- Compose ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def compose(handlers):
    from tweetmaker.ui.compose_handlers import ComposeHandler

    return ComposeHandler(handlers.resources)


def test_compose_refuses_through_the_library_before_the_model(compose):
    towers = compose.recommender.towers
    for args, message in ((("",), "draft text, an image, or both"),
                          (("robots", None, "", "../../etc"), "not a tweet"),
                          (("robots", None, "", "syn1"), "No tweet with id 'syn1'"),
                          (("robots", None, "n" * 101), "limit is 100"),
                          (("robots", None, "", "", False, 0), "between")):
        with pytest.raises(gr.Error, match=message):
            compose.compose(*args)
    with pytest.raises(gr.Error, match="Click an image"):
        compose.more_like_this("")
    assert towers.calls == 0


def test_compose_with_no_results_answers_empty_with_a_preview(compose):
    with pytest.warns(UserWarning, match="No matching images"):
        gallery, answer = compose.compose("Three blue robots")
    assert gallery == [] and answer["images"] == [] and answer["preview"]["text"] == "Three blue robots"
    assert answer["share"] == "?q=Three%20blue%20robots"


def test_a_link_with_only_bad_parameters_fills_the_defaults_and_says_why(compose):
    request = SimpleNamespace(query_params={"k": "abc", "tweet": "../../etc", "__theme": "dark"})
    with pytest.warns(UserWarning):
        *fields, gallery, answer, notes = compose.open_link(request)
    assert fields == ["", "", "", 8, 0.0, 0.0, 0.0]
    assert isinstance(gallery, type(gr.skip())) and isinstance(answer, type(gr.skip()))
    assert "k='abc' was ignored" in notes and "is not a tweet id" in notes
    assert all(isinstance(value, type(gr.skip())) for value in compose.open_link(SimpleNamespace(query_params={})))


def test_notes_show_hostile_text_as_text():
    from tweetmaker.ui.compose_handlers import intent_html, notes_markdown, plain

    assert plain("<img src=x onerror=alert(1)> **b** [x](javascript:y)") == (
        "&lt;img src=x onerror=alert\\(1\\)&gt; \\*\\*b\\*\\* \\[x\\]\\(javascript:y\\)")
    assert notes_markdown(["a", "b"]) == "- a\n- b"
    link = intent_html('https://twitter.com/intent/tweet?text=%22"><script>')
    assert 'href="https://twitter.com/intent/tweet?text=%22&quot;&gt;&lt;script&gt;"' in link and "<script" not in link


def test_a_confirmed_choice_is_recorded_once_when_feedback_is_on(compose, tmp_path):
    from tweetmaker.feedback import FeedbackLog, read_records

    answer = {"images": [{"id": "syn1"}], "hashtags": [{"tag": "Robots"}, {"tag": "AI"}]}
    assert compose.confirm("draft", "syn1", ["AI"], answer, "", "", None) == ("Copied.", None)
    compose.feedback = FeedbackLog(tmp_path, {"kind": "stub"})
    status, last = compose.confirm("draft", "syn1", ["AI", "Forged"], answer, "", "", None)
    assert "recorded" in status
    compose.confirm("draft", "syn1", ["AI", "Forged"], answer, "", "", last)  # the same choice: no second record
    compose.confirm("draft", "nope", ["Robots"], answer, "", "", last)  # an image not in the answer is not kept
    records = read_records(tmp_path)
    assert [(r["image_id"], r["hashtags"]) for r in records] == [("syn1", ["AI"]), (None, ["Robots"])]


def test_tweet_length_counts_urls_as_23_and_wide_characters_as_2():
    assert tweet_length("hello") == 5
    assert tweet_length("see https://example.com/a/very/long/path/indeed") == 4 + 23
    assert tweet_length("로봇") == 4 and tweet_length("🤖") == 2


def test_compose_tweet_joins_dedupes_hashtags_and_warns_over_the_limit():
    tweet, counter = compose_tweet("Launch day", "#AI, ai #Space")
    assert tweet == "Launch day #AI #Space" and counter.endswith("(259 left)")
    tweet, counter = compose_tweet("x" * 279, "#AI")
    assert "over the limit" in counter
    assert compose_tweet("", "")[0] == "*Your tweet preview appears here.*"
