"""Compose's pure logic: Twitter's counting, the tweet preview and intent link, hashtag chips, shareable links read
and written, steering ("more like this", "not", weak matches) on plain vectors, and feedback records (locally and
pushed to the Hub stand-in by huggingface_hub's CommitScheduler). No model, no server."""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from tweetmaker.compose import (
    TWEET_LIMIT,
    intent_url,
    kept_hashtags,
    preselect,
    preview,
    toggle,
    tweet_length,
    tweet_text,
)
from tweetmaker.errors import InvalidInputError, TweetMakerError
from tweetmaker.feedback import Choice, FeedbackLog, open_feedback, read_records
from tweetmaker.search import (
    QueryError,
    QueryLimits,
    TweetResult,
    check_tweet_id,
    hide_weak,
    mix_seed,
    subtract_negative,
)
from tweetmaker.share import SharedQuery, link_query, parse_link, shared_query

LIMITS = QueryLimits(max_text_chars=100, max_k=50)


# -- counting and the preview -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "length"), [
    ("hello", 5),
    ("see https://example.com/a/very/long/path/indeed", 4 + 23),
    ("two links http://a.co and www.example.org/x", len("two links ") + 23 + len(" and ") + 23),
    ("로봇", 4),  # CJK weighs 2
    ("日本語のツイート", 16),
    ("🤖", 2),
    ("👍🏽", 2),  # emoji + skin tone: one emoji
    ("👩‍👩‍👧‍👦", 2),  # a zero-width-joined family: one emoji
    ("🇫🇷", 2),  # a flag: two regional indicators, one emoji
    ("café", 4),
    ("cafe\u0301", 4),  # NFC: e + combining accent is one character
    ("“quoted” — dash", 15),  # punctuation in the light ranges weighs 1 ...
    ("…", 2),  # ... and outside them 2, as twitter-text counts the ellipsis
])
def test_tweet_length_counts_as_twitter_does(text, length):
    assert tweet_length(text) == length


def test_preview_joins_draft_and_chosen_hashtags_and_counts_against_280():
    tweet = preview("Three blue robots", ["Robots", "#AI", "ai"])
    assert tweet.text == "Three blue robots #Robots #AI"
    assert tweet.length == len(tweet.text) and not tweet.over_limit
    assert tweet.counter == f"{tweet.length} / {TWEET_LIMIT} characters ({TWEET_LIMIT - tweet.length} left)"
    assert tweet_text("I love #robots", "#Robots ai #AI") == "I love #robots #Robots #ai"  # as chosen, deduplicated
    long = preview("x" * 279, ["AI"])
    assert long.over_limit and "3 over the limit" in long.counter
    assert preview("", []).text == "" and preview(None, None).length == 0


def test_intent_link_opens_the_compose_box_with_the_whole_text_encoded():
    text = "Robots & dots: 100% #AI?\nnext line"
    url = intent_url(text)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "twitter.com", "/intent/tweet")
    assert parse_qs(parts.query)["text"] == [text]
    assert preview(text).as_dict()["intent_url"] == url


def test_chips_preselect_the_strongest_few_and_toggle():
    scored = [("Robots", 0.6), ("AI", 0.5), ("Tech", 0.31), ("Misc", 0.2)]
    assert preselect(scored) == ["Robots", "AI", "Tech"]
    assert preselect(scored, count=2) == ["Robots", "AI"]
    assert preselect([("Robots", 0.9), ("AI", 0.2)]) == ["Robots"]  # a weak runner-up is offered, not chosen
    assert preselect([]) == []
    assert toggle(["Robots"], "#AI") == ["Robots", "AI"]
    assert toggle(["Robots", "AI"], "#robots") == ["AI"]
    assert kept_hashtags(["ai", "Forged"], ["Robots", "AI"]) == ["AI"]


