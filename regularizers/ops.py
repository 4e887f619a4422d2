"""Shared tensor helpers: generator-driven draws, the partner gather, cached constants.

Every draw takes the caller's `torch.Generator` (None: torch's default generator for the device)
and the device of the batch; nothing here reads numpy's or Python's global RNG.
"""

from __future__ import annotations

import functools

import torch


def uniform(shape: tuple[int, ...], generator: torch.Generator | None, device) -> torch.Tensor:
    """float32 uniform [0, 1) draws of `shape` on `device`."""
    return torch.rand(shape, generator=generator, device=device)


def below(u: torch.Tensor, high: torch.Tensor | int) -> torch.Tensor:
    """int64 floor(u * high) for uniform u in [0, 1): an integer uniform in [0, high).

    u: float32 draws (or the same draws widened to float64, where the product is exact). No
    clamp is needed: for an integer high < 2**24 the float32 product u * high never rounds up
    to high (the largest u, 1 - 2**-24, lands more than half a float step below it); a test
    checks this for every high up to 70,000.
    """
    return (u * high).long()


@functools.lru_cache(maxsize=64)
def _constant(kind: str, device: torch.device, *args) -> torch.Tensor:
    with torch.inference_mode(False):  # a plain tensor, usable inside and outside inference mode
        if kind == "positions":
            return torch.arange(args[0], device=device)
        if kind == "values":
            return torch.tensor(args[1:], device=device, dtype=args[0])
        if kind == "axes":
            return torch.tensor(args[1:], device=device, dtype=args[0]).view(2, 1)
        if kind == "one_hot":
            num_classes, smoothing = args
            eye = torch.eye(num_classes, device=device)
            return eye * (1.0 - smoothing) + smoothing / num_classes if smoothing else eye
        if kind == "concentration":
            return torch.full(args[:2], args[2], device=device)
    raise ValueError(f"unknown constant {kind!r}")


def constant(kind: str, device, *args) -> torch.Tensor:
    """A small read-only tensor made once per device and arguments, then reused.

    Making it afresh on every call would cost a host-to-device copy or a kernel launch per call
    on a GPU. Kinds: ``positions`` (L) -> int64 arange [L]; ``values`` (dtype, *values) -> [len];
    ``axes`` (dtype, a, b) -> the column [[a], [b]] (one value per image axis, rows first);
    ``one_hot`` (K, smoothing) -> float32 [K, K] smoothed one-hot rows; ``concentration``
    (n, 2, alpha) -> float32 [n, 2] filled with alpha. Never modify the returned tensor.
    """
    return _constant(kind, torch.device(device), *args)


def sample_beta_pair(
    alpha: float, n: int, generator: torch.Generator | None, device
) -> torch.Tensor:
    """float32 [n, 2]: (lam, 1 - lam) for lam ~ Beta(alpha, alpha), n draws.

    torch.distributions.Beta cannot take a generator; a two-component Dirichlet(alpha, alpha)
    is (Beta(alpha, alpha), its complement), and `torch._sample_dirichlet` takes one (it
    normalises two Gamma(alpha) draws; on CPU it gave no NaN down to alpha = 1e-3). Each column
    is a Beta(alpha, alpha) draw; the two sum to 1 up to float32 rounding.
    """
    concentration = constant("concentration", device, n, 2, float(alpha))
    return torch._sample_dirichlet(concentration, generator=generator)


def sample_beta(alpha: float, n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """float32 [n] draws of Beta(alpha, alpha) (the first column of `sample_beta_pair`)."""
    return sample_beta_pair(alpha, n, generator, device)[:, 0]


def random_partner(n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """int64 [n] partner indices: a random permutation, so any n works (odd, 1); a fixed point
    pairs a sample with itself, which leaves that sample unchanged."""
    return torch.randperm(n, generator=generator, device=device)


def gather_batch(images: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """images[partner] [B, C, H, W] as a new tensor in the images' memory format (channels_last
    stays so)."""
    return torch.index_select(images, 0, partner, out=torch.empty_like(images))
