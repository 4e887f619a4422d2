"""Compare two results folders of one sweep: does NEW reproduce REF? `compare_results(ref, new)`.

Cells are matched by run_id (a cell's configuration decides its run_id, so a rerun of a sweep
has the same ids). For every shared cell finished in both folders and every compared metric
(`compared_metrics`: the report's runs.csv metrics except cost ones, i.e. speed, time and
memory, which depend on the machine), the difference NEW - REF gets a verdict:

- `identical`: bit-equal (or not measured in both);
- `within noise`: |difference| <= the larger of NOISE_FACTOR x the seed spread (the sample
  standard deviation, ddof=1, of REF's values over the seeds of that cell's arm and scope) and
  the numeric `tolerance` (default DEFAULT_TOLERANCE, in the metric's stored units): with one
  seed, or reruns of identical configurations, the tolerance alone decides (float noise, e.g.
  another executor's thread count, is not a difference);
- `differs`: anything else, including a value measured in one folder only.

Pairing: by run_id (a rerun of one sweep), or with `pair_on` by the values of some runs.csv
columns (e.g. regularizer, protocol, seed) for two sweeps that differ in a setting (lr 0.05 vs
0.1): each key must name one cell in each folder, and the settings that differ are noted.

An arm (one arm in one scope, REF's labels) gets the same verdicts for its mean difference over
its shared seeds; a metric's verdict is the worst of its arms'. A cell whose status differs
(ok in one folder, failed in the other) is a difference too. Cells in one folder only are
listed and do not change a verdict. Reads CSVs through `bench.report.load` (its checks and
named errors); never imports torch, never prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import schema
from bench.report.columns import COST_UNITS
from bench.report.errors import ReportInputError, quoted, quoted_path
from bench.report.load import Results, load_results
from bench.schema import RUNS_FILE

__all__ = [
    "DEFAULT_TOLERANCE",
    "DIFFERS",
    "IDENTICAL",
    "NOISE",
    "NOISE_FACTOR",
    "Comparison",
    "compare_results",
    "compared_metrics",
]

IDENTICAL, NOISE, DIFFERS = "identical", "within noise", "differs"
VERDICTS = [IDENTICAL, NOISE, DIFFERS]  # best to worst
NOISE_FACTOR = 2.0
# The smallest difference that counts, in a metric's stored units (1e-6 of an accuracy is
# 0.0001 pp): float noise between executors, far below any effect a report shows.
DEFAULT_TOLERANCE = 1e-6
LABELS = ["run_id", "arm", "scope", "seed"]


def compared_metrics() -> list[str]:
    """The runs.csv metrics of the report's catalogue, in schema order, but the cost ones."""
    return [
        name
        for name, column in schema.METRICS.items()
        if column.kind == "metric" and column.unit not in COST_UNITS
    ]


