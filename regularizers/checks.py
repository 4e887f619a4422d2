"""Checks that turn bad parameters and bad batches into a `ValueError` that says what was allowed.

Parameter checks run once, at `build()` time; `check_batch` runs on every call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a batch is checked: the parameter checks need none
    import torch


# Plausible upper bounds of the parameters that have no natural one (declared once, used by
# every regularizer that takes them): Beta(100, 100) already puts lam within 0.5 +- 0.05 (a
# larger alpha mixes every pair half and half); an erased box 100 times wider than high (or
# the reverse) is a line of pixels.
MAX_BETA_ALPHA = 100.0
MAX_ASPECT_RATIO = 100.0


def check_number(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    """`value` as a float in [lo, hi] (or (lo, hi] when lo_open); ValueError naming the range."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (lo < value if lo_open else lo <= value) and value <= hi  # NaN fails both
    if not ok:
        bracket = "(" if lo_open else "["
        raise ValueError(f"{name} must be a number in {bracket}{lo}, {hi}], got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`; ValueError listing them otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_pair(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> list:
    """`value` as [a, b] with a <= b, both in [lo, hi] (or (lo, hi]); ValueError otherwise."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair [low, high], got {value!r}")
    a, b = (check_number(f"{name}[{i}]", v, lo, hi, lo_open=lo_open) for i, v in enumerate(value))
    if a > b:
        raise ValueError(f"{name} must be [low, high] with low <= high, got {value!r}")
    return [a, b]


def check_batch(
    images: Any,
    labels: Any,
    generator: torch.Generator | None,
    num_classes: int,
    check_range: bool = True,
) -> None:
    """ValueError (with the shapes) unless images are float [B, C, H, W] with B >= 1, labels are
    int [B] in [0, num_classes) or float [B, num_classes] on the images' device, and the
    generator (if any) is on the images' device type."""
    import torch

    if not (isinstance(images, torch.Tensor) and images.ndim == 4 and images.is_floating_point()):
        got = f"{tuple(images.shape)} {images.dtype}" if torch.is_tensor(images) else type(images)
        raise ValueError(f"images must be a float tensor [B, C, H, W], got {got}")
    shape, k = tuple(images.shape), num_classes
    if shape[0] == 0:
        raise ValueError(f"images must hold at least one sample, got shape {shape}")
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a tensor [B] or [B, {k}], got {type(labels)}")
    where = f"labels {tuple(labels.shape)} {labels.dtype}, images {shape}, num_classes {k}"
    if labels.device != images.device:
        raise ValueError(f"labels on {labels.device} but images on {images.device}")
    if labels.ndim == 1 and not labels.is_floating_point() and labels.dtype != torch.bool:
        if labels.shape[0] != shape[0]:
            raise ValueError(f"batch sizes differ: {where}")
        if check_range:  # False when the caller validated its labels once (the training loop)
            # One host sync on CUDA: the price of a ValueError instead of a device-side assert.
            low, high = torch.stack(torch.aminmax(labels)).tolist()
            if low < 0 or high >= k:
                raise ValueError(f"labels must lie in [0, {k}), got range [{low}, {high}]: {where}")
    elif labels.ndim == 2 and labels.is_floating_point():
        if tuple(labels.shape) != (shape[0], k):
            raise ValueError(f"soft labels must be [B, num_classes] = [{shape[0]}, {k}]: {where}")
    else:
        raise ValueError(f"labels must be int [B] or float [B, num_classes]: {where}")
    if generator is not None and generator.device.type != images.device.type:
        raise ValueError(f"generator on {generator.device} but images on {images.device}")
