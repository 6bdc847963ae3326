"""Search: the app's queries against brute force, hashtag aggregation, re-ranking, and edge cases.

Mechanics are checked with untrained towers against exact expectations computed here by brute force;
quality (attribute-relevant results) with towers trained by train/finetune.py on the synthetic twin.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from tests.chroma_server import backend_fixture
from tweetmaker.index import Hit, build_index, open_index
from tweetmaker.search import (
    QueryError,
    QueryLimits,
    Ranking,
    Recommender,
    aggregate_hashtags,
    check_balance,
    check_k,
    check_weight,
    clean_text,
    engagement_value,
    has_image,
    mix,
    rerank,
)


@pytest.fixture(scope="module", params=["embedded", "server"])
def backend(request, tmp_path_factory):
    yield from backend_fixture(request, tmp_path_factory)


@pytest.fixture(scope="module")
def towers(tiny_clip_dir, tmp_path_factory):
    from tweetmaker.towers import build_towers_from_base, load_towers

    saved = build_towers_from_base(tiny_clip_dir, device="cpu").save(tmp_path_factory.mktemp("towers") / "t")
    return load_towers(saved, device="cpu")


@pytest.fixture(scope="module")
def dataset(tweets_dir):
    from tweetmaker.data import load_tweets

    return load_tweets(tweets_dir)


@pytest.fixture(scope="module")
def built(backend, dataset, towers, tmp_path_factory):
    """The whole synthetic corpus indexed with the untrained towers, on each backend."""
    index_dir = tmp_path_factory.mktemp("index") / "index"
    prefix = backend.new_prefix()
    build_index(dataset, towers, index_dir, progress=False, **backend.location(prefix))
    index = open_index(index_dir, towers=towers, **backend.location(prefix))
    yield index
    index.close()


@pytest.fixture(scope="module")
def recommender(built, towers):
    return Recommender(towers, built)


@pytest.fixture(scope="module")
def corpus(built):
    """Brute-force reference: every collection's ids, embeddings and metadata."""
    out = {}
    for modality in ("image", "text", "hashtag"):
        ids, embeddings = built.all_embeddings(modality)
        records = built.get(modality, ids, with_embeddings=False)
        metadata = {tweet_id: record.metadata for tweet_id, record in records.items()}
        out[modality] = (ids, embeddings, metadata)
    return out


def exact_top(corpus, modality, vector, k):
    ids, embeddings, _ = corpus[modality]
    scores = embeddings @ vector
    order = np.argsort(-scores, kind="stable")[:k]
    return [ids[i] for i in order], scores[order]


def first_image(dataset):
    return dataset["test"][0]["image"]


# ------------------------------------------------------------------------------------------------ against brute force


def test_text_to_images_equals_exact_search(recommender, towers, corpus):
    text = "three red robots on a striped background"
    results = recommender.text_to_images(text, k=10)
    vector = towers.encode_texts([text])[0]
    expected_ids, expected_scores = exact_top(corpus, "image", vector / np.linalg.norm(vector), 10)
    assert [r.id for r in results] == expected_ids
    np.testing.assert_allclose([r.score for r in results], expected_scores, atol=1e-4)
    for result in results:
        assert result.breakdown["similarity"] == pytest.approx(result.score)
        assert result.breakdown["engagement"] == result.breakdown["recency"] == result.breakdown["diversity"] == 0
        assert result.image_path is not None and result.image_path.is_file()


