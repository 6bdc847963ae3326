"""Small helpers the test modules share."""

from __future__ import annotations

import hashlib
from pathlib import Path

# One implementation for the tests and the benchmarks' app harness; it lives there because the tests may import the
# benchmarks (tests/test_benchmarks.py does) but the benchmarks never import the tests.
from benchmarks.harness import free_port

__all__ = ["free_port", "tree_digest"]


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` and the sha256 of its bytes: what "same bytes" and "unchanged" mean for a tree."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(root).rglob("*")) if path.is_file()}
