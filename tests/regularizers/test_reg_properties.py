"""What each regularizer does to a batch, read back from its outputs alone."""

from __future__ import annotations

import pytest
import torch

import regularizers
from regularizers.ops import sample_beta


def distinct_batch(b=8, h=16, w=24, seed=0):
    """Images with all-distinct random pixels and labels 0..b-1 (one class per sample), so a
    target row names the partner and every changed pixel names its source."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, h, w, generator=g), torch.arange(b)


def partner_and_lam(targets, i):
    """(partner j, own weight) read from target row i of a distinct batch; (i, 1) if unmixed."""
    row = targets[i].clone()
    own = float(row[i])
    row[i] = 0
    return (int(row.argmax()), own) if own < 1 else (i, 1.0)


def changed_box(before, after):
    """(y0, y1, x0, x1) of the changed pixels, asserting they form one filled rectangle."""
    changed = (before != after).any(dim=0)
    if not changed.any():
        return 0, 0, 0, 0
    rows, cols = changed.any(dim=1).nonzero()[:, 0], changed.any(dim=0).nonzero()[:, 0]
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    assert changed[y0:y1, x0:x1].all() and int(changed.sum()) == (y1 - y0) * (x1 - x0)
    return y0, y1, x0, x1


def test_none_is_identity():
    images, labels = distinct_batch()
    out, targets = regularizers.build("none", 8)(images, labels)
    assert out is images
    assert torch.equal(targets, torch.eye(8))


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_mixup_is_exact_blend_with_target_lambda(mode):
    images, labels = distinct_batch()
    reg = regularizers.build("mixup", 8, mode=mode)
    for seed in range(5):
        out, targets = reg(images, labels, generator=torch.Generator().manual_seed(seed))
        lams = []
        for i in range(8):
            j, lam = partner_and_lam(targets, i)
            expected = lam * images[i] + (1 - lam) * images[j]
            torch.testing.assert_close(out[i], expected, atol=1e-6, rtol=0)
            lams.append(lam)
        mixed = [lam for lam in lams if lam < 1]
        if mode == "batch" and mixed:
            assert max(mixed) - min(mixed) < 1e-6  # one lambda for the batch


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_cutmix_pastes_one_rectangle_weighted_by_kept_area(mode):
    images, labels = distinct_batch(b=9, h=12, w=20)
    reg = regularizers.build("cutmix", 9, mode=mode)
    for seed in range(8):
        out, targets = reg(images, labels, generator=torch.Generator().manual_seed(seed))
        boxes = set()
        for i in range(9):
            j, lam = partner_and_lam(targets, i)
            y0, y1, x0, x1 = changed_box(images[i], out[i])
            assert torch.equal(out[i, :, y0:y1, x0:x1], images[j, :, y0:y1, x0:x1])
            assert lam == pytest.approx(1 - (y1 - y0) * (x1 - x0) / (12 * 20), abs=1e-6)
            if j != i:
                boxes.add((y0, y1, x0, x1))
        if mode == "batch":
            assert len(boxes) <= 1


def test_cutmix_boxes_touch_every_border():
    reg = regularizers.build("cutmix", 2, mode="elem")
    images = torch.zeros(512, 1, 8, 12)
    box = reg.sample(images, torch.Generator().manual_seed(0))["box"]
    assert (box[:, 0] == 0).any() and (box[:, 1] == 8).any()
    assert (box[:, 2] == 0).any() and (box[:, 3] == 12).any()
    assert ((box[:, 0] > 0) & (box[:, 1] < 8) & (box[:, 1] > box[:, 0])).any()  # interior too
    assert (box[:, 0::2] >= 0).all() and (box[:, 1] <= 8).all() and (box[:, 3] <= 12).all()


@pytest.mark.parametrize("value", ["zero", "mean", "random"])
def test_random_erasing_one_rectangle_in_bounds_labels_kept(value):
    scale, ratio, h, w = (0.05, 0.25), (0.5, 2.0), 48, 64
    images, labels = distinct_batch(b=64, h=h, w=w)
    reg = regularizers.build("random_erasing", 64, prob=1.0, scale=scale, ratio=ratio, value=value)
    out, targets = reg(images, labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(targets, torch.eye(64))
    mean = images.mean(dim=(0, 2, 3))
    for i in range(64):
        y0, y1, x0, x1 = changed_box(images[i], out[i])
        bh, bw = y1 - y0, x1 - x0
        assert bh > 0 and bw > 0
        # the sides are rounded from sqrt(area * ratio) and sqrt(area / ratio): allow +-0.5 each
        assert (bh - 0.5) * (bw - 0.5) <= scale[1] * h * w
        assert (bh + 0.5) * (bw + 0.5) >= scale[0] * h * w
        assert (bh - 0.5) / (bw + 0.5) <= ratio[1] and (bh + 0.5) / (bw - 0.5) >= ratio[0]
        patch = out[i, :, y0:y1, x0:x1]
        if value == "zero":
            assert (patch == 0).all()
        elif value == "mean":
            torch.testing.assert_close(patch, mean[:, None, None].expand_as(patch))


def test_random_erasing_prob_is_per_sample():
    images, labels = distinct_batch(b=2000, h=8, w=8)
    out, _ = regularizers.build("random_erasing", 2000, prob=0.3)(
        images, labels, generator=torch.Generator().manual_seed(0)
    )
    erased = (out != images).flatten(1).any(dim=1).float().mean()
    assert float(erased) == pytest.approx(0.3, abs=0.04)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_beta_draws_match_beta_moments(alpha):
    lam = sample_beta(alpha, 100_000, torch.Generator().manual_seed(0), "cpu")
    assert ((lam >= 0) & (lam <= 1)).all()
    assert float(lam.mean()) == pytest.approx(0.5, abs=0.005)
    assert float(lam.var()) == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.03)


@pytest.mark.parametrize("alpha", [0.4, 1.0])
def test_mixup_lambdas_follow_beta(alpha):
    images, labels = distinct_batch(b=64, h=2, w=2)
    reg = regularizers.build("mixup", 64, alpha=alpha, mode="elem")
    g = torch.Generator().manual_seed(0)
    lams = []
    for _ in range(40):
        _, targets = reg(images, labels, generator=g)
        lams += [lam for lam in targets.diagonal().tolist() if lam < 1]
    lams = torch.tensor(lams)
    assert float(lams.mean()) == pytest.approx(0.5, abs=0.02)
    assert float(lams.var()) == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.1)


def test_strength_caps_the_partner_share():
    images, labels = distinct_batch(b=64, h=16, w=16)
    g = torch.Generator().manual_seed(0)
    for name in ("mixup", "cutmix", "mixup_cutmix"):
        reg = regularizers.build(name, 64, mode="elem", schedule="staged")
        reg.set_progress(0.5)  # default stages: prob factor 1, strength 0.3
        assert (reg.current_prob, reg.current_strength) == (1.0, 0.3)
        for _ in range(5):
            _, targets = reg(images, labels, generator=g)
            assert float(targets.diagonal().min()) >= 0.7 - 1e-6
    reg = regularizers.build("random_erasing", 64, prob=1.0, schedule="staged")
    reg.set_progress(0.5)
    box = reg.sample(torch.zeros(512, 1, 64, 64), g)["box"]
    area = (box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2])
    assert float(area.max()) <= 0.3 / 3 * 64 * 64 * 1.2  # max(lo, hi * s), sides rounded


def test_off_returns_the_input_and_consumes_no_draws():
    images, labels = distinct_batch()
    for name in ("random_erasing", "mixup", "cutmix", "mixup_cutmix"):
        reg = regularizers.build(name, 8, prob=0.0)
        g = torch.Generator().manual_seed(0)
        state = g.get_state()
        out, targets = reg(images, labels, generator=g)
        assert out is images and torch.equal(targets, torch.eye(8))
        assert torch.equal(g.get_state(), state)


def test_partner_is_a_permutation():
    reg = regularizers.build("mixup", 2, mode="elem")
    partner = reg.sample(torch.zeros(101, 1, 2, 2), torch.Generator().manual_seed(0))["partner"]
    assert torch.equal(partner.sort().values, torch.arange(101))


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_mixup_cutmix_switch(mode):
    images, labels = distinct_batch(b=16, h=12, w=12)
    g = torch.Generator().manual_seed(0)
    only_cut = regularizers.build("mixup_cutmix", 16, mode=mode, switch_prob=1.0)
    out, _ = only_cut(images, labels, generator=g)
    for i in range(16):
        changed_box(images[i], out[i])  # every change is one pasted rectangle
    only_mix = regularizers.build("mixup_cutmix", 16, mode=mode, switch_prob=0.0)
    out, targets = only_mix(images, labels, generator=g)
    for i in range(16):
        j, lam = partner_and_lam(targets, i)
        torch.testing.assert_close(
            out[i], lam * images[i] + (1 - lam) * images[j], atol=1e-6, rtol=0
        )
    if mode == "elem":
        half = regularizers.build("mixup_cutmix", 16, mode="elem")
        draws = half.sample(torch.zeros(4000, 1, 2, 2), g)
        assert float(draws["use_cutmix"].float().mean()) == pytest.approx(0.5, abs=0.03)
