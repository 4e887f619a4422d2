"""The float precision of each CutMix path, as docs/regularizers.md states it: batch-mode
`cutmix` computes its box and label weight in float64, per-sample `cutmix` and both modes of
`mixup_cutmix`'s CutMix half in float32."""

from __future__ import annotations

import pytest
import torch

import regularizers
from regularizers import boxes, cutmix, mixup_cutmix


@pytest.mark.parametrize(
    ("name", "params", "module", "expected"),
    [
        ("cutmix", {"mode": "batch"}, cutmix, torch.float64),
        ("cutmix", {"mode": "elem"}, cutmix, torch.float32),
        ("mixup_cutmix", {"mode": "batch", "switch_prob": 1.0}, mixup_cutmix, torch.float32),
        ("mixup_cutmix", {"mode": "elem", "switch_prob": 1.0}, mixup_cutmix, torch.float32),
    ],
)
def test_each_cutmix_path_computes_its_box_and_area_in_the_documented_dtype(
    monkeypatch, name, params, module, expected
):
    seen: dict[str, list[torch.dtype]] = {"box": [], "area": []}
    real_boxes, real_area = boxes.sample_boxes, boxes.box_mask_area

    def spy_boxes(*args, **kwargs):
        dtype = kwargs.get("dtype", args[8] if len(args) > 8 else torch.float32)
        seen["box"].append(dtype)
        return real_boxes(*args, **kwargs)

    def spy_area(box, h, w, dtype=torch.float32):
        seen["area"].append(dtype)
        return real_area(box, h, w, dtype)

    monkeypatch.setattr(module, "sample_boxes", spy_boxes)
    monkeypatch.setattr(module, "box_mask_area", spy_area)
    reg = regularizers.build(name, num_classes=10, **params)
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8) % 10
    _, targets = reg(images, labels, generator=torch.Generator().manual_seed(1))
    assert seen["box"] == [expected] and seen["area"] == [expected]
    assert targets.dtype == torch.float32  # whatever the arithmetic, targets are float32
