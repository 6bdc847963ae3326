"""TweetMaker's Space entry: settings, resources loaded once, the Gradio UI, launch.

    python app.py [--towers DIR_OR_ID] [--dataset SRC] [--index_dir DIR] [--port N] [--demo] ...

Every flag can also be set by an environment variable (TWEETMAKER_TOWERS, ...); see `python app.py --help`.
With no towers reachable (offline, nothing local) it serves a synthetic offline demo and says so.
"""

from __future__ import annotations

import os
import sys

# Before gradio/chromadb are imported: no usage analytics or telemetry leave the machine.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from tweetmaker.config import parse_settings  # noqa: E402
from tweetmaker.errors import TweetMakerError  # noqa: E402
from tweetmaker.resources import load_resources  # noqa: E402
from tweetmaker.ui import build_demo, launch_demo  # noqa: E402


def main(argv: list[str] | None = None, prevent_thread_lock: bool = False):
    settings = parse_settings(argv)
    resources = load_resources(settings)
    demo = build_demo(resources)
    launch_demo(demo, resources, prevent_thread_lock=prevent_thread_lock)
    return demo, resources


if __name__ == "__main__":
    try:
        main()
    except TweetMakerError as error:
        # What to change is in the message; a traceback would only hide it.
        sys.exit(f"error: {error}")
