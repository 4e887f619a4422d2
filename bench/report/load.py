"""Read and validate a results folder (the CSVs of docs/results-schema) into one `Results` object.

Reads `runs.csv` (required), and `epochs.csv`, `calibration.csv`, `robustness.csv` and
`search.csv` (a sweep's hyperparameter search; see `_check_search`) where present.
Which columns it reads, and how, comes from the declarations in `bench.schema`, read when a
folder is loaded (`required_runs`, `config_columns`, `extension_config`, `run_metrics`,
`extension_metrics`, `run_text`, `side_columns`): the required identity and configuration
columns, the extension configuration columns where present, the metrics (numbers; a missing
shared one is NaN) and the provenance text columns where present; other columns are ignored.
Every problem a user can fix raises `ReportInputError` with one line that names the problem and
the fix; nothing here draws or computes statistics.

A configuration column that search.csv names as a searched parameter (e.g. `lr`) was selected
per arm: it differs between the arms of one scope by design, so it does not split scopes (like
`data_seed` when it follows `seed`), and the notes say so.

Three columns are added to the runs table:
- `arm`: the display label of (regularizer, schedule, parameter variant), e.g. `cutmix`,
  `cutmix (staged)` or `mixup (alpha=0.2)` (see `arms.add_arms`);
- `scope`: the configuration the arm is compared within, e.g. `protocol=frozen, train_size=2000`
  (protocol always, plus every other configuration column, shared or extension, that varies in
  the sweep; an empty extension field is a value of its own, shown as `(empty)`);
- `rest`: the scope without the protocol and the columns fixed by it (a row of a figure grid).
Derived metrics: `gap` (filled from train_acc - test_acc where empty), `overconfidence`
(test_mean_conf - test_acc), `regularizer_share` (regularizer time / training step time), and
from calibration.csv's test bins `ece_over` = sum_b w_b max(0, conf_b - acc_b) and `ece_under`
= sum_b w_b max(0, acc_b - conf_b) (w_b: the bin's share of the cell's test images).

Per-image test outcomes `outcomes/<run_id>.npz` (arrays `label` uint8 [N], `pred` uint8 [N],
`conf` float16 [N]) are read where present, as untrusted files: numpy without pickles, a size
limit, exact keys, 1-D arrays of one length, integer labels and predictions in [0, 255], finite
confidences in [0, 1]. A file that fails is left out with a note; it never stops the report.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import schema  # column declarations only: no torch behind it
from bench.arms import LEGACY_SCOPE_COLUMN, Scope, scope_columns, scope_of_row
from bench.config import PROTOCOLS
from bench.report import arms, style
from bench.report.errors import ReportInputError, quoted, quoted_path
from bench.results import OUTCOMES_DIR, ResultsError, check_links
from bench.results import read_outcomes as read_checked

__all__ = ["ReportInputError", "Results", "load_results", "matches"]

RUNS_FILE = schema.RUNS_FILE
ARM_COLUMNS = ["regularizer", "schedule"]
# Configuration columns that are not compared like the others: the arm's (arms.py) and the seed
# (cells are paired by it).
NOT_COMPARED = [*ARM_COLUMNS, arms.PARAMS_COLUMN, "seed"]
SEARCH_FILE = schema.SEARCH_FILE
# Every file the report reads, with its declared columns: the per-cell files of schema.DECLARED,
# and search.csv, which the sweep writes once (so DECLARED leaves it out) but is read the same way.
READ: dict[str, list[schema.Column]] = {**schema.DECLARED, SEARCH_FILE: schema.SEARCH}


def _numbers(file: str, names: list[str]) -> list[str]:
    """The names among `names` that `file` declares as numbers (int or float)."""
    text = {c.name for c in READ[file] if c.dtype == "text"}
    return [name for name in names if name not in text]


def config_columns() -> list[str]:
    """Every shared configuration column but the arm's and the seed, protocol first: cells are
    compared only when all of these match."""
    shared = schema.columns(RUNS_FILE, kind="configuration", shared=True)
    return [c for c in shared if c not in NOT_COMPARED]


def numeric_config() -> list[str]:
    """The shared configuration columns that are numbers, the seed among them."""
    return _numbers(RUNS_FILE, schema.columns(RUNS_FILE, kind="configuration", shared=True))


def extension_config() -> list[str]:
    """The project's extension columns that belong to a cell's configuration (docs/results-schema,
    "Extensions in this project"). Optional: a runs.csv written to the shared schema alone lacks
    them. Where present they count like `config_columns`, except that an empty field is allowed
    and is a value of its own. Cost and environment columns are not configuration."""
    return schema.columns(RUNS_FILE, kind="configuration", shared=False)


def required_runs() -> list[str]:
    """The runs.csv columns without which the report refuses the file."""
    return schema.columns(RUNS_FILE, required=True)


def run_metrics() -> list[str]:
    """The shared metric columns: numbers; a missing one is NaN and named in the report."""
    return schema.columns(RUNS_FILE, kind="metric", shared=True)


def extension_metrics() -> list[str]:
    """The project's extension metric columns: numbers where present."""
    return schema.columns(RUNS_FILE, kind="metric", shared=False)


