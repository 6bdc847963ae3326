"""Compose (the first tab): write a tweet in one place. A draft and/or an image, one button, and in one answer the
matching images, hashtag chips (the strongest few chosen) and similar tweets; clicking an image chooses it; a live
preview counts the tweet as Twitter does, copies it, or opens the platform's compose box with it.

Also here: "More like this" (the chosen result's stored image embedding mixed into the query), a "Not" text,
"Hide weak matches", the Share link (the query in the URL, read back by ``demo.load`` with no click), and, when
``--feedback_dir`` is set, one line saying that confirmed choices are recorded.
"""

from __future__ import annotations

import gradio as gr

from tweetmaker.compose import TWEET_LIMIT
from tweetmaker.feedback import NOTICE
from tweetmaker.share import IMAGE_NOT_IN_LINK
from tweetmaker.ui.compose_handlers import NO_IMAGE_CHOSEN, SIMILAR_HEADERS, ComposeHandler
from tweetmaker.ui.controls import Shared, uploaded_image

# Run in the page before the Python step (Gradio passes the inputs' then the outputs' values, and hands what the
# script returns to Python as its inputs): copy the tweet; open the compose intent; make the share link absolute.
TWEET_TEXT_JS = "document.querySelector('#compose-tweet textarea')?.value || ''"
INTENT_HREF_JS = "document.querySelector('#compose-intent a')?.href"
SHARE_JS = ("(query) => { if (!query) { return query; } "
            "const link = window.location.origin + window.location.pathname + query; "
            "try { navigator.clipboard.writeText(link).catch(() => {}); } catch (e) {} return link; }")

# Page CSS (``launch_demo`` passes it): the whole result grid shows (no inner scroll box, no empty reserved height),
# two columns on a phone so each image and its score stay readable.
CSS = """
#compose-gallery .grid-wrap.fixed-height { max-height: none; min-height: 0; }
@media (max-width: 640px) {
  #compose-gallery .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)); }
}
"""


def before(action: str, inputs: int) -> str:
    """A page script that does ``action`` and passes the event's ``inputs`` values on unchanged."""
    return f"(...args) => {{ try {{ {action} }} catch (e) {{}} return args.slice(0, {inputs}); }}"


COPY_ACTION = f"navigator.clipboard.writeText({TWEET_TEXT_JS}).catch(() => {{}});"
POST_ACTION = f"const url = {INTENT_HREF_JS}; if (url) {{ window.open(url, '_blank', 'noopener'); }}"


