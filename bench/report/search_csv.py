"""search.csv (a sweep's hyperparameter search) read and checked beyond its columns' types and
ranges: see `check_search`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench import schema  # column declarations only: no torch behind it
from bench.arms import LEGACY_SCOPE_COLUMN, Scope, scope_columns, scope_of_row
from bench.report import style
from bench.report.columns import SEARCH_FILE, side_columns
from bench.report.errors import ReportInputError, quoted
from bench.report.read import read_side

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


def check_search(search: pd.DataFrame) -> None:
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


def read_search(folders: list[Path]) -> pd.DataFrame | None:
    """search.csv from the folder(s) that have it, checked, its integer columns as ints."""
    search = read_side(folders, SEARCH_FILE)
    if search is None:
        return None
    search = _with_scopes(search)
    check_search(search)
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


def searched_config(search: pd.DataFrame | None, compared: list[str]) -> list[str]:
    """The compared configuration columns that the search selected per arm (in column order)."""
    named = set() if search is None else set(search["parameter"])
    return [c for c in compared if c in named]
