"""`inplace=True` (what the training loop sets) writes the same values into the caller's batch,
and the one code path (box and switch choice kept on the batch's device, pasting through a
mask) agrees with the references."""

from __future__ import annotations

import pytest
import torch
from reg_reference import (
    IDS,
    VARIANTS,
    OpCounter,
    erase_reference,
    mix_reference,
    mixup_cutmix_reference,
    paste_reference,
)

import regularizers
from regularizers import ops

K = 10
MORE = VARIANTS + [("random_erasing", {"value": "mean"}), ("random_erasing", {"value": "random"})]
MORE_IDS = IDS + ["random_erasing-mean", "random_erasing-random"]


def batch(b=9, h=24, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, h, w, generator=g), torch.randint(0, K, (b,), generator=g)


@pytest.mark.parametrize("name,params", MORE, ids=MORE_IDS)
@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
def test_inplace_writes_the_same_values_into_the_batch(name, params, channels_last):
    reg = regularizers.build(name, K, **{"label_smoothing": 0.1, **params})
    in_place = regularizers.build(name, K, **{"label_smoothing": 0.1, **params})
    in_place.inplace = True
    for b in (9, 9, 4):  # a repeat, then a smaller batch
        images, labels = batch(b)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        expected = reg(images, labels, generator=torch.Generator().manual_seed(b))
        mine = images.clone(memory_format=torch.preserve_format)
        out, targets = in_place(mine, labels, generator=torch.Generator().manual_seed(b))
        assert out.data_ptr() == mine.data_ptr()  # the caller's batch, written in place
        assert torch.equal(out, expected[0]) and torch.equal(targets, expected[1])
        if name != "none":
            assert not torch.equal(mine, images)  # it really changed


def test_inplace_off_call_returns_the_batch_untouched():
    reg = regularizers.build("cutmix", K, schedule="staged")  # off in the first stage
    reg.inplace = True
    images, labels = batch()
    before = images.clone()
    out, _ = reg(images, labels)
    assert out is images and torch.equal(images, before)


@pytest.mark.parametrize("name", ["cutmix", "mixup_cutmix"])
@pytest.mark.parametrize("minmax", [None, [0.2, 0.8]])
def test_device_side_batch_box_matches_reference(name, minmax):
    """Batch mode keeps its box and choice on the device and pastes through a mask."""
    reg = regularizers.build(name, K, mode="batch", minmax=minmax, label_smoothing=0.1)
    images, labels = batch(11)
    targets = reg.targets(labels)
    for seed in range(6):  # both switch outcomes come up
        draws = reg.sample(images, torch.Generator().manual_seed(seed))
        assert draws["box"].shape == (1, 4)
        with OpCounter() as counted:
            out, mixed = reg.apply(images, targets, draws)
        assert counted.counts["aten.where"] >= 1  # pasted through a mask
        if name == "cutmix":
            ref, ref_t = paste_reference(images, targets, draws["partner"], draws["box"])
        else:
            ref, ref_t = mixup_cutmix_reference(images, targets, draws)
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
        torch.testing.assert_close(mixed, ref_t)


@pytest.mark.parametrize("name,params", VARIANTS[1:], ids=IDS[1:])
def test_device_side_code_matches_reference(name, params):
    """Every variant (device-side draws, bool mask) against the per-sample references."""
    reg = regularizers.build(name, K, **{"label_smoothing": 0.1, "prob": 0.8, **params})
    images, labels = batch(13)
    targets = reg.targets(labels)
    draws = reg.sample(images, torch.Generator().manual_seed(3))
    out, mixed = reg.apply(images, targets, draws)
    if name == "random_erasing":
        ref, ref_t = erase_reference(images, draws["box"], "zero"), targets
    elif name == "mixup":
        ref, ref_t = mix_reference(images, targets, draws["partner"], draws["lam"])
    elif name == "cutmix":
        ref, ref_t = paste_reference(images, targets, draws["partner"], draws["box"])
    else:
        ref, ref_t = mixup_cutmix_reference(images, targets, draws)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(mixed, ref_t)


def test_below_never_reaches_high():
    """`below` skips a clamp: float32 u * high stays under high for u < 1 (see its docstring)."""
    largest = torch.tensor([1 - 2**-24, 1 - 2**-23], dtype=torch.float32)
    high = torch.arange(1, 70_001)
    assert bool((ops.below(largest[:, None], high) < high).all())
    assert bool((ops.below(largest[:, None], high) == high - 1).all())
