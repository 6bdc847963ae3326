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
        """Images from tweets that fit a draft tweet, each with its tweet, and why each ranked where it did.

        Args:
            text: The draft tweet, a few words to a paragraph.
            k: How many results to return, 1 to 50.
            engagement: 0 to 1: favour tweets with many likes and retweets.
            recency: 0 to 1: favour recent tweets.
            diversity: 0 to 1: avoid near-duplicate results.

        Returns:
            The images with captions (tweet text and score), and a table of each result's score breakdown.
        """
        results = self.recommender.text_to_images(text, k=k, engagement=engagement, recency=recency,
                                                  diversity=diversity)
        if not results:
            gr.Warning("No matching images in the index.")
        return gallery_items(results), breakdown_rows(results)

    @user_errors
    def image_to_hashtags(self, image: str, k: int = DEFAULT_K, engagement: float = 0.0, recency: float = 0.0,
                          diversity: float = 0.0):
        """Hashtags for an image, voted by the corpus tweets whose images look most like it, and those tweets.

        Args:
            image: The image the tweet is about (JPEG, PNG, GIF or WebP).
            k: How many results to return, 1 to 50.
            engagement: 0 to 1: favour tweets with many likes and retweets.
            recency: 0 to 1: favour recent tweets.
            diversity: 0 to 1: avoid near-duplicate results.

        Returns:
            A table of hashtags with scores, the hashtags copy-ready ("#AI #Robots"), and the similar tweets' images.
        """
        recommendation = self.recommender.image_to_hashtags(image, k=k, engagement=engagement, recency=recency,
                                                            diversity=diversity)
        if not recommendation.hashtags:
            gr.Info("No hashtag is a confident match for this image.")
        return (hashtag_rows(recommendation.hashtags), hashtag_string(recommendation.hashtags),
                gallery_items(recommendation.tweets))

    @user_errors
    def combined(self, text: str, image: str, balance: float = 0.5, k: int = DEFAULT_K, engagement: float = 0.0,
                 recency: float = 0.0, diversity: float = 0.0):
        """Images and hashtags for a draft and an image together, mixed by a balance.

        Args:
            text: The draft tweet ("" to search by the image alone).
            image: Optional image the tweet is about.
            balance: 0 to 1: 0 searches by the image alone, 1 by the text alone.
            k: How many results to return, 1 to 50.
            engagement: 0 to 1: favour tweets with many likes and retweets.
            recency: 0 to 1: favour recent tweets.
            diversity: 0 to 1: avoid near-duplicate results.

        Returns:
            The images with captions, a table of hashtags with scores, and the hashtags copy-ready.
        """
        recommendation = self.recommender.combined(text, image, text_weight=balance, k=k, engagement=engagement,
                                                   recency=recency, diversity=diversity)
        return (gallery_items(recommendation.tweets), hashtag_rows(recommendation.hashtags),
                hashtag_string(recommendation.hashtags))
