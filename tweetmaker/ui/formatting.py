"""How results read on the page: gallery captions, score tables, hashtags, and the tweet preview.

Pure functions of the library's result dataclasses (no Gradio here), shared by every tab that shows results.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from tweetmaker.compose import TWEET_LIMIT, preselect, preview, tweet_length  # noqa: F401 - re-exported
from tweetmaker.data import format_hashtags

EMPTY_PREVIEW = "*Your tweet preview appears here.*"
BREAKDOWN_COLUMNS = ("similarity", "engagement", "recency", "diversity")
BREAKDOWN_HEADERS = ["rank", "tweet id", "tweet", "score", *BREAKDOWN_COLUMNS, "engagement (raw)", "date"]
HASHTAG_HEADERS = ["hashtag", "score", "support"]


def compose_tweet(draft: str | None, hashtags: str | None) -> tuple[str, str]:
    """The tweet as it would be posted (draft + chosen hashtags) and its character counter, counted as Twitter
    counts (a link counts 23, wide characters and emoji 2).

    Args:
        draft: The tweet's text.
        hashtags: The hashtags to add, e.g. "#AI #Robots" (one already in the draft is not added twice).

    Returns:
        The tweet as it would be posted, and its "N / 280 characters" counter.
    """
    tweet = preview(draft, hashtags)
    return tweet.text or EMPTY_PREVIEW, tweet.counter


def caption(result: Any) -> str:
    """A gallery caption: tweet text, hashtags, score and engagement."""
    metadata = result.metadata
    text = metadata.get("text") or "(no text)"
    text = text if len(text) <= 120 else text[:117] + "..."
    parts = [text, metadata.get("hashtags") or "", f"score {result.score:.3f}", _engagement(metadata)]
    return " | ".join(part for part in parts if part)


def gallery_items(results: Sequence[Any]) -> list[tuple[str, str]]:
    """``(image path, caption)`` of each result whose image the index holds."""
    return [(str(result.image_path), caption(result)) for result in results if result.image_path is not None]


def scored_caption(result: Any) -> str:
    """A Compose caption: the score first (readable at a glance), then the tweet, which is also the image's alt
    text (Gradio's gallery uses the caption as ``alt``)."""
    text = " ".join(str(result.metadata.get("text") or "(no text)").split())
    text = text if len(text) <= 110 else text[:107] + "..."
    return f"{result.score:.2f} · {text}"


def tweet_record(result: Any) -> dict[str, Any]:
    """One result as the ``/compose`` answer lists it (plain JSON)."""
    return {"id": result.id, "text": result.metadata.get("text") or "", "hashtags": result.hashtags,
            "score": round(float(result.score), 4), "similarity": round(float(result.similarity), 4)}


def composition_answer(composition: Any, draft: str | None, share: str = "") -> dict[str, Any]:
    """The ``/compose`` answer: images (those the index holds a picture of, in gallery order), hashtags (the
    strongest few ``chosen``), similar tweets, the tweet preview with the chosen hashtags, and how the query ran."""
    scored = [(tag.tag, tag.score) for tag in composition.hashtags]
    chosen = preselect(scored)
    return {
        "images": [tweet_record(result) for result in composition.images if result.image_path is not None],
        "hashtags": [{"tag": tag.tag, "score": round(float(tag.score), 4), "support": tag.support,
                      "chosen": tag.tag in chosen} for tag in composition.hashtags],
        "similar_tweets": [tweet_record(result) for result in composition.tweets],
        "preview": preview(draft, chosen).as_dict(),
        "hidden_weak": composition.hidden_weak,
        "notes": list(composition.notes),
        "seed": composition.seed,
        "share": share,
    }


def breakdown_rows(results: Sequence[Any]) -> list[list[Any]]:
    """Why each result ranked: its score and the parts it is made of (``BREAKDOWN_HEADERS``)."""
    rows = []
    for rank, result in enumerate(results, start=1):
        parts = result.breakdown
        rows.append([rank, result.id, (result.metadata.get("text") or "")[:80], round(result.score, 4),
                     *(round(float(parts.get(name, 0.0)), 4) for name in BREAKDOWN_COLUMNS),
                     _engagement(result.metadata), _date(result.metadata)])
    return rows


def hashtag_rows(hashtags: Sequence[Any]) -> list[list[Any]]:
    """One row per recommended hashtag (``HASHTAG_HEADERS``)."""
    return [[f"#{tag.tag}", round(tag.score, 4), tag.support] for tag in hashtags]


def hashtag_string(hashtags: Sequence[Any]) -> str:
    """The recommended hashtags, copy-ready: ``#AI #Robotics``."""
    return format_hashtags([tag.tag for tag in hashtags])


def _engagement(metadata: dict[str, Any]) -> str:
    return f"♥ {int(metadata.get('likes') or 0)} · ↻ {int(metadata.get('retweets') or 0)}"


def _date(metadata: dict[str, Any]) -> str:
    stamp = metadata.get("date")
    if not stamp:
        return ""
    return datetime.fromtimestamp(int(stamp), tz=timezone.utc).strftime("%Y-%m-%d")
