"""Model checks: the evaluation report, list agreement and hard cases.

The report is checked on towers trained by the real training code (the shared ``learned`` fixture) against their
own untrained base: trained must win every text->image and image->hashtag figure, and its recall@10 must equal what
training wrote to ``all_results.json`` for the same split (one metric implementation).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tweetmaker.evaluation import compare_results, hard_cases, report_table


def test_compare_results_overlap_and_ranks():
    same = compare_results(["a", "b", "c"], ["a", "b", "c"])
    assert same.overlap == 1.0 and same.ranks_in_other == [1, 2, 3]
    moved = compare_results(["a", "b", "c", "d"], ["c", "a", "x", "y"])
    assert moved.overlap == 0.5
    assert moved.ranks_in_other == [2, None, 1, None]
    assert moved.other_ranks_in_this == [3, 1, None, None]
    assert compare_results([], []).overlap == 1.0
    assert compare_results(["a"], []).overlap == 0.0


def test_report_table_one_column_per_model_best_in_bold():
    reports = {
        "new": {"exact_pairs": {"text_to_image": {"recall@10": 0.5, "mrr": 0.3, "median_rank": 4.0}}},
        "old": {"exact_pairs": {"text_to_image": {"recall@10": 0.2, "mrr": 0.3}}, "app": {"x@10": 0.1}},
    }
    table = report_table(reports).splitlines()
    assert table[0] == "| figure | new | old |"
    assert "| text_to_image recall@10 | **0.5000** | 0.2000 |" in table
    assert "| text_to_image mrr | 0.3000 | 0.3000 |" in table  # a tie has no winner
    assert "| app x@10 |  | 0.1000 |" in table
    assert not any("median_rank" in line for line in table)


@pytest.fixture(scope="module")
def evaluated(learned, tmp_path_factory):
    from tweetmaker.evaluate import main

    out = tmp_path_factory.mktemp("evaluate")
    code = main(["--dataset", str(learned["dataset"]), "--towers", str(learned["towers"]), "--towers", "base",
                 "--index_dir", str(out / "indexes"), "--app_queries", "60", "--json", str(out / "report.json"),
                 "--no_progress"])
    assert code == 0
    return json.loads((out / "report.json").read_text()), out


def test_trained_towers_beat_their_base_on_every_figure(evaluated):
    report, _ = evaluated
    trained, base = report["models"].values()
    for direction in ("text_to_image", "image_to_hashtag"):
        for name, value in trained["exact_pairs"][direction].items():
            if name.endswith("_rank"):  # lower is better
                assert value < base["exact_pairs"][direction][name], (direction, name)
            else:
                assert value > base["exact_pairs"][direction][name], (direction, name)
    for name in ("text_to_image_precision@10", "image_to_hashtags_recall@5"):
        assert trained["app"][name] > base["app"][name], name


def test_recall_matches_what_training_recorded(evaluated, learned):
    report, _ = evaluated
    trained = next(iter(report["models"].values()))
    recorded = learned["results"]["after"]
    for direction in ("text_to_image", "hashtag_to_image", "image_to_hashtag"):
        assert trained["exact_pairs"][direction]["recall@10"] == pytest.approx(
            recorded[direction]["recall@10"], abs=1e-6), direction


def test_second_run_reuses_each_models_index(evaluated, learned):
    _, out = evaluated
    built = sorted(path.name for path in (out / "indexes").iterdir())
    assert len(built) == 2  # one index per towers identity
    from tweetmaker.evaluate import model_index
    from tweetmaker.towers import load_towers

    messages: list[str] = []
    towers = load_towers(learned["towers"], device="cpu")
    index = model_index(towers, str(learned["dataset"]), out / "indexes", messages.append)
    index.close()
    assert not any("Building" in message for message in messages), messages


def test_base_needs_trained_towers_first(learned, capsys):
    from tweetmaker.evaluate import main

    assert main(["--dataset", str(learned["dataset"]), "--towers", "base", "--no_app", "--no_progress"]) == 2
    assert "give trained towers first" in capsys.readouterr().err


def test_hard_cases_are_the_worst_ranked_own_images(evaluated, learned):
    from tweetmaker.evaluate import model_index
    from tweetmaker.towers import load_towers

    _, out = evaluated
    towers = load_towers(learned["towers"], device="cpu")
    index = model_index(towers, str(learned["dataset"]), out / "indexes", lambda message: None)  # built above
    try:
        cases = hard_cases(index, shown=5)
        # Brute force over the stored embeddings: the rank of each test tweet's own image for its text.
        text_ids, texts = index.all_embeddings("text")
        image_ids, images = index.all_embeddings("image")
        metadata = index.get("text", text_ids, with_embeddings=False)
        ranks = {}
        for tweet_id, vector in zip(text_ids, texts):
            if metadata[tweet_id].metadata["split"] == "test" and tweet_id in image_ids:
                scores = images @ vector
                ranks[tweet_id] = 1 + int(np.sum(scores > scores[image_ids.index(tweet_id)]))
        worst = sorted(ranks.values(), reverse=True)[:5]
        assert [case.rank for case in cases] == worst
        for case in cases:
            assert case.rank == ranks[case.tweet_id] > 1
            assert case.first_id != case.tweet_id and case.image and case.first_image
    finally:
        index.close()
