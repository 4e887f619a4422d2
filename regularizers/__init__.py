"""The compared regularizers behind one interface, and their registry.

    reg = regularizers.build("cutmix", num_classes=10, alpha=1.0, schedule="staged")
    reg.set_progress(step / total_steps)              # every step, before the call
    images, targets = reg(images, labels, generator=g)  # targets: float32 [B, 10]
    loss = torch.sum(-targets * logits.log_softmax(-1), dim=-1).mean()

`available()` lists the names, `build()` makes one (unknown names and bad parameters raise
ValueError), `describe()` gives each one's parameters with defaults and a one-line doc.
See `regularizers.base` for the call protocol and `regularizers.schedules` for schedules.
"""

from __future__ import annotations

import copy
from typing import Any

from .base import Regularizer
from .cutmix import CutMix
from .mixup import MixUp
from .mixup_cutmix import MixUpCutMix
from .none import NoRegularizer
from .random_erasing import RandomErasing

__all__ = ["Regularizer", "available", "build", "describe", "register"]

_REGISTRY: dict[str, type[Regularizer]] = {}


def register(cls: type[Regularizer]) -> type[Regularizer]:
    """Add a Regularizer subclass under `cls.name`; ValueError if the name is taken."""
    if cls.name in _REGISTRY:
        raise ValueError(f"a regularizer named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


for _cls in (NoRegularizer, RandomErasing, MixUp, CutMix, MixUpCutMix):
    register(_cls)


def available() -> list[str]:
    """Registered names, in registration order."""
    return list(_REGISTRY)


def build(name: str, num_classes: int, **params: Any) -> Regularizer:
    """The regularizer `name` for `num_classes` classes; ValueError on a bad name or parameter."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown regularizer {name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name](num_classes, **params)


def describe() -> dict[str, dict[str, Any]]:
    """For each registered name: {"doc": one line, "params": {parameter: default}}.

    Schedule parameters are listed per schedule by `regularizers.schedules.describe()`.
    """
    return {
        name: {
            "doc": (cls.__doc__ or "").strip().splitlines()[0],
            "params": copy.deepcopy(cls.defaults()),
        }
        for name, cls in _REGISTRY.items()
    }