def test_combined_query_mixes_normalised_embeddings(recommender, towers, corpus, dataset):
    text, image = "a chart of growth", first_image(dataset)
    t = towers.encode_texts([text])[0]
    i = towers.encode_images([image])[0]
    for weight in (0.0, 0.3, 1.0):
        expected = weight * t / np.linalg.norm(t) + (1 - weight) * i / np.linalg.norm(i)
        expected /= np.linalg.norm(expected)
        np.testing.assert_allclose(recommender.query_vector(text, image, weight), expected, atol=1e-5)
        got = recommender.text_image_to_images(text, image, text_weight=weight, k=5)
        assert [r.id for r in got] == exact_top(corpus, "image", expected, 5)[0]
    combined = recommender.combined(text, image, text_weight=0.3, k=5)
    assert [r.id for r in combined.tweets] == [r.id for r in recommender.text_image_to_images(text, image, 0.3, 5)]
    # one input alone is that input's query
    np.testing.assert_allclose(recommender.query_vector(None, image), i / np.linalg.norm(i), atol=1e-5)


def test_similar_tweets_and_image_queries_use_the_right_collections(recommender, towers, corpus, dataset):
    image = first_image(dataset)
    i = towers.encode_images([image])[0]
    assert [r.id for r in recommender.image_to_tweets(image, k=5)] == exact_top(corpus, "image", i, 5)[0]
    text = dataset["test"][1]["text"]
    t = towers.encode_texts([text])[0]
    results = recommender.text_to_tweets(text, k=5)
    assert [r.id for r in results] == exact_top(corpus, "text", t, 5)[0]
    assert results[0].id == dataset["test"][1]["tweet_id"] or results[0].text == text  # a tweet finds itself


def test_compose_steering_equals_exact_search(recommender, towers, corpus):
    """More like this (a stored embedding, no re-encoding), "not" and the seed's exclusion, against brute force."""
    from tweetmaker.search import MORE_LIKE_THIS_WEIGHT, NOT_WEIGHT

    ids, embeddings, _ = corpus["image"]
    seed = ids[3]
    stored = embeddings[3] / np.linalg.norm(embeddings[3])
    alone = recommender.more_like_this(seed, k=6)
    assert alone.seed == seed
    expected = [tweet_id for tweet_id in exact_top(corpus, "image", stored, 7)[0] if tweet_id != seed][:6]
    assert [r.id for r in alone.images] == expected and seed not in [r.id for r in alone.tweets]

    text, negative = "two green rockets", "stripes"
    t = towers.encode_texts([text])[0]
    n = towers.encode_texts([negative])[0]
    query = MORE_LIKE_THIS_WEIGHT * stored + (1 - MORE_LIKE_THIS_WEIGHT) * t / np.linalg.norm(t)
    query /= np.linalg.norm(query)
    steered = query - NOT_WEIGHT * n / np.linalg.norm(n)
    steered /= np.linalg.norm(steered)
    got = recommender.compose(text, None, not_text=negative, tweet_id=seed, k=5)
    if got.notes:  # the negative dominated: the query ran without it
        steered = query
    assert [r.id for r in got.images] == [i for i in exact_top(corpus, "image", steered, 6)[0] if i != seed][:5]
    np.testing.assert_allclose([r.similarity for r in got.images],
                               [float(embeddings[ids.index(r.id)] @ steered) for r in got.images], atol=1e-4)


def test_compose_refuses_unknown_and_malformed_tweet_ids_and_an_empty_query(recommender):
    for bad, message in (("../../etc", "not a tweet id"), ("syn_no_such", "No tweet with id"), ("", "draft text")):
        with pytest.raises(QueryError, match=message):
            recommender.compose(None, None, tweet_id=bad)


def test_weak_matches_hide_the_tail_and_count_it(recommender):
    every = recommender.compose("three blue robots on dots", k=30)
    strong = recommender.compose("three blue robots on dots", k=30, weak=True)
    assert strong.images[0].id == every.images[0].id and len(strong.images) <= len(every.images)
    assert strong.hidden_weak == len(every.images) - len(strong.images) + len(every.tweets) - len(strong.tweets)


