"""bench.rows: the one runs.csv row builder, derived from the schema's declarations."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench import rows
from bench.config import RunConfig
from bench.schema import RUNS_COLUMNS, RUNS_FILE, columns

CFG = RunConfig(sweep="t", regularizer="cutmix", regularizer_params={"alpha": 0.5}, lr=0.1)


def test_every_configuration_column_is_a_runconfig_field_or_named_special():
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    config_columns = columns(RUNS_FILE, kind="configuration")
    assert set(config_columns) == set(rows.FROM_CONFIG) | set(rows.FROM_REGULARIZER)
    assert set(rows.FROM_CONFIG) <= fields, set(rows.FROM_CONFIG) - fields


def test_row_has_every_column_in_order_config_by_name_metrics_empty():
    row = rows.runs_row(CFG)
    assert list(row) == RUNS_COLUMNS
    assert (row["run_id"], row["sweep"], row["status"], row["error"]) == (
        CFG.run_id,
        "t",
        "failed",
        "",
    )
    for name in rows.FROM_CONFIG:
        assert row[name] == getattr(CFG, name), name
    assert all(row[name] is None for name in columns(RUNS_FILE, kind="metric"))
    assert all(row[name] is None for name in rows.ENVIRONMENT)


def test_regularizer_columns_come_from_the_built_regularizer():
    row = rows.runs_row(CFG)
    params = json.loads(row["regularizer_params"])
    assert params["alpha"] == 0.5 and "label_smoothing" in params  # defaults included
    assert row["schedule"] == "constant"
    staged = rows.runs_row(CFG.replace(regularizer_params={"schedule": "staged"}))
    assert staged["schedule"] == "staged"
    # Parameters that build no regularizer: the configured ones, schedule "constant".
    bad = rows.runs_row(CFG.replace(regularizer_params={"alpha": -1}))
    assert json.loads(bad["regularizer_params"]) == {"alpha": -1} and bad["schedule"] == "constant"
    # The fallback that builds nothing: configured parameters, schedule unknown.
    bare = rows.runs_row(CFG, build_regularizer=False)
    assert json.loads(bare["regularizer_params"]) == {"alpha": 0.5} and bare["schedule"] is None


def test_environment_is_written_and_undeclared_keys_refused():
    row = rows.runs_row(CFG, {"device": "cpu:x", "git_commit": "abc"})
    assert row["device"] == "cpu:x" and row["git_commit"] == "abc"
    with pytest.raises(ValueError, match="not declared; add them to bench.schema"):
        rows.runs_row(CFG, {"hostname": "h"})


def test_sweep_cells_is_empty_for_a_single_run_and_the_count_in_a_sweep():
    assert rows.runs_row(CFG)["sweep_cells"] is None  # 0 = not part of a sweep
    assert rows.runs_row(CFG.replace(sweep_cells=45))["sweep_cells"] == 45
    assert "sweep_cells" not in rows.FROM_CONFIG  # identity: never splits arms or scopes
    assert CFG.replace(sweep_cells=45).run_id == CFG.run_id
    from bench.config import check_config

    with pytest.raises(ValueError, match=r"sweep_cells=-1 is invalid; allowed: an integer >= 0"):
        check_config(CFG.replace(sweep_cells=-1))


def test_issue_12_metric_columns_are_declared_once_with_ranges():
    from bench.schema import METRICS, RUNS

    declared = {c.name: c for c in RUNS}
    new = ["robust_clean_acc", "occlusion_retained", "corruption_retained", "flip_rate_correct"]
    assert RUNS_COLUMNS.index("log") < min(RUNS_COLUMNS.index(n) for n in new)
    for name in new:
        column = declared[name]
        assert column.kind == "metric" and not column.required and name in METRICS
        assert column.low == 0.0 and column.label and column.better != 0
    assert declared["robust_clean_acc"].high == 1.0 and declared["flip_rate_correct"].high == 1.0
    assert declared["occlusion_retained"].high is None  # a perturbation can fix predictions
    assert (
        declared["flip_rate_correct"].better == -1 and declared["corruption_retained"].better == 1
    )
    assert (declared["sweep_cells"].kind, declared["sweep_cells"].dtype) == ("identity", "int")