@dataclass
class Comparison:
    """What `compare_results` found. Every table has one row per item, values in runs.csv units.

    cells: run_id, arm, scope, seed, metric, ref, new, difference, spread, verdict (one row per
        shared finished cell and metric; spread = REF's seed standard deviation of the arm).
    arms: arm, scope, metric, seeds, ref_mean, new_mean, mean_difference, spread, verdict.
    metrics: metric, cells, identical, within_noise, differs (cell counts), arms_differ,
        max_abs_difference, verdict.
    status: run_id, arm, scope, seed, ref_status, new_status of shared cells whose status differs.
    only_ref, only_new: run_id, arm, scope, seed, status of cells in one folder only.
    """

    ref: Path
    new: Path
    shared: int
    cells: pd.DataFrame
    arms: pd.DataFrame
    metrics: pd.DataFrame
    status: pd.DataFrame
    only_ref: pd.DataFrame
    only_new: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def differs(self) -> bool:
        """True when a metric differs beyond seed noise or a shared cell changed status."""
        return bool((self.metrics["verdict"] == DIFFERS).any() or len(self.status))

    def to_dict(self) -> dict:
        """Plain JSON-able data (NaN -> None)."""

        def records(frame: pd.DataFrame) -> list[dict]:
            clean = frame.astype(object).where(frame.notna(), None)
            return [
                {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
                for row in clean.to_dict("records")
            ]

        return {
            "ref": str(self.ref),
            "new": str(self.new),
            "shared_cells": self.shared,
            "rule": rule(self.tolerance),
            "tolerance": self.tolerance,
            "differs": self.differs,
            "metrics": records(self.metrics),
            "arms": records(self.arms),
            "cells": records(self.cells),
            "status_differs": records(self.status),
            "only_in_ref": records(self.only_ref),
            "only_in_new": records(self.only_new),
            "notes": list(self.notes),
        }


def rule(tolerance: float = DEFAULT_TOLERANCE) -> str:
    """The verdict rule in one sentence (for output and docs)."""
    return (
        f"identical = bit-equal; within noise = |difference| <= the larger of {NOISE_FACTOR:g} x "
        "REF's seed standard deviation (ddof=1) of the arm in its scope and the tolerance "
        f"{tolerance:g} (stored units; alone with one seed); otherwise differs"
    )


def _beyond_identical(difference: float, spread: float, tolerance: float) -> str:
    """NOISE or DIFFERS for a difference that is not identical."""
    allowed = max(NOISE_FACTOR * spread if np.isfinite(spread) else 0.0, tolerance)
    if np.isfinite(difference) and abs(difference) <= allowed:
        return NOISE
    return DIFFERS


def _verdict(ref: float, new: float, difference: float, spread: float, tolerance: float) -> str:
    if ref == new or (np.isnan(ref) and np.isnan(new)):
        return IDENTICAL
    return _beyond_identical(difference, spread, tolerance)


def _worst(verdicts) -> str:
    return max(verdicts, key=VERDICTS.index, default=IDENTICAL)


def _spreads(ref: Results, metrics: list[str]) -> pd.DataFrame:
    """REF's seed standard deviation per (arm, scope) and metric (NaN with one seed)."""
    return ref.ok.groupby(["arm", "scope"])[metrics].std(ddof=1)


def _cells(
    ref: Results, new: Results, shared: list[str], metrics: list[str], tolerance: float
) -> pd.DataFrame:
    ref_ok = ref.ok.set_index("run_id")
    new_ok = new.ok.set_index("run_id")
    both = [run_id for run_id in shared if run_id in ref_ok.index and run_id in new_ok.index]
    spreads = _spreads(ref, metrics)
    rows = []
    for run_id in both:
        r, n = ref_ok.loc[run_id], new_ok.loc[run_id]
        for metric in metrics:
            a, b = float(r[metric]), float(n[metric])
            spread = float(spreads.loc[(r["arm"], r["scope"]), metric])
            difference = b - a
            rows.append([run_id, r["arm"], r["scope"], r["seed"], metric, a, b, difference,
                         spread, _verdict(a, b, difference, spread, tolerance)])  # fmt: skip
    columns = [*LABELS, "metric", "ref", "new", "difference", "spread", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def _arms(cells: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    rows = []
    for (arm, scope, metric), group in cells.groupby(["arm", "scope", "metric"], sort=False):
        spread = float(group["spread"].iloc[0])
        if (group["verdict"] == IDENTICAL).all():
            verdict = IDENTICAL
        elif group["ref"].isna().ne(group["new"].isna()).any():
            verdict = DIFFERS  # measured in one folder only
        else:
            verdict = _beyond_identical(float(group["difference"].mean()), spread, tolerance)
        rows.append([arm, scope, metric, len(group), group["ref"].mean(), group["new"].mean(),
                     group["difference"].mean(), spread, verdict])  # fmt: skip
    columns = ["arm", "scope", "metric", "seeds", "ref_mean", "new_mean", "mean_difference",
               "spread", "verdict"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _metrics(cells: pd.DataFrame, arms: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    rows = []
    for metric in metrics:
        mine = cells[cells["metric"] == metric]
        counts = mine["verdict"].value_counts()
        arm_verdicts = arms.loc[arms["metric"] == metric, "verdict"]
        largest = mine["difference"].abs().max() if mine["difference"].notna().any() else np.nan
        rows.append([metric, len(mine), *(int(counts.get(v, 0)) for v in VERDICTS),
                     int((arm_verdicts == DIFFERS).sum()), largest, _worst(arm_verdicts)])  # fmt: skip
    columns = ["metric", "cells", "identical", "within_noise", "differs", "arms_differ",
               "max_abs_difference", "verdict"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _listed(results: Results, run_ids: list[str]) -> pd.DataFrame:
    rows = results.runs.set_index("run_id").loc[run_ids].reset_index()
    return rows[[*LABELS, "status"]].reset_index(drop=True)


def _pair(ref: Results, new: Results, pair_on: list[str]) -> list[str]:
    """Give NEW's cells the run_id of REF's cell with the same `pair_on` values (NEW's runs
    table is rewritten in place); returns notes. ReportInputError for a column either folder
    lacks, or a key that names several cells of one folder."""
    for results in (ref, new):
        lacking = [c for c in pair_on if c not in results.runs.columns]
        if lacking:
            raise ReportInputError(
                f"--pair-on: {quoted_path(results.folder)} has no column(s) "
                f"{', '.join(map(quoted, lacking))}; pair on runs.csv columns both folders have "
                "(e.g. regularizer,protocol,seed)"
            )
    keys = {}
    for name, results in (("REF", ref), ("NEW", new)):
        key = results.runs[pair_on].astype(str).agg("|".join, axis=1)
        twice = key[key.duplicated()]
        if len(twice):
            raise ReportInputError(
                f"--pair-on {','.join(pair_on)}: {name} has several cells with "
                f"{quoted(twice.iloc[0])}; add the columns that tell them apart (e.g. "
                "schedule, train_size, backbone; or pair on the report's arm)"
            )
        keys[name] = key
    ref_id = dict(zip(keys["REF"], ref.runs["run_id"], strict=True))
    paired = [ref_id.get(k) for k in keys["NEW"]]
    originals = new.runs["run_id"].tolist()
    new.runs["run_id"] = [p or f"unpaired:{o}" for p, o in zip(paired, originals, strict=True)]
    notes = [f"Cells paired on {', '.join(pair_on)}, not on run_id."]
    ref_rows = ref.runs.set_index("run_id")
    new_rows = new.runs.set_index("run_id")
    both = [i for i in new_rows.index if i in ref_rows.index]
    differing = []
    for column in schema.columns(RUNS_FILE, kind="configuration"):
        if column in ref_rows and column in new_rows and column not in pair_on:
            a = ref_rows.loc[both, column].astype(str)
            b = new_rows.loc[both, column].astype(str)
            if (a != b).any():
                values = sorted(set(a) - set(b)) + ["vs"] + sorted(set(b) - set(a))
                differing.append(f"{column} ({' '.join(values)})")
    if differing:
        notes.append(f"Paired cells differ in: {'; '.join(differing)}.")
    return notes


def compare_results(
    ref_dir: str | Path,
    new_dir: str | Path,
    metrics: list[str] | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    pair_on: list[str] | None = None,
) -> Comparison:
    """Compare NEW with REF (see the module docstring). Raises ReportInputError (one line naming
    the problem and the fix) for unreadable folders, unknown metrics, a negative tolerance, a
    bad `pair_on` or no shared cells."""
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ReportInputError(f"tolerance {tolerance!r}: give a number >= 0 (e.g. 1e-6)")
    chosen = compared_metrics() if metrics is None else list(metrics)
    known = compared_metrics()
    unknown = [m for m in chosen if m not in schema.METRICS or schema.METRICS[m].kind != "metric"]
    if unknown or not chosen:
        raise ReportInputError(
            f"unknown metric(s) {', '.join(map(quoted, unknown)) or '(none given)'}; choose "
            f"among {', '.join(known)}"
        )
    ref, new = load_results(ref_dir), load_results(new_dir)
    pair_notes = _pair(ref, new, list(pair_on)) if pair_on else []
    new_ids = set(new.runs["run_id"])
    shared = [run_id for run_id in ref.runs["run_id"] if run_id in new_ids]
    if not shared:
        raise ReportInputError(
            f"{quoted_path(ref_dir)} and {quoted_path(new_dir)} share no run_id; compare two "
            "runs of the same sweep (the cells' configurations decide their run_ids)"
        )
    ref_ids = set(ref.runs["run_id"])
    notes = list(pair_notes)
    absent = [m for m in chosen if m not in ref.runs or m not in new.runs]
    if absent and metrics is not None:
        raise ReportInputError(
            f"metric(s) {', '.join(map(quoted, absent))} are not columns of both runs.csv files; "
            "leave them out (or compare folders that both record them)"
        )
    if absent:  # the default set: metrics added after an older folder was written
        chosen = [m for m in chosen if m not in absent]
        notes.append(f"Not compared (a column of one folder only): {', '.join(absent)}.")
    if ref.sweep != new.sweep and not pair_on:
        notes.append(f"REF holds sweep {quoted(ref.sweep)}, NEW sweep {quoted(new.sweep)}.")
    for results in (ref, new):
        if results.absent_columns:
            notes.append(f"{results.folder} has no column(s) {', '.join(results.absent_columns)}.")
    status_ref = ref.runs.set_index("run_id")["status"]
    status_new = new.runs.set_index("run_id")["status"]
    changed = [run_id for run_id in shared if status_ref[run_id] != status_new[run_id]]
    status = _listed(ref, changed).rename(columns={"status": "ref_status"})
    status["new_status"] = [status_new[run_id] for run_id in changed]
    cells = _cells(ref, new, shared, chosen, tolerance)
    arms = _arms(cells, tolerance)
    return Comparison(
        ref=Path(ref_dir),
        new=Path(new_dir),
        shared=len(shared),
        cells=cells,
        arms=arms,
        metrics=_metrics(cells, arms, chosen),
        status=status,
        only_ref=_listed(ref, [i for i in ref.runs["run_id"] if i not in new_ids]),
        only_new=_listed(new, [i for i in new.runs["run_id"] if i not in ref_ids]),
        notes=notes,
        tolerance=tolerance,
    )
