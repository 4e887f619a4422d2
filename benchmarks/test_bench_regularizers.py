"""pytest-benchmark: per-call time of every regularizer beside timm's and torchvision's versions.

    .venv/bin/pytest benchmarks/ --benchmark-only            (plain `pytest` collects tests/ only)

Batch 256 on CPU at 3x32x32 and 3x224x224, grouped by image size. Each benchmark also records
the tensor operations one call dispatches at B=64 and B=512 (`extra_info`, shown by
`--benchmark-json`), and asserts that our per-sample modes stay constant in B while timm's grow
(a batch-mode mixup_cutmix call runs MixUp's or CutMix's ops, whichever it drew).
`benchmarks/regularizer_table.py` prints the same comparison as one markdown table.
"""

from __future__ import annotations

import pytest
import torch
from regularizer_table import BATCH, IMPLS, SIZES, count_ops, make_batch

CPU = torch.device("cpu")


@pytest.mark.parametrize("size", SIZES, ids=[f"3x{s}x{s}" for s in SIZES])
@pytest.mark.parametrize("impl", IMPLS, ids=[impl.name.replace(" ", "-") for impl in IMPLS])
def test_regularizer_speed(benchmark, impl, size):
    benchmark.group = f"B={BATCH}, 3x{size}x{size}, CPU"
    ops_small, ops_large = count_ops(impl, 64, CPU), count_ops(impl, 512, CPU)
    benchmark.extra_info.update({"ops_B64": ops_small, "ops_B512": ops_large})
    per_sample = "elem" in impl.name or "rasing" in impl.name
    if per_sample and impl.name.startswith("ours"):
        assert ops_small == ops_large  # loop-free: the op count does not grow with the batch
    if per_sample and impl.name.startswith("timm"):
        assert ops_large > ops_small  # a Python loop over the samples
    fn = impl.make(CPU)
    images, labels = make_batch(BATCH, size, CPU)
    if impl.inplace:
        images = images.clone()
    rounds = 20 if size <= 64 else 5
    benchmark.pedantic(fn, args=(images, labels), rounds=rounds, iterations=1, warmup_rounds=1)
