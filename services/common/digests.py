"""The SHA-256 of what is left of a file, read a block at a time: a snapshot's or a checkpoint's body is checked
against the digest in its header without being held in memory whole (it is then unpickled from the same file)."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

BLOCK = 1 << 20
"""Bytes read at a time (also the read buffer the loaders open their files with)."""


def rest_digest(file: BinaryIO) -> bytes:
    """The hex SHA-256 of `file` from where it is to its end, as ASCII bytes (what the headers hold)."""
    digest = hashlib.sha256()
    while chunk := file.read(BLOCK):
        digest.update(chunk)
    return digest.hexdigest().encode()
