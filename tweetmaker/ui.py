"""The Gradio app: one tab per use case, over the recommender loaded once at start.

Pure functions first (validation, formatting, the tweet preview), then ``build_demo`` wires them into
``gr.Blocks``. Every model-bound event shares one concurrency limit, so the model never runs more requests at
once than the machine can take, and the queue's ``max_size`` turns overload into a clear "try again" message.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from tweetmaker.data import ImageDecodeError, decode_image, format_hashtags, parse_hashtags

if TYPE_CHECKING:
    from tweetmaker.resources import Resources

TWEET_LIMIT = 280
MAX_K = 50
DEFAULT_K = 8
CONCURRENCY_ID = "model"
_URL = re.compile(r"https?://\S+")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]")


# ------------------------------------------------------------------------------------------ pure functions


def clean_text(text: str | None, max_chars: int, *, required: bool = True) -> str:
    """Validate a draft: strip control characters; refuse empty (when required) or oversized text."""
    text = _CONTROL.sub(" ", text or "").strip()
    if not text:
        if required:
            raise gr.Error("Type a draft tweet first: a few words about what your tweet is about.")
        return ""
    if len(text) > max_chars:
        raise gr.Error(
            f"That text is {len(text):,} characters long; the limit is {max_chars:,}. "
            "Shorten it to the tweet (or its first paragraph) and try again."
        )
    return text


def clean_k(k: Any) -> int:
    """``k`` from the slider or the API, bounded to 1..MAX_K."""
    try:
        value = int(k)
    except (TypeError, ValueError):
        raise gr.Error(f"The number of results must be a whole number between 1 and {MAX_K}.") from None
    if not 1 <= value <= MAX_K:
        raise gr.Error(f"The number of results must be between 1 and {MAX_K}, not {value}.")
    return value


def load_upload(path: str | None, *, required: bool = True):
    """Decode an uploaded image defensively; a bad file becomes a ``gr.Error`` that says what to do."""
    if not path:
        if required:
            raise gr.Error("Upload an image first (JPEG, PNG, GIF or WebP).")
        return None
    try:
        return decode_image(Path(path))
    except ImageDecodeError as error:
        raise gr.Error(str(error)) from None


def tweet_length(text: str) -> int:
    """Length as Twitter counts it: a URL counts 23, wide characters (CJK, emoji) count 2."""
    length = 0
    for part in _URL.split(text):
        for char in part:
            length += 2 if unicodedata.east_asian_width(char) in ("W", "F") or ord(char) > 0xFFFF else 1
    return length + 23 * len(_URL.findall(text))


def compose_tweet(draft: str | None, hashtags: str | None) -> tuple[str, str]:
    """The tweet as it would be posted (draft + chosen hashtags) and its character counter."""
    draft = (draft or "").strip()
    tags = format_hashtags(parse_hashtags(hashtags))  # "#AI, ai" is one tag: the first spelling is kept
    tweet = " ".join(part for part in (draft, tags) if part)
    length = tweet_length(tweet)
    left = TWEET_LIMIT - length
    counter = f"{length} / {TWEET_LIMIT} characters" + (
        f" - {-left} over the limit: drop a hashtag or shorten the text." if left < 0 else f" ({left} left)"
    )
    return tweet or "*Your tweet preview appears here.*", counter


def _engagement(metadata: dict[str, Any]) -> str:
    return f"♥ {int(metadata.get('likes') or 0)} · ↻ {int(metadata.get('retweets') or 0)}"


def _date(metadata: dict[str, Any]) -> str:
    stamp = metadata.get("date")
    if not stamp:
        return ""
    return datetime.fromtimestamp(int(stamp), tz=timezone.utc).strftime("%Y-%m-%d")


def caption(result: Any) -> str:
    """A gallery caption: tweet text, hashtags, score and engagement."""
    metadata = result.metadata
    text = metadata.get("text") or "(no text)"
    text = text if len(text) <= 120 else text[:117] + "..."
    parts = [text, metadata.get("hashtags") or "", f"score {result.score:.3f}", _engagement(metadata)]
    return " | ".join(part for part in parts if part)


def gallery_items(resources: Resources, results: Sequence[Any]) -> list[tuple[str, str]]:
    items = []
    for result in results:
        path = resources.index.image_path(result.metadata)
        if path is not None:
            items.append((str(path), caption(result)))
    return items


def breakdown_rows(results: Sequence[Any]) -> list[list[Any]]:
    """Why each result ranked: its score and the parts it is made of."""
    rows = []
    for rank, result in enumerate(results, start=1):
        parts = result.breakdown
        rows.append([rank, result.id, (result.metadata.get("text") or "")[:80], round(result.score, 4),
                     *(round(float(parts.get(name, 0.0)), 4) for name in BREAKDOWN_COLUMNS),
                     _engagement(result.metadata), _date(result.metadata)])
    return rows


BREAKDOWN_COLUMNS = ("similarity", "engagement", "recency", "diversity")
BREAKDOWN_HEADERS = ["rank", "tweet id", "tweet", "score", *BREAKDOWN_COLUMNS, "engagement (raw)", "date"]


def hashtag_rows(hashtags: Sequence[Any]) -> list[list[Any]]:
    return [[f"#{tag.tag}", round(tag.score, 4), tag.support] for tag in hashtags]


def ranking_options(engagement: float, recency: float, diversity: float) -> dict[str, float]:
    for name, value in (("engagement", engagement), ("recency", recency), ("diversity", diversity)):
        if value is None or not 0.0 <= float(value) <= 1.0 or math.isnan(float(value)):
            raise gr.Error(f"The {name} weight must be between 0 and 1.")
    return {"engagement": float(engagement), "recency": float(recency), "diversity": float(diversity)}


# ------------------------------------------------------------------------------------------ handlers


def user_errors(handler):
    """Turn the library's user-facing errors (bad query, unusable image, index trouble) into ``gr.Error``."""
    from tweetmaker.index import TweetIndexError
    from tweetmaker.search import QueryError

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any):
        try:
            return handler(*args, **kwargs)
        except (QueryError, ImageDecodeError) as error:
            raise gr.Error(str(error)) from None
        except TweetIndexError as error:
            raise gr.Error(f"The index is unavailable: {error}") from None
    return wrapped


