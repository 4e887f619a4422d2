"""Sweep files (TOML) -> validated cells -> an executor -> one results folder.

    regbench sweep run SWEEP.toml [--results-dir DIR] [--executor local|ray] [--dry-run] ...
    regbench sweep status SWEEP.toml [--results-dir DIR]

A sweep file has a `name`, `[defaults]` (any RunConfig field), `[axes]` whose lists are crossed
(`[[axes.arm]]` tables pair a regularizer with its parameters) and optional `[[extra]]` cells
(defaults + their own keys, not crossed). The format is documented, with an example, in
docs/sweeps.md. Everything is checked before the first cell runs: a mistake names the file, the
key and the allowed values.

Cells are identified by RunConfig.run_id, so rerunning a sweep skips what runs.csv already holds
(ok or failed); --retry-failed reruns the failed ones.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import RunConfig, check_config, config_fields, from_dict

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TOP_LEVEL_KEYS = ("name", "description", "defaults", "axes", "extra")
ARM_KEYS = ("regularizer", "params")
# Fields a sweep file may not set: the sweep name comes from `name`.
RESERVED_FIELDS = ("sweep",)
# Fields that identify the input of bench.train.preflight (data + weights checks).
PREFLIGHT_FIELDS = (
    "dataset", "data_dir", "backbone", "pretrained", "train_size", "val_size", "test_size",
)  # fmt: skip


class SweepError(ValueError):
    """A sweep file that cannot run; the message names the file and the key."""


class PreflightError(RuntimeError):
    """bench.train.preflight refused a cell (missing data, unreadable weights, ...)."""


@dataclass(frozen=True)
class Sweep:
    name: str
    path: Path
    cells: list[RunConfig]  # in a stable order: the first axis varies slowest, then extras
    labels: list[str]  # per cell: where it comes from, e.g. "arm=cutmix(alpha=1.0) protocol=frozen"
    description: str = ""


# ---------------------------------------------------------------------------------------------
# Loading and validation


def load_sweep(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> Sweep:
    """Read, expand and validate a sweep file. `overrides` (e.g. data_dir, device from the
    command line) are applied to every cell. Raises SweepError naming the file and the key."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            doc = tomllib.load(handle)
    except FileNotFoundError:
        raise SweepError(f"{path}: no such sweep file") from None
    except tomllib.TOMLDecodeError as error:
        raise SweepError(_syntax_error(path, error)) from None

    def fail(key: str, message: str) -> SweepError:
        return _fail(path, key, message)

    unknown = [key for key in doc if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise fail(unknown[0], f"unknown top-level key; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise fail("name", "a non-empty string without '/' is required (the sweep's name)")
    description = doc.get("description", "")
    defaults = _table(doc.get("defaults", {}), "defaults", fail)
    axes = _table(doc.get("axes", {}), "axes", fail)
    extras = doc.get("extra", [])
    if not isinstance(extras, list) or not all(isinstance(e, dict) for e in extras):
        raise fail("extra", "must be an array of tables ([[extra]])")
    if not axes and not extras:
        raise fail("axes", "the sweep has no cells: give [axes] and/or [[extra]] cells")
    overrides = dict(overrides or {})

    base = _config(defaults, "defaults", {}, fail)
    _check(base, "defaults", fail)

    # Each axis: a non-empty list of distinct values, each checked on top of the defaults.
    # A value is a scalar (axes.FIELD = [...]) or a table of fields set together ([[axes.NAME]],
    # e.g. an arm = regularizer + params, or a data regime = train_size + epochs).
    choices: list[list[tuple[dict[str, Any], str]]] = []
    owner: dict[str, str] = {}  # field -> the axis that sets it
    for axis, values in axes.items():
        key = f"axes.{axis}"
        if not isinstance(values, list):
            raise fail(key, f"must be a list of values, got {values!r}")
        if not values:
            raise fail(key, "is empty; give at least one value")
        tables = [isinstance(value, dict) for value in values]
        if any(tables) and not all(tables):
            raise fail(key, "mixes tables and plain values; use one kind")
        if all(tables):
            if axis == "regularizer_params":
                raise fail(key, "give regularizer parameters as [[axes.arm]] tables")
            allowed = ARM_KEYS if axis == "arm" else None
            changes = [_change(v, f"{key}[{i}]", fail, allowed) for i, v in enumerate(values)]
            labels = [f"{axis}={_label(change)}" for change in changes]
        else:
            _known_field(axis, key, fail)
            if axis == "regularizer_params":
                raise fail(key, "give regularizer parameters as [[axes.arm]] tables")
            changes = [_change({axis: v}, f"{key}[{i}]", fail) for i, v in enumerate(values)]
            labels = [f"{axis}={value}" for value in values]
        for field in {f for change in changes for f in change}:
            if field in owner:
                raise fail(key, f"sets {field!r}, which axes.{owner[field]} already sets")
            owner[field] = axis
        seen: dict[str, int] = {}
        for i, change in enumerate(changes):
            where = f"{key}[{i}]"
            _check(_config(defaults, where, change, fail), where, fail)
            blob = json.dumps(change, sort_keys=True, default=str)
            if blob in seen:
                raise fail(where, f"duplicate of {key}[{seen[blob]}] ({labels[i]})")
            seen[blob] = i
        choices.append(list(zip(changes, labels, strict=True)))

    cells: list[RunConfig] = []
    cell_labels: list[str] = []
    for combo in itertools.product(*choices) if choices else ():
        change = {field: value for part, _ in combo for field, value in part.items()}
        cells.append(_config(defaults, "axes", {**change, **overrides}, fail))
        cell_labels.append(" ".join(label for _, label in combo))
    for i, extra in enumerate(extras):
        where = f"extra[{i}]"
        change = _change(extra, where, fail)
        cells.append(_config(defaults, where, {**change, **overrides}, fail))
        cell_labels.append(f"{where} {_label(change)}")

    cells = [cfg.replace(sweep=name) for cfg in cells]
    first: dict[str, int] = {}
    for i, cfg in enumerate(cells):
        _check(cfg, f"cell {i} ({cell_labels[i]})", fail)
        if cfg.run_id in first:
            j = first[cfg.run_id]
            raise fail(
                "cells",
                f"duplicate cells: cell {j} ({cell_labels[j]}) and cell {i} ({cell_labels[i]}) "
                f"have the same configuration (run_id {cfg.run_id})",
            )
        first[cfg.run_id] = i
    _check_backbones(cells, cell_labels, fail)
    return Sweep(name, path, cells, cell_labels, str(description))


def _syntax_error(path: Path, error: Exception) -> str:
    """'<file>:<line>: TOML syntax error: ...' with the offending line (tomllib only says
    "(at line L, column C)" or "(at end of document)" in its message)."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() or [""]
    found = re.search(r"at line (\d+)", str(error))
    line = int(found.group(1)) if found else len(lines)
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    return f"{path}:{line}: TOML syntax error: {error}" + (f"\n    {text}" if text else "")


def _table(value: Any, key: str, fail) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(key, f"must be a table ([{key}]), got {value!r}")
    return value


def _known_field(name: str, key: str, fail) -> None:
    fields = [f for f in config_fields() if f not in RESERVED_FIELDS]
    if name in RESERVED_FIELDS:
        raise fail(key, "set by the sweep's `name`; remove it")
    if name not in fields:
        hint = difflib.get_close_matches(name, fields, n=1)
        raise fail(
            key,
            f"unknown key {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; allowed: {', '.join(fields)}",
        )


def _change(table: Any, key: str, fail, allowed: tuple[str, ...] | None = None) -> dict:
    """Fields one axis value / extra cell sets. `params` is short for regularizer_params; a
    table that names a regularizer without params resets them (parameters belong to it)."""
    if not isinstance(table, dict):
        raise fail(key, f"must be a table, got {table!r}")
    change = dict(table)
    for name in change:
        if allowed is not None and name not in allowed:
            raise fail(f"{key}.{name}", f"unknown key; allowed: {', '.join(allowed)}")
        if name != "params":
            _known_field(name, f"{key}.{name}", fail)
    if allowed == ARM_KEYS and "regularizer" not in change:
        raise fail(key, "an arm needs `regularizer = NAME` (and optionally params = { ... })")
    if "params" in change:
        if "regularizer_params" in change:
            raise fail(key, "give either params or regularizer_params, not both")
        change["regularizer_params"] = change.pop("params")
    if "regularizer" in change:
        change.setdefault("regularizer_params", {})
    if not isinstance(change.get("regularizer_params", {}), dict):
        raise fail(f"{key}.params", "must be a table, e.g. params = { alpha = 1.0 }")
    return change


def _label(change: dict[str, Any]) -> str:
    """A short human label of a table value: cutmix(alpha=1.0,schedule=staged) or (a=1,b=2)."""
    params = change.get("regularizer_params", {})
    inner = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    others = ",".join(
        f"{k}={v}" for k, v in change.items() if k not in ("regularizer", "regularizer_params")
    )
    name = f"{change['regularizer']}({inner})" if inner else change.get("regularizer", "")
    return " ".join(part for part in (name, f"({others})" if others else "") if part)


def _fail(path: Path, key: str, message: str) -> SweepError:
    return SweepError(f"{path}: {key}: {message}")


def _config(defaults: dict[str, Any], where: str, change: dict[str, Any], fail) -> RunConfig:
    for key in defaults:
        _known_field(key, f"defaults.{key}", fail)
    try:  # bench.config's messages start with `where` (the TOML key)
        return from_dict({**defaults, **change}, where=where)
    except ValueError as error:
        raise fail(where, str(error).removeprefix(f"{where}: ")) from None


def _check(cfg: RunConfig, where: str, fail) -> None:
    try:
        check_config(cfg, where=where)
    except ValueError as error:
        raise fail(where, str(error).removeprefix(f"{where}: ")) from None


def _check_backbones(cells: list[RunConfig], labels: list[str], fail) -> None:
    """Every backbone must be a timm model name (timm's list; nothing is built or downloaded)."""
    names = {}
    for cfg, label in zip(cells, labels, strict=True):
        names.setdefault(cfg.backbone, label)
    import timm  # only here: listing models is cheap, but importing timm takes a second

    for name, label in names.items():
        if name.startswith(("hf-hub:", "hf_hub:")) or timm.is_model(name):
            continue
        hint = difflib.get_close_matches(name, timm.list_models(), n=5)
        raise fail(
            "backbone",
            f"unknown timm model {name!r} (first used by {label}); "
            + (f"close matches: {', '.join(hint)}; " if hint else "")
            + "allowed: any name in timm.list_models()",
        )


# ---------------------------------------------------------------------------------------------
# Cost model and status


# Effective multiply-adds per second by device and backbone. Measured where a backbone is named:
# cpu from the cpu-quick sweep (tf_efficientnet_lite0 at 32 px, 2 idle cores; small images use a
# CPU poorly), cuda from the gpu-subset sweep and the throughput table in docs/measurements
# (one H100, bf16 + channels_last; the depthwise convolutions of EfficientNet-Lite keep it far
# below resnet50's rate). "default" is a guess for other backbones. Only for --dry-run and the
# ETA before any cell finished: finished cells' measured times rescale it.
MACS_PER_S = {
    "cpu": {"default": 4.0e9, "tf_efficientnet_lite0": 6.0e9},  # cpu-quick: 34.5 min, 2 cores
    "cuda": {"default": 2.0e13, "tf_efficientnet_lite0": 5.4e12, "resnet50": 4.0e13},
}
# Multiply-adds of one forward pass at 224 px (timm / papers), scaled by (image_size / 224)^2.
BACKBONE_GMACS_224 = {
    "resnet50": 4.1, "resnet18": 1.8, "resnet10t": 1.1, "tf_efficientnet_lite0": 0.4,
    "efficientnet_b0": 0.4, "mobilenetv3_small_100": 0.06, "convnext_tiny": 4.5,
    "vit_small_patch16_224": 4.6,
}  # fmt: skip
DEFAULT_GMACS_224 = 2.0
CELL_OVERHEAD_S = {"cpu": 5.0, "cuda": 2.0}  # data + model set-up per cell
COMPILE_S = 40.0  # torch.compile of a fresh model on CUDA (a guess; compile = true only)
CIFAR10_TRAIN, CIFAR10_TEST = 50000, 10000
ROBUSTNESS_PASSES = 6  # forward passes over the robustness subset: occlusion + 5 corruptions


def estimate_seconds(cfg: RunConfig, device: str) -> float:
    """A rough cost model of one cell, in forward passes of one image: a training image costs
    3 with the backbone trained, 1 when frozen (backward through the head only); every epoch
    evaluates the clean-train, validation and test subsets; at the end the flip-rate pass over
    the test set and ROBUSTNESS_PASSES over the robustness subset."""
    arch = cfg.backbone.split(".")[0]
    macs = BACKBONE_GMACS_224.get(arch, DEFAULT_GMACS_224) * 1e9
    macs *= (cfg.image_size / 224) ** 2
    train = cfg.train_size or (CIFAR10_TRAIN - cfg.val_size)
    test = cfg.test_size or CIFAR10_TEST
    frozen_fraction = {"frozen": 1.0, "staged": cfg.unfreeze_at}.get(cfg.protocol, 0.0)
    step_units = frozen_fraction * 1.0 + (1 - frozen_fraction) * 3.0
    per_epoch = train * step_units + (min(cfg.train_eval_size, train) + cfg.val_size + test)
    robust = min(cfg.robustness_size or test, test)
    forwards = cfg.epochs * per_epoch + test + robust * ROBUSTNESS_PASSES
    rate = MACS_PER_S[device].get(arch, MACS_PER_S[device]["default"])
    setup = CELL_OVERHEAD_S[device] + (COMPILE_S if cfg.compile and device == "cuda" else 0.0)
    return setup + forwards * macs / rate


def guess_device(cells: Iterable[RunConfig]) -> str:
    wanted = {cfg.device for cfg in cells}
    if wanted == {"cpu"}:
        return "cpu"
    if "cuda" in wanted:
        return "cuda"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Status:
    done: list[RunConfig]
    failed: list[RunConfig]
    todo: list[RunConfig]
    errors: dict[str, str]  # run_id -> error of the failed cells
    eta_s: float  # remaining seconds (measured cell times rescale the cost model)
    measured: bool  # whether eta_s is calibrated on finished cells
    estimates: dict[str, float]  # run_id -> estimated seconds of each cell


def sweep_status(sweep: Sweep, rows: list[dict[str, str]], device: str) -> Status:
    by_id = {row["run_id"]: row for row in rows}
    done, failed, todo = [], [], []
    for cfg in sweep.cells:
        row = by_id.get(cfg.run_id)
        (todo if row is None else failed if row.get("status") == "failed" else done).append(cfg)
    estimates = {cfg.run_id: estimate_seconds(cfg, device) for cfg in sweep.cells}
    # Calibrate the model on the cells that finished: measured total / predicted total.
    measured, predicted = 0.0, 0.0
    for cfg in done + failed:
        try:
            wall = float(by_id[cfg.run_id].get("wall_s") or "nan")
        except ValueError:
            continue
        if wall == wall:
            measured += wall
            predicted += estimates[cfg.run_id]
    scale = measured / predicted if predicted > 0 else 1.0
    errors = {cfg.run_id: by_id[cfg.run_id].get("error", "") for cfg in failed}
    eta = scale * sum(estimates[cfg.run_id] for cfg in todo)
    return Status(done, failed, todo, errors, eta, predicted > 0, estimates)


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def print_status(sweep: Sweep, results, device: str, *, cells: bool) -> Status:
    status = sweep_status(sweep, results.runs(), device)
    if cells:
        state = {c.run_id: "done" for c in status.done}
        state.update({c.run_id: "failed" for c in status.failed})
        print(f"{'run_id':<13}{'status':<8}{'est.':>8}  cell")
        for cfg, label in zip(sweep.cells, sweep.labels, strict=True):
            est = format_seconds(status.estimates[cfg.run_id])
            print(f"{cfg.run_id:<13}{state.get(cfg.run_id, 'todo'):<8}{est:>8}  {label}")
    total = sum(status.estimates.values())
    print(
        f"sweep {sweep.name}: {len(sweep.cells)} cells: {len(status.done)} done, "
        f"{len(status.failed)} failed, {len(status.todo)} remaining "
        f"(results in {results.path})"
    )
    how = "rescaled by the measured cell times" if status.measured else "the cost model alone"
    print(
        f"estimated cost: {format_seconds(total)} for all cells on {device} (rough cost model, "
        f"see docs/sweeps.md); remaining: {format_seconds(status.eta_s)} ({how})"
    )
    for run_id, error in status.errors.items():
        print(f"  failed {run_id}: {error}")
    return status


# ---------------------------------------------------------------------------------------------
# Running


def preflight(cells: list[RunConfig]) -> None:
    """bench.train.preflight once per distinct data/backbone/weights input, before any training."""
    from bench.train import preflight as check

    seen = set()
    for cfg in cells:
        key = tuple(getattr(cfg, name) for name in PREFLIGHT_FIELDS)
        if key not in seen:
            seen.add(key)
            try:
                check(cfg)
            except Exception as error:  # noqa: BLE001 - any reason: report it, run nothing
                what = ", ".join(f"{name}={getattr(cfg, name)!r}" for name in PREFLIGHT_FIELDS)
                raise PreflightError(f"cell {cfg.run_id} ({what}): {error}") from error


def run_sweep(
    sweep: Sweep,
    results,
    *,
    executor: str = "local",
    retry_failed: bool = False,
    progress: bool = True,
    skip_preflight: bool = False,
    **executor_options,
) -> dict:
    """Run the cells of `sweep` that results lacks; returns counts and wall time."""
    from bench import executors

    start = time.time()
    with results.lock():
        rows = {row["run_id"]: row for row in results.runs()}
        keep = {"ok"} if retry_failed else {"ok", "failed"}
        todo = [cfg for cfg in sweep.cells if rows.get(cfg.run_id, {}).get("status") not in keep]
        counts = {"ok": 0, "failed": 0, "skipped": len(sweep.cells) - len(todo)}
        if todo and not skip_preflight:
            preflight(todo)
        bar = _bar(len(todo), sweep.name, progress)

        def on_result(cfg: RunConfig, result) -> None:
            status = result.row["status"]
            counts[status] += 1
            bar.update(1)
            bar.set_postfix(ok=counts["ok"], failed=counts["failed"])
            detail = result.row.get("error") if status == "failed" else _score(result.row)
            bar.write(f"{status:<6} {cfg.run_id} {_short(cfg)}  {detail}")

        run = {"local": executors.run_local, "ray": executors.run_ray}[executor]
        try:
            run(todo, results, on_result=on_result, progress=progress, **executor_options)
        finally:
            bar.close()
    counts["wall_s"] = time.time() - start
    return counts


def _bar(total: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"sweep {name}", unit="cell", disable=not enabled, position=0)


def _short(cfg: RunConfig) -> str:
    label = _label({"regularizer": cfg.regularizer, "regularizer_params": cfg.regularizer_params})
    return f"{cfg.backbone} {label} {cfg.protocol} n={cfg.train_size} seed={cfg.seed}"


def _score(row: dict[str, Any]) -> str:
    parts = [f"{k}={row[k]:.4f}" for k in ("test_acc", "test_ece") if _is_number(row.get(k))]
    if _is_number(row.get("wall_s")):
        parts.append(f"{row['wall_s']:.1f}s")
    return " ".join(parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="regbench sweep", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("sweep_file", help="a sweep TOML file, e.g. sweeps/smoke.toml")
    common.add_argument("--results-dir", help="results folder (default: results/<sweep name>)")
    common.add_argument(
        "--data-dir", help="folder with cifar-10-batches-py (default: $REGBENCH_DATA, else the "
        "offline copy when it exists)",
    )  # fmt: skip
    common.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override every cell")

    run = sub.add_parser("run", parents=[common], help="run the cells not done yet")
    run.add_argument("--executor", choices=("local", "ray"), default="local")
    run.add_argument("--ray-address", help="Ray cluster address (default: a local Ray instance)")
    run.add_argument("--cpus-per-cell", type=int, help="torch threads (and Ray CPUs) per cell")
    run.add_argument("--dry-run", action="store_true", help="list the cells and estimated cost")
    run.add_argument("--retry-failed", action="store_true", help="rerun cells recorded as failed")
    run.add_argument(
        "--keep-best-model", action="store_true",
        help="save the best-by-val_acc model per protocol to <results>/models (local executor)",
    )  # fmt: skip
    run.add_argument(
        "--skip-preflight", action="store_true",
        help="do not check data and weights in this process first (when only workers see them)",
    )  # fmt: skip
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub.add_parser("status", parents=[common], help="done / failed / remaining, ETA")
    return parser


def main(argv: list[str] | None = None) -> int:
    from bench.executors import ExecutorError
    from bench.results import LockError, ResultsDir

    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    data_dir = args.data_dir or os.environ.get("REGBENCH_DATA")
    if data_dir:
        overrides["data_dir"] = os.path.abspath(os.path.expanduser(data_dir))
    if args.device:
        overrides["device"] = args.device
    try:
        sweep = load_sweep(args.sweep_file, overrides)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = ResultsDir(args.results_dir or Path("results") / sweep.name)

    if args.command == "status" or args.dry_run:
        print_status(sweep, results, guess_device(sweep.cells), cells=args.command == "run")
        return 0

    options: dict[str, Any] = {"keep_best_model": args.keep_best_model}
    if args.executor == "ray":
        options["address"] = args.ray_address
    if args.cpus_per_cell:
        options["cpus_per_cell"] = args.cpus_per_cell
    try:
        counts = run_sweep(
            sweep, results, executor=args.executor, retry_failed=args.retry_failed,
            progress=not args.no_progress, skip_preflight=args.skip_preflight, **options,
        )  # fmt: skip
    except LockError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except ExecutorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except PreflightError as error:  # bad data, backbone or weights: nothing ran
        print(f"error: {sweep.path}: preflight: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; rerun the same command to resume ({results.path})", file=sys.stderr)
        return 130
    print(
        f"sweep {sweep.name}: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} "
        f"skipped (already done), wall {format_seconds(counts['wall_s'])}; results in {results.path}"
    )
    if counts["failed"]:
        print("some cells failed (reasons in runs.csv, column error); rerun with --retry-failed")
    return 1 if counts["failed"] else 0
