"""`regbench run`: train one cell and append its rows to a results folder.

Every RunConfig field has a flag, derived from the dataclass (`--field-name`, its type and
default; a new field gets a flag automatically), and `--help` shows every default. Regularizer
parameters come as repeated `--reg-param NAME=VALUE` (VALUE parsed as JSON when it can be:
numbers, lists, true/false) and `--schedule`. The configuration, data, backbone, weights and the
`--save-model` target are all checked before training starts.

Exit codes: 2 for bad input (named before any training), 1 when the cell failed or its results
could not be written (a full disk: ENOSPC/EFBIG, named with the fix), else 0. With `--save-model`
the model is saved before the cell's row is recorded, so a recorded cell always has its model; a
model that cannot be saved leaves the row unrecorded too, and rerunning the command trains again.

A cell already recorded as ok in RESULTS_DIR (same run_id) is refused before anything trains or
is written (exit 2, naming the fix: another --results-dir, or a changed setting such as --seed);
runs.csv holds one row per run_id, so there is no "retrain into the same folder". A cell recorded
as failed is trained again and its row replaced.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import sys
from pathlib import Path

from bench.config import (
    AMP_MODES,
    BN_MODES,
    CHANNELS_LAST_MODES,
    DATASETS,
    DEVICES,
    FOLLOW_SEED,
    OPTIMIZERS,
    PROTOCOLS,
    SCHEDULE_FROM,
    RunConfig,
)

PROG = "regbench run"
# Help per RunConfig field (a field missing here still gets a flag, with a generic help).
FIELD_HELP = {
    "sweep": "sweep name written to runs.csv (default: the results folder's name)",
    "sweep_cells": "cells of the sweep this run belongs to (set by regbench sweep; 0 = a "
    "single run, written empty)",
    "dataset": "synthetic is for tests only",
    "data_dir": "folder holding cifar-10-batches-py (default: $REGBENCH_DATA, else "
    "./data/cifar10, else ../shared/data/cifar10, relative to the current folder; "
    "downloaded into the first if missing)",
    "backbone": "any timm model name",
    "pretrained": "auto | none | PATH to weights",
    "protocol": "what trains: the head only, everything, frozen then unfrozen, from scratch, "
    "or head_first (linear probe, then fine-tune at a low lr; docs/protocols.md)",
    "regularizer": "see `regbench regularizers`",
    "epochs": "training epochs",
    "batch_size": "training batch size",
    "optimizer": "optimizer",
    "lr": "peak learning rate of the head",
    "backbone_lr_scale": "backbone lr = lr * this (unfrozen/staged)",
    "momentum": "SGD momentum (Nesterov)",
    "weight_decay": "weight decay",
    "warmup_epochs": "linear warmup (epochs, fractional ok), then cosine decay to 0",
    "label_smoothing": "label smoothing, equal in every arm",
    "unfreeze_at": "staged / head_first: fraction of training spent frozen",
    "bn": "backbone BatchNorm while it trains: frozen (running statistics kept), train, or auto "
    "(frozen for staged / head_first, train for unfrozen / scratch)",
    "finetune_lr_scale": "head_first: fine-tuning peak lr = lr * this (own warmup + cosine)",
    "schedule_from": "the regularizer's schedule counts progress from the start or the unfreeze",
    "trainable_stages": "only the backbone's last k stages train (0 = all)",
    "image_size": "input side in pixels after resizing on the device",
    "train_size": "training images after the validation hold-out; 0 = all",
    "val_size": "stratified validation hold-out from the training set",
    "test_size": "stratified test subset; 0 = the whole test set",
    "train_eval_size": "clean-train metrics on a fixed subset of at most this many",
    "robustness_size": "test images used for corruption / occlusion metrics",
    "seed": "run seed: head init, batch order, augmentation, regularizer draws",
    "data_seed": "fixes the validation hold-out and the train/test subsets (default: follows "
    "--seed)",
    "train_steps": "training budget in optimizer steps (0 = use --epochs); with it, --epochs is "
    "the number of evaluation periods",
    "train_per_class": "stratified training images per class (0 = use --train-size)",
    "eval_every": "epochs between evaluations (the 80%% point and the last are always evaluated)",
    "device": "where to train",
    "compile": "torch.compile the model (any device; a fresh compile per cell)",
    "amp": "autocast precision: bf16, fp16 (with gradient scaling), off (float32), or auto (bf16 "
    "on CUDA, off on the CPU)",
    "channels_last": "channels_last memory format: on, off, or auto (on for CUDA, off on the CPU)",
    "save_logits": "keep final test logits (float16) as .npz",
}
CHOICES = {"dataset": DATASETS, "protocol": PROTOCOLS, "optimizer": OPTIMIZERS, "device": DEVICES,
           "bn": BN_MODES, "schedule_from": SCHEDULE_FROM, "amp": AMP_MODES,
           "channels_last": CHANNELS_LAST_MODES}  # fmt: skip
NOT_FLAGS = ("regularizer_params", "sweep_file_sha256")  # --reg-param / --schedule; sweeps only
TYPES = {"int": int, "float": float, "str": str}
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def parse_reg_params(pairs: list[str]) -> dict[str, object]:
    """['alpha=1.0', 'mode=elem'] -> {'alpha': 1.0, 'mode': 'elem'}."""
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--reg-param {pair!r}: expected NAME=VALUE, e.g. alpha=1.0")
        try:
            params[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            params[name.strip()] = text
    return params


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field (but NOT_FLAGS), with the field's type and default."""
    defaults = RunConfig()
    for field in dataclasses.fields(RunConfig):
        if field.name in NOT_FLAGS:
            continue
        flag = "--" + field.name.replace("_", "-")
        default = FOLLOW_SEED if field.name == "data_seed" else getattr(defaults, field.name)
        help_text = FIELD_HELP.get(field.name, f"RunConfig.{field.name} (see bench/config.py)")
        if field.name == "sweep":
            parser.add_argument(flag, default=None, help=help_text)
        elif field.type == "bool":
            parser.add_argument(
                flag, default=default, action=argparse.BooleanOptionalAction, help=help_text
            )
        elif field.type in TYPES:
            parser.add_argument(
                flag,
                type=TYPES[field.type],
                default=default,
                choices=CHOICES.get(field.name),
                help=help_text,
            )
        else:
            raise TypeError(f"RunConfig.{field.name}: no flag for type {field.type!r}")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default, except where the help already explains it ("(default: ...)")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train one cell and append its rows to RESULTS_DIR.",
        formatter_class=DefaultsHelpFormatter,
    )
    add_config_flags(parser)
    add = parser.add_argument
    add("--reg-param", action="append", default=[], metavar="NAME=VALUE",
        help="a regularizer parameter, repeatable (e.g. alpha=1.0, mode=elem)")  # fmt: skip
    add("--schedule", default=None, help="constant | linear | staged (a regularizer parameter)")
    add("--results-dir", default="results/adhoc", help="folder of runs.csv etc.")
    add("--save-model", default=None, metavar="PATH",
        help="save the trained model (PATH.safetensors + PATH.json) for `regbench predict`; "
        "missing folders are created")  # fmt: skip
    add("--no-progress", action="store_true", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    params = parse_reg_params(args.reg_param)
    if args.schedule is not None:
        params["schedule"] = args.schedule
    values = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(RunConfig)
        if field.name not in NOT_FLAGS
    }
    values["sweep"] = args.sweep or Path(args.results_dir).name
    return RunConfig(**values, regularizer_params=params)


