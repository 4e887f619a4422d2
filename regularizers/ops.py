"""Shared tensor helpers: generator-driven draws, and the partner gather.

Every draw takes the caller's `torch.Generator` (None: torch's default generator for the device)
and the device of the batch; nothing here reads numpy's or Python's global RNG.
"""

from __future__ import annotations

import torch


def uniform(shape: tuple[int, ...], generator: torch.Generator | None, device) -> torch.Tensor:
    """float32 uniform [0, 1) draws of `shape` on `device`."""
    return torch.rand(shape, generator=generator, device=device)


def below(u: torch.Tensor, high: torch.Tensor | int) -> torch.Tensor:
    """int64 floor(u * high) for uniform u: an integer uniform in [0, high) (high >= 1)."""
    # u * high can round up to high in float32 when high is large: clamp to high - 1.
    if isinstance(high, int):
        return (u * high).long().clamp_max_(high - 1)
    return torch.minimum((u * high).long(), high - 1)


def sample_beta(alpha: float, n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """float32 [n] draws of Beta(alpha, alpha).

    torch.distributions.Beta cannot take a generator; a two-component Dirichlet(alpha, alpha)
    is Beta(alpha, alpha) in its first component, and `torch._sample_dirichlet` takes one (it
    normalises two Gamma(alpha) draws; on CPU it gave no NaN down to alpha = 1e-3).
    """
    concentration = torch.full((n, 2), alpha, device=device)
    return torch._sample_dirichlet(concentration, generator=generator)[:, 0]


def random_partner(n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """int64 [n] partner indices: a random permutation, so any n works (odd, 1); a fixed point
    pairs a sample with itself, which leaves that sample unchanged."""
    return torch.randperm(n, generator=generator, device=device)


def gather_batch(images: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """images[partner] as a new tensor in the images' memory format (channels_last stays so)."""
    return torch.index_select(images, 0, partner, out=torch.empty_like(images))
