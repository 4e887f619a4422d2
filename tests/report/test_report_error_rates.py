"""The kept guarantees, end to end through `verdicts.evaluate_claims` (every claim of a results
folder, with Holm over the report's rows) and the new columns: under no effect no row is
supported or contradicted, and seeds_needed plans every undecided row; a planted effect of 3
paired SDs at 10 seeds is found, counted once as a finding, and its interval clears the margin.
The simulated error rates over 400 reports are in test_report_engine.py (the same rule)."""

from __future__ import annotations

import numpy as np
import pytest
from report_fixtures import make_results

from bench.report import findings, verdicts
from bench.report.load import load_results

SEEDS = range(10)
CELL_SD = 0.01 / np.sqrt(2)  # per cell: a paired difference then has SD 1 pp
METRICS = ["train_acc", "test_acc", "test_ece", "test_ece_ts", "flip_rate_correct",
           "corruption_acc", "corruption_ece", "occlusion_acc", "corruption_retained",
           "occlusion_retained"]  # fmt: skip


def _folder(tmp_path, seed: int, planted: float = 0.0):
    """A 10-seed results folder whose claim metrics are pure noise (no calibration.csv, so
    ece_over is not measured), plus `planted` on cutmix's test accuracy."""
    runs = make_results(tmp_path, protocols=("frozen",), seeds=SEEDS, train_sizes=(2000,))
    (tmp_path / "calibration.csv").unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    for metric in METRICS:
        runs[metric] = 0.5 + rng.normal(0.0, CELL_SD, len(runs))
    runs["gap"] = runs["train_acc"] - runs["test_acc"]
    runs.loc[runs["regularizer"] == "cutmix", "test_acc"] += planted
    runs["gap"] = runs["train_acc"] - runs["test_acc"]
    runs.to_csv(tmp_path / "runs.csv", index=False)
    return verdicts.evaluate_claims(load_results(tmp_path))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_effect_gives_no_verdict_and_a_plan_for_every_undecided_row(tmp_path, seed):
    claims = _folder(tmp_path, seed)
    measured = claims[claims["verdict"] != "not measured"]
    assert len(measured) >= 10
    assert not measured["verdict"].isin(["supported", "contradicted"]).any()
    mean_rows = measured[measured["sd"].notna()]
    undecided = mean_rows[mean_rows["verdict"] == "inconclusive"]
    assert (undecided["seeds_needed"] >= 2).all() and undecided["seeds_plan"].ne("").all()
    # a finding decided under no effect can only be an equivalence (1 pp margins, 10 seeds)
    for finding in findings.group(claims):
        if finding.decided:
            assert set(finding.rows["verdict"]) <= {"equivalent", "inconclusive"}


def test_a_planted_three_sd_effect_at_ten_seeds_is_found_and_counted_once(tmp_path):
    claims = _folder(tmp_path, 3, planted=0.03)  # 3 paired SDs of 1 pp
    row = claims[claims["claim_id"] == "cutmix_improves_test_acc"].iloc[0]
    assert row["verdict"] == "supported" and row["clears_margin"] == 1
    assert np.isnan(row["seeds_needed"])  # decided: nothing to plan
    gap = claims[claims["claim_id"] == "cutmix_reduces_gap"].iloc[0]
    assert gap["finding"] == row["finding"] == "cutmix_reduces_gap"  # one mechanism
    decided = [f for f in findings.group(claims) if f.decided]
    assert any(f.finding == "cutmix_reduces_gap" for f in decided)
    # the other claims (no effect planted) stay undecided
    others = claims[~claims["finding"].isin(["cutmix_reduces_gap", "cutmix_beats_random_erasing"])]
    assert not others["verdict"].isin(["supported", "contradicted"]).any()
