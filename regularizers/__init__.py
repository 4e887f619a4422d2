"""The compared regularizers behind one interface, and their registry.

    reg = regularizers.build("cutmix", num_classes=10, alpha=1.0, schedule="staged")
    reg.set_progress(step / total_steps)              # every step, before the call
    images, targets = reg(images, labels, generator=g)  # targets: float32 [B, 10]
    loss = torch.sum(-targets * logits.log_softmax(-1), dim=-1).mean()

`available()` lists the names, `build()` makes one (unknown names and bad parameters raise
ValueError), `describe()` gives each one's parameters with defaults and a one-line doc.
See `regularizers.base` for the call protocol and `regularizers.schedules` for schedules.

Importing the package does not import torch: the built-in regularizers (and `Regularizer`) are
loaded on first use (PEP 562 `__getattr__`, `_registry()`), so `regularizers.schedules` can be
drawn by the torch-free report.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Regularizer

__all__ = ["Regularizer", "available", "build", "describe", "register"]

_REGISTRY: dict[str, type[Regularizer]] = {}
_BUILT_IN_LOADED = False


def _registry() -> dict[str, type[Regularizer]]:
    """The registry, with the built-in regularizers registered first (imports torch once)."""
    global _BUILT_IN_LOADED
    if not _BUILT_IN_LOADED:
        _BUILT_IN_LOADED = True
        from .cutmix import CutMix
        from .mixup import MixUp
        from .mixup_cutmix import MixUpCutMix
        from .none import NoRegularizer
        from .random_erasing import RandomErasing

        for cls in (NoRegularizer, RandomErasing, MixUp, CutMix, MixUpCutMix):
            register(cls)
    return _REGISTRY


def __getattr__(name: str) -> Any:
    """`regularizers.Regularizer`, imported (with torch) on first access."""
    if name == "Regularizer":
        from .base import Regularizer

        return Regularizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register(cls: type[Regularizer]) -> type[Regularizer]:
    """Add a Regularizer subclass under `cls.name`; ValueError if the name is taken."""
    registry = _registry()
    if cls.name in registry:
        raise ValueError(f"a regularizer named {cls.name!r} is already registered")
    registry[cls.name] = cls
    return cls


def available() -> list[str]:
    """Registered names, in registration order."""
    return list(_registry())


def build(name: str, num_classes: int, **params: Any) -> Regularizer:
    """The regularizer `name` for `num_classes` classes; ValueError on a bad name or parameter."""
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown regularizer {name!r}; available: {', '.join(registry)}")
    return registry[name](num_classes, **params)


def describe() -> dict[str, dict[str, Any]]:
    """For each registered name: {"doc": one line, "params": {parameter: default}}.

    Schedule parameters are listed per schedule by `regularizers.schedules.describe()`.
    """
    return {
        name: {
            "doc": (cls.__doc__ or "").strip().splitlines()[0],
            "params": copy.deepcopy(cls.defaults()),
        }
        for name, cls in _registry().items()
    }
