"""Fixed test-time perturbations: synthetic corruptions, square occlusion, and the flip-rate nudge.

All functions take images float [B, C, H, W] with values in [0, 1] at CIFAR's native resolution,
before any resize or normalization, and return a new tensor of the same shape, dtype and device,
clamped to [0, 1]. They are loop-free over the batch and draw all randomness from the passed
torch.Generator, on the generator's own device, moving the draws to the images' device: a CPU
generator therefore gives the same noise and positions on every device (robustness_generator's
default). Draws depend on the evaluation batch size, so the runner keeps it fixed.

The corruption families are named after five of the CIFAR-10-C families of Hendrycks & Dietterich
(2019, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations"), but are
simpler tensor re-implementations with their own parameters (CORRUPTIONS): the numbers are *not*
comparable with published CIFAR-10-C results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# family -> severity (1..5) -> its one parameter; the units are in the comments.
CORRUPTIONS: dict[str, dict[int, float]] = {
    # x + sigma * N(0, 1), independently per pixel and channel; sigma in [0, 1] pixel units.
    "gaussian_noise": {1: 0.04, 2: 0.06, 3: 0.08, 4: 0.10, 5: 0.12},
    # separable Gaussian kernel, std in pixels, radius ceil(3 * std), edge pixels replicated.
    "gaussian_blur": {1: 0.5, 2: 0.75, 3: 1.0, 4: 1.25, 5: 1.5},
    # (x - m) * factor + m, m = the image's mean over all channels and pixels.
    "contrast": {1: 0.75, 2: 0.6, 3: 0.45, 4: 0.3, 5: 0.15},
    # x + shift on every channel (a flat RGB offset, not an HSV value change).
    "brightness": {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5},
    # each of round(scale * side) near-equal blocks per side replaced by its mean (see _pixelate).
    "pixelate": {1: 0.9, 2: 0.75, 3: 0.6, 4: 0.5, 5: 0.4},
}
DEFAULT_SEVERITY = 3  # corruption_acc / corruption_ece in runs.csv: mean over families at this
ROBUSTNESS_SEED = 20190328  # fixed, independent of the run seed: every cell sees the same draws
FLIP_NOISE_STD = 2 / 255  # flip_perturb: Gaussian noise std in [0, 1] pixel units
# flip_perturb: (dy, dx) content shift of each direction index: right, left, down, up.
FLIP_SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def robustness_generator(
    device: torch.device | str = "cpu", seed: int = ROBUSTNESS_SEED
) -> torch.Generator:
    """A fresh generator on `device` seeded with a fixed seed, independent of the run seed.
    Make one per perturbation (per family and severity) so no result depends on evaluation order."""
    return torch.Generator(device=torch.device(device)).manual_seed(seed)


def _work(images: torch.Tensor) -> torch.Tensor:
    """images [B, C, H, W] as float32/float64 (half types are upcast for the arithmetic)."""
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"expected float images [B, C, H, W], got {images.dtype} {images.shape}")
    return images if images.dtype in (torch.float32, torch.float64) else images.float()


def _finish(out: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return out.clamp(0.0, 1.0).to(images.dtype)


def _randn_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise shaped like x [B, C, H, W], drawn on the generator's device."""
    draw = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    return draw.to(x.device)


def _gaussian_blur(x: torch.Tensor, std: float) -> torch.Tensor:
    """Depthwise separable Gaussian blur of x [B, C, H, W] with replicated edges."""
    radius = max(1, math.ceil(3 * std))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / std) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _block_average(n: int, blocks: int, like: torch.Tensor) -> torch.Tensor:
    """[n, n] matrix averaging within `blocks` contiguous near-equal blocks: pixel i belongs to
    block floor(i * blocks / n), so the blocks partition the side exactly (sizes differ by <= 1)."""
    block = torch.div(torch.arange(n, device=like.device) * blocks, n, rounding_mode="floor")
    same = (block[:, None] == block[None, :]).to(like.dtype)
    return same / same.sum(dim=1, keepdim=True)


