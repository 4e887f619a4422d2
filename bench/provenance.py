"""Where and when a cell ran: code version, device, library versions, start time, peak memory.

`environment(device)` gives the environment columns of a runs.csv row (bench.schema,
kind "environment"); `peak_memory_mb` is read when the cell ends.
"""

from __future__ import annotations

import functools
import os
import platform
import resource
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

# The checkout the code runs from (its git commit is the cell's provenance).
REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD of the project checkout, with '-dirty' when it has uncommitted changes; '' if none.
    Read once per process: the code that runs is the code imported at start. A copy without
    .git (e.g. a tree synced to a GPU box) can pass it in REGBENCH_GIT_COMMIT."""
    if os.environ.get("REGBENCH_GIT_COMMIT"):
        return os.environ["REGBENCH_GIT_COMMIT"]
    try:
        root = str(REPO_ROOT)
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()  # fmt: skip
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def device_name(device: torch.device) -> str:
    """The GPU's name, or cpu:<machine>x<threads>."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu:{platform.machine()}x{torch.get_num_threads()}"


def library_versions() -> dict[str, str]:
    """torch_version and timm_version."""
    import timm

    return {"torch_version": torch.__version__, "timm_version": timm.__version__}


def num_gpus_visible() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def started_at(timestamp: float | None = None) -> str:
    """A POSIX time (default: now) as UTC ISO 8601 to the second."""
    moment = datetime.now(timezone.utc) if timestamp is None else (
        datetime.fromtimestamp(timestamp, timezone.utc))  # fmt: skip
    return moment.isoformat(timespec="seconds")


def environment(device: torch.device | None = None, started: float | None = None) -> dict[str, Any]:
    """The environment columns of a runs.csv row: device (None when no device was chosen),
    library versions, git commit, start time (`started`, default now), GPUs visible; the data's
    source and fingerprint empty until the cell reads its data."""
    return {
        "device": None if device is None else device_name(device),
        **library_versions(),
        "git_commit": git_commit(),
        "started_at": started_at(started),
        "num_gpus_visible": num_gpus_visible(),
        # the data's provenance, known once it is read (bench.train.set_up fills them)
        "data_source": None,
        "data_fingerprint": None,
    }


def reset_peak_memory(device: torch.device) -> None:
    """Start counting peak memory from now (CUDA; the CPU's peak is the process's)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated since the last reset, or the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
