"""One cell's configuration: a small frozen dataclass, its validation, and its stable id.

A *cell* is one training run (one backbone x one regularizer x one protocol x one seed ...).
Its `run_id` is a hash of every field that can change a number in the results, so the same
configuration always gets the same id (the resume key of a sweep) and any change gets a new one.
Fields that only say *where* or *how fast* a run happens (data_dir, device, compile,
channels_last) are not part of the id: moving a sweep to another machine resumes it instead of
starting it over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = ("frozen", "unfrozen", "staged", "scratch", "head_first")
BN_MODES = ("auto", "frozen", "train")  # "auto": frozen for staged/head_first/frozen, else train
SCHEDULE_FROM = ("start", "unfreeze")
OPTIMIZERS = ("sgd", "adamw")
DATASETS = ("cifar10", "synthetic")
DEVICES = ("auto", "cpu", "cuda")
# issue 24: precision and memory format as settings; "auto" is what a cell did before them
# (bf16 autocast and channels_last on CUDA, float32 and the default layout on the CPU).
AMP_MODES = ("auto", "bf16", "fp16", "off")
CHANNELS_LAST_MODES = ("auto", "on", "off")

# Largest input side (pixels). CIFAR-10 images are 32 px; timm's pretrained configurations go up
# to 800 px (e.g. EfficientNet-B7 at 600, BEiT/EVA at 448-560), and one batch of 128 images at
# 1024 px is already 1.6 GB of float32 input: anything larger is a typo, not an experiment.
MAX_IMAGE_SIZE = 1024
# Seeds must be < 2**32: torch.Generator.manual_seed on the CPU keeps the low 32 bits only
# (measured: seeds 0, 2**32 and 2**63 give the same draws; -1, 2**32-1 and 2**63-1 too).
SEED_LIMIT = 2**32

# data_seed's default: follow the run seed. Resolved in RunConfig.__post_init__, so a built
# RunConfig always stores the int it draws with (run_id hashes that number, and an explicit
# data_seed equal to seed is the same cell). None, not a number: no sweep file or flag value
# can mean "follow" by accident, and a negative data_seed stays an error.
FOLLOW_SEED = None
# Fields left out of run_id: they change where/how fast a cell runs, not what it measures.
NON_IDENTITY_FIELDS = (
    "data_dir", "device", "compile", "save_logits", "sweep", "sweep_cells", "channels_last",
    "sweep_file_sha256",
)  # fmt: skip
# Fields added after results were committed, left out of run_id while they hold the value
# that reproduces the older behaviour, so committed cells keep their ids (a sweep resumes them):
# field -> that value. Any other value is part of the id like every field.
IDENTITY_DEFAULTS = {
    "train_steps": 0, "train_per_class": 0, "eval_every": 1,  # issue 13 (budget)
    "finetune_lr_scale": 0.1, "schedule_from": "start", "trainable_stages": 0,  # (regimes)
    "amp": "auto",  # issue 24 (precision)
}  # fmt: skip
# `bn` enters run_id as the mode a cell uses (resolved_bn), and only where it changes what the
# older code did: BatchNorm in train mode while the backbone trains was the only behaviour, and a
# frozen backbone never trains. So staged cells (now "frozen" by default) get new ids.
OLD_BN = "train"
# Staged cells whose backbone group warms up again at the switch (bench.train.StepPlan,
# backbone_rewarm_steps; issue 13) train differently from the staged cells committed before it,
# with no field to tell them apart: this mark enters the id of every staged cell, so a sweep
# resumed from an older results folder reruns them instead of mixing the two behaviours.
STAGED_REWARM_MARK = ("staged_backbone_rewarm", True)


@dataclass(frozen=True)
class RunConfig:
    """Everything one cell needs. Units are in the comments; defaults suit a CPU smoke run."""

    sweep: str = "adhoc"  # sweep name written to runs.csv (not part of run_id)
    # cells in the sweep this cell belongs to (set by bench.sweep; 0 = a single run; not part of
    # run_id): lets a report of a half-finished sweep say how many cells are missing
    sweep_cells: int = 0
    dataset: str = "cifar10"  # "cifar10" (real files) or "synthetic" (unit tests only)
    # folder holding cifar-10-batches-py; "" = $REGBENCH_DATA, else ./data/cifar10, else
    # ../shared/data/cifar10 (relative to the current folder)
    data_dir: str = ""
    backbone: str = "tf_efficientnet_lite0"  # any timm model name
    pretrained: str = "auto"  # "auto" | "none" | path to a .safetensors/.pth weights file
    protocol: str = "frozen"  # one of PROTOCOLS
    regularizer: str = "none"  # registry name in regularizers.available()
    # The regularizer's parameters, schedule included, e.g. {"alpha": 1.0, "schedule": "staged"}.
    regularizer_params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05  # peak learning rate of the head (and backbone, times backbone_lr_scale)
    backbone_lr_scale: float = 0.1  # backbone lr = lr * this, for unfrozen/staged (scratch: 1)
    momentum: float = 0.9  # SGD only
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.5  # linear warmup, then cosine decay to 0 (in epochs, fractional ok)
    label_smoothing: float = 0.0  # passed to the regularizer (equal in every arm)
    unfreeze_at: float = 0.5  # staged protocol: fraction of training spent frozen
    image_size: int = 32  # input side in pixels after resizing on the device
    train_size: int = 0  # training images after the validation hold-out; 0 = all remaining
    val_size: int = 5000  # stratified hold-out from the training set, fixed by data_seed (>= 10)
    test_size: int = 0  # stratified fixed subset of the test set; 0 = the whole test set
    train_eval_size: int = 10000  # clean-train metrics on a fixed subset of at most this many
    robustness_size: int = 2000  # test images used for corruption / occlusion metrics
    seed: int = 0  # the run seed: init of the head, batch order, augmentation, regularizer draws
    # fixes the validation hold-out and the train/test subsets; left out (FOLLOW_SEED) = the
    # value of `seed`, so each seed draws its own subset; any value >= 0 fixes it
    data_seed: int = FOLLOW_SEED  # type: ignore[assignment]  # an int once built
    # issue 13 (budget): training budget, tiny data, evaluation cadence
    train_steps: int = 0  # optimizer steps in all (0 = epochs x steps per epoch); see StepPlan
    train_per_class: int = 0  # exactly this many training images per class (0 = train_size)
    eval_every: int = 1  # epochs between evaluations (>= 1); the last epoch is always evaluated
    # issue 13 (regimes): BatchNorm mode, head-first and partial fine-tuning (docs/protocols.md)
    # Backbone BatchNorm while the backbone trains: "frozen" (eval mode, running statistics kept),
    # "train" (batch statistics, running statistics updated), "auto" (frozen for staged and
    # head_first, train for unfrozen and scratch); runs.csv records the mode used.
    bn: str = "auto"
    finetune_lr_scale: float = 0.1  # head_first: peak lr of the fine-tuning phase = lr * this
    # Progress passed to the regularizer's schedule counts from "start" (step 0) or "unfreeze"
    # (the first step with a trainable backbone; 0 before it). staged/head_first/unfrozen only.
    schedule_from: str = "start"
    trainable_stages: int = 0  # only the backbone's last k stages train (0 = every stage)
    device: str = "auto"  # "auto" | "cpu" | "cuda" (not part of run_id)
    compile: bool = False  # torch.compile the model, on any device (not part of run_id)
    # issue 24: autocast precision of the forward passes, "bf16" | "fp16" (with gradient
    # scaling) | "off" (float32) | "auto" (bf16 on CUDA, off on the CPU); in run_id unless
    # "auto". runs.csv records the precision used.
    amp: str = "auto"
    # channels_last memory format of the model and its inputs: "on" | "off" | "auto" (on for
    # CUDA, off on the CPU); not part of run_id. runs.csv records the format used.
    channels_last: str = "auto"
    save_logits: bool = False  # keep final test logits (float16, compressed) beside the CSVs
    # sha256 (12 hex digits) of the sweep file the cell came from (set by bench.sweep; "" for a
    # single run; not part of run_id): runs.csv's provenance of the sweep definition
    sweep_file_sha256: str = ""

    def __post_init__(self) -> None:
        if self.data_seed is FOLLOW_SEED:
            object.__setattr__(self, "data_seed", self.seed)  # frozen: set once, here

    def identity(self) -> dict[str, Any]:
        """The fields that define what the cell measures (the input of run_id)."""
        values = dataclasses.asdict(self)
        for name in NON_IDENTITY_FIELDS:
            values.pop(name)
        for name, default in IDENTITY_DEFAULTS.items():
            if values[name] == default and type(values[name]) is type(default):
                values.pop(name)
        values["bn"] = resolved_bn(self)
        if self.protocol == "frozen" or values["bn"] == OLD_BN:
            values.pop("bn")
        if self.protocol == "staged":
            values[STAGED_REWARM_MARK[0]] = STAGED_REWARM_MARK[1]
        return values

    @property
    def run_id(self) -> str:
        """Stable 12-hex-digit id: sha256 of the identity fields as canonical JSON."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


