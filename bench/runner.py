"""Running a sweep: the cells a results folder lacks, checked once per distinct input
(`preflight`), handed to an executor from the registry (bench.executors), each result recorded as
it comes (`run_sweep`). Progress goes to the caller's callbacks; nothing here prints.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from bench.config import RunConfig
from bench.executors import EXECUTORS, check_options
from bench.sweep import Sweep

# Fields that identify the input of bench.train.preflight (data + weights checks).
PREFLIGHT_FIELDS = (
    "dataset", "data_dir", "backbone", "pretrained", "train_size", "val_size", "test_size",
)  # fmt: skip


class PreflightError(RuntimeError):
    """bench.train.preflight refused a cell (missing data, unreadable weights, ...)."""


def preflight(cells: list[RunConfig]) -> None:
    """bench.train.preflight once per distinct data/backbone/weights input, before any training."""
    from bench.train import preflight as check

    seen = set()
    for cfg in cells:
        key = tuple(getattr(cfg, name) for name in PREFLIGHT_FIELDS)
        if key not in seen:
            seen.add(key)
            try:
                check(cfg)
            except Exception as error:  # noqa: BLE001 - any reason: report it, run nothing
                what = ", ".join(f"{name}={getattr(cfg, name)!r}" for name in PREFLIGHT_FIELDS)
                raise PreflightError(f"cell {cfg.run_id} ({what}): {error}") from error


def cells_to_run(sweep: Sweep, rows: list[dict[str, str]], retry_failed: bool) -> list[RunConfig]:
    """The cells of `sweep` without a row in `rows` (runs.csv), or with a failed one when
    `retry_failed`, in the sweep's order."""
    status = {row["run_id"]: row.get("status") for row in rows}
    keep = {"ok"} if retry_failed else {"ok", "failed"}
    return [cfg for cfg in sweep.cells if status.get(cfg.run_id) not in keep]


