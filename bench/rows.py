"""The rows a cell produces, and the one builder of a runs.csv row.

`runs_row(cfg, environment)` starts a cell's row from the declarations in bench.schema: every
runs.csv column in file order, the identity (run_id, sweep, `sweep_cells`: the sweep's cell
count, empty for a single run; status "failed" until the cell says otherwise), each
configuration column read from the RunConfig field of the same name, the environment columns
as given (bench.provenance.environment); no metric (a metric is what a phase of the cell
returns). Two configuration columns are not a field as is: `regularizer_params` (JSON of every
parameter the built regularizer uses, defaults and schedule included) and `schedule` (its
schedule's name).
`cell_row(start, *records)` is the finished row: the start updated with what each phase of the
cell returned (bench.train: set-up overwrites `pretrained` with the weights source actually used
and `train_size` with the training images actually drawn; the other phases return the metrics),
refusing a column no declaration names or that two records both give. The writer
(bench.results.check_runs_row) refuses an ok row that lacks a declared metric.

Imports nothing heavy (no torch): executors and the writer use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.config import RunConfig, build_regularizer
from bench.schema import RUNS_COLUMNS, RUNS_FILE, columns

# Configuration columns whose value is not the RunConfig field of that name as is.
FROM_REGULARIZER = ("regularizer_params", "schedule")
# Configuration columns read from the RunConfig field of the same name.
FROM_CONFIG = [c for c in columns(RUNS_FILE, kind="configuration") if c not in FROM_REGULARIZER]
ENVIRONMENT = columns(RUNS_FILE, kind="environment")
# The columns a row starts with: every runs.csv column but the metrics.
STARTING = [c for c in RUNS_COLUMNS if c not in columns(RUNS_FILE, kind="metric")]


@dataclass
class CellResult:
    """What one finished cell produced: rows for each results file (columns in bench.schema)."""

    row: dict[str, Any]  # one runs.csv row; row["status"] is "ok" or "failed"
    epochs: list[dict[str, Any]] = field(default_factory=list)  # epochs.csv rows
    calibration: list[dict[str, Any]] = field(default_factory=list)  # calibration.csv rows
    robustness: list[dict[str, Any]] = field(default_factory=list)  # robustness.csv rows
    test_logits: Any = None  # numpy float16 [N, 10] when cfg.save_logits, else None
    test_labels: Any = None  # numpy int64 [N], the labels of test_logits
    # Per-image test outcomes, every ok cell: {"label": uint8 [N], "pred": uint8 [N],
    # "conf": float16 [N]} in the test subset's order (bench.results.OUTCOMES_ARRAYS); else None
    outcomes: dict[str, Any] | None = None
    model: Any = None  # the trained torch module when train_cell(keep_model=True)
    log: str = (
        ""  # the cell's log text (bench.executors.base.CellLog), written to logs/<run_id>.log
    )


def regularizer_columns(cfg: RunConfig) -> dict[str, Any]:
    """regularizer_params (JSON, sorted keys) and schedule as the built regularizer reports them;
    the configured parameters and "constant" when they do not build one."""
    try:
        reg = build_regularizer(cfg, 10)
        params, schedule = reg.params(), reg.schedule_name
    except (TypeError, ValueError):
        params, schedule = dict(cfg.regularizer_params), "constant"
    return {"regularizer_params": json.dumps(params, sort_keys=True), "schedule": schedule}


def runs_row(
    cfg: RunConfig,
    environment: Mapping[str, Any] | None = None,
    *,
    build_regularizer: bool = True,
) -> dict[str, Any]:
    """A cell's runs.csv row before it has measured anything (see the module docstring).

    build_regularizer=False (a fallback when even that fails) leaves `schedule` empty and writes
    the configured `regularizer_params`. Raises ValueError on an environment key that is not a
    declared environment column.
    """
    environment = dict(environment or {})
    unknown = sorted(set(environment) - set(ENVIRONMENT))
    if unknown:
        raise ValueError(
            f"environment column(s) {unknown} are not declared; add them to bench.schema.RUNS "
            "with kind 'environment'"
        )
    row: dict[str, Any] = dict.fromkeys(STARTING)
    row.update(run_id=cfg.run_id, sweep=cfg.sweep, status="failed", error="")
    row["sweep_cells"] = cfg.sweep_cells or None  # 0: a single run, not part of a sweep
    row["sweep_file_sha256"] = cfg.sweep_file_sha256 or None
    row["identity_version"] = cfg.identity_version  # the rule run_id was made by (bench.config)
    row.update({name: getattr(cfg, name) for name in FROM_CONFIG})
    if build_regularizer:
        row.update(regularizer_columns(cfg))
    else:
        params = dict(cfg.regularizer_params)
        row["regularizer_params"] = json.dumps(params, sort_keys=True, default=str)
    row.update(environment)
    return row


def cell_row(start: Mapping[str, Any], *records: Mapping[str, Any]) -> dict[str, Any]:
    """A cell's runs.csv row: `start` (runs_row) updated with each record, in order (what a
    phase of the cell returned: runs.csv columns). ValueError on a column that bench.schema does
    not declare for runs.csv, or that two records both give (one fact, one phase)."""
    row = dict(start)
    given: dict[str, int] = {}
    for number, record in enumerate(records):
        unknown = sorted(set(record) - set(RUNS_COLUMNS))
        if unknown:
            raise ValueError(
                f"runs.csv: unknown column(s) {unknown} in record {number} of the cell; "
                "declare them in bench.schema.RUNS"
            )
        twice = sorted(name for name in record if name in given)
        if twice:
            raise ValueError(f"runs.csv: column(s) {twice} given by records {given[twice[0]]} "
                             f"and {number} of the cell; one phase measures each")  # fmt: skip
        given.update(dict.fromkeys(record, number))
        row.update(record)
    return row