FLOAT_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.type == "float")


@dataclass(frozen=True)
class Bound:
    """The plausible range of one numeric RunConfig field: low..high, each end open or closed,
    and why where it is not obvious. Anything outside is a typo or an attack, not an experiment
    (lr = 1e308 passes a finiteness check and then fails every cell; epochs = 10**9 builds a
    10**9-entry plan)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def holds(self, value: float) -> bool:
        above = self.low < value if self.low_open else self.low <= value
        below = value < self.high if self.high_open else value <= self.high
        return above and below  # NaN fails both

    def allowed(self, integer: bool) -> str:
        """E.g. 'an integer >= 1 and <= 10000 (why)'."""
        low = f"{'>' if self.low_open else '>='} {_number_text(self.low)}"
        high = f"{'<' if self.high_open else '<='} {_number_text(self.high)}"
        kind = "an integer" if integer else "a number"
        return f"{kind} {low} and {high}" + (f" ({self.why})" if self.why else "")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


MAX_EPOCHS = 10_000  # epochs (with train_steps: evaluation periods); real sweeps use <= 300
MAX_STEPS = 10_000_000  # optimizer steps: days of GPU time for the smallest model
# More images than any dataset regbench loads holds (CIFAR-10: 60,000): sizes and counts.
MAX_IMAGES = 1_000_000
# The plausible range of every numeric RunConfig field, declared once: check_config refuses a
# value outside it with the range in the message, and bench.search checks every searched value
# (both ends of a range) against it. Every int and float field has one (a test checks).
BOUNDS: dict[str, Bound] = {
    "sweep_cells": Bound(0, MAX_IMAGES, why="the sweep's cell count; 0 = a single run"),
    "epochs": Bound(1, MAX_EPOCHS),
    "batch_size": Bound(1, 65_536),
    "lr": Bound(0, 10, low_open=True, why="a peak learning rate above 10 diverges"),
    "backbone_lr_scale": Bound(0, 10, why="backbone lr = lr * this"),
    "momentum": Bound(0, 1, high_open=True, why="SGD with Nesterov momentum needs > 0"),
    "weight_decay": Bound(0, 1),
    "warmup_epochs": Bound(0, MAX_EPOCHS, why="in epochs, fractional ok"),
    "label_smoothing": Bound(0, 1, high_open=True),
    "unfreeze_at": Bound(0, 1, low_open=True, high_open=True, why="a fraction of training"),
    "image_size": Bound(1, MAX_IMAGE_SIZE, why="pixels per side"),
    "train_size": Bound(0, MAX_IMAGES, why="0 means all"),
    "val_size": Bound(10, MAX_IMAGES, why="temperature scaling and val metrics need a "
                      "validation split of at least one image per class"),
    "test_size": Bound(0, MAX_IMAGES, why="0 means all"),
    "train_eval_size": Bound(0, MAX_IMAGES, why="0 means all"),
    "robustness_size": Bound(0, MAX_IMAGES, why="0 means all"),
    "seed": Bound(0, SEED_LIMIT, high_open=True, why="torch's CPU generator uses only the low "
                  "32 bits, so larger or negative seeds repeat smaller ones"),
    "data_seed": Bound(0, SEED_LIMIT, high_open=True, why="as seed"),
    "train_steps": Bound(0, MAX_STEPS, why="optimizer steps in all; 0 = use epochs"),
    "train_per_class": Bound(0, MAX_IMAGES, why="images per class; 0 = use train_size"),
    "eval_every": Bound(1, MAX_EPOCHS, why="epochs between evaluations; the last epoch is "
                        "always evaluated"),
    "finetune_lr_scale": Bound(0, 10, low_open=True, why="fine-tuning lr = lr * this"),
    "trainable_stages": Bound(0, 100, why="the last k stages train; 0 = all"),
}  # fmt: skip


def config_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


def from_dict(values: dict[str, Any], where: str = "config") -> RunConfig:
    """Build a RunConfig from a plain dict, rejecting unknown keys with the list of known ones."""
    known = set(config_fields())
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown}; known keys are: {', '.join(sorted(known))}"
        )
    types = {f.name: f.type for f in dataclasses.fields(RunConfig)}
    coerced: dict[str, Any] = {}
    for name, value in values.items():
        kind = types[name]
        expected = {"int": "an integer", "float": "a number", "bool": "true or false",
                    "str": "a string", "dict[str, Any]": "a table"}.get(kind, kind)  # fmt: skip
        # No coercion from bool or text: `epochs = true` or `lr = "0.1"` is a mistake, not 1.
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "int" and number and isinstance(value, float) and value.is_integer():
            value = int(value)  # 3.0 is 3; 3.5 is refused below
        elif kind == "float" and number and isinstance(value, int):
            try:
                value = float(value)
            except OverflowError:
                raise ValueError(f"{where}: {name}={value!r} is too large") from None
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, float), "bool": isinstance(value, bool),
              "str": isinstance(value, str), "dict[str, Any]": isinstance(value, dict)}  # fmt: skip
        if not ok.get(kind, True):
            raise ValueError(f"{where}: {name}={value!r} should be {expected} (type {kind})")
        coerced[name] = value
    return RunConfig(**coerced)


def _check_types(cfg: RunConfig, where: str) -> None:
    """Every field of the declared type (a RunConfig built directly, not through from_dict,
    could hold a bool where an int belongs, or an int where a float does)."""
    for f in dataclasses.fields(RunConfig):
        value = getattr(cfg, f.name)
        if f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            continue  # an int is a fine float
        ok = {"int": int, "float": float, "bool": bool, "str": str, "dict[str, Any]": dict}
        kind = ok.get(f.type)
        if kind is None:
            continue
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(f"{where}: {f.name}={value!r} should be of type {f.type}")


def resolved_bn(cfg: RunConfig) -> str:
    """The BatchNorm mode a cell uses: cfg.bn, or for "auto" the protocol's default ("frozen" for
    frozen, staged and head_first, whose head is fitted on running-statistics features first;
    "train" for unfrozen and scratch). See docs/protocols.md."""
    if cfg.bn != "auto":
        return cfg.bn
    return "train" if cfg.protocol in ("unfrozen", "scratch") else "frozen"


def resolved_amp(cfg: RunConfig, device_type: str) -> str:
    """The autocast precision a cell uses on a device of `device_type` ("cuda", "cpu"):
    cfg.amp, or for "auto" bf16 on CUDA and "off" (float32) elsewhere."""
    if cfg.amp != "auto":
        return cfg.amp
    return "bf16" if device_type == "cuda" else "off"


def resolved_channels_last(cfg: RunConfig, device_type: str) -> bool:
    """Whether a cell on a device of `device_type` uses the channels_last memory format:
    cfg.channels_last, or for "auto" on CUDA only."""
    if cfg.channels_last != "auto":
        return cfg.channels_last == "on"
    return device_type == "cuda"


def build_regularizer(cfg: RunConfig, num_classes: int) -> Any:
    """The cell's regularizer (a regularizers.Regularizer), label smoothing included unless its
    parameters set their own; ValueError/TypeError on bad parameters."""
    import regularizers  # local import: keeps `bench.config` light for the report side

    params = dict(cfg.regularizer_params)
    params.setdefault("label_smoothing", cfg.label_smoothing)
    return regularizers.build(cfg.regularizer, num_classes=num_classes, **params)


def check_config(cfg: RunConfig, where: str = "config") -> None:
    """Cheap checks that need no data, model or network; raises ValueError naming the fix."""

    def bad(name: str, allowed: str) -> ValueError:
        return ValueError(f"{where}: {name}={getattr(cfg, name)!r} is invalid; allowed: {allowed}")

    _check_types(cfg, where)
    if cfg.protocol not in PROTOCOLS:
        raise bad("protocol", ", ".join(PROTOCOLS))
    if cfg.optimizer not in OPTIMIZERS:
        raise bad("optimizer", ", ".join(OPTIMIZERS))
    if cfg.dataset not in DATASETS:
        raise bad("dataset", ", ".join(DATASETS))
    if cfg.device not in DEVICES:
        raise bad("device", ", ".join(DEVICES))
    if cfg.amp not in AMP_MODES:
        raise bad("amp", ", ".join(AMP_MODES))
    if cfg.channels_last not in CHANNELS_LAST_MODES:
        raise bad("channels_last", ", ".join(CHANNELS_LAST_MODES))
    for name in FLOAT_FIELDS:
        if not math.isfinite(getattr(cfg, name)):
            raise bad(name, "a finite number (not inf or nan)")
    for name, bound in BOUNDS.items():
        if not bound.holds(getattr(cfg, name)):
            raise bad(name, bound.allowed(integer=name not in FLOAT_FIELDS))
    if cfg.optimizer == "sgd" and cfg.momentum == 0:
        raise bad("momentum", "a value > 0 with optimizer 'sgd' (Nesterov momentum)")
    if cfg.protocol == "scratch" and cfg.pretrained not in ("none", "auto"):
        raise bad("pretrained", "'none' (or 'auto') with protocol 'scratch'")
    if not isinstance(cfg.regularizer_params, dict):
        raise bad("regularizer_params", "a table/dict of parameter names to values")
    import regularizers  # local import: keeps `bench.config` light for the report side

    if cfg.regularizer not in regularizers.available():
        raise bad("regularizer", ", ".join(regularizers.available()))
    try:
        regularizers.build(cfg.regularizer, num_classes=10, **cfg.regularizer_params)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: regularizer {cfg.regularizer!r}: {error}") from None
    # issue 13 (budget): step budget, evaluation cadence, tiny data (ranges: BOUNDS)
    if 0 < cfg.train_steps < cfg.epochs:
        raise bad("train_steps", f"an integer >= epochs ({cfg.epochs}): with a step budget, "
                  "epochs is the number of evaluation periods; lower epochs or raise train_steps")  # fmt: skip
    if cfg.train_per_class and cfg.train_size:
        raise ValueError(
            f"{where}: train_size={cfg.train_size} and train_per_class={cfg.train_per_class} "
            "are both set; set one of them and the other to 0"
        )
    # issue 13 (regimes)
    if cfg.bn not in BN_MODES:
        raise bad("bn", ", ".join(BN_MODES))
    if cfg.schedule_from not in SCHEDULE_FROM:
        raise bad("schedule_from", ", ".join(SCHEDULE_FROM))
    if cfg.trainable_stages and cfg.protocol in ("frozen", "scratch"):
        raise bad("trainable_stages", f"0 with protocol {cfg.protocol!r} (partial fine-tuning "
                  "needs a pretrained backbone that trains: unfrozen, staged or head_first)")  # fmt: skip
    if cfg.schedule_from == "unfreeze" and cfg.protocol == "frozen":
        raise bad("schedule_from", "'start' with protocol 'frozen' (the backbone never "
                  "unfreezes), or a protocol that unfreezes: staged, head_first")  # fmt: skip


# issue 13 (budget): which epochs are evaluated (shared by the cell and the cost model)
def gain_epoch(epochs: int) -> int:
    """The last epoch boundary at or before 80% of training (0: none after the start); its
    validation accuracy is the baseline of the convergence record (val_gain_last20)."""
    return (4 * epochs) // 5


def evaluation_epochs(epochs: int, eval_every: int) -> list[int]:
    """The epochs after which a cell evaluates, ascending: every `eval_every`-th, the one at or
    before 80% of training (gain_epoch) and always the last."""
    chosen = {e for e in range(eval_every, epochs + 1, eval_every)} | {epochs, gain_epoch(epochs)}
    return sorted(e for e in chosen if e >= 1)