def build(handler: ComposeHandler, shared: Shared, demo: gr.Blocks) -> None:
    """The tab (laid out first, so it is the one selected when the page opens) and its events."""
    with gr.Tab("Compose", id="compose", elem_id="compose-tab"):
        if handler.feedback is not None:
            gr.Markdown(NOTICE, elem_id="compose-feedback-notice")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                draft = gr.Textbox("", label="Draft tweet", lines=1, max_lines=6, elem_id="compose-draft",
                                   placeholder="e.g. three blue robots on dots (Enter searches)")
                with gr.Row():
                    not_text = gr.Textbox("", label="Not", placeholder="e.g. blue", elem_id="compose-not", scale=2,
                                          info="Steer away from this.")
                    seed = gr.Textbox("", label="More like tweet", elem_id="compose-seed", scale=2,
                                      info="Set by 'More like this'; clear it to go back.")
                with gr.Row():
                    button = gr.Button("Recommend", variant="primary", elem_id="compose-button", scale=2)
                    weak = gr.Checkbox(label="Hide weak matches", value=False, elem_id="compose-weak", scale=1)
            with gr.Column(scale=1, min_width=200):
                image = uploaded_image(label="Image (optional)", height=160, elem_id="compose-image")
        notes = gr.Markdown("", elem_id="compose-notes")
        gallery = gr.Gallery(label="Matching images: click one to use it (score first)", columns=4, height="auto",
                             object_fit="contain", allow_preview=False, elem_id="compose-gallery")
        with gr.Row():
            chosen = gr.Textbox(label="Chosen image (tweet id)", interactive=False, elem_id="compose-chosen",
                                placeholder=NO_IMAGE_CHOSEN, scale=3)
            more = gr.Button("More like this", elem_id="compose-more", scale=1)
        chips = gr.CheckboxGroup(label="Hashtags: click to add or drop", choices=[], elem_id="compose-hashtags")
        with gr.Group():
            with gr.Row(equal_height=False):
                picture = gr.Image(label="Your tweet's image", interactive=False, height=160, scale=1,
                                   elem_id="compose-picture", buttons=[])
                with gr.Column(scale=3):
                    tweet = gr.Textbox(label="Your tweet", interactive=False, lines=2, buttons=["copy"],
                                       elem_id="compose-tweet")
                    counter = gr.Markdown(f"0 / {TWEET_LIMIT} characters", elem_id="compose-counter")
                    intent = gr.HTML("", elem_id="compose-intent")
        with gr.Row():
            copy = gr.Button("Copy tweet", elem_id="compose-copy")
            post = gr.Button("Post on X", elem_id="compose-post")
            share = gr.Button("Share", elem_id="compose-share")
        status = gr.Markdown("", elem_id="compose-status")
        link = gr.Textbox(label="Link to this query", info=IMAGE_NOT_IN_LINK, buttons=["copy"], interactive=False,
                          elem_id="compose-share-link")
        with gr.Accordion("Similar tweets", open=True):
            similar = gr.Dataframe(headers=SIMILAR_HEADERS, interactive=False, wrap=True, elem_id="compose-similar")
        with gr.Accordion("The answer as the /compose API returns it", open=False):
            answer = gr.JSON(label="/compose", elem_id="compose-answer")
        # The last choice recorded in this page, so copying twice records once. A hidden box, not gr.State: a State
        # makes Gradio hold a heartbeat connection open for every page (and keep per-session state on the server).
        last = gr.Textbox(visible=False)

    k, engagement, recency, diversity = shared.ranking
    filled = [chips, similar, notes, chosen, picture]
    query = [draft, image, not_text, seed, weak, *shared.ranking]
    event = {"fn": handler.compose, "inputs": query, "outputs": [gallery, answer], **shared.model_bound}
    for trigger in (button.click(**event, api_name="compose"), draft.submit(**event, api_name=False)):
        trigger.success(handler.fill, [answer], filled, api_name=False, queue=False)
    # More like this: the chosen result becomes the seed; as an API endpoint it takes a tweet id.
    more.click(handler.more_like_this, [chosen, draft, not_text, weak, *shared.ranking], [gallery, answer],
               api_name="more_like_this", **shared.model_bound).success(
        lambda picked: picked, [chosen], [seed], api_name=False, queue=False).success(
        handler.fill, [answer], filled, api_name=False, queue=False)
    gallery.select(handler.choose, [answer], [chosen, picture], api_name=False, queue=False)
    preview_event = {"fn": handler.preview, "inputs": [draft, chips, answer], "outputs": [tweet, counter, intent],
                     "api_name": False, "queue": False, "show_progress": "hidden"}
    for source in (draft, chips):
        source.change(**preview_event)
    # Copying or posting the tweet confirms the choice (recorded when feedback is on).
    confirm = {"fn": handler.confirm, "inputs": [draft, chosen, chips, answer, seed, not_text, last],
               "outputs": [status, last], "api_name": False, "queue": False}
    copy.click(**confirm, js=before(COPY_ACTION, len(confirm["inputs"])))
    post.click(**confirm, js=before(POST_ACTION, len(confirm["inputs"])))
    share.click(handler.share, [draft, not_text, seed, image, k, engagement, recency, diversity], [link],
                api_name=False, queue=False).success(None, [link], [link], js=SHARE_JS, api_name=False,
                                                     queue=False)
    # A shared link: its query fills the tab and runs, with no click.
    demo.load(handler.open_link, None, [draft, not_text, seed, k, engagement, recency, diversity, gallery, answer,
                                        notes], api_name=False, **shared.model_bound).success(
        handler.fill_after_link, [answer], [chips, similar, chosen, picture], api_name=False, queue=False)