# -- shareable links --------------------------------------------------------------------------------------------------
def test_a_link_round_trips_the_query():
    query = SharedQuery(q="three blue robots on dots", k=12, not_text="red & green", engagement=0.25,
                        tweet="syn000042")
    link = link_query(query)
    assert link == "?q=three%20blue%20robots%20on%20dots&k=12&not=red%20%26%20green&engagement=0.25&tweet=syn000042"
    params = {name: values[0] for name, values in parse_qs(link[1:]).items()}
    assert parse_link(params, LIMITS) == (query, [])
    assert link_query(SharedQuery()) == "" and link_query(SharedQuery(q="x")) == "?q=x"
    assert not SharedQuery().runnable and SharedQuery(tweet="syn1").runnable


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"q": "robots", "k": "abc"}, "k", "whole number"),
    ({"q": "robots", "k": "1e9"}, "k", "whole number"),
    ({"q": "robots", "k": "100000"}, "k", "between 1 and 50"),
    ({"q": "robots", "k": "0"}, "k", "between 1 and 50"),
    ({"q": "robots", "tweet": "../../etc"}, "tweet", "not a tweet id"),
    ({"q": "robots", "tweet": "/etc/passwd"}, "tweet", "not a tweet id"),
    ({"q": "robots", "tweet": "<script>alert(1)</script>"}, "tweet", "not a tweet id"),
    ({"q": "robots", "engagement": "nan"}, "engagement", "between 0 and 1"),
    ({"q": "robots", "recency": "2"}, "recency", "between 0 and 1"),
    ({"q": "x" * 101}, "q", "limit is 100"),
    ({"q": "robots", "not": "y" * 5000}, "not", "characters long"),
])
def test_a_malformed_parameter_is_dropped_with_a_message_and_the_rest_runs(params, field, words):
    query, problems = parse_link(params, LIMITS)
    assert len(problems) == 1 and f"{'not' if field == 'not' else field}=" in problems[0] and words in problems[0]
    assert query.k == 8 and query.tweet == "" and query.engagement == 0.0
    if field != "q":
        assert query.q == "robots" and query.runnable


def test_unknown_parameters_and_control_characters_are_harmless():
    query, problems = parse_link({"__theme": "dark", "view": "api", "q": "robots\x00\x07 on dots"}, LIMITS)
    assert problems == [] and query.q == "robots   on dots"
    with pytest.raises(QueryError, match="The query's k="):
        shared_query("robots", "lots", limits=LIMITS)


def test_tweet_ids_are_checked_before_the_index_is_asked():
    assert check_tweet_id(" syn000042 ") == "syn000042" and check_tweet_id(1234567890123) == "1234567890123"
    for bad in ("", None, "../x", "a/b", "a b", "x" * 129, "..", "\x00"):
        with pytest.raises(QueryError):
            check_tweet_id(bad)


# -- steering on plain vectors ----------------------------------------------------------------------------------------
def test_more_like_this_mixes_the_seed_into_the_query():
    query, seed = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    mixed = mix_seed(query, seed, 0.5)
    assert np.allclose(mixed, [2 ** -0.5, 2 ** -0.5, 0.0])
    assert np.allclose(mix_seed(None, seed), [0.0, 1.0, 0.0])


def test_not_subtracts_the_negative_and_falls_back_when_it_dominates():
    query, negative = np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0])
    steered, applied = subtract_negative(query, negative, weight=0.5)
    assert applied and np.isclose(np.linalg.norm(steered), 1.0) and steered[0] > steered[1] > 0
    same, applied = subtract_negative(query, query, weight=1.0)  # nothing would be left: the query runs as asked
    assert not applied and np.allclose(same, query / np.linalg.norm(query))
    opposite, applied = subtract_negative(np.array([1.0, 0.1]), np.array([1.0, 0.0]), weight=1.0)
    assert not applied  # what is left points away from what was asked


def test_weak_matches_are_relative_to_the_best_score():
    def result(score):
        return TweetResult(id=str(score), score=score, similarity=score, metadata={})

    shown, hidden = hide_weak([result(0.8), result(0.75), result(0.5)], ratio=0.9)  # cut at 0.72
    assert [r.score for r in shown] == [0.8, 0.75] and [r.score for r in hidden] == [0.5]
    shown, hidden = hide_weak([result(0.08), result(0.075), result(0.05)], ratio=0.9)  # same shape, other scale
    assert [r.score for r in shown] == [0.08, 0.075] and len(hidden) == 1
    shown, _ = hide_weak([result(-0.2), result(-0.21), result(-0.5)], ratio=0.9)
    assert [r.score for r in shown] == [-0.2, -0.21]
    assert hide_weak([]) == ([], [])