def test_image_to_hashtags_aggregates_the_exact_neighbours(recommender, towers, corpus, dataset):
    from tweetmaker.data import normalize_hashtag

    image = first_image(dataset)
    vector = towers.encode_images([image])[0]
    recommendation = recommender.image_to_hashtags(image, k=4, min_score=0.0, max_hashtags=100)
    ids, scores = exact_top(corpus, "image", vector, 20)
    neighbours = {"image": [Hit(i, float(s), corpus["image"][2][i]) for i, s in zip(ids, scores)]}
    expected = aggregate_hashtags(neighbours, min_score=0.0, limit=100)
    assert [h.tag for h in recommendation.hashtags] == [h.tag for h in expected]
    np.testing.assert_allclose([h.score for h in recommendation.hashtags], [h.score for h in expected], atol=1e-4)
    keys = [normalize_hashtag(h.tag) for h in recommendation.hashtags]
    assert len(keys) == len(set(keys)), "hashtags are distinct, case-insensitively"
    assert all(0 <= h.score <= 1 + 1e-9 for h in recommendation.hashtags)
    assert len(recommendation.tweets) == 4
    strict = recommender.image_to_hashtags(image, min_score=0.2)
    assert all(h.score >= 0.2 for h in strict.hashtags)
    assert len(recommender.text_to_hashtags("robots", max_hashtags=3, min_score=0.0).hashtags) == 3


# ------------------------------------------------------------------------------------------------ hashtag aggregation


def hit(tweet_id, similarity, hashtags, **metadata):
    return Hit(tweet_id, similarity, {"hashtags": hashtags, **metadata})


def test_hashtags_are_distinct_case_insensitively_in_their_most_common_spelling():
    neighbours = {"image": [hit("1", 0.9, "#ai #Robots"), hit("2", 0.9, "#AI #robots"), hit("3", 0.9, "#AI")]}
    tags = aggregate_hashtags(neighbours, min_score=0.0)
    assert [t.tag for t in tags] == ["AI", "Robots"]  # AI: 2 of 3 spell it "AI"; robots: a tie, first seen wins
    assert tags[0].score == pytest.approx(1.0) and tags[0].support == 3
    assert tags[1].score == pytest.approx(2 / 3) and tags[1].support == 2


def test_hashtag_scores_follow_similarity_and_the_threshold_cuts():
    neighbours = {"image": [hit("near", 0.9, "#Rockets"), hit("far", 0.5, "#Cooking")]}
    tags = aggregate_hashtags(neighbours, temperature=0.1, min_score=0.0)
    assert [t.tag for t in tags] == ["Rockets", "Cooking"]
    assert tags[0].score == pytest.approx(1 / (1 + math.exp(-4)))
    assert sum(t.score for t in tags) == pytest.approx(1.0)
    assert [t.tag for t in aggregate_hashtags(neighbours, temperature=0.1, min_score=0.05)] == ["Rockets"]
    assert aggregate_hashtags({"image": []}) == []
    assert aggregate_hashtags({"image": [hit("x", 0.9, "")]}) == []


def test_hashtag_sources_are_averaged_by_weight():
    neighbours = {"image": [hit("a", 0.9, "#One")], "hashtag": [hit("b", 0.9, "#Two")]}
    tags = aggregate_hashtags(neighbours, source_weights={"image": 0.75, "hashtag": 0.25}, min_score=0.0)
    assert [(t.tag, round(t.score, 3)) for t in tags] == [("One", 0.75), ("Two", 0.25)]
    assert tags[0].breakdown == {"image": 1.0, "hashtag": 0.0}


# ------------------------------------------------------------------------------------------------ re-ranking


