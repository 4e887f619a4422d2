"""Save a trained cell's model for reuse, and load it back safely.

A saved model is two files side by side: `<stem>.safetensors` (the state dict; safetensors
cannot carry code, so loading an untrusted file is safe) and `<stem>.json` (what rebuilding and
preprocessing need: backbone, image size, normalization, class names, run_id, test accuracy, and
`weights_sha256`, the sha256 of the weights file it belongs to).

Saving over an existing model is safe under a kill at any moment: both files are written and
fsynced in a staging folder `<folder>/.tmp-<stem>-*`, then the JSON is moved into place, then the
weights (each `os.replace`, atomic). A kill between the two moves leaves the new JSON beside the
old weights; `load_model` refuses that pair because the weights' sha256 is not the one the JSON
records, and `complete_interrupted_saves` (registered as the repair of a results folder's
`models/`, run when a sweep takes the folder's lock) moves the staged weights in. Models saved before the sha256 was recorded load unchecked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from bench.backbones import check_state_matches
from bench.config import RunConfig
from bench.files import file_hexdigest, fsync_path
from bench.results import MODELS_DIR, register_repair

FORMAT_VERSION = 1
STAGING_PREFIX = ".tmp-"  # staging folders of save_model, beside the files they replace


def model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, metadata) for a path given with or without an extension."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    # Append, never replace, a suffix: "lite0_lr0.05" must not become "lite0_lr0".
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_model(
    model: nn.Module, cfg: RunConfig, row: dict[str, Any], path: str | os.PathLike
) -> tuple[Path, Path]:
    """Write the weights and the rebuild metadata (replacing a model saved there before, safely
    under a kill: see the module docstring); returns both paths."""
    from safetensors.torch import save_file

    from bench.data import CLASSES

    weights, meta = model_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{weights.stem}-", dir=weights.parent))
    staged_weights, staged_meta = staging / weights.name, staging / meta.name
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
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
    json_moved = False
    try:
        save_file(state, str(staged_weights))
        fsync_path(staged_weights)
        metadata["weights_sha256"] = file_hexdigest(staged_weights, "sha256")
        staged_meta.write_text(json.dumps(metadata, indent=2) + "\n")
        fsync_path(staged_meta)
        os.replace(staged_meta, meta)  # from here the JSON names the new weights only
        json_moved = True
        os.replace(staged_weights, weights)
        fsync_path(weights.parent)
        staging.rmdir()
    except Exception:
        if not json_moved:  # nothing changed yet: drop the staging folder
            shutil.rmtree(staging, ignore_errors=True)
        # else it keeps the weights the JSON names, for complete_interrupted_saves
        raise
    return weights, meta


def complete_interrupted_saves(folder: Path) -> list[Path]:
    """Finish or discard what killed `save_model` calls left in `folder`; returns the weights
    files it completed.

    A staging folder (`.tmp-*`) holding the weights that the JSON beside it records (the kill
    came between the two moves) has them moved into place; then every staging folder is removed
    (a kill before the first move leaves only files that replace nothing). Run it only while no
    save into `folder` can be running, i.e. under the results folder's lock.
    """
    completed = []
    for staging in sorted(folder.glob(STAGING_PREFIX + "*")):
        if not staging.is_dir():
            continue
        for staged in staging.glob("*.safetensors"):
            weights, meta = model_paths(folder / staged.name)
            try:
                recorded = json.loads(meta.read_text()).get("weights_sha256")
            except (OSError, ValueError, AttributeError):  # no JSON, not JSON, not an object
                continue
            if not recorded or file_hexdigest(staged, "sha256") != recorded:
                continue  # the weights of a save that never reached its JSON move
            if not weights.is_file() or file_hexdigest(weights, "sha256") != recorded:
                os.replace(staged, weights)
                completed.append(weights)
        shutil.rmtree(staging, ignore_errors=True)
    return completed


def _repair_kept_models(folder: Path) -> list[str]:
    """The results folder's repair of its kept models (bench.results.register_repair)."""
    return [
        f"{weights}: completed the save of this kept model, which a killed sweep had left half done"
        for weights in complete_interrupted_saves(folder)
    ]


register_repair(MODELS_DIR, _repair_kept_models)


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a saved model (eval mode, CPU) and its metadata.

    Raises ValueError/FileNotFoundError naming the file and the problem: missing files,
    unreadable or truncated weights, metadata of another format, weights of another backbone,
    weights that are not the ones the metadata records (sha256; checked when recorded).
    """
    import timm

    weights, meta = model_paths(path)
    for file in (weights, meta):
        if not file.is_file():
            raise FileNotFoundError(
                f"model file {file} does not exist (a saved model is a .safetensors file and a "
                "JSON file of the same name; create one with `regbench run --save-model PATH`)"
            )
    metadata = read_metadata(meta)
    state = read_weights(weights, meta, metadata.get("weights_sha256"))
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


def read_metadata(meta: Path) -> dict[str, Any]:
    """A saved model's JSON, checked; ValueError naming the file and the problem."""
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
    recorded = metadata.get("weights_sha256")
    if recorded is not None and not isinstance(recorded, str):
        raise ValueError(f"model metadata {meta}: weights_sha256 is not a string; save it again")
    return metadata


def read_weights(weights: Path, meta: Path, recorded: str | None) -> dict[str, Any]:
    """The state dict in `weights`, checked against the sha256 `recorded` by the JSON `meta`
    (when it records one); ValueError naming the file and the problem."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    def unreadable(error: Exception) -> ValueError:
        return ValueError(
            f"model weights {weights} could not be read ({error}); the file is truncated or "
            "not a safetensors file: save the model again"
        )

    try:
        blob = weights.read_bytes()  # hashed and parsed from the same bytes
    except OSError as error:
        raise unreadable(error) from None
    try:
        state = load_safetensors(blob)
    except (SafetensorError, ValueError) as error:
        raise unreadable(error) from None
    actual = hashlib.sha256(blob).hexdigest()
    if recorded is not None and actual != recorded:
        raise ValueError(
            f"model weights {weights} are not the ones {meta.name} describes (sha256 "
            f"{actual[:16]}..., the JSON records {recorded[:16]}...): the two files come from "
            "different saves (e.g. a save killed between writing them) or the weights were "
            "changed. Save the model again; for a sweep's kept model (models/best-<protocol>), "
            "running the sweep again on the same results folder completes an interrupted save"
        )
    return state
