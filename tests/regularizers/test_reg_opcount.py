"""Per-sample modes are loop-free: a call dispatches the same operations at B=64 and B=512."""

from __future__ import annotations

import pytest
import torch
from reg_reference import OpCounter

import regularizers

CASES = [
    ("random_erasing", {"prob": 0.5}),
    ("random_erasing", {"value": "random"}),
    ("mixup", {"mode": "elem"}),
    ("cutmix", {"mode": "elem"}),
    ("cutmix", {"mode": "elem", "minmax": [0.2, 0.8]}),
    ("mixup_cutmix", {"mode": "elem"}),
    ("mixup", {"mode": "batch"}),
    ("cutmix", {"mode": "batch"}),
]


def count(reg, b):
    images, labels = torch.randn(b, 3, 8, 8), torch.randint(0, 10, (b,))
    generator = torch.Generator().manual_seed(0)
    with OpCounter() as ops:
        reg(images, labels, generator=generator)
    return ops.counts


@pytest.mark.parametrize("name,params", CASES)
def test_op_count_does_not_grow_with_batch(name, params):
    reg = regularizers.build(name, 10, **params)
    small, large = count(reg, 64), count(reg, 512)
    assert small == large
    assert 0 < sum(small.values()) < 150  # a few dozen small ops, views included
