"""The device seam: the few things the training path does differently on a GPU and on the CPU.

A cell talks to its device only through a `Device`: which torch device it is, how to wait for
queued work (`synchronize`), how to time a stretch of queued work (`timer`: CUDA events on a
GPU, the host clock on the CPU), how much memory it has and used (`total_memory_mb`,
`free_memory_mb`, `reset_peak_memory`, `peak_memory_mb`), whether an exception means it ran out
of memory (`is_out_of_memory`) and how to give cached memory back after one (`release_memory`).
Everything else in a cell is one code path on every device.

`select(name)` gives the device a configuration asks for ("auto" | "cpu" | "cuda");
`cuda_device_count()` is what the local executor plans one worker per GPU from. Tests replace
`select` with a fake (tests/bench/fake_device.py) to exercise the GPU branches on the CPU: its
memory, its out-of-memory errors, its device count.
"""

from __future__ import annotations

import os
import resource
import time

import torch

# Text of the errors torch raises when the CPU allocator fails (there is no dedicated type).
CPU_OOM_TEXT = ("DefaultCPUAllocator: can't allocate memory", "not enough memory")


class HostTimer:
    """Times a stretch of work on the host clock (the CPU runs it synchronously)."""

    def __init__(self) -> None:
        self.began = self.ended = 0.0

    def start(self) -> None:
        self.began = time.perf_counter()

    def stop(self) -> None:
        self.ended = time.perf_counter()

    def seconds(self) -> float:
        return self.ended - self.began


class CudaTimer:
    """Times a stretch of queued GPU work with two CUDA events; `seconds()` is valid once the
    device was synchronized after `stop()` (reading it earlier would wait for the GPU)."""

    def __init__(self) -> None:
        self.begin = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self.begin.record()

    def stop(self) -> None:
        self.end.record()

    def seconds(self) -> float:
        return self.begin.elapsed_time(self.end) / 1000


class Device:
    """The CPU: work runs synchronously, the peak memory is the process's peak resident set."""

    # Whether queued work runs asynchronously (the host must synchronize to read a result),
    # so a training step avoids host reads and times only a sample of its steps.
    asynchronous = False

    def __init__(self, torch_device: torch.device | str = "cpu") -> None:
        self.torch = torch.device(torch_device)

    @property
    def type(self) -> str:
        return self.torch.type

    def synchronize(self) -> None:
        """Wait until the work queued on the device is done (nothing to wait for here)."""

    def timer(self) -> HostTimer | CudaTimer:
        return HostTimer()

    def reset_peak_memory(self) -> None:
        """Start counting peak memory from now (the CPU's peak is the process's: no reset)."""

    def peak_memory_mb(self) -> float:
        """Peak memory used (MiB): the process's peak resident set on the CPU."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

    def total_memory_mb(self) -> float:
        """The memory the device has (MiB): physical RAM on the CPU."""
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20

    def free_memory_mb(self) -> float:
        """The memory free now (MiB): available physical RAM on the CPU."""
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / 2**20

    def release_memory(self) -> None:
        """Give cached memory back after a failure (nothing cached on the CPU)."""

    def is_out_of_memory(self, error: BaseException) -> bool:
        """Whether `error` means the device ran out of memory."""
        if isinstance(error, torch.OutOfMemoryError | MemoryError):
            return True
        return isinstance(error, RuntimeError) and any(t in str(error) for t in CPU_OOM_TEXT)

    def describe(self) -> str:
        """How a message names the device: 'cpu' or the GPU's name."""
        return self.type


class CudaDevice(Device):
    """A CUDA GPU: work is queued, timed with events, and its memory is the allocator's."""

    asynchronous = True

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.torch)

    def timer(self) -> CudaTimer:
        return CudaTimer()

    def reset_peak_memory(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.torch)

    def peak_memory_mb(self) -> float:
        return torch.cuda.max_memory_allocated(self.torch) / 2**20

    def total_memory_mb(self) -> float:
        return torch.cuda.get_device_properties(self.torch).total_memory / 2**20

    def free_memory_mb(self) -> float:
        return torch.cuda.mem_get_info(self.torch)[0] / 2**20

    def release_memory(self) -> None:
        torch.cuda.empty_cache()

    def is_out_of_memory(self, error: BaseException) -> bool:
        return isinstance(error, torch.OutOfMemoryError)

    def describe(self) -> str:
        return torch.cuda.get_device_name(self.torch)


def cuda_device_count() -> int:
    """CUDA GPUs this process sees (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def select(name: str) -> Device:
    """The device a configuration names: "auto" (a GPU when torch sees one, else the CPU),
    "cpu" or "cuda"; ValueError naming the fix when "cuda" is asked for and absent."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu")
        return CudaDevice("cuda")
    return Device(name)


def as_device(where: Device | torch.device | str) -> Device:
    """`where` as a Device: a Device as is, a torch device (or its name) wrapped."""
    if isinstance(where, Device):
        return where
    where = torch.device(where)
    return CudaDevice(where) if where.type == "cuda" else Device(where)
