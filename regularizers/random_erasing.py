"""`random_erasing`: Random Erasing (Zhong et al., "Random Erasing Data Augmentation", AAAI 2020,
arXiv:1708.04896), batched.

Each sample, with probability `prob`, gets one rectangle filled in; labels are left alone. As in
the paper, a rectangle's area fraction is uniform in `scale` and its aspect ratio (height / width)
log-uniform in `ratio`; a draw that does not fit inside the image is retried, at most 10 times,
after which the sample is left unerased (the paper's loop, with the same bound as timm and
torchvision). All samples' attempts are drawn at once as a [B, 10] tensor and the first fitting
attempt is picked by `argmax`, so a call dispatches the same operations for any batch size.
"""

from __future__ import annotations

import math

import torch

from .base import Draws, Regularizer
from .boxes import box_mask
from .checks import MAX_ASPECT_RATIO, check_choice, check_pair
from .ops import below, constant, uniform

ATTEMPTS = 10  # retries of a rectangle that does not fit, as in the paper's code


class RandomErasing(Regularizer):
    """Random Erasing: fill one random rectangle per sample (prob 0.5); labels unchanged.

    Runs on normalized images (after normalization), so ``value="zero"`` fills with the
    dataset's mean colour, ``"mean"`` with the batch's per-channel mean and ``"random"`` with
    per-pixel N(0, 1) noise (random colours at the dataset's scale). The schedule's strength s
    caps the area: fractions are drawn from [scale[0], max(scale[0], scale[1] * s)].

    Draws: ``box`` int64 [B, 4] (y0, y1, x0, x1), empty where a sample is not erased;
    ``noise`` [B, C, H, W] in the images' dtype when ``value="random"``.
    """

    name = "random_erasing"
    PARAMS = {"prob": 0.5, "scale": [0.02, 1 / 3], "ratio": [0.3, 3.3], "value": "zero"}
    VALUES = ("zero", "mean", "random")

    def check_params(self, p: dict) -> None:
        p["scale"] = check_pair("scale", p["scale"], 0.0, 1.0)
        if p["scale"][1] == 0.0:
            raise ValueError(f"scale must have a high end in (0, 1], got {p['scale']}")
        p["ratio"] = check_pair("ratio", p["ratio"], 0.0, MAX_ASPECT_RATIO, lo_open=True)
        check_choice("value", p["value"], self.VALUES)

    def sample(self, images: torch.Tensor, generator: torch.Generator | None) -> Draws:
        b, _, h, w = images.shape
        dev = images.device
        low, high = self._params["scale"]
        high = max(low, high * self.current_strength)
        log_lo, log_hi = (math.log(r) for r in self._params["ratio"])
        u = uniform((2, b, ATTEMPTS), generator, dev)
        area = (low + (high - low) * u[0]) * (h * w)  # pixels
        aspect = torch.exp(log_lo + (log_hi - log_lo) * u[1])
        sizes = torch.round(torch.sqrt(torch.stack([area * aspect, area / aspect], dim=2)))
        fits = (sizes < constant("values", dev, torch.float32, h, w)).all(dim=2)  # [B, ATTEMPTS]
        first = fits.to(torch.uint8).argmax(dim=1)  # the first fitting attempt
        v = uniform((3, b), generator, dev)
        erase = (v[0] < self.current_prob) & fits.any(dim=1)  # size 0 where not erased
        size = sizes[constant("positions", dev, b), first].long() * erase[:, None]  # [B, 2]
        corner = below(v[1:].t(), constant("values", dev, torch.int64, h + 1, w + 1) - size)
        box = torch.stack([corner, corner + size], dim=2).view(b, 4)  # (y0, y1, x0, x1)
        draws = {"box": box}
        if self._params["value"] == "random":
            draws["noise"] = torch.randn(
                images.shape, generator=generator, device=dev, dtype=images.dtype
            )
        return draws

    def apply(
        self, images: torch.Tensor, targets: torch.Tensor, draws: Draws
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = box_mask(draws["box"], images.shape[2], images.shape[3])  # [B, 1, H, W]
        value = self._params["value"]
        if value == "zero":
            if self.inplace:
                return images.masked_fill_(mask, 0.0), targets
            return torch.where(mask, 0.0, images), targets  # keeps channels_last
        if value == "mean":
            fill = images.mean(dim=(0, 2, 3), keepdim=True, dtype=torch.float32).to(images.dtype)
        else:
            fill = draws["noise"]
        # In place writes into `images`; else a new tensor in the images' memory format.
        out = images if self.inplace else torch.empty_like(images)
        return torch.where(mask, fill, images, out=out), targets
