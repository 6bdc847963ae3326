"""Is a source a local path or a Hugging Face Hub id? One answer for towers, data sets and indexes.

Hub ids are ``name`` or ``owner/name``. Anything else (an existing path, a leading ``.``, ``/`` or ``~``, more than
one ``/``, a Windows backslash or drive letter) is a local path, so a typo in a directory is reported as a missing
directory rather than sent to the Hub as a repo id.
"""

from __future__ import annotations

import re
from pathlib import Path

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def is_local_source(source: str | Path) -> bool:
    """Whether ``source`` names a local file or directory (existing or not) rather than a Hub repo id."""
    if isinstance(source, Path):
        return True
    text = str(source)
    if not text:
        return False
    return (
        Path(text).expanduser().exists()
        or text.startswith((".", "/", "~"))
        or text.count("/") > 1
        or "\\" in text
        or bool(_WINDOWS_DRIVE.match(text))
    )
