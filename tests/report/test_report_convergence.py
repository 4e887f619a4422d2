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


SWAP = {"none": "cutmix", "cutmix": "none", "mixup": "mixup"}  # whose gains an arm gets, unfrozen


def plant(runs: pd.DataFrame) -> None:
    """GAINS in the frozen scope; in the unfrozen one none and cutmix swap theirs (SWAP), so a
    table grouped by arm alone would be wrong in both."""
    runs["val_gain_last20"] = [
        GAINS[regularizer if protocol == "frozen" else SWAP[regularizer]][seed]
        for regularizer, protocol, seed in zip(
            runs["regularizer"], runs["protocol"], runs["seed"], strict=True
        )
    ]
    runs["converged"] = (runs["val_gain_last20"] < schema.CONVERGED_GAIN).astype(int)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("convergence")
    runs = make_results(
        folder / "results", arms=ARMS, protocols=("frozen", "unfrozen"), seeds=SEEDS
    )
    plant(runs)
    runs.to_csv(folder / "results" / "runs.csv", index=False)
    index = build_report(folder / "results", folder / "report")
    return folder, runs, index


def section(page: str) -> str:
    return page.split("## Convergence")[1].split("## ")[0]


def _row(page: str, arm: str, protocol: str = "frozen") -> list[str]:
    for line in section(page).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[0] == protocol and arm in cells:
            return cells
    raise AssertionError(f"no row for {arm} in {protocol}")


def test_each_arm_gets_its_count_mean_interval_and_status(report) -> None:
    folder, runs, _ = report
    page = (folder / "report" / "report.md").read_text()
    assert page.index("## Convergence") < page.index("## Claims")
    header = [c.strip() for c in section(page).split("| protocol")[1].split("\n")[0].split("|")]
    assert "status" in header and "cells" in header
    expected = {"none": PLATEAUED, "cutmix": IMPROVING, "mixup": UNCLEAR}
    for protocol in ("frozen", "unfrozen"):
        for arm in ("none", "cutmix", "mixup"):
            planted = arm if protocol == "frozen" else SWAP[arm]
            cells = _row(page, arm, protocol)
            gains = np.array(GAINS[planted])
            met = int((gains < schema.CONVERGED_GAIN).sum())
            assert cells[cells.index(arm) + 1] == expected[planted], (protocol, cells)
            assert f"{met} of {len(SEEDS)}" in cells
            assert f"{100 * gains.mean():.2f} ± {100 * gains.std(ddof=1):.2f}" in cells
    assert "2 plateaued, 2 still improving, 2 unclear" in page
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


def test_one_seed_missing_gains_and_missing_flags(tmp_path) -> None:
    """An arm with one seed has no interval (unclear); cells without a gain are counted as
    (n=k); without the converged column the count is a dash but the status still stands."""
    runs = make_results(tmp_path / "results", arms=ARMS, protocols=("frozen",), seeds=SEEDS)
    plant(runs)
    runs = runs.drop(columns=["converged"])
    mixup = runs.index[runs["regularizer"] == "mixup"]
    runs = runs.drop(mixup[1:])  # mixup: a single seed
    none = runs.index[runs["regularizer"] == "none"]
    runs.loc[none[:2], "val_gain_last20"] = np.nan  # none: 4 of 6 cells record a gain
    runs.to_csv(tmp_path / "results" / "runs.csv", index=False)
    build_report(tmp_path / "results", tmp_path / "report")
    page = (tmp_path / "report" / "report.md").read_text()
    mixup_row = _row(page, "mixup")
    assert mixup_row[mixup_row.index("mixup") + 1] == UNCLEAR and "–" in mixup_row
    none_row = _row(page, "none")
    kept = np.array(GAINS["none"][2:])
    assert any(c.endswith("(n=4)") and f"{100 * kept.mean():.2f}" in c for c in none_row)
    assert none_row[none_row.index("none") + 1] == PLATEAUED
    assert none_row[none_row.index("none") + 3] == "–"  # no converged column to count
    assert "Unconverged" not in page


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


def test_cells_at_chance_are_named_and_weak_ones_that_learned_are_not(tmp_path) -> None:
    """Two cutmix cells at guessing level (10 classes) are named; a cell at 14% on 5,000
    validation images learned something (guessing + 2.58 standard errors is 11.1%) and is not;
    a dataset the schema does not know gets no check."""
    runs = make_results(tmp_path / "results", arms=ARMS, protocols=("frozen",), seeds=SEEDS)
    cutmix = runs.index[runs["regularizer"] == "cutmix"]
    runs.loc[cutmix[:2], "val_acc"] = [0.10, 0.105]
    runs.loc[runs.index[runs["regularizer"] == "none"][0], "val_acc"] = 0.14
    runs.to_csv(tmp_path / "results" / "runs.csv", index=False)
    build_report(tmp_path / "results", tmp_path / "report")
    page = (tmp_path / "report" / "report.md").read_text()
    assert "no better than guessing: cutmix (2 of 6)." in page
    assert "none (" not in page.split("no better than guessing")[1].split(".")[0]
    runs["dataset"] = "imagenet_someday"
    runs.to_csv(tmp_path / "results" / "runs.csv", index=False)
    build_report(tmp_path / "results", tmp_path / "other")
    assert "guessing" not in (tmp_path / "other" / "report.md").read_text()


def test_ordinary_results_get_no_chance_note(report) -> None:
    folder, _, _ = report
    assert "guessing" not in (folder / "report" / "report.md").read_text()


def test_the_plateau_rules_arms_are_plateaued_or_stopped_at_the_cap(tmp_path) -> None:
    """Issue 23: under the plateau rule each cell says why it stopped; an arm is plateaued only
    when every cell stopped at its plateau, and one cell at the cap makes it unconverged
    whatever its gains read."""
    runs = make_results(tmp_path / "results", arms=ARMS, protocols=("frozen",), seeds=SEEDS)
    plant(runs)
    runs["stop"] = "plateau"
    runs["stop_reason"] = "plateau"
    cutmix = runs.index[runs["regularizer"] == "cutmix"]
    runs.loc[cutmix[:1], "stop_reason"] = "cap"  # one cutmix cell ran to the cap
    runs["converged"] = (runs["stop_reason"] == "plateau").astype(int)
    mixup = runs.index[runs["regularizer"] == "mixup"]
    runs.loc[mixup, "stop"] = "budget"  # a fixed budget: its gains decide, as before
    runs.loc[mixup, "stop_reason"] = "budget"
    runs.to_csv(tmp_path / "results" / "runs.csv", index=False)
    build_report(tmp_path / "results", tmp_path / "report")
    page = (tmp_path / "report" / "report.md").read_text()
    assert _row(page, "none")[_row(page, "none").index("none") + 1] == PLATEAUED
    cutmix_row = _row(page, "cutmix")
    assert cutmix_row[cutmix_row.index("cutmix") + 1] == tables.CAPPED
    assert cutmix_row[cutmix_row.index("cutmix") + 3] == "5 of 6"  # the capped cell: unconverged
    mixup_row = _row(page, "mixup")
    assert mixup_row[mixup_row.index("mixup") + 1] == UNCLEAR  # not the rule's: the gains decide
    assert f"1 {tables.CAPPED}" in section(page)
