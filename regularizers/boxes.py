"""Rectangles ("boxes"): masks, areas, and CutMix's box sampling.

Boxes are int64 ``[n, 4]`` tensors of half-open pixel ranges ``(y0, y1, x0, x1)``: rows
y0 <= y < y1 and columns x0 <= x < x1; an empty box (y1 == y0 or x1 == x0) changes nothing.
"""

from __future__ import annotations

import math

import torch

from .base import Regularizer
from .ops import below, sample_beta, uniform


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


def sample_boxes(
    reg: Regularizer,
    alpha: float,
    minmax: list | None,
    n: int,
    height: int,
    width: int,
    generator: torch.Generator | None,
    device,
    on_host: bool = False,
) -> torch.Tensor:
    """int64 [n, 4] CutMix boxes (y0, y1, x0, x1) for `reg`'s current prob and strength.

    Without `minmax`: area fraction (1 - lam) * strength before clipping, centre uniform.
    With `minmax` (as timm's `cutmix_minmax`; alpha unused): each side uniform in
    [min, max) of the image's side, the area scaled by the strength, the box inside the image.
    `on_host` (one box for the batch) on a CPU batch: computed in Python, returned on the host.
    On CUDA the box stays on the device even then, so the training step never waits for the host.
    """
    u = uniform((3 if minmax is None else 5, n), generator, device)
    if minmax is None:
        u = torch.cat([u, sample_beta(alpha, n, generator, device)[None]])  # u[3]: lam
    if on_host and u.device.type == "cpu":
        # A batch box's corners become Python ints for slicing anyway: bring its few draws to
        # the host in one transfer and do the arithmetic in Python, not as ~30 tiny kernels.
        return torch.tensor([one_box(reg, u[:, 0].tolist(), minmax, height, width)])
    return boxes_from_draws(reg, u, minmax, height, width)


def boxes_from_draws(
    reg: Regularizer, u: torch.Tensor, minmax: list | None, height: int, width: int
) -> torch.Tensor:
    """int64 [n, 4] boxes from float32 draws u [k, n]: u[0] < prob decides who is cut; without
    minmax u[1], u[2] place the centre and u[3] is lam; with minmax u[1], u[2] pick the sides
    and u[3], u[4] the corner."""
    if minmax is None:
        side = torch.sqrt(reg.partner_share(u[3], u[0]))
        cut_h, cut_w = (height * side).long(), (width * side).long()  # floor, as the paper
        return centred_boxes(below(u[1], height), below(u[2], width), cut_h, cut_w, height, width)
    scale = torch.where(u[0] < reg.current_prob, reg.current_strength**0.5, 0.0)  # area x s
    sides = []
    for i, size in ((1, height), (2, width)):
        low, high = int(size * minmax[0]), int(size * minmax[1])
        sides.append(((low + below(u[i], max(high - low, 1))) * scale).long())
    top, left = below(u[3], height - sides[0] + 1), below(u[4], width - sides[1] + 1)
    return torch.stack([top, top + sides[0], left, left + sides[1]], dim=1)


def one_box(reg: Regularizer, u: list[float], minmax, height: int, width: int) -> list[int]:
    """[y0, y1, x0, x1]: the Python twin of `boxes_from_draws` for one box, from its draws `u`
    (in float64, so a side can differ by a pixel from the float32 batched code, rarely)."""
    share = reg.current_strength if u[0] < reg.current_prob else 0.0
    if minmax is None:
        side = math.sqrt((1.0 - u[3]) * share)
        cut_h, cut_w = int(height * side), int(width * side)
        y0 = min(int(u[1] * height), height - 1) - cut_h // 2
        x0 = min(int(u[2] * width), width - 1) - cut_w // 2
        return [max(y0, 0), min(y0 + cut_h, height), max(x0, 0), min(x0 + cut_w, width)]
    sides = []
    for i, size in ((1, height), (2, width)):
        low, high = int(size * minmax[0]), int(size * minmax[1])
        span = max(high - low, 1)
        sides.append(int((low + min(int(u[i] * span), span - 1)) * math.sqrt(share)))
    top = min(int(u[3] * (height - sides[0] + 1)), height - sides[0])
    left = min(int(u[4] * (width - sides[1] + 1)), width - sides[1])
    return [top, top + sides[0], left, left + sides[1]]
