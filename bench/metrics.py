"""Accuracy, likelihood and calibration metrics of final logits, plus temperature scaling.

Every function takes logits float [N, K] (any float dtype, any device) and labels int64 [N],
computes in float64 (float32 on MPS, which has no float64) and returns plain Python numbers, so
the runner can write them straight into runs.csv / calibration.csv. Definitions (docs/metrics.md):

- confidence = top-label softmax probability, prediction = its argmax (first index on ties).
- ECE: 15 equal-width confidence bins (lo, hi], the first bin also holding 0;
  sum over bins of count/N * |accuracy - mean confidence| (Guo et al. 2017, "On Calibration of
  Modern Neural Networks"). MCE: the largest such gap over non-empty bins.
- Adaptive ECE: the same sum over 15 equal-mass bins: samples sorted by confidence (stable sort,
  ties in input order) and cut into consecutive runs of N // 15 samples, the first N % 15 runs one
  longer, as numpy.array_split does (Nixon et al. 2019, "Measuring Calibration in Deep
  Learning"). With N < 15 the last bins are empty.
- Brier: mean over samples of sum over classes (p_k - onehot_k)^2, the multi-class form with range
  [0, 2] (Brier 1950); some papers divide by K or score only the top label, this one does neither.
- NLL: mean negative log-likelihood of the true label (natural log).
- Temperature scaling: one scalar T > 0 for logits / T, fitted by minimum NLL on the validation
  split; NLL is convex in 1/T, so a bisection on the sign of its derivative finds the optimum.

- Robustness (issue 12): `retained` = perturbed accuracy / clean accuracy on the same images
  (NaN when the clean accuracy is 0); `flip_rate` over all images, `flip_rate_correct` over the
  images the clean model classifies correctly (NaN when there are none).
- `top_label`: per-image confidence and prediction, what outcomes/<run_id>.npz stores.

Non-finite logits raise ValueError: a NaN must fail the cell, not be binned as a confidence.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

T_MIN, T_MAX = 0.05, 20.0  # search range of fit_temperature


def _prepare(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate shapes and values; return (logits in float64/float32 [N, K], labels int64 [N])."""
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected logits [N, K] and labels [N], got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    z = _check_logits(logits)
    y = labels.detach().to(device=z.device, dtype=torch.long)
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must lie in [0, {z.shape[1] - 1}]")
    return z, y


def _check_logits(logits: torch.Tensor) -> torch.Tensor:
    """Logits [N, K] (N, K >= 1, finite) in float64 (float32 on MPS), detached."""
    if logits.ndim != 2:
        raise ValueError(f"expected logits [N, K], got {tuple(logits.shape)}")
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError("metrics of an empty set are undefined (N = 0 or K = 0)")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}")
    dtype = torch.float32 if logits.device.type == "mps" else torch.float64
    z = logits.detach().to(dtype)
    if not torch.isfinite(z).all():
        raise ValueError("logits contain NaN or inf")
    return z


