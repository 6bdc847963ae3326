"""The UI's pure functions: validation and the tweet preview (no server needed)."""

from __future__ import annotations

import gradio as gr
import pytest

from tweetmaker.ui import MAX_K, clean_k, clean_text, compose_tweet, ranking_options, tweet_length


def test_clean_text_strips_control_characters_and_refuses_empty_or_oversized():
    assert clean_text("  red\x00robot\x07  ", 100) == "red robot"
    assert clean_text("", 100, required=False) == ""
    with pytest.raises(gr.Error, match="Type a draft"):
        clean_text(" \t\n", 100)
    with pytest.raises(gr.Error, match="101 characters long; the limit is 100"):
        clean_text("a" * 101, 100)


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1, 10**9, "many", None])
def test_clean_k_refuses_what_is_not_1_to_max(k):
    with pytest.raises(gr.Error, match=f"between 1 and {MAX_K}"):
        clean_k(k)


def test_clean_k_accepts_the_range():
    assert [clean_k(1), clean_k(MAX_K), clean_k(7.0)] == [1, MAX_K, 7]


def test_ranking_weights_must_lie_in_0_1():
    assert ranking_options(0, 0.5, 1) == {"engagement": 0.0, "recency": 0.5, "diversity": 1.0}
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(gr.Error, match="between 0 and 1"):
            ranking_options(bad, 0, 0)


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