def executor_settings(
    sweep: Sweep, name: str | None, given: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(executor, options) for running `sweep`: `name` (--executor), else the sweep file's
    [executor] name, else "local"; the file's options, overridden by `given` (the flags set on
    the command line). A --executor other than the file's keeps only the file's options it
    declares too. Checked (bench.executors.ExecutorError), defaults filled in."""
    from_file = dict(sweep.executor)
    file_name = from_file.pop("name", "local")
    chosen = name or file_name
    if chosen != file_name and chosen in EXECUTORS:
        declared = {option.name for option in EXECUTORS[chosen].options}
        from_file = {key: value for key, value in from_file.items() if key in declared}
    return chosen, check_options(chosen, {**from_file, **given})


def run_sweep(
    sweep: Sweep,
    results,
    *,
    executor: str = "local",
    retry_failed: bool = False,
    progress: Callable[[RunConfig], Any] | None = None,
    skip_preflight: bool = False,
    on_start: Callable[[list[RunConfig]], None] | None = None,
    on_result: Callable[[RunConfig, Any], None] | None = None,
    **executor_options,
) -> dict:
    """Run the cells of `sweep` that `results` (a bench.results.ResultsDir) lacks with the named
    executor; returns counts ("ok", "failed", "skipped") and "wall_s".

    `executor_options` are checked against the executor's declared options first (ExecutorError;
    bench.executors.check_options); `executor_settings` merges them with the sweep file's.
    Under the results folder's lock: `on_start(cells)` once the cells to run are known and checked
    (preflight, unless `skip_preflight`), then `on_result(cfg, result)` after each is recorded.
    `progress` is passed to the executor: a factory of each cell's progress display
    (`bench.cli.progress.cell_display`), or None for none.
    """
    from bench import model_io  # noqa: F401 - registers the lock-time repair of kept models

    options = check_options(executor, executor_options)
    if sweep.search is not None:
        return _run_search(
            sweep, results, executor=executor, retry_failed=retry_failed, progress=progress,
            skip_preflight=skip_preflight, on_start=on_start, on_result=on_result, **options,
        )  # fmt: skip
    start = time.time()
    with results.lock():
        todo = cells_to_run(sweep, results.runs(), retry_failed)
        counts = {"ok": 0, "failed": 0, "skipped": len(sweep.cells) - len(todo)}
        if todo and not skip_preflight:
            preflight(todo)
        if on_start is not None:
            on_start(todo)

        def record(cfg: RunConfig, result) -> None:
            counts[result.row["status"]] += 1
            if on_result is not None:
                on_result(cfg, result)

        EXECUTORS[executor].run(todo, results, on_result=record, progress=progress, **options)
    counts["wall_s"] = time.time() - start
    return counts


class SearchError(RuntimeError):
    """A search sweep cannot go on (its results folder holds cells of another selection)."""


def search_phases(sweep: Sweep, results) -> tuple[Sweep, Sweep | None, list[str]]:
    """A search sweep's two phases: (the trial cells as a sweep, the final cells with each
    group's selected values or None while a trial cell has no row yet, the labels of final cells
    left out because every trial of their group failed). Reads results/<sweep>/search/."""
    from bench import search
    from bench.results import ResultsDir

    trials = search.trials(sweep.search, sweep.cells, sweep.labels)
    cells = search.trial_cells(trials, sweep.name)
    labels = {c.run_id: f"trial {t.index} {t.scope} arm={t.arm} seed={c.seed}"
              for t in trials for c in t.cells}  # fmt: skip
    trial_sweep = dataclasses.replace(
        sweep, cells=cells, labels=[labels[c.run_id] for c in cells], search=None
    )
    folder = ResultsDir(results.path / search.SEARCH_FOLDER)
    rows = folder.runs()
    if {c.run_id for c in cells} - {row["run_id"] for row in rows}:
        return trial_sweep, None, []
    chosen, _ = search.select(sweep.search, trials, rows)
    final, final_labels, missing = search.final_cells(sweep.cells, sweep.labels, chosen)
    return (
        trial_sweep,
        dataclasses.replace(sweep, cells=final, labels=final_labels, search=None),
        missing,
    )


def _run_search(sweep: Sweep, results, **options) -> dict:
    """Trials into results/<sweep>/search/, the selection into search.csv, then the sweep's
    cells with the selected values into `results` (docs/sweeps.md#hyperparameter-search)."""
    from bench import search
    from bench.results import ResultsDir

    start = time.time()
    trial_sweep, _, _ = search_phases(sweep, results)
    folder = ResultsDir(results.path / search.SEARCH_FOLDER)
    first = run_sweep(trial_sweep, folder, **options)
    trials = search.trials(sweep.search, sweep.cells, sweep.labels)
    chosen, table = search.select(sweep.search, trials, folder.runs())
    final, labels, missing = search.final_cells(sweep.cells, sweep.labels, chosen)
    with results.lock():
        changed = _changed_selection(results, table)
        if changed and results.runs():
            raise SearchError(
                f"{results.path}: the search now selects other values than the cells already in "
                f"runs.csv ran with ({changed}; an edited [search] table or sweep file); move "
                "that folder away or give another --results-dir"
            )
        results.write_search(table)
    second = run_sweep(dataclasses.replace(sweep, cells=final, labels=labels, search=None),
                       results, **options)  # fmt: skip
    counts = {key: first[key] + second[key] for key in ("ok", "failed", "skipped")}
    counts.update(wall_s=time.time() - start, trials=len(trial_sweep.cells), unselected=missing)
    return counts


def _changed_selection(results, table: list[dict[str, Any]]) -> str:
    """The first arm x scope whose selected values differ from the ones the folder's search.csv
    recorded ("" when none does; arms absent from either side, e.g. under --only, are fine)."""
    from bench.results import read_table
    from bench.schema import SEARCH_FILE

    _, old_rows = read_table(results.path / SEARCH_FILE)

    def selection(rows) -> dict[tuple[str, str], dict[str, float]]:
        chosen: dict[tuple[str, str], dict[str, float]] = {}
        for row in rows:
            if str(row["selected"]) == "1":
                value = float(row["value"])
                chosen.setdefault((row["scope"], row["arm"]), {})[row["parameter"]] = value
        return chosen

    old, new = selection(old_rows), selection(table)
    for key in old.keys() & new.keys():
        if old[key] != new[key]:
            return f"{key[1]} in {key[0] or 'the one scope'}: {old[key]} then, {new[key]} now"
    return ""
