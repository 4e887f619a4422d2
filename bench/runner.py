"""Running a sweep: the cells a results folder lacks, checked once per distinct input
(`preflight`), handed to an executor from the registry (bench.executors), each result recorded as
it comes (`run_sweep`). Progress goes to the caller's callbacks; nothing here prints.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from bench.arms import Scope
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
    keep_recorded: bool = True,
    **executor_options,
) -> dict:
    """Run the cells of `sweep` that `results` (a bench.results.ResultsDir) lacks with the named
    executor; returns counts ("ok", "failed", "skipped") and "wall_s".

    `executor_options` are checked against the executor's declared options first (ExecutorError;
    bench.executors.check_options); `executor_settings` merges them with the sweep file's.
    Under the results folder's lock: `on_start(cells)` once the cells to run are known and checked
    (preflight, unless `skip_preflight`), then `on_result(cfg, result)` after each is recorded.
    `progress` is passed to the executor: a factory of each cell's progress display
    (`bench.cli.progress.cell_display`), or None for none. With `keep_best_model` (local) and
    `keep_recorded`, a protocol's best cell recorded before this run is trained again to keep
    its model (bench.executors.local.keep_recorded_best; counts["kept_models"] says which).
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
        if options.get("keep_best_model") and keep_recorded:
            from bench.executors.local import keep_recorded_best

            counts["kept_models"] = keep_recorded_best(sweep.cells, results, progress)
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

    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    rows = ResultsDir(results.path / search.SEARCH_FOLDER).runs()
    recorded = {row["run_id"] for row in rows}
    for _ in range(2):  # the grid, then its trials past an edge (bench.search.extensions)
        trial_sweep = _trial_sweep(sweep, trials)
        if {c.run_id for c in trial_sweep.cells} - recorded:
            return trial_sweep, None, []
        extra = search.extensions(sweep.search, trials, rows)
        if not extra:
            break
        trials = trials + extra
    chosen, table = search.select(sweep.search, trials, rows)
    check_selection(results, table)  # what `sweep run` would refuse, status refuses too
    return (trial_sweep, *_final_sweep(sweep, chosen))


def _final_sweep(sweep: Sweep, chosen: dict) -> tuple[Sweep, list[str]]:
    """The sweep's cells with their group's selected values (bench.search.final_cells), as a
    sweep without a search, and the labels of cells left out (their group has no selection)."""
    from bench import search

    cells, labels, scopes, missing = search.final_cells(
        sweep.search, sweep.cells, sweep.labels, sweep.scopes, chosen
    )
    final = dataclasses.replace(sweep, cells=cells, labels=labels, scopes=scopes, search=None)
    return final, missing


def _trial_sweep(sweep: Sweep, trials: list, leave_out: set[str] = frozenset()) -> Sweep:
    """The trial cells of `trials` as a sweep of their own (labelled by trial, scope, arm and
    seed), without the run ids in `leave_out`."""
    from bench import search

    cells = [c for c in search.trial_cells(trials, sweep.name) if c.run_id not in leave_out]
    labels = {c.run_id: f"trial {t.index} {t.scope.text} arm={t.arm.label} seed={c.seed}"
              for t in trials for c in t.cells}  # fmt: skip
    scopes = {c.run_id: t.scope for t in trials for c in t.cells}
    return dataclasses.replace(
        sweep,
        cells=cells,
        labels=[labels[c.run_id] for c in cells],
        scopes=[scopes[c.run_id] for c in cells],
        search=None,
    )


