"""bench.metrics: hand-computed values on five samples, a slow numpy reference on random data,
temperature recovery, and reliability bins."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.metrics import (
    T_MAX,
    T_MIN,
    accuracy,
    calibration_summary,
    fit_temperature,
    flip_rate,
    flip_rate_correct,
    nll,
    reliability_bins,
    retained,
    top_label,
)

# Five samples, three classes; logits = log(p) so softmax gives p back exactly (up to rounding).
# Confidences avoid the bin edges k/15.
PROBS = [
    [0.90, 0.05, 0.05],  # label 0: correct, conf 0.90 -> bin 13 (0.867, 0.933]
    [0.10, 0.70, 0.20],  # label 2: wrong,   conf 0.70 -> bin 10 (0.667, 0.733]
    [0.20, 0.08, 0.72],  # label 2: correct, conf 0.72 -> bin 10
    [0.55, 0.25, 0.20],  # label 1: wrong,   conf 0.55 -> bin 8  (0.533, 0.600]
    [0.30, 0.62, 0.08],  # label 1: correct, conf 0.62 -> bin 9  (0.600, 0.667]
]
LABELS = [0, 2, 2, 1, 1]


def _tiny() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(PROBS, dtype=torch.float64).log(), torch.tensor(LABELS)


def test_hand_computed_summary():
    s = calibration_summary(*_tiny())
    # bins: 8: |0 - .55| = .55 (n 1); 9: |1 - .62| = .38 (n 1); 10: |.5 - .71| = .21 (n 2);
    # 13: |1 - .9| = .10 (n 1)  ->  ECE = (.55 + .38 + 2 * .21 + .10) / 5 = 1.45 / 5
    assert s["ece"] == pytest.approx(0.29, abs=1e-12)
    assert s["mce"] == pytest.approx(0.55, abs=1e-12)
    assert s["acc"] == pytest.approx(0.6)
    assert s["mean_conf"] == pytest.approx(3.49 / 5)
    # Brier per sample: .015, 1.14, .1248, .905, .2408 (e.g. sample 2: .1^2 + .7^2 + .8^2)
    assert s["brier"] == pytest.approx(2.4256 / 5, abs=1e-12)
    # NLL: -(ln .9 + ln .2 + ln .72 + ln .25 + ln .62) / 5
    assert s["nll"] == pytest.approx(0.7815265314, abs=1e-9)
    # 5 samples in 15 equal-mass bins: one sample per bin, so the mean of |correct - conf|:
    # (.10 + .70 + .28 + .55 + .38) / 5
    assert s["ece_adaptive"] == pytest.approx(2.01 / 5, abs=1e-12)


def test_hand_computed_adaptive_two_bins():
    # sorted confs .55(0) .62(1) .70(0) | .72(1) .90(1): sizes 3 and 2 (the first bin longer).
    # |1 - 1.87| + |2 - 1.62| = .87 + .38 -> 1.25 / 5
    s = calibration_summary(*_tiny(), n_bins=2)
    assert s["ece_adaptive"] == pytest.approx(0.25, abs=1e-12)
    one = calibration_summary(*_tiny(), n_bins=1)
    assert one["ece"] == pytest.approx(abs(0.6 - 0.698), abs=1e-12)
    assert one["ece_adaptive"] == pytest.approx(one["ece"], abs=1e-12)


def test_accuracy_nll_and_temperature_argument():
    logits, labels = _tiny()
    assert accuracy(logits, labels) == pytest.approx(0.6)
    assert nll(logits, labels) == pytest.approx(0.7815265314, abs=1e-9)
    z2 = logits * 2
    assert nll(z2, labels, temperature=2.0) == pytest.approx(nll(logits, labels), abs=1e-12)
    with pytest.raises(ValueError):
        nll(logits, labels, temperature=0.0)


def test_low_precision_logits_accepted():
    logits, labels = _tiny()
    half = logits.to(torch.float16)
    assert accuracy(half, labels) == pytest.approx(0.6)
    assert calibration_summary(half, labels)["ece"] == pytest.approx(0.29, abs=2e-3)


def test_rejects_bad_input():
    logits, labels = _tiny()
    with pytest.raises(ValueError):
        accuracy(logits[:4], labels)
    with pytest.raises(ValueError):
        calibration_summary(torch.full((2, 3), float("nan")), labels[:2])
    with pytest.raises(ValueError):
        accuracy(logits, torch.tensor([0, 1, 2, 3, 0]))


def _numpy_reference(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> dict[str, float]:
    """Slow per-sample / per-bin reference written independently of bench.metrics."""
    n = len(labels)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(float)
    members: list[list[int]] = [[] for _ in range(n_bins)]
    for i in range(n):
        for b in range(n_bins):
            lo, hi = b / n_bins, (b + 1) / n_bins
            if lo < conf[i] <= hi or (b == 0 and conf[i] == 0):
                members[b].append(i)
                break
    ece, mce = 0.0, 0.0
    for m in members:
        if m:
            g = abs(correct[m].mean() - conf[m].mean())
            ece += len(m) / n * g
            mce = max(mce, g)
    order = sorted(range(n), key=lambda i: conf[i])
    groups = np.array_split(np.array(order), n_bins)
    ece_ad = sum(len(g) / n * abs(correct[g].mean() - conf[g].mean()) for g in groups if len(g))
    brier = 0.0
    for i in range(n):
        target = np.zeros(probs.shape[1])
        target[labels[i]] = 1.0
        brier += ((probs[i] - target) ** 2).sum() / n
    return {"ece": ece, "mce": mce, "ece_adaptive": ece_ad, "brier": brier}


@pytest.mark.parametrize(("n", "k", "scale"), [(1000, 10, 3.0), (301, 4, 0.5), (37, 10, 8.0)])
def test_matches_numpy_reference(n, k, scale):
    g = torch.Generator().manual_seed(n)
    logits = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    labels = torch.randint(0, k, (n,), generator=g)
    # Make roughly half the predictions right so accuracy and confidence both vary.
    right = torch.rand(n, generator=g) < 0.5
    labels = torch.where(right, logits.argmax(1), labels)
    got = calibration_summary(logits, labels)
    ref = _numpy_reference(logits.softmax(1).numpy(), labels.numpy(), 15)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, abs=1e-10), key


def test_matches_torchmetrics_if_installed():
    tm = pytest.importorskip("torchmetrics.classification")
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 10, generator=g) * 3
    labels = torch.randint(0, 10, (500,), generator=g)
    ref = tm.MulticlassCalibrationError(num_classes=10, n_bins=15, norm="l1")
    expected = ref(logits.softmax(1), labels).item()
    assert calibration_summary(logits, labels)["ece"] == pytest.approx(expected, abs=1e-5)


def test_reliability_bins_hand_example():
    rows = reliability_bins(*_tiny())
    assert [r["bin"] for r in rows] == list(range(15))
    assert sum(r["count"] for r in rows) == 5
    assert {r["bin"]: r["count"] for r in rows if r["count"]} == {8: 1, 9: 1, 10: 2, 13: 1}
    assert rows[10]["mean_confidence"] == pytest.approx(0.71)
    assert rows[10]["accuracy"] == pytest.approx(0.5)
    assert rows[0]["bin_lower"] == 0.0 and rows[-1]["bin_upper"] == 1.0
    assert rows[8]["bin_lower"] == pytest.approx(8 / 15) and rows[8]["bin_upper"] == pytest.approx(
        9 / 15
    )
    empty = [r for r in rows if r["count"] == 0]
    assert len(empty) == 11
    assert all(r["mean_confidence"] is None and r["accuracy"] is None for r in empty)


def test_reliability_bins_counts_sum_to_n_and_edges():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(777, 10, generator=g) * 4
    labels = torch.randint(0, 10, (777,), generator=g)
    rows = reliability_bins(logits, labels, n_bins=10)
    assert len(rows) == 10 and sum(r["count"] for r in rows) == 777
    # A confidence of exactly 1 (one-hot logits) lands in the last bin; uniform 1/K in its bin.
    sure = torch.tensor([[100.0, -100.0], [0.0, 0.0]])
    rows = reliability_bins(sure, torch.tensor([0, 1]), n_bins=4)
    assert [r["count"] for r in rows] == [0, 1, 0, 1]  # 0.5 is in (0.25, 0.5]


def _planted(n: int, t: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels sampled from softmax(z); returns (z * t, labels), so the right temperature is t."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 10, generator=g) * 2.0
    labels = torch.multinomial(z.softmax(1), 1, generator=g).squeeze(1)
    return z * t, labels


@pytest.mark.parametrize("planted", [1.0, 3.0, 0.4])
def test_fit_temperature_recovers_planted(planted):
    logits, labels = _planted(4000, planted, seed=7)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(planted, rel=0.1)
    assert fit_temperature(logits, labels) == t  # deterministic
    # It is the minimum: nudging either way does not lower the NLL.
    best = nll(logits, labels, temperature=t)
    assert best <= nll(logits, labels, temperature=t * 1.02)
    assert best <= nll(logits, labels, temperature=t / 1.02)


def test_fit_temperature_edge_cases():
    # Perfectly separated: sharper always helps -> the lower bound.
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    assert fit_temperature(logits, torch.tensor([0, 1, 0])) == T_MIN
    # Constant logits: NLL independent of T.
    assert fit_temperature(torch.zeros(4, 3), torch.tensor([0, 1, 2, 0])) == 1.0
    # Confidently wrong everywhere: flattest allowed.
    assert fit_temperature(logits, torch.tensor([1, 0, 1])) == T_MAX


def test_flip_rate():
    a = torch.tensor([0, 1, 2, 3])
    assert flip_rate(a, a) == 0.0
    assert flip_rate(a, torch.tensor([0, 1, 3, 2])) == 0.5
    with pytest.raises(ValueError):
        flip_rate(a, a[:3])
    assert math.isclose(flip_rate(torch.zeros(3), torch.tensor([0.0, 1.0, 1.0])), 2 / 3)


# ---------------------------------------------------------------------------------------------
# issue 12: retained accuracy, flip rate among correct images, top-label outcomes


def test_retained_is_one_without_effect_and_a_share_otherwise():
    assert retained(0.8, 0.8) == 1.0  # the perturbation changed nothing
    assert retained(0.4, 0.8) == 0.5
    assert retained(0.0, 0.8) == 0.0
    assert retained(0.9, 0.6) == pytest.approx(1.5)  # it can fix more than it breaks
    assert math.isnan(retained(0.0, 0.0)) and math.isnan(retained(0.3, 0.0))  # nothing to keep
    for bad in ((1.2, 0.5), (0.5, -0.1), (float("nan"), 0.5)):
        with pytest.raises(ValueError, match="accuracy in"):
            retained(*bad)


def test_flip_rate_correct_by_hand_and_ignores_wrong_images():
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    clean = torch.tensor([0, 1, 2, 3, 9, 9])  # the first four correct, the last two wrong
    perturbed = torch.tensor([0, 7, 2, 3, 8, 8])  # one of four correct flips; both wrong flip
    assert flip_rate(clean, perturbed) == pytest.approx(3 / 6)
    assert flip_rate_correct(clean, perturbed, labels) == pytest.approx(1 / 4)
    # Whatever happens to the wrongly classified images, the value does not move ...
    for wrong_after in ([9, 9], [4, 5], [0, 0]):
        changed = perturbed.clone()
        changed[4:] = torch.tensor(wrong_after)
        assert flip_rate_correct(clean, changed, labels) == pytest.approx(1 / 4)
    # ... while a flip of a correct image does.
    assert flip_rate_correct(clean, torch.tensor([5, 7, 2, 3, 8, 8]), labels) == pytest.approx(
        2 / 4
    )
    assert flip_rate_correct(clean, clean, labels) == 0.0
    assert math.isnan(flip_rate_correct(clean[4:], perturbed[4:], labels[4:]))  # none correct
    with pytest.raises(ValueError):
        flip_rate_correct(clean, perturbed, labels[:5])
    with pytest.raises(ValueError):
        flip_rate_correct(clean, perturbed[:5], labels)


def test_flip_rate_correct_does_not_follow_accuracy():
    """Two models with the same flips among correct images but different accuracy get the same
    flip_rate_correct, while flip_rate (over all images) differs: the wrong images' churn."""
    labels = torch.arange(10) % 10
    accurate = labels.clone()  # 10 of 10 correct
    weak = labels.clone()
    weak[5:] = (labels[5:] + 1) % 10  # 5 of 10 correct
    flip_accurate = accurate.clone()
    flip_accurate[0] = 9  # 1 of 10 correct images flips
    flip_weak = weak.clone()
    flip_weak[5:] = (weak[5:] + 1) % 10  # every wrong image flips ...
    assert flip_rate_correct(accurate, flip_accurate, labels) == pytest.approx(0.1)
    assert flip_rate_correct(weak, flip_weak, labels) == 0.0  # ... and none of the correct ones
    assert flip_rate(weak, flip_weak) == pytest.approx(0.5)


def test_top_label_matches_accuracy_and_calibration():
    logits, labels = torch.log(torch.tensor(PROBS)), torch.tensor(LABELS)
    conf, pred = top_label(logits)
    assert pred.dtype == torch.int64 and conf.dtype == torch.float64
    assert torch.allclose(conf, torch.tensor([0.90, 0.70, 0.72, 0.55, 0.62], dtype=torch.float64))
    assert (pred == labels).double().mean().item() == accuracy(logits, labels)
    assert conf.mean().item() == pytest.approx(calibration_summary(logits, labels)["mean_conf"])
    tied = torch.tensor([[1.0, 3.0, 3.0]])
    assert top_label(tied)[1].item() == tied.argmax(1).item() == 1  # first index on ties
    with pytest.raises(ValueError, match="NaN or inf"):
        top_label(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        top_label(torch.zeros(3))
