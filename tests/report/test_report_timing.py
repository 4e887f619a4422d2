"""Issue 28's claims on when a regularizer starts: CutMix switched on at the plateau against
CutMix from the start (`on_plateau_cutmix_beats_cutmix_from_start`), and timing against strength
(`timing_matters_more_than_strength`, `stats.factor_contrast`), on hand-made results with planted
effects, and on simulated noise (the rule must not find an effect that is not there)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from report_fixtures import add_variant, make_results

from bench.report import stats
from bench.report.claims import CLAIMS
from bench.report.load import load_results
from bench.report.verdicts import evaluate_claims

ON_PLATEAU = "on_plateau_cutmix_beats_cutmix_from_start"
TIMING = "timing_matters_more_than_strength"
CLAIM = {c.claim_id: c for c in CLAIMS}
SEEDS = (0, 1, 2, 3, 4)
START = {"constant": 0.0, "staged": 0.0, "on_unfreeze": 30.0, "on_plateau": 40.0}


def _rows(folder, claim_id: str) -> pd.DataFrame:
    table = evaluate_claims(load_results(folder), [CLAIM[claim_id]])
    return table[table["claim_id"] == claim_id]


def _write(folder, runs: pd.DataFrame) -> None:
    runs.to_csv(folder / "runs.csv", index=False)


def crossing_results(
    folder,
    planted: dict[tuple[str, float], float],
    *,
    schedules=("constant", "on_unfreeze", "on_plateau"),
    noise: float = 0.002,
    seeds=SEEDS,
) -> pd.DataFrame:
    """A frozen-protocol sweep of none and cutmix at each of `schedules` x alpha 1.0 and 0.2,
    whose cutmix test accuracy is 0.70 + planted[(schedule, alpha)] + a seed effect shared by
    every cell of the seed + independent noise of SD `noise` per cell; schedule_start_step as
    the training side writes it (START)."""
    arms = [("none", "constant"), *(("cutmix", s) for s in schedules)]
    runs = make_results(folder, arms=arms, protocols=("frozen",), seeds=seeds)
    runs = add_variant(folder, runs, "cutmix", {"alpha": 0.2}, base={"alpha": 1.0})
    rng = np.random.default_rng(28)
    seed_effect = dict(zip(seeds, rng.normal(0, 0.01, len(seeds)), strict=True))
    cutmix = runs["regularizer"] == "cutmix"
    alpha = [json.loads(t).get("alpha") for t in runs["regularizer_params"]]
    runs["test_acc"] = [
        0.70 + planted[(s, a)] + seed_effect[seed] + rng.normal(0, noise) if c else acc
        for c, s, a, seed, acc in zip(cutmix, runs["schedule"], alpha, runs["seed"],
                                      runs["test_acc"], strict=True)
    ]  # fmt: skip
    runs["schedule_start_step"] = [
        START[s] if c else math.nan for c, s in zip(cutmix, runs["schedule"], strict=True)
    ]
    _write(folder, runs)
    return runs


def planted(timing: dict[str, float], strength: dict[float, float]) -> dict:
    return {(s, a): timing[s] + strength[a] for s, a in itertools.product(timing, strength)}


# --- on_plateau cutmix against cutmix from the start ------------------------------------------


def plateau_results(folder, starts) -> pd.DataFrame:
    """none, cutmix and cutmix (on_plateau) in two protocols, 3 seeds (the fixture's planted
    +1 pp of on_plateau over cutmix); `starts`: schedule_start_step of the on_plateau cells."""
    arms = [("none", "constant"), ("cutmix", "constant"), ("cutmix", "on_plateau")]
    runs = make_results(folder, arms=arms, protocols=("frozen", "unfrozen"))
    plateau = runs["schedule"] == "on_plateau"
    runs["schedule_start_step"] = np.where(runs["regularizer"] == "cutmix", 0.0, math.nan)
    runs.loc[plateau, "schedule_start_step"] = starts(runs[plateau])
    _write(folder, runs)
    return runs


def test_on_plateau_cutmix_is_tested_in_every_protocol(tmp_path):
    plateau_results(tmp_path, lambda cells: 40.0)
    rows = _rows(tmp_path, ON_PLATEAU)
    assert list(rows["scope"]) == ["protocol=frozen", "protocol=unfrozen"]
    assert set(rows["verdict"]) == {"supported"}, rows.to_string()
    assert (rows["effect"] > 0.005).all()
    assert not rows["note"].str.contains("never switched on").any()


def test_an_on_plateau_arm_that_never_switched_on_is_not_measured(tmp_path):
    # the planted +1 pp is there in the numbers, but the regularizer never ran: no verdict
    plateau_results(tmp_path, lambda cells: np.where(cells["protocol"] == "frozen", math.nan, 40))
    rows = _rows(tmp_path, ON_PLATEAU).set_index("scope")
    frozen = rows.loc["protocol=frozen"]
    assert frozen["verdict"] == "not measured" and math.isnan(frozen["effect"])
    assert "never switched on in any of its 3 cell(s)" in frozen["note"]
    assert "none under another name" in frozen["note"]
    assert rows.loc["protocol=unfrozen", "verdict"] == "supported"


def test_cells_that_never_switched_on_are_counted_in_the_note(tmp_path):
    plateau_results(tmp_path, lambda cells: np.where(cells["seed"] == 0, math.nan, 40))
    rows = _rows(tmp_path, ON_PLATEAU)
    assert (rows["verdict"] != "not measured").all()
    assert (
        rows["note"]
        .str.contains("1 of 3 cutmix (on_plateau) cell(s) never switched on", regex=False)
        .all()
    )


def test_results_without_an_on_plateau_arm_are_not_measured(tmp_path):
    make_results(tmp_path, protocols=("frozen",))
    rows = _rows(tmp_path, ON_PLATEAU)
    assert list(rows["verdict"]) == ["not measured"]
    assert rows["note"].iloc[0] == "no cutmix (on_plateau) cells"


# --- timing against strength: the statistics ---------------------------------------------------


def test_factor_contrast_on_hand_made_values():
    # 3 timing x 2 strength levels, 3 seeds: timing means 0, 2, 5 (+ strength 0 / 1), seed
    # shifts 0, 1, -1 shared by every cell (paired away) and +-0.1 noise on one cell
    timing, strength = np.array([0.0, 2.0, 5.0]), np.array([0.0, 1.0])
    values = timing[:, None, None] + strength[None, :, None] + np.array([0.0, 1.0, -1.0])
    values[2, 1] += [0.1, -0.1, 0.0]
    found = stats.factor_contrast(values, 0.05, margin=0.5)
    # largest |timing difference| 5.0 (+0 mean noise), strength 1.0: D = 4.0
    assert found.effect == pytest.approx(4.0)
    assert found.n == 3 and len(found.differences[0]) == 3 and len(found.differences[1]) == 1
    by_pair = {(i, j): (e, lo, hi) for i, j, e, lo, hi in found.differences[0]}
    assert by_pair[(0, 2)][0] == pytest.approx(-5.0)
    # the interval of timing pair (0, 2), by hand: Bonferroni t at 0.05 / (2 * 4 pairs), df 2
    d = values[0].mean(axis=0) - values[2].mean(axis=0)
    half = stats.sps.t.ppf(1 - 0.05 / 8, 2) * d.std(ddof=1) / math.sqrt(3)
    assert by_pair[(0, 2)][1:] == pytest.approx((d.mean() - half, d.mean() + half))
    assert found.ci_low <= found.effect <= found.ci_high and found.ci_low > 0
    assert found.p_value < 0.05


def test_the_interval_of_d_follows_the_pairs_intervals():
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, (3, 2, 6)) + np.array([0.0, 0.5, 1.0])[:, None, None]
    found = stats.factor_contrast(values, 0.05)

    def absolute(low, high):
        return max(0.0, low, -high), max(abs(low), abs(high))

    timing = [absolute(lo, hi) for *_, lo, hi in found.differences[0]]
    strength = [absolute(lo, hi) for *_, lo, hi in found.differences[1]]
    low = max(a for a, _ in timing) - max(b for _, b in strength)
    high = max(b for _, b in timing) - max(a for a, _ in strength)
    assert (found.ci_low, found.ci_high) == pytest.approx((low, high))
    # p_value: the level at which the interval just excludes 0 (or 1 if it never does)
    if found.p_value < 1:
        at = stats.factor_contrast(values, found.p_value * 1.01)
        below = stats.factor_contrast(values, found.p_value * 0.99)
        assert at.ci_low > 0 or at.ci_high < 0
        assert not (below.ci_low > 0 or below.ci_high < 0)


def test_an_incomplete_crossing_is_refused_by_the_statistics():
    with pytest.raises(ValueError):
        stats.factor_contrast(np.zeros((1, 2, 5)))
    with pytest.raises(ValueError):
        stats.factor_contrast(np.full((2, 2, 5), np.nan))


SIMULATIONS = 200


def _binomial_ceiling(rate: float, n: int) -> float:
    """rate + 3 binomial SDs: a false-positive rate a sound rule stays under."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / n)


