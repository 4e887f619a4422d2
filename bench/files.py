"""Durable-file helpers shared by the results writer, the CIFAR-10 download and saved models."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's contents, or a folder's entries (so that renames into it survive a crash),
    to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_hexdigest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest (`hashlib` algorithm name, e.g. "md5", "sha256") of a file's bytes, read in
    1 MiB chunks (`hashlib.file_digest` needs Python 3.11)."""
    digest = hashlib.new(algorithm)
    with open(Path(path), "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
