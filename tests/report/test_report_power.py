"""Power and seeds needed (`stats.power`, `stats.tost_power`, `stats.seeds_needed`,
`verdicts.seeds_plan`): finite everywhere, checked against Monte Carlo, nonsense refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from bench.report import stats, verdicts

DRAWS = 40_000


def _simulated_power(n: int, delta: float, sd: float, alpha: float, seed: int = 0) -> float:
    """Share of simulated paired samples whose two-sided t-test rejects at alpha."""
    d = np.random.default_rng(seed).normal(delta, sd, size=(DRAWS, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    return float(np.mean(np.abs(t) > sps.t.ppf(1 - alpha / 2, n - 1)))


def _simulated_tost(n: int, margin: float, sd: float, alpha: float, seed: int = 0) -> float:
    d = np.random.default_rng(seed).normal(0.0, sd, size=(DRAWS, n))
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / math.sqrt(n)
    critical = sps.t.ppf(1 - alpha, n - 1)
    return float(np.mean(((mean + margin) / se > critical) & ((mean - margin) / se < -critical)))


@pytest.mark.parametrize(
    ("n", "delta", "sd", "alpha"),
    [
        (5, 0.5, 1.0, 0.05),  # small noncentrality
        (10, 0.005, 0.02, 0.05 / 62),  # power near alpha
        (16, 0.0362, 0.023366, 0.05 / 62),  # the cpu-evidence row the old code gave NaN
        (12, 0.03, 0.01, 0.05 / 62),  # noncentrality ~10: power ~1
    ],
)
def test_power_matches_monte_carlo(n, delta, sd, alpha):
    found = float(stats.power(n, delta, sd, alpha))
    simulated = _simulated_power(n, delta, sd, alpha)
    error = 4 * math.sqrt(max(simulated * (1 - simulated), 1e-4) / DRAWS)
    assert math.isfinite(found)
    assert found == pytest.approx(simulated, abs=error + 1e-3)


def test_power_is_finite_where_the_lower_tail_cdf_is_nan():
    # nct.cdf(-c, df, shift) is NaN here: the old sum was NaN and seeds_needed kept counting.
    critical, shift = sps.t.ppf(1 - 0.05 / 62 / 2, 15), 0.0362 * 4 / 0.023366
    assert math.isnan(sps.nct.cdf(-critical, 15, shift))
    n = np.arange(2, 5000)
    found = stats.power(n, 0.0362, 0.023366, 0.05 / 62)
    assert np.isfinite(found).all() and (np.diff(found) >= -1e-12).all()
    assert stats.power(16, 0.0362, 0.023366, 0.05 / 62) == pytest.approx(0.9508, abs=1e-3)
    assert stats.power(10**5, 1.0, 0.01, 1e-6) == 1.0


def test_seeds_needed_of_the_cutmix_gap_row_is_13_and_stable():
    # the row: 22 with the NaN tail, and 28 after a sixth-digit change in the SD
    assert stats.seeds_needed(0.0362, 0.023366, 0.05 / 62) == 13
    assert stats.seeds_needed(0.0362, 0.0233661, 0.05 / 62) == 13
    n = stats.seeds_needed(0.0362, 0.023366, 0.05 / 62)
    assert stats.power(n, 0.0362, 0.023366, 0.05 / 62) >= 0.8
    assert stats.power(n - 1, 0.0362, 0.023366, 0.05 / 62) < 0.8


@pytest.mark.parametrize(
    ("n", "margin", "sd", "alpha"), [(20, 0.01, 0.01, 0.05), (40, 0.005, 0.005, 0.05 / 62)]
)
def test_tost_power_matches_monte_carlo(n, margin, sd, alpha):
    found = float(stats.tost_power(n, margin, sd, alpha))
    simulated = _simulated_tost(n, margin, sd, alpha)
    # the P(A) + P(B) - 1 bound: never above the truth, close to it
    assert found <= simulated + 4 * math.sqrt(simulated * (1 - simulated) / DRAWS) + 1e-3
    assert found == pytest.approx(simulated, abs=0.03)
    needed = stats.equivalence_seeds_needed(margin, sd, alpha)
    assert (
        stats.tost_power(needed, margin, sd, alpha)
        >= 0.8
        > stats.tost_power(needed - 1, margin, sd, alpha)
    )


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: stats.power(10, 0.01, 0.0, 0.05), "spread"),
        (lambda: stats.power(10, 0.01, -1.0, 0.05), "spread"),
        (lambda: stats.power(1, 0.01, 0.02, 0.05), "seeds"),
        (lambda: stats.power(10, 0.01, math.nan, 0.05), "spread"),
        (lambda: stats.power(10, 0.01, 0.02, 1.5), "alpha"),
        (lambda: stats.seeds_needed(0.0, 0.02, 0.05), "delta"),
        (lambda: stats.seeds_needed(0.01, 0.0, 0.05), "spread"),
        (lambda: stats.tost_power(10, 0.0, 0.02, 0.05), "margin"),
        (lambda: stats.equivalence_seeds_needed(-0.01, 0.02, 0.05), "margin"),
        (lambda: stats.seeds_needed(0.01, 0.02, 0.05, target=1.0), "target"),
    ],
)
def test_nonsense_is_refused_with_a_named_error(call, words):
    with pytest.raises(stats.PowerInputError, match=words):
        call()


def test_sd_interval_makes_a_ten_pair_count_uncertain_by_half_to_three_times():
    low, high = stats.sd_interval(1.0, 10)
    assert 0.45 < low**2 < 0.5
    assert 3.2 < high**2 < 3.4


def test_seeds_plan_is_blank_for_decided_rows_and_plans_for_the_margin_otherwise():
    alphas = (0.05 / 62, 0.05 / 62)
    for verdict in ("supported", "contradicted", "equivalent", "not measured"):
        assert math.isnan(verdicts.seeds_plan(verdict, 0.03, 0.02, 10, 0.005, *alphas)[0])
    # an undecided row with a large observed effect plans for the margin, not the effect
    needed, low, high, kind = verdicts.seeds_plan("inconclusive", 0.08, 0.06, 10, 0.005, *alphas)
    assert kind == verdicts.PLAN_DIFFERENCE
    assert needed == stats.seeds_needed(0.005, 0.06, alphas[0])
    assert needed > stats.seeds_needed(0.08, 0.06, alphas[0])
    assert low < needed < high
    # an estimate within the margin plans for equivalence
    needed, _, _, kind = verdicts.seeds_plan("inconclusive", 0.001, 0.01, 10, 0.005, *alphas)
    assert kind == verdicts.PLAN_EQUIVALENCE
    assert needed == stats.equivalence_seeds_needed(0.005, 0.01, alphas[1])
    # no spread: nothing to plan (and no exception from the engine)
    assert math.isnan(verdicts.seeds_plan("inconclusive", 0.001, 0.0, 10, 0.005, *alphas)[0])


def test_power_and_tost_power_are_finite_over_a_wide_grid():
    for alpha in (1e-6, 0.05 / 62, 0.05):
        for ratio in (1e-6, 0.01, 0.1, 1.0, 10.0, 100.0):
            n = np.array([2, 3, 5, 10, 50, 1_000, 100_000])
            found = stats.power(n, ratio * 0.01, 0.01, alpha)
            assert np.isfinite(found).all() and ((found >= 0) & (found <= 1)).all()
            assert (np.diff(found) >= -1e-9).all()  # never falls with more pairs
            tost = stats.tost_power(n, ratio * 0.01, 0.01, alpha)
            assert np.isfinite(tost).all() and (np.diff(tost) >= -1e-9).all()
