"""A results folder (the CSVs of docs/results-schema) loaded into one `Results` object.

`load_results` runs the jobs in order: `read` (each CSV read and validated against the
declarations in `bench.schema`, which columns through `columns`; several folders of one sweep
joined by `merge`; search.csv checked by `search_csv`) -> `derive` (the arm, scope and rest labels
and the derived metrics) -> `outcomes` (the per-image test outcomes, where present) -> `notes`
(what the reader must know about the rows). Every problem a user can fix raises
`ReportInputError` with one line that names the problem and the fix; nothing here draws or
computes statistics.

A configuration column that search.csv names as a searched parameter (e.g. `lr`) was selected
per arm: it differs between the arms of one scope by design, so it does not split scopes (like
`data_seed` when it follows `seed`), and the notes say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench import schema  # column declarations only: no torch behind it
from bench.arms import Arm
from bench.report import derive, notes, outcomes, style
from bench.report.columns import RUNS_FILE, config_columns, extension_config, run_metrics
from bench.report.errors import ReportInputError, quoted_path
from bench.report.merge import merge_runs
from bench.report.read import check_runs, read_runs, read_side, results_folder
from bench.report.search_csv import read_search, searched_config

__all__ = ["ReportInputError", "Results", "load_results"]


@dataclass(frozen=True, eq=False)
class Results:
    """One sweep's results, as loaded: plain data, every field filled by `load_results`.

    `runs` holds every row of runs.csv (ok and failed), with the `derive` columns; `ok` and
    `failed` its finished and failed rows. The side tables hold rows of ok cells only, with the
    `derive.JOINED` labels of their cell added.
    """

    folder: Path  # the (first) results folder
    folders: list[Path]  # every folder merged (one usually)
    sweep: str
    runs: pd.DataFrame
    ok: pd.DataFrame  # runs with status ok
    failed: pd.DataFrame  # runs with status failed
    varying: list[str]  # config columns (besides protocol) that take several values
    # the varying columns fixed by the protocol (e.g. a per-protocol lr): shown with the
    # protocol in figure column titles instead of adding figure rows
    protocol_bound: list[str]
    facet_columns: list[str]  # the varying columns that make figure rows (not protocol_bound)
    scope_columns: list[str]  # protocol, then the varying columns
    # every configuration column compared: config_columns(), then the extension_config()
    # columns this runs.csv has, less those the search selected per arm
    config_columns: list[str]
    protocols: list[str]  # in their usual order
    rests: list[str]  # the `rest` labels (figure rows), in the order of their column values
    scopes: list[str]  # every scope label, protocol-major: protocols in order, then rests
    # arm label -> its `bench.arms.Arm` (regularizer, schedule, variant) for every arm of the sweep
    arms: dict[str, Arm]
    # every arm of the sweep (failed ones too), in display order, with colour and marker
    styles: dict[str, style.ArmStyle]
    # an arm's family (`style.family`: regularizer and schedule) -> the labels of its arms (one
    # per parameter variant), in order
    variants: dict[Arm, list[str]]
    # protocol -> figure column title: 'unfrozen', or 'unfrozen, lr=0.01' (a protocol_bound lr)
    column_titles: dict[str, str]
    measured: set[str]  # runs columns that at least one ok cell holds a value of
    epochs: pd.DataFrame | None
    calibration: pd.DataFrame | None
    robustness: pd.DataFrame | None
    absent_columns: list[str]  # optional runs.csv metrics missing
    notes: list[str]  # things the reader should know
    # run_id -> {"label", "pred", "conf"} arrays [N] from outcomes/<run_id>.npz (checked)
    outcomes: dict[str, dict[str, np.ndarray]]
    # search.csv's rows (every trial x searched parameter, checked), or None without a search
    search: pd.DataFrame | None
    # configuration columns the search selected per arm (e.g. lr): left out of the scopes
    selected_per_arm: list[str]


def _folders(folder: str | Path | list[str | Path]) -> list[Path]:
    """The results folders given, checked, each once."""
    given = [folder] if isinstance(folder, (str, Path)) else list(folder)
    if not given:
        raise ReportInputError("no results folder given; pass one (e.g. results/cpu-quick)")
    folders = [results_folder(f) for f in given]
    resolved = [f.resolve() for f in folders]
    for index, path in enumerate(resolved):
        if path in resolved[:index]:
            raise ReportInputError(
                f"results folder {quoted_path(folders[index])} is given twice; pass each once"
            )
    return folders


def load_results(folder: str | Path | list[str | Path]) -> Results:
    """Read a results folder, or several folders of one sweep merged into one; raise
    ReportInputError with a one-line fix for bad input."""
    folders = _folders(folder)
    tables = [read_runs(f / RUNS_FILE) for f in folders]
    runs, merge_notes, kept_from = tables[0], [], None
    if len(folders) > 1:
        runs, note, kept_from = merge_runs(folders, tables)
        check_runs(runs)
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
    search = read_search(folders)
    searched = searched_config(search, config_columns() + extension)
    compared = [c for c in config_columns() + extension if c not in searched]
    varying, bound, arms = derive.add_labels(runs, compared)
    derive.add_derived(runs)
    found = merge_notes + notes.row_notes(runs, compared, arms)
    found += notes.search_notes(search, searched)
    sides = {}
    for name, file in [("epochs", schema.EPOCHS_FILE), ("calibration", schema.CALIBRATION_FILE),
                       ("robustness", schema.ROBUSTNESS_FILE)]:  # fmt: skip
        table = read_side(folders, file, kept_from)
        sides[name], stray = (None, []) if table is None else derive.attach(table, runs, file)
        found += stray
    derive.add_calibration_parts(runs, sides["calibration"])
    ok, failed = runs[runs["status"] == "ok"], runs[runs["status"] == "failed"]
    read, refused = outcomes.read_all(ok["run_id"], folders)
    facets = [c for c in varying if c not in bound]
    protocols = style.order_protocols(runs["protocol"].unique())
    rests = derive.rests(runs, facets)
    styles = style.arm_styles(arms.values())
    return Results(
        folder=folders[0],
        folders=folders,
        sweep=str(runs["sweep"].iloc[0]),
        runs=runs,
        ok=ok,
        failed=failed,
        varying=varying,
        protocol_bound=bound,
        facet_columns=facets,
        scope_columns=["protocol", *varying],
        config_columns=compared,
        protocols=protocols,
        rests=rests,
        scopes=derive.scopes(runs, protocols, rests),
        arms=arms,
        styles=styles,
        variants=derive.variants(arms, styles),
        column_titles=derive.column_titles(runs, protocols, bound),
        measured={c for c in runs.columns if ok[c].notna().any()},
        **sides,
        absent_columns=[c for c in absent if c not in derive.COMPLETED],
        notes=found + refused,
        outcomes=read,
        search=search,
        selected_per_arm=searched,
    )
