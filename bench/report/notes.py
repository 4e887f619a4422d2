"""What the reader must know about the rows themselves: stray values, parameter variants, cells
the report cannot tell apart, synthetic data, staged cells from before the BatchNorm fix, and
how a hyperparameter search shaped the scopes. Data only: `build` puts them on the page."""

from __future__ import annotations

import pandas as pd

from bench import schema  # column declarations only: no torch behind it
from bench.arms import Arm
from bench.report import arms
from bench.report.columns import ARM_COLUMNS, SEARCH_FILE, run_metrics


def row_notes(runs: pd.DataFrame, compared: list[str], arm_of: dict[str, Arm]) -> list[str]:
    """What the reader must know about the rows themselves (`arm_of`: label -> arm)."""
    notes = []
    stray = (runs["status"] == "failed") & runs[run_metrics()].notna().any(axis=1)
    if stray.any():
        notes.append(
            f"{int(stray.sum())} failed cell(s) carry metric values; failed cells are never "
            "averaged in, so these values are ignored."
        )
    variants = arms.variant_note(arm_of)
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


def search_notes(search: pd.DataFrame | None, searched: list[str]) -> list[str]:
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