class Handlers:
    """The endpoint functions, bound to the resources loaded at start."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.max_chars = resources.settings.max_text_chars

    @user_errors
    def text_to_image(self, text: str, k: int = DEFAULT_K, engagement: float = 0.0, recency: float = 0.0,
                      diversity: float = 0.0):
        draft = clean_text(text, self.max_chars)
        results = self.resources.recommender.text_to_images(
            draft, k=clean_k(k), **ranking_options(engagement, recency, diversity))
        if not results:
            gr.Warning("No matching images in the index.")
        return gallery_items(self.resources, results), breakdown_rows(results)

    @user_errors
    def image_to_hashtags(self, image: str, k: int = DEFAULT_K, engagement: float = 0.0, recency: float = 0.0,
                          diversity: float = 0.0):
        picture = load_upload(image)
        recommendation = self.resources.recommender.image_to_hashtags(
            picture, k=clean_k(k), **ranking_options(engagement, recency, diversity))
        if not recommendation.hashtags:
            gr.Info("No hashtag is a confident match for this image.")
        return (hashtag_rows(recommendation.hashtags), format_hashtags([t.tag for t in recommendation.hashtags]),
                gallery_items(self.resources, recommendation.tweets))

    @user_errors
    def combined(self, text: str, image: str, balance: float = 0.5, k: int = DEFAULT_K, engagement: float = 0.0,
                 recency: float = 0.0, diversity: float = 0.0):
        draft = clean_text(text, self.max_chars, required=False)
        picture = load_upload(image, required=False)
        if not draft and picture is None:
            raise gr.Error("Give a draft text, an image, or both.")
        try:
            balance = float(balance)
        except (TypeError, ValueError):
            raise gr.Error("The text/image balance must be a number between 0 and 1.") from None
        if not 0.0 <= balance <= 1.0:
            raise gr.Error("The text/image balance must be between 0 (all image) and 1 (all text).")
        recommendation = self.resources.recommender.combined(
            draft or None, picture, text_weight=balance, k=clean_k(k),
            **ranking_options(engagement, recency, diversity))
        return (gallery_items(self.resources, recommendation.tweets), hashtag_rows(recommendation.hashtags),
                format_hashtags([t.tag for t in recommendation.hashtags]))


# ------------------------------------------------------------------------------------------ layout


def uploaded_image(**options: Any) -> gr.Image:
    """An image input that hands the handler the uploaded file untouched.

    ``gr.Image`` opens uploads with Pillow before any handler runs, so a broken or hostile file would fail there
    with Pillow's message. Passing the path on lets ``decode_image`` refuse it with a message that says what to do.
    (Overridden on the instance: a ``gr.Image`` subclass would make Gradio write a .pyi file into the package.)
    """
    component = gr.Image(type="filepath", sources=["upload", "clipboard"], **options)

    def pass_path(payload: Any) -> str | None:
        if payload is None:
            return None
        if getattr(payload, "path", None) is None:
            raise gr.Error("The upload did not arrive complete; try again.")
        return str(payload.path)

    component.preprocess = pass_path
    return component


def about_markdown(resources: Resources) -> str:
    results = resources.results or {}
    lines = [
        "### About this model",
        f"- Towers: `{resources.towers_source}` (embedding size {resources.towers.embedding_dim})",
        f"- Data set: `{resources.dataset_source}`; indexed tweets: {resources.index.count('image')}",
        f"- Index: {resources.index.location}",
    ]
    before, after = results.get("before", {}), results.get("after", {})
    metrics = sorted(set(before) | set(after))
    if metrics:
        lines += ["", "| metric (test split) | before fine-tuning | after |", "|---|---|---|"]
        lines += [f"| {name} | {_fmt(before.get(name))} | {_fmt(after.get(name))} |" for name in metrics]
    else:
        lines.append("- No training metrics (`all_results.json`) were found next to the towers.")
    lines += ["", "TweetMaker recommends images, hashtags and similar tweets for a tweet you are writing, using "
              "three CLIP towers (image, text, hashtags) fine-tuned together and one Chroma collection per modality."]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def build_demo(resources: Resources) -> gr.Blocks:
    """The Blocks app. Launch it with ``launch_demo`` (queue, limits and allowed paths set there)."""
    handlers = Handlers(resources)
    examples = resources.examples
    with gr.Blocks(title="TweetMaker") as demo:
        gr.Markdown("# TweetMaker\nWrite a tweet: get matching images, hashtags and similar tweets.")
        if resources.banner:
            gr.Markdown(resources.banner, elem_id="demo-banner")
        with gr.Accordion("Results and ranking", open=False):
            with gr.Row():
                k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Results (k)")
                engagement = gr.Slider(0, 1, value=0.0, step=0.05, label="Engagement weight",
                                       info="Favour tweets with many likes and retweets.")
                recency = gr.Slider(0, 1, value=0.0, step=0.05, label="Recency weight",
                                    info="Favour recent tweets.")
                diversity = gr.Slider(0, 1, value=0.0, step=0.05, label="Diversity (MMR)",
                                      info="Avoid near-duplicate results.")
        ranking = [k, engagement, recency, diversity]
        with gr.Tab("Text → Image"):
            text_in = gr.Textbox(label="Draft tweet", lines=3, max_lines=8, elem_id="text-to-image-input",
                                 placeholder="e.g. two red robots on a striped background")
            text_button = gr.Button("Find images", variant="primary", elem_id="text-to-image-button")
            text_gallery = gr.Gallery(label="Matching images", columns=4, height="auto",
                                      elem_id="text-to-image-gallery")
            text_why = gr.Dataframe(headers=BREAKDOWN_HEADERS, label="Why they ranked", interactive=False)
            if examples:
                gr.Examples([[example["text"]] for example in examples if example["text"]], inputs=[text_in],
                            label="Tweets from the corpus")
        with gr.Tab("Image → Hashtags"):
            image_in = uploaded_image(label="Your image", height=280)
            image_button = gr.Button("Recommend hashtags", variant="primary")
            with gr.Row():
                image_tags = gr.Dataframe(headers=["hashtag", "score", "support"], label="Hashtags",
                                          interactive=False)
                image_tag_string = gr.Textbox(label="Copy-ready hashtags", buttons=["copy"])
            image_gallery = gr.Gallery(label="Similar tweets", columns=4, height="auto")
            if examples:
                gr.Examples([[str(example["image"])] for example in examples if example["image"]],
                            inputs=[image_in], label="Images from the corpus")
        with gr.Tab("Text + Image"):
            with gr.Row():
                both_text = gr.Textbox(label="Draft tweet", lines=3)
                both_image = uploaded_image(label="Your image", height=240)
            balance = gr.Slider(0, 1, value=0.5, step=0.05, label="Balance: image ← → text",
                                info="0 searches by the image alone, 1 by the text alone.")
            both_button = gr.Button("Recommend", variant="primary")
            both_gallery = gr.Gallery(label="Matching images", columns=4, height="auto")
            with gr.Row():
                both_tags = gr.Dataframe(headers=["hashtag", "score", "support"], label="Hashtags",
                                         interactive=False)
                both_tag_string = gr.Textbox(label="Copy-ready hashtags", buttons=["copy"])
        with gr.Tab("Tweet preview"):
            preview_text = gr.Textbox(label="Draft tweet", lines=3)
            preview_tags = gr.Textbox(label="Hashtags", placeholder="#AI #Robotics")
            preview = gr.Markdown("*Your tweet preview appears here.*")
            counter = gr.Markdown(f"0 / {TWEET_LIMIT} characters")
            for source in (preview_text, preview_tags):
                source.change(compose_tweet, [preview_text, preview_tags], [preview, counter], api_name=False,
                              queue=False, show_progress="hidden")
            for tags in (image_tag_string, both_tag_string):
                tags.change(lambda value: value, tags, preview_tags, api_name=False, queue=False)
            text_in.change(lambda value: value, text_in, preview_text, api_name=False, queue=False)
        with gr.Tab("About"):
            gr.Markdown(about_markdown(resources))
        model_bound = {"concurrency_limit": resources.settings.max_concurrency, "concurrency_id": CONCURRENCY_ID}
        text_event = {"fn": handlers.text_to_image, "inputs": [text_in, *ranking],
                      "outputs": [text_gallery, text_why], "api_name": "text_to_image", **model_bound}
        text_button.click(**text_event)
        text_in.submit(**{**text_event, "api_name": False})
        image_button.click(handlers.image_to_hashtags, [image_in, *ranking],
                           [image_tags, image_tag_string, image_gallery], api_name="image_to_hashtags", **model_bound)
        both_button.click(handlers.combined, [both_text, both_image, balance, *ranking],
                          [both_gallery, both_tags, both_tag_string], api_name="combined", **model_bound)
        gr.api(compose_tweet, api_name="compose_tweet")
    return demo


def launch_demo(demo: gr.Blocks, resources: Resources, *, prevent_thread_lock: bool = False, **overrides: Any):
    """Launch with the app's limits: a bounded queue, an upload size cap, and only the index's images served."""
    settings = resources.settings
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.max_concurrency)
    allowed = [str(resources.index.index_dir / "images")] if resources.index.index_dir is not None else []
    options = {
        "server_name": settings.host,
        "server_port": settings.port,
        "share": settings.share,
        "max_file_size": f"{settings.max_file_size_mb:g}mb",
        "allowed_paths": allowed,
        "show_error": True,
        "prevent_thread_lock": prevent_thread_lock,
        "quiet": False,
    }
    options.update(overrides)
    return demo.launch(**options)
