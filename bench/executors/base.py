"""What every executor shares: one cell run that never raises (`run_cell`, `failed_result`) and
the one place results are written (`Recorder`). Only the calling process writes the results
folder: workers return small rows (bench.train.CellResult without the model), the driver records
them.

A cell never stops the sweep: an exception out of train_cell (or a worker that dies) becomes a
failed row whose `error` is the exception's type and message. KeyboardInterrupt still stops it;
the cells recorded so far stay, and rerunning the sweep resumes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.config import RunConfig

OnResult = Callable[[RunConfig, Any], None]
ERROR_CHARS = 500  # longest `error` field kept in runs.csv


class ExecutorError(RuntimeError):
    """An executor cannot run these cells as asked (missing Ray, unsupported option)."""


@dataclass(frozen=True)
class Option:
    """One executor option: a keyword argument of its run function, and a `regbench sweep run`
    flag (`flag`, default `--name-with-dashes`)."""

    name: str
    type: type  # bool (a switch, default False), int or str (default None: not given)
    default: Any
    help: str
    flag: str = ""

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Executor:
    """A way to run a sweep's cells: `run(cells, results, *, on_result, progress, **options)`
    records every cell's result in `results` (a locked bench.results.ResultsDir) through a
    Recorder, and takes exactly the keyword options declared in `options`."""

    name: str
    run: Callable[..., None]
    help: str
    options: tuple[Option, ...] = ()


# An option more than one executor takes, declared once.
CPUS_PER_CELL = Option("cpus_per_cell", int, None, "torch threads (and Ray CPUs) per cell")


# ---------------------------------------------------------------------------------------------
# One cell, never raising (except KeyboardInterrupt)


def run_cell(cfg: RunConfig, *, progress: bool = False, keep_model: bool = False) -> Any:
    """train_cell(cfg), with any exception turned into a failed CellResult."""
    started = time.time()
    try:
        from bench.train import train_cell

        return train_cell(cfg, progress=progress, keep_model=keep_model)
    except Exception as error:  # noqa: BLE001 - one bad cell must not kill the sweep
        return failed_result(cfg, error, started)


def failed_result(cfg: RunConfig, error: BaseException | str, started: float) -> Any:
    """A CellResult with status failed: the cell's configuration and environment, the reason."""
    from bench import provenance, rows

    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    try:
        row = rows.runs_row(cfg, provenance.environment())
    except Exception:  # noqa: BLE001 - still record the failure, with the config columns only
        row = rows.runs_row(cfg, build_regularizer=False)
    row.update(
        status="failed",
        error=" ".join(str(error).split())[:ERROR_CHARS],
        wall_s=round(time.time() - started, 3),
        started_at=provenance.started_at(started),
    )
    return rows.CellResult(row=row)


# ---------------------------------------------------------------------------------------------
# Recording: the one place results are written


class Recorder:
    """Writes each result, keeps the best model per protocol when asked, reports progress."""

    def __init__(self, results, on_result: OnResult | None, keep_best_model: bool):
        self.results = results
        self.on_result = on_result
        self.best_val: dict[str, float] | None = None
        if keep_best_model:
            from bench.model_io import save_model  # noqa: F401 - fail before any cell runs

            self.best_val = {}
            for row in results.runs():
                if row.get("status") == "ok" and row.get("val_acc"):
                    protocol, val = row["protocol"], float(row["val_acc"])
                    self.best_val[protocol] = max(val, self.best_val.get(protocol, val))

    def __call__(self, cfg: RunConfig, result: Any) -> None:
        model, result.model = result.model, None  # the model is large; never keep it around
        try:
            self.results.write(result)
        except Exception as error:  # noqa: BLE001 - a row the writer refuses must not end
            # the sweep: record the cell as failed with the reason instead (the row comes first,
            # so a kill never leaves a best model of a cell that runs.csv does not know).
            reason = f"recording failed: {type(error).__name__}: {error}"
            result = failed_result(cfg, reason, time.time() - float(result.row.get("wall_s") or 0))
            self.results.write(result)
            model = None
        if self.best_val is not None and model is not None:
            try:
                self._maybe_save_model(cfg, result, model)
            except OSError as error:
                warnings.warn(
                    f"could not keep the model of cell {cfg.run_id}: {error}", stacklevel=2
                )
        if self.on_result is not None:
            self.on_result(cfg, result)

    def _maybe_save_model(self, cfg: RunConfig, result: Any, model: Any) -> None:
        val = result.row.get("val_acc")
        if result.row["status"] != "ok" or val is None or val != val:
            return
        if val <= self.best_val.get(cfg.protocol, float("-inf")):
            return
        from bench.model_io import save_model
        from bench.results import MODELS_DIR

        # save_model replaces the pair safely under a kill: the JSON records the weights' sha256
        # and moves in first, so a kill between the moves leaves a pair the loader refuses, and
        # the next lock of the results folder moves the staged weights in.
        save_model(model, cfg, result.row, self.results.path / MODELS_DIR / f"best-{cfg.protocol}")
        self.best_val[cfg.protocol] = val
