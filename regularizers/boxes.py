"""Rectangles ("boxes"): masks, areas, and CutMix's box sampling.

Boxes are int64 ``[n, 4]`` tensors of half-open pixel ranges ``(y0, y1, x0, x1)``: rows
y0 <= y < y1 and columns x0 <= x < x1; an empty box (y1 == y0 or x1 == x0) changes nothing.
Viewed as ``[n, 2, 2]`` a box is (axis, low/high): the tensor code below works on both axes at
once, so a call dispatches few operations (on a GPU each is a kernel launch) for any n.
"""

from __future__ import annotations

import math

import torch

from .base import Regularizer
from .ops import below, constant, sample_beta_pair, uniform


def _mask_bounds(
    box: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = box.shape[0]
    bounds = box.reshape(n, 2, 2)
    low, high = bounds[..., :1], bounds[..., 1:]  # [n, 2, 1]: rows, then columns
    positions = constant("positions", box.device, max(height, width))
    inside = (positions >= low) & (positions < high)  # [n, 2, max(H, W)]
    rows = inside[:, 0, :height].view(n, 1, height, 1)
    cols = inside[:, 1, :width].view(n, 1, 1, width)
    return rows & cols, low, high


def box_mask(box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """bool [n, 1, height, width]: True inside each of the n boxes.

    The outer product of a row test and a column test, both made by one broadcast comparison
    of the boxes against a cached `arange`: the same few operations for any n, no Python loop.
    """
    return _mask_bounds(box, height, width)[0]


def box_mask_area(
    box: torch.Tensor, height: int, width: int, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """(`box_mask`, [n, 1] each box's area as a fraction of the image, in `dtype`) of the same
    boxes, which are already clipped to the image."""
    mask, low, high = _mask_bounds(box, height, width)
    pixels = (high - low).prod(dim=1)  # int64 [n, 1]; an int64 tensor divides into float32
    return mask, (pixels if dtype == torch.float32 else pixels.to(dtype)) / (height * width)


def centred_boxes(centre: torch.Tensor, cut: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """int64 [n, 4]: boxes of cut [n, 2] (rows, columns) pixels centred on centre [n, 2] (row,
    column), clipped to the image.

    A centre on the first or last row/column puts half the box outside, so boxes touch every
    border; clipping shrinks them, which is why CutMix weighs labels by the clipped area
    (`box_mask_area`).
    """
    low = centre - cut // 2
    box = torch.stack([low, low + cut], dim=2)  # [n, 2, 2]: (axis, low/high), maybe outside
    zero = constant("axes", box.device, torch.int64, 0, 0)
    limits = constant("axes", box.device, torch.int64, height, width)  # [2, 1]: rows, columns
    return box.clamp_(zero, limits).view(-1, 4)


def sample_boxes(
    reg: Regularizer,
    alpha: float,
    minmax: list | None,
    n: int,
    height: int,
    width: int,
    generator: torch.Generator | None,
    device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """int64 [n, 4] CutMix boxes (y0, y1, x0, x1) for `reg`'s current prob and strength.

    Without `minmax`: area fraction (1 - lam) * strength before clipping, centre uniform.
    With `minmax` (as timm's `cutmix_minmax`; alpha unused): each side uniform in
    [min, max) of the image's side, the area scaled by the strength, the box inside the image.
    The arithmetic runs in `dtype` on the float32 draws; float64 takes the share as 1 - lam,
    float32 as the Beta pair's complement (each is how some committed results were drawn).
    """
    u = uniform((n, 3 if minmax is None else 5), generator, device)
    share = None
    if minmax is None:
        pair = sample_beta_pair(alpha, n, generator, device)
        share = 1.0 - pair[:, :1].double() if dtype == torch.float64 else pair[:, 1:]
    return boxes_from_draws(reg, u.to(dtype), share, minmax, height, width)


def boxes_from_draws(
    reg: Regularizer,
    u: torch.Tensor,
    share: torch.Tensor | None,
    minmax: list | None,
    height: int,
    width: int,
) -> torch.Tensor:
    """int64 [n, 4] boxes from uniforms u [n, k] and, without minmax, share [n, 1]: the
    partner's area share 1 - lam before clipping (lam ~ Beta(alpha, alpha)); the arithmetic runs
    in u's dtype (float32, or float32 draws widened to float64).

    u[:, 0] < prob decides who is cut. Without minmax, u[:, 1:3] place the centre (row, column);
    with minmax, u[:, 1:3] pick the sides and u[:, 3:5] the top-left corner.
    """
    n, dev = u.shape[0], u.device
    sides = constant("values", dev, torch.float32, height, width)
    decides = (slice(None), slice(0, 1))  # u[:, :1], [n, 1]
    if minmax is None:
        side = torch.sqrt(reg.scaled_share(share, u, decides))  # [n, 1]
        cut = (side * sides).long()  # [n, 2] floor, as the paper
        return centred_boxes(below(u[:, 1:3], sides), cut, height, width)
    applies = (u[decides] < reg.current_prob).to(u.dtype)
    scale = applies * math.sqrt(reg.current_strength)  # side x sqrt(s): area x s
    low_side = [int(size * minmax[0]) for size in (height, width)]
    low_side = constant("values", dev, torch.int64, *low_side)
    span = [max(int(size * minmax[1]) - int(size * minmax[0]), 1) for size in (height, width)]
    span = constant("values", dev, torch.float32, *span)
    cut = ((low_side + below(u[:, 1:3], span)) * scale).long()  # [n, 2]
    room = constant("values", dev, torch.int64, height + 1, width + 1) - cut
    corner = below(u[:, 3:5], room)
    return torch.stack([corner, corner + cut], dim=2).view(n, 4)
