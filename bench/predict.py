"""Classify your own image files with a saved model (the library of `regbench predict`).

Image files are untrusted input. `load_image` decodes only the usual photo formats (IMAGE_FORMATS:
Pillow never hands another format, e.g. EPS to Ghostscript, to its decoder), refuses anything but
a regular file before opening it (a FIFO would block forever, a device never end) and images over
MAX_IMAGE_PIXELS (Pillow's decompression-bomb warning is an error too). Each image is converted
to RGB and downscaled to the model's source resolution (CIFAR-10's 32x32; Pillow's antialiased
bicubic), then goes through the exact tensor path of training and evaluation: bilinear resize to
the model's input size and normalization with its mean/std. All images go through the model in
batches on the CPU (or any device). A file that cannot be used raises an ImageError naming it.

Probabilities are calibrated with the temperature saved with the model (fitted on the validation
split) unless `temperature=None` is passed: softmax(logits / T).
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import torch

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # Pillow's names of the formats
MAX_IMAGE_PIXELS = 40_000_000  # 40 megapixels: any photo; bigger is refused before decoding
MAX_FILE_BYTES = 200 * 1024 * 1024  # a 40-megapixel image fits in far less, even as BMP


class ImageError(ValueError):
    """An image file that cannot be classified; the message names the file and the problem."""


def load_image(path: Path, size: int = 32) -> torch.Tensor:
    """An image file -> uint8 [3, size, size]; raises ImageError naming the file."""
    from PIL import Image, UnidentifiedImageError

    def refuse(reason: str) -> ImageError:
        return ImageError(f"{path}: {reason}")

    try:
        info = os.stat(path)  # before opening: opening a FIFO would block
    except FileNotFoundError:
        raise refuse("no such file") from None
    except OSError as error:
        raise refuse(f"cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):
        raise refuse("not a regular file (a folder, FIFO or device); pass image files")
    if info.st_size > MAX_FILE_BYTES:
        raise refuse(f"{info.st_size} bytes is too big for an image (at most {MAX_FILE_BYTES})")
    try:
        # O_NONBLOCK: should the file have been swapped for a FIFO since the stat, the open does
        # not block and the fstat below refuses it.
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise refuse(f"cannot be read ({error.strerror or error})") from None
    with os.fdopen(handle, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise refuse("not a regular file (a folder, FIFO or device); pass image files")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(file, formats=IMAGE_FORMATS) as image:
                    width, height = image.size
                    if width * height > MAX_IMAGE_PIXELS:
                        raise refuse(
                            f"{width}x{height} pixels is too big (at most "
                            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels); downscale it first"
                        )
                    image = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
                    array = np.asarray(image, dtype=np.uint8)
        except ImageError:
            raise
        except UnidentifiedImageError:
            formats = ", ".join(IMAGE_FORMATS)
            raise refuse(f"not a readable image (not one of {formats})") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise refuse(f"too big to decode safely ({error})") from None
        except OSError as error:
            raise refuse(f"not a readable image ({error})") from None
        except Exception as error:  # noqa: BLE001 - a decoder bug must not stop the other images
            raise refuse(f"could not be decoded ({type(error).__name__}: {error})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def predict(
    model: torch.nn.Module,
    metadata: dict,
    images: torch.Tensor,
    batch_size: int = 64,
    temperature: float | None = None,
) -> torch.Tensor:
    """Class probabilities float [N, K] for uint8 images [N, 3, S, S], through the same batched
    evaluation path as training (bench.inference.predict_logits): softmax(logits / temperature),
    raw softmax when `temperature` is None."""
    from bench.inference import predict_logits

    device = next(model.parameters()).device
    mean = torch.tensor(metadata["mean"], device=device)
    std = torch.tensor(metadata["std"], device=device)
    size = int(metadata["image_size"])
    logits = predict_logits(model, images.to(device), size, mean, std, batch_size)
    if temperature is not None:
        logits = logits / float(temperature)
    return logits.softmax(dim=-1).cpu()
