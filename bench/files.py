"""Durable-file helpers shared by the results writer, cell logs, the CIFAR-10 download and saved
models."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
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


class NotRegularFileError(ValueError):
    """A path that is not a regular file (a folder, FIFO, device, socket) or larger than the
    reader's bound: refused before anything is read (a FIFO or /dev/zero would block or never
    end). `kind` says what it is: "folder", "FIFO", "device", "socket", "link", "too large"."""

    def __init__(self, path: str | os.PathLike, kind: str, limit: int | None = None):
        self.path, self.kind, self.limit = Path(path), kind, limit
        what = f"larger than {limit} bytes" if kind == "too large" else f"a {kind}"
        super().__init__(f"{path}: {what}, not a regular file")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def read_regular(path: str | os.PathLike, limit: int, *, follow_links: bool = True) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them. Untrusted paths: the file is
    opened without blocking (a FIFO never waits for a writer), its type and size are checked on
    the open descriptor before anything is read, and no more than `limit` bytes are read (a file
    growing meanwhile cannot exceed it). NotRegularFileError for anything else (and, with
    `follow_links=False`, for a symbolic link); FileNotFoundError and other OSErrors pass."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_links:
            raise NotRegularFileError(path, "link") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(path, _kind(info.st_mode))
        if info.st_size > limit:
            raise NotRegularFileError(path, "too large", limit)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotRegularFileError(path, "too large", limit)
    return data