def _run_search(sweep: Sweep, results, **options) -> dict:
    """Trials into results/<sweep>/search/, the selection into search.csv, then the sweep's
    cells with the selected values into `results` (docs/sweeps.md#hyperparameter-search).

    A selection search.csv records stays: with --retry-failed, the failed trials of an arm x
    scope that has one are not rerun (a better retried trial would change the values its cells
    already ran with); those of an arm x scope without one (every trial failed) are."""
    from bench import search
    from bench.results import ResultsDir, safe_path

    start = time.time()
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    results.check()  # a link out of the folder (search/ itself, or anything in it) refused
    folder = ResultsDir(safe_path(results.path, search.SEARCH_FOLDER, folder=True, create=True))
    kept_failed: set[str] = set()
    if options.get("retry_failed"):
        recorded = _selection(results.search_rows())
        kept_failed = folder.failed_ids() & {
            c.run_id for t in trials if (t.scope, t.arm.label) in recorded for c in t.cells
        }
    first = run_sweep(_trial_sweep(sweep, trials, kept_failed), folder, keep_recorded=False,
                      **options)  # fmt: skip
    first["skipped"] += len(kept_failed)
    extra = search.extensions(sweep.search, trials, folder.runs())
    if extra:  # a group's best value at an edge of the grid: one trial a step past it
        more = run_sweep(_trial_sweep(sweep, extra), folder, keep_recorded=False, **options)
        first = {key: first[key] + more[key] for key in ("ok", "failed", "skipped")}
        trials = trials + extra
    chosen, table = search.select(sweep.search, trials, folder.runs())
    final, missing = _final_sweep(sweep, chosen)
    with results.lock():
        check_selection(results, table)
        merged = _merge_search(results.search_rows(), table)
        if merged:  # a header without rows is no search.csv (the report refuses one)
            results.write_search(merged)
    second = run_sweep(final, results, **options)
    counts = {key: first[key] + second[key] for key in ("ok", "failed", "skipped")}
    trial_count = len({c.run_id for t in trials for c in t.cells})
    counts.update(wall_s=time.time() - start, trials=trial_count, unselected=missing)
    return counts


def check_selection(results, table: list[dict[str, Any]]) -> None:
    """SearchError when the selection `table` (bench.search.select on the trials' rows) differs
    from the one search.csv records while runs.csv already holds cells (they ran with the
    recorded values). Shared by `sweep run` and `sweep status` (search_phases)."""
    changed = _changed_selection(results.search_rows(), table)
    if changed and results.runs():
        raise SearchError(
            f"{results.path}: the search now selects other values than the cells already in "
            f"runs.csv ran with ({changed}; an edited [search] table, sweep file or search.csv, "
            "or trials rerun after search.csv was written); move that folder away or give "
            "another --results-dir"
        )


def _selection(rows: list[dict[str, Any]]) -> dict[tuple[Scope, str], dict[str, float]]:
    """(scope, arm label) -> the selected values, from search.csv rows (as
    ResultsDir.search_rows reads them: text, the scope a Scope, checked; or as
    bench.search.select makes them)."""
    chosen: dict[tuple[Scope, str], dict[str, float]] = {}
    for row in rows:
        if str(row["selected"]) == "1":
            value = float(row["value"])
            chosen.setdefault((row["scope"], row["arm"]), {})[row["parameter"]] = value
    return chosen


def _changed_selection(old_rows: list[dict[str, Any]], table: list[dict[str, Any]]) -> str:
    """The first arm x scope whose selected values in `table` differ from the ones search.csv
    recorded (`old_rows`); "" when none does (arms absent from either side, e.g. under --only,
    are fine). Values compare exactly: search.csv holds repr(float), which reads back the same."""
    old, new = _selection(old_rows), _selection(table)
    for key in old.keys() & new.keys():
        if old[key] != new[key]:
            scope = key[0].text or "the one scope"
            return f"{key[1]} in {scope}: {old[key]} then, {new[key]} now"
    return ""


def _merge_search(old_rows: list[dict[str, Any]], table: list[dict[str, Any]]) -> list[dict]:
    """search.csv's new rows: the recorded rows of the arm x scopes `table` does not cover (run
    earlier, e.g. under another --only), then `table`. A recorded row whose scope is a legacy
    label of no `name=value` form (an [[extra]] cell's, bench.arms.legacy_scope) has no columns
    to be written in: its arm x scope is searched again under its typed scope, so it is dropped."""
    covered = {(row["scope"], row["arm"]) for row in table}
    kept = [row for row in old_rows if not row["scope"].verbatim]
    return [row for row in kept if (row["scope"], row["arm"]) not in covered] + table