def run_text() -> list[str]:
    """The optional shared text columns (error, regularizer_params, provenance): '' when absent."""
    return schema.columns(RUNS_FILE, dtype="text", shared=True, required=False)


def side_columns(file: str) -> tuple[list[str], list[str]]:
    """(required, numeric) columns of a side file (epochs.csv, calibration.csv, robustness.csv,
    search.csv), as declared."""
    declared = READ[file]
    return [c.name for c in declared if c.required], _numbers(file, [c.name for c in declared])


# Labels joined into the side tables (their own columns, e.g. epochs.csv's `lr`, stay as they are).
JOINED = ["run_id", "arm", "scope", "rest", "protocol", "seed"]


@dataclass
class Results:
    """One sweep's results: ok and failed cells, with per-epoch, calibration, robustness tables.

    `runs` holds every row of runs.csv (ok and failed); `ok` only the finished ones. The other
    tables hold rows of ok cells only, with the `JOINED` labels of their cell added.
    """

    folder: Path  # the (first) results folder
    sweep: str
    runs: pd.DataFrame
    varying: list[str]  # config columns (besides protocol) that take several values
    # the varying columns fixed by the protocol (e.g. a per-protocol lr): shown with the
    # protocol in figure column titles instead of adding figure rows
    protocol_bound: list[str] = field(default_factory=list)
    # every configuration column of this runs.csv: config_columns(), then the extension_config()
    # columns it has
    config_columns: list[str] = field(default_factory=config_columns)
    # arm label -> (regularizer, schedule, variant) for every arm of the sweep
    arm_keys: dict[str, style.ArmKey] = field(default_factory=dict)
    epochs: pd.DataFrame | None = None
    calibration: pd.DataFrame | None = None
    robustness: pd.DataFrame | None = None
    absent_columns: list[str] = field(default_factory=list)  # optional runs.csv metrics missing
    notes: list[str] = field(default_factory=list)  # things the reader should know
    folders: list[Path] = field(default_factory=list)  # every folder merged (one usually)
    # run_id -> {"label", "pred", "conf"} arrays [N] from outcomes/<run_id>.npz (checked)
    outcomes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # search.csv's rows (every trial x searched parameter, checked), or None without a search
    search: pd.DataFrame | None = None
    # configuration columns the search selected per arm (e.g. lr): left out of the scopes
    selected_per_arm: list[str] = field(default_factory=list)

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"]

    @property
    def failed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "failed"]

    @property
    def scope_columns(self) -> list[str]:
        return ["protocol", *self.varying]

    @property
    def styles(self) -> dict[str, style.ArmStyle]:
        """Every arm of the sweep (failed ones too), in display order, with colour and marker."""
        return style.arm_styles(self.arm_keys.values())

    def variants(self, regularizer: str, schedule: str) -> list[str]:
        """The labels of the arms of one regularizer and schedule, in display order: one per
        parameter variant (a single one when its parameters do not vary); [] when none."""
        return [
            label for label in self.styles if self.arm_keys[label][:2] == (regularizer, schedule)
        ]

    @property
    def protocols(self) -> list[str]:
        return style.order_protocols(self.runs["protocol"].unique())

    @property
    def facet_columns(self) -> list[str]:
        """The varying columns that make figure rows (those not fixed by the protocol)."""
        return [c for c in self.varying if c not in self.protocol_bound]

    @property
    def rests(self) -> list[str]:
        """The `rest` labels (figure rows) in the order of their column values."""
        columns = self.facet_columns
        keys = self.runs[[*columns, "rest"]].drop_duplicates()
        return list(keys.sort_values(columns)["rest"] if columns else keys["rest"])

    def column_title(self, protocol: str) -> str:
        """'unfrozen', or 'unfrozen, lr=0.01' when a column is fixed per protocol."""
        if not self.protocol_bound:
            return protocol
        row = self.runs[self.runs["protocol"] == protocol].iloc[0]
        return f"{protocol}, {_scope_label(row, self.protocol_bound)}"

    def scopes(self) -> list[str]:
        """Every scope label, protocol-major: protocols in their usual order, then `rests`."""
        p_rank = {p: i for i, p in enumerate(self.protocols)}
        r_rank = {r: i for i, r in enumerate(self.rests)}
        cells = self.runs.drop_duplicates("scope")
        keys = zip(cells["protocol"], cells["rest"], cells["scope"], strict=True)
        return [s for _, _, s in sorted(keys, key=lambda k: (p_rank[k[0]], r_rank[k[1]]))]

    def has(self, column: str) -> bool:
        """True when the ok cells hold at least one value of this runs.csv column."""
        return column in self.runs.columns and self.ok[column].notna().any()


