"""Save a trained cell's model for reuse, and load it back safely.

A saved model is two files side by side: `<stem>.safetensors` (the state dict; safetensors
cannot carry code, so loading an untrusted file is safe) and `<stem>.json` (what rebuilding and
preprocessing need: backbone, image size, normalization, class names, run_id, test accuracy).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from bench.backbones import check_state_matches
from bench.config import RunConfig

FORMAT_VERSION = 1


def model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, metadata) for a path given with or without an extension."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    # Append, never replace, a suffix: "lite0_lr0.05" must not become "lite0_lr0".
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_model(
    model: nn.Module, cfg: RunConfig, row: dict[str, Any], path: str | os.PathLike
) -> tuple[Path, Path]:
    """Write the weights and the rebuild metadata; returns both paths."""
    from safetensors.torch import save_file

    from bench.data import CLASSES

    weights, meta = model_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights))
    cfgp = model.pretrained_cfg
    metadata = {
        "format": "regbench-model",
        "format_version": FORMAT_VERSION,
        "backbone": cfg.backbone,
        "num_classes": len(CLASSES),
        "class_names": list(CLASSES),
        "image_size": cfg.image_size,
        "source_resolution": 32,
        "mean": list(cfgp["mean"]),
        "std": list(cfgp["std"]),
        "run_id": row.get("run_id"),
        "regularizer": cfg.regularizer,
        "protocol": cfg.protocol,
        "test_acc": row.get("test_acc"),
        "val_acc": row.get("val_acc"),
        "temperature": row.get("temperature"),
    }
    meta.write_text(json.dumps(metadata, indent=2) + "\n")
    return weights, meta


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a saved model (eval mode, CPU) and its metadata.

    Raises ValueError/FileNotFoundError naming the file and the problem: missing files,
    unreadable or truncated weights, metadata of another format, weights of another backbone.
    """
    import timm
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, meta = model_paths(path)
    for file in (weights, meta):
        if not file.is_file():
            raise FileNotFoundError(
                f"model file {file} does not exist (a saved model is a .safetensors file and a "
                "JSON file of the same name; create one with `regbench run --save-model PATH`)"
            )
    try:
        metadata = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"model metadata {meta} is not valid JSON ({error})") from None
    required = ("backbone", "num_classes", "class_names", "image_size", "mean", "std")
    if not isinstance(metadata, dict):
        raise ValueError(f"model metadata {meta} is not a regbench model file (not a JSON object)")
    missing = [key for key in required if key not in metadata]
    if metadata.get("format") != "regbench-model" or missing:
        raise ValueError(f"model metadata {meta} is not a regbench model file (missing {missing})")
    valid = (
        isinstance(metadata["num_classes"], int)
        and isinstance(metadata["class_names"], list)
        and len(metadata["class_names"]) == metadata["num_classes"]
        and isinstance(metadata["image_size"], int)
        and 8 <= metadata["image_size"] <= 1024
        and all(isinstance(v, list) and len(v) == 3 for v in (metadata["mean"], metadata["std"]))
    )
    if not valid:
        raise ValueError(
            f"model metadata {meta} is inconsistent (class_names must list num_classes names, "
            "image_size lie in 8..1024, mean/std have 3 values): save the model again"
        )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(
            f"model weights {weights} could not be read ({error}); the file is truncated or "
            "not a safetensors file: save the model again"
        ) from None
    try:
        model = timm.create_model(
            metadata["backbone"], pretrained=False, num_classes=int(metadata["num_classes"])
        )
    except RuntimeError as error:
        raise ValueError(f"model metadata {meta}: unknown backbone ({error})") from None
    hint = f"wrong backbone in {meta.name}, or weights of another model?"
    check_state_matches(model, state, f"model weights {weights}", hint)
    model.load_state_dict(state, strict=True)
    return model.eval(), metadata