def check_save_target(path: str) -> None:
    """ValueError naming the fix when PATH.safetensors / PATH.json cannot be written: a folder
    in their place, a file where a folder must be, or a folder that is not writable."""
    from bench.model_io import model_paths

    for file in model_paths(path):
        if file.is_dir():
            raise ValueError(f"--save-model: {file} is a folder; pass another PATH")
    folder = model_paths(path)[0].parent.absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--save-model: {existing} is a file, not a folder; pass another PATH")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--save-model: folder {existing} is not writable; pass another PATH")


def refuse_recorded(results_dir: str, run_id: str) -> None:
    """ValueError naming the fix when RESULTS_DIR already records cell RUN_ID as ok. Reads only
    (a missing folder or runs.csv records nothing); called before the lock and again under it."""
    from bench.results import ResultsDir

    recorded = [r for r in ResultsDir(Path(results_dir)).runs() if r["run_id"] == run_id]
    if any(r.get("status") == "ok" for r in recorded):
        raise ValueError(
            f"cell {run_id} is already recorded as ok in {results_dir}/runs.csv; nothing was "
            "trained or written. To train it again, pass another --results-dir (e.g. "
            f"{results_dir.rstrip('/')}-2) or change a setting (e.g. --seed)"
        )


def write_failure(what: str, error: OSError) -> str:
    """One line naming a failed write and the fix."""
    reason = error.strerror or str(error)
    where = f" ({error.filename})" if error.filename else ""
    if error.errno in DISK_FULL:
        return f"{what}: the disk is full ({reason}{where}); free space and rerun the same command"
    return f"{what}: {reason}{where}; fix the folder (permissions, space) and rerun the command"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from bench import train
    from bench.cli.progress import cell_display
    from bench.results import LockError, ResultsDir

    try:
        cfg = config_from_args(args)
        train.preflight(cfg)
        if args.save_model:
            check_save_target(args.save_model)
        results = ResultsDir(Path(args.results_dir))
        refuse_recorded(args.results_dir, cfg.run_id)
    except (ValueError, FileNotFoundError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    try:
        with results.lock():
            refuse_recorded(args.results_dir, cfg.run_id)  # another process may have won
            result = train.train_cell(
                cfg,
                progress=None if args.no_progress else cell_display(cfg),
                keep_model=bool(args.save_model),
            )
            row = result.row
            saved = None
            if args.save_model and row["status"] == "ok":
                from bench.model_io import save_model

                try:  # before the row: a recorded cell always has its model
                    saved = save_model(result.model, cfg, row, args.save_model)
                except OSError as error:
                    what = (
                        f"could not save the model of cell {row['run_id']} to "
                        f"{args.save_model}, so its row was not recorded either"
                    )
                    print(f"{PROG}: error: {write_failure(what, error)}", file=sys.stderr)
                    return 1
            try:
                results.write(result)
            except OSError as error:
                what = f"could not record cell {row['run_id']} in {args.results_dir}"
                if saved:
                    what += f" (its model is saved in {saved[0]})"
                print(f"{PROG}: error: {write_failure(what, error)}", file=sys.stderr)
                return 1
    except (ValueError, FileNotFoundError, LockError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: {write_failure(args.results_dir, error)}", file=sys.stderr)
        return 1
    if row["status"] != "ok":
        print(f"{PROG}: cell {row['run_id']} failed: {row['error']}", file=sys.stderr)
        return 1
    print(
        f"{row['run_id']}  {cfg.regularizer}/{cfg.protocol}  train_acc={row['train_acc']:.4f}  "
        f"test_acc={row['test_acc']:.4f}  gap={row['gap']:+.4f}  test_ece={row['test_ece']:.4f}  "
        f"{row['train_images_per_s']:.0f} img/s  -> {args.results_dir}/runs.csv"
    )
    if saved:
        print(f"saved model: {', '.join(str(p) for p in saved)}")
    return 0
