"""The verdict engine alone (no figures, no files): error rates on simulated reports.

A simulated report is ~40 claim rows of paired per-seed differences; each row goes through the
engine's own statistics (`stats.paired_tests`, the code `stats.compare` uses below 20 pairs) and
verdict rule (`verdicts.decide`, the code `evaluate_claims` uses).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.report import stats, verdicts

ROWS = 40
REPORTS = 400
MARGIN = 0.005  # the accuracy margin, in fractions
SD = 0.01  # SD of a paired difference (1 pp)


def _verdicts(differences: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """Verdicts of one report: differences [rows, seeds]."""
    found = stats.paired_tests(differences, margin)
    margins = np.full(len(differences), margin)
    return verdicts.decide(found["effect"], found["p_value"], found["p_equivalence"], margins)[2]


def _simulate(seeds: int, shift: np.ndarray, sd: float = SD, seed: int = 0) -> np.ndarray:
    """Verdicts [REPORTS, ROWS] of simulated reports whose rows have true mean `shift` [ROWS]."""
    rng = np.random.default_rng(seed)
    draws = rng.normal(shift[None, :, None], sd, size=(REPORTS, ROWS, seeds))
    return np.stack([_verdicts(report) for report in draws])


@pytest.mark.parametrize("seeds", [3, 10])
def test_null_reports_rarely_carry_a_verdict(seeds):
    # No effect anywhere: P(any supported/contradicted in a report) <= 5% (+ 2 simulation SEs).
    found = _simulate(seeds, np.zeros(ROWS), seed=seeds)
    wrong = np.isin(found, ["supported", "contradicted"]).any(axis=1).mean()
    error = 2 * math.sqrt(0.05 * 0.95 / REPORTS)
    assert wrong <= 0.05 + error, wrong
    assert (found == "inconclusive").mean() > 0.5


def test_the_engine_is_not_blind_under_the_null():
    # The same simulation with a rule that skips the multiplicity correction would fail: a check
    # that the test above can fail at all.
    rng = np.random.default_rng(1)
    draws = rng.normal(0, SD, size=(REPORTS, ROWS, 3))
    p = np.stack([stats.paired_tests(r, MARGIN)["p_value"] for r in draws])
    assert ((p < 0.05).any(axis=1)).mean() > 0.5  # uncorrected: most reports have a "hit"


def test_planted_effects_of_three_sds_are_found_at_ten_seeds():
    shift = np.zeros(ROWS)
    shift[:5], shift[5:10] = 3 * SD, -3 * SD
    found = _simulate(10, shift, seed=3)
    assert (found[:, :5] == "supported").mean() > 0.8
    assert (found[:, 5:10] == "contradicted").mean() > 0.8
    assert not np.isin(found[:, 10:], ["supported", "contradicted"]).any(axis=1).mean() > 0.06


def test_identical_arms_with_small_spread_are_equivalent():
    found = _simulate(10, np.zeros(ROWS), sd=0.002, seed=4)
    assert (found == "equivalent").mean() > 0.95
    # and a big spread is never called equivalent
    wide = _simulate(10, np.zeros(ROWS), sd=0.05, seed=5)
    assert not (wide == "equivalent").any()


def test_significant_but_below_margin_is_not_a_win():
    # A real 0.2 pp effect measured very precisely: significant, but smaller than the margin.
    rng = np.random.default_rng(6)
    found = _verdicts(rng.normal(0.002, 0.0002, size=(ROWS, 10)))
    assert set(found) == {"equivalent"}


def test_verdict_rule_cases():
    nan = math.nan
    assert verdicts.verdict_of(0.02, 0.01, nan, 0.005) == "supported"
    assert verdicts.verdict_of(-0.02, 0.01, nan, 0.005) == "contradicted"
    assert verdicts.verdict_of(0.004, 0.001, 0.5, 0.005) == "inconclusive"  # below the margin
    assert verdicts.verdict_of(0.02, 0.06, nan, 0.005) == "inconclusive"
    assert verdicts.verdict_of(0.001, 0.5, 0.01, 0.005) == "equivalent"
    assert verdicts.verdict_of(nan, nan, nan, 0.005) == "inconclusive"
    # the image-level interval must exclude 0 where it exists
    assert verdicts.verdict_of(0.02, 0.01, nan, 0.005, (-0.001, 0.04)) == "inconclusive"
    assert verdicts.verdict_of(0.02, 0.01, nan, 0.005, (0.001, 0.04)) == "supported"
    assert verdicts.verdict_of(-0.02, 0.01, nan, 0.005, (-0.04, 0.001)) == "inconclusive"


def test_compare_uses_t_below_20_pairs_and_bca_from_20():
    x = pd.Series([1.0, 2.0, 3.0])
    y = pd.Series([0.0, 0.0, 0.0])
    small = stats.compare(x, y, margin=0.5)
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert (small.ci_low, small.ci_high) == pytest.approx((2 - half, 2 + half))
    assert small.p_value == pytest.approx(0.07417990022744857)  # t = 2 / (1 / sqrt 3), df 2
    rng = np.random.default_rng(0)
    d = pd.Series(rng.exponential(1.0, 25))
    large = stats.compare(d, pd.Series(np.zeros(25)), seed=1, margin=0.1)
    t_low, t_high = stats.t_interval(d.mean(), d.std(ddof=1) / 5, 24)
    assert large.ci_low != pytest.approx(t_low)  # BCa, skewed data: not the t interval
    assert large.ci_low < d.mean() < large.ci_high
    assert stats.compare(d, pd.Series(np.zeros(25)), seed=1, margin=0.1) == large


def test_seeds_needed_matches_the_normal_approximation():
    # delta/sd = 0.5 at alpha 0.05: about (1.96 + 0.84)^2 / 0.25 + 2 = 34 pairs
    assert stats.seeds_needed(0.01, 0.02, 0.05) == 34
    assert stats.power(34, 0.01, 0.02, 0.05) >= 0.8 > stats.power(33, 0.01, 0.02, 0.05)
    assert stats.seeds_needed(1e-9, 1.0, 0.001) == math.inf
