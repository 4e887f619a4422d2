"""A results folder (runs.csv, epochs.csv, calibration.csv, robustness.csv, outcomes/, logits/)
and its one writer.

The guarantees of docs/results-schema.md live here:

* Every file is rewritten whole into a temporary file in the same folder, flushed, fsynced and
  moved over the old one with `os.replace`, which is atomic: a reader (or a process killed with
  SIGKILL at any moment) sees the old file or the new one, never a truncated one.
* Files are written in `bench.schema.FILES` order, runs.csv last, so a row in runs.csv means the
  cell's other rows are already on disk: runs.csv is the done-marker. Rows of the side files whose
  run_id has no runs.csv row (left by a kill between two files) are dropped when the lock is taken,
  and so are the per-cell files (`outcomes/<run_id>.npz`, `logits/<run_id>.npz`) of such run_ids.
* `outcomes/<run_id>.npz` (every ok cell): the per-image test outcomes, arrays OUTCOMES_ARRAYS,
  checked by `check_outcomes` before anything of the cell is written; `read_outcomes` reads one
  back without unpickling anything and refuses a file that is not what the writer writes.
* One writer at a time: `lock()` creates `.lock` atomically (pid, host, start time). A lock left by
  a dead process on this host is stale and is taken over with a warning; any other lock refuses.
* No symbolic link is followed out of the folder: `check` (what `sweep status` and `sweep run`
  both start with) refuses a folder with a link anywhere in it that points outside it, and every
  writer (here, the cell logs and TensorBoard scalars of bench.executors, kept models, search
  trials) takes its path from `safe_path`, which checks each component without following it
  and replaces a link that points inside the folder by a real file or folder.
* Subfolders other code writes into (`models/`: kept models, bench.model_io) are repaired under
  the lock by the repair their owner registered (`register_repair`); this module knows no file
  format but its own.

Values are written as text: empty for None/NaN ("not measured"), floats with `repr` (shortest
string that reads back to the same float), dicts/lists as JSON with sorted keys. A value that
does not fit its column's declared dtype (bench.schema) is refused: an `int` column takes
integers, a `float` column numbers; None or NaN anywhere means "not measured".
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
import re
import socket
import stat
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.arms import Scope, scope_columns, scope_fields, scope_header, scope_of_row
from bench.files import NotRegularFileError, atomic_write, read_regular
from bench.schema import DECLARED, FILES, RUNS, SEARCH, SEARCH_COLUMNS, SEARCH_FILE

RUNS_FILE = "runs.csv"
LOCK_FILE = ".lock"
# Taking the lock (create, or replace a stale one) happens under an flock on this never-deleted
# file, so two sweeps starting together cannot both judge one stale lock dead and both take it.
LOCK_GUARD_FILE = ".lock-guard"
# Temporary files of the writer: `.tmp-<target name>.<mkstemp's 8 random characters>`. Leftovers
# of a kill are removed at lock time, and only names of exactly this form: a user's `.tmp-notes`
# is not ours to delete.
TMP_PREFIX = ".tmp-"
_TMP_RANDOM = r"\.[a-z0-9_]{8}"  # tempfile.mkstemp's suffix: "." ends our prefix, 8 of [a-z0-9_]
LOGITS_DIR = "logits"
OUTCOMES_DIR = "outcomes"
# outcomes/<run_id>.npz: array name -> dtype, each [N] over the cell's test subset in its fixed
# order: the true label, the predicted class (argmax of the final test logits) and its confidence
# (the top-label softmax probability, rounded to float16).
OUTCOMES_ARRAYS = {"label": "uint8", "pred": "uint8", "conf": "float16"}
MAX_OUTCOMES = 1_000_000  # images per outcomes file (CIFAR-10's whole test set is 10,000)
_RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # what a run_id may look like (ours: 12 hex digits)
_LOGITS_NAME = re.compile(r"[0-9a-f]{12}\.npz")  # <run_id>.npz in logits/ and outcomes/
MODELS_DIR = "models"  # --keep-best-model's models (bench.model_io registers their repair)
MAX_TABLE_BYTES = 1 << 30  # largest results CSV read (cpu-evidence's epochs.csv: under 1 MB)
# What a runs.csv row's status may be (bench.executors.base writes only these two).
STATUSES = ("ok", "failed")
SIDE_FIELDS = {
    "epochs.csv": "epochs",
    "calibration.csv": "calibration",
    "robustness.csv": "robustness",
}


# subfolder -> repair(folder): finishes or drops what a killed write left there, run under the
# lock when the subfolder exists; yields one warning message per thing it completed.
_REPAIRS: dict[str, Callable[[Path], Iterable[str]]] = {}
# file name -> {column: declared dtype}
_DTYPES: dict[str, dict[str, str]] = {
    name: {c.name: c.dtype for c in cols} for name, cols in DECLARED.items()
}


class LockError(RuntimeError):
    """Another live process owns the results folder."""


class ResultsError(ValueError):
    """A results folder this code cannot read or write as it is (not a folder, not writable,
    a CSV that is not UTF-8, ragged, without run_id or with a run_id twice); the message names
    the path and the fix. Nothing was changed."""


class UnsafePathError(ResultsError):
    """A symbolic link in a results folder that points outside it (or, where regbench writes, a
    file where a folder belongs, a FIFO or a folder where a file belongs): nothing under a
    results folder is followed out of it, so the folder is refused as it is."""


_LINK_FIX = (
    "regbench follows no link out of a results folder: replace the link with a real file or "
    "folder (or remove it), or use another --results-dir"
)


def _inside(real_root: str, target: str) -> bool:
    return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)


def _outside_link(root: Path, path: Path) -> UnsafePathError:
    target = os.path.realpath(path)
    return UnsafePathError(
        f"{path}: a symbolic link to {target}, outside the results folder {root}; {_LINK_FIX}"
    )


def safe_path(
    root: str | os.PathLike[str], *parts: str, folder: bool = False, create: bool = False
) -> Path:
    """`root/parts...` inside the results folder `root`, checked component by component (lstat,
    never following) so that nothing under `root` leads out of it: the one path helper of every
    reader and writer of a results folder (CSVs, logs/, tensorboard/, logits/, outcomes/,
    models/, search/, ...).

    Every existing component below `root` must be a real folder (the last one: a regular file,
    or a folder with `folder=True`). A symbolic link that points outside `root` raises
    UnsafePathError. With `create` (a writer), missing folders are made (the last one too with
    `folder=True`) and a link that points inside `root` is replaced by a real folder (or, for
    the file itself, removed: the writer then creates a real file); without `create` (a reader)
    such a link is left as it is. `root` itself is the user's choice and may be a link."""
    root = Path(root)
    if create:
        root.mkdir(parents=True, exist_ok=True)
    real_root = os.path.realpath(root)
    path = root
    for i, part in enumerate(parts):
        path = path / part
        wants_folder = folder or i < len(parts) - 1
        try:
            mode: int | None = os.lstat(path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and stat.S_ISLNK(mode):
            if not _inside(real_root, os.path.realpath(path)):
                raise _outside_link(root, path)
            if not create:
                continue
            os.unlink(path)  # it points inside: a real file or folder takes its place
            mode = None
        if mode is None:
            if create and wants_folder:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path)
                if not stat.S_ISDIR(os.lstat(path).st_mode):  # made meanwhile, as another thing
                    raise UnsafePathError(f"{path}: not a folder; {_LINK_FIX}")
            continue
        if wants_folder and not stat.S_ISDIR(mode):
            raise UnsafePathError(
                f"{path}: not a folder (regbench keeps a folder there); move it away, or use "
                "another --results-dir"
            )
        if not wants_folder and not stat.S_ISREG(mode):
            raise UnsafePathError(
                f"{path}: not a regular file (a folder, FIFO or device where regbench keeps a "
                "file); move it away, or use another --results-dir"
            )
    return path


