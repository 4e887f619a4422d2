"""`none`: the baseline arm. Images pass through untouched; targets are one-hot.

Label smoothing (default 0) is the one parameter, so every arm can use the same smoothing.
"""

from __future__ import annotations

import torch

from .base import Draws, Regularizer


class NoRegularizer(Regularizer):
    """No regularization: images unchanged (the same tensor), one-hot targets."""

    name = "none"
    SCHEDULED = False  # nothing to apply, so no prob / schedule; current_prob stays 0

    def sample(self, images: torch.Tensor, generator: torch.Generator | None) -> Draws:
        return {}

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, draws: Draws
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return images, targets
