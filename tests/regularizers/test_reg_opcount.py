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
from regularizers import ops

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

# Launch budgets of one training-loop call (label check off, in place), so an added op is a
# decision, not an accident. The H100 measured ~9-13 us per launch on top of the real work, so
# these counts decide whether a call stays under 1% of a 65 ms ResNet-50 step at 224 px, batch
# 256 (issue 3's GPU target). "device" is the GPU's code path (box and switch choice kept on the
# device, bool masks), run here on the CPU; a GPU adds one allocation op where the CPU reuses a
# scratch buffer.
BUDGETS = {
    ("cpu", "none", "batch"): 1,
    ("cpu", "mixup", "batch"): 13,
    ("cpu", "mixup", "elem"): 13,
    ("cpu", "cutmix", "batch"): 11,  # one box on the host, pasted by slicing
    ("cpu", "cutmix", "elem"): 38,
    ("cpu", "random_erasing", "elem"): 51,
    ("cpu", "mixup_cutmix", "elem"): 55,
    ("device", "mixup", "batch"): 13,
    ("device", "cutmix", "batch"): 35,
    ("device", "cutmix", "elem"): 35,
    ("device", "random_erasing", "elem"): 48,
    ("device", "mixup_cutmix", "batch"): 52,
    ("device", "mixup_cutmix", "elem"): 52,
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


@pytest.mark.parametrize("path,name,mode", sorted(BUDGETS))
def test_op_count_within_launch_budget(monkeypatch, path, name, mode):
    if path == "device":
        monkeypatch.setattr(ops, "on_host", lambda device: False)
        monkeypatch.setattr(ops, "fast_bool_broadcast", lambda device: True)
    params = {"mode": mode} if name in ("mixup", "cutmix", "mixup_cutmix") else {}
    reg = regularizers.build(name, 10, **params)
    reg.check_label_range, reg.inplace = False, True  # as the training loop calls it
    total = sum(count(reg, 256, size=32).values())
    assert total <= BUDGETS[path, name, mode], f"{path} {name} {mode}: {total} ops"