def check_links(root: str | os.PathLike[str]) -> None:
    """UnsafePathError for the first symbolic link anywhere under the results folder `root`
    that points outside it (links to folders are not entered). Reads only."""
    root = Path(root)
    real_root = os.path.realpath(root)
    for folder, subfolders, files in os.walk(root):  # never descends through a link
        for name in sorted(subfolders + files):
            path = Path(folder) / name
            if path.is_symlink() and not _inside(real_root, os.path.realpath(path)):
                raise _outside_link(root, path)


def check_outcomes(outcomes: dict[str, Any]) -> dict[str, Any]:
    """The per-image outcomes of one cell as the writer stores them: numpy arrays named and typed
    as OUTCOMES_ARRAYS (`label`, `pred` uint8 [N]; `conf` float16 [N]), N >= 1. Integer labels
    and predictions in [0, 255] and finite confidences in [0, 1] of any dtype are converted;
    anything else raises ValueError naming the array (a cell's bug: nothing is written)."""
    import numpy as np  # here only: reading runs.csv needs no numpy

    if not isinstance(outcomes, dict) or set(outcomes) != set(OUTCOMES_ARRAYS):
        names = sorted(outcomes) if isinstance(outcomes, dict) else type(outcomes).__name__
        raise ValueError(f"outcomes: expected arrays {sorted(OUTCOMES_ARRAYS)}, got {names}")
    arrays = {name: np.asarray(outcomes[name]) for name in OUTCOMES_ARRAYS}
    n = len(arrays["label"]) if arrays["label"].ndim == 1 else -1
    if not 1 <= n <= MAX_OUTCOMES or any(a.ndim != 1 or len(a) != n for a in arrays.values()):
        shapes = {k: v.shape for k, v in arrays.items()}
        raise ValueError(
            f"outcomes: every array must be [N] with the same 1 <= N <= {MAX_OUTCOMES}, "
            f"got shapes {shapes}"
        )
    for name in ("label", "pred"):
        array = arrays[name]
        if array.dtype.kind not in "iu" or array.min() < 0 or array.max() > 255:
            raise ValueError(f"outcomes: {name} must hold class indices in [0, 255]")
        arrays[name] = array.astype(np.uint8)
    conf = arrays["conf"]
    if conf.dtype.kind != "f":
        raise ValueError(f"outcomes: conf must be floating point, got {conf.dtype}")
    conf = conf.astype(np.float16)
    if not (np.isfinite(conf).all() and conf.min() >= 0 and conf.max() <= 1):
        raise ValueError("outcomes: conf must hold probabilities in [0, 1]")
    arrays["conf"] = conf
    return arrays


