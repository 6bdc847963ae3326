"""The endpoint functions behind the tabs (and their API names), bound to the resources loaded at start.

A handler hands its inputs to the ``Recommender`` unchecked (the library checks them, under the app's
``QueryLimits``), formats what comes back, and lets ``user_errors`` turn a refusal into the page's message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from tweetmaker.search import QueryLimits
from tweetmaker.ui.boundary import user_errors
from tweetmaker.ui.formatting import breakdown_rows, gallery_items, hashtag_rows, hashtag_string

if TYPE_CHECKING:
    from tweetmaker.resources import Resources

DEFAULT_K = 8
MAX_K = 50  # the results slider's maximum, and the largest k an API caller may ask for


class Handlers:
    """The endpoint functions, bound to the resources loaded at start."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        # The app's recommender under the app's limits: the settings' longest draft, the slider's largest k.
        self.recommender = resources.recommender.with_limits(
            QueryLimits(max_text_chars=resources.settings.max_text_chars, max_k=MAX_K))

    @user_errors
    def text_to_image(self, text: str, k: int = DEFAULT_K, engagement: float = 0.0, recency: float = 0.0,
                      diversity: float = 0.0):
        results = self.recommender.text_to_images(text, k=k, engagement=engagement, recency=recency,
                                                  diversity=diversity)
        if not results:
            gr.Warning("No matching images in the index.")
        return gallery_items(results), breakdown_rows(results)

    @user_errors
    def image_to_hashtags(self, image: str, k: int = DEFAULT_K, engagement: float = 0.0, recency: float = 0.0,
                          diversity: float = 0.0):
        recommendation = self.recommender.image_to_hashtags(image, k=k, engagement=engagement, recency=recency,
                                                            diversity=diversity)
        if not recommendation.hashtags:
            gr.Info("No hashtag is a confident match for this image.")
        return (hashtag_rows(recommendation.hashtags), hashtag_string(recommendation.hashtags),
                gallery_items(recommendation.tweets))

    @user_errors
    def combined(self, text: str, image: str, balance: float = 0.5, k: int = DEFAULT_K, engagement: float = 0.0,
                 recency: float = 0.0, diversity: float = 0.0):
        recommendation = self.recommender.combined(text, image, text_weight=balance, k=k, engagement=engagement,
                                                   recency=recency, diversity=diversity)
        return (gallery_items(recommendation.tweets), hashtag_rows(recommendation.hashtags),
                hashtag_string(recommendation.hashtags))
