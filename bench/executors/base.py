"""What every executor shares: one cell run that never raises (`run_cell`, `failed_result`),
the cell's log (`CellLog`) and live scalars (`TensorBoardScalars`), and the one place results are
written (`Recorder`). The results files are written by the driver alone: workers return small
results (bench.rows.CellResult without the model, with the log's text), the driver records them
under the folder's lock.

A cell never stops the sweep: an exception out of train_cell (or a worker that dies) becomes a
failed row whose `error` is the exception's type and message, and whose `log` column points to
logs/<run_id>.log with the full traceback. KeyboardInterrupt still stops it; the cells recorded so
far stay, and rerunning the sweep resumes. A full disk (ENOSPC, EFBIG, EDQUOT) while recording
stops the sweep too (DiskFullError), without a failed row for the cell that finished.

The cell's log, logs/<run_id>.log: its configuration, then plain-text progress (sampled training
steps with the loss, one line per epoch with loss and accuracy, one per part of the evaluation and
robustness phases), then the traceback of a failure, then a last line `cell <run_id> finished:
ok|failed ...`. While the cell runs, the process running it appends to that file (truncated at the
start: a rerun overwrites it), where the results folder is visible to it (`LiveFiles`); when the
driver records the cell it replaces the file whole (temporary file + os.replace) with the text
the cell returned, before writing the row. A log without the last line is an attempt that was
killed (or is still running): its cell has no row, and its rerun overwrites the log.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from bench.arms import arm_of
from bench.config import RunConfig
from bench.progress import CellProgress, ProgressFanOut
from bench.results import ResultsError, register_repair, safe_path

OnResult = Callable[[RunConfig, Any], None]
# An executor's `progress`: a display per cell (e.g. bench.cli.progress.cell_display), or None.
DisplayFactory = Callable[[RunConfig], CellProgress]
ERROR_CHARS = 500  # longest `error` field kept in runs.csv
LOGS_DIR = "logs"  # <results>/logs/<run_id>.log, one per cell
TENSORBOARD_DIR = "tensorboard"  # <results>/tensorboard/<run_id>/, with --tensorboard
TMP_PREFIX = ".tmp-"  # the log writer's temporary files (left only by a kill; removed at lock)
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
STEP_LINES_PER_EPOCH = 5  # training-step lines a log keeps per epoch (plus the epoch's line)
MOVE_AWAY = "move it away, or use another --results-dir"


class ExecutorError(RuntimeError):
    """An executor cannot run these cells as asked (missing Ray, unsupported option)."""


class DiskFullError(ExecutorError):
    """The disk holding the results folder is full (or a file or quota limit was hit) while a
    cell was recorded: the sweep stops; the rows written so far stay; a rerun continues."""

    def __init__(self, folder: Path, run_id: str, error: OSError):
        reason = os.strerror(error.errno) if error.errno else str(error)
        super().__init__(
            f"{folder}: {reason} while recording cell {run_id}; the sweep stopped and every "
            f"cell recorded before it is kept: free space there, then rerun the same command "
            f"to resume"
        )
        self.folder, self.run_id = folder, run_id


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` (or an exception it was raised from) is an OSError for a full disk, a
    file too large or an exhausted quota."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return True
        error = error.__cause__ or error.__context__
    return False


def check_tensorboard(enabled: bool) -> None:
    """--tensorboard needs the tensorboard package (torch.utils.tensorboard writes through it)."""
    if not enabled:
        return
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ExecutorError(
            "--tensorboard needs the tensorboard package: pip install tensorboard"
        ) from None


@dataclass(frozen=True)
class Option:
    """One executor option: a keyword argument of its run function, and a `regbench sweep run`
    flag (`flag`, default `--name-with-dashes`)."""

    name: str
    type: type  # bool (a switch, default False), int or str (default None: not given)
    default: Any
    help: str
    flag: str = ""
    check: Callable[[Any], None] | None = None  # raises ExecutorError on a value it refuses

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
    requires: Callable[[], None] | None = None  # raises ExecutorError when it cannot run here
    # Whether, with these (checked) options, the cells run on this machine: then cpus_per_cell
    # is bounded by its CPU count (check_cpus_per_cell). Default: yes.
    runs_here: Callable[[dict[str, Any]], bool] = lambda options: True


# Options more than one executor takes, declared once.
def at_least(flag: str, minimum: int) -> Callable[[Any], None]:
    """An `Option.check` for a count: None (not given) or an integer >= `minimum`."""

    def check(value: int | None) -> None:
        if value is not None and value < minimum:
            raise ExecutorError(f"{flag}: expected an integer >= {minimum}, got {value}")

    return check


def in_range(flag: str, minimum: int, maximum: int, why: str) -> Callable[[Any], None]:
    """An option check: an integer in [minimum, maximum] (`why`: what the maximum stands for)."""

    def check(value: int | None) -> None:
        if value is not None and not minimum <= value <= maximum:
            raise ExecutorError(
                f"{flag}: expected an integer >= {minimum} and <= {maximum} ({why}), got {value}"
            )

    return check


# The most CPUs one cell may ask for on a cluster node (the largest have a few hundred); cells
# that run on this machine get at most os.cpu_count().
MAX_CPUS_PER_CELL = 1024


def check_cpus_per_cell(value: int | None, here: bool) -> None:
    """1 <= value <= this machine's CPUs (os.cpu_count()) when the cells run `here`, else
    MAX_CPUS_PER_CELL. torch given 100,000 threads crashes (a segfault in the data split,
    libgomp out of memory) and Ray waits forever on a task no node can take."""
    cpus = (os.cpu_count() or 1) if here else MAX_CPUS_PER_CELL
    where = "this machine's CPUs, os.cpu_count()" if here else "CPUs of one cluster node"
    if value is not None and not 1 <= value <= cpus:
        raise ExecutorError(
            f"--cpus-per-cell: expected an integer >= 1 and <= {cpus} ({where}), got {value}"
        )


CPUS_PER_CELL = Option(
    "cpus_per_cell", int, None, "torch threads (and Ray CPUs, SLURM cpus-per-task) per cell; at "
    "most this machine's CPU count where the cells run here",
)  # fmt: skip
TENSORBOARD = Option(
    "tensorboard", bool, False,
    "live TensorBoard scalars and HParams per cell in <results>/tensorboard/<arm>_<protocol>_"
    "..._<run_id>/ (pip install "
    "tensorboard; view with: tensorboard --logdir <results>/tensorboard)",
    check=check_tensorboard,
)  # fmt: skip


@dataclass(frozen=True)
class LiveFiles:
    """Where the process running a cell writes while it runs: the live log and, with
    `tensorboard`, the scalars. `folder` is the results folder as the driver sees it; a worker
    writes only where <folder>/logs (or <folder>/tensorboard) already exists, so a worker on a
    machine that does not share the folder writes nothing (its log still comes back with the
    result)."""

    folder: str
    tensorboard: bool = False

    @classmethod
    def prepare(cls, results, tensorboard: bool = False) -> LiveFiles:
        """Create the subfolders in the driver (under the lock) and describe them. A link out
        of the results folder there raises bench.results.UnsafePathError."""
        folder = Path(results.path).resolve()
        safe_path(folder, LOGS_DIR, folder=True, create=True)
        if tensorboard:
            safe_path(folder, TENSORBOARD_DIR, folder=True, create=True)
        return cls(str(folder), tensorboard)

    def log_path(self, cfg: RunConfig) -> Path | None:
        """logs/<run_id>.log where it can be written without following a link (a link to
        inside the folder is removed first); None where the folder is not visible or unsafe."""
        if not (Path(self.folder) / LOGS_DIR).is_dir():
            return None
        try:
            return safe_path(self.folder, LOGS_DIR, f"{cfg.run_id}.log", create=True)
        except (ResultsError, OSError):
            return None

    def tensorboard_path(self, cfg: RunConfig) -> Path | None:
        """tensorboard/<tensorboard_run_name>/ (created; a link to inside replaced by a real
        folder); None without --tensorboard or where the folder is not visible. A link out of
        the folder raises bench.results.UnsafePathError."""
        board = Path(self.folder) / TENSORBOARD_DIR
        if not (self.tensorboard and board.is_dir()):
            return None
        return safe_path(
            self.folder, TENSORBOARD_DIR, tensorboard_run_name(cfg), folder=True, create=True
        )


def tensorboard_run_name(cfg: RunConfig) -> str:
    """A cell's TensorBoard run folder: arm, scope (protocol, training size), seed, lr, then the
    run_id that makes it unique, e.g. `cutmix(alpha=1.0)_frozen_n10pc_seed0_lr0.05_2900cdf7fdb8`.
    Characters other than letters, digits and `.,=()+-` become `_` (a file name, never a path)."""
    size = f"{cfg.train_per_class}pc" if cfg.train_per_class else str(cfg.train_size or "all")
    name = f"{arm_of(cfg).label}_{cfg.protocol}_n{size}_seed{cfg.seed}_lr{cfg.lr:g}_{cfg.run_id}"
    return re.sub(r"[^A-Za-z0-9.,=()+-]", "_", name)[-200:]


def tensorboard_hparams(cfg: RunConfig) -> dict[str, Any]:
    """The cell's hyperparameters for TensorBoard's HParams tab: the arm, scope and training
    settings as plain values, regularizer parameters as `reg.<name>` (non-scalars as text)."""
    hparams: dict[str, Any] = {"arm": arm_of(cfg).label, "run_id": cfg.run_id}
    for name in ("regularizer", "protocol", "backbone", "train_size", "train_per_class",
                 "image_size", "epochs", "train_steps", "batch_size", "optimizer", "lr",
                 "weight_decay", "label_smoothing", "unfreeze_at", "seed", "data_seed"):  # fmt: skip
        hparams[name] = getattr(cfg, name)
    for name, value in sorted(cfg.regularizer_params.items()):
        scalar = isinstance(value, int | float | str | bool)
        hparams[f"reg.{name}"] = value if scalar else json.dumps(value, sort_keys=True)
    return hparams


# ---------------------------------------------------------------------------------------------
# The cell's log and live scalars


class CellLog(CellProgress):
    """The text of one cell's log (see the module docstring), kept in memory and, when `path`
    is given, appended to that file as it grows (the file is truncated first). A live file that
    cannot be written is given up silently: the text still comes back with the result."""

    def __init__(self, cfg: RunConfig, path: Path | None = None):
        self.cfg = cfg
        self.lines: list[str] = []
        self.t0 = time.perf_counter()
        self.steps_per_line = 1
        self.file: IO[str] | None = None
        if path is not None:
            try:  # never through a link (O_NOFOLLOW), never waiting on a FIFO (O_NONBLOCK)
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
                fd = os.open(path, flags, 0o644)
                self.file = open(fd, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            except OSError:
                self.file = None
        fields = sorted(asdict(cfg).items())
        config = [
            f"{key} = {json.dumps(value, sort_keys=True, default=str)}" for key, value in fields
        ]
        self._write(
            f"# regbench cell {cfg.run_id} (sweep {cfg.sweep}), host {socket.gethostname()}, "
            f"pid {os.getpid()}, started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}",
            "# complete only when it ends with a line 'cell <run_id> finished: ...'; without "
            "it, the attempt was killed or is still running",
            "configuration:",
            *("  " + line for line in config),
        )

    def _write(self, *lines: str) -> None:
        self.lines.extend(lines)
        if self.file is not None:
            try:
                self.file.write("".join(line + "\n" for line in lines))
                self.file.flush()
            except OSError:  # full disk, gone folder: the driver writes the whole log later
                self._close_file()

    def _close_file(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()

    def _say(self, text: str) -> None:
        self._write(f"[{time.perf_counter() - self.t0:8.1f}s] {text}")

    def start(self, cfg: RunConfig, total_steps: int, batch_size: int) -> None:
        per_epoch = max(1, total_steps // max(1, cfg.epochs))
        self.steps_per_line = max(1, per_epoch // STEP_LINES_PER_EPOCH)
        self._say(f"training: {cfg.epochs} epochs, {total_steps} steps of {batch_size} images")

    def step(self, epoch: int, step: int, steps_per_epoch: int, loss: float | None) -> None:
        if loss is not None and (step % self.steps_per_line == 0 or step == steps_per_epoch):
            self._say(
                f"epoch {epoch}/{self.cfg.epochs} step {step}/{steps_per_epoch} loss {loss:.4f}"
            )

    def phase(self, name: str, part: str, done: int, total: int) -> None:
        self._say(f"{name} {done + 1}/{total}: {part}" if part else f"{name} done")

    def epoch(self, epoch: int, row: dict[str, Any]) -> None:
        shown = ("train_loss_aug", "train_acc", "val_acc", "test_acc", "test_loss", "test_ece")
        values = " ".join(
            f"{key} {row[key]:.4f}" for key in shown if isinstance(row.get(key), float)
        )
        self._say(f"epoch {epoch}/{self.cfg.epochs} done: {values} lr {row.get('lr', 0):.3g}")

    def fail(self, text: str) -> None:
        self._write("traceback:", *("  " + line for line in text.rstrip().splitlines()))

    def finish(self, row: dict[str, Any]) -> None:
        """The last line: the cell's status and its error or headline numbers."""
        if row.get("status") == "ok":
            detail = " ".join(
                f"{key} {row[key]:.4f}" for key in ("test_acc", "test_ece")
                if isinstance(row.get(key), float)
            )  # fmt: skip
        else:
            detail = str(row.get("error") or "")
        self._say(f"cell {self.cfg.run_id} finished: {row.get('status')} {detail}".rstrip())
        self._close_file()

    def close(self) -> None:
        pass  # the file stays open for finish(): the traceback and the last line come later

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