def read_outcomes(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One outcomes/<run_id>.npz back as {label, pred, conf} numpy arrays (OUTCOMES_ARRAYS).
    Untrusted input: a regular file only (no link, no FIFO), nothing unpickled (allow_pickle=False), the
    zip's declared sizes checked before anything is decompressed, exactly the three arrays with
    their dtypes and one length, values in range. ResultsError naming the file otherwise."""
    import zipfile

    import numpy as np

    path = Path(path)
    fix = "remove it (rerunning the cell writes it again) or move it out of the results folder"
    expected = {f"{name}.npy" for name in OUTCOMES_ARRAYS}
    limit = MAX_OUTCOMES * 2 + 4096  # the largest array's bytes and its .npy header
    try:  # no link followed, no FIFO waited on: open without following, then check the type
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ResultsError(f"{path}: not a regular file; {fix}")
            with zipfile.ZipFile(handle) as archive:
                members = archive.infolist()
            if {m.filename for m in members} != expected or len(members) != len(expected):
                names = sorted(m.filename for m in members)[:5]
                raise ResultsError(
                    f"{path}: holds {names}, not the arrays {sorted(expected)}; {fix}"
                )
            if any(m.file_size > limit for m in members):
                raise ResultsError(f"{path}: an array larger than {MAX_OUTCOMES} images; {fix}")
            handle.seek(0)
            with np.load(handle, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in OUTCOMES_ARRAYS}
    except ResultsError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        first = (str(error).splitlines() or ["unreadable"])[0][:120]
        raise ResultsError(f"{path}: not an outcomes file ({first}); {fix}") from None
    wrong = [n for n, dtype in OUTCOMES_ARRAYS.items() if arrays[n].dtype != np.dtype(dtype)]
    if wrong:
        raise ResultsError(f"{path}: array {wrong[0]} is {arrays[wrong[0]].dtype}, not "
                           f"{OUTCOMES_ARRAYS[wrong[0]]}; {fix}")  # fmt: skip
    try:
        return check_outcomes(arrays)
    except ValueError as error:
        raise ResultsError(f"{path}: {error}; {fix}") from None


def register_repair(subfolder: str, repair: Callable[[Path], Iterable[str]]) -> None:
    """Run `repair(results_path / subfolder)` whenever a results folder holding that subfolder
    is locked (replacing an earlier registration for it); each string it yields is warned."""
    _REPAIRS[subfolder] = repair


def check_runs_row(row: dict[str, Any]) -> None:
    """ValueError unless a runs.csv row with status ok carries every declared metric, measured
    (not None) or, for a metric declared with `empty_when`, given as None by the phase that
    measures it; the error names the metrics. (A failed row leaves the metrics it did not reach
    out.) The other direction, a key no column declares, is `ResultsDir._rows_for`'s check,
    which every results file's rows pass through."""
    if row.get("status") != "ok":
        return
    missing = [
        c.name
        for c in RUNS
        if c.kind == "metric" and (c.name not in row or (row[c.name] is None and not c.empty_when))
    ]
    if missing:
        raise ValueError(
            f"{RUNS_FILE}: cell {row.get('run_id')} finished ok without the declared metric(s) "
            f"{missing}: the phase of bench.train that measures each must return it (None only "
            "where bench.schema declares when it is empty: Column.empty_when)"
        )


def format_value(value: Any) -> str:
    """One CSV field: '' for None/NaN, repr for floats, JSON for dicts and lists."""
    if value is None:
        return ""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()  # numpy / torch scalars
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    raise TypeError(f"cannot write a value of type {type(value).__name__} to a CSV: {value!r}")


def check_dtype(file: str, column: str, dtype: str, value: Any) -> None:
    """ValueError unless `value` fits the declared dtype: an integer for `int`, a number for
    `float`, anything for `text`; None and NaN (not measured) fit every column."""
    if value is None or dtype == "text":
        return
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()  # numpy / torch scalars
    if isinstance(value, float) and math.isnan(value):
        return
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (dtype == "int" and not isinstance(value, int)):
        kind = "an integer" if dtype == "int" else "a number"
        raise ValueError(
            f"{file}: column {column} is declared {dtype} in bench.schema but got "
            f"{value!r} ({type(value).__name__}); give it {kind}, or None if not measured"
        )


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows as dicts of strings) of one CSV; ([], []) when the file does not exist.
    ResultsError when it is not a readable UTF-8 CSV with as many fields in every row as in its
    header."""
    fix = "repair or move the file away (a results folder holds only what regbench wrote)"
    try:
        # a regular file only (a FIFO would block), bounded; a leading BOM (a spreadsheet's
        # "CSV UTF-8") is not part of the first column's name
        text = read_regular(path, MAX_TABLE_BYTES).decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, [])
        rows = []
        for values in reader:
            if len(values) != len(header):
                raise ResultsError(
                    f"{path}: line {reader.line_num} has {len(values)} fields, the header "
                    f"{len(header)}; {fix}"
                )
            rows.append(dict(zip(header, values, strict=True)))
        if "\x00" in text:  # regbench never writes one; some tools choke on it
            line = text[: text.index("\x00")].count("\n") + 1
            raise ResultsError(f"{path}: line {line} holds a NUL byte; {fix}")
    except FileNotFoundError:
        return [], []
    except NotRegularFileError as error:
        raise ResultsError(f"{error}; {fix}") from None
    except UnicodeDecodeError as error:
        raise ResultsError(f"{path}: not UTF-8 text (byte {error.start}); {fix}") from None
    except csv.Error as error:
        raise ResultsError(f"{path}: not a readable CSV ({error}); {fix}") from None
    except OSError as error:
        raise ResultsError(f"{path}: cannot read ({error.strerror or error}); {fix}") from None
    return header, rows


def _is_number_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _check_rows(path: Path, header: list[str], rows: list[dict[str, str]], unique: bool) -> None:
    """ResultsError unless the table has a run_id column with a value in every row (and, with
    `unique`, no run_id twice)."""
    if not header and not rows:
        return
    fix = "repair or move the file away (a results folder holds only what regbench wrote)"
    if "run_id" not in header:
        raise ResultsError(f"{path}: no run_id column (header: {','.join(header)[:80]}); {fix}")
    bad = [i for i, row in enumerate(rows) if not _RUN_ID.fullmatch(row["run_id"])]
    if bad:
        run_id = rows[bad[0]]["run_id"]
        raise ResultsError(f"{path}: row {bad[0] + 1} has run_id {run_id!r}, not a run id; {fix}")
    if unique:
        ids = [row["run_id"] for row in rows]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ResultsError(f"{path}: run_id {dupes[0]} has {ids.count(dupes[0])} rows; {fix}")


def _check_status(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    """ResultsError unless every runs.csv row has a status regbench writes (STATUSES): a row
    "running" or without a status is neither done nor to be rerun."""
    fix = "repair or move the file away (a results folder holds only what regbench wrote)"
    if rows and "status" not in header:
        raise ResultsError(f"{path}: no status column (header: {','.join(header)[:80]}); {fix}")
    for line, row in enumerate(rows, start=2):
        if row["status"] not in STATUSES:
            raise ResultsError(
                f"{path}: line {line}: status {row['status'][:40]!r}, not one of "
                f"{', '.join(STATUSES)}; {fix}"
            )


def _is_regular(path: Path) -> bool | None:
    """True for a regular file, False for anything else (folder, link, FIFO), None if absent."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _pid_start(pid: int) -> str:
    """Start time of a process (clock ticks since boot, Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


class ResultsDir:
    """The results folder of one sweep. Reading is always safe; writing needs `lock()`."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._locked = False

    # -- reading -------------------------------------------------------------------------------

    def runs(self) -> list[dict[str, str]]:
        """The rows of runs.csv, as strings ('' = not measured); ResultsError on a folder or
        runs.csv this code cannot use (see `check`)."""
        self._check_folder()
        header, rows = read_table(self.path / RUNS_FILE)
        _check_rows(self.path / RUNS_FILE, header, rows, unique=True)
        return rows

    def check(self) -> None:
        """ResultsError naming the path and the fix unless every results file reads back (UTF-8,
        not ragged, with run_ids; one row per run_id in runs.csv) and the lock files, where
        present, are plain files, every runs.csv row has a status regbench writes (ok, failed),
        and no link anywhere in it points outside it (check_links). Reads only: safe on any
        folder. `regbench sweep status` and `sweep run` both start here, so a folder that run
        refuses is never called complete."""
        self._check_folder()
        if self.path.is_dir():
            check_links(self.path)
        for name in FILES:
            header, rows = read_table(self.path / name)
            _check_rows(self.path / name, header, rows, unique=name == RUNS_FILE)
            if name == RUNS_FILE:
                _check_status(self.path / name, header, rows)
        for name in (LOCK_FILE, LOCK_GUARD_FILE):
            if _is_regular(self.path / name) is False:
                raise ResultsError(
                    f"{self.path / name}: not a plain file (a folder or link where regbench keeps "
                    "its lock); remove it, or use another --results-dir"
                )

    def _check_folder(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ResultsError(
                f"{self.path}: not a folder; give a results folder (it is created if missing)"
            )

    def search_rows(self) -> list[dict[str, Any]]:
        """The rows of search.csv (strings, bench.schema.SEARCH_COLUMNS only, and `scope`: the
        row's bench.arms.Scope, from its scope columns or a legacy `scope` label); [] when there
        is none. ResultsError unless it reads back, has every SEARCH column, and every row a
        `selected` of 0 or 1 and a number as its `value` (what bench.runner compares)."""
        self._check_folder()
        path = self.path / SEARCH_FILE
        fix = "repair or move the file away (a results folder holds only what regbench wrote)"
        header, rows = read_table(path)
        lacking = [c.name for c in SEARCH if c.required and c.name not in header]
        if rows and lacking:
            raise ResultsError(
                f"{path}: no column {lacking[0]} (header: {','.join(header)[:80]}); {fix}"
            )
        for line, row in enumerate(rows, start=2):
            if row["selected"] not in ("0", "1") or not _is_number_text(row["value"]):
                raise ResultsError(
                    f"{path}: line {line}: selected {row['selected']!r}, value {row['value']!r} "
                    f"(expected 0 or 1 and a number); {fix}"
                )
        scopes = scope_columns(header)
        return [{"scope": scope_of_row(row, scopes), **{c: row.get(c, "") for c in SEARCH_COLUMNS}}
                for row in rows]  # fmt: skip

    def finished_ids(self) -> set[str]:
        """run_ids of cells with a runs.csv row, ok or failed (both count as finished)."""
        return {row["run_id"] for row in self.runs()}

    def failed_ids(self) -> set[str]:
        return {row["run_id"] for row in self.runs() if row.get("status") == "failed"}

    # -- the lock ------------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[ResultsDir]:
        """Own the folder for the duration of the block (see the module docstring). LockError
        when another sweep owns it; ResultsError when it cannot be used (see `check`) or
        written."""
        self.check()
        try:
            self._take_lock()
        except OSError as error:
            self._release()
            raise ResultsError(
                f"{self.path}: cannot write to the results folder ({error.strerror or error}); "
                "make it writable, or use another --results-dir"
            ) from None
        try:
            self._repair()
            yield self
        finally:
            self._release()

    def _release(self) -> None:
        """Remove the lock if this process holds it."""
        self._locked = False
        lock_path = self.path / LOCK_FILE
        try:
            if json.loads(lock_path.read_text()).get("pid") == os.getpid():
                lock_path.unlink()
        except (OSError, ValueError, AttributeError):
            pass

    def _take_lock(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / LOCK_FILE
        me = {
            "pid": os.getpid(),
            "pid_start": _pid_start(os.getpid()),
            "hostname": socket.gethostname(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        guard = os.open(self.path / LOCK_GUARD_FILE, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)  # held for the take-over only; freed if we die
            for _attempt in range(3):
                try:
                    fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    self._take_over_if_stale(lock_path)
                    continue
                with os.fdopen(fd, "w") as handle:
                    json.dump(me, handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                break
            else:
                raise LockError(
                    f"{lock_path}: could not create the lock file (it keeps reappearing)"
                )
        finally:
            os.close(guard)
        self._locked = True

    def _take_over_if_stale(self, lock_path: Path) -> None:
        if _is_regular(lock_path) is False:
            raise ResultsError(
                f"{lock_path}: not a plain file (a folder or link where regbench keeps its "
                "lock); remove it, or use another --results-dir"
            )
        try:
            owner = json.loads(lock_path.read_text())
            pid, host = int(owner["pid"]), str(owner["hostname"])
        except FileNotFoundError:
            return  # released meanwhile: try again
        except (OSError, ValueError, KeyError, TypeError):
            # An empty lock is a writer killed between creating and filling it; give it a moment.
            try:
                age = time.time() - lock_path.stat().st_mtime
            except FileNotFoundError:
                return  # released meanwhile: try again
            if age < 10:
                raise LockError(
                    f"{lock_path}: another sweep is starting to write to {self.path}"
                ) from None
            owner, pid, host = {}, -1, socket.gethostname()
        same_host = host == socket.gethostname()
        reused = pid > 0 and owner.get("pid_start") not in (None, "", _pid_start(pid))
        if same_host and (pid <= 0 or not _pid_alive(pid) or reused):
            warnings.warn(
                f"{lock_path}: removing a stale lock left by process {pid} on {host} "
                f"(started {owner.get('started_at', '?')}), which is no longer running",
                stacklevel=3,
            )
            lock_path.unlink(missing_ok=True)
            return
        where = "this machine" if same_host else f"host {host}"
        raise LockError(
            f"{self.path} is in use by another sweep (process {pid} on {where}, started "
            f"{owner.get('started_at', '?')}); wait for it to finish or use another --results-dir"
            + ("" if same_host else f". If that process is gone, delete {lock_path}")
        )

    def _repair(self) -> None:
        """Drop what a kill can leave behind: the writer's temporaries, side rows, outcomes and
        logits of unfinished cells (no runs.csv row); then the registered repairs of subfolders
        (kept models: bench.model_io). Only files this writer names are removed (see TMP_PREFIX
        and _LOGITS_NAME), never a folder or a link."""
        ours = re.compile(
            re.escape(TMP_PREFIX)
            + f"({'|'.join(map(re.escape, [*FILES, SEARCH_FILE]))})"
            + _TMP_RANDOM
        )
        _remove(self.path, ours.fullmatch)
        done = {row["run_id"] for row in self.runs()}
        for name in SIDE_FIELDS:
            header, rows = read_table(self.path / name)
            kept = [row for row in rows if row.get("run_id") in done]
            if len(kept) != len(rows):
                self._replace(name, header, kept)
        temporary = re.compile(re.escape(TMP_PREFIX) + _LOGITS_NAME.pattern + _TMP_RANDOM)
        orphan = lambda name: _LOGITS_NAME.fullmatch(name) and name[:12] not in done  # noqa: E731
        for subfolder in (OUTCOMES_DIR, LOGITS_DIR):
            per_cell = self.path / subfolder
            if per_cell.is_dir() and not per_cell.is_symlink():
                _remove(per_cell, temporary.fullmatch)
                _remove(per_cell, orphan)
        for subfolder, repair in _REPAIRS.items():
            where = self.path / subfolder
            if where.is_dir() and not where.is_symlink():
                for message in repair(self.path / subfolder):
                    warnings.warn(message, stacklevel=3)

    # -- writing -------------------------------------------------------------------------------

    def write(self, result: Any) -> None:
        """Record one finished cell (a bench.train.CellResult): side rows first, runs.csv last.

        A cell already recorded as failed is replaced (--retry-failed); one recorded as ok is an
        error, as are keys outside the schema's columns, an ok row without a declared metric
        (`check_runs_row`) and outcomes that `check_outcomes` refuses (all checked before
        anything is written). outcomes/<run_id>.npz is written
        before runs.csv, or removed when the result has none (a failed attempt's row never
        points to an earlier attempt's outcomes).
        """
        if not self._locked:
            raise RuntimeError("ResultsDir.write() needs the lock: use `with results.lock():`")
        row = dict(result.row)
        run_id = row.get("run_id")
        if not run_id or row.get("status") not in ("ok", "failed"):
            raise ValueError(f"a runs.csv row needs a run_id and status ok/failed: {row!r}")
        tables = {name: self._rows_for(name, getattr(result, attr), run_id)
                  for name, attr in SIDE_FIELDS.items()}  # fmt: skip
        tables[RUNS_FILE] = self._rows_for(RUNS_FILE, [row], run_id)  # unknown keys refused
        check_runs_row(row)
        outcomes = getattr(result, "outcomes", None)
        if outcomes is not None:
            outcomes = check_outcomes(outcomes)
        safe_path(self.path, OUTCOMES_DIR, folder=True)  # a link out or a file there: refused

        header, runs = read_table(self.path / RUNS_FILE)
        previous = [r for r in runs if r["run_id"] == run_id]
        if previous:
            if any(r.get("status") != "failed" for r in previous):
                raise ValueError(f"cell {run_id} is already recorded as ok in {self.path}")
            # Take the failed row out first: a kill from here on leaves the cell "not done",
            # and its side rows are dropped at the next lock, never mixed with the new attempt's.
            self._replace(RUNS_FILE, header, [r for r in runs if r["run_id"] != run_id])
        if result.test_logits is not None:
            self._save_logits(run_id, result.test_logits, getattr(result, "test_labels", None))
        self._save_outcomes(run_id, outcomes)
        for name in FILES:
            new_rows = tables[name]
            header, rows = read_table(self.path / name)
            kept = [r for r in rows if r.get("run_id") != run_id]
            if new_rows or len(kept) != len(rows) or not header:
                self._replace(name, header, kept + new_rows)

    def write_search(self, rows: list[dict[str, Any]]) -> None:
        """Replace search.csv (bench.search: every trial and the selection) atomically; the
        rows' keys are `scope` (a bench.arms.Scope, written as one column per field, first) and
        bench.schema.SEARCH_COLUMNS. Needs the lock."""
        if not self._locked:
            raise RuntimeError("ResultsDir.write_search needs the lock (use `with results.lock()`)")
        for row in rows:
            scope = row.get("scope")
            # a legacy label without fields (Scope.verbatim) has no columns to be written in
            typed = isinstance(scope, Scope) and not scope.verbatim
            if set(row) != {"scope", *SEARCH_COLUMNS} or not typed:
                raise ValueError(
                    f"search.csv row: columns {sorted(row)}; expected a Scope `scope` and "
                    f"{SEARCH_COLUMNS}"
                )
        fields = scope_fields(row["scope"] for row in rows)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([*scope_header(fields), *SEARCH_COLUMNS])
        writer.writerows(
            [
                *row["scope"].columns(fields).values(),
                *(format_value(row[c]) for c in SEARCH_COLUMNS),
            ]
            for row in rows
        )
        self._atomic_write(self._target(SEARCH_FILE), text.getvalue().encode("utf-8"))

    @staticmethod
    def _rows_for(name: str, rows: list[dict[str, Any]], run_id: str) -> list[dict[str, str]]:
        """Rows of the results file `name` checked against its declared columns (names and
        dtypes) and formatted as text; run_id filled in where absent."""
        dtypes = _DTYPES[name]
        out = []
        for row in map(dict, rows):
            unknown = sorted(set(row) - set(dtypes))
            if unknown:
                raise ValueError(f"{name}: unknown column(s) {unknown}; add them to bench.schema")
            if row.setdefault("run_id", run_id) != run_id:
                raise ValueError(f"{name}: row of run_id {row['run_id']} given for cell {run_id}")
            for column, value in row.items():
                check_dtype(name, column, dtypes[column], value)
            out.append({key: format_value(value) for key, value in row.items()})
        return out

    def _replace(self, name: str, header: list[str], rows: list[dict[str, str]]) -> None:
        """Write header + rows to a temp file, fsync, and move it over `name` atomically."""
        columns = list(FILES[name])
        columns += [c for c in header if c not in columns]  # keep columns an older schema had
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self._atomic_write(self._target(name), text.getvalue().encode("utf-8"))

    def _save_logits(self, run_id: str, logits: Any, labels: Any = None) -> None:
        """logits/<run_id>.npz: `logits` float16 [N, K] and, when known, `labels` int64 [N]."""
        import numpy as np  # only when logits are kept

        buffer = io.BytesIO()
        arrays = {"logits": np.asarray(logits)}
        if labels is not None:
            arrays["labels"] = np.asarray(labels)
        np.savez_compressed(buffer, **arrays)
        self._atomic_write(self._target(LOGITS_DIR, f"{run_id}.npz"), buffer.getvalue())

    def _save_outcomes(self, run_id: str, outcomes: dict[str, Any] | None) -> None:
        """outcomes/<run_id>.npz (compressed) from checked arrays; with None, remove an earlier
        attempt's file (a regular file only: a link or folder there is left alone)."""
        target = self.path / OUTCOMES_DIR / f"{run_id}.npz"
        if outcomes is None:
            if _is_regular(target) and not (self.path / OUTCOMES_DIR).is_symlink():
                target.unlink(missing_ok=True)
            return
        import numpy as np

        buffer = io.BytesIO()
        np.savez_compressed(buffer, **outcomes)
        self._atomic_write(self._target(OUTCOMES_DIR, target.name), buffer.getvalue())

    def _target(self, *parts: str) -> Path:
        """Where a writer of this folder writes `parts` (safe_path: no link followed out of
        the folder; a link inside it replaced by the file; missing folders made)."""
        return safe_path(self.path, *parts, create=True)

    @staticmethod
    def _atomic_write(target: Path, data: bytes) -> None:
        atomic_write(target, data, prefix=f"{TMP_PREFIX}{target.name}.")


def _remove(folder: Path, wanted: Callable[[str], Any]) -> None:
    """Unlink the regular files directly in `folder` whose name `wanted` accepts (never a
    folder or a link, never below `folder`)."""
    for entry in os.scandir(folder):
        if wanted(entry.name) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
