"""Statistics of a report: per-cell summaries, seed-paired comparisons, multiple-comparison control.

- `summarize`: mean, standard deviation (ddof=1), n and a 95% Student-t interval of the mean over
  seeds, per group, in tidy long form (one row per group and metric). Reads the metric columns
  and the grouping columns it is given.
- `compare`: the difference between two sets of per-seed values, paired by seed where they share
  seeds. For the mean (the claims' statistic): a paired t-test (two-sided p), a 95% paired
  t-interval below `BCA_FROM` pairs and a BCa bootstrap interval (scipy.stats.bootstrap) from
  there on, the SD of the paired differences, and the TOST equivalence p at +-margin. Without
  shared seeds: Welch's t. For the standard deviation (a spread claim): a percentile bootstrap
  interval and a paired permutation p (a t-test does not apply to a difference of SDs).
- `power`, `seeds_needed`: power and pairs for 80% power of the two-sided paired t-test
  (noncentral t); `tost_power`, `equivalence_seeds_needed`: the same for the TOST at +-margin;
  `sd_interval`: how uncertain an observed SD (and so a pair count) is. Nonsense input (a spread
  or margin <= 0, fewer than 2 pairs) raises `PowerInputError`.
- `crossed_interval`: the image-level interval of a test set fixed across seeds (a bootstrap of
  the seeds and one image resample shared by every drawn seed), for accuracy and calibration
  effects; `image_sd`, `seed_sd`: the test-image and seed components of a paired difference's
  spread (where each seed drew its own test images, the seed spread already contains theirs).
- `holm`: Holm's step-down adjustment of a family of p-values.
- `factor_contrast`: two crossed factors' largest main-effect differences compared (timing against
  strength): Bonferroni-simultaneous paired t intervals of every pairwise level difference, the
  interval of D = max |Δ_first| - max |Δ_second| they imply, and its p (the smallest level at
  which that interval excludes 0).
- `describe_groups`, `means`, `pooled_bins`: the per-group summaries the figures draw (t intervals
  per group, means over seeds or epochs, reliability bins pooled over seeds).

Everything is deterministic: random draws come from a numpy Generator seeded by the caller.
"""

from __future__ import annotations

import itertools
import math
import statistics
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

N_BOOTSTRAP = 10_000
N_PERMUTATIONS = 10_000  # random permutations when exact enumeration would be larger
EXACT_LIMIT = 20_000  # enumerate every permutation when there are at most this many
ALPHA = 0.05
BCA_FROM = 20  # pairs from which the interval of a mean difference is a BCa bootstrap
POWER = 0.8  # the power `seeds_needed` plans for
MOST_SEEDS = 100_000  # `seeds_needed` searches up to this many pairs
N_OUTER = 2_000  # image-level bootstrap: resamples (seeds and one image resample each)
N_INNER = 400  # image resamples for the ECE image component (`image_sd`)
ECE_BINS = 15  # bench.metrics: 15 equal-width bins (lo, hi], the first also holding 0

# Two-sided 95% Student-t critical values, df = 1..30; a series expansion beyond.
_T975 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]  # fmt: skip


def t_critical(df: int) -> float:
    """The 97.5% quantile of Student's t with df degrees of freedom (NaN for df < 1)."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z = statistics.NormalDist().inv_cdf(0.975)
    # Cornish-Fisher expansion of the t quantile around the normal one (error < 1e-4 for df > 30).
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def describe(values) -> dict[str, float]:
    """n, mean, std (ddof=1) and the 95% t interval of the mean of the finite values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    half = t_critical(n - 1) * std / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def summarize(frame: pd.DataFrame, metrics: list[str], by: list[str]) -> pd.DataFrame:
    """Tidy summary: one row per group and metric with n, mean, std (ddof=1), ci_low, ci_high."""
    rows = []
    for key, group in frame.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            rows.append(
                {**dict(zip(by, key, strict=True)), "metric": metric, **describe(group[metric])}
            )
    columns = [*by, "metric", "n", "mean", "std", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)


def mean_stat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Difference of means along the last axis."""
    return a.mean(axis=-1) - b.mean(axis=-1)


def std_stat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Difference of standard deviations (ddof=1) along the last axis."""
    return a.std(axis=-1, ddof=1) - b.std(axis=-1, ddof=1)


STATISTICS = {"mean": mean_stat, "std": std_stat}


