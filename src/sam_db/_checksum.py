"""Checksums of migration files: sha256 of the text with line endings normalised to LF.

Normalising means a checkout with CRLF endings (git autocrlf on Windows) is not reported as drift.
"""

from __future__ import annotations

import hashlib

ALGORITHM = "sha256"


def normalise(text: str) -> str:
    """``text`` with CRLF and lone CR turned into LF and a leading BOM removed."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    """Hex sha256 of the normalised ``text`` (UTF-8)."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()
