"""Same operation, same draws: our batched code against timm's `Mixup` and torchvision v2.

Each test lets the other library draw its lambda / box (caught by wrapping the function that
draws it) and feeds the same draw to our deterministic `apply()`. The pairing differs on
purpose: timm pairs sample i with B-1-i (a flip; it asserts an even batch), torchvision with
i-1 (a roll); we draw a random permutation, so here we pass their pairing as our `partner`.
The label weight is the exact kept area in all three (timm's correct_lam=True, torchvision's
lam_adjusted). Ours never modify the input; timm's Mixup works in place, so it gets a clone.
"""

from __future__ import annotations

import numpy as np
import pytest
import timm.data.mixup as timm_mixup
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

import regularizers
from regularizers.boxes import centred_boxes

K, B, H, W = 10, 8, 20, 28


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, H, W, generator=g), torch.randint(0, K, (B,), generator=g)


def capture(monkeypatch, owner, name):
    """Wrap owner.name so every return value is appended to the returned list."""
    seen, original = [], getattr(owner, name)

    def wrapper(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(owner, name, wrapper)
    return seen


FLIP = torch.arange(B).flip(0)  # timm's partner of i: B - 1 - i
ROLL = (torch.arange(B) - 1) % B  # torchvision's partner of i: i - 1 (roll by one)


@pytest.mark.parametrize("seed", range(4))
def test_timm_batch_mixup(monkeypatch, seed):
    np.random.seed(seed)
    images, labels = batch(seed)
    drawn = capture(monkeypatch, timm_mixup.Mixup, "_params_per_batch")
    theirs = timm_mixup.Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, label_smoothing=0.1, num_classes=K)
    their_x, their_t = theirs(images.clone(), labels)
    lam = torch.tensor([drawn[0][0]], dtype=torch.float32)
    ours = regularizers.build("mixup", K, label_smoothing=0.1)
    our_x, our_t = ours.apply(images, ours.targets(labels), {"partner": FLIP, "lam": lam})
    torch.testing.assert_close(our_x, their_x, atol=1e-6, rtol=0)
    torch.testing.assert_close(our_t, their_t)


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("seed", range(4))
def test_timm_cutmix(monkeypatch, mode, seed):
    np.random.seed(seed)
    images, labels = batch(seed)
    drawn = capture(monkeypatch, timm_mixup, "cutmix_bbox_and_lam")
    theirs = timm_mixup.Mixup(
        mixup_alpha=0.0, cutmix_alpha=1.0, mode=mode, label_smoothing=0.0, num_classes=K
    )
    their_x, their_t = theirs(images.clone(), labels)
    box = torch.tensor([[int(c) for c in corners] for corners, _ in drawn])  # (yl, yh, xl, xh)
    assert box.shape == ((B, 4) if mode == "elem" else (1, 4))
    ours = regularizers.build("cutmix", K, mode=mode)
    our_x, our_t = ours.apply(images, ours.targets(labels), {"partner": FLIP, "box": box})
    assert torch.equal(our_x, their_x)
    torch.testing.assert_close(our_t, their_t)


def test_timm_elem_mixup(monkeypatch):
    np.random.seed(0)
    images, labels = batch()
    drawn = capture(monkeypatch, timm_mixup.Mixup, "_params_per_elem")
    theirs = timm_mixup.Mixup(mixup_alpha=0.4, mode="elem", label_smoothing=0.0, num_classes=K)
    their_x, their_t = theirs(images.clone(), labels)
    lam = torch.from_numpy(drawn[0][0].copy())
    ours = regularizers.build("mixup", K, mode="elem")
    our_x, our_t = ours.apply(images, ours.targets(labels), {"partner": FLIP, "lam": lam})
    torch.testing.assert_close(our_x, their_x, atol=1e-6, rtol=0)
    torch.testing.assert_close(our_t, their_t)


@pytest.mark.parametrize("size", [(20, 28), (32, 32), (9, 5)])
def test_box_geometry_matches_timm_rand_bbox(monkeypatch, size):
    """Our centred, clipped box == timm's for the same lam and centre, borders included."""
    h, w = size
    rng = np.random.default_rng(0)
    centres = [(0, 0), (h - 1, w - 1), (0, w - 1), (h - 1, 0)]
    centres += [tuple(c) for c in rng.integers(0, (h, w), size=(40, 2))]
    for lam in [0.0, 0.1, 0.37, 0.5, 0.9, 0.999, 1.0]:
        for cy, cx in centres:
            queue = [cy, cx]
            monkeypatch.setattr(np.random, "randint", lambda *a, q=queue, **k: q.pop(0))
            theirs = timm_mixup.rand_bbox((3, h, w), lam)
            ratio = np.sqrt(1 - lam)  # their side formula; ours is the same floor(side * ratio)
            cut = torch.tensor([[int(h * ratio), int(w * ratio)]])
            ours = centred_boxes(torch.tensor([[cy, cx]]), cut, h, w)
            assert ours[0].tolist() == [int(v) for v in theirs]


@pytest.mark.parametrize("seed", range(4))
def test_torchvision_cutmix(monkeypatch, seed):
    torch.manual_seed(seed)
    images, labels = batch(seed)
    theirs = v2.CutMix(num_classes=K)
    drawn = capture(monkeypatch, theirs, "make_params")
    their_x, their_t = theirs(images, labels)
    x1, y1, x2, y2 = drawn[0]["box"]
    ours = regularizers.build("cutmix", K)
    box = torch.tensor([[y1, y2, x1, x2]])
    our_x, our_t = ours.apply(images, ours.targets(labels), {"partner": ROLL, "box": box})
    assert torch.equal(our_x, their_x)
    torch.testing.assert_close(our_t, their_t)


@pytest.mark.parametrize("seed", range(4))
def test_torchvision_mixup(monkeypatch, seed):
    torch.manual_seed(seed)
    images, labels = batch(seed)
    theirs = v2.MixUp(num_classes=K)
    drawn = capture(monkeypatch, theirs, "make_params")
    their_x, their_t = theirs(images, labels)
    lam = torch.tensor([drawn[0]["lam"]], dtype=torch.float32)
    ours = regularizers.build("mixup", K)
    our_x, our_t = ours.apply(images, ours.targets(labels), {"partner": ROLL, "lam": lam})
    torch.testing.assert_close(our_x, their_x, atol=1e-6, rtol=0)
    torch.testing.assert_close(our_t, their_t)


def test_random_erasing_matches_torchvision_erase():
    images, labels = batch()
    reg = regularizers.build("random_erasing", K, prob=1.0)
    draws = reg.sample(images, torch.Generator().manual_seed(0))
    ours, _ = reg.apply(images, reg.targets(labels), draws)
    for i, (y0, y1, x0, x1) in enumerate(draws["box"].tolist()):
        theirs = TF.erase(images[i], y0, x0, y1 - y0, x1 - x0, torch.tensor(0.0))
        assert torch.equal(ours[i], theirs)
