"""`mixup_cutmix`: MixUp or CutMix, switching between them at random (as timm's `Mixup` does
when both alphas are set).

With probability `switch_prob` CutMix is used, else MixUp: once per batch (`mode="batch"`) or per
sample (`mode="elem"`). Both share one partner permutation. The per-sample mode handles both
kinds of rows with the same two batch-wide operations (a lerp, then a box-masked select; lerp
with weight exactly 0 returns the partner exactly), so a call dispatches the same operations
for any batch size.
"""

from __future__ import annotations

import math

import torch

from . import ops
from .base import Draws, Regularizer
from .boxes import box_mask_area, sample_boxes
from .checks import check_choice, check_number
from .cutmix import MODES, check_minmax, paste
from .mixup import mix
from .ops import constant, random_partner, sample_beta, uniform


class MixUpCutMix(Regularizer):
    """MixUp or CutMix, chosen per batch or per sample; CutMix with probability switch_prob.

    Draws: ``partner`` int64 [B]; ``use_cutmix`` bool [n]; ``lam`` float32 [n] (MixUp's weight of
    the sample itself); ``box`` int64 [n, 4] (CutMix); n = 1 (batch) or B (elem). In batch mode
    on a CPU batch `use_cutmix` is on the host, `box` is empty when the batch gets MixUp and `lam`
    is 1 (unused) when it gets CutMix; on a GPU all stay on the device (a box is always drawn,
    and MixUp rows ignore it).
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
            p[key] = check_number(key, p[key], 0.0, math.inf, lo_open=True)
        p["switch_prob"] = check_number("switch_prob", p["switch_prob"], 0.0, 1.0)
        check_choice("mode", p["mode"], MODES)
        check_minmax(p)

    def sample(self, images: torch.Tensor, generator: torch.Generator | None) -> Draws:
        b, _, h, w = images.shape
        dev, p = images.device, self._params
        batch = p["mode"] == "batch"
        n = 1 if batch else b
        partner = random_partner(b, generator, dev)
        u = uniform((2, n), generator, dev)
        if batch and ops.on_host(dev):  # choose on the host, and draw only what it needs
            chosen = u.tolist()[0][0] < p["switch_prob"]
            use_cutmix = constant("values", dev, torch.bool, chosen)
            if not chosen:  # MixUp: an empty box, no box draws
                beta = sample_beta(p["mixup_alpha"], n, generator, dev)
                lam = 1.0 - self.partner_share(beta, u, row=1)
                box = constant("zeros", dev, torch.int64, 1, 4)
                return {"partner": partner, "use_cutmix": use_cutmix, "lam": lam, "box": box}
            lam = constant("values", dev, torch.float32, 1.0)  # unused by CutMix, not drawn
        else:  # on a GPU the choice stays on the device (no host sync): draw for both
            use_cutmix = u[0] < p["switch_prob"]
            beta = sample_beta(p["mixup_alpha"], n, generator, dev)
            lam = 1.0 - self.partner_share(beta, u, row=1)
        box = sample_boxes(self, p["cutmix_alpha"], p["minmax"], n, h, w, generator, dev, batch)
        return {"partner": partner, "use_cutmix": use_cutmix, "lam": lam, "box": box}

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, draws: Draws
    ) -> tuple[torch.Tensor, torch.Tensor]:
        partner, use_cutmix, lam, box = (draws[k] for k in ("partner", "use_cutmix", "lam", "box"))
        if self._params["mode"] == "batch" and ops.on_host(images.device):
            if use_cutmix.item():  # on the host already: only the chosen method runs
                return paste(self, images, targets, partner, box)
            return mix(self, images, targets, partner, lam)
        _, _, h, w = images.shape
        # Two batch-wide passes, no loop: blend every row by its MixUp weight (0 for CutMix rows,
        # which start as the partner), then put back the own pixels of CutMix rows outside their
        # box; MixUp rows get a full-image box, so they keep the blend everywhere. (A batch-mode
        # call on a GPU takes this path with n = 1, broadcast over the batch.)
        mixed = self.partner_images(images, partner)
        weight = torch.where(use_cutmix, 0.0, lam).to(images.dtype)
        mixed.lerp_(images, weight.view(-1, 1, 1, 1))
        full = constant("values", box.device, torch.int64, 0, h, 0, w)
        take, area = box_mask_area(torch.where(use_cutmix[:, None], box, full), h, w)
        out = torch.where(take, mixed, images, out=self.output(images, mixed))
        kept = torch.where(use_cutmix[:, None], 1.0 - area, lam[:, None])
        return out, torch.lerp(targets.index_select(0, partner), targets, kept)
