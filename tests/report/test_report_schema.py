"""The report follows bench.schema: a metric declared there reaches summary.csv and the tables
with no list in bench/report to update (issue 11: adding a metric is one declaration)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from report_fixtures import make_results

from bench import schema
from bench.report import build_report, columns, load, style, tables

EXTRA = schema.Column("sharpness", schema.RUNS_FILE, "metric", "float", label="sharpness",
                      unit="%", scale=100, decimals=1, better=-1)  # fmt: skip
PLANTED = {"none": 0.10, "cutmix": 0.20}  # plus 0.01 x seed


@pytest.fixture
def declared(monkeypatch):
    """EXTRA declared in runs.csv as one more line of schema.RUNS would declare it."""
    runs = [*schema.RUNS, EXTRA]
    monkeypatch.setitem(schema.DECLARED, schema.RUNS_FILE, runs)
    monkeypatch.setitem(schema.FILES, schema.RUNS_FILE, [c.name for c in runs])
    monkeypatch.setitem(schema.METRICS, EXTRA.name, EXTRA)
    return EXTRA


def _results_with_extra(folder) -> None:
    arms = [("none", "constant"), ("cutmix", "constant")]
    runs = make_results(folder, arms=arms, protocols=("frozen",), seeds=(0, 1), robustness=False)
    runs[EXTRA.name] = runs["regularizer"].map(PLANTED) + 0.01 * runs["seed"]
    runs.to_csv(folder / "runs.csv", index=False)


def test_a_declared_metric_is_read_as_a_number_and_summarized(tmp_path, declared):
    _results_with_extra(tmp_path)
    assert declared.name in columns.run_metrics() and declared.name in style.metrics()
    assert list(style.metrics())[-1] == declared.name  # not in METRIC_ORDER: appended
    results = load.load_results(tmp_path)
    assert results.ok[declared.name].dtype == float
    summary = tables.summary_table(results).set_index("arm")
    assert summary.at["cutmix", "sharpness_mean"] == pytest.approx(0.205)
    assert summary.at["none", "sharpness_n"] == 2
    # bold = significantly better than none: cutmix is significantly higher (worse: lower is
    # better, as declared), and none is the baseline itself
    assert not summary.at["cutmix", "sharpness_beats_none"]
    assert not summary.at["none", "sharpness_beats_none"]


def test_a_declared_metric_reaches_summary_csv_and_the_markdown_table(
    tmp_path, declared, monkeypatch
):
    _results_with_extra(tmp_path / "results")
    # Shown in the main table because its declaration says so (`table=True`); summary.csv has
    # every declared metric either way.
    monkeypatch.setitem(schema.METRICS, declared.name, dataclasses.replace(declared, table=True))
    build_report(tmp_path / "results", tmp_path / "report")
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    fields = [f"sharpness_{f}" for f in ("mean", "std", "n", "ci_low", "ci_high", "beats_none")]
    assert set(fields) <= set(summary.columns)
    assert summary.set_index("arm").at["cutmix", "sharpness_mean"] == pytest.approx(0.205)
    markdown = (tmp_path / "report" / "tables" / "summary.md").read_text()
    header, _, *rows = markdown.splitlines()
    assert header.endswith("| sharpness (%) |")  # label and unit from the declaration
    cutmix = next(row for row in rows if "| cutmix |" in row)
    assert cutmix.endswith("| 20.5 ± 0.7 |")  # scale and decimals from the declaration
    assert "sharpness" in (tmp_path / "report" / "report.md").read_text()


def test_an_undeclared_column_stays_out_of_the_report(tmp_path):
    _results_with_extra(tmp_path)  # sharpness written, but not declared in this test
    summary = tables.summary_table(load.load_results(tmp_path))
    assert not [c for c in summary.columns if c.startswith("sharpness")]
