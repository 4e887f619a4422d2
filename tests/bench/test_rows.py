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