# -- feedback ---------------------------------------------------------------------------------------------------------
TOWERS = {"kind": "trained", "content_hash": "abc123"}


def test_feedback_is_off_by_default_and_a_record_holds_the_choice_and_nothing_about_the_person(tmp_path):
    assert open_feedback(SimpleNamespace(), TOWERS) is None
    assert open_feedback(SimpleNamespace(feedback_dir=None, feedback_repo=None), TOWERS) is None
    log = open_feedback(SimpleNamespace(feedback_dir=str(tmp_path / "fb"), feedback_repo=None), TOWERS)
    assert list((tmp_path / "fb").iterdir()) == []  # nothing written before a choice
    log.record(Choice(draft="three blue robots", image_id="syn000042", hashtags=("Robots", "AI")))
    log.record(Choice(draft="second", image_id=None))
    records = read_records(tmp_path / "fb")
    assert [r["image_id"] for r in records] == ["syn000042", None]
    first = records[0]
    assert set(first) == {"timestamp", "draft", "image_id", "hashtags", "tweet", "not", "towers"}
    assert first["hashtags"] == ["Robots", "AI"] and first["towers"] == TOWERS
    assert first["timestamp"].endswith("+00:00")
    text = log.path.read_text()
    assert all(word not in text.lower() for word in ("ip", "cookie", "session", "agent", "127.0.0.1"))


def test_feedback_is_pushed_to_the_hub_stand_in_by_a_commit_scheduler(tmp_path):
    from huggingface_hub import RepoUrl

    from tests.hub_fake import FakeHubApi

    class SchedulerHub(FakeHubApi):
        """The stand-in plus the three calls CommitScheduler makes (a repo URL object, futures, commits)."""

        def create_repo(self, repo_id, **kwargs):
            return RepoUrl(super().create_repo(repo_id, **kwargs))

        def run_as_future(self, fn, *args, **kwargs):
            from concurrent.futures import Future

            future = Future()
            try:
                future.set_result(fn(*args, **kwargs))
            except Exception as error:  # noqa: BLE001 - handed to the caller like HfApi's futures
                future.set_exception(error)
            return future

        def create_commit(self, *, repo_id, operations, repo_type=None, commit_message=None, **kwargs):
            self.calls.append(("create_commit", {"repo_id": repo_id, "repo_type": repo_type,
                                                 "paths": [op.path_in_repo for op in operations]}))
            for operation in operations:
                target = self._existing(repo_id, repo_type) / operation.path_in_repo
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(operation.path_or_fileobj.read())
            return f"commit:{len(self.calls)}"

    hub = SchedulerHub(root=tmp_path / "hub")
    log = FeedbackLog(tmp_path / "fb", TOWERS, repo_id="tweetmaker/feedback", every_minutes=60, hf_api=hub)
    try:
        log.record(Choice(draft="three blue robots", image_id="syn000042", hashtags=("Robots",)))
        log.push()
        pushed = hub.repo_dir("tweetmaker/feedback", "dataset") / "data" / log.path.name
        assert [json.loads(line)["image_id"] for line in pushed.read_text().splitlines()] == ["syn000042"]
        log.record(Choice(draft="again", image_id="syn000007"))
        log.close()  # pushes what is left
        assert len(pushed.read_text().splitlines()) == 2
        commits = hub.calls_named("create_commit")
        assert commits and all(call["repo_type"] == "dataset" for call in commits)
    finally:
        log.scheduler.stop()


def test_feedback_settings_are_checked():
    from tweetmaker.config import parse_settings

    settings = parse_settings([], environ={})
    assert (settings.feedback_dir, settings.feedback_repo, settings.mcp) == (None, None, False)
    assert parse_settings(["--mcp"], environ={}).mcp and parse_settings([], environ={"TWEETMAKER_MCP": "1"}).mcp
    with pytest.raises(InvalidInputError, match="needs --feedback_dir"):
        parse_settings(["--feedback_repo", "me/feedback"], environ={})
    with pytest.raises(TweetMakerError, match="positive"):
        parse_settings(["--feedback_dir", "x", "--feedback_every_minutes", "0"], environ={})
