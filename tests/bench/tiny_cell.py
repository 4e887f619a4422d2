"""The tiny synthetic cell the training tests start from (test_resnet, 640 images, 2 epochs),
and `scripted`: validation curves for the plateau rule's decisions."""

from __future__ import annotations

from bench import train
from bench.config import RunConfig

TINY = RunConfig(
    sweep="test", dataset="synthetic", backbone="test_resnet", pretrained="none",
    protocol="unfrozen", regularizer="none", epochs=2, batch_size=64, lr=0.05,
    backbone_lr_scale=1.0, image_size=32, train_size=640, val_size=400, test_size=300,
    train_eval_size=300, robustness_size=100, device="cpu",
)  # fmt: skip


def scripted(monkeypatch, curve):
    """Make validation_accuracy return `curve`'s values in order (the last one repeated); returns
    the list of backbone_trainable flags it was called with."""
    seen = []

    def fake(cell, backbone_trainable, evaluation=None):
        seen.append(backbone_trainable)
        return curve[min(len(seen), len(curve)) - 1]

    monkeypatch.setattr(train, "validation_accuracy", fake)
    return seen
