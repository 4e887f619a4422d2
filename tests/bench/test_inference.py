"""bench.inference: the batched eval-mode forward pass of the cell and the app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import timm
import torch

from bench.inference import predict_logits


def test_logits_are_batch_size_independent_and_leave_eval_mode():
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=10).train()
    images = torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    whole = predict_logits(model, images, 32, mean, std, batch_size=64)
    assert whole.shape == (7, 10) and whole.dtype == torch.float32
    assert not model.training
    assert torch.allclose(
        predict_logits(model, images, 32, mean, std, batch_size=3), whole, atol=1e-5
    )
    as_float = predict_logits(model, images.float() / 255, 32, mean, std, batch_size=64)
    assert torch.allclose(as_float, whole, atol=1e-5)  # uint8 and [0, 1] floats alike
    assert predict_logits(model, images[:0], 32, mean, std, batch_size=4).shape == (0, 10)


def test_the_app_does_not_import_the_trainer() -> None:
    code = (
        "import sys, torch, bench.predict; "
        "bench.predict.predict(torch.nn.Linear(1, 1), {'mean': [0.5] * 3, 'std': [0.5] * 3, "
        "'image_size': 8}, torch.zeros(0, 3, 8, 8, dtype=torch.uint8)); "
        "assert 'bench.train' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
