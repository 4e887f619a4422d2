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
`models/`, run when a sweep takes the folder's lock) moves the staged weights in. Models saved
before the sha256 was recorded load unchecked.

A staging folder is removed only when it is certainly one `save_model` made: a folder (not a
link) named `.tmp-<stem>-XXXXXXXX` (tempfile's 8 characters) holding nothing but `<stem>.json`
and `<stem>.safetensors` as plain files, and not held by a running save (each save holds an
exclusive flock on its staging folder). A user's file or folder that merely looks like one is
left alone. `save_model` removes the leftovers of earlier saves of the same stem.

A model JSON is untrusted input: `read_metadata` checks every field's type and range (see
METADATA_FIELDS) before anything is built from it. `backbone` must be a plain timm model name
(no `hf-hub:`/`local-dir:` prefixes, which would reach the network or read any folder), and
`source_resolution` is at most MAX_SOURCE_RESOLUTION.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

from bench.backbones import check_state_matches
from bench.config import RunConfig
from bench.files import file_hexdigest, fsync_path, read_regular
from bench.results import MODELS_DIR, register_repair

FORMAT_VERSION = 1
STAGING_PREFIX = ".tmp-"  # staging folders of save_model, beside the files they replace
# `.tmp-<stem>-` + tempfile.mkdtemp's 8 random characters: the only names save_model stages in.
STAGING_NAME = re.compile(r"\.tmp-(?P<stem>.+)-[a-z0-9_]{8}")
MAX_METADATA_BYTES = 1 << 20  # a model JSON is ~1 kB; a bigger one is not ours
# Side of the image before the model's own resize. Every image is first decoded and downscaled to
# source_resolution^2 RGB pixels on the CPU; 8000 took 2.85 GB for one image, while CIFAR-10
# models use 32 and 1024 (3 MB per image) leaves room for models trained on bigger images.
MAX_SOURCE_RESOLUTION = 1024
MAX_IMAGE_SIZE = 1024  # the model's input side (RunConfig.image_size)
MAX_CLASSES = 1000
PLAIN_MODEL_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?")  # timm name, optional tag


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
    remove_staging_leftovers(weights.parent, weights.stem)
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
        "mean": [float(v) for v in cfgp["mean"]],
        "std": [float(v) for v in cfgp["std"]],
        "run_id": row.get("run_id"),
        "regularizer": cfg.regularizer,
        "protocol": cfg.protocol,
        "test_acc": row.get("test_acc"),
        "val_acc": row.get("val_acc"),
        "temperature": row.get("temperature"),
    }
    with _staging_folder(weights.parent, weights.stem) as staging:
        staged_weights, staged_meta = staging / weights.name, staging / meta.name
        json_moved = False
        try:
            _save_weights(save_file, state, staged_weights)
            fsync_path(staged_weights)
            metadata["weights_sha256"] = file_hexdigest(staged_weights, "sha256")
            staged_meta.write_text(json.dumps(metadata, indent=2) + "\n")
            fsync_path(staged_meta)
            os.replace(staged_meta, meta)  # from here the JSON names the new weights only
            json_moved = True
            os.replace(staged_weights, weights)
            fsync_path(weights.parent)
        except BaseException:
            if not json_moved:  # nothing changed yet: drop what was staged
                _remove_staging(staging, weights.stem)
            # else it keeps the weights the JSON names, for complete_interrupted_saves
            raise
        staging.rmdir()
    return weights, meta


def _save_weights(save_file: Any, state: dict[str, Any], path: Path) -> None:
    """safetensors' save_file, whose I/O errors (a full disk) come as SafetensorError with the
    OS error in its text: raised as that OSError (errno kept), so callers name a full disk."""
    from safetensors import SafetensorError

    try:
        save_file(state, str(path))
    except SafetensorError as error:
        found = re.search(r"code: (\d+)", str(error))
        code = int(found.group(1)) if found else errno.EIO
        raise OSError(code, os.strerror(code), str(path)) from None


@contextlib.contextmanager
def _staging_folder(folder: Path, stem: str) -> Iterator[Path]:
    """A fresh `.tmp-<stem>-XXXXXXXX` folder in `folder`, exclusively flocked while in use so
    that no cleanup removes it under a running save."""
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{stem}-", dir=folder))
    handle = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield staging
    finally:
        os.close(handle)


def _staged_files(staging: Path) -> list[Path] | None:
    """The files in `staging` when it is certainly a staging folder of save_model (see the
    module docstring), else None."""
    match = STAGING_NAME.fullmatch(staging.name)
    try:
        if not match or not stat.S_ISDIR(os.lstat(staging).st_mode):
            return None
        stem = match["stem"]
        entries = list(staging.iterdir())
        allowed = {f"{stem}.safetensors", f"{stem}.json"}
        if any(e.name not in allowed or not stat.S_ISREG(os.lstat(e).st_mode) for e in entries):
            return None
    except OSError:
        return None
    return entries