class TensorBoardScalars(CellProgress):
    """Live scalars of one cell for TensorBoard in `folder` (its event files of an earlier
    attempt removed first): the training loss per step where it was read, the epoch's
    metrics per epoch; with `cfg`, its hyperparameters (`tensorboard_hparams`) for the HParams
    tab, whose metrics are the epoch scalars HPARAM_METRICS."""

    HPARAM_METRICS = ("epoch/val_acc", "epoch/test_acc", "epoch/test_ece", "epoch/train_acc")

    EPOCH_SCALARS = ("train_loss_aug", "train_acc", "train_loss", "val_acc", "val_loss",
                     "test_acc", "test_loss", "test_ece", "lr", "images_per_s")  # fmt: skip

    def __init__(self, folder: Path, cfg: RunConfig | None = None):
        from torch.utils.tensorboard import SummaryWriter

        if folder.is_symlink() or not folder.is_dir():  # made by LiveFiles.tensorboard_path
            raise ResultsError(f"{folder}: not a folder; {MOVE_AWAY}")
        for old in folder.glob("events.out.tfevents.*"):
            if old.is_file() and not old.is_symlink():
                old.unlink()
        self.writer = SummaryWriter(log_dir=str(folder))
        self.global_step = 0
        if cfg is not None:
            from torch.utils.tensorboard.summary import hparams

            # What SummaryWriter.add_hparams writes, into this run's own file (add_hparams
            # would open a second run folder); the metrics are the epoch scalars below.
            metrics = dict.fromkeys(self.HPARAM_METRICS, 0.0)
            file_writer = self.writer._get_file_writer()
            for summary in hparams(tensorboard_hparams(cfg), metrics):
                file_writer.add_summary(summary)

    def step(self, epoch: int, step: int, steps_per_epoch: int, loss: float | None) -> None:
        self.global_step = (epoch - 1) * steps_per_epoch + step
        if loss is not None:
            self.writer.add_scalar("train/loss_step", loss, self.global_step)

    def epoch(self, epoch: int, row: dict[str, Any]) -> None:
        for key in self.EPOCH_SCALARS:
            if isinstance(row.get(key), int | float):
                self.writer.add_scalar(f"epoch/{key}", row[key], epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


# ---------------------------------------------------------------------------------------------
# One cell, never raising (except KeyboardInterrupt)


def run_cell(
    cfg: RunConfig,
    *,
    progress: DisplayFactory | bool | None = None,
    keep_model: bool = False,
    live: LiveFiles | None = None,
) -> Any:
    """train_cell(cfg), with any exception turned into a failed CellResult; the result carries
    the cell's log text (`result.log`). `progress(cfg)` makes the cell's display (a bool: none);
    `live` says where to write the live log and TensorBoard scalars (None: nowhere)."""
    started = time.time()
    log = CellLog(cfg, live.log_path(cfg) if live is not None else None)
    display = progress(cfg) if callable(progress) else None
    board = live.tensorboard_path(cfg) if live is not None else None
    listeners = ProgressFanOut([log, display])
    try:
        if board is not None:
            listeners.listeners.append(TensorBoardScalars(board, cfg))
        from bench.train import train_cell

        result = train_cell(cfg, progress=listeners, keep_model=keep_model)
    except Exception as error:  # noqa: BLE001 - one bad cell must not kill the sweep
        log.fail(traceback.format_exc())
        result = failed_result(cfg, error, started)
    finally:
        listeners.close()
    log.finish(result.row)
    result.log = log.text()
    return result


def failed_result(cfg: RunConfig, error: BaseException | str, started: float) -> Any:
    """A CellResult with status failed: the cell's configuration and environment, the reason
    (no log text: the Recorder writes a short one when none comes back)."""
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
        """Record one cell: its log (logs/<run_id>.log, whole), then its rows; then its model
        when it is the best so far. Raises DiskFullError on a full disk (nothing of this cell
        recorded as failed)."""
        model, result.model = result.model, None  # the model is large; never keep it around
        try:
            self._write_log(cfg, result)
            self.results.write(result)
        except Exception as error:  # noqa: BLE001 - a row the writer refuses must not end
            # the sweep: record the cell as failed with the reason instead (the row comes first,
            # so a kill never leaves a best model of a cell that runs.csv does not know).
            if is_disk_full(error):
                raise DiskFullError(self.results.path, cfg.run_id, error) from error
            reason = f"recording failed: {type(error).__name__}: {error}"
            log = result.log + f"recording the cell failed:\n{traceback.format_exc()}"
            result = failed_result(cfg, reason, time.time() - float(result.row.get("wall_s") or 0))
            result.log = log
            try:
                self._write_log(cfg, result)
                self.results.write(result)
            except OSError as second:
                if is_disk_full(second):
                    raise DiskFullError(self.results.path, cfg.run_id, second) from second
                raise
            model = None
        if self.best_val is not None and model is not None:
            try:
                self._maybe_save_model(cfg, result, model)
            except OSError as error:  # the row is recorded; only the kept model is not
                warnings.warn(
                    f"could not keep the model of cell {cfg.run_id}: {error}", stacklevel=2
                )
        if self.on_result is not None:
            self.on_result(cfg, result)

    def _write_log(self, cfg: RunConfig, result: Any) -> None:
        """logs/<run_id>.log replaced whole by the cell's log text (a short one when none came
        back, e.g. from a worker that died); row["log"] points to it. Another OSError than a
        full disk only warns: the row is recorded without its log."""
        text = result.log
        if not text:
            log = CellLog(cfg)
            log.finish(result.row)
            text = log.text()
        try:  # a link out of the folder: bench.results.UnsafePathError, which stops the sweep
            target = safe_path(self.results.path, LOGS_DIR, f"{cfg.run_id}.log", create=True)
            _atomic_write_text(target, text)
        except OSError as error:
            if is_disk_full(error):
                raise
            warnings.warn(f"could not write the log of cell {cfg.run_id}: {error}", stacklevel=3)
            return
        result.row["log"] = f"{LOGS_DIR}/{cfg.run_id}.log"

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
        folder = safe_path(self.results.path, MODELS_DIR, folder=True, create=True)
        save_model(model, cfg, result.row, folder / f"best-{cfg.protocol}")
        self.best_val[cfg.protocol] = val


def _atomic_write_text(target: Path, text: str) -> None:
    """Write `text` to a temporary file beside `target`, fsync, and move it over `target`."""
    from bench.files import atomic_write

    atomic_write(target, text.encode("utf-8"), prefix=TMP_PREFIX, suffix=".log")


def _repair_logs(folder: Path) -> list[str]:
    """The results folder's repair of logs/ (bench.results.register_repair): the log writer's
    temporary files a kill left behind go; logs themselves stay (a rerun overwrites them)."""
    if folder.is_symlink():
        return []
    for leftover in folder.glob(TMP_PREFIX + "*.log"):
        if leftover.is_file() and not leftover.is_symlink():
            leftover.unlink(missing_ok=True)
    return []


register_repair(LOGS_DIR, _repair_logs)
