"""`regbench sweep check`: will this sweep run here? Seconds to minutes, before hours of cells.

`check_sweep(sweep, results)` looks at the cells the results folder still lacks (a search sweep:
its trials and its cells) and, on this machine:
- data and weights: bench.train.preflight once per distinct data/backbone/weights input;
- every distinct cell *shape* (`Shape`: backbone x image size x batch size x protocol x trainable
  stages x precision x memory format x compilation, on its device) is *probed*: its model built
  with its weights, a few optimizer steps in each phase of its protocol, one evaluation batch;
  peak memory (plus the dataset kept on the device) against the device's memory, and the
  measured step time against the cost model (bench.cost), which rescales the sweep's estimate;
- the disk: free space where the results go against the sweep's expected output (rows,
  outcomes, logs, logits and kept models), and whether that folder can be written.
It ends with go (no problem) or no-go with every problem found, each with its fix.

It never writes into the results folder it checks (not even to create it): folders are only
read, and writability is asked of the operating system (os.access). Nothing here prints; the
CLI (bench.cli.sweep) does.
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cost
from bench.config import RunConfig
from bench.runner import PREFLIGHT_FIELDS, cells_to_run, search_phases
from bench.sweep import Sweep

PROBE_STEPS = 5  # optimizer steps per phase of a probe (the first, a warm-up, is not timed)
MEMORY_SHARE = 0.9  # a shape whose peak exceeds this share of the device's memory is a problem
DISK_MARGIN = 2.0  # free space needed: this many times the sweep's expected output
# Expected output per cell (bytes), measured on results/cpu-quick and rounded up: the rows of
# runs/epochs/calibration/robustness.csv, the log, and per test image its outcome (label, pred:
# 1 byte each, confidence: 2) and, with save_logits, its 10 float16 logits.
ROW_BYTES = 8192
LOG_BYTES = 8192
OUTCOME_BYTES_PER_IMAGE = 4
LOGIT_BYTES_PER_IMAGE = 20
FILE_BLOCK = 4096  # each outcomes/log file takes whole blocks


@dataclass(frozen=True)
class Shape:
    """What sets a cell's memory and speed (not its data, seed or regularizer)."""

    backbone: str
    image_size: int
    batch_size: int
    protocol: str
    trainable_stages: int
    amp: str
    channels_last: str
    compile: bool
    device: str

    @classmethod
    def of(cls, cfg: RunConfig) -> Shape:
        return cls(cfg.backbone, cfg.image_size, cfg.batch_size, cfg.protocol,
                   cfg.trainable_stages, cfg.amp, cfg.channels_last, cfg.compile,
                   cfg.device)  # fmt: skip

    def label(self) -> str:
        stages = f" last {self.trainable_stages} stages" if self.trainable_stages else ""
        extras = "".join(
            f" {name}={value}" for name, value in
            (("amp", self.amp), ("channels_last", self.channels_last)) if value != "auto"
        ) + (" compiled" if self.compile else "")  # fmt: skip
        return (f"{self.backbone} {self.image_size}px batch {self.batch_size} "
                f"{self.protocol}{stages}{extras}")  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """One reason the sweep would fail here, and what to do about it."""

    text: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.text}; fix: {self.fix}" if self.fix else self.text


@dataclass
class Probe:
    """What probing one shape measured (None: not measured)."""

    shape: Shape
    cells: int  # cells of this shape still to run
    model_s: float  # the cost model's seconds for those cells
    setup_s: float = 0.0  # of which per-cell set-up (not rescaled by the measured speed)
    device: str = ""  # the device's name
    amp: str = ""  # precision, memory format used (resolved)
    channels_last: bool = False
    weights: str = ""  # the weights source used ("" when the probe could not build the model)
    parameters: int = 0
    peak_mb: float | None = None  # peak memory of the probe plus the dataset on the device
    total_mb: float | None = None  # the device's memory
    step_s: float | None = None  # measured seconds of the timed steps
    step_images: int = 0  # training images in the timed steps
    model_step_s: float | None = None  # the cost model's seconds for the same steps
    eval_s: float | None = None  # one evaluation batch
    seconds: float = 0.0  # the probe's own wall time
    error: str = ""  # why the probe failed, if it did

    @property
    def speed_ratio(self) -> float | None:
        """Measured / cost-model time of the training steps (> 1: slower than the model)."""
        if not self.step_s or not self.model_step_s:
            return None
        return self.step_s / self.model_step_s

    @property
    def images_per_s(self) -> float | None:
        """Measured training images per second over the timed steps (all phases)."""
        return self.step_images / self.step_s if self.step_s else None

    @property
    def estimated_s(self) -> float:
        """The shape's cells' time: the cost model's per-image work rescaled by the measured
        speed, plus its set-up time."""
        return self.setup_s + (self.model_s - self.setup_s) * (self.speed_ratio or 1.0)


