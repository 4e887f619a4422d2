"""Inference: a model's logits for a batch of images, in eval mode, batched.

The one forward path for evaluation, shared by the cell (per-epoch and final metrics,
robustness) and the app (`regbench predict`): each batch is resized and normalized exactly like
a training batch (bench.data.to_model_input), under the cell's autocast precision and memory
format (by default what a cell on that device uses: bf16 autocast with channels_last on CUDA,
float32 on the CPU).
"""

from __future__ import annotations

import torch
from torch import nn

from bench import data

# The autocast dtype of each precision setting (bench.config.AMP_MODES; "off": float32).
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    image_size: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    batch_size: int,
    *,
    amp: str | None = None,
    channels_last: bool | None = None,
) -> torch.Tensor:
    """Logits float32 [N, K] in eval mode, batched. images: uint8 [N, 3, h, w] or float in
    [0, 1] (a perturbed copy); resized and normalized per batch like training images.
    `amp` ("bf16" | "fp16" | "off") and `channels_last`: None = bf16 and channels_last on
    CUDA, float32 on the CPU (bench.config.resolved_amp / resolved_channels_last of "auto").
    Leaves the model in eval mode (the training loop restores its protocol's modes)."""
    model.eval()
    device = images.device
    on_cuda = device.type == "cuda"
    amp = ("bf16" if on_cuda else "off") if amp is None else amp
    channels_last = on_cuda if channels_last is None else channels_last
    dtype = AUTOCAST_DTYPES.get(amp)
    outputs = []
    for part in data.batches(len(images), batch_size):
        x = data.to_model_input(images[part], image_size, mean, std, channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            outputs.append(model(x).float())
    return torch.cat(outputs) if outputs else torch.empty(0, 10, device=device)
