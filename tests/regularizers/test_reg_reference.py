"""Batched (vectorized) regularizers against slow per-sample references, on the same draws."""

from __future__ import annotations

import pytest
import torch
from reg_reference import (
    cutmix_box_reference,
    erase_boxes_reference,
    erase_reference,
    mix_reference,
    mixup_cutmix_reference,
    paste_reference,
)

import regularizers
from regularizers.boxes import box_mask, boxes_from_draws

K = 10


def batch(b=13, h=20, w=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, h, w, generator=g), torch.randint(0, K, (b,), generator=g)


def run(reg, images, labels, seed):
    """The batched result and the draws it used (sample() then apply(), as __call__ does)."""
    targets = reg.targets(labels)
    draws = reg.sample(images, torch.Generator().manual_seed(seed))
    return reg.apply(images, targets, draws), targets, draws


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("params", [{}, {"minmax": [0.3, 0.9]}, {"prob": 0.5}])
def test_cutmix_matches_reference(mode, params):
    images, labels = batch()
    reg = regularizers.build("cutmix", K, mode=mode, label_smoothing=0.1, **params)
    for seed in range(6):
        (out, targets), soft, draws = run(reg, images, labels, seed)
        ref_out, ref_targets = paste_reference(images, soft, draws["partner"], draws["box"])
        assert torch.equal(out, ref_out)
        torch.testing.assert_close(targets, ref_targets)


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_mixup_matches_reference(mode):
    images, labels = batch()
    reg = regularizers.build("mixup", K, mode=mode, prob=0.7, alpha=0.4)
    for seed in range(6):
        (out, targets), soft, draws = run(reg, images, labels, seed)
        ref_out, ref_targets = mix_reference(images, soft, draws["partner"], draws["lam"])
        torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
        torch.testing.assert_close(targets, ref_targets)


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_mixup_cutmix_matches_reference(mode):
    images, labels = batch()
    reg = regularizers.build("mixup_cutmix", K, mode=mode, prob=0.8)
    for seed in range(8):
        (out, targets), soft, draws = run(reg, images, labels, seed)
        ref_out, ref_targets = mixup_cutmix_reference(images, soft, draws)
        torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
        torch.testing.assert_close(targets, ref_targets)


@pytest.mark.parametrize("value", ["zero", "mean", "random"])
def test_random_erasing_matches_reference(value):
    images, labels = batch()
    reg = regularizers.build("random_erasing", K, value=value)
    for seed in range(4):
        (out, targets), soft, draws = run(reg, images, labels, seed)
        assert torch.equal(targets, soft)
        ref = erase_reference(images, draws["box"], value, draws.get("noise"))
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [(20, 28), (7, 5), (64, 16)])
def test_random_erasing_boxes_match_the_papers_loop(size):
    """Same uniforms, drawn in `sample()`'s order: batched first-fit == per-sample retry loop."""
    h, w = size
    scale, ratio, prob = [0.02, 0.6], [0.3, 3.3], 0.8  # large areas: many retries and misses
    reg = regularizers.build("random_erasing", K, prob=prob, scale=scale, ratio=ratio)
    images = torch.zeros(300, 1, h, w)
    box = reg.sample(images, torch.Generator().manual_seed(0))["box"]
    g = torch.Generator().manual_seed(0)
    u, v = torch.rand((2, 300, 10), generator=g), torch.rand((3, 300), generator=g)
    ref = erase_boxes_reference(u, v, h, w, scale, ratio, prob)
    assert torch.equal(box_mask(box, h, w), box_mask(ref, h, w))


@pytest.mark.parametrize("minmax", [None, [0.2, 0.9]])
@pytest.mark.parametrize("size", [(20, 28), (224, 224), (5, 3)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_batched_boxes_match_the_python_reference(minmax, size, dtype):
    """The tensor box code against the paper's formulas in Python floats, on the same draws:
    in float64 (the batch box) exactly; in float32 (per-sample boxes) but for rounding (a side
    off by one, rarely)."""
    h, w = size
    reg = regularizers.build("cutmix", K, prob=0.9, schedule="linear", minmax=minmax)
    reg.set_progress(0.4)  # prob 0.72, strength 0.8
    u = torch.rand((2000, 4 if minmax is None else 5), generator=torch.Generator().manual_seed(0))
    share = 1.0 - u[:, 3:].to(dtype) if minmax is None else None  # the fourth draw is lam
    u_box = (u[:, :3] if minmax is None else u).to(dtype)
    batched = boxes_from_draws(reg, u_box, share, minmax, h, w)
    lam = u[:, 3].tolist() if minmax is None else [None] * 2000
    python = [cutmix_box_reference(reg, u[i].tolist(), lam[i], minmax, h, w) for i in range(2000)]
    diff = (torch.tensor(python) - batched).abs()
    if dtype == torch.float64:
        assert int(diff.max()) == 0
    assert int(diff.max()) <= 1 and float((diff > 0).any(dim=1).float().mean()) < 0.01
    cut = (batched[:, 1] > batched[:, 0]) & (batched[:, 3] > batched[:, 2])
    if min(size) >= 20:
        assert float(cut.float().mean()) > 0.5  # real boxes were compared, not just empty ones


@pytest.mark.parametrize("minmax", [None, [0.2, 0.9]])
def test_batch_cutmix_label_weight_is_the_python_kept_area(minmax):
    """Batch mode weighs the targets by the kept area computed as a Python float, as the CPU
    results of earlier versions were (bit for bit)."""
    images, labels = batch(b=16, h=32, w=32)
    reg = regularizers.build("cutmix", K, minmax=minmax, label_smoothing=0.1)
    for seed in range(20):
        (_, targets), soft, draws = run(reg, images, labels, seed)
        y0, y1, x0, x1 = draws["box"][0].tolist()
        kept = 1.0 - (y1 - y0) * (x1 - x0) / (32 * 32)
        assert torch.equal(targets, torch.lerp(soft[draws["partner"]], soft, kept))
