"""The Compose tab's endpoints: one answer for a draft (images, hashtags, similar tweets, the tweet preview), "more
like this" from a tweet id, shareable links read and written, and the person's confirmed choice recorded when asked to.

``compose`` and ``more_like_this`` are API endpoints (and MCP tools with ``--mcp``): their docstrings' ``Args``
blocks describe each argument to agents. They return the result images (a gallery) and the answer as plain JSON
(``formatting.composition_answer``); the page then fills its chips, table and preview from that JSON, so the page
shows exactly what an API client gets. Inputs are checked by the library (``tweetmaker.search``,
``tweetmaker.share``), never here.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

import gradio as gr

from tweetmaker.compose import kept_hashtags, preview
from tweetmaker.errors import TweetMakerError
from tweetmaker.feedback import Choice, FeedbackLog
from tweetmaker.search import QueryLimits
from tweetmaker.share import IMAGE_NOT_IN_LINK, link_query, parse_link, shared_query
from tweetmaker.ui.boundary import user_errors, user_message
from tweetmaker.ui.formatting import composition_answer, scored_caption
from tweetmaker.ui.handlers import DEFAULT_K, MAX_K

if TYPE_CHECKING:
    from tweetmaker.resources import Resources

SIMILAR_HEADERS = ["score", "tweet", "hashtags", "tweet id"]
NO_IMAGE_CHOSEN = "Click an image to put it in your tweet."
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def plain(text: str) -> str:
    """Text shown in Markdown as typed: markup characters escaped (a hostile draft or link renders as text)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def notes_markdown(messages: list[str]) -> str:
    return "\n".join(f"- {plain(message)}" for message in messages)


def chip_update(answer: dict[str, Any] | None) -> Any:
    """The hashtag chips of an answer: every recommended tag offered, the strongest few chosen."""
    tags = (answer or {}).get("hashtags") or []
    return gr.update(choices=[(f"#{tag['tag']}", tag["tag"]) for tag in tags],
                     value=[tag["tag"] for tag in tags if tag.get("chosen")])


def similar_rows(answer: dict[str, Any] | None) -> list[list[Any]]:
    return [[tweet["score"], tweet["text"][:140], " ".join(f"#{tag}" for tag in tweet["hashtags"]), tweet["id"]]
            for tweet in (answer or {}).get("similar_tweets") or []]


def intent_html(url: str | None) -> str:
    if not url:
        return ""
    return (f'<a href="{html.escape(url)}" target="_blank" rel="noopener noreferrer">'
            "Open in X / Twitter with this text</a>")



_RESULT_ARGS = """hide_weak: Leave out results scoring well below the best one.
            k: How many images and similar tweets to return, 1 to 50.
            engagement: 0 to 1: favour tweets with many likes and retweets.
            recency: 0 to 1: favour recent tweets.
            diversity: 0 to 1: avoid near-duplicate results."""


def _with_result_args(function):
    """MCP describes each tool by its own docstring; the argument lines the endpoints share are written once here."""
    function.__doc__ = function.__doc__.replace("{result_args}", _RESULT_ARGS)
    return function


