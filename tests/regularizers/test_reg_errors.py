"""Bad names, parameters and batches raise ValueError saying what is allowed (or the shapes)."""

from __future__ import annotations

import math

import pytest
import torch

import regularizers

K = 10


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="available: none, random_erasing, mixup, cutmix"):
        regularizers.build("cutout", K)


BAD_PARAMS = [
    ("mixup", {"alpha": 0.0}, r"alpha must be a number in \(0.0, 100.0\]"),
    ("mixup", {"alpha": 101.0}, r"alpha must be a number in \(0.0, 100.0\], got 101.0"),
    ("cutmix", {"alpha": float("inf")}, r"alpha must be a number in \(0.0, 100.0\], got inf"),
    ("mixup_cutmix", {"cutmix_alpha": 1e300}, r"cutmix_alpha must be a number in \(0.0, 100.0\]"),
    ("mixup", {"alpha": -1}, "alpha"),
    ("cutmix", {"alpha": math.nan}, "alpha"),
    ("mixup_cutmix", {"cutmix_alpha": 0}, "cutmix_alpha"),
    ("mixup_cutmix", {"mixup_alpha": "1"}, "mixup_alpha"),
    ("mixup_cutmix", {"switch_prob": 1.5}, r"switch_prob must be a number in \[0.0, 1.0\]"),
    ("mixup", {"prob": 1.01}, r"prob must be a number in \[0.0, 1.0\]"),
    ("random_erasing", {"prob": -0.1}, "prob"),
    ("cutmix", {"prob": True}, "prob"),
    ("mixup", {"label_smoothing": 2.0}, "label_smoothing"),
    ("none", {"label_smoothing": -1}, "label_smoothing"),
    ("random_erasing", {"scale": [0.5, 0.1]}, "low <= high"),
    ("random_erasing", {"scale": [0.1]}, r"scale must be a pair"),
    ("random_erasing", {"scale": (0.1, 1.5)}, r"scale\[1\] must be a number in \[0.0, 1.0\]"),
    ("random_erasing", {"scale": [0.0, 0.0]}, "scale"),
    ("random_erasing", {"ratio": [0.0, 3.3]}, r"ratio\[0\] must be a number in \(0.0, 100.0\]"),
    ("random_erasing", {"ratio": [0.3, 1e300]}, r"ratio\[1\] must be a number in \(0.0, 100.0\]"),
    ("random_erasing", {"ratio": "wide"}, "ratio must be a pair"),
    ("random_erasing", {"value": "noise"}, r"value must be one of \['zero', 'mean', 'random'\]"),
    ("mixup", {"mode": "pair"}, r"mode must be one of \['batch', 'elem'\]"),
    ("cutmix", {"minmax": [0.0, 0.5]}, "minmax"),
    ("cutmix", {"minmax": [0.8, 0.2]}, "minmax"),
    ("mixup", {"beta": 1.0}, r"unknown parameter\(s\) \['beta'\].*allowed: \['prob', 'alpha'"),
    ("none", {"prob": 0.5}, r"unknown parameter\(s\) \['prob'\]"),
    ("none", {"schedule": "staged"}, "unknown parameter"),
    ("mixup", {"ramp": [0.0, 0.5]}, r"unknown parameter\(s\) \['ramp'\]"),  # not for constant
    ("mixup", {"schedule": "cosine"}, "schedule must be one of"),
    ("mixup", {"schedule": "linear", "ramp": [0.5, 0.5]}, "start < end"),
    ("mixup", {"schedule": "linear", "applies_to": "alpha"}, "applies_to must be one of"),
    ("mixup", {"schedule": "staged", "stages": [[0.3, 1, 1]]}, "rise strictly from 0"),
    ("mixup", {"schedule": "staged", "stages": [[0, 0, 0], [0.5, 1, 1], [0.4, 1, 1]]}, "rise"),
    ("mixup", {"schedule": "staged", "stages": [[0, 0, 0], [1.0, 1, 1]]}, "below 1"),
    ("mixup", {"schedule": "staged", "stages": [[0, 1.5, 1]]}, r"stages\[0\]\[1\]"),
    ("mixup", {"schedule": "staged", "stages": [[0, 1]]}, "non-empty list of"),
    ("mixup", {"schedule": "staged", "stages": []}, "non-empty list of"),
]


@pytest.mark.parametrize("name,params,message", BAD_PARAMS)
def test_bad_parameters_raise_at_build(name, params, message):
    with pytest.raises(ValueError, match=message):
        regularizers.build(name, K, **params)


def test_bad_num_classes():
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="num_classes"):
            regularizers.build("mixup", bad)


BAD_BATCHES = [
    (torch.zeros(4, 3, 8), torch.zeros(4, dtype=torch.long), r"\[B, C, H, W\], got \(4, 3, 8\)"),
    (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), "uint8"),
    (torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long), "at least one sample"),
    (torch.zeros(4, 3, 8, 8), torch.zeros(5, dtype=torch.long), r"batch sizes differ.*\(5,\)"),
    (torch.zeros(4, 3, 8, 8), torch.full((4,), K), r"\[0, 10\), got range \[10, 10\]"),
    (torch.zeros(4, 3, 8, 8), torch.full((4,), -1), r"got range \[-1, -1\]"),
    (torch.zeros(4, 3, 8, 8), torch.zeros(4, K + 1), r"\[4, 10\].*\(4, 11\)"),
    (torch.zeros(4, 3, 8, 8), torch.zeros(3, K), r"\(3, 10\)"),
    (torch.zeros(4, 3, 8, 8), torch.zeros(4, K, dtype=torch.long), "int \\[B\\] or float"),
    (torch.zeros(4, 3, 8, 8), torch.zeros(4, dtype=torch.bool), "int \\[B\\] or float"),
    (torch.zeros(4, 3, 8, 8), [0, 1, 2, 3], "labels must be a tensor"),
    ("images", torch.zeros(4, dtype=torch.long), "images must be a float tensor"),
]


@pytest.mark.parametrize("name", regularizers.available())
@pytest.mark.parametrize("images,labels,message", BAD_BATCHES)
def test_bad_batches_raise_with_shapes(name, images, labels, message):
    with pytest.raises(ValueError, match=message):
        regularizers.build(name, K)(images, labels)


def test_bad_progress():
    reg = regularizers.build("mixup", K, schedule="staged")
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"progress must be a number in \[0.0, 1.0\]"):
            reg.set_progress(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generator_on_another_device():
    reg = regularizers.build("mixup", K)
    with pytest.raises(ValueError, match="generator on cpu"):
        reg(
            torch.zeros(2, 3, 4, 4, device="cuda"),
            torch.zeros(2, dtype=torch.long, device="cuda"),
            generator=torch.Generator(),
        )
