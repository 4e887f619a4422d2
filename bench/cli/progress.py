"""The command lines' display of a running cell (a bench.progress.CellProgress): a tqdm bar when
stderr is a terminal; plain-text lines, no cursor codes, when it is not (a redirected log, CI).

    cell_display(cfg)   the display for one cell (pass `cell_display` as an executor's
                        `progress`, or `cell_display(cfg)` as train_cell's)
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from bench.config import RunConfig
from bench.progress import CellProgress

PLAIN_EVERY_S = 30.0  # plain-text mode: at most one training-step line per this many seconds


def stderr_is_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def cell_display(cfg: RunConfig) -> CellProgress:
    """A tqdm bar on a terminal, plain-text lines on stderr otherwise."""
    return CellBar(cfg) if stderr_is_terminal() else CellLines(cfg)


class CellBar(CellProgress):
    """One tqdm bar per cell, counted in training images (its rate is the live img/s); the
    evaluation and robustness phases show in its description."""

    def __init__(self, cfg: RunConfig):
        self.cfg, self.bar, self.batch_size = cfg, None, 0
        self.label = f"{cfg.run_id} {cfg.regularizer}/{cfg.protocol}"

    def start(self, cfg: RunConfig, total_steps: int, batch_size: int) -> None:
        from tqdm.auto import tqdm

        self.batch_size = batch_size
        self.bar = tqdm(total=total_steps * batch_size, unit="img", unit_scale=True, leave=False,
                        desc=self.label, dynamic_ncols=True)  # fmt: skip

    def step(self, epoch: int, step: int, steps_per_epoch: int, loss: float | None) -> None:
        if self.bar is None:
            return
        if loss is not None:
            self.bar.set_postfix(epoch=f"{epoch}/{self.cfg.epochs}",
                                 step=f"{step}/{steps_per_epoch}", loss=f"{loss:.3f}",
                                 refresh=False)  # fmt: skip
        self.bar.update(self.batch_size)

    def phase(self, name: str, part: str, done: int, total: int) -> None:
        if self.bar is not None:
            what = f"{name} {part} {done + 1}/{total}" if part else self.label
            self.bar.set_description(f"{self.label} {what}" if part else what, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class CellLines(CellProgress):
    """Plain-text progress lines (no cursor codes): the start, a training line at most every
    PLAIN_EVERY_S seconds, each epoch's losses and accuracies, each evaluation and robustness
    part."""

    def __init__(self, cfg: RunConfig, stream: IO[str] | None = None):
        self.cfg, self.stream = cfg, stream
        self.t0 = self.last = time.perf_counter()

    def _say(self, text: str) -> None:
        stream = self.stream or sys.stderr
        print(f"{self.cfg.run_id} [{time.perf_counter() - self.t0:7.1f}s] {text}", file=stream,
              flush=True)  # fmt: skip

    def start(self, cfg: RunConfig, total_steps: int, batch_size: int) -> None:
        self._say(f"training: {cfg.epochs} epochs, {total_steps} steps of {batch_size} images")

    def step(self, epoch: int, step: int, steps_per_epoch: int, loss: float | None) -> None:
        now = time.perf_counter()
        if loss is not None and now - self.last >= PLAIN_EVERY_S:
            self.last = now
            self._say(f"epoch {epoch}/{self.cfg.epochs} step {step}/{steps_per_epoch} "
                      f"loss {loss:.4f}")  # fmt: skip

    def phase(self, name: str, part: str, done: int, total: int) -> None:
        if part:
            self._say(f"{name} {done + 1}/{total}: {part}")

    def epoch(self, epoch: int, row: dict[str, Any]) -> None:
        shown = ("train_loss_aug", "train_acc", "val_acc", "test_acc")
        values = " ".join(f"{k} {row[k]:.4f}" for k in shown if isinstance(row.get(k), float))
        self._say(f"epoch {epoch}/{self.cfg.epochs} done: {values}")
