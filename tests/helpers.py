"""Small helpers the test modules share."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (servers the tests start bind to loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` and the sha256 of its bytes: what "same bytes" and "unchanged" mean for a tree."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(root).rglob("*")) if path.is_file()}
