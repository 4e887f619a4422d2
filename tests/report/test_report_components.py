"""Variance components of a paired difference (`stats.image_sd`, `stats.seed_sd`,
`stats.crossed_interval`) and the interval-beyond-margin mark (`verdicts.clears_margin`)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from bench.report import stats, verdicts


def _cell(rng, label, accuracy):
    right = rng.random(len(label)) < accuracy
    return {"label": label, "pred": np.where(right, label, (label + 1) % 10),
            "conf": rng.uniform(0.4, 1.0, len(label))}  # fmt: skip


def test_image_sd_of_accuracy_matches_resampling():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 10, 1000)
    a, b = _cell(rng, label, 0.6), _cell(rng, label, 0.5)
    analytic = stats.image_sd(a, b, "accuracy")
    # resample the images: the SD of the paired accuracy difference
    draws = rng.integers(0, 1000, size=(4000, 1000))
    ca, cb = (a["pred"] == label).astype(float), (b["pred"] == label).astype(float)
    resampled = float(np.std(ca[draws].mean(1) - cb[draws].mean(1)))
    assert analytic == pytest.approx(resampled, rel=0.08)
    assert 0.015 < analytic < 0.035  # about sqrt(0.24 + 0.25) / sqrt(1000) for independent errors
    assert stats.image_sd(a, b, "ece", seed=1) > 0


def test_seed_sd_takes_images_out_only_where_each_seed_drew_its_own():
    assert stats.seed_sd(0.05, 0.03, images_in_seeds=True) == pytest.approx(0.04)
    assert stats.seed_sd(0.05, 0.03, images_in_seeds=False) == 0.05
    assert stats.seed_sd(0.02, 0.03, images_in_seeds=True) == 0.0  # floored, never NaN
    assert math.isnan(stats.seed_sd(0.02, math.nan, images_in_seeds=True))


def test_crossed_interval_keeps_shared_image_noise_that_seeds_cannot_show():
    # The same 500 images for every seed and the same predictions every seed: the seeds show
    # no spread at all, yet the difference is measured on one sample of 500 images.
    rng = np.random.default_rng(1)
    label = rng.integers(0, 10, 500)
    a, b = _cell(rng, label, 0.62), _cell(rng, label, 0.58)
    cells = [(a, b)] * 6
    low, high = stats.crossed_interval(cells, "accuracy", seed=2)
    effect = float((a["pred"] == label).mean() - (b["pred"] == label).mean())
    assert low < effect < high
    assert high - low > 2 * 1.96 * 0.8 * stats.image_sd(a, b, "accuracy")  # about the image SD
    # and the ECE: the same shared resample, an interval of positive width
    ece_low, ece_high = stats.crossed_interval(cells, "ece", seed=2)
    assert ece_low < ece_high
    assert stats.crossed_interval(cells, "accuracy", seed=2) == (low, high)  # seeded


def _row(effect, low, high, images=(math.nan, math.nan), margin=0.005):
    return SimpleNamespace(effect=effect, ci_low=low, ci_high=high, ci_images_low=images[0],
                           ci_images_high=images[1], margin=margin)  # fmt: skip


def test_clears_margin_needs_the_whole_interval_beyond_the_margin():
    assert verdicts.clears_margin(_row(0.03, 0.01, 0.05)) == 1
    assert verdicts.clears_margin(_row(0.03, 0.004, 0.05)) == 0  # point beyond, interval not
    assert verdicts.clears_margin(_row(-0.03, -0.05, -0.006)) == 1
    assert verdicts.clears_margin(_row(-0.03, -0.05, -0.001)) == 0
    assert verdicts.clears_margin(_row(0.03, 0.01, 0.05, images=(0.002, 0.06))) == 0
    assert math.isnan(verdicts.clears_margin(_row(math.nan, math.nan, math.nan)))
