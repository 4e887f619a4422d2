"""Per-sample modes are loop-free: a call dispatches the same operations at B=64 and B=512.

On a GPU each operation is a kernel launch, and a regularizer's few small kernels are bound by
launch time, not by the batch: the op count is the cost that noise cannot move. Counts are
taken in steady state, after one call at the same batch size has made the cached constants
(positions, one-hot rows, Dirichlet concentrations) that later calls reuse.
"""

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

# Launch budgets of one training-loop call (label check off), so an added op is a decision, not
# an accident: at ~13 us per launch on the H100 we measured, the budget of the heaviest methods
# is ~0.6 ms, under 1% of a 65 ms ResNet-50 step at 224 px, batch 256 (issue 3's GPU target).
BUDGETS = {
    ("none", "batch"): 2,
    ("mixup", "batch"): 15,
    ("mixup", "elem"): 15,
    ("cutmix", "batch"): 15,  # a CPU batch: one box on the host, pasted by slicing
    ("cutmix", "elem"): 44,
    ("random_erasing", "elem"): 52,
    ("mixup_cutmix", "elem"): 61,
}


def count(reg, b, size=8):
    images, labels = torch.randn(b, 3, size, size), torch.randint(0, 10, (b,))
    reg(images, labels, generator=torch.Generator().manual_seed(1))  # make the constants
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


@pytest.mark.parametrize("name,mode", sorted(BUDGETS))
def test_op_count_within_launch_budget(name, mode):
    params = {"mode": mode} if name in ("mixup", "cutmix", "mixup_cutmix") else {}
    reg = regularizers.build(name, 10, **params)
    reg.check_label_range = False  # as the training loop calls it
    total = sum(count(reg, 256, size=32).values())
    assert total <= BUDGETS[name, mode], f"{name} {mode}: {total} ops"