def test_noise_alone_rarely_supports_or_contradicts_the_claim():
    # no effect anywhere: 3 timing x 2 strength levels, 5 seeds, iid normal cells
    rng = np.random.default_rng(2028)
    decided, naive_3v2, naive_2v2 = 0, 0, 0
    for _ in range(SIMULATIONS):
        values = rng.normal(0, 1, (3, 2, 5))
        found = stats.factor_contrast(values, stats.ALPHA, margin=0.1)
        decided += found.p_value < stats.ALPHA
        naive_3v2 += found.effect > 0  # the naive rule: the larger range of means wins
        naive_2v2 += stats.factor_contrast(values[:2], stats.ALPHA).effect > 0
    assert decided / SIMULATIONS <= _binomial_ceiling(stats.ALPHA, SIMULATIONS)
    # the naive rule calls timing the larger effect in most noise-only sweeps with 3 vs 2
    # levels (the range of 3 noisy means exceeds that of 2: E range 1.69 vs 1.13 sigma), and
    # about half with 2 vs 2
    assert naive_3v2 / SIMULATIONS > 0.6
    assert abs(naive_2v2 / SIMULATIONS - 0.5) < 0.15
    assert naive_3v2 > naive_2v2


def test_a_real_timing_effect_is_found_by_the_statistics():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(50):
        values = rng.normal(0, 1, (3, 2, 8)) + np.array([0.0, 0.0, 4.0])[:, None, None]
        hits += stats.factor_contrast(values).ci_low > 0
    assert hits >= 45


