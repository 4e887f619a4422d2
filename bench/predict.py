"""Classify your own image files with a saved model (the library of `regbench predict`).

Each image (any size, any format Pillow reads) is converted to RGB and downscaled to CIFAR-10's
32x32 (Pillow's antialiased bicubic), then goes through the exact tensor path of training and
evaluation: bilinear resize to the model's input size and normalization with its mean/std. All
images go through the model in batches on the CPU (or any device). A file that cannot be read
raises a ValueError naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def load_image(path: Path, size: int = 32) -> torch.Tensor:
    """An image file -> uint8 [3, size, size]; raises ValueError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
            array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    except Exception as error:  # a decoder bug on a hostile file must not stop the other images
        raise ValueError(
            f"{path}: could not be decoded ({type(error).__name__}: {error})"
        ) from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def predict(
    model: torch.nn.Module, metadata: dict, images: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """Class probabilities float [N, K] for uint8 images [N, 3, 32, 32], through the same
    batched evaluation path as training (bench.inference.predict_logits)."""
    from bench.inference import predict_logits

    device = next(model.parameters()).device
    mean = torch.tensor(metadata["mean"], device=device)
    std = torch.tensor(metadata["std"], device=device)
    size = int(metadata["image_size"])
    logits = predict_logits(model, images.to(device), size, mean, std, batch_size)
    return logits.softmax(dim=-1).cpu()
