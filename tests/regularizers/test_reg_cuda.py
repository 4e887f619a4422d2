"""On a CUDA device (skipped without one): same interface, device-local draws, same results as
the per-sample references, and the generator must live on the batch's device."""

from __future__ import annotations

import pytest
import torch
from reg_reference import (
    IDS,
    VARIANTS,
    erase_reference,
    mix_reference,
    mixup_cutmix_reference,
    paste_reference,
)

import regularizers

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
K = 10


def cuda_batch(b=9, h=24, w=40):
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(b, 3, h, w, generator=g), torch.randint(0, K, (b,), generator=g)
    return images.cuda(), labels.cuda()


@pytest.mark.parametrize("b", [1, 9])
@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_cuda_call(name, params, b):
    images, labels = cuda_batch(b)
    reg = regularizers.build(name, K, **params)
    outs = [reg(images, labels, generator=torch.Generator("cuda").manual_seed(0)) for _ in "ab"]
    for out, targets in outs:
        assert out.device == images.device and targets.device == images.device
        torch.testing.assert_close(targets.sum(1), torch.ones(b, device="cuda"))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    soft = torch.softmax(torch.randn(b, K, device="cuda"), dim=1)
    assert reg(images, soft)[1].shape == (b, K)  # default CUDA generator, soft targets


@pytest.mark.parametrize("name,params", VARIANTS, ids=IDS)
def test_cuda_matches_reference(name, params):
    if name == "none":
        return
    images, labels = cuda_batch()
    reg = regularizers.build(name, K, **{"label_smoothing": 0.1, **params})
    targets = reg.targets(labels)
    draws = reg.sample(images, torch.Generator("cuda").manual_seed(1))
    out, mixed = reg.apply(images, targets, draws)
    cpu = {key: value.cpu() for key, value in draws.items()}
    if name == "random_erasing":
        ref, ref_t = erase_reference(images.cpu(), cpu["box"], "zero"), targets.cpu()
    elif name == "mixup":
        ref, ref_t = mix_reference(images.cpu(), targets.cpu(), cpu["partner"], cpu["lam"])
    elif name == "cutmix":
        ref, ref_t = paste_reference(images.cpu(), targets.cpu(), cpu["partner"], cpu["box"])
    else:
        ref, ref_t = mixup_cutmix_reference(images.cpu(), targets.cpu(), cpu)
    torch.testing.assert_close(out.cpu(), ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed.cpu(), ref_t)


def test_cuda_bad_labels_and_generator():
    images, labels = cuda_batch()
    reg = regularizers.build("cutmix", K)
    with pytest.raises(ValueError, match="got range"):
        reg(images, labels + K)
    with pytest.raises(ValueError, match="generator on cpu"):
        reg(images, labels, generator=torch.Generator())
    with pytest.raises(ValueError, match="labels on cpu"):
        reg(images, labels.cpu())
