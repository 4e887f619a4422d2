"""Shared tensor helpers: generator-driven draws and rectangle (box) geometry.

Every draw takes the caller's `torch.Generator` (None: torch's default generator for the device)
and the device of the batch; nothing here reads numpy's or Python's global RNG. Boxes are int64
``[n, 4]`` tensors of half-open pixel ranges ``(y0, y1, x0, x1)``: rows y0 <= y < y1 and columns
x0 <= x < x1; an empty box (y1 == y0 or x1 == x0) changes nothing.
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
    normalises two Gamma(alpha) draws and clamps away the 0 / 0 of tiny alphas).
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


def box_mask(box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """bool [n, 1, height, width]: True inside each of the n boxes.

    Built from broadcast `arange` comparisons (rows x columns), so one call dispatches the same
    few operations for any n: no Python loop over samples.
    """
    rows = torch.arange(height, device=box.device)
    cols = torch.arange(width, device=box.device)
    in_rows = ((rows >= box[:, 0:1]) & (rows < box[:, 1:2])).to(torch.uint8)  # [n, H]
    in_cols = ((cols >= box[:, 2:3]) & (cols < box[:, 3:4])).to(torch.uint8)  # [n, W]
    # The outer product as a uint8 multiply viewed as bool: a broadcast bool `&` of this size
    # runs some 20x slower on CPU (it is not vectorized there).
    return (in_rows[:, None, :, None] * in_cols[:, None, None, :]).view(torch.bool)


def box_area(box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """float32 [n]: each box's area as a fraction of the image (boxes are already clipped)."""
    return torch.prod(box[:, 1::2] - box[:, 0::2], dim=1) / (height * width)


def centred_boxes(
    cy: torch.Tensor,
    cx: torch.Tensor,
    cut_h: torch.Tensor,
    cut_w: torch.Tensor,
    height: int,
    width: int,
) -> torch.Tensor:
    """int64 [n, 4]: boxes of cut_h x cut_w pixels centred on (cy, cx), clipped to the image.

    A centre on the first or last row/column puts half the box outside, so boxes touch every
    border; clipping shrinks them, which is why CutMix weighs labels by `box_area` afterwards.
    """
    y0, x0 = cy - cut_h // 2, cx - cut_w // 2
    box = torch.stack([y0, y0 + cut_h, x0, x0 + cut_w], dim=1)
    box[:, :2].clamp_(0, height)
    box[:, 2:].clamp_(0, width)
    return box
