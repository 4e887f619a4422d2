"""Slow, obvious per-sample references for the batched regularizers, an op counter, and the
list of variants (every registered name with each of its modes) that tests parametrize over.

Each reference loops over the samples of a batch with plain Python slicing and takes the same
draws as the batched `apply()` (the dict from `reg.sample()`), so a mismatch points at the
vectorized mask / blend code rather than at the random draws.
"""

from __future__ import annotations

import math
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import regularizers


def paste_reference(images, targets, partner, box):
    """CutMix, one box per sample (box [B, 4]) or one for all (box [1, 4]), sample by sample."""
    b, _, h, w = images.shape
    out, mixed = images.clone(), targets.clone()
    for i in range(b):
        y0, y1, x0, x1 = box[i if box.shape[0] > 1 else 0].tolist()
        j = int(partner[i])
        out[i, :, y0:y1, x0:x1] = images[j, :, y0:y1, x0:x1]
        kept = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
        mixed[i] = kept * targets[i] + (1.0 - kept) * targets[j]
    return out, mixed


def mix_reference(images, targets, partner, lam):
    """MixUp, one lam per sample (lam [B]) or one for all (lam [1]), sample by sample."""
    out, mixed = images.clone(), targets.clone()
    for i in range(images.shape[0]):
        weight, j = float(lam[i if lam.numel() > 1 else 0]), int(partner[i])
        out[i] = weight * images[i] + (1.0 - weight) * images[j]
        mixed[i] = weight * targets[i] + (1.0 - weight) * targets[j]
    return out, mixed


def mixup_cutmix_reference(images, targets, draws):
    """Per sample: CutMix where use_cutmix, else MixUp."""
    cut_out, cut_t = paste_reference(images, targets, draws["partner"], draws["box"])
    mix_out, mix_t = mix_reference(images, targets, draws["partner"], draws["lam"])
    use = draws["use_cutmix"].expand(images.shape[0])
    return torch.where(use[:, None, None, None], cut_out, mix_out), torch.where(
        use[:, None], cut_t, mix_t
    )


def erase_reference(images, box, value, noise=None):
    """Random Erasing given the boxes: fill each sample's box with zero / batch mean / noise."""
    out = images.clone()
    mean = images.mean(dim=(0, 2, 3))
    for i in range(images.shape[0]):
        y0, y1, x0, x1 = box[i].tolist()
        if value == "zero":
            out[i, :, y0:y1, x0:x1] = 0.0
        elif value == "mean":
            out[i, :, y0:y1, x0:x1] = mean[:, None, None]
        else:
            out[i, :, y0:y1, x0:x1] = noise[i, :, y0:y1, x0:x1]
    return out


def cutmix_box_reference(reg, u, lam, minmax, height, width):
    """[y0, y1, x0, x1]: one CutMix box computed in Python floats (float64) from its draws
    u (4 or 5 uniforms, as `sample_boxes` draws them) and lam (without minmax), following the
    paper's formulas: the side floor(size * sqrt((1 - lam) * s)), the centre floor(u * size)."""
    share = reg.current_strength if u[0] < reg.current_prob else 0.0
    if minmax is None:
        side = math.sqrt((1.0 - lam) * share)
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


def erase_boxes_reference(u, v, height, width, scale, ratio, prob):
    """The paper's per-sample loop (10 attempts, the first that fits wins) on the same float32
    uniforms as `RandomErasing.sample`: u [2, B, 10] (area, log-aspect), v [3, B] (apply, top,
    left). Arithmetic stays in float32 scalars so rounding matches the batched version."""
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    boxes = []
    for i in range(u.shape[1]):
        box = [0, 0, 0, 0]
        for a in range(u.shape[2] if float(v[0, i]) < prob else 0):
            area = (scale[0] + (scale[1] - scale[0]) * u[0, i, a]) * (height * width)
            aspect = torch.exp(log_lo + (log_hi - log_lo) * u[1, i, a])
            h = int(torch.round(torch.sqrt(area * aspect)))
            w = int(torch.round(torch.sqrt(area / aspect)))
            if h < height and w < width:
                top = min(int(torch.floor(v[1, i] * (height - h + 1))), height - h)
                left = min(int(torch.floor(v[2, i] * (width - w + 1))), width - w)
                box = [top, top + h, left, left + w]
                break
        boxes.append(box)
    return torch.tensor(boxes)


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while active (`with OpCounter() as ops: ...`)."""

    def __init__(self):
        super().__init__()
        self.counts = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def variants():
    """Every registered name, with each of its modes (and CutMix's minmax boxes)."""
    out = []
    for name in regularizers.available():
        params = regularizers.describe()[name]["params"]
        modes = [{"mode": m} for m in ("batch", "elem")] if "mode" in params else [{}]
        out += [(name, m) for m in modes]
        if "minmax" in params:
            out.append((name, {"mode": "elem", "minmax": [0.2, 0.8]}))
    return out


VARIANTS = variants()
IDS = [f"{n}-{'-'.join(str(v) for v in p.values()) or 'default'}" for n, p in VARIANTS]
