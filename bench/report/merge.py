"""Several results folders of one sweep merged into one runs table (`regbench report A B`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.columns import environment_columns, run_text
from bench.report.errors import ReportInputError, quoted, quoted_path


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


def merge_runs(
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