@dataclass(frozen=True)
class Comparison:
    effect: float  # statistic(x) - statistic(y)
    ci_low: float
    ci_high: float
    n: int  # seeds compared (paired), or the smaller group (unpaired)
    p_value: float
    note: str
    sd: float = math.nan  # SD of the paired differences (unpaired: sqrt(var_x + var_y))
    p_equivalence: float = math.nan  # TOST at +-margin (mean statistic, margin given)


def seed_for(*parts: object) -> int:
    """A stable random seed from names (Python's hash() changes between processes)."""
    return zlib.crc32("|".join(map(str, parts)).encode())


def _two_sided(null: np.ndarray, observed: float) -> float:
    tolerance = 1e-12 * max(1.0, abs(observed))
    return float(np.mean(np.abs(null) >= abs(observed) - tolerance))


def _paired(x: np.ndarray, y: np.ndarray, stat, rng: np.random.Generator):
    n = len(x)
    draws = rng.integers(0, n, size=(N_BOOTSTRAP, n))
    boot = stat(x[draws], y[draws])
    if 2**n <= EXACT_LIMIT:
        swap = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
        p_value = _two_sided(stat(np.where(swap, y, x), np.where(swap, x, y)), stat(x, y))
    else:
        swap = rng.random((N_PERMUTATIONS, n)) < 0.5
        null = stat(np.where(swap, y, x), np.where(swap, x, y))
        hits = _two_sided(null, stat(x, y)) * N_PERMUTATIONS
        p_value = (hits + 1) / (N_PERMUTATIONS + 1)
    return boot, p_value


def _unpaired(x: np.ndarray, y: np.ndarray, stat, rng: np.random.Generator):
    boot = stat(
        x[rng.integers(0, len(x), size=(N_BOOTSTRAP, len(x)))],
        y[rng.integers(0, len(y), size=(N_BOOTSTRAP, len(y)))],
    )
    pooled, k = np.concatenate([x, y]), len(x)
    observed = stat(x, y)
    if math.comb(len(pooled), k) <= EXACT_LIMIT:
        splits = [list(c) for c in itertools.combinations(range(len(pooled)), k)]
        mask = np.zeros((len(splits), len(pooled)), dtype=bool)
        mask[np.arange(len(splits))[:, None], splits] = True
        order = np.argsort(~mask, axis=1, kind="stable")  # chosen indices first
        shuffled = pooled[order]
        return boot, _two_sided(stat(shuffled[:, :k], shuffled[:, k:]), observed)
    shuffled = np.array([rng.permutation(pooled) for _ in range(N_PERMUTATIONS)])
    hits = _two_sided(stat(shuffled[:, :k], shuffled[:, k:]), observed) * N_PERMUTATIONS
    return boot, (hits + 1) / (N_PERMUTATIONS + 1)


def t_test(mean: float, se: float, df: float) -> float:
    """Two-sided p of a t statistic mean / se (se 0: p 1 for a zero mean, else 0)."""
    if not (df >= 1 and se >= 0 and math.isfinite(mean)):
        return math.nan
    if se == 0:
        return 1.0 if mean == 0 else 0.0
    return float(2 * sps.t.sf(abs(mean) / se, df))


def tost(mean: float, se: float, df: float, margin: float) -> float:
    """p of the two one-sided t-tests of |true mean| < margin (the larger of the two p's)."""
    if not (df >= 1 and se >= 0 and margin > 0 and math.isfinite(mean)):
        return math.nan
    if se == 0:
        return 0.0 if abs(mean) < margin else 1.0
    lower = sps.t.sf((mean + margin) / se, df)  # H0: mean <= -margin
    upper = sps.t.cdf((mean - margin) / se, df)  # H0: mean >= +margin
    return float(max(lower, upper))


def t_interval(mean: float, se: float, df: float) -> tuple[float, float]:
    """The 95% t interval mean +- t(0.975, df) * se."""
    half = float(sps.t.ppf(0.975, df)) * se
    return mean - half, mean + half


def bca_interval(differences: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """The 95% BCa bootstrap interval of the mean of paired differences (t interval when the
    differences are all equal: BCa is undefined there)."""
    n = len(differences)
    if np.ptp(differences) == 0:
        return float(differences[0]), float(differences[0])
    result = sps.bootstrap(
        (differences,),
        np.mean,
        n_resamples=N_BOOTSTRAP,
        method="BCa",
        vectorized=True,
        random_state=rng,
    )
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):
        mean, sd = float(differences.mean()), float(differences.std(ddof=1))
        return t_interval(mean, sd / math.sqrt(n), n - 1)
    return float(low), float(high)


