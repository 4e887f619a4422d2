"""Statistics of the report against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.report import stats


def test_t_critical_matches_tables():
    assert stats.t_critical(1) == pytest.approx(12.706)
    assert stats.t_critical(2) == pytest.approx(4.303)
    assert stats.t_critical(30) == pytest.approx(2.042, abs=1e-3)
    assert stats.t_critical(60) == pytest.approx(2.000, abs=1e-3)  # table value 2.000
    assert stats.t_critical(120) == pytest.approx(1.980, abs=1e-3)  # table value 1.980
    assert math.isnan(stats.t_critical(0))


def test_describe_uses_ddof_1_and_t_interval():
    d = stats.describe([1.0, 2.0, 3.0, np.nan])
    assert d["n"] == 3 and d["mean"] == 2.0
    assert d["std"] == pytest.approx(1.0)  # ddof=1: sqrt(((1)^2 + 0 + 1^2) / 2)
    half = 4.303 * 1.0 / math.sqrt(3)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((2 - half, 2 + half))


def test_describe_single_value_has_no_spread():
    d = stats.describe([0.5])
    assert d["n"] == 1 and d["mean"] == 0.5
    assert math.isnan(d["std"]) and math.isnan(d["ci_low"]) and math.isnan(d["ci_high"])


def test_summarize_is_tidy():
    frame = pd.DataFrame({"arm": ["a", "a", "b"], "x": [1.0, 3.0, 5.0], "y": [0.0, 0.0, 1.0]})
    out = stats.summarize(frame, ["x", "y"], ["arm"])
    assert list(out.columns) == ["arm", "metric", "n", "mean", "std", "ci_low", "ci_high"]
    row = out[(out["arm"] == "a") & (out["metric"] == "x")].iloc[0]
    assert (row["n"], row["mean"], row["std"]) == (2, 2.0, pytest.approx(math.sqrt(2)))


def test_paired_t_test_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), t = 2 sqrt(3) = 3.464 on 2 df
    x = pd.Series([1.0, 2.0, 3.0], index=[0, 1, 2])
    y = pd.Series([0.0, 0.0, 0.0], index=[0, 1, 2])
    result = stats.compare(x, y, seed=1, margin=0.5)
    assert result.effect == pytest.approx(2.0) and result.n == 3 and result.sd == pytest.approx(1)
    assert result.p_value == pytest.approx(0.07418, abs=1e-5)  # t table: p(|t_2| > 3.464)
    half = 4.302653 / math.sqrt(3)
    assert (result.ci_low, result.ci_high) == pytest.approx((2 - half, 2 + half))
    # TOST at +-0.5: the upper one-sided test has t = (2 - 0.5) sqrt(3) = 2.598, p = 0.939
    assert result.p_equivalence == pytest.approx(0.93916, abs=1e-4)


def test_permutation_p_stays_for_the_spread_statistic():
    # All 3 differences of std positive... a spread claim keeps the exact permutation p.
    x = pd.Series([1.0, 5.0, 9.0], index=[0, 1, 2])
    y = pd.Series([1.0, 1.1, 1.2], index=[0, 1, 2])
    result = stats.compare(x, y, "std", seed=1)
    assert result.p_value >= 2 / 8
    assert math.isnan(result.p_equivalence)


def test_compare_pairs_by_seed_and_leaves_unpaired_out():
    x = pd.Series([1.0, 2.0, 10.0], index=[0, 1, 2])
    y = pd.Series([0.5, 1.5], index=[1, 0])  # seed order differs; seed 2 has no partner
    result = stats.compare(x, y, seed=0)
    assert result.n == 2
    assert result.effect == pytest.approx(((1.0 - 1.5) + (2.0 - 0.5)) / 2)
    assert "1 unpaired" in result.note


def test_compare_without_shared_seeds_is_welch():
    x = pd.Series([1.0, 1.1, 0.9], index=[0, 1, 2])
    y = pd.Series([0.0, 0.1, -0.1], index=[3, 4, 5])
    result = stats.compare(x, y, seed=0)
    assert result.effect == pytest.approx(1.0)
    # Welch: se = sqrt(0.01/3 + 0.01/3) = 0.0816, t = 12.25, df = 4
    assert result.p_value == pytest.approx(2.5522e-4, rel=1e-3)
    assert result.ci_low > 0
    assert "unpaired" in result.note


def test_single_seed_gives_no_interval():
    result = stats.compare(pd.Series([1.0], index=[0]), pd.Series([0.0], index=[0]))
    assert result.effect == 1.0 and result.n == 1
    assert math.isnan(result.ci_low) and math.isnan(result.p_value)


def test_std_statistic_compares_spread():
    rng = np.random.default_rng(0)
    seeds = range(8)
    wide = pd.Series(rng.normal(0, 1.0, 8), index=seeds)
    narrow = pd.Series(rng.normal(0, 0.01, 8), index=seeds)
    result = stats.compare(wide, narrow, "std", seed=0)
    assert result.effect == pytest.approx(wide.std(ddof=1) - narrow.std(ddof=1))
    assert result.ci_low > 0
    assert result.p_value < 0.05


def test_compare_is_deterministic():
    x = pd.Series([0.3, 0.1, 0.4, 0.15], index=range(4))
    y = pd.Series([0.2, 0.2, 0.2, 0.2], index=range(4))
    assert stats.compare(x, y, seed=7, margin=0.1) == stats.compare(x, y, seed=7, margin=0.1)
    big = pd.Series(np.arange(25.0)), pd.Series(np.zeros(25))  # BCa: random draws
    assert stats.compare(*big, seed=7, margin=1.0) == stats.compare(*big, seed=7, margin=1.0)
    assert stats.seed_for("a", 1) == stats.seed_for("a", 1) != stats.seed_for("a", 2)


def test_holm_known_values_and_nan():
    p = [0.01, 0.04, np.nan, 0.03, 0.5]
    # sorted: 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08 -> monotone 0.09, 0.5*1=0.5
    expected = [0.04, 0.09, np.nan, 0.09, 0.5]
    np.testing.assert_allclose(stats.holm(p), expected)
    assert stats.holm([0.9, 0.8]).max() == 1.0
