"""What a cell reports while it runs (`CellProgress`), and `ProgressFanOut`, which hands every
report to several listeners. The cell (bench.train) reports; displays (bench.cli.progress), the
cell's log (bench.executors.base.CellLog) and live TensorBoard scalars listen. Imports nothing
heavy: the command lines and executors use it without torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.config import RunConfig


class CellProgress:
    """What a cell reports while it runs; this base ignores everything. A display (a terminal
    bar, plain-text lines: bench.cli.progress), a log (bench.executors.base.CellLog) or live
    scalars subclass it and override what they show. The cell calls, in order:

    start(cfg, total_steps, batch_size)  once the step plan is known (before the first step);
    step(epoch, step, steps_per_epoch, loss)  after every training step, `step` counted from 1
        within the epoch; `loss` is the step's training loss when the host read it (every step
        on the CPU, every SYNC_EVERY steps on CUDA), else None: never a reason to sync;
    phase(name, part, done, total)  before each part of an evaluation phase (`name`
        "evaluation" after each epoch, "robustness" at the end; `part` e.g. "val", "fog"),
        `done` parts of `total` finished; once more with part "" and done == total at its end;
    epoch(epoch, row)  after each epoch's evaluation, with its epochs.csv row (loss, accuracy);
    fail(text)  when the cell fails without raising (non-finite loss, out of memory): the
        traceback;
    close()  last, also when the cell fails (not when its configuration is refused up front).
    Nothing a progress object does changes what the cell computes.
    """

    def start(self, cfg: RunConfig, total_steps: int, batch_size: int) -> None:
        pass

    def step(self, epoch: int, step: int, steps_per_epoch: int, loss: float | None) -> None:
        pass

    def phase(self, name: str, part: str, done: int, total: int) -> None:
        pass

    def epoch(self, epoch: int, row: dict[str, Any]) -> None:
        pass

    def fail(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class ProgressFanOut(CellProgress):
    """Every report to each of `listeners`, in order (None entries are skipped)."""

    def __init__(self, listeners: Iterable[CellProgress | None]):
        self.listeners = [listener for listener in listeners if listener is not None]
        self.closed = False

    def start(self, cfg: RunConfig, total_steps: int, batch_size: int) -> None:
        for listener in self.listeners:
            listener.start(cfg, total_steps, batch_size)

    def step(self, epoch: int, step: int, steps_per_epoch: int, loss: float | None) -> None:
        for listener in self.listeners:
            listener.step(epoch, step, steps_per_epoch, loss)

    def phase(self, name: str, part: str, done: int, total: int) -> None:
        for listener in self.listeners:
            listener.phase(name, part, done, total)

    def epoch(self, epoch: int, row: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener.epoch(epoch, row)

    def fail(self, text: str) -> None:
        for listener in self.listeners:
            listener.fail(text)

    def close(self) -> None:
        """Close each listener once (a second call does nothing)."""
        if not self.closed:
            self.closed = True
            for listener in self.listeners:
                listener.close()
