"""bench.robustness: shapes/dtypes/ranges, monotone severities, exact occlusion area and placement
against a per-sample reference, seeding, and the size of the flip-rate perturbation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.robustness import (
    CORRUPTIONS,
    DEFAULT_SEVERITY,
    FLIP_NOISE_STD,
    FLIP_SHIFTS,
    corrupt,
    flip_perturb,
    occlude,
    occlusion_side,
    robustness_generator,
)

FAMILIES = sorted(CORRUPTIONS)


def _images(b: int = 5, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    """Natural-ish test images [B, 3, H, W]: smooth structure plus a little texture, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, max(1, h // 4), max(1, w // 4), generator=g)
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (0.8 * smooth + 0.2 * torch.rand(b, 3, h, w, generator=g)).clamp(0, 1)


def test_table_and_default():
    assert FAMILIES == ["brightness", "contrast", "gaussian_blur", "gaussian_noise", "pixelate"]
    assert all(sorted(t) == [1, 2, 3, 4, 5] for t in CORRUPTIONS.values())
    assert DEFAULT_SEVERITY == 3


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("b", "h", "w"), [(5, 32, 32), (3, 24, 40), (1, 17, 9)])
def test_corruption_changes_images_keeps_shape_dtype_range(family, b, h, w):
    x = _images(b, h, w)
    for severity in range(1, 6):
        out = corrupt(x, family, severity, generator=robustness_generator())
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
        assert out.min() >= 0 and out.max() <= 1
        assert (out - x).abs().mean() > 1e-3
        assert not torch.equal(out[-1], x[-1])  # every image, the last included, is corrupted


@pytest.mark.parametrize("family", FAMILIES)
def test_severity_is_monotone(family):
    x = _images(8)
    change = [
        (corrupt(x, family, s, generator=robustness_generator()) - x).abs().mean().item()
        for s in range(1, 6)
    ]
    assert all(a < b for a, b in zip(change, change[1:], strict=False)), change


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_dtypes_kept(dtype):
    x = _images(2).to(dtype)
    for family in FAMILIES:
        out = corrupt(x, family, generator=robustness_generator())
        assert out.dtype == dtype and out.shape == x.shape
    assert occlude(x, [0.5, 0.5, 0.5], robustness_generator()).dtype == dtype
    assert flip_perturb(x, robustness_generator()).dtype == dtype


def test_corruption_errors():
    x = _images(2)
    with pytest.raises(ValueError):
        corrupt(x, "gaussian_noise", 3)  # no generator
    with pytest.raises(ValueError):
        corrupt(x, "fog", 3)
    with pytest.raises(ValueError):
        corrupt(x, "contrast", 6)


def test_noise_and_blur_parameters():
    # Noise on mid-grey is unclipped, so its std is the table's sigma.
    x = torch.full((4, 3, 32, 32), 0.5)
    sigma = CORRUPTIONS["gaussian_noise"][3]
    out = corrupt(x, "gaussian_noise", 3, generator=robustness_generator())
    assert (out - x).std().item() == pytest.approx(sigma, rel=0.05)
    # Blur, brightness-free families keep a constant image constant; brightness shifts it.
    for family in ("gaussian_blur", "contrast", "pixelate"):
        assert torch.allclose(corrupt(x, family, 5), x, atol=1e-6)
    assert torch.allclose(corrupt(x, "brightness", 1), x + CORRUPTIONS["brightness"][1])


