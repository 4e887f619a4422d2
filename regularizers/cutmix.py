"""`cutmix`: CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with
Localizable Features", ICCV 2019, arXiv:1905.04899), batched.

A box of the partner (partner = a random permutation of the batch, as in the paper's code) is
pasted into each sample. lam ~ Beta(alpha, alpha); the box has the image's aspect ratio and area
fraction 1 - lam, its centre is uniform over the pixels, and it is clipped to the image. The
label weight of the sample itself is the area it keeps *after* clipping (not the drawn lam).
`mode="batch"` uses one box for the batch (the paper's code), `mode="elem"` one box per sample,
built from broadcast `arange` comparisons, so a call dispatches the same operations for any B.
"""

from __future__ import annotations

import math

import torch

from . import ops
from .base import Draws, Regularizer
from .boxes import box_mask_area, sample_boxes
from .checks import check_choice, check_number, check_pair
from .ops import random_partner

MODES = ("batch", "elem")


def check_minmax(p: dict) -> None:
    if p["minmax"] is not None:
        p["minmax"] = check_pair("minmax", p["minmax"], 0.0, 1.0, lo_open=True)


def paste(
    reg: Regularizer,
    images: torch.Tensor,
    targets: torch.Tensor,
    partner: torch.Tensor,
    box: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [B, C, H, W] with each box filled from the partner; targets [B, K] weighed by area.

    partner: int64 [B]; box: int64 [1, 4] (one box for the batch) or [B, 4] (one per sample);
    a single box on the host is pasted by slicing, any box on a GPU through a broadcast mask.
    Target = kept * y_i + (1 - kept) * y_partner, kept = 1 - the box's clipped area fraction.
    The result goes into `images` when `reg.inplace`, else into a new tensor.
    """
    _, _, h, w = images.shape
    partner_targets = targets.index_select(0, partner)
    if box.shape[0] == 1 and ops.on_host(images.device):  # slice: copy only the box's pixels
        y0, y1, x0, x1 = box.tolist()[0]
        kept = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
        box_pixels = images[:, :, y0:y1, x0:x1]
        if reg.inplace:  # the partners' boxes are copied out first: partners overlap in a cycle
            box_pixels.copy_(torch.index_select(box_pixels, 0, partner))
            return images, torch.lerp(partner_targets, targets, kept)
        out = images.clone()
        # Gather the partners' boxes straight into the output's box (out= a view): no
        # temporary copy of the box (a fresh buffer costs page faults on CPU).
        torch.index_select(box_pixels, 0, partner, out=out[:, :, y0:y1, x0:x1])
        return out, torch.lerp(partner_targets, targets, kept)
    mixed = reg.partner_images(images, partner)
    mask, area = box_mask_area(box, h, w)
    out = torch.where(mask, mixed, images, out=reg.output(images, mixed))
    return out, torch.lerp(targets, partner_targets, area)


class CutMix(Regularizer):
    """CutMix: paste a partner's box into each sample; label weight = exactly the kept area.

    alpha=1.0 (lam uniform) is the paper's setting and torchvision's default. The schedule's
    strength s scales the box's area: (1 - lam) * s (s=0.25: at most a quarter of the image).

    Draws: ``partner`` int64 [B]; ``box`` int64 [1, 4] (batch; on the host for a CPU batch, on
    the device for a GPU batch, so no host sync) or [B, 4] on the batch's device (elem).
    """

    name = "cutmix"
    PARAMS = {"alpha": 1.0, "mode": "batch", "minmax": None}

    def check_params(self, p: dict) -> None:
        p["alpha"] = check_number("alpha", p["alpha"], 0.0, math.inf, lo_open=True)
        check_choice("mode", p["mode"], MODES)
        check_minmax(p)

    def sample(self, images: torch.Tensor, generator: torch.Generator | None) -> Draws:
        (b, _, h, w), p, dev = images.shape, self._params, images.device
        batch = p["mode"] == "batch"
        partner = random_partner(b, generator, dev)
        box = sample_boxes(
            self, p["alpha"], p["minmax"], 1 if batch else b, h, w, generator, dev, batch
        )
        return {"partner": partner, "box": box}

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, draws: Draws
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return paste(self, images, targets, draws["partner"], draws["box"])
