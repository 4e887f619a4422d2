"""A fake GPU on the CPU (bench.device's seam): the tests' way into the GPU branches.

`FakeGpu` computes on the CPU but says it is asynchronous (so a cell takes the CUDA branches:
sampled regularizer timing, a loss read every SYNC_EVERY steps, one synchronize per epoch), has
the memory it is given, and can run out of it: its `oom_at_timer`-th timer start raises
torch.OutOfMemoryError, as a GPU that runs out inside a training step would. It counts the calls
the seam gets. `install(monkeypatch, make)` makes bench.device.select return `make()` for every
cell of this process.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench import device as devices

OOM_TEXT = "CUDA out of memory. Tried to allocate 2.00 GiB (fake device)"


class FakeGpu(devices.Device):
    asynchronous = True

    def __init__(
        self, total_mb: float = 1024.0, peak_mb: float = 100.0, oom_at_timer: int = 0,
        error: BaseException | None = None,
    ) -> None:  # fmt: skip
        super().__init__("cpu")
        self.total_mb, self.peak_mb = total_mb, peak_mb
        self.oom_at_timer = oom_at_timer  # 0: never
        self.error = error  # raised instead of an out-of-memory error, when given
        self.timers = self.synchronized = self.released = self.resets = 0

    def synchronize(self) -> None:
        self.synchronized += 1

    def timer(self) -> devices.HostTimer:
        self.timers += 1
        if self.oom_at_timer and self.timers == self.oom_at_timer:
            raise self.error or torch.OutOfMemoryError(OOM_TEXT)
        return devices.HostTimer()

    def reset_peak_memory(self) -> None:
        self.resets += 1

    def peak_memory_mb(self) -> float:
        return self.peak_mb

    def total_memory_mb(self) -> float:
        return self.total_mb

    def free_memory_mb(self) -> float:
        return self.total_mb - self.peak_mb

    def release_memory(self) -> None:
        self.released += 1

    def is_out_of_memory(self, error: BaseException) -> bool:
        return isinstance(error, torch.OutOfMemoryError)

    def describe(self) -> str:
        return "Fake GPU"


def install(monkeypatch, make: Callable[[], devices.Device]) -> list[devices.Device]:
    """bench.device.select returns make() from now on; returns the list of devices made."""
    made: list[devices.Device] = []

    def select(name: str) -> devices.Device:
        made.append(make())
        return made[-1]

    monkeypatch.setattr(devices, "select", select)
    return made