# --- timing against strength: the claim --------------------------------------------------------


def test_a_large_timing_effect_supports_the_claim(tmp_path):
    crossing_results(tmp_path, planted({"constant": 0.0, "on_unfreeze": 0.01, "on_plateau": 0.04},
                                       {1.0: 0.0, 0.2: 0.003}))  # fmt: skip
    (row,) = _rows(tmp_path, TIMING).itertuples()
    assert row.verdict == "supported", row.note
    assert row.effect == pytest.approx(0.04 - 0.003, abs=0.003)
    assert row.ci_low > 0 and row.n == len(SEEDS) and row.clears_margin in (0.0, 1.0)
    assert "largest timing difference on_plateau - constant = +4." in row.note
    assert "largest strength difference alpha=0.2 - alpha=1.0" in row.note
    assert "3 timing x 2 strength levels paired over 5 seeds" in row.note


def test_a_large_strength_effect_contradicts_the_claim(tmp_path):
    crossing_results(tmp_path, planted({"constant": 0.0, "on_unfreeze": 0.002, "on_plateau": 0.0},
                                       {1.0: 0.0, 0.2: -0.05}))  # fmt: skip
    (row,) = _rows(tmp_path, TIMING).itertuples()
    assert row.verdict == "contradicted", row.note
    assert row.effect < -0.04 and row.ci_high < 0


