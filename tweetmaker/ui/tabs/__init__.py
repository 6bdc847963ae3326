"""One module per tab, each with a ``build(...)`` that lays the tab out and wires its events.

A tab that runs the model takes ``(handlers, shared)`` (``controls.Shared``: the ranking inputs and the
model-bound event options) and returns what other tabs follow; one that follows other tabs takes their components.

``tweetmaker.ui.blocks.build_demo`` calls them in page order; a new tab is a new module here and one line there.
"""