class ComposeHandler:
    """The Compose endpoints, bound to the resources loaded at start and the feedback log (None: off)."""

    def __init__(self, resources: Resources, feedback: FeedbackLog | None = None) -> None:
        self.limits = QueryLimits(max_text_chars=resources.settings.max_text_chars, max_k=MAX_K)
        self.recommender = resources.recommender.with_limits(self.limits)
        self.feedback = feedback

    # -- API endpoints -------------------------------------------------------------------------------------------
    @user_errors
    @_with_result_args
    def compose(self, draft: str, image: str | None = None, not_text: str = "", tweet: str = "",
                hide_weak: bool = False, k: int = DEFAULT_K, engagement: float = 0.0, recency: float = 0.0,
                diversity: float = 0.0):
        """Everything to write a tweet, in one answer: matching images, recommended hashtags (the strongest few
        chosen), similar tweets, and a preview of the tweet with its 280-character count and a link that posts it.

        Args:
            draft: The tweet being written, a few words to a paragraph (may be empty when an image or tweet is given).
            image: Optional image the tweet is about (a file); searched together with the draft.
            not_text: Optional text to steer away from, e.g. "blue" to see fewer blue images ("" for none).
            tweet: Optional id of a corpus tweet: narrow the results to what its image shows ("" for none).
            {result_args}

        Returns:
            The images (with captions), and a JSON answer: images, hashtags, similar_tweets, preview, notes, share.
        """
        return self._compose(draft, image, not_text, tweet, hide_weak, k, engagement, recency, diversity)

    def _compose(self, draft: str, image: str | None, not_text: str, tweet: str, hide_weak: bool, k: Any,
                 engagement: Any, recency: Any, diversity: Any):
        composition = self.recommender.compose(draft, image, not_text=not_text, tweet_id=tweet or None, k=k,
                                               weak=bool(hide_weak), engagement=engagement, recency=recency,
                                               diversity=diversity)
        share = link_query(shared_query(draft, k, not_text, engagement, recency, diversity, tweet, self.limits,
                                        default_k=DEFAULT_K), default_k=DEFAULT_K)
        answer = composition_answer(composition, draft, share)
        if not answer["images"]:
            gr.Warning("No matching images in the index" + (" (all were weak matches)." if hide_weak else "."))
        for note in composition.notes:
            gr.Warning(note)
        items = [(str(result.image_path), scored_caption(result)) for result in composition.images
                 if result.image_path is not None]
        return items, answer

    @user_errors
    @_with_result_args
    def more_like_this(self, tweet: str, draft: str = "", not_text: str = "", hide_weak: bool = False,
                       k: int = DEFAULT_K, engagement: float = 0.0, recency: float = 0.0, diversity: float = 0.0):
        """More like one corpus tweet: images, hashtags and similar tweets near that tweet's image (its stored
        embedding, optionally mixed with a draft), the tweet itself left out.

        Args:
            tweet: Id of a corpus tweet, as returned with every result (e.g. by the compose tool).
            draft: Optional draft to mix in ("" for none).
            not_text: Optional text to steer away from ("" for none).
            {result_args}

        Returns:
            The images (with captions), and the same JSON answer as the compose tool.
        """
        if not (tweet or "").strip():
            raise gr.Error("Click an image in the results first: more like this needs a result to start from.")
        return self.compose(draft, None, not_text, tweet, hide_weak, k, engagement, recency, diversity)

    # -- the page ------------------------------------------------------------------------------------------------
    def open_link(self, request: gr.Request):
        """A shared link opened: its query fills the inputs and, when it asks for results, runs with no click.

        Outputs: draft, not text, seed tweet, k, engagement, recency, diversity, gallery, answer, notes."""
        params = dict(getattr(request, "query_params", None) or {}) if request is not None else {}
        query, problems = parse_link(params, self.limits, default_k=DEFAULT_K)
        fields = [query.q, query.not_text, query.tweet, query.k, query.engagement, query.recency, query.diversity]
        if not any(name in params for name in ("q", "not", "tweet", "k", "engagement", "recency", "diversity")):
            return [gr.skip()] * 10
        items, answer = gr.skip(), gr.skip()
        if query.runnable:
            try:
                items, answer = self._compose(query.q, None, query.not_text, query.tweet, False, query.k,
                                              query.engagement, query.recency, query.diversity)
            except TweetMakerError as error:
                problems.append(user_message(error))
        for problem in problems:
            gr.Warning(problem)
        notes = problems + (self._notes(answer) if isinstance(answer, dict) else [])
        return [*fields, items, answer, notes_markdown(notes)]

    @staticmethod
    def _notes(answer: dict[str, Any]) -> list[str]:
        notes = list(answer.get("notes") or [])
        if answer.get("hidden_weak"):
            notes.append(f"{answer['hidden_weak']} weak matches hidden (scoring well below the best).")
        return notes

    def fill(self, answer: dict[str, Any] | None):
        """The page from a ``/compose`` answer. Outputs: chips, similar tweets, notes, chosen id, chosen image."""
        if not answer:
            return [gr.skip()] * 5
        return chip_update(answer), similar_rows(answer), notes_markdown(self._notes(answer)), "", None

    def fill_after_link(self, answer: dict[str, Any] | None):
        """``fill`` after a link opened, whose notes are already shown. Outputs: chips, similar, chosen id, image."""
        chips, similar, _, chosen, picture = self.fill(answer)
        return chips, similar, chosen, picture

    @staticmethod
    def choose(answer: dict[str, Any] | None, selected: gr.SelectData):
        """A result image clicked: it becomes the tweet's image. Outputs: chosen id, chosen image."""
        images = (answer or {}).get("images") or []
        index = selected.index if isinstance(selected.index, int) else -1
        if not 0 <= index < len(images):
            return "", None
        value = selected.value if isinstance(selected.value, dict) else {}
        picture = (value.get("image") or {}).get("path") if isinstance(value.get("image"), dict) else None
        return images[index]["id"], picture

    @staticmethod
    def preview(draft: str | None, chosen_tags: list[str] | None, answer: dict[str, Any] | None):
        """The tweet as it would be posted. Outputs: tweet text, counter, intent link (HTML)."""
        offered = [tag["tag"] for tag in (answer or {}).get("hashtags") or []]
        tweet = preview(draft, kept_hashtags(chosen_tags, offered) if offered else chosen_tags or [])
        return tweet.text, tweet.counter, intent_html(tweet.intent_url if tweet.text else None)

    def confirm(self, draft: str | None, chosen_id: str | None, chosen_tags: list[str] | None,
                answer: dict[str, Any] | None, seed: str | None, not_text: str | None, last: str | None):
        """The person copied or posted the tweet: their choice is recorded when feedback is on (once per distinct
        choice). Outputs: status line, last recorded choice."""
        offered = [tag["tag"] for tag in (answer or {}).get("hashtags") or []]
        images = {image["id"] for image in (answer or {}).get("images") or []}
        choice = Choice(draft=(draft or "").strip(), image_id=chosen_id if chosen_id in images else None,
                        hashtags=tuple(kept_hashtags(chosen_tags, offered)), tweet=(seed or "").strip() or None,
                        not_text=(not_text or "").strip() or None)
        if self.feedback is None:
            return "Copied.", last
        signature = repr(choice)
        if signature != last:
            self.feedback.record(choice)
        return "Copied. Your choice was recorded (see the note above).", signature

    @staticmethod
    def share(draft: str | None, not_text: str | None, seed: str | None, image: str | None, k: Any,
              engagement: Any, recency: Any, diversity: Any) -> str:
        """The query string of a link to the current query (the page's script adds the address and copies it)."""
        try:
            query = shared_query(draft, k, not_text, engagement, recency, diversity, seed, QueryLimits(max_k=MAX_K),
                                 default_k=DEFAULT_K)
        except TweetMakerError as error:
            raise gr.Error(user_message(error)) from None
        if not query.runnable:
            raise gr.Error("Type a draft (or pick 'more like this') first: a link carries the query, and there is "
                           "none yet.")
        if image:
            gr.Info(IMAGE_NOT_IN_LINK)
        return link_query(query, default_k=DEFAULT_K)
