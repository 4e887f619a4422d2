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

import torch

from .base import Draws, Regularizer
from .boxes import box_mask_area, sample_boxes
from .checks import MAX_BETA_ALPHA, check_choice, check_number, check_pair
from .ops import gather_batch, random_partner

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
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [B, C, H, W] with each box filled from the partner; targets [B, K] weighed by area.

    partner: int64 [B]; box: int64 [1, 4] (one box for the batch) or [B, 4] (one per sample),
    pasted through a broadcast mask. Target = kept * y_i + (1 - kept) * y_partner, kept = 1 - the
    box's clipped area fraction, computed in `dtype` (see `CutMix.apply`). The result goes into
    `images` when `reg.inplace`, else into a new tensor.
    """
    _, _, h, w = images.shape
    partner_targets = targets.index_select(0, partner)
    mixed = gather_batch(images, partner)
    mask, area = box_mask_area(box, h, w, dtype)
    out = torch.where(mask, mixed, images, out=reg.output(images, mixed))
    if dtype == torch.float64:
        return out, torch.lerp(partner_targets, targets, (1.0 - area).float())
    return out, torch.lerp(targets, partner_targets, area)


class CutMix(Regularizer):
    """CutMix: paste a partner's box into each sample; label weight = exactly the kept area.

    alpha=1.0 (lam uniform) is the paper's setting and torchvision's default. The schedule's
    strength s scales the box's area: (1 - lam) * s (s=0.25: at most a quarter of the image).

    Draws: ``partner`` int64 [B]; ``box`` int64 [1, 4] (batch) or [B, 4] (elem), on the batch's
    device (no host sync).
    """

    name = "cutmix"
    PARAMS = {"alpha": 1.0, "mode": "batch", "minmax": None}

    def check_params(self, p: dict) -> None:
        p["alpha"] = check_number("alpha", p["alpha"], 0.0, MAX_BETA_ALPHA, lo_open=True)
        check_choice("mode", p["mode"], MODES)
        check_minmax(p)

    def sample(self, images: torch.Tensor, generator: torch.Generator | None) -> Draws:
        (b, _, h, w), p, dev = images.shape, self._params, images.device
        batch = p["mode"] == "batch"
        partner = random_partner(b, generator, dev)
        n = 1 if batch else b
        box = sample_boxes(self, p["alpha"], p["minmax"], n, h, w, generator, dev, self.precision)
        return {"partner": partner, "box": box}

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, draws: Draws
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return paste(self, images, targets, draws["partner"], draws["box"], self.precision)

    @property
    def precision(self) -> torch.dtype:
        """dtype of the box and label-weight arithmetic: float64 for the batch box, as the Python
        arithmetic of earlier versions computed it on the CPU (so committed CPU results stay
        bit-identical); float32 for per-sample boxes, as before on every device."""
        return torch.float64 if self._params["mode"] == "batch" else torch.float32
