"""`mixup_cutmix`: MixUp or CutMix, switching between them at random (as timm's `Mixup` does
when both alphas are set).

With probability `switch_prob` CutMix is used, else MixUp: once per batch (`mode="batch"`) or per
sample (`mode="elem"`). Both share one partner permutation. The per-sample mode handles both
kinds of rows with the same two batch-wide operations (a lerp, then a box-masked select; lerp
with weight exactly 0 returns the partner exactly), so a call dispatches the same operations
for any batch size.
"""

from __future__ import annotations

import torch

from .base import Draws, Regularizer
from .boxes import box_mask_area, sample_boxes
from .checks import MAX_BETA_ALPHA, check_choice, check_number
from .cutmix import MODES, check_minmax
from .ops import constant, gather_batch, random_partner, sample_beta, uniform


class MixUpCutMix(Regularizer):
    """MixUp or CutMix, chosen per batch or per sample; CutMix with probability switch_prob.

    Draws: ``partner`` int64 [B]; ``use_cutmix`` bool [n]; ``lam`` float32 [n] (MixUp's weight of
    the sample itself); ``box`` int64 [n, 4] (CutMix); n = 1 (batch) or B (elem); all on the
    batch's device. Both lam and a box are always drawn: MixUp rows ignore the box, CutMix rows
    lam.
    """

    name = "mixup_cutmix"
    PARAMS = {
        "mixup_alpha": 1.0,
        "cutmix_alpha": 1.0,
        "switch_prob": 0.5,
        "mode": "batch",
        "minmax": None,
    }

    def check_params(self, p: dict) -> None:
        for key in ("mixup_alpha", "cutmix_alpha"):
            p[key] = check_number(key, p[key], 0.0, MAX_BETA_ALPHA, lo_open=True)
        p["switch_prob"] = check_number("switch_prob", p["switch_prob"], 0.0, 1.0)
        check_choice("mode", p["mode"], MODES)
        check_minmax(p)

    def sample(self, images: torch.Tensor, generator: torch.Generator | None) -> Draws:
        b, _, h, w = images.shape
        dev, p = images.device, self._params
        n = 1 if p["mode"] == "batch" else b
        partner = random_partner(b, generator, dev)
        u = uniform((2, n), generator, dev)
        use_cutmix = u[0] < p["switch_prob"]  # kept on the device: draws for both methods
        beta = sample_beta(p["mixup_alpha"], n, generator, dev)
        lam = 1.0 - self.partner_share(beta, u, row=1)
        box = sample_boxes(self, p["cutmix_alpha"], p["minmax"], n, h, w, generator, dev)
        return {"partner": partner, "use_cutmix": use_cutmix, "lam": lam, "box": box}

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, draws: Draws
    ) -> tuple[torch.Tensor, torch.Tensor]:
        partner, use_cutmix, lam, box = (draws[k] for k in ("partner", "use_cutmix", "lam", "box"))
        _, _, h, w = images.shape
        # Two batch-wide passes, no loop: blend every row by its MixUp weight (0 for CutMix rows,
        # which start as the partner), then put back the own pixels of CutMix rows outside their
        # box; MixUp rows get a full-image box, so they keep the blend everywhere. (Batch mode
        # takes this path with n = 1, broadcast over the batch.)
        mixed = gather_batch(images, partner)
        weight = torch.where(use_cutmix, 0.0, lam).to(images.dtype)
        mixed.lerp_(images, weight.view(-1, 1, 1, 1))
        full = constant("values", box.device, torch.int64, 0, h, 0, w)
        take, area = box_mask_area(torch.where(use_cutmix[:, None], box, full), h, w)
        out = torch.where(take, mixed, images, out=self.output(images, mixed))
        kept = torch.where(use_cutmix[:, None], 1.0 - area, lam[:, None])
        return out, torch.lerp(targets.index_select(0, partner), targets, kept)
