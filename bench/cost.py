"""A sweep's cost and status: a rough cost model of one cell (`estimate_seconds`), and how much
of a sweep is done, failed and left, with an ETA rescaled by the cells already measured
(`sweep_status`). For `regbench sweep status`, `--dry-run` and the ETA before any cell finished.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bench.config import RunConfig, evaluation_epochs, watches_plateau
from bench.sweep import Sweep

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
CIFAR10_TRAIN, CIFAR10_TEST, CIFAR10_CLASSES = 50000, 10000, 10
# Forward passes over the robustness subset at a cell's end: flip, occlusion and the 5
# corruptions of bench.train.robustness_metrics (a test keeps it in step; importing
# bench.robustness here would load torch for every `sweep status`).
ROBUSTNESS_PASSES = 7


def estimate_seconds(cfg: RunConfig, device: str) -> float:
    """A rough cost model of one cell, in forward passes of one image: a training image costs
    3 with the backbone trained, 1 when frozen (backward through the head only); the budget is
    train_steps full batches, train_passes or `epochs` passes (under the plateau rule: its cap,
    with the validation split evaluated after every epoch); each evaluated epoch (eval_every, the 80%
    point and the last: bench.config.evaluation_epochs) evaluates the clean-train, validation
    and test subsets; at the end ROBUSTNESS_PASSES over the robustness subset."""
    parts = cost_parts(cfg)
    setup = CELL_OVERHEAD_S[device] + (COMPILE_S if cfg.compile and device == "cuda" else 0.0)
    return setup + sum(parts.values()) * image_seconds(cfg, device)


def image_seconds(cfg: RunConfig, device: str) -> float:
    """The cost model's seconds for one forward pass of one image of the cell's backbone at its
    image size on `device` ("cpu" | "cuda"): a frozen training image costs 1 of these, a
    trained one 3 (cost_parts)."""
    arch = cfg.backbone.split(".")[0]
    macs = BACKBONE_GMACS_224.get(arch, DEFAULT_GMACS_224) * 1e9
    macs *= (cfg.image_size / 224) ** 2
    return macs / MACS_PER_S[device].get(arch, MACS_PER_S[device]["default"])


def cost_parts(cfg: RunConfig) -> dict[str, float]:
    """A cell's work in forward passes of one image: "train", "eval" (the evaluated epochs) and
    "robustness" (ROBUSTNESS_PASSES over the robustness subset), the units estimate_seconds
    converts to time."""
    train = cfg.train_size or (CIFAR10_TRAIN - cfg.val_size)
    if cfg.train_per_class:
        train = cfg.train_per_class * CIFAR10_CLASSES
    test = cfg.test_size or CIFAR10_TEST
    batch = min(cfg.batch_size, train)
    per_pass = max(1, train // batch)
    steps = cfg.train_steps or round(cfg.train_passes * per_pass) or per_pass * cfg.epochs
    frozen_fraction = {"frozen": 1.0, "staged": cfg.unfreeze_at, "head_first": cfg.unfreeze_at}.get(
        cfg.protocol, 0.0
    )
    step_units = frozen_fraction * 1.0 + (1 - frozen_fraction) * 3.0
    evaluations = len(evaluation_epochs(cfg.epochs, cfg.eval_every, cfg.stop == "plateau"))
    per_evaluation = min(cfg.train_eval_size or train, train) + cfg.val_size + test
    # the plateau rule (a stop or an on_plateau schedule): validation after every other epoch
    # too (priced by the cap)
    checks = cfg.val_size * (cfg.epochs - evaluations) if watches_plateau(cfg) else 0
    robust = min(cfg.robustness_size or test, test)
    return {
        "train": steps * batch * step_units,
        "eval": evaluations * per_evaluation + checks + min(cfg.composite_size, test),
        "robustness": robust * ROBUSTNESS_PASSES,
    }


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
    measured_s: float = 0.0  # wall_s summed over the cells that finished ok and record it
    predicted_s: float = 0.0  # the cost model's estimate of those same cells


def sweep_status(sweep: Sweep, rows: list[dict[str, str]], device: str) -> Status:
    by_id = {row["run_id"]: row for row in rows}
    done, failed, todo = [], [], []
    for cfg in sweep.cells:
        row = by_id.get(cfg.run_id)
        (todo if row is None else failed if row.get("status") == "failed" else done).append(cfg)
    estimates = {cfg.run_id: estimate_seconds(cfg, device) for cfg in sweep.cells}
    # Calibrate the model on the cells that finished: measured total / predicted total.
    # The cells that finished ok alone are what `sweep status` compares with the model (a failed
    # cell stops early).
    measured, predicted, ok_measured, ok_predicted = 0.0, 0.0, 0.0, 0.0
    for cfg, ok in [*((c, True) for c in done), *((c, False) for c in failed)]:
        try:
            wall = float(by_id[cfg.run_id].get("wall_s") or "nan")
        except ValueError:
            continue
        if wall == wall:
            measured += wall
            predicted += estimates[cfg.run_id]
            if ok:
                ok_measured += wall
                ok_predicted += estimates[cfg.run_id]
    scale = measured / predicted if predicted > 0 else 1.0
    errors = {cfg.run_id: by_id[cfg.run_id].get("error", "") for cfg in failed}
    eta = scale * sum(estimates[cfg.run_id] for cfg in todo)
    return Status(
        done, failed, todo, errors, eta, predicted > 0, estimates, ok_measured, ok_predicted
    )
