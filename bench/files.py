"""Durable-file helpers shared by the results writer, cell logs, the CIFAR-10 download and saved
models."""

from __future__ import annotations

import hashlib
import os
import tempfile
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


def atomic_write(target: Path, data: bytes, *, prefix: str, suffix: str = "") -> None:
    """Replace `target` with `data` all at once: a temporary file beside it (named
    `prefix` + mkstemp's 8 random characters + `suffix`, so lock-time repairs can tell their own
    leftovers), fsync, `os.replace`, then fsync the folder so the rename itself is durable."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(target.parent)
