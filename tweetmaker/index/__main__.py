"""``python -m tweetmaker.index ...``: see tweetmaker/index/cli.py."""

import sys

from tweetmaker.index.cli import main

sys.exit(main())