@dataclass
class CheckReport:
    sweep: str
    results: Path
    cells: int  # cells (trials included) the results folder still lacks
    device: str  # the cost model's device ("cpu" | "cuda")
    probes: list[Probe] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    model_s: float = 0.0  # the cost model's estimate of those cells
    output_bytes: int = 0  # their expected output
    free_bytes: int | None = None  # free space where the results go
    seconds: float = 0.0  # the check's own wall time

    @property
    def go(self) -> bool:
        return not self.problems

    @property
    def images_per_s(self) -> float | None:
        """Measured training images per second over the timed steps (all phases)."""
        return self.step_images / self.step_s if self.step_s else None

    @property
    def estimated_s(self) -> float:
        return sum(probe.estimated_s for probe in self.probes)


def cells_left(sweep: Sweep, results) -> list[RunConfig]:
    """The cells `results` lacks (failed ones count as done, as `sweep run` does): a search
    sweep's trials and its cells (at the sweep file's values while its trials are not done)."""
    if sweep.search is None:
        return cells_to_run(sweep, results.runs(), retry_failed=False)
    from bench.results import ResultsDir
    from bench.search import SEARCH_FOLDER

    trials, final, _ = search_phases(sweep, results)
    trial_rows = ResultsDir(results.path / SEARCH_FOLDER).runs()
    todo = cells_to_run(trials, trial_rows, retry_failed=False)
    return todo + cells_to_run(final or sweep, results.runs(), retry_failed=False)


def check_sweep(
    sweep: Sweep,
    results,
    *,
    probe_steps: int = PROBE_STEPS,
    keep_best_model: bool = False,
    on_probe: Any = None,
) -> CheckReport:
    """Check `sweep` against `results` (a bench.results.ResultsDir, only read) on this machine;
    see the module docstring. `on_probe(index, count, probe)` is called after each probe."""
    from bench.cost import guess_device

    started = time.perf_counter()
    results.check()
    todo = cells_left(sweep, results)
    device = guess_device(todo or sweep.cells)
    report = CheckReport(sweep.name, Path(results.path), len(todo), device)
    report.model_s = sum(cost.estimate_seconds(cfg, device) for cfg in todo)
    bad_inputs = check_inputs(todo, report.problems)
    shapes: dict[Shape, list[RunConfig]] = {}
    for cfg in todo:
        shapes.setdefault(Shape.of(cfg), []).append(cfg)
    for index, (shape, members) in enumerate(shapes.items()):
        model_s = sum(cost.estimate_seconds(c, device) for c in members)
        work_s = sum(
            sum(cost.cost_parts(c).values()) * cost.image_seconds(c, device) for c in members
        )
        probe = Probe(shape, len(members), model_s, setup_s=model_s - work_s)
        usable = [c for c in members if input_key(c) not in bad_inputs]
        if usable:
            run_probe(usable[0], probe, probe_steps, device, report.problems)
        else:  # its input failed above: measure what can be (memory, speed) without weights
            run_probe(members[0].replace(pretrained="none"), probe, probe_steps, device,
                      report.problems)  # fmt: skip
            probe.error = probe.error or "probed without pretrained weights (see the problems)"
        report.probes.append(probe)
        if on_probe is not None:
            on_probe(index, len(shapes), probe)
    parameters = {p.shape.backbone: p.parameters for p in report.probes}
    report.output_bytes = expected_output_bytes(todo, keep_best_model, parameters)
    check_folder(Path(results.path), report)
    report.seconds = time.perf_counter() - started
    return report