def test_rerank_blends_engagement_and_recency_and_the_breakdown_adds_up():
    day = 86400
    hits = [
        Hit("similar", 0.50, {"likes": 0, "date": 100 * day}),
        Hit("popular", 0.45, {"likes": 10_000, "retweets": 50, "date": 10 * day}),
        Hit("recent", 0.46, {"likes": 0, "date": 400 * day}),
    ]
    assert [r.id for r in rerank(hits, 3, Ranking())] == ["similar", "recent", "popular"]
    assert [r.id for r in rerank(hits, 3, Ranking(engagement=1.0))][0] == "popular"
    assert [r.id for r in rerank(hits, 3, Ranking(recency=1.0))][0] == "recent"
    for result in rerank(hits, 3, Ranking(engagement=0.5, recency=0.5)):
        parts = result.breakdown
        assert parts["score"] == pytest.approx(parts["similarity"] + parts["engagement"] + parts["recency"]
                                               + parts["diversity"])
        assert result.score == pytest.approx(parts["score"])
    assert engagement_value({"likes": 9}) == pytest.approx(math.log(10))


def test_mmr_diversity_demotes_near_duplicates():
    same = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    other = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    hits = [Hit("a", 0.9, {}, same), Hit("a-copy", 0.89, {}, same), Hit("b", 0.8, {}, other)]
    assert [r.id for r in rerank(hits, 2, Ranking())] == ["a", "a-copy"]
    diverse = rerank(hits, 2, Ranking(diversity=0.5))
    assert [r.id for r in diverse] == ["a", "b"]
    assert diverse[1].breakdown["diversity"] == pytest.approx(0.0)  # b is orthogonal to a: no penalty
    third = rerank(hits, 3, Ranking(diversity=0.5))[2]
    assert third.id == "a-copy" and third.breakdown["diversity"] == pytest.approx(-0.5)


def test_reranked_search_keeps_k_and_reports_its_parts(recommender):
    results = recommender.text_to_images("robots", k=5, engagement=0.5, recency=0.3, diversity=0.4)
    assert len(results) == 5 and len({r.id for r in results}) == 5
    assert any(r.breakdown["engagement"] > 0 for r in results)


# ------------------------------------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("text", ["", "   \n\t", None])
def test_empty_text_is_a_clear_query_error(recommender, text):
    with pytest.raises(QueryError, match="Type a draft"):
        recommender.text_to_images(text)
    with pytest.raises(QueryError):
        recommender.text_to_hashtags(text)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_unreadable_image_is_a_clear_query_error(recommender, data):
    with pytest.raises(QueryError) as error:
        recommender.image_to_hashtags(data)
    assert isinstance(error.value, ValueError) and str(error.value)


