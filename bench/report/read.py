"""Read and validate the CSV files of a results folder (docs/results-schema.md).

Every file is read as text (no NA guessing), its numeric columns converted strictly and checked
against their declared type and range (`schema.Column.dtype`, `low`, `high`); runs.csv is checked
as a whole (one sweep, unique run ids, known statuses and protocols, full configurations) and a
side file's keys are unique. Every problem a user can fix raises `ReportInputError` with one
line that names the problem and the fix.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from bench import schema  # column declarations only: no torch behind it
from bench.arms import LEGACY_SCOPE_COLUMN, scope_columns
from bench.config import PROTOCOLS
from bench.report.columns import (
    ARM_COLUMNS,
    READ,
    RUNS_FILE,
    SEARCH_FILE,
    config_columns,
    extension_config,
    extension_metrics,
    numbers,
    numeric_config,
    required_runs,
    run_metrics,
    run_text,
    side_columns,
)
from bench.report.errors import ReportInputError, quoted, quoted_path
from bench.results import ResultsError, check_links


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


def read_csv(path: Path, required: list[str], numeric: list[str]) -> pd.DataFrame:
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


def check_keys(table: pd.DataFrame, file: str) -> None:
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


def check_runs(runs: pd.DataFrame) -> None:
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


def read_runs(path: Path) -> pd.DataFrame:
    """runs.csv, checked, with numbers parsed (integral shared configuration values as ints) and
    every optional text column present."""
    numeric = numeric_config() + [
        *numbers(RUNS_FILE, extension_config()),
        *run_metrics(),
        *numbers(RUNS_FILE, extension_metrics()),
    ]
    numeric += [c for c in numbers(RUNS_FILE, schema.columns(RUNS_FILE)) if c not in numeric]
    runs = read_csv(path, required_runs(), numeric)
    check_runs(runs)
    for column in numeric_config():
        if (runs[column] == runs[column].round()).all():
            runs[column] = runs[column].astype("int64")
    for column in run_text():
        if column not in runs:
            runs[column] = ""
    return runs


def results_folder(folder: str | Path) -> Path:
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


def read_side(
    folders: list[Path], file: str, kept_from: dict[str, int] | None = None
) -> pd.DataFrame | None:
    """One side file from every folder that has it, identical rows kept once, keys checked;
    with `kept_from` (run_id -> folder index, from `_merge_runs`), a cell's rows come from the
    folder its runs.csv row was kept from."""
    tables = []
    for i, folder in enumerate(folders):
        if (folder / file).is_file():
            table = read_csv(folder / file, *side_columns(file))
            if kept_from and "run_id" in table:
                own = [kept_from.get(str(run_id), i) == i for run_id in table["run_id"]]
                table = table[own].reset_index(drop=True)
            tables.append(table)
    if not tables:
        return None
    table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
    if len(tables) > 1:
        table = table.drop_duplicates(ignore_index=True)
    check_keys(table, file)
    return table
