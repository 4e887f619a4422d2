"""Columns the report derives from the rows it read, and the labels every table and figure uses.

Added to the runs table:
- `arm`: the display label of the cell's arm (a `bench.arms.Arm`: regularizer, schedule,
  parameter variant), e.g. `cutmix`, `cutmix (staged)` or `mixup (alpha=0.2)` (see
  `arms.add_arms`);
- `scope`: the configuration the arm is compared within, e.g. `protocol=frozen, train_size=2000`
  (protocol always, plus every other configuration column, shared or extension, that varies in
  the sweep; an empty extension field is a value of its own, shown as `(empty)`);
- `rest`: the scope without the protocol and the columns fixed by it (a row of a figure grid).
Derived metrics (declared in `bench.schema.DERIVED`): `gap` (filled from train_acc - test_acc
where empty), `overconfidence` (test_mean_conf - test_acc), `regularizer_share` (regularizer
time / training step time), and from calibration.csv's test bins `ece_over` = sum_b w_b max(0,
conf_b - acc_b) and `ece_under` = sum_b w_b max(0, acc_b - conf_b) (w_b: the bin's share of the
cell's test images). The side tables get their cell's `JOINED` labels.

The orders of a sweep's labels (`rests`, `scopes`), each arm's `variants` and the figures'
`column_titles` are computed here once, as data of the loaded `Results`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.arms import Arm
from bench.report import arms, style

# Labels joined into the side tables (their own columns, e.g. epochs.csv's `lr`, stay as they are).
JOINED = ["run_id", "arm", "scope", "rest", "protocol", "seed"]


def matches(frame: pd.DataFrame, where: dict) -> pd.Series:
    """Rows whose columns equal the values in `where`; an empty (NaN) value matches an empty one,
    so cells with an empty extension field are compared with each other like any other value."""
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column].isna() if pd.isna(value) else frame[column] == value
    return mask


def scope_label(row: pd.Series, columns: list[str]) -> str:
    return ", ".join(f"{c}={style.format_value(row[c])}" for c in columns)


def add_labels(
    runs: pd.DataFrame, compared: list[str]
) -> tuple[list[str], list[str], dict[str, Arm]]:
    """Add scope/rest/arm columns; return the varying config columns, those fixed by protocol,
    and label -> `bench.arms.Arm` of every arm."""
    runs["schedule"] = runs["schedule"].replace("", "constant")
    varying = [c for c in compared[1:] if runs[c].nunique(dropna=False) > 1]
    per_protocol = runs.groupby("protocol")
    bound = [c for c in varying if per_protocol[c].nunique(dropna=False).max() == 1]
    rows = [c for c in varying if c not in bound]
    runs["scope"] = [scope_label(row, ["protocol", *varying]) for _, row in runs.iterrows()]
    runs["rest"] = [scope_label(row, rows) for _, row in runs.iterrows()]
    return varying, bound, arms.add_arms(runs)


# runs.csv columns `add_derived` completes from others where empty: never absent from a report.
COMPLETED = ["gap"]


def add_derived(runs: pd.DataFrame) -> None:
    """Add the derived metrics computed from runs.csv's own columns (and complete `COMPLETED`)."""
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


def add_calibration_parts(runs: pd.DataFrame, calibration: pd.DataFrame | None) -> None:
    """Add ece_over and ece_under to the runs (NaN where a cell has no test bins)."""
    if calibration is None:
        runs["ece_over"] = np.nan
        runs["ece_under"] = np.nan
        return
    parts = calibration_parts(calibration).set_index("run_id")
    runs["ece_over"] = runs["run_id"].map(parts["ece_over"]).astype(float)
    runs["ece_under"] = runs["run_id"].map(parts["ece_under"]).astype(float)


def attach(
    table: pd.DataFrame, runs: pd.DataFrame, name: str
) -> tuple[pd.DataFrame | None, list[str]]:
    """A side table's rows of ok cells with their `JOINED` labels (None when none is left), and
    a note on rows that match no cell."""
    ok = runs[runs["status"] == "ok"]
    known = table["run_id"].isin(runs["run_id"])
    notes = []
    if not known.all():
        notes.append(
            f"{name}: {int((~known).sum())} row(s) name a run_id that is not in runs.csv; "
            "they are ignored."
        )
    joined = table[table["run_id"].isin(ok["run_id"])].merge(ok[JOINED], on="run_id")
    return (joined if len(joined) else None), notes


def rests(runs: pd.DataFrame, facet_columns: list[str]) -> list[str]:
    """The `rest` labels (figure rows) in the order of their column values."""
    keys = runs[[*facet_columns, "rest"]].drop_duplicates()
    return list(keys.sort_values(facet_columns)["rest"] if facet_columns else keys["rest"])


def scopes(runs: pd.DataFrame, protocols: list[str], rests: list[str]) -> list[str]:
    """Every scope label, protocol-major: protocols in their usual order, then `rests`."""
    p_rank = {p: i for i, p in enumerate(protocols)}
    r_rank = {r: i for i, r in enumerate(rests)}
    cells = runs.drop_duplicates("scope")
    keys = zip(cells["protocol"], cells["rest"], cells["scope"], strict=True)
    return [s for _, _, s in sorted(keys, key=lambda k: (p_rank[k[0]], r_rank[k[1]]))]


def variants(arm_of: dict[str, Arm], styles: dict[str, style.ArmStyle]) -> dict[Arm, list[str]]:
    """An arm's family (`style.family`: its regularizer and schedule) -> the labels of its arms,
    in display order (`styles`' order): one per parameter variant (a single one when its
    parameters do not vary). `arm_of`: label -> arm."""
    found: dict[Arm, list[str]] = {}
    for label in styles:
        found.setdefault(style.family(arm_of[label]), []).append(label)
    return found


def column_titles(runs: pd.DataFrame, protocols: list[str], bound: list[str]) -> dict[str, str]:
    """protocol -> its figure column title: 'unfrozen', or 'unfrozen, lr=0.01' when a column is
    fixed per protocol (`bound`)."""
    if not bound:
        return {protocol: protocol for protocol in protocols}
    first = runs.drop_duplicates("protocol").set_index("protocol")
    return {p: f"{p}, {scope_label(first.loc[p], bound)}" for p in protocols}
