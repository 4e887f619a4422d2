"""Inference: a model's logits for a batch of images, in eval mode, batched.

The one forward path for evaluation, shared by the cell (per-epoch and final metrics,
robustness) and the app (`regbench predict`): each batch is resized and normalized exactly like
a training batch (bench.data.to_model_input), and on CUDA runs under bf16 autocast with
channels_last.
"""

from __future__ import annotations

import torch
from torch import nn

from bench import data


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    image_size: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    batch_size: int,
) -> torch.Tensor:
    """Logits float32 [N, K] in eval mode, batched. images: uint8 [N, 3, h, w] or float in
    [0, 1] (a perturbed copy); resized and normalized per batch like training images.
    Leaves the model in eval mode (the training loop restores its protocol's modes)."""
    model.eval()
    device = images.device
    outputs = []
    for part in data.batches(len(images), batch_size):
        x = data.to_model_input(images[part], image_size, mean, std, device.type == "cuda")
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            outputs.append(model(x).float())
    return torch.cat(outputs) if outputs else torch.empty(0, 10, device=device)
