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


def test_row_has_every_column_but_the_metrics_in_order_config_by_name():
    row = rows.runs_row(CFG)
    metrics = columns(RUNS_FILE, kind="metric")
    assert list(row) == [name for name in RUNS_COLUMNS if name not in metrics]
    assert (row["run_id"], row["sweep"], row["status"], row["error"]) == (
        CFG.run_id,
        "t",
        "failed",
        "",
    )
    for name in rows.FROM_CONFIG:
        assert row[name] == getattr(CFG, name), name
    assert not set(metrics) & set(row)  # a metric is what a phase returns, never pre-filled
    assert all(row[name] is None for name in rows.ENVIRONMENT)


def test_cell_row_is_the_start_updated_with_each_phase_record():
    start = rows.runs_row(CFG)
    setup = {"pretrained": "hub:x", "train_size": 10, "channels_last": 0}
    row = rows.cell_row(start, setup, {"test_acc": 0.5}, {"status": "ok"})
    assert row["pretrained"] == "hub:x" and row["train_size"] == 10  # resolved by set-up
    assert (row["test_acc"], row["status"], row["run_id"]) == (0.5, "ok", CFG.run_id)
    assert start["pretrained"] == CFG.pretrained and "test_acc" not in start  # start unchanged


def test_cell_row_refuses_an_undeclared_column_and_one_fact_from_two_phases():
    start = rows.runs_row(CFG)
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['test_accuracy'\]"):
        rows.cell_row(start, {"test_accuracy": 0.5})
    with pytest.raises(ValueError, match=r"column\(s\) \['test_acc'\] given by records 0 and 2"):
        rows.cell_row(start, {"test_acc": 0.5}, {"val_acc": 0.4}, {"test_acc": 0.6})


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
