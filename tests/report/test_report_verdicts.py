"""Claim verdicts on results with planted effects (no figures drawn: fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_fixtures import PLANTED_VERDICTS, make_results

from bench.report import stats, verdicts
from bench.report.load import load_results


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("claims")
    make_results(folder, failed={("mixup", "frozen", 2)})
    return verdicts.evaluate_claims(load_results(folder))


def test_claims_csv_columns_and_vocabulary(quick_claims):
    """Golden: the claims.csv columns, in order, and the verdict vocabulary."""
    assert list(quick_claims.columns) == [
        "claim_id",
        "claim",
        "scope",
        "metric",
        "effect",
        "ci_low",
        "ci_high",
        "n",
        "p_value",
        "p_holm",
        "verdict",
        "note",
        "margin",
        "p_equivalence",
        "p_equivalence_holm",
        "seeds_needed",
        "ci_images_low",
        "ci_images_high",
        "sd",
        "seeds_needed_low",
        "seeds_needed_high",
        "seeds_plan",
        "test_images",
        "sd_seed",
        "sd_images",
        "clears_margin",
        "finding",
        "regime",
        "hparams_a",
        "hparams_b",
        "converged_a",
        "converged_b",
    ]
    assert verdicts.VERDICTS == [
        "supported",
        "contradicted",
        "equivalent",
        "inconclusive",
        "not measured",
    ]
    assert set(quick_claims["verdict"]) <= set(verdicts.VERDICTS)
    assert {"supported", "contradicted", "equivalent", "not measured"} <= set(
        quick_claims["verdict"]
    )
    measured = quick_claims[quick_claims["verdict"] != "not measured"]
    assert (measured["margin"] > 0).all() and measured["p_value"].notna().all()
    mean_rows = measured[~measured["metric"].str.startswith("std(")]
    undecided = mean_rows["verdict"] == "inconclusive"
    assert (mean_rows.loc[undecided, "seeds_needed"] >= 2).all()
    assert mean_rows.loc[~undecided, "seeds_needed"].isna().all()  # decided rows: blank
    assert (
        mean_rows.loc[undecided, "seeds_needed_low"] <= mean_rows.loc[undecided, "seeds_needed"]
    ).all()
    accuracy = quick_claims[quick_claims["metric"] == "test_acc"]
    assert (accuracy["margin"] == 0.005).all()
    ece = quick_claims[quick_claims["metric"] == "test_ece"]
    assert (ece["margin"] == 0.01).all()
    # no outcome files: no image-level interval
    assert quick_claims["ci_images_low"].isna().all()


@pytest.mark.parametrize("claim_id", sorted(PLANTED_VERDICTS))
def test_planted_verdicts(quick_claims, claim_id):
    rows = quick_claims[quick_claims["claim_id"] == claim_id]
    assert len(rows) >= 1
    full = rows[(rows["n"] >= 3) | (rows["verdict"] == "not measured")]
    assert set(full["verdict"]) == {PLANTED_VERDICTS[claim_id]}, rows.to_string()


def test_one_row_per_protocol(quick_claims):
    gap = quick_claims[quick_claims["claim_id"] == "cutmix_reduces_gap"]
    assert list(gap["scope"]) == ["protocol=frozen", "protocol=unfrozen", "protocol=staged"]
    staged = quick_claims[quick_claims["claim_id"] == "staged_cutmix_beats_early_cutmix_unfrozen"]
    assert list(staged["scope"]) == ["protocol=unfrozen"]
    across = quick_claims[quick_claims["claim_id"] == "cutmix_hurts_unfrozen_more"]
    assert list(across["scope"]) == ["protocol=unfrozen vs frozen"]


def test_effect_is_the_planted_difference_in_the_claimed_direction(quick_claims):
    row = quick_claims[
        (quick_claims["claim_id"] == "cutmix_improves_test_acc")
        & (quick_claims["scope"] == "protocol=frozen")
    ].iloc[0]
    assert row["effect"] == pytest.approx(0.02, abs=0.002)  # planted +2 points
    assert row["n"] == 3
    gap = quick_claims[quick_claims["claim_id"] == "cutmix_reduces_gap"].iloc[0]
    assert gap["effect"] == pytest.approx(0.15 - 0.05, abs=0.003)  # gap(none) - gap(cutmix) > 0
    hurts = quick_claims[quick_claims["claim_id"] == "cutmix_hurts_unfrozen_more"].iloc[0]
    assert hurts["effect"] == pytest.approx(0.02 - 0.008, abs=0.003)  # frozen minus unfrozen
    contra = quick_claims[quick_claims["claim_id"] == "mixup_better_calibrated_than_cutmix"]
    assert (contra["effect"] < 0).all() and (contra["ci_high"] < 0).all()


def test_failed_cell_reduces_the_pairs(quick_claims):
    row = quick_claims[
        (quick_claims["claim_id"] == "mixup_better_calibrated_than_cutmix")
        & (quick_claims["scope"] == "protocol=frozen")
    ].iloc[0]
    assert row["n"] == 2
    assert "unpaired" in row["note"]


def test_holm_over_the_whole_table(quick_claims):
    p = quick_claims["p_value"].to_numpy(float)
    holm = quick_claims["p_holm"].to_numpy(float)
    measured = ~pd.isna(p)
    assert (holm[measured] >= p[measured]).all()
    pd.testing.assert_series_equal(
        pd.Series(holm), pd.Series(stats.holm(p)), check_names=False, check_exact=True
    )
    equivalence = quick_claims["p_equivalence"].to_numpy(float)
    np.testing.assert_array_equal(
        quick_claims["p_equivalence_holm"].to_numpy(float), stats.holm(equivalence)
    )


def test_numbers_are_the_paired_t_test(quick_claims):
    """Recompute one row from the per-seed values: mean difference, t interval, t-test p."""
    from scipy import stats as sps

    results_rows = quick_claims[
        (quick_claims["claim_id"] == "cutmix_improves_test_acc")
        & (quick_claims["scope"] == "protocol=staged")
    ].iloc[0]
    assert results_rows["n"] == 3
    low, high = results_rows["ci_low"], results_rows["ci_high"]
    effect = results_rows["effect"]
    assert low < effect < high
    assert effect == pytest.approx(0.02, abs=0.001)
    half = (high - low) / 2
    assert effect == pytest.approx((low + high) / 2, abs=1e-12)  # symmetric t interval
    se = half / sps.t.ppf(0.975, 2)
    assert results_rows["p_value"] == pytest.approx(2 * sps.t.sf(effect / se, 2), rel=1e-9)


def test_not_measured_when_columns_or_arms_are_missing(tmp_path):
    runs = make_results(tmp_path, arms=[("none", "constant"), ("cutmix", "constant")])
    runs.drop(columns=["test_ece_ts", "occlusion_acc"]).to_csv(tmp_path / "runs.csv", index=False)
    table = verdicts.evaluate_claims(load_results(tmp_path))
    by_id = table.groupby("claim_id")
    for claim_id in [
        "mixup_better_calibrated_than_cutmix_after_ts",
        "cutmix_occlusion_robust",
        "cutmix_beats_random_erasing",
        "mixup_more_robust_than_cutmix",
        "staged_cutmix_beats_early_cutmix_unfrozen",
    ]:
        assert set(by_id.get_group(claim_id)["verdict"]) == {"not measured"}, claim_id
    notes = " ".join(by_id.get_group("mixup_better_calibrated_than_cutmix_after_ts")["note"])
    assert "test_ece_ts" in notes
    assert set(by_id.get_group("cutmix_improves_test_acc")["verdict"]) == {"supported"}


def test_empty_metric_values_are_not_measured(tmp_path):
    runs = make_results(tmp_path, protocols=("frozen",))
    runs["corruption_acc"] = ""  # the column exists but nothing was measured yet
    runs.to_csv(tmp_path / "runs.csv", index=False)
    table = verdicts.evaluate_claims(load_results(tmp_path))
    row = table[table["claim_id"] == "mixup_more_robust_than_cutmix"].iloc[0]
    assert row["verdict"] == "not measured" and "corruption_acc" in row["note"]


def test_seed_variance_needs_three_seeds_and_detects_planted_spread(tmp_path):
    make_results(tmp_path / "two", seeds=(0, 1), protocols=("unfrozen",))
    table = verdicts.evaluate_claims(load_results(tmp_path / "two"))
    row = table[table["claim_id"] == "cutmix_increases_seed_variance_unfrozen"].iloc[0]
    assert row["verdict"] == "not measured" and "3 seeds" in row["note"]

    # 3 seeds: the exact permutation p of a spread difference is at least 2/8; no verdict.
    make_results(
        tmp_path / "three", seeds=range(3), protocols=("unfrozen",), unfrozen_cutmix_spread=100.0
    )
    table = verdicts.evaluate_claims(load_results(tmp_path / "three"))
    row = table[table["claim_id"] == "cutmix_increases_seed_variance_unfrozen"].iloc[0]
    assert row["verdict"] == "inconclusive" and row["effect"] > 0

    make_results(
        tmp_path / "eight", seeds=range(8), protocols=("unfrozen",), unfrozen_cutmix_spread=100.0
    )
    table = verdicts.evaluate_claims(load_results(tmp_path / "eight"))
    row = table[table["claim_id"] == "cutmix_increases_seed_variance_unfrozen"].iloc[0]
    assert row["verdict"] == "supported" and row["n"] == 8
    assert row["p_value"] < 0.05


def test_train_size_and_backbone_scopes(tmp_path):
    make_results(
        tmp_path,
        arms=[("none", "constant"), ("cutmix", "constant")],
        protocols=("frozen", "unfrozen"),
        train_sizes=(500, 5000),
        backbones=("resnet18", "vit_tiny"),
    )
    table = verdicts.evaluate_claims(load_results(tmp_path))
    tiny = table[table["claim_id"] == "cutmix_struggles_tiny_data"]
    assert len(tiny) == 4  # protocol x backbone
    assert set(tiny["verdict"]) == {"supported"}
    assert "protocol=frozen, backbone=resnet18, train_size=500 vs 5000" in set(tiny["scope"])
    assert tiny["effect"].iloc[0] == pytest.approx(0.02 - (-0.01), abs=0.003)
    gap = table[table["claim_id"] == "cutmix_reduces_gap"]
    assert len(gap) == 8  # never pooled across backbones or train sizes
    assert "protocol=unfrozen, backbone=vit_tiny, train_size=5000" in set(gap["scope"])
    hurts = table[table["claim_id"] == "cutmix_hurts_unfrozen_more"]
    assert len(hurts) == 4  # backbone x train size


def test_columns_moving_with_the_compared_one_do_not_block_matching(tmp_path):
    # A sweep that trains small train sizes with smaller batches: batch_size is fixed by
    # train_size (the same epochs, so the same passes: issue 23's comparable budget).
    runs = make_results(
        tmp_path, arms=[("none", "constant"), ("cutmix", "constant")], train_sizes=(500, 5000)
    )
    runs["batch_size"] = runs["train_size"].map({500: 32, 5000: 128})
    runs.to_csv(tmp_path / "runs.csv", index=False)
    table = verdicts.evaluate_claims(load_results(tmp_path))
    tiny = table[table["claim_id"] == "cutmix_struggles_tiny_data"]
    assert set(tiny["verdict"]) == {"supported"}


def test_per_protocol_hyperparameters_stay_comparable(tmp_path):
    # A sweep with a smaller lr for the unfrozen protocol: lr varies, but only with the protocol.
    runs = make_results(tmp_path, arms=[("none", "constant"), ("cutmix", "constant")])
    runs["lr"] = runs["protocol"].map({"frozen": 0.05, "unfrozen": 0.01, "staged": 0.02})
    runs.to_csv(tmp_path / "runs.csv", index=False)
    results = load_results(tmp_path)
    assert results.varying == ["lr"] and results.protocol_bound == ["lr"]
    assert results.rests == [""]  # no extra figure rows
    assert results.column_titles["unfrozen"] == "unfrozen, lr=0.01"
    table = verdicts.evaluate_claims(results)
    gap = table[table["claim_id"] == "cutmix_reduces_gap"]
    assert list(gap["scope"])[0] == "protocol=frozen, lr=0.05"
    hurts = table[table["claim_id"] == "cutmix_hurts_unfrozen_more"]
    assert list(hurts["verdict"]) == ["supported"]


# --- issue 23: sizes are compared only under comparable budgets --------------------------------


def _sizes(**columns) -> pd.DataFrame:
    frame = pd.DataFrame({"train_size": [100, 100, 1000, 1000], "epochs": [5] * 4,
                          "passes": [38.4, 38.4, 7.7, 7.7]})  # fmt: skip
    for name, values in columns.items():
        frame[name] = values
    return frame


@pytest.mark.parametrize(
    ("columns", "problem", "budget"),
    [
        ({"train_steps": [120] * 4}, "one step budget (train_steps = 120: 38.4 vs 7.7 passes)", ""),
        ({"train_steps": [120] * 4, "stop": ["plateau"] * 4}, "", "the plateau rule"),
        ({"train_steps": [0] * 4, "train_passes": [4.0] * 4}, "", "4 passes each"),
        ({"train_steps": [0] * 4, "train_passes": [0.0] * 4}, "", "the same epochs"),
        ({"train_steps": [0] * 4, "train_passes": [4.0, 4.0, 8.0, 8.0]},
         "different budgets (train_passes = 4 | 8", ""),
        ({"train_steps": [0] * 4, "epochs": [20, 20, 4, 4]}, "different budgets (epochs = 20 | 4", ""),
        ({"train_steps": [120] * 4, "stop": ["plateau", "plateau", "budget", "budget"]},
         "one step budget", ""),
    ],
)  # fmt: skip
def test_sizes_compare_only_under_comparable_budgets(columns, problem, budget):
    found_problem, found_budget = verdicts.size_budget(_sizes(**columns))
    assert (problem in found_problem) and bool(found_problem) == bool(problem)
    assert (budget in found_budget) and bool(found_budget) == bool(budget)


def test_the_tiny_data_claim_is_not_measured_under_one_step_budget(tmp_path):
    """The committed cpu-evidence design (120 steps for 100 and 1,000 images) must not give the
    tiny-data claim a verdict: the sizes differ in passes as well as data."""
    runs = make_results(tmp_path, train_sizes=(100, 1000))
    runs["train_steps"] = 120
    runs.to_csv(tmp_path / "runs.csv", index=False)
    claims = verdicts.evaluate_claims(load_results(tmp_path))
    tiny = claims[claims["claim_id"] == "cutmix_struggles_tiny_data"]
    assert len(tiny) and set(tiny["verdict"]) == {"not measured"}
    assert tiny["note"].str.contains("one step budget").all()
    runs["stop"] = "plateau"  # the same cells trained to their plateaus: measured
    runs.to_csv(tmp_path / "runs.csv", index=False)
    claims = verdicts.evaluate_claims(load_results(tmp_path))
    tiny = claims[claims["claim_id"] == "cutmix_struggles_tiny_data"]
    assert "not measured" not in set(tiny["verdict"])
    assert tiny["note"].str.contains("plateau rule").all()


# --- issue 28: object size and two objects in one image ---------------------------------------


def test_object_size_claim_compares_the_smallest_fraction_with_the_full_frame(tmp_path):
    # Planted: cutmix over none is +4 pp at object_fraction 0.25 and +2 pp at 1 (the full frame).
    make_results(
        tmp_path, arms=[("none", "constant"), ("cutmix", "constant")], protocols=("frozen",),
        object_fractions=(0.25, 0.5, 1.0),
    )  # fmt: skip
    table = verdicts.evaluate_claims(load_results(tmp_path))
    rows = table[table["claim_id"] == "cutmix_struggles_object_fills_frame"]
    assert list(rows["verdict"]) == ["supported"], rows.to_string()
    assert list(rows["scope"]) == ["protocol=frozen, object_fraction=0.25 vs 1"]
    assert rows["effect"].iloc[0] == pytest.approx(0.04 - 0.02, abs=0.003)
    # the pairwise claims are not pooled across object sizes: one row per fraction
    gap = table[table["claim_id"] == "cutmix_reduces_gap"]
    assert len(gap) == 3


def test_object_size_claim_reversed_effect_is_contradicted(tmp_path):
    runs = make_results(
        tmp_path, arms=[("none", "constant"), ("cutmix", "constant")], protocols=("frozen",),
        object_fractions=(0.25, 1.0),
    )  # fmt: skip
    small = (runs["object_fraction"] == 0.25) & (runs["regularizer"] == "cutmix")
    runs.loc[small, "test_acc"] -= 0.04  # cutmix now helps less at the small fraction
    runs.to_csv(tmp_path / "runs.csv", index=False)
    table = verdicts.evaluate_claims(load_results(tmp_path))
    rows = table[table["claim_id"] == "cutmix_struggles_object_fills_frame"]
    assert list(rows["verdict"]) == ["contradicted"], rows.to_string()


def test_object_size_claim_is_not_measured_without_the_column(tmp_path):
    # Results written before issue 28 have no object_fraction column: not measured, no error.
    runs = make_results(tmp_path, arms=[("none", "constant"), ("cutmix", "constant")])
    runs.drop(columns=["object_fraction", "composite_size", "composite_recall"]).to_csv(
        tmp_path / "runs.csv", index=False
    )
    table = verdicts.evaluate_claims(load_results(tmp_path))
    for claim_id, reason in [
        ("cutmix_struggles_object_fills_frame", "runs.csv has no object_fraction column"),
        ("cutmix_raises_two_object_recall", "runs.csv has no composite_recall column"),
    ]:
        rows = table[table["claim_id"] == claim_id]
        assert set(rows["verdict"]) == {"not measured"}, rows.to_string()
        assert set(rows["note"]) == {reason}
    # and the existing claims keep their verdicts
    assert set(table[table["claim_id"] == "cutmix_reduces_gap"]["verdict"]) == {"supported"}


def test_two_object_recall_claims(tmp_path):
    # Planted two-object recall: none 0.30, mixup 0.36, cutmix 0.45.
    make_results(tmp_path, protocols=("frozen",), composites=True)
    table = verdicts.evaluate_claims(load_results(tmp_path))
    for claim_id, effect in [
        ("cutmix_raises_two_object_recall", 0.45 - 0.30),
        ("cutmix_two_object_recall_beats_mixup", 0.45 - 0.36),
    ]:
        rows = table[table["claim_id"] == claim_id]
        assert list(rows["verdict"]) == ["supported"], rows.to_string()
        assert rows["effect"].iloc[0] == pytest.approx(effect, abs=0.003)
        assert rows["margin"].iloc[0] == 0.005  # composite_recall's declared margin
    # reversed: none above cutmix is contradicted
    runs = pd.read_csv(tmp_path / "runs.csv", keep_default_na=False, dtype=str)
    recall = runs["composite_recall"].astype(float)
    runs["composite_recall"] = (0.9 - recall).map(repr)
    runs.to_csv(tmp_path / "runs.csv", index=False)
    table = verdicts.evaluate_claims(load_results(tmp_path))
    rows = table[table["claim_id"] == "cutmix_raises_two_object_recall"]
    assert list(rows["verdict"]) == ["contradicted"], rows.to_string()