def test_truncated_image_file_is_a_clear_query_error(recommender, dataset, tmp_path):
    buffer = io.BytesIO()
    first_image(dataset).save(buffer, format="JPEG")
    with pytest.raises(QueryError, match="truncated|damaged|corrupt"):
        recommender.image_to_tweets(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def test_k_and_weights_are_validated_and_k_may_exceed_the_collection(recommender):
    assert len(recommender.text_to_images("robots", k=10_000)) == 240
    for bad_k in (0, -3, "many"):
        with pytest.raises(QueryError, match="number of results"):
            recommender.text_to_images("robots", k=bad_k)
    with pytest.raises(QueryError, match="between 0 and 1"):
        recommender.text_to_images("robots", engagement=2)
    with pytest.raises(QueryError, match="balance"):
        recommender.combined("robots", None, text_weight=1.5)
    with pytest.raises(QueryError, match="text, an image, or both"):
        recommender.combined("  ", None)
    with pytest.raises(QueryError, match="cancel out"):
        mix(np.ones(3), -np.ones(3), 0.5)


def test_limits_bound_the_draft_and_k_and_leave_the_original_unbounded(recommender):
    limited = recommender.with_limits(QueryLimits(max_text_chars=10, max_k=5))
    assert limited.towers is recommender.towers and limited.index is recommender.index
    with pytest.raises(QueryError, match="11 characters long; the limit is 10"):
        limited.text_to_images("a" * 11, k=5)
    with pytest.raises(QueryError, match="between 1 and 5, not 6"):
        limited.image_to_tweets(b"never decoded", k=6)
    assert len(limited.text_to_images("robots", k=5)) == 5
    assert len(recommender.text_to_images("a" * 11, k=6)) == 6


def test_every_query_reads_a_draft_the_same_way(recommender):
    noisy, plain = "  red\x00robot\x07 ", "red robot"
    assert ([r.id for r in recommender.text_to_images(noisy, k=5)]
            == [r.id for r in recommender.text_to_images(plain, k=5)])
    with pytest.raises(QueryError, match="Type a draft"):
        recommender.text_to_tweets("\x00\x07")
    with pytest.raises(QueryError, match="text, an image, or both"):
        recommender.combined("\x1b", "")


def test_input_checks_take_what_a_form_or_an_api_sends_and_refuse_the_rest():
    assert clean_text(" a\tb\r\nc\x0b ") == "a\tb\r\nc" and clean_text(None, required=False) == ""
    with pytest.raises(QueryError, match="Type a draft"):
        clean_text(42)
    assert [check_k("7"), check_k(3.0), check_k(10**6)] == [7, 3, 10**6]
    for bad in (float("inf"), float("nan"), "7.5", None):
        with pytest.raises(QueryError, match="number of results must be a whole number"):
            check_k(bad)
    assert [check_weight("w", value) for value in ("0.5", np.float32(0.25), 1)] == [0.5, 0.25, 1.0]
    for bad in (None, "much", float("inf"), -0.1):
        with pytest.raises(QueryError, match="The w weight must be a number between 0 and 1"):
            check_weight("w", bad)
    assert check_balance("0.25") == 0.25
    for bad in (float("nan"), -1, "text"):
        with pytest.raises(QueryError, match="balance"):
            check_balance(bad)
    assert [has_image(x) for x in (None, "", "  ", b"", "a.png")] == [False, False, False, True, True]


def test_empty_collections_give_empty_results(dataset, towers, tmp_path):
    empty = dataset["train"].select([])
    build_index(empty, towers, tmp_path / "index", progress=False)
    index = open_index(tmp_path / "index", towers=towers)
    recommender = Recommender(towers, index)
    assert recommender.text_to_images("robots") == []
    assert recommender.text_to_tweets("robots", diversity=0.5) == []
    recommendation = recommender.image_to_hashtags(first_image(dataset))
    assert recommendation.tweets == [] and recommendation.hashtags == []
    index.close()


def test_recommender_refuses_an_index_built_by_other_towers(built, tmp_path):
    from tweetmaker.index import StaleIndexError
    from tweetmaker.towers import build_towers_from_base, write_tiny_clip

    other = build_towers_from_base(write_tiny_clip(tmp_path / "other", seed=5), device="cpu")
    with pytest.raises(StaleIndexError, match="--rebuild"):
        Recommender(other, built)


# ------------------------------------------------------------------------------------------------ quality


def test_trained_towers_give_attribute_relevant_results_and_an_images_own_hashtags(learned, tmp_path):
    """The Search issue's bar, on the twin with towers trained by finetune.py (the conftest's ``learned``)."""
    from tweetmaker.data import load_tweets
    from tweetmaker.search import evaluate_search
    from tweetmaker.towers import load_towers

    towers = load_towers(learned["towers"], device="cpu")
    dataset = load_tweets(learned["dataset"])
    build_index(dataset, towers, tmp_path / "index", progress=False)  # every split, as the app indexes
    index = open_index(tmp_path / "index", towers=towers)
    scores = evaluate_search(Recommender(towers, index), dataset["test"], limit=60)
    index.close()
    print("search quality on the twin:", scores)
    assert scores["text_to_image_precision@10"] >= 0.8
    assert scores["image_to_hashtags_recall@5"] >= 0.8
    for name in ("text_image_to_images", "image_to_tweets", "text_to_tweets"):
        assert scores[f"{name}_precision@10"] >= 0.6, name  # chance is 1/8
