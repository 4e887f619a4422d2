"""One cell: data -> model -> training loop -> metrics -> rows (work in progress)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.config import RunConfig


@dataclass
class CellResult:
    """What one finished cell produced: rows for each results file (columns in bench.schema)."""

    row: dict[str, Any]  # one runs.csv row; row["status"] is "ok" or "failed"
    epochs: list[dict[str, Any]] = field(default_factory=list)  # epochs.csv rows
    calibration: list[dict[str, Any]] = field(default_factory=list)  # calibration.csv rows
    robustness: list[dict[str, Any]] = field(default_factory=list)  # robustness.csv rows
    test_logits: Any = None  # numpy float16 [N, 10] when cfg.save_logits, else None
    model: Any = None  # the trained torch module when train_cell(keep_model=True)


def preflight(cfg: RunConfig) -> None:
    """Fail fast (ValueError naming the fix) on anything that would fail later: bad config,
    unknown backbone, missing data, train_size larger than available, unreadable weights."""
    raise NotImplementedError


def train_cell(cfg: RunConfig, *, progress: bool = True, keep_model: bool = False) -> CellResult:
    """Train and measure one cell. Never raises for failures *during* training (non-finite loss,
    out of memory): those return a CellResult with status "failed" and the reason in row["error"].
    """
    raise NotImplementedError