def paired_tests(differences: np.ndarray, margin) -> dict[str, np.ndarray]:
    """Paired t statistics of many rows at once: `differences` [rows, n] (n >= 2 pairs, no NaN),
    `margin` scalar or [rows]. Returns arrays [rows]: effect (mean), sd (ddof=1), p_value
    (two-sided t), p_equivalence (TOST at +-margin), ci_low, ci_high (95% t interval).
    A row whose differences are all equal has se 0: p 0 (1 for a zero mean), TOST 0 or 1."""
    d = np.asarray(differences, dtype=float)
    n = d.shape[1]
    df = n - 1
    effect = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1)
    se = sd / math.sqrt(n)
    margin = np.broadcast_to(np.asarray(margin, dtype=float), effect.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(effect) / se
        p = np.where(se > 0, 2 * sps.t.sf(t, df), np.where(effect == 0, 1.0, 0.0))
        lower = sps.t.sf((effect + margin) / se, df)
        upper = sps.t.cdf((effect - margin) / se, df)
        tost = np.where(se > 0, np.maximum(lower, upper), np.where(abs(effect) < margin, 0, 1.0))
    tost = np.where(margin > 0, tost, np.nan)
    half = float(sps.t.ppf(0.975, df)) * se
    return {"effect": effect, "sd": sd, "p_value": p, "p_equivalence": tost,
            "ci_low": effect - half, "ci_high": effect + half}  # fmt: skip


def _mean_paired(a: np.ndarray, b: np.ndarray, rng, margin: float) -> dict:
    d = a - b
    found = {k: float(v[0]) for k, v in paired_tests(d[None, :], margin).items()}
    if len(d) >= BCA_FROM:
        found["ci_low"], found["ci_high"] = bca_interval(d, rng)
    del found["effect"]
    return found


def _mean_unpaired(a: np.ndarray, b: np.ndarray, margin: float) -> dict:
    """Welch's t: interval, p and TOST with the Welch-Satterthwaite degrees of freedom."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else 1.0
    mean = float(a.mean() - b.mean())
    low, high = t_interval(mean, se, df)
    return {
        "ci_low": low,
        "ci_high": high,
        "p_value": t_test(mean, se, df),
        "sd": math.sqrt(a.var(ddof=1) + b.var(ddof=1)),
        "p_equivalence": tost(mean, se, df, margin),
    }


def compare(
    x: pd.Series, y: pd.Series, statistic: str = "mean", seed: int = 0, margin: float = math.nan
) -> Comparison:
    """Compare per-seed values x and y (Series indexed by seed; NaNs are dropped).

    Paired on the seeds both have when they share any (seeds only one side has are left out),
    unpaired otherwise. statistic "mean": paired t-test (two-sided), 95% t interval below
    `BCA_FROM` pairs and BCa bootstrap from there on, TOST at +-margin; unpaired: Welch.
    statistic "std": percentile bootstrap interval and permutation p (no equivalence test).
    Fewer than 2 seeds: effect only, no interval.
    """
    stat = STATISTICS[statistic]
    x, y = x.dropna(), y.dropna()
    minimum = 3 if statistic == "std" else 2  # a std needs 2 values, its spread at least 3
    shared = x.index.intersection(y.index)
    rng = np.random.default_rng(seed)
    paired = len(shared) > 0
    if paired:
        a = x.loc[shared].to_numpy(float)
        b = y.loc[shared].to_numpy(float)
        n, note = len(shared), f"paired over {len(shared)} seed(s)"
        left_out = len(x) + len(y) - 2 * len(shared)
        if left_out:
            note += f"; {left_out} unpaired cell(s) left out"
    else:
        a, b = x.to_numpy(float), y.to_numpy(float)
        n = min(len(a), len(b))
        note = f"unpaired (no shared seeds): {len(a)} vs {len(b)} cells"
    if n < minimum:
        enough = n >= (minimum - 1 if paired else max(1, minimum - 1))
        effect = float(stat(a, b)) if enough else math.nan
        return Comparison(effect, math.nan, math.nan, n, math.nan, note + ": no interval")
    effect = float(stat(a, b))
    if statistic == "mean":
        found = _mean_paired(a, b, rng, margin) if paired else _mean_unpaired(a, b, margin)
        return Comparison(effect, n=n, note=note, **found)
    boot, p_value = (_paired if paired else _unpaired)(a, b, stat, rng)
    low, high = np.percentile(boot, [2.5, 97.5])
    return Comparison(effect, float(low), float(high), n, float(p_value), note)


class PowerInputError(ValueError):
    """Nonsense asked of `power`, `seeds_needed` or the planner (a spread or margin that is not a
    positive finite number, fewer than 2 pairs, a level or power outside (0, 1)); the message
    names the value and what would be valid."""


def _check_power_inputs(n, delta: float, sd: float, alpha: float) -> None:
    for name, value in (("spread (sd)", sd), ("margin/effect (delta)", delta)):
        if not (isinstance(value, int | float | np.floating) and math.isfinite(value)):
            raise PowerInputError(f"{name} must be a finite number, got {value!r}")
    if sd <= 0:
        raise PowerInputError(f"spread (sd) must be > 0, got {sd!r}: no spread means no test")
    if not 0 < alpha < 1:
        raise PowerInputError(f"alpha must lie in (0, 1), got {alpha!r}")
    pairs = np.asarray(n, dtype=float)
    if not (np.all(np.isfinite(pairs)) and np.all(pairs >= 2)):
        raise PowerInputError(f"seeds (pairs) must be >= 2, got {n!r}")


def power(n, delta: float, sd: float, alpha: float) -> np.ndarray:
    """Power of the two-sided paired t-test at level alpha with n pairs (>= 2), true mean
    difference delta and SD sd (> 0) of the differences (noncentral t, both tails as upper
    tails: P(T > c) + P(-T > c), `nct.sf(c, df, +-shift)`, which stays finite at any shift where
    `nct.cdf(-c, df, shift)` returns NaN). Raises `PowerInputError` for nonsense input."""
    _check_power_inputs(n, delta, sd, alpha)
    n = np.asarray(n, dtype=float)
    df = n - 1
    critical = sps.t.ppf(1 - alpha / 2, df)
    shift = delta * np.sqrt(n) / sd
    found = sps.nct.sf(critical, df, shift) + sps.nct.sf(critical, df, -shift)
    found = np.clip(found, 0.0, 1.0)
    assert np.all(np.isfinite(found)), (n, delta, sd, alpha)
    return found


def tost_power(n, margin: float, sd: float, alpha: float, delta: float = 0.0) -> np.ndarray:
    """Power of the paired TOST at +-margin (each one-sided test at level alpha) with n pairs
    when the true difference is delta (|delta| < margin): P(both one-sided tests reject), by the
    usual bound P(A) + P(B) - 1 with noncentral t tails (exact as the power nears 1, slightly
    low below). Raises `PowerInputError` for nonsense input, or a margin <= 0."""
    _check_power_inputs(n, margin, sd, alpha)
    if margin <= 0:
        raise PowerInputError(f"margin must be > 0, got {margin!r}")
    n = np.asarray(n, dtype=float)
    df = n - 1
    critical = sps.t.ppf(1 - alpha, df)
    upper = sps.nct.sf(critical, df, (margin + delta) * np.sqrt(n) / sd)  # rejects mean <= -m
    lower = sps.nct.sf(critical, df, (margin - delta) * np.sqrt(n) / sd)  # rejects mean >= +m
    found = np.clip(upper + lower - 1.0, 0.0, 1.0)
    assert np.all(np.isfinite(found)), (n, margin, sd, alpha)
    return found


def _fewest(powered, target: float) -> float:
    """The fewest n >= 2 with powered(n) >= target (powered rises with n), inf beyond
    `MOST_SEEDS`: doubling, then bisection."""
    if not 0 < target < 1:
        raise PowerInputError(f"target power must lie in (0, 1), got {target!r}")
    if powered(2) >= target:
        return 2.0
    low, high = 2, 4
    while not powered(high) >= target:
        if high >= MOST_SEEDS:
            return math.inf
        low, high = high, min(2 * high, MOST_SEEDS)
    while high - low > 1:  # powered(low) < target <= powered(high)
        middle = (low + high) // 2
        if powered(middle) >= target:
            high = middle
        else:
            low = middle
    return float(high)


def seeds_needed(delta: float, sd: float, alpha: float, target: float = POWER) -> float:
    """The fewest pairs (>= 2) that give the two-sided paired t-test at level alpha `target`
    power against a true difference delta (> 0; its sign does not matter) with SD sd (> 0) of
    the differences; inf beyond `MOST_SEEDS`. Raises `PowerInputError` for nonsense input."""
    _check_power_inputs(2, delta, sd, alpha)
    if delta == 0:
        raise PowerInputError("margin/effect (delta) must be non-zero: no test has power at 0")
    return _fewest(lambda n: power(n, abs(delta), sd, alpha), target)


def equivalence_seeds_needed(
    margin: float, sd: float, alpha: float, target: float = POWER, delta: float = 0.0
) -> float:
    """The fewest pairs (>= 2) that give the TOST at +-margin (level alpha each side) `target`
    power when the true difference is delta (default 0; |delta| < margin); inf beyond
    `MOST_SEEDS` or when |delta| >= margin. Raises `PowerInputError` for nonsense input."""
    _check_power_inputs(2, margin, sd, alpha)
    if margin <= 0:
        raise PowerInputError(f"margin must be > 0, got {margin!r}")
    if abs(delta) >= margin:
        return math.inf
    return _fewest(lambda n: tost_power(n, margin, sd, alpha, delta), target)


def sd_interval(sd: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The chi-square interval of a normal SD estimated from n values (df n - 1): a 10-pair SD
    is uncertain by a factor of about 0.69 to 1.83, so a pair count that scales with sd^2 is
    uncertain by about 0.5 to 3.3 times."""
    if n < 2 or not (math.isfinite(sd) and sd > 0):
        return math.nan, math.nan
    df = n - 1
    tail = (1 - level) / 2
    return (
        sd * math.sqrt(df / sps.chi2.ppf(1 - tail, df)),
        sd * math.sqrt(df / sps.chi2.ppf(tail, df)),
    )


def _bin_of(conf: np.ndarray) -> np.ndarray:
    """bench.metrics' ECE bin of each confidence: (lo, hi] bins, the first also holding 0."""
    return np.clip(np.ceil(conf * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)


# The per-bin ECE parts `_image_metric` computes, by per-image metric name (`Column.image_metric`
# names "accuracy" or one of these): each bin's gap kept as |.| or max(0, .).
BIN_GAP = {"ece": np.abs, "ece_over": lambda gaps: np.maximum(gaps, 0.0)}


def _image_metric(
    weights: np.ndarray, correct: np.ndarray, conf: np.ndarray, metric: str
) -> np.ndarray:
    """The metric of one cell under each row of image weights (resample counts) [K, N] -> [K].

    accuracy: weighted share correct; ece / ece_over: sum over bins of |.| or max(0, .) of the
    bin's summed (confidence - correct), divided by the image count.
    """
    total = weights.sum(axis=1)
    if metric == "accuracy":
        return weights @ correct / total
    if metric not in BIN_GAP:
        raise ValueError(f"no per-image computation of {metric!r}: accuracy or one of {[*BIN_GAP]}")
    gaps = np.zeros((len(conf), ECE_BINS))
    gaps[np.arange(len(conf)), _bin_of(conf)] = conf - correct
    per_bin = weights @ gaps
    return BIN_GAP[metric](per_bin).sum(axis=1) / total


def image_sd(a: dict, b: dict, metric: str, seed: int = 0) -> float:
    """The SD of one seed's metric(a) - metric(b) that test-image sampling alone gives (the
    same images for both cells): analytic for accuracy (sd of the per-image difference of
    correctness / sqrt(N)), from `N_INNER` multinomial image resamples for ECE."""
    correct = [(cell["pred"] == cell["label"]).astype(float) for cell in (a, b)]
    n_images = len(correct[0])
    if metric == "accuracy":
        return float(np.std(correct[0] - correct[1], ddof=1) / math.sqrt(n_images))
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=N_INNER)
    weights = weights.astype(float)
    values = [_image_metric(weights, c, cell["conf"].astype(float), metric)
              for c, cell in zip(correct, (a, b), strict=True)]  # fmt: skip
    return float(np.std(values[0] - values[1], ddof=1))


def seed_sd(total: float, images: float, images_in_seeds: bool) -> float:
    """The seed component of a paired difference's SD: the spread left when image sampling is
    taken out (total^2 - images^2, floored at 0) where each seed drew its own test images; the
    whole seed spread where the test images were the same for every seed."""
    if not (math.isfinite(total) and math.isfinite(images)):
        return math.nan
    return math.sqrt(max(total**2 - images**2, 0.0)) if images_in_seeds else total


def crossed_interval(
    cells: list[tuple[dict, dict]], metric: str, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of the mean over seeds of metric(a) - metric(b) when every seed
    was tested on the same images (a test set fixed across seeds): each of `N_OUTER` resamples
    draws the seeds with replacement and one multinomial resample of the images, shared by
    every drawn seed (the images' sampling does not average out over seeds)."""
    rng = np.random.default_rng(seed)
    n_images, n = len(cells[0][0]["label"]), len(cells)
    seeds = rng.integers(0, n, size=(N_OUTER, n))
    boot = np.empty(N_OUTER)
    chunk = 250
    for start in range(0, N_OUTER, chunk):
        size = min(chunk, N_OUTER - start)
        weights = rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=size)
        weights = weights.astype(float)
        per_seed = np.stack(
            [
                _image_metric(weights, (a["pred"] == a["label"]).astype(float),
                              a["conf"].astype(float), metric)
                - _image_metric(weights, (b["pred"] == b["label"]).astype(float),
                                b["conf"].astype(float), metric)
                for a, b in cells
            ],
            axis=1,
        )  # fmt: skip
        rows = np.arange(size)[:, None]
        boot[start : start + size] = per_seed[rows, seeds[start : start + size]].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(low), float(high)


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (NaN stays NaN and is not counted in the family)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    running = 0.0
    for rank, index in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (len(finite) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def describe_groups(frame: pd.DataFrame, metric: str, by: str) -> pd.DataFrame:
    """`describe` of the metric per value of `by` (sorted): one row per value, with columns n,
    mean, std, ci_low, ci_high."""
    return pd.DataFrame({key: describe(values) for key, values in frame.groupby(by)[metric]}).T


def means(frame: pd.DataFrame, metric: str, by) -> pd.Series:
    """The mean of the metric per group of `by` (a column or a list of them), groups sorted."""
    return frame.groupby(by)[metric].mean()


def pooled_bins(calibration: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Reliability bins pooled over seeds per group of `by`: counts summed, means weighted.

    `calibration`: calibration.csv rows (`split`, `bin`, `bin_lower`, `bin_upper`, `count`,
    `mean_confidence`, `accuracy`) with the `by` columns. Only the test split is pooled (or the
    first split by name when there is no test split; splits are never mixed). Returns one row per
    group and bin: `by`, bin, bin_lower, bin_upper, count, mean_confidence, accuracy (NaN for an
    empty bin) and share (the bin's share of the group's images).
    """
    splits = set(calibration["split"])
    cal = calibration[calibration["split"] == ("test" if "test" in splits else min(splits))]
    cal = cal[cal["count"].notna()].copy()
    cal["conf_sum"] = (cal["mean_confidence"] * cal["count"]).fillna(0.0)
    cal["acc_sum"] = (cal["accuracy"] * cal["count"]).fillna(0.0)
    pooled = cal.groupby([*by, "bin"], as_index=False).agg(
        bin_lower=("bin_lower", "first"),
        bin_upper=("bin_upper", "first"),
        count=("count", "sum"),
        conf_sum=("conf_sum", "sum"),
        acc_sum=("acc_sum", "sum"),
    )
    filled = pooled["count"].where(pooled["count"] > 0)  # empty bins: no mean
    pooled["mean_confidence"] = pooled["conf_sum"] / filled
    pooled["accuracy"] = pooled["acc_sum"] / filled
    total = pooled.groupby(by)["count"].transform("sum")
    pooled["share"] = pooled["count"] / total
    return pooled


@dataclass(frozen=True)
class FactorContrast:
    """Two crossed factors' largest main-effect differences compared (`factor_contrast`).

    `effect`: D = max_i |Δ_first,i| - max_j |Δ_second,j| (estimates); `ci_low`/`ci_high`: its
    interval at the level asked; `differences`: per factor, (level a, level b, Δ = mean a - mean
    b, low, high) of every pair of its levels, Bonferroni-simultaneous over all pairs of both
    factors; `p_value`: the smallest level at which D's interval excludes 0; `p_equivalence`:
    the smallest at which it lies within +-margin (NaN without a margin)."""

    effect: float
    ci_low: float
    ci_high: float
    n: int
    p_value: float
    p_equivalence: float
    differences: tuple[list[tuple], list[tuple]]


def _abs_bounds(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The interval of |Δ| from an interval [low, high] of Δ: [0, max(|low|, |high|)] when it
    holds 0, else its ends' absolute values in order."""
    return np.maximum(0.0, np.maximum(low, -high)), np.maximum(np.abs(low), np.abs(high))


def factor_contrast(
    values: np.ndarray, alpha: float = ALPHA, margin: float = math.nan
) -> FactorContrast:
    """Is the first factor's largest main-effect difference larger than the second's?

    `values` [first levels F >= 2, second levels S >= 2, seeds n >= 2]: the metric of every cell
    of a complete crossing, seeds paired. Per seed, the main-effect means of a level average
    over the other factor's levels (m_f: over S, m_s: over F). Every pairwise difference of
    levels of one factor (F(F-1)/2 + S(S-1)/2 = M pairs in all) gets a paired t interval at
    level alpha / M (Bonferroni: all M cover their true differences together with probability
    >= 1 - alpha); from them an interval of each |Δ|, and of
    D = max_f |Δ_f| - max_s |Δ_s|: [max_f low|Δ_f| - max_s high|Δ_s|, max_f high|Δ_f| -
    max_s low|Δ_s|], which covers D whenever all M intervals cover theirs, whatever F and S.
    The estimate max |Δ̂| of a factor with more levels is biased up (it is the range of more
    noisy means); the interval carries that, so noise alone rarely clears 0 on either side.
    """
    values = np.asarray(values, dtype=float)
    levels_f, levels_s, n = values.shape
    if levels_f < 2 or levels_s < 2 or n < 2 or not np.isfinite(values).all():
        raise ValueError(
            f"a complete crossing of >= 2 x >= 2 levels and >= 2 seeds, got {values.shape}"
        )
    pairs = [list(itertools.combinations(range(levels_f), 2)),
             list(itertools.combinations(range(levels_s), 2))]  # fmt: skip
    means = [values.mean(axis=1), values.mean(axis=0)]  # [F, n], [S, n]
    diffs = [np.array([means[k][i] - means[k][j] for i, j in pairs[k]]) for k in (0, 1)]
    total = len(pairs[0]) + len(pairs[1])
    estimate = [d.mean(axis=1) for d in diffs]
    se = [d.std(axis=1, ddof=1) / math.sqrt(n) for d in diffs]

    def bounds(level: float) -> tuple[float, float, list]:
        critical = float(sps.t.ppf(1 - level / (2 * total), n - 1))
        found = []
        for k in (0, 1):
            with np.errstate(invalid="ignore"):  # no spread: no width at any level (inf x 0)
                half = np.where(se[k] > 0, critical * se[k], 0.0)
            low, high = estimate[k] - half, estimate[k] + half
            found.append((low, high, *_abs_bounds(low, high)))
        (_, _, low_f, high_f), (_, _, low_s, high_s) = found
        return float(low_f.max() - high_s.max()), float(high_f.max() - low_s.max()), found

    def smallest(holds) -> float:
        """The smallest level in (0, 1] at which holds(low, high) (which only gains as the
        level rises: intervals narrow), by bisection on its logarithm; 1 when not even there."""
        if not holds(*bounds(1.0)[:2]):
            return 1.0
        lo, hi = -40.0, 0.0  # log10 of the level
        if holds(*bounds(10**lo)[:2]):
            return 10**lo
        for _ in range(60):
            middle = (lo + hi) / 2
            lo, hi = (lo, middle) if holds(*bounds(10**middle)[:2]) else (middle, hi)
        return float(10**hi)

    low, high, found = bounds(alpha)
    effect = float(np.abs(estimate[0]).max() - np.abs(estimate[1]).max())
    p_value = smallest(lambda lo, hi: lo > 0 or hi < 0)
    p_equivalence = (
        smallest(lambda lo, hi: -margin < lo and hi < margin) if margin > 0 else math.nan
    )
    differences = tuple(
        [(i, j, float(e), float(lo), float(hi))
         for (i, j), e, lo, hi in zip(pairs[k], estimate[k], found[k][0], found[k][1], strict=True)]
        for k in (0, 1)
    )  # fmt: skip
    return FactorContrast(effect, low, high, n, p_value, p_equivalence, differences)