def _remove_staging(staging: Path, stem: str) -> None:
    """Remove a staging folder's own files and the folder; anything else stays."""
    for name in (f"{stem}.safetensors", f"{stem}.json"):
        with contextlib.suppress(FileNotFoundError):
            (staging / name).unlink()
    with contextlib.suppress(OSError):
        staging.rmdir()


@contextlib.contextmanager
def _unless_in_use(staging: Path) -> Iterator[bool]:
    """Yields True while holding `staging`'s flock (no save is using it), else False."""
    try:
        handle = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(handle)


def remove_staging_leftovers(folder: Path, stem: str) -> list[Path]:
    """Remove the staging folders that earlier (killed) saves of `<folder>/<stem>` left, only
    those certainly made by save_model and not in use; returns the folders removed."""
    removed = []
    for staging in sorted(folder.glob(f"{STAGING_PREFIX}{glob.escape(stem)}-*")):
        match = STAGING_NAME.fullmatch(staging.name)
        if not match or match["stem"] != stem or _staged_files(staging) is None:
            continue
        with _unless_in_use(staging) as free:
            if free:
                _remove_staging(staging, stem)
                removed.append(staging)
    return removed


def complete_interrupted_saves(folder: Path) -> list[Path]:
    """Finish or discard what killed `save_model` calls left in `folder`; returns the weights
    files it completed.

    A staging folder (`.tmp-<stem>-XXXXXXXX`) holding the weights that the JSON beside it
    records (the kill came between the two moves) has them moved into place; then every staging
    folder is removed (a kill before the first move leaves only files that replace nothing).
    Only folders certainly made by save_model and not in use are touched (module docstring).
    """
    completed = []
    for staging in sorted(folder.glob(STAGING_PREFIX + "*")):
        files = _staged_files(staging)
        if files is None:
            continue  # not certainly a staging folder of save_model: a user's; left alone
        stem = STAGING_NAME.fullmatch(staging.name)["stem"]
        with _unless_in_use(staging) as free:
            if not free:
                continue
            for staged in (f for f in files if f.suffix == ".safetensors"):
                weights, meta = model_paths(folder / staged.name)
                try:  # a regular file only (a FIFO planted there would block the lock)
                    text = read_regular(meta, MAX_METADATA_BYTES, follow_links=False)
                    recorded = json.loads(text).get("weights_sha256")
                except (OSError, ValueError, AttributeError):  # no JSON, not JSON, not a dict
                    continue
                if not isinstance(recorded, str) or file_hexdigest(staged, "sha256") != recorded:
                    continue  # the weights of a save that never reached its JSON move
                if not weights.is_file() or file_hexdigest(weights, "sha256") != recorded:
                    os.replace(staged, weights)
                    completed.append(weights)
            _remove_staging(staging, stem)
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
        if not file.exists():
            raise FileNotFoundError(
                f"model file {file} does not exist (a saved model is a .safetensors file and a "
                "JSON file of the same name; create one with `regbench run --save-model PATH`)"
            )
        if not file.is_file():  # a FIFO would block the read, /dev/zero never end it
            kind = "folder" if file.is_dir() else "FIFO, device or socket"
            raise ValueError(
                f"model file {file} is a {kind}, not a regular file; pass the .safetensors and "
                ".json files written by `regbench run --save-model PATH`"
            )
    metadata = read_metadata(meta)
    state = read_weights(weights, meta, metadata.get("weights_sha256"))
    try:
        model = timm.create_model(
            metadata["backbone"], pretrained=False, num_classes=metadata["num_classes"]
        )
    except Exception as error:  # noqa: BLE001 - a checked name timm still cannot build
        raise ValueError(
            f"model metadata {meta}: backbone {metadata['backbone']!r} could not be built "
            f"({type(error).__name__}: {error}); save the model again"
        ) from None
    hint = f"wrong backbone in {meta.name}, or weights of another model?"
    check_state_matches(model, state, f"model weights {weights}", hint)
    model.load_state_dict(state, strict=True)
    return model.eval(), metadata


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _plain_text(value: Any, longest: int = 100) -> bool:
    """A non-empty printable string (no control characters, no line breaks) of <= longest."""
    return isinstance(value, str) and 0 < len(value) <= longest and value.isprintable()


def _plain_backbone(value: Any) -> bool:
    """A timm model name (optionally `.tag`) of timm's registry: never `hf-hub:` / `local-dir:`
    or a path, which would make timm reach the network or read a folder."""
    import timm

    if not isinstance(value, str) or len(value) > 200 or not PLAIN_MODEL_NAME.fullmatch(value):
        return False
    return value.split(".")[0] in timm.list_models()


