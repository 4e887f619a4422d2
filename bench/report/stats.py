"""Statistics of a report: per-cell summaries, seed-paired comparisons, multiple-comparison control.

- `summarize`: mean, standard deviation (ddof=1), n and a 95% Student-t interval of the mean over
  seeds, per group, in tidy long form (one row per group and metric). Reads the metric columns
  and the grouping columns it is given.
- `compare`: the difference between two sets of per-seed values, paired by seed where they share
  seeds: a 95% percentile bootstrap interval (resampling seeds) and a two-sided permutation p-value
  (paired: swapping the two values of a seed, i.e. sign flips of the difference for the mean).
- `holm`: Holm's step-down adjustment of a family of p-values.
- `describe_groups`, `means`, `pooled_bins`: the per-group summaries the figures draw (t intervals
  per group, means over seeds or epochs, reliability bins pooled over seeds).

Everything is deterministic: random draws come from a numpy Generator seeded by the caller.
With n seeds, a paired permutation test cannot give p below 2 / 2**n, so with 2-3 seeds no
difference survives a multiple-comparison correction however large it is; the report says so.
"""

from __future__ import annotations

import itertools
import math
import statistics
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

N_BOOTSTRAP = 10_000
N_PERMUTATIONS = 10_000  # random permutations when exact enumeration would be larger
EXACT_LIMIT = 20_000  # enumerate every permutation when there are at most this many

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


def compare(x: pd.Series, y: pd.Series, statistic: str = "mean", seed: int = 0) -> Comparison:
    """Compare per-seed values x and y (Series indexed by seed; NaNs are dropped).

    Paired on the seeds both have when they share any (seeds only one side has are left out),
    unpaired otherwise. The interval is the 2.5-97.5 percentile range of the bootstrap
    distribution of the statistic; p is two-sided. Fewer than 2 seeds: effect only, no interval.
    """
    stat = STATISTICS[statistic]
    x, y = x.dropna(), y.dropna()
    minimum = 3 if statistic == "std" else 2  # a std needs 2 values, its spread at least 3
    shared = x.index.intersection(y.index)
    rng = np.random.default_rng(seed)
    if len(shared):
        a = x.loc[shared].to_numpy(float)
        b = y.loc[shared].to_numpy(float)
        n, note = len(shared), f"paired over {len(shared)} seed(s)"
        left_out = len(x) + len(y) - 2 * len(shared)
        if left_out:
            note += f"; {left_out} unpaired cell(s) left out"
        if n < minimum:
            effect = float(stat(a, b)) if n >= minimum - 1 else math.nan
            return Comparison(effect, math.nan, math.nan, n, math.nan, note + ": no interval")
        boot, p_value = _paired(a, b, stat, rng)
    else:
        a, b = x.to_numpy(float), y.to_numpy(float)
        n = min(len(a), len(b))
        note = f"unpaired (no shared seeds): {len(a)} vs {len(b)} cells"
        if n < minimum:
            effect = float(stat(a, b)) if n >= max(1, minimum - 1) else math.nan
            return Comparison(effect, math.nan, math.nan, n, math.nan, note + ": no interval")
        boot, p_value = _unpaired(a, b, stat, rng)
    low, high = np.percentile(boot, [2.5, 97.5])
    return Comparison(float(stat(a, b)), float(low), float(high), n, float(p_value), note)


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
