"""TweetMaker: recommend images, hashtags and similar tweets for a tweet being written.

Importing the package has no side effects: no downloads, no model loads, no heavy imports.
Each concern lives in its own module (``data``, ``synthetic``, ``towers``, ``losses``, ``metrics``,
``index``, ``search``, ``hub``, ``ui``, ``config``); import the one you need.
"""

__version__ = "0.1.0"