def _three(check: Any) -> Any:
    return lambda v: isinstance(v, list) and len(v) == 3 and all(check(x) for x in v)


def _optional(check: Any) -> Any:
    return lambda v: v is None or check(v)


# Every field a model JSON may hold: (required, check, what it must be).
METADATA_FIELDS: dict[str, tuple[bool, Any, str]] = {
    "format": (True, lambda v: v == "regbench-model", '"regbench-model"'),
    "format_version": (True, lambda v: _is_int(v) and v == FORMAT_VERSION,
                       f"{FORMAT_VERSION} (this version of regbench)"),
    "backbone": (True, _plain_backbone,
                 "a plain timm model name from timm.list_models() (no ':' or '/')"),
    "num_classes": (True, lambda v: _is_int(v) and 2 <= v <= MAX_CLASSES,
                    f"an integer in 2..{MAX_CLASSES}"),
    "class_names": (True, lambda v: isinstance(v, list) and all(_plain_text(x) for x in v)
                    and len(set(v)) == len(v),
                    "a list of distinct printable names of 1..100 characters"),
    "image_size": (True, lambda v: _is_int(v) and 8 <= v <= MAX_IMAGE_SIZE,
                   f"an integer in 8..{MAX_IMAGE_SIZE}"),
    "source_resolution": (False, lambda v: _is_int(v) and 8 <= v <= MAX_SOURCE_RESOLUTION,
                          f"an integer in 8..{MAX_SOURCE_RESOLUTION} (each image is decoded "
                          "to this side first; bigger ones take gigabytes)"),
    "mean": (True, _three(lambda x: _is_number(x) and 0 <= x <= 1),
             "a list of 3 finite numbers in 0..1"),
    "std": (True, _three(lambda x: _is_number(x) and 1e-3 <= x <= 10),
            "a list of 3 finite numbers in 0.001..10"),
    "run_id": (False, _optional(lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-z_-]{1,64}", v)),
               "null or a run id (letters, digits, _ and -)"),
    "regularizer": (False, _optional(_plain_text), "null or a printable name"),
    "protocol": (False, _optional(_plain_text), "null or a printable name"),
    "test_acc": (False, _optional(lambda v: _is_number(v) and 0 <= v <= 1), "null or 0..1"),
    "val_acc": (False, _optional(lambda v: _is_number(v) and 0 <= v <= 1), "null or 0..1"),
    "temperature": (False, _optional(lambda v: _is_number(v) and 0.01 <= v <= 100),
                    "null or a number in 0.01..100"),
    "weights_sha256": (False, _optional(lambda v: isinstance(v, str)
                                         and re.fullmatch(r"[0-9a-f]{64}", v)),
                       "null or 64 lowercase hex digits"),
}  # fmt: skip


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"key {sorted(k for k in keys if keys.count(k) > 1)[0]!r} repeated")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def read_metadata(meta: Path) -> dict[str, Any]:
    """A saved model's JSON, every field type- and range-checked (METADATA_FIELDS); unknown keys
    are refused. ValueError naming the file, the field and the fix."""
    again = "save the model again with `regbench run --save-model PATH`"
    try:
        size = meta.stat().st_size
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"{size} bytes, a model JSON is a few kB")
        text = meta.read_bytes().decode("utf-8")
        metadata = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (OSError, ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise ValueError(f"model metadata {meta} is not valid JSON ({reason}); {again}") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"model metadata {meta} is not a regbench model file (not a JSON object)")
    if metadata.get("format") != "regbench-model":
        raise ValueError(
            f'model metadata {meta} is not a regbench model file ("format" is not '
            f'"regbench-model"); pass the JSON written by `regbench run --save-model PATH`'
        )
    unknown = sorted(set(metadata) - set(METADATA_FIELDS))
    if unknown:
        shown = ", ".join(repr(k)[:40] for k in unknown[:5])
        raise ValueError(f"model metadata {meta}: unknown key(s) {shown}; {again}")
    for name, (required, check, allowed) in METADATA_FIELDS.items():
        if name not in metadata:
            if required:
                raise ValueError(f"model metadata {meta}: {name!r} is missing; {again}")
            continue
        if not check(metadata[name]):
            shown = repr(metadata[name])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ValueError(
                f"model metadata {meta}: {name}={shown} is invalid; it must be {allowed}; {again}"
            )
    if len(metadata["class_names"]) != metadata["num_classes"]:
        raise ValueError(
            f"model metadata {meta}: class_names lists {len(metadata['class_names'])} names but "
            f"num_classes is {metadata['num_classes']}; {again}"
        )
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