def _confidence(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-label confidence [N] and correctness as 0./1. [N] (same dtype) of logits z [N, K]."""
    conf, pred = z.softmax(dim=1).max(dim=1)
    return conf, (pred == y).to(z.dtype)


def _bin_sums(
    idx: torch.Tensor, conf: torch.Tensor, correct: torch.Tensor, n_bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-bin count, sum of confidences, sum of correct, each [n_bins], for bin indices idx [N]."""
    count = torch.zeros(n_bins, dtype=conf.dtype, device=conf.device)
    count.index_add_(0, idx, torch.ones_like(conf))
    sum_conf = torch.zeros_like(count).index_add_(0, idx, conf)
    sum_correct = torch.zeros_like(count).index_add_(0, idx, correct)
    return count, sum_conf, sum_correct


def _equal_width_bins(conf: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin edges [n_bins + 1] and the bin index [N] of each confidence: bin b = (e_b, e_b+1],
    with 0 in bin 0. bucketize(right=False) on the upper edges returns exactly that index."""
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=conf.dtype, device=conf.device)
    idx = torch.bucketize(conf, edges[1:], right=False).clamp_(max=n_bins - 1)
    return edges, idx


def _check_bins(n_bins: int) -> None:
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of argmax(logits [N, K]) equal to labels [N]."""
    z, y = _prepare(logits, labels)
    return (z.argmax(dim=1) == y).to(z.dtype).mean().item()


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of labels [N] under softmax(logits [N, K] / T)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z, y = _prepare(logits, labels)
    return F.cross_entropy(z / temperature, y).item()


def calibration_summary(
    logits: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
) -> dict[str, float]:
    """Keys acc, nll, ece, mce, brier, mean_conf, ece_adaptive of logits [N, K], labels [N]
    (definitions in the module docstring). mce is 0.0 only when every non-empty bin is exact."""
    _check_bins(n_bins)
    z, y = _prepare(logits, labels)
    n = z.shape[0]
    probs = z.softmax(dim=1)
    conf, correct = _confidence(z, y)

    _, idx = _equal_width_bins(conf, n_bins)
    count, sum_conf, sum_correct = _bin_sums(idx, conf, correct, n_bins)
    gap = (sum_correct - sum_conf).abs()  # = count * |acc_b - conf_b|
    ece = gap.sum() / n
    mce = (gap[count > 0] / count[count > 0]).max()

    # Equal-mass bins: consecutive runs of the sorted confidences, the first n % n_bins longer.
    order = conf.argsort(stable=True)
    q, r = divmod(n, n_bins)
    sizes = torch.tensor([q + 1] * r + [q] * (n_bins - r), device=z.device)
    mass_idx = torch.repeat_interleave(torch.arange(n_bins, device=z.device), sizes)
    _, a_conf, a_correct = _bin_sums(mass_idx, conf[order], correct[order], n_bins)
    ece_adaptive = (a_correct - a_conf).abs().sum() / n

    onehot = F.one_hot(y, num_classes=z.shape[1]).to(z.dtype)
    brier = (probs - onehot).square().sum(dim=1).mean()
    return {
        "acc": correct.mean().item(),
        "nll": F.cross_entropy(z, y).item(),
        "ece": ece.item(),
        "mce": mce.item(),
        "brier": brier.item(),
        "mean_conf": conf.mean().item(),
        "ece_adaptive": ece_adaptive.item(),
    }


def reliability_bins(
    logits: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
) -> list[dict[str, Any]]:
    """All n_bins equal-width bins of logits [N, K], labels [N], in order, as dicts
    {bin, bin_lower, bin_upper, count, mean_confidence, accuracy} (bin is 0-based, the interval
    is (bin_lower, bin_upper], bin 0 also holds 0). Empty bins have count 0 and None for
    mean_confidence and accuracy, which csv.DictWriter and pandas write as an empty field."""
    _check_bins(n_bins)
    z, y = _prepare(logits, labels)
    conf, correct = _confidence(z, y)
    edges, idx = _equal_width_bins(conf, n_bins)
    count, sum_conf, sum_correct = _bin_sums(idx, conf, correct, n_bins)
    rows = []
    for b, (lo, hi, c, s_conf, s_corr) in enumerate(
        zip(
            edges[:-1].tolist(),
            edges[1:].tolist(),
            count.tolist(),
            sum_conf.tolist(),
            sum_correct.tolist(),
            strict=True,
        )
    ):
        rows.append(
            {
                "bin": b,
                "bin_lower": lo,
                "bin_upper": hi,
                "count": int(c),
                "mean_confidence": s_conf / c if c else None,
                "accuracy": s_corr / c if c else None,
            }
        )
    return rows


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T in [T_MIN, T_MAX] = [0.05, 20] minimizing the mean NLL of logits [N, K] / T against
    labels [N]; fit it on the validation split and apply it to the test logits.

    With b = 1/T, NLL(b) = mean(logsumexp(b z) - b z_y) is convex in b, and its derivative
    mean(E_softmax(b z)[z] - z_y) is non-decreasing; 100 bisection steps on log b find where it
    changes sign, deterministically and without a learning rate. The optimum is clipped to the
    range: T_MIN when the derivative is still negative at b = 1/T_MIN (e.g. a perfectly separated
    split, where sharper is always better), T_MAX when it is already positive at b = 1/T_MAX.
    Returns 1.0 when the NLL does not depend on T (every row of logits constant).
    """
    z, y = _prepare(logits, labels)
    z_true = z.gather(1, y[:, None]).squeeze(1)

    def slope(log_b: float) -> float:
        b = math.exp(log_b)
        return ((z * (b * z).softmax(dim=1)).sum(dim=1) - z_true).mean().item()

    lo, hi = math.log(1.0 / T_MAX), math.log(1.0 / T_MIN)
    slope_lo, slope_hi = slope(lo), slope(hi)
    if slope_lo >= 0 and slope_hi <= 0:  # non-decreasing and zero at both ends: flat
        return 1.0
    if slope_lo >= 0:
        return T_MAX
    if slope_hi <= 0:
        return T_MIN
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if slope(mid) > 0:
            hi = mid
        else:
            lo = mid
    return math.exp(-0.5 * (lo + hi))


def flip_rate(pred_a: torch.Tensor, pred_b: torch.Tensor) -> float:
    """Fraction of positions where the class predictions pred_a [N] and pred_b [N] differ
    (e.g. argmax on clean vs perturbed images, see bench.robustness.flip_perturb)."""
    if pred_a.shape != pred_b.shape or pred_a.ndim != 1 or pred_a.numel() == 0:
        raise ValueError(
            f"expected two non-empty predictions [N], got {tuple(pred_a.shape)} and "
            f"{tuple(pred_b.shape)}"
        )
    return (pred_a != pred_b.to(pred_a.device)).sum().item() / pred_a.numel()


def retained(perturbed_acc: float, clean_acc: float) -> float:
    """Accuracy kept under a perturbation, perturbed_acc / clean_acc, both measured on the same
    images; NaN ("not measured") when clean_acc is 0 (nothing to keep). 1.0 when the perturbation
    changes nothing; can exceed 1 when it happens to fix more predictions than it breaks."""
    for name, value in (("perturbed_acc", perturbed_acc), ("clean_acc", clean_acc)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be an accuracy in [0, 1], got {value}")
    return perturbed_acc / clean_acc if clean_acc > 0 else math.nan


def flip_rate_correct(
    pred_clean: torch.Tensor, pred_perturbed: torch.Tensor, labels: torch.Tensor
) -> float:
    """flip_rate restricted to the images the clean model classifies correctly: among positions
    where pred_clean [N] == labels [N], the fraction where pred_perturbed [N] differs. Images the
    clean model gets wrong do not count (their flips are not lost accuracy, and a less accurate
    model has more of them); NaN when no image is classified correctly."""
    if labels.shape != pred_clean.shape:
        raise ValueError(
            f"expected labels [N] like the predictions, got {tuple(labels.shape)} and "
            f"{tuple(pred_clean.shape)}"
        )
    flip_rate(pred_clean, pred_perturbed)  # checks the shapes
    correct = pred_clean == labels.to(pred_clean.device)
    if not bool(correct.any()):
        return math.nan
    return flip_rate(pred_clean[correct], pred_perturbed.to(pred_clean.device)[correct])


def top_label(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence [N], prediction int64 [N]) of logits [N, K]: the top-label softmax probability
    (in float64, float32 on MPS, as the calibration metrics compute it) and the argmax of the
    logits (first index on ties), the prediction `accuracy` counts. ValueError on non-finite
    logits."""
    z = _check_logits(logits)
    return z.softmax(dim=1).max(dim=1).values, z.argmax(dim=1)


def two_object_scores(
    logits: torch.Tensor, label_a: torch.Tensor, label_b: torch.Tensor
) -> dict[str, float]:
    """How a model reads composites of two objects (bench.robustness.two_object_composites):
    logits [N, K] (K >= 2), the two true classes label_a [N] != label_b [N]. Returns
    `recall`: the fraction of composites whose two largest logits are exactly the two classes
    (ties: the lower index first, as torch.topk on the CPU); `mass`: the mean softmax
    probability on the two classes together, p_a + p_b; `balance`: the mean of
    min(p_a, p_b) / (p_a + p_b), 0.5 for an even split, 0 when one class takes it all."""
    z, a = _prepare(logits, label_a)
    _, b = _prepare(logits, label_b)
    if z.shape[1] < 2 or bool((a == b).any()):
        raise ValueError("two-object scores need K >= 2 classes and two different labels each")
    top2 = z.topk(2, dim=1).indices  # [N, 2]
    hit = ((top2 == a[:, None]) | (top2 == b[:, None])).all(dim=1)
    p = z.softmax(dim=1)
    p_a, p_b = p.gather(1, a[:, None])[:, 0], p.gather(1, b[:, None])[:, 0]
    both = p_a + p_b
    return {
        "recall": hit.to(z.dtype).mean().item(),
        "mass": both.mean().item(),
        # both underflows to 0 only for logits ~750 apart: no split to speak of, balance 0
        "balance": torch.where(both > 0, torch.minimum(p_a, p_b) / both.clamp_min(1e-300), 0.0)
        .mean()
        .item(),
    }
