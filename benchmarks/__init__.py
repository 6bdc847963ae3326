"""TweetMaker's benchmark runner: ``python benchmarks/run.py [--quick] [--out BENCHMARKS.md]``."""
