"""The report's Convergence section: per scope and arm, whether training had stopped improving
(runs.csv val_gain_last20 and converged), with the arm mean's interval; absent when no cell
recorded the gain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_fixtures import make_results

from bench import schema
from bench.report import build_report, tables
from bench.report.tables import IMPROVING, PLATEAUED, UNCLEAR, convergence_status

ARMS = [("none", "constant"), ("mixup", "constant"), ("cutmix", "constant")]
SEEDS = tuple(range(6))
# Planted gains over the last fifth per arm, one value per seed (fractions): none steady below
# the threshold, cutmix clearly still climbing, mixup a mean below the threshold whose seeds
# spread too far to call it a plateau.
GAINS = {
    "none": [0.001, -0.002, 0.003, 0.0, 0.002, -0.001],
    "cutmix": [0.020, 0.025, 0.018, 0.030, 0.022, 0.027],
    "mixup": [0.060, -0.050, 0.040, -0.045, 0.050, -0.040],
}


def test_status_follows_the_interval_and_the_threshold() -> None:
    threshold = schema.CONVERGED_GAIN
    assert convergence_status(-0.01, threshold / 2) == PLATEAUED
    assert convergence_status(-0.05, -0.02) == PLATEAUED  # a loss counts as converged
    assert convergence_status(0.001, threshold / 2) == PLATEAUED  # a real but small gain
    assert convergence_status(-0.01, threshold) == UNCLEAR  # the rule is strict (<)
    assert convergence_status(0.001, threshold) == IMPROVING
    assert convergence_status(0.01, 0.03) == IMPROVING
    assert convergence_status(0.0, 0.03) == UNCLEAR
    assert convergence_status(-0.001, 0.001 + threshold) == UNCLEAR  # mean below, seeds can't tell


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("convergence")
    runs = make_results(folder / "results", arms=ARMS, protocols=("frozen",), seeds=SEEDS)
    pairs = zip(runs["regularizer"], runs["seed"], strict=True)
    runs["val_gain_last20"] = [GAINS[regularizer][seed] for regularizer, seed in pairs]
    runs["converged"] = (runs["val_gain_last20"] < schema.CONVERGED_GAIN).astype(int)
    runs.to_csv(folder / "results" / "runs.csv", index=False)
    index = build_report(folder / "results", folder / "report")
    return folder, runs, index


def _row(page: str, arm: str) -> str:
    section = page.split("## Convergence")[1].split("## ")[0]
    return next(line for line in section.splitlines() if f"| {arm} |" in line)


def test_each_arm_gets_its_count_mean_interval_and_status(report) -> None:
    folder, runs, _ = report
    page = (folder / "report" / "report.md").read_text()
    assert page.index("## Convergence") < page.index("## Claims")
    for arm, status in (("none", PLATEAUED), ("cutmix", IMPROVING), ("mixup", UNCLEAR)):
        line = _row(page, arm)
        gains = np.array(GAINS[arm])
        met = int((gains < schema.CONVERGED_GAIN).sum())
        assert f"| {met} of {len(SEEDS)} |" in line
        assert f"{100 * gains.mean():.2f} ± {100 * gains.std(ddof=1):.2f}" in line
        assert line.rstrip(" |").endswith(status), line
    assert "1 plateaued, 1 still improving, 1 unclear" in page
    assert "per scope and arm under Convergence" in page  # the Read-this-first note points here


def test_summary_csv_carries_the_gain_with_its_interval(report) -> None:
    folder, _, _ = report
    summary = pd.read_csv(folder / "report" / "summary.csv")
    cutmix = summary[summary["arm"] == "cutmix"].iloc[0]
    assert cutmix["val_gain_last20_mean"] == pytest.approx(np.mean(GAINS["cutmix"]))
    assert cutmix["val_gain_last20_ci_low"] > 0  # what "still improving" rests on
    none = summary[summary["arm"] == "none"].iloc[0]
    assert none["val_gain_last20_ci_low"] < 0 < none["val_gain_last20_ci_high"]


def test_the_html_page_has_the_section_too(report) -> None:
    _, _, index = report
    page = index.read_text()
    assert 'id="convergence"' in page and "still improving" in page


def test_results_without_the_gain_get_no_section(tmp_path) -> None:
    runs = make_results(tmp_path / "results", arms=ARMS, protocols=("frozen",), seeds=SEEDS)
    runs = runs.drop(columns=["val_gain_last20", "converged"], errors="ignore")
    runs.to_csv(tmp_path / "results" / "runs.csv", index=False)
    build_report(tmp_path / "results", tmp_path / "report")
    page = (tmp_path / "report" / "report.md").read_text()
    assert "## Convergence" not in page and "Unconverged" not in page
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert "val_gain_last20_mean" not in summary


def test_an_empty_gain_column_gives_no_rows() -> None:
    class Results:  # only what convergence_rows reads before it stops
        ok = pd.DataFrame()

    summary = pd.DataFrame({"scope": ["s"], "arm": ["none"], "n": [3]})
    assert tables.convergence_rows(Results(), summary) == ([], [], [])