def test_an_incomplete_crossing_is_not_measured(tmp_path):
    runs = crossing_results(tmp_path, planted({"constant": 0, "on_unfreeze": 0, "on_plateau": 0.04},
                                              {1.0: 0.0, 0.2: 0.0}))  # fmt: skip
    alpha = runs["regularizer_params"].str.contains('"alpha": 0.2')
    _write(tmp_path, runs[~((runs["schedule"] == "on_plateau") & alpha)])
    (row,) = _rows(tmp_path, TIMING).itertuples()
    assert row.verdict == "not measured" and math.isnan(row.effect)
    assert "incomplete crossing: no cutmix (on_plateau, alpha=0.2) cells" in row.note


def test_one_timing_level_is_not_measured_and_staged_is_not_a_timing_level(tmp_path):
    crossing_results(tmp_path, {(s, a): 0.0 for s in ("constant", "staged") for a in (1.0, 0.2)},
                     schedules=("constant", "staged"))  # fmt: skip
    (row,) = _rows(tmp_path, TIMING).itertuples()
    assert row.verdict == "not measured"
    assert row.note.startswith("fewer than 2 timing levels of cutmix (constant)")
    assert "staged cells left out" in row.note


def test_one_strength_level_is_not_measured(tmp_path):
    runs = crossing_results(tmp_path, planted({"constant": 0, "on_unfreeze": 0, "on_plateau": 0.04},
                                              {1.0: 0.0, 0.2: 0.0}))  # fmt: skip
    _write(tmp_path, runs[~runs["regularizer_params"].str.contains('"alpha": 0.2')])
    (row,) = _rows(tmp_path, TIMING).itertuples()
    assert row.verdict == "not measured" and "fewer than 2 strength levels" in row.note


def test_a_timing_level_that_never_switched_on_is_left_out(tmp_path):
    # on_plateau never started: without it, constant vs on_unfreeze (no difference) remain
    runs = crossing_results(tmp_path, planted({"constant": 0, "on_unfreeze": 0, "on_plateau": 0.04},
                                              {1.0: 0.0, 0.2: 0.0}))  # fmt: skip
    runs.loc[runs["schedule"] == "on_plateau", "schedule_start_step"] = math.nan
    _write(tmp_path, runs)
    (row,) = _rows(tmp_path, TIMING).itertuples()
    assert row.verdict != "supported"
    assert "cutmix (on_plateau) left out: it never switched on in any of its 10 cell(s)" in row.note
    assert "2 timing x 2 strength levels" in row.note


def test_real_rows_stages_name_no_timing_level_and_strengths_are_held_fixed(tmp_path):
    """As the training side writes them, an event schedule's row carries its `stages`, which a
    constant one has not: the timing levels are still the schedules (stages shown only where two
    cells of one schedule differ in them), and on_plateau CutMix is compared with CutMix from the
    start at the same strength only (alpha 0.2 with 0.2, 1.0 with 1.0), never across."""
    runs = crossing_results(tmp_path, planted({"constant": 0.0, "on_unfreeze": 0.01,
                                               "on_plateau": 0.04}, {1.0: 0.0, 0.2: 0.003}))  # fmt: skip
    event = runs["schedule"].isin(["on_unfreeze", "on_plateau"])
    runs.loc[event, "regularizer_params"] = [
        json.dumps({**json.loads(text), "stages": [[0.0, 1.0, 1.0]]}, sort_keys=True)
        for text in runs.loc[event, "regularizer_params"]
    ]
    _write(tmp_path, runs)
    (row,) = _rows(tmp_path, TIMING).itertuples()
    assert "largest timing difference on_plateau - constant = +4." in row.note
    assert "stages" not in row.note
    plateau = _rows(tmp_path, ON_PLATEAU)
    assert len(plateau) == 2  # 2 strengths matched, not 2 x 2 combinations
    for scope in plateau["scope"]:
        alphas = [part.split("alpha=")[1][:3] for part in scope.split(" vs ")]
        assert alphas[0] == alphas[1], scope
    assert plateau["effect"].tolist() == pytest.approx([0.04, 0.04], abs=0.003)