def test_noise_seeded():
    x = _images(3)
    a = corrupt(x, "gaussian_noise", 2, generator=robustness_generator(seed=1))
    b = corrupt(x, "gaussian_noise", 2, generator=robustness_generator(seed=1))
    c = corrupt(x, "gaussian_noise", 2, generator=robustness_generator(seed=2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def _occlude_reference(x, fill, side, top, left):
    out = x.clone()
    for i in range(x.shape[0]):
        out[i, :, top[i] : top[i] + side, left[i] : left[i] + side] = fill.view(-1, 1, 1)
    return out


@pytest.mark.parametrize(("b", "h", "w"), [(7, 32, 32), (3, 24, 40), (1, 9, 9)])
def test_occlusion_area_and_placement(b, h, w):
    side = occlusion_side(h, w)
    assert side == round((0.25 * h * w) ** 0.5)
    out = occlude(torch.ones(b, 3, h, w), torch.zeros(3), robustness_generator())
    zeros = out == 0
    assert zeros.all(dim=1).eq(zeros.any(dim=1)).all()  # all channels filled together
    mask = zeros[:, 0]
    assert mask.sum(dim=(1, 2)).tolist() == [side * side] * b
    rows, cols = mask.any(dim=2), mask.any(dim=1)  # [B, H], [B, W]
    assert rows.sum(1).tolist() == [side] * b and cols.sum(1).tolist() == [side] * b  # a square
    # Against the per-sample reference, with the positions re-drawn from the same seed.
    g = robustness_generator()
    top = torch.randint(0, h - side + 1, (b,), generator=g)
    left = torch.randint(0, w - side + 1, (b,), generator=g)
    x, fill = _images(b, h, w), torch.tensor([0.49, 0.48, 0.45])
    expected = _occlude_reference(x, fill, side, top, left)
    assert torch.equal(occlude(x, fill, robustness_generator()), expected)


def test_occlusion_positions_uniform_and_seeded():
    x = torch.ones(4000, 3, 8, 8)
    fill = torch.zeros(3)
    a = occlude(x, fill, robustness_generator(seed=3))
    assert torch.equal(a, occlude(x, fill, robustness_generator(seed=3)))
    assert not torch.equal(a, occlude(x, fill, robustness_generator(seed=4)))
    # side 4 on 8x8: 5 valid rows of the top edge, each about 1/5 of the images.
    top = (a[:, 0] == 0).any(dim=2).int().argmax(dim=1)
    freq = torch.bincount(top, minlength=8).float() / len(top)
    assert freq[5:].sum() == 0
    assert torch.allclose(freq[:5], torch.full((5,), 0.2), atol=0.03)


def test_occlusion_errors():
    with pytest.raises(ValueError):
        occlude(torch.ones(2, 3, 4, 64), torch.zeros(3), robustness_generator())  # side 8 > 4
    with pytest.raises(ValueError):
        occlude(torch.ones(2, 3, 8, 8), torch.zeros(2), robustness_generator())


def _flip_reference(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Per-image loop: shift by (dy, dx) with replicated edges, add the same noise draws."""
    g = robustness_generator(seed=seed)
    direction = torch.randint(0, 4, (x.shape[0],), generator=g)
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype)
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        dy, dx = FLIP_SHIFTS[int(direction[i])]
        p = F.pad(x[i : i + 1], (1, 1, 1, 1), mode="replicate")[0]
        h, w = x.shape[-2:]
        out[i] = p[:, 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
    return (out + FLIP_NOISE_STD * noise).clamp(0, 1)


@pytest.mark.parametrize(("b", "h", "w"), [(9, 32, 32), (3, 20, 28)])
def test_flip_perturb_matches_reference_and_is_small(b, h, w):
    x = _images(b, h, w)
    out = flip_perturb(x, robustness_generator(seed=5))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out, _flip_reference(x, seed=5), atol=1e-6)
    # Bound: the largest one-pixel change in any direction plus 6 sigma of noise.
    step = max(
        (x[..., 1:, :] - x[..., :-1, :]).abs().max().item(),
        (x[..., :, 1:] - x[..., :, :-1]).abs().max().item(),
    )
    assert (out - x).abs().max().item() <= step + 6 * FLIP_NOISE_STD
    # On a constant image the shift is invisible: only the noise remains.
    flat = flip_perturb(torch.full((b, 3, h, w), 0.5), robustness_generator(seed=5)) - 0.5
    assert flat.std().item() == pytest.approx(FLIP_NOISE_STD, rel=0.1)


def test_flip_perturb_seeded_and_uses_all_directions():
    x = _images(64)
    a = flip_perturb(x, robustness_generator(seed=1))
    assert torch.equal(a, flip_perturb(x, robustness_generator(seed=1)))
    assert not torch.equal(a, flip_perturb(x, robustness_generator(seed=2)))
    direction = torch.randint(0, 4, (64,), generator=robustness_generator(seed=1))
    assert set(direction.tolist()) == {0, 1, 2, 3}


def test_generator_is_fixed_and_on_device():
    g = robustness_generator("cpu")
    assert g.device.type == "cpu"
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=robustness_generator()))
