"""`mixup`: MixUp (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018,
arXiv:1710.09412), batched.

Each sample i is blended with a partner j = partner[i] (a random permutation of the batch, as in
the paper's code; any batch size works): x = lam * x_i + (1 - lam) * x_j and likewise the
targets, lam ~ Beta(alpha, alpha). `mode="batch"` draws one lam for the batch (the paper),
`mode="elem"` one per sample; both dispatch the same operations for any batch size.
"""

from __future__ import annotations

import torch

from .base import Draws, Regularizer
from .checks import MAX_BETA_ALPHA, check_choice, check_number
from .ops import gather_batch, random_partner, sample_beta, uniform

MODES = ("batch", "elem")


def mix(
    reg: Regularizer,
    images: torch.Tensor,
    targets: torch.Tensor,
    partner: torch.Tensor,
    lam: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """lam * x + (1 - lam) * x[partner] for images [B, C, H, W] and float targets [B, K].

    partner: int64 [B]; lam: float32 [1] (one weight for the batch) or [B], the weight of each
    sample itself. Images are blended in their own dtype, targets in float32. The result goes
    into `images` when `reg.inplace`, else into a new tensor.
    """
    mixed = gather_batch(images, partner)
    weight = lam.to(images.dtype).view(-1, 1, 1, 1)
    out = torch.lerp(mixed, images, weight, out=reg.output(images, mixed))
    return out, torch.lerp(targets.index_select(0, partner), targets, lam[:, None])


class MixUp(Regularizer):
    """MixUp: blend each sample with a partner, images and targets, by lam ~ Beta(alpha, alpha).

    alpha=1.0 (lam uniform) is the paper's CIFAR-10 setting and torchvision's default. The
    schedule's strength s scales the partner's share: lam becomes 1 - (1 - lam) * s.

    Draws: ``partner`` int64 [B]; ``lam`` float32 [1] (batch) or [B] (elem), 1 where not applied.
    """

    name = "mixup"
    PARAMS = {"alpha": 1.0, "mode": "batch"}

    def check_params(self, p: dict) -> None:
        p["alpha"] = check_number("alpha", p["alpha"], 0.0, MAX_BETA_ALPHA, lo_open=True)
        check_choice("mode", p["mode"], MODES)

    def sample(self, images: torch.Tensor, generator: torch.Generator | None) -> Draws:
        b, dev = images.shape[0], images.device
        n = b if self._params["mode"] == "elem" else 1
        partner = random_partner(b, generator, dev)
        u = uniform((n,), generator, dev)
        lam = sample_beta(self._params["alpha"], n, generator, dev)
        return {"partner": partner, "lam": 1.0 - self.partner_share(lam, u)}

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, draws: Draws
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return mix(self, images, targets, draws["partner"], draws["lam"])