def _pixelate(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Replace each block of x [B, C, H, W] by its mean, with round(scale * side) blocks per side:
    an area downsample and nearest upsample that share one partition, so nothing shifts."""
    h, w = x.shape[-2:]
    rows = _block_average(h, max(1, round(h * scale)), x)
    cols = _block_average(w, max(1, round(w * scale)), x)
    return torch.einsum("yi,bcij,xj->bcyx", rows, x, cols)


def corrupt(
    images: torch.Tensor,
    family: str,
    severity: int = DEFAULT_SEVERITY,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """images [B, C, H, W] in [0, 1] -> the same shape with corruption `family` (a key of
    CORRUPTIONS) at `severity` 1..5 applied. gaussian_noise needs `generator`; the other
    families are deterministic and ignore it."""
    if family not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {family!r}; choose from {sorted(CORRUPTIONS)}")
    if severity not in CORRUPTIONS[family]:
        raise ValueError(f"severity must be one of {sorted(CORRUPTIONS[family])}, got {severity}")
    p = CORRUPTIONS[family][severity]
    x = _work(images)
    if family == "gaussian_noise":
        if generator is None:
            raise ValueError("gaussian_noise needs a torch.Generator (see robustness_generator)")
        out = x + p * _randn_like(x, generator)
    elif family == "gaussian_blur":
        out = _gaussian_blur(x, p)
    elif family == "contrast":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        out = (x - mean) * p + mean
    elif family == "brightness":
        out = x + p
    else:  # pixelate
        out = _pixelate(x, p)
    return _finish(out, images)


def occlusion_side(height: int, width: int, area_fraction: float = 0.25) -> int:
    """Side in pixels of the occluding square: round(sqrt(area_fraction * H * W))."""
    return round(math.sqrt(area_fraction * height * width))


def occlude(
    images: torch.Tensor,
    fill: torch.Tensor | Sequence[float],
    generator: torch.Generator,
    area_fraction: float = 0.25,
) -> torch.Tensor:
    """images [B, C, H, W] -> a copy with one square of side occlusion_side(H, W, area_fraction)
    per image set to the per-channel colour `fill` [C] (the dataset mean in [0, 1]). Each square
    lies fully inside its image, its top-left corner uniform over the (H - s + 1) * (W - s + 1)
    valid ones: draws are B rows, then B columns. ValueError when the square does not fit."""
    x = _work(images)
    b, c, h, w = x.shape
    side = occlusion_side(h, w, area_fraction)
    if not 0 < side <= min(h, w):
        raise ValueError(f"a square of side {side} does not fit a {h}x{w} image")
    fill = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    if fill.shape != (c,):
        raise ValueError(f"fill must have one value per channel ({c}), got shape {fill.shape}")
    top = torch.randint(0, h - side + 1, (b,), generator=generator, device=generator.device)
    left = torch.randint(0, w - side + 1, (b,), generator=generator, device=generator.device)
    top, left = top.to(x.device)[:, None], left.to(x.device)[:, None]
    rows = torch.arange(h, device=x.device)[None, :]  # [1, H]
    cols = torch.arange(w, device=x.device)[None, :]  # [1, W]
    in_rows = (rows >= top) & (rows < top + side)  # [B, H]
    in_cols = (cols >= left) & (cols < left + side)  # [B, W]
    mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]  # [B, 1, H, W]
    return _finish(torch.where(mask, fill.view(1, c, 1, 1), x), images)


def flip_perturb(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The small perturbation behind flip_rate: images [B, C, H, W] -> same shape, each image's
    content shifted by one pixel in a direction drawn uniformly per image from FLIP_SHIFTS
    (right, left, down, up; the vacated edge row/column repeats the edge pixels), plus Gaussian
    noise of std FLIP_NOISE_STD = 2/255 per pixel and channel, then clamped to [0, 1].
    Draws: B direction indices, then the [B, C, H, W] noise."""
    x = _work(images)
    b, _, h, w = x.shape
    direction = torch.randint(
        0, len(FLIP_SHIFTS), (b,), generator=generator, device=generator.device
    )
    noise = _randn_like(x, generator)
    shifts = torch.tensor(FLIP_SHIFTS, device=x.device)[direction.to(x.device)]  # [B, 2]
    # out[y, x] = in[y - dy, x - dx]; clamping the index replicates the edge.
    rows = (torch.arange(h, device=x.device)[None, :] - shifts[:, :1]).clamp(0, h - 1)  # [B, H]
    cols = (torch.arange(w, device=x.device)[None, :] - shifts[:, 1:]).clamp(0, w - 1)  # [B, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    shifted = x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
    return _finish(shifted.permute(0, 3, 1, 2) + FLIP_NOISE_STD * noise, images)


# issue 28: two objects in one image
COMPOSITE_SEED = 20190513  # fixed (CutMix's arXiv month): every cell pairs the same images


def two_object_composites(
    images: torch.Tensor, labels: torch.Tensor, count: int, seed: int = COMPOSITE_SEED
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`count` composites of two test images of different classes, built deterministically:
    the images in one fixed seeded order (a CPU generator), each paired with the next one in
    that order (cyclically) whose class differs; a composite is the left half of the first
    (columns < W // 2) and the right half of its partner, at the native resolution (CutMix's
    box, before any resize). images [N, C, H, W] (any dtype), labels int64 [N]. Returns
    (composites [M, C, H, W] of images' dtype, left labels [M], right labels [M]), M =
    min(count, N). ValueError naming the fix when the images hold fewer than two classes."""
    n = len(labels)
    if n == 0 or count <= 0:
        raise ValueError("two-object composites need test images and composite_size >= 1")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(labels.device)
    ordered = labels[order]
    if bool((ordered == ordered[0]).all()):
        raise ValueError(
            f"two-object composites need test images of at least two classes (all {n} are class "
            f"{int(ordered[0])}); set composite_size = 0 or use a dataset with several classes"
        )
    # The next position (cyclic) whose class differs: over the order written twice, the first
    # class change at or after each position (a reversed running minimum), one step past it.
    doubled = torch.cat([ordered, ordered])
    positions = torch.arange(2 * n - 1, device=labels.device)
    changes = torch.where(doubled[1:] != doubled[:-1], positions + 1, 2 * n)
    next_change = changes.flip(0).cummin(0).values.flip(0)[:n]
    partner = order[next_change % n]
    first = order[: min(count, n)]
    partner = partner[: len(first)]
    half = images.shape[-1] // 2
    composites = images[first].clone()
    composites[..., half:] = images[partner][..., half:]
    return composites, labels[first], labels[partner]