def input_key(cfg: RunConfig) -> tuple:
    return tuple(getattr(cfg, name) for name in PREFLIGHT_FIELDS) + (cfg.device,)


def check_inputs(cells: list[RunConfig], problems: list[Problem]) -> set[tuple]:
    """bench.train.preflight (configuration, device, backbone, data, weights) once per distinct
    input; each failure a problem. Returns the inputs that failed."""
    from bench.train import preflight

    seen: set[tuple] = set()
    bad: set[tuple] = set()
    for cfg in cells:
        key = input_key(cfg)
        if key in seen:
            continue
        seen.add(key)
        try:
            preflight(cfg)
        except Exception as error:  # noqa: BLE001 - any reason is a problem to list
            bad.add(key)
            what = ", ".join(f"{name}={getattr(cfg, name)!r}" for name in PREFLIGHT_FIELDS[:4])
            problems.append(Problem(f"cells with {what}, device={cfg.device!r}: {error}"))
    return bad


def probe_config(cfg: RunConfig, steps: int, raw_sizes: tuple[int, int]) -> RunConfig:
    """The cell cut to a probe: its shape, `steps` optimizer steps per phase of its protocol,
    and small splits (two batches to train on, one evaluation batch to test on)."""
    n_train, n_test = raw_sizes
    phases = 2 if cfg.protocol in ("staged", "head_first") else 1
    eval_batch = max(256, 2 * cfg.batch_size)
    val = 10 * max(1, min(10, (n_train - 2 * cfg.batch_size) // 10))
    return cfg.replace(
        train_steps=steps * phases, epochs=1, eval_every=1, unfreeze_at=0.5,
        train_per_class=0, train_size=min(2 * cfg.batch_size, n_train - val), val_size=val,
        test_size=min(eval_batch, n_test), train_eval_size=10, robustness_size=10,
        warmup_epochs=0.0,
    )  # fmt: skip


def run_probe(
    cfg: RunConfig, probe: Probe, steps: int, device: str, problems: list[Problem]
) -> None:
    """Build the shape's cell and run `steps` optimizer steps per phase and one evaluation batch,
    measuring memory and time into `probe`; failures into `problems`."""
    from bench import device as devices
    from bench import train

    tick = time.perf_counter()
    label = probe.shape.label()
    try:
        hardware = devices.select(cfg.device)
        raw = train.load_raw(cfg)
    except Exception as error:  # noqa: BLE001 - no device or no data: the input checks say so
        probe.error = f"not probed: {type(error).__name__}: {error}"
        return
    probe.device, probe.total_mb = hardware.describe(), hardware.total_memory_mb()
    raw_bytes = sum(getattr(raw[key], "nbytes", 0) for key in ("train_x", "test_x"))
    cell = None
    try:
        small = probe_config(cfg, steps, (len(raw["train_y"]), len(raw["test_y"])))
        hardware.reset_peak_memory()
        cell, record = train.set_up(small, hardware)
        probe.weights = str(record.get("pretrained", ""))
        probe.amp, probe.channels_last = cell.amp, cell.channels_last
        probe.parameters = sum(p.numel() for p in cell.model.parameters())
        batches = train.training_batches(cell)
        timed, units, images = 0.0, 0.0, 0
        for index in range(cell.plan.total_steps):
            trainable = index >= cell.plan.unfreeze_step
            warm_up = index in (0, cell.plan.unfreeze_step)  # first step of a phase: not timed
            hardware.synchronize()
            began = time.perf_counter()
            loss, _ = train.train_step(cell, index, next(batches), timed=True)  # as the loop does
            float(loss.detach())  # waits for the step
            if not warm_up:
                timed += time.perf_counter() - began
                units += cell.plan.batch_size * (3.0 if trainable else 1.0)
                images += cell.plan.batch_size
        began = time.perf_counter()
        logits = cell.evaluate(cell.splits.test_x[: cell.plan.eval_batch])
        float(logits.sum())
        probe.eval_s = time.perf_counter() - began
        probe.peak_mb = hardware.peak_memory_mb()
        if hardware.type != "cpu":  # the CPU's peak is the process's, the data already in it
            probe.peak_mb += raw_bytes / 2**20
        if units:
            probe.step_s, probe.step_images = timed, images
            probe.model_step_s = units * cost.image_seconds(small, device)
    except Exception as error:  # noqa: BLE001 - every failure is a problem to list
        first = (str(error).splitlines() or [""])[0][:300]
        if hardware.is_out_of_memory(error):
            probe.error = f"out of memory: {first}"
            problems.append(Problem(
                f"{label}: out of memory on {probe.device} ({probe.total_mb:.0f} MiB)",
                f"lower batch_size for these cells (e.g. batch_size={max(1, cfg.batch_size // 2)})"
                ", set amp = \"bf16\", or use a device with more memory",
            ))  # fmt: skip
        else:
            probe.error = f"{type(error).__name__}: {first}"
            problems.append(Problem(
                f"{label}: the probe failed: {probe.error}",
                f"run one such cell to see the whole traceback: regbench run {cli_flags(cfg)}",
            ))  # fmt: skip
            probe.error += "\n" + traceback.format_exc(limit=-3)
    finally:
        del cell
        gc.collect()
        hardware.release_memory()
        probe.seconds = time.perf_counter() - tick
    peak, total = probe.peak_mb, probe.total_mb
    if peak is not None and total and peak > MEMORY_SHARE * total:
        problems.append(Problem(
            f"{label}: peak memory {peak:.0f} MiB is over {MEMORY_SHARE:.0%} of the "
            f"{total:.0f} MiB of {probe.device}",
            f"lower batch_size for these cells (e.g. batch_size={max(1, cfg.batch_size // 2)}), "
            "set amp = \"bf16\", or use a device with more memory",
        ))  # fmt: skip


def cli_flags(cfg: RunConfig) -> str:
    """`regbench run` flags reproducing the shape of `cfg` (for a problem's fix)."""
    return (f"--backbone {cfg.backbone} --image-size {cfg.image_size} --batch-size "
            f"{cfg.batch_size} --protocol {cfg.protocol} --device {cfg.device} "
            f"--amp {cfg.amp} --channels-last {cfg.channels_last} --epochs 1 --train-steps 3")  # fmt: skip


def expected_output_bytes(
    cells: list[RunConfig], keep_best_model: bool, parameters: dict[str, int]
) -> int:
    """The disk space the cells' results take (rounded up per file; see ROW_BYTES...), plus
    two copies of a float32 model per protocol with keep_best_model."""

    def blocks(size: float) -> int:
        return FILE_BLOCK * math.ceil(size / FILE_BLOCK)

    total = 0
    for cfg in cells:
        test = cfg.test_size or cost.CIFAR10_TEST
        total += ROW_BYTES + blocks(LOG_BYTES) + blocks(1024 + OUTCOME_BYTES_PER_IMAGE * test)
        if cfg.save_logits:
            total += blocks(1024 + LOGIT_BYTES_PER_IMAGE * test)
    if keep_best_model:
        protocols = {(cfg.protocol, cfg.backbone) for cfg in cells}
        total += sum(2 * 4 * parameters.get(backbone, 0) for _, backbone in protocols)
    return total


def check_folder(folder: Path, report: CheckReport) -> None:
    """Free space and writability where the results go, without writing there: the folder, or
    the nearest existing folder above it (where it would be created)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        report.free_bytes = shutil.disk_usage(existing).free
    except OSError as error:
        report.problems.append(Problem(f"{existing}: cannot read its free space: {error}"))
        return
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "the results folder" if existing == folder else f"{existing} (to create {folder})"
        report.problems.append(Problem(
            f"{what} is not writable by this user",
            "give a --results-dir you can write to, or fix the folder's permissions",
        ))  # fmt: skip
    needed = DISK_MARGIN * report.output_bytes
    if report.free_bytes < needed:
        report.problems.append(Problem(
            f"{existing}: {report.free_bytes / 2**20:.0f} MiB free, the sweep's results need "
            f"about {report.output_bytes / 2**20:.0f} MiB (x{DISK_MARGIN:g} margin)",
            "free space there or give a --results-dir on a larger disk",
        ))  # fmt: skip


__all__ = [
    "CheckReport", "Probe", "Problem", "Shape", "cells_left", "check_sweep",
    "expected_output_bytes",
]  # fmt: skip
