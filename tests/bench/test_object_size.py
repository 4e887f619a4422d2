"""Issue 28, object size as an axis: `object_fraction` shrinks every image (train, val, test)
into a centred frame of that fraction of its area on the training file's mean pixel
(bench.data.shrink_into_frame, applied once in make_splits)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from tiny_cell import TINY

from bench import data, train
from bench.config import RunConfig, check_config


def random_images(count: int = 6, side: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, side, side), generator=generator, dtype=torch.uint8)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.25, 0.3, 0.5, 0.77, 0.99])
def test_the_frame_holds_the_fraction_of_the_area_on_the_background(fraction: float) -> None:
    images = random_images()
    background = torch.tensor([7, 128, 250], dtype=torch.uint8)
    out = data.shrink_into_frame(images, fraction, background)
    assert out.shape == images.shape and out.dtype == torch.uint8
    side = data.frame_side(32, fraction)
    # the frame's area is the fraction, within one pixel's rounding of its side
    assert abs(side - math.sqrt(fraction) * 32) <= 0.5
    assert abs(side**2 / 32**2 - fraction) <= (2 * math.sqrt(fraction) * 32 + 1) * 0.5 / 32**2
    top = (32 - side) // 2
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[top : top + side, top : top + side] = True
    # outside the frame: exactly the background, every image and channel
    expected = background.view(1, 3, 1).expand(len(images), 3, int((~inside).sum()))
    assert torch.equal(out[:, :, ~inside], expected)
    # inside: the image itself, shrunk (its mean close to the original's, not the background)
    frame = out[:, :, top : top + side, top : top + side].float()
    shrunk = torch.nn.functional.interpolate(
        images.float(), size=(side, side), mode="bilinear", antialias=True, align_corners=False
    )
    assert torch.allclose(frame, shrunk.round().clamp(0, 255), atol=0)


def test_fraction_one_is_the_identity_and_bad_fractions_raise() -> None:
    images = random_images()
    background = torch.tensor([1, 2, 3], dtype=torch.uint8)
    assert torch.equal(data.shrink_into_frame(images, 1.0, background), images)
    for bad in (0.0, -0.25, 1.5):
        with pytest.raises(ValueError, match="object_fraction"):
            data.shrink_into_frame(images, bad, background)


def test_a_frame_is_centred_even_for_an_odd_margin() -> None:
    # 0.5 of 32 x 32: side round(22.63) = 23, a margin of 9 pixels in all, 4 above, 5 below
    out = data.shrink_into_frame(
        torch.full((1, 3, 32, 32), 200, dtype=torch.uint8), 0.5, torch.zeros(3, dtype=torch.uint8)
    )
    rows = (out[0, 0] == 200).any(dim=1).nonzero().flatten()
    assert (int(rows.min()), int(rows.max())) == (4, 26)


def test_make_splits_shrinks_train_val_and_test_once_on_the_training_mean() -> None:
    raw = data.synthetic_cifar(n_train=600, n_test=200)
    sizes = dict(val_size=100, train_size=300, test_size=100, data_seed=0, device="cpu")
    plain = data.make_splits(raw, **sizes)
    same = data.make_splits(raw, **sizes, object_fraction=1.0)
    small = data.make_splits(raw, **sizes, object_fraction=0.25)
    background = data.mean_pixel(torch.from_numpy(raw["train_x"]))
    for name in ("train_x", "val_x", "test_x"):
        assert torch.equal(getattr(plain, name), getattr(same, name))  # bit-exact at 1.0
        shrunk = data.shrink_into_frame(getattr(plain, name), 0.25, background)
        assert torch.equal(getattr(small, name), shrunk)  # each split, exactly once
        corner = getattr(small, name)[:, :, 0, 0]
        assert torch.equal(corner, background.expand_as(corner))
    for name in ("train_y", "val_y", "test_y"):  # labels untouched
        assert torch.equal(getattr(plain, name), getattr(small, name))


def test_bad_object_fractions_fail_before_training_naming_the_range() -> None:
    for bad in (0.0, -0.5, 1.5):
        cfg = dataclasses.replace(TINY, object_fraction=bad)
        with pytest.raises(ValueError) as caught:
            check_config(cfg, where="cell")
        assert str(caught.value) == (
            f"cell: object_fraction={bad!r} is invalid; allowed: a number > 0 and <= 1 (a "
            "fraction of the image's area; 1 = the image as loaded)"
        )
        with pytest.raises(ValueError, match="object_fraction"):
            train.train_cell(cfg)


def test_the_default_keeps_the_run_id_and_a_fraction_gets_a_new_one() -> None:
    base = RunConfig()
    assert base.replace(object_fraction=1.0).run_id == base.run_id
    assert base.replace(object_fraction=1.0).identity_version == 1
    small = base.replace(object_fraction=0.25)
    assert small.identity_version == 2 and small.run_id != base.run_id
    assert small.identity()["object_fraction"] == 0.25