def _header(path: Path) -> list[str]:
    """The header row's names, stripped; every data row checked to have as many fields (a ragged
    row would otherwise be padded or shift its values into other columns)."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file)
        header = [name.strip() for name in next(reader, [])]
        for row in reader:
            if row and len(row) != len(header):
                raise ReportInputError(
                    f"{path.name}: line {reader.line_num} has {len(row)} fields, the header "
                    f"{len(header)}; fix or remove the ragged row"
                )
    return header


def _read_csv(path: Path, required: list[str], numeric: list[str]) -> pd.DataFrame:
    """Read every column as text (no NA guessing), then convert the numeric ones strictly and
    check them against their declared type and range (`schema.Column.dtype`, `low`, `high`)."""
    if not path.is_file():  # a FIFO would block the read, /dev/zero never end it
        raise ReportInputError(
            f"{quoted_path(path)} is not a regular file; a results folder holds only what "
            "regbench wrote: move it away"
        )
    try:
        header = _header(path)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ReportInputError(f"{path} is empty; rerun the sweep or delete the file") from None
    except UnicodeDecodeError as error:
        raise ReportInputError(
            f"{path} is not UTF-8 text (byte {error.start}: {quoted(error.object[error.start : error.start + 1])}); "
            "save it as UTF-8 or regenerate it with the sweep runner"
        ) from None
    except (pd.errors.ParserError, csv.Error, ValueError, OverflowError) as error:
        first = (str(error).strip().splitlines() or ["unreadable"])[0]
        raise ReportInputError(
            f"{path} is not a readable CSV ({quoted(first, 120)}); fix the file"
        ) from None
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise ReportInputError(
            f"{path.name} names column(s) {', '.join(map(quoted, twice))} more than once; "
            "keep one of each (results of different writers were probably concatenated)"
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReportInputError(
            f"{path.name} lacks required column(s) {', '.join(missing)}; "
            "regenerate it with the current sweep runner (see the results schema)"
        )
    for column in frame.columns:
        frame[column] = frame[column].astype(str).str.strip()
    for column in numeric:
        if column in frame.columns:
            frame[column] = _to_number(frame, column, path.name)
    return frame


def _row_id(frame: pd.DataFrame, where) -> str:
    """'run_id 'abc'' or 'line 7' for a message about one row."""
    if "run_id" in frame.columns and isinstance(frame.at[where, "run_id"], str):
        return f"run_id {quoted(frame.at[where, 'run_id'])}"
    return f"line {int(where) + 2}"


def _bounds(column: schema.Column) -> str:
    low = "-inf" if column.low is None else f"{column.low:g}"
    high = "inf" if column.high is None else f"{column.high:g}"
    return f"[{low}, {high}]"


def _to_number(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    """One column parsed as numbers and checked against its declaration: a configuration value or
    a row key must be finite, an int column whole, every value within [low, high]. An empty
    field or 'nan' is "not measured" (NaN); ±inf outside the declared range is refused, else
    left out like NaN."""
    text = frame[column].to_numpy(dtype=object)  # numpy, not pandas: this runs per column
    empty = text == ""
    parsed = pd.to_numeric(pd.Series(np.where(empty, "nan", text)), errors="coerce")
    values = parsed.to_numpy(dtype=float)
    nan_text = np.isin(np.char.lower(text.astype(str)), ["nan", "-nan", "+nan"])
    declared = {c.name: c for c in READ.get(name, [])}.get(column)

    def refuse(mask: np.ndarray, problem: str, fix: str) -> None:
        where = frame.index[int(np.flatnonzero(mask)[0])]
        raise ReportInputError(
            f"{name}: column {column} has {problem} {quoted(frame.at[where, column])} "
            f"({_row_id(frame, where)}); {fix}"
        )

    bad = np.isnan(values) & ~empty & ~nan_text
    if bad.any():
        refuse(bad, "the non-numeric value", "fix it or leave the field empty for 'not measured'")
    finite = np.isfinite(values)
    infinite = nan_text | np.isinf(values)
    if declared is not None and declared.kind in ("configuration", "key") and infinite.any():
        refuse(
            infinite,
            "the non-finite value",
            "a configuration value must be a finite number",
        )
    if declared is not None and declared.dtype == "int":
        fraction = finite & (values != np.round(values))
        if fraction.any():
            refuse(fraction, "the non-integer value", "it must be a whole number: fix the value")
    tolerance = 1e-9  # a fraction computed as 1.0000000000000002 is still a fraction
    outside = np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        if declared is not None and declared.low is not None:
            outside |= values < declared.low - tolerance
        if declared is not None and declared.high is not None:
            outside |= values > declared.high + tolerance
    if outside.any():
        hint = ""
        if declared.high == 1.0 and (np.abs(values[outside]) <= 100).all():
            hint = " (it is a fraction, 0.85 not 85)"
        refuse(
            outside,
            f"a value outside its range {_bounds(declared)}{hint}:",
            "fix the value or leave the field empty for 'not measured'",
        )
    # nan/inf (a writer's rendering of a non-finite value) are not measurements: left out.
    return pd.Series(np.where(finite, values, np.nan), index=frame.index, dtype=float)


def _check_keys(table: pd.DataFrame, file: str) -> None:
    """A side file names each (run_id, key...) once: a repeat would be averaged in twice."""
    keys = [c.name for c in READ[file] if c.name == "run_id" or c.kind == "key"]
    if file == SEARCH_FILE:  # its scope: columns of the sweep's fields, or one legacy label
        legacy = [LEGACY_SCOPE_COLUMN] if LEGACY_SCOPE_COLUMN in table.columns else []
        keys = [*legacy, *scope_columns(table.columns), *keys]
    repeated = table.duplicated(keys)
    if repeated.any():
        row = table.loc[repeated].iloc[0]
        where = ", ".join(f"{k} {quoted(row[k])}" for k in keys)
        raise ReportInputError(
            f"{file}: the row for {where} appears more than once ({int(repeated.sum())} "
            "repeated rows); remove the duplicates (results were probably concatenated)"
        )


def _check_runs(runs: pd.DataFrame) -> None:
    if runs.empty:
        raise ReportInputError("runs.csv has a header but no rows; run the sweep first")
    sweeps = runs["sweep"].value_counts()
    if len(sweeps) > 1:
        listed = ", ".join(
            f"{quoted(name)} ({count} rows)" for name, count in sweeps.head(3).items()
        )
        raise ReportInputError(
            f"runs.csv mixes {len(sweeps)} sweeps: {listed}; a report covers one sweep, "
            "so keep each sweep's rows in its own results/<sweep>/ folder"
        )
    dupes = runs["run_id"][runs["run_id"].duplicated()]
    if len(dupes):
        raise ReportInputError(
            f"runs.csv has run_id {quoted(dupes.iloc[0])} more than once ({len(dupes)} duplicate "
            "rows); remove the duplicates (results of one sweep were probably concatenated)"
        )
    statuses = sorted(set(runs["status"]) - {"ok", "failed"})
    if statuses:
        raise ReportInputError(
            f"runs.csv has status value(s) {', '.join(map(quoted, statuses[:3]))}; only 'ok' and "
            "'failed' are allowed"
        )
    for column in ["run_id", *ARM_COLUMNS[:1], *config_columns(), "seed"]:
        empty = runs[column].isna() | (runs[column].astype(str) == "")
        if empty.any():
            raise ReportInputError(
                f"runs.csv: column {column} is empty in {int(empty.sum())} row(s) (first run_id "
                f"{quoted(runs.loc[empty, 'run_id'].iloc[0])}); every row needs its full configuration"
            )
    # A protocol is one of the few regbench has (regularizers are an open registry, e.g. a
    # user's own, and the report cannot list them without torch: their names are only escaped).
    protocols = sorted(set(runs["protocol"].astype(str)) - set(PROTOCOLS))
    if protocols:
        raise ReportInputError(
            f"runs.csv has protocol value(s) {', '.join(map(quoted, protocols[:3]))}; allowed: "
            f"{', '.join(PROTOCOLS)} (a results folder holds only what regbench wrote)"
        )


TRIAL = ["scope", "arm", "trial"]  # one trial of search.csv (a row per searched parameter)
PARAMETER = ["scope", "arm", "parameter"]  # one searched parameter of one arm x scope


def selection_metric(name: str) -> schema.Column | None:
    """The runs.csv metric a search selects on (search.csv `select_metric`), if it is one with a
    better direction (e.g. val_acc: higher, val_loss: lower); else None."""
    column = {c.name: c for c in schema.RUNS if c.kind == "metric"}.get(name)
    return column if column is not None and column.better != 0 else None


def _refuse_search(problem: str, fix: str) -> None:
    raise ReportInputError(f"{SEARCH_FILE}: {problem}; {fix}")


def _where(keys: list[str], values: object) -> str:
    """`scope 'a', arm 'b', trial 3` for a message about one group of search.csv rows."""
    values = values if isinstance(values, tuple) else (values,)
    values = tuple(v.text if isinstance(v, Scope) else v for v in values)
    shown = [quoted(v) if isinstance(v, str) else style.format_value(v) for v in values]
    return ", ".join(f"{k} {v}" for k, v in zip(keys, shown, strict=True))


def _agree(search: pd.DataFrame, keys: list[str], columns: list[str], what: str) -> None:
    """Refuse a group of rows (by `keys`) holding several values of one of `columns`."""
    counts = search.groupby(keys, sort=False)[columns].nunique(dropna=False)
    for column in columns:
        split = counts.index[counts[column] > 1]
        if len(split):
            _refuse_search(
                f"the rows of {_where(keys, split[0])} disagree on {column}",
                f"{what}; regenerate search.csv with the sweep runner",
            )


def _check_ranges(search: pd.DataFrame) -> None:
    """low <= value <= high on every row (a float written as text may miss an end by an ulp)."""
    slack = 1e-9 * np.maximum(1.0, np.maximum(search["low"].abs(), search["high"].abs()))
    inverted = search["low"] > search["high"]
    outside = (search["value"] < search["low"] - slack) | (search["value"] > search["high"] + slack)
    for mask, problem in [
        (inverted, "low is above high"),
        (outside, "value is outside [low, high]"),
    ]:
        if mask.any():
            row = search.loc[mask].iloc[0]
            where = _where(["line", *PARAMETER], (int(row.name) + 2, *row[PARAMETER]))
            _refuse_search(
                f"{problem} ({where}: value {row['value']:g}, low {row['low']:g}, "
                f"high {row['high']:g})",
                "low and high are the ends of the searched range and every trial's value lies "
                "within it: fix the row or regenerate search.csv",
            )


def _check_search(search: pd.DataFrame) -> None:
    """search.csv beyond its columns' types and ranges (checked when read): every required field
    filled (`scope` may be empty: a sweep with a single scope), each value within its searched
    range, one score, seed count and selected flag per trial, one range per parameter, one
    select_metric (a runs.csv metric with a direction) per arm x scope, and at most one selected
    trial per arm x scope."""
    if search.empty:
        _refuse_search("it has a header but no rows", "rerun the search or delete the file")
    for column in [c for c in side_columns(SEARCH_FILE)[0] if c != "scope"]:
        empty = search[column].isna() | (search[column].astype(str) == "")
        if empty.any():
            _refuse_search(
                f"column {column} is empty on line {int(search.index[empty][0]) + 2}",
                "every trial row needs it: regenerate search.csv with the sweep runner",
            )
    _check_ranges(search)
    _agree(search, TRIAL, ["selected", "score", "seeds"], "one trial has one value of it")
    _agree(search, PARAMETER, ["low", "high"], "one parameter has one searched range")
    _agree(search, ["scope", "arm"], ["select_metric"], "an arm is selected on one metric")
    unknown = sorted({m for m in search["select_metric"] if selection_metric(m) is None})
    if unknown:
        _refuse_search(
            f"select_metric {quoted(unknown[0])} is not a runs.csv metric with a better direction",
            "name the metric the search selected on, e.g. val_acc or val_loss",
        )
    chosen = search[search["selected"] == 1].drop_duplicates(TRIAL)
    per_arm = chosen.groupby(["scope", "arm"], sort=False)["trial"].agg(list)
    several = per_arm[per_arm.map(len) > 1]
    if len(several):
        trials = ", ".join(str(int(t)) for t in several.iloc[0])
        _refuse_search(
            f"{_where(['scope', 'arm'], several.index[0])} has {len(several.iloc[0])} selected "
            f"trials ({trials})",
            "at most one trial per arm x scope is selected: keep selected = 1 on the trial "
            "whose configuration runs.csv ran and 0 on the others",
        )


def _read_search(folders: list[Path]) -> pd.DataFrame | None:
    """search.csv from the folder(s) that have it, checked, its integer columns as ints."""
    search = _read_side(folders, SEARCH_FILE)
    if search is None:
        return None
    search = _with_scopes(search)
    _check_search(search)
    for column in schema.SEARCH:
        if column.dtype == "int" and column.required:
            search[column.name] = search[column.name].astype("int64")
    return search


def _with_scopes(search: pd.DataFrame) -> pd.DataFrame:
    """search.csv with its scope as one `scope` column of bench.arms.Scope values, from its
    scope columns or, in a file written before issue 25, its `scope` label (legacy_scope)."""
    columns = scope_columns(search.columns)
    scopes_read = [*columns, LEGACY_SCOPE_COLUMN]
    if columns and LEGACY_SCOPE_COLUMN in search.columns:
        _refuse_search(
            f"it has both a {LEGACY_SCOPE_COLUMN} column and scope columns ({columns[0]}, ...)",
            "a results folder holds one format: regenerate search.csv with the sweep runner",
        )
    text = search[columns].fillna("")  # folders merged: a scope field one of them lacks
    rows = search.to_dict("records") if LEGACY_SCOPE_COLUMN in search else text.to_dict("records")
    scopes = [scope_of_row(row, columns) for row in rows]
    search = search.drop(columns=[c for c in search.columns if c in scopes_read])
    search.insert(0, "scope", pd.Series(scopes, index=search.index, dtype=object))
    return search


def _searched_config(search: pd.DataFrame | None, compared: list[str]) -> list[str]:
    """The compared configuration columns that the search selected per arm (in column order)."""
    named = set() if search is None else set(search["parameter"])
    return [c for c in compared if c in named]


def _search_notes(search: pd.DataFrame | None, searched: list[str]) -> list[str]:
    """Why the configuration columns selected per arm do not split scopes; a search that did
    not select on a validation metric."""
    if search is None:
        return []
    metrics = sorted(set(search["select_metric"]))
    notes = []
    if searched:
        names, one = ", ".join(searched), len(searched) == 1
        notes.append(
            f"{names} {'was' if one else 'were'} selected per arm on {', '.join(metrics)} "
            f"({SEARCH_FILE}), so {'it differs' if one else 'they differ'} between the arms of "
            f"one scope by design and scopes are not split by {'it' if one else 'them'}: the "
            "comparison is each arm at its selected values (see Hyperparameter search)."
        )
    other = [m for m in metrics if m not in schema.SELECT_METRICS]
    if other:
        notes.append(
            f"The hyperparameter search selected on {', '.join(other)}, not on a validation "
            "metric: a selection on test data makes the selected cells' test numbers "
            "optimistic. Select on validation (e.g. val_acc) and rerun the search."
        )
    return notes


def matches(frame: pd.DataFrame, where: dict) -> pd.Series:
    """Rows whose columns equal the values in `where`; an empty (NaN) value matches an empty one,
    so cells with an empty extension field are compared with each other like any other value."""
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column].isna() if pd.isna(value) else frame[column] == value
    return mask


def _scope_label(row: pd.Series, columns: list[str]) -> str:
    return ", ".join(f"{c}={style.format_value(row[c])}" for c in columns)


def _add_labels(
    runs: pd.DataFrame, compared: list[str]
) -> tuple[list[str], list[str], dict[str, style.ArmKey]]:
    """Add scope/rest/arm columns; return the varying config columns, those fixed by protocol,
    and label -> (regularizer, schedule, variant) of every arm."""
    runs["schedule"] = runs["schedule"].replace("", "constant")
    varying = [c for c in compared[1:] if runs[c].nunique(dropna=False) > 1]
    per_protocol = runs.groupby("protocol")
    bound = [c for c in varying if per_protocol[c].nunique(dropna=False).max() == 1]
    rows = [c for c in varying if c not in bound]
    runs["scope"] = [_scope_label(row, ["protocol", *varying]) for _, row in runs.iterrows()]
    runs["rest"] = [_scope_label(row, rows) for _, row in runs.iterrows()]
    return varying, bound, arms.add_arms(runs)


def _derive(runs: pd.DataFrame) -> None:
    difference = runs["train_acc"] - runs["test_acc"]
    runs["gap"] = runs["gap"].fillna(difference) if "gap" in runs else difference
    if "test_mean_conf" in runs:
        runs["overconfidence"] = runs["test_mean_conf"] - runs["test_acc"]
    if {"regularizer_ms_per_batch", "train_images_per_s"} <= set(runs.columns):
        step_ms = 1000.0 * runs["batch_size"] / runs["train_images_per_s"]
        share = runs["regularizer_ms_per_batch"] / step_ms
        runs["regularizer_share"] = share.where(np.isfinite(share))  # 0 images/s: no share


def calibration_parts(calibration: pd.DataFrame) -> pd.DataFrame:
    """Per run_id, the over- and under-confident parts of the test ECE from calibration.csv's
    test bins: columns run_id, ece_over, ece_under (empty bins weigh nothing)."""
    test = calibration[(calibration["split"] == "test") & (calibration["count"] > 0)].copy()
    gap = test["mean_confidence"] - test["accuracy"]
    test["over"] = test["count"] * gap.clip(lower=0)
    test["under"] = test["count"] * (-gap).clip(lower=0)
    sums = test.groupby("run_id")[["over", "under", "count"]].sum()
    return pd.DataFrame(
        {"ece_over": sums["over"] / sums["count"], "ece_under": sums["under"] / sums["count"]}
    ).reset_index()


def _derive_calibration(results: Results) -> None:
    """Add ece_over and ece_under to the runs (NaN where a cell has no test bins)."""
    runs = results.runs
    if results.calibration is None:
        runs["ece_over"] = np.nan
        runs["ece_under"] = np.nan
        return
    parts = calibration_parts(results.calibration).set_index("run_id")
    runs["ece_over"] = runs["run_id"].map(parts["ece_over"]).astype(float)
    runs["ece_under"] = runs["run_id"].map(parts["ece_under"]).astype(float)


SAFE_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class OutcomeError(ValueError):
    """An outcomes file the report refuses (the message says why)."""


def read_outcomes(path: Path) -> dict[str, np.ndarray]:
    """One outcomes/<run_id>.npz through the results store's reader (the one place that knows
    the format and treats the file as untrusted), as int64 labels/predictions and float
    confidences for the statistics; OutcomeError naming the problem if refused."""
    try:
        arrays = read_checked(path)
    except ResultsError as error:
        raise OutcomeError(str(error).removeprefix(f"{path}: ")) from None
    return {"label": arrays["label"].astype(np.int64), "pred": arrays["pred"].astype(np.int64),
            "conf": arrays["conf"].astype(float)}  # fmt: skip


def _read_outcomes(results: Results) -> None:
    """Every ok cell's outcomes file in the results folder(s), where present; refused files are
    named in one note and left out."""
    refused = []
    for run_id in results.ok["run_id"]:
        if not SAFE_RUN_ID.fullmatch(str(run_id)):
            continue  # never a path from CSV text that is not a plain name
        for folder in results.folders:
            path = folder / OUTCOMES_DIR / f"{run_id}.npz"
            if not os.path.lexists(path):
                continue
            try:
                results.outcomes[str(run_id)] = read_outcomes(path)
            except OutcomeError as error:
                refused.append(f"{quoted(str(run_id))} ({error})")
            break
    if refused:
        results.notes.append(
            f"{len(refused)} outcomes file(s) refused and left out: {'; '.join(refused[:5])}"
            + ("; ..." if len(refused) > 5 else "")
            + ". Their rows get no image-level interval; rewrite the files with the sweep runner."
        )


def _attach(
    table: pd.DataFrame, runs: pd.DataFrame, name: str, notes: list[str]
) -> pd.DataFrame | None:
    """Keep rows of ok cells and join their labels; note rows that match no cell."""
    ok = runs[runs["status"] == "ok"]
    known = table["run_id"].isin(runs["run_id"])
    if not known.all():
        notes.append(
            f"{name}: {int((~known).sum())} row(s) name a run_id that is not in runs.csv; "
            "they are ignored."
        )
    joined = table[table["run_id"].isin(ok["run_id"])].merge(ok[JOINED], on="run_id")
    return joined if len(joined) else None


def _notes(runs: pd.DataFrame, compared: list[str], arm_keys: dict[str, style.ArmKey]) -> list[str]:
    """What the reader must know about the rows themselves."""
    notes = []
    stray = (runs["status"] == "failed") & runs[run_metrics()].notna().any(axis=1)
    if stray.any():
        notes.append(
            f"{int(stray.sum())} failed cell(s) carry metric values; failed cells are never "
            "averaged in, so these values are ignored."
        )
    variants = arms.variant_note(arm_keys)
    if variants:
        notes.append(variants)
    # Cells the report cannot tell apart: same arm (so same regularizer_params within a scope),
    # configuration columns and seed. They differ only in a column the report does not compare
    # on (one runs.csv does not record) and get averaged per seed.
    same = runs.duplicated([*ARM_COLUMNS, "arm", *compared, "seed"], keep=False)
    if same.any():
        notes.append(
            f"{int(same.sum())} cells share regularizer, schedule, {arms.PARAMS_COLUMN}, "
            "configuration and seed with another cell (they differ in a column the report does "
            "not compare on); they are averaged per seed. Give each configuration its own "
            "results folder."
        )
    if "dataset" in runs and (runs["dataset"] == "synthetic").any():
        notes.append("Some cells ran on the synthetic test dataset: their numbers mean nothing.")
    # Results written before the `bn` column existed ran staged cells with the backbone's
    # BatchNorm statistics updating from the unfreeze on: the collapse issue 13 measured.
    bn = runs["bn"] if "bn" in runs else pd.Series("", index=runs.index)
    before_fix = (runs["protocol"] == "staged") & (bn.fillna("").astype(str) == "")
    if before_fix.any():
        notes.append(
            f"{int(before_fix.sum())} staged cell(s) ran before the BatchNorm fix (no `bn` "
            "value): their backbone's BatchNorm statistics updated from the unfreeze on, which "
            "costs several points of accuracy at the switch (docs/measurements/staged-collapse.md)."
            " Read their rows as that older protocol, not as today's staged protocol."
        )
    return notes


def _read_runs(path: Path) -> pd.DataFrame:
    """runs.csv, checked, with numbers parsed (integral shared configuration values as ints) and
    every optional text column present."""
    numeric = numeric_config() + [
        *_numbers(RUNS_FILE, extension_config()),
        *run_metrics(),
        *extension_metrics(),
    ]
    numeric += [c for c in _numbers(RUNS_FILE, schema.columns(RUNS_FILE)) if c not in numeric]
    runs = _read_csv(path, required_runs(), numeric)
    _check_runs(runs)
    for column in numeric_config():
        if (runs[column] == runs[column].round()).all():
            runs[column] = runs[column].astype("int64")
    for column in run_text():
        if column not in runs:
            runs[column] = ""
    return runs


def _results_folder(folder: str | Path) -> Path:
    """The folder that holds runs.csv (a path to runs.csv itself is accepted), checked."""
    folder = Path(folder)
    if folder.is_file() and folder.name == "runs.csv":
        folder = folder.parent
    if not folder.exists():
        raise ReportInputError(
            f"results folder {quoted_path(folder)} does not exist; pass the folder that holds "
            "runs.csv (e.g. results/cpu-quick)"
        )
    if not folder.is_dir():
        raise ReportInputError(
            f"{quoted_path(folder)} is not a folder; pass the folder with runs.csv"
        )
    if not (folder / "runs.csv").is_file():
        raise ReportInputError(
            f"no runs.csv in {quoted_path(folder)}; pass the folder a sweep wrote "
            "(results/<sweep>/) or run the sweep first"
        )
    try:  # no link out of the folder is followed (issue 27), by the report either
        check_links(folder)
    except ResultsError as error:
        raise ReportInputError(str(error)) from None
    return folder


# Units of the cost metrics (speed, time, memory): they measure the machine, not the result.
COST_UNITS = {"images/s", "ms/batch", "MB", "s"}


def environment_columns() -> set[str]:
    """runs.csv columns that say where, when and how fast a cell ran (kind "environment", the
    cost metrics, the log's path): two runs of one cell may differ in them and still be one
    result."""
    cost = {name for name, c in schema.METRICS.items() if c.unit in COST_UNITS}
    return set(schema.columns(RUNS_FILE, kind="environment")) | cost | {"log"}


def _same_row(a: pd.Series, b: pd.Series, ignore: set[str] = frozenset()) -> str | None:
    """None when two rows of one run_id hold the same values (empty equals empty) but in the
    `ignore` columns, else the first column where they differ."""
    for column in a.index.union(b.index):
        if column in ignore:
            continue
        x, y = a.get(column, np.nan), b.get(column, np.nan)
        if not ((pd.isna(x) and pd.isna(y)) or x == y):
            return str(column)
    return None


def _merge_runs(
    folders: list[Path], tables: list[pd.DataFrame]
) -> tuple[pd.DataFrame, str, dict[str, int]]:
    """One runs table from several folders of one sweep: a run_id in several folders must hold
    the same row but in the environment columns (`environment_columns`: device, versions,
    commit, start time, speed, time, memory), else ReportInputError names it and both folders.
    Rule: one row per run_id, the one of the first folder given that has it (its side rows
    too). Returns the table, a note for the reader and run_id -> the index of the folder kept."""
    first = tables[0]["sweep"].iloc[0]
    for folder, table in zip(folders[1:], tables[1:], strict=True):
        if table["sweep"].iloc[0] != first:
            raise ReportInputError(
                f"{quoted_path(folders[0])} holds sweep {quoted(first)} but {quoted_path(folder)} "
                f"holds sweep {quoted(table['sweep'].iloc[0])}; a report covers one sweep: merge "
                "only folders of the same sweep"
            )
    combined = pd.concat(tables, ignore_index=True)
    origin = [
        folder for folder, table in zip(folders, tables, strict=True) for _ in range(len(table))
    ]
    index = [i for i, table in enumerate(tables) for _ in range(len(table))]
    seen: dict[str, int] = {}
    keep, merged, reruns = [], 0, 0
    environment = environment_columns()
    for position, run_id in enumerate(combined["run_id"]):
        if run_id not in seen:
            seen[run_id] = position
            keep.append(position)
            continue
        earlier, row = combined.iloc[seen[run_id]], combined.iloc[position]
        column = _same_row(earlier, row, environment)
        if column is None and _same_row(earlier, row) is not None:
            reruns += 1
            continue
        if column is not None:
            raise ReportInputError(
                f"run_id {quoted(run_id)} is in {quoted_path(origin[seen[run_id]])} and "
                f"{quoted_path(origin[position])} with different values (column "
                f"{quoted(column)}: {quoted(earlier[column])} vs {quoted(row[column])}); keep "
                "one: remove its row from one of the folders"
            )
        merged += 1
    runs = combined.iloc[keep].reset_index(drop=True)
    for column in run_text():
        runs[column] = runs[column].fillna("")
    counts = ", ".join(f"{f} ({len(t)} rows)" for f, t in zip(folders, tables, strict=True))
    note = f"Merged from {len(folders)} results folders: {counts}"
    note += f"; {merged} identical duplicate row(s) kept once" if merged else ""
    if reruns:
        note += (
            f"; {reruns} rerun(s) of a cell that differ only in where, when or how fast they ran "
            "(device, versions, commit, start time, speed, time, memory): the row of the first "
            "folder given is kept, with its epochs, calibration and robustness rows"
        )
    kept_from = {run_id: index[position] for run_id, position in seen.items()}
    return runs, note + ".", kept_from


def _read_side(
    folders: list[Path], file: str, kept_from: dict[str, int] | None = None
) -> pd.DataFrame | None:
    """One side file from every folder that has it, identical rows kept once, keys checked;
    with `kept_from` (run_id -> folder index, from `_merge_runs`), a cell's rows come from the
    folder its runs.csv row was kept from."""
    tables = []
    for i, folder in enumerate(folders):
        if (folder / file).is_file():
            table = _read_csv(folder / file, *side_columns(file))
            if kept_from and "run_id" in table:
                own = [kept_from.get(str(run_id), i) == i for run_id in table["run_id"]]
                table = table[own].reset_index(drop=True)
            tables.append(table)
    if not tables:
        return None
    table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
    if len(tables) > 1:
        table = table.drop_duplicates(ignore_index=True)
    _check_keys(table, file)
    return table


def load_results(folder: str | Path | list[str | Path]) -> Results:
    """Read a results folder, or several folders of one sweep merged into one; raise
    ReportInputError with a one-line fix for bad input."""
    given = [folder] if isinstance(folder, (str, Path)) else list(folder)
    if not given:
        raise ReportInputError("no results folder given; pass one (e.g. results/cpu-quick)")
    folders = [_results_folder(f) for f in given]
    resolved = [f.resolve() for f in folders]
    for index, path in enumerate(resolved):
        if path in resolved[:index]:
            raise ReportInputError(
                f"results folder {quoted_path(folders[index])} is given twice; pass each once"
            )
    tables = [_read_runs(f / RUNS_FILE) for f in folders]
    runs, merge_notes, kept_from = tables[0], [], None
    if len(folders) > 1:
        runs, note, kept_from = _merge_runs(folders, tables)
        _check_runs(runs)
        merge_notes.append(note)
    absent = [c for c in run_metrics() if c not in runs.columns]
    for column in absent:
        runs[column] = np.nan
    extension = [c for c in extension_config() if c in runs.columns]
    if "data_seed" in extension and bool(
        (pd.to_numeric(runs["data_seed"], errors="coerce") == runs["seed"]).all()
    ):
        # data_seed follows seed (the presets): a seed's subset pairs with it, no scope split
        extension.remove("data_seed")
    search = _read_search(folders)
    searched = _searched_config(search, config_columns() + extension)
    compared = [c for c in config_columns() + extension if c not in searched]
    varying, bound, arm_keys = _add_labels(runs, compared)
    _derive(runs)
    results = Results(
        folder=folders[0],
        folders=folders,
        sweep=str(runs["sweep"].iloc[0]),
        runs=runs,
        varying=varying,
        protocol_bound=bound,
        config_columns=compared,
        arm_keys=arm_keys,
        absent_columns=[c for c in absent if c != "gap"],
        notes=merge_notes + _notes(runs, compared, arm_keys),
        search=search,
        selected_per_arm=searched,
    )
    results.notes += _search_notes(search, searched)
    sides = [("epochs", schema.EPOCHS_FILE), ("calibration", schema.CALIBRATION_FILE),
             ("robustness", schema.ROBUSTNESS_FILE)]  # fmt: skip
    for name, file in sides:
        table = _read_side(folders, file, kept_from)
        if table is not None:
            setattr(results, name, _attach(table, runs, file, results.notes))
    _derive_calibration(results)
    _read_outcomes(results)
    return results
