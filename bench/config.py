"""One cell's configuration: a small frozen dataclass, its validation, and its stable id.

A *cell* is one training run (one backbone x one regularizer x one protocol x one seed ...).
Each field is one `hparam(default, help, check, search=...)` declaration in RunConfig (in the
spirit of DomainBed's hparams_registry); check_config, the `regbench run` flags and help, the
fields a search may choose and the run id's rule read them, so adding a field is one line.
Its `run_id` is a hash of every field that can change a number in the results, so the same
configuration always gets the same id (the resume key of a sweep) and any change gets a new one;
the rule has an explicit version (RunConfig.identity), recorded in runs.csv. Fields that only
say *where* or *how fast* a run happens (data_dir, device, compile, channels_last) are not part
of the id: moving a sweep to another machine resumes it instead of starting it over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = ("frozen", "unfrozen", "staged", "scratch", "head_first")
BN_MODES = ("auto", "frozen", "train")  # "auto": frozen for staged/head_first/frozen, else train
SCHEDULE_FROM = ("start", "unfreeze")
# issue 23: a cell trains to its budget, or until validation accuracy plateaus (the budget caps it)
STOP_MODES = ("budget", "plateau")
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

MAX_EPOCHS = 10_000  # epochs (with train_steps: evaluation periods); real sweeps use <= 300
MAX_STEPS = 10_000_000  # optimizer steps: days of GPU time for the smallest model
# More images than any dataset regbench loads holds (CIFAR-10: 60,000): sizes and counts.
MAX_IMAGES = 1_000_000


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


@dataclass(frozen=True)
class Range:
    """A field's default search range: [low, high], log-uniform with `log` (a sweep's
    `[search.space] NAME = "default"` searches it; docs/sweeps.md#hyperparameter-search)."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Spec:
    """Everything about one RunConfig field besides its name, type and default (see `hparam`)."""

    help: str  # one line for `regbench run --help` and the docs
    choices: tuple[str, ...] = ()  # the allowed values of a text field (empty: any text)
    bound: Bound | None = None  # the plausible range of a numeric field
    search: Range | None = None  # the default search range; None: a search may not choose it
    identity: bool = True  # False: says where or how fast a cell runs, not what it measures
    flag: bool = True  # False: no `regbench run` flag (set by a sweep or another flag)


def hparam(
    default: Any,
    help_text: str,
    check: Bound | tuple[str, ...] | None = None,
    *,
    search: Range | None = None,
    identity: bool = True,
    flag: bool = True,
) -> Any:
    """One RunConfig field, declared once (DomainBed's `_hparam(name, default, distribution)`):
    its default, its check (a `Bound` for a number, a tuple of choices for text; the annotated
    type is always checked, a float's finiteness too), its help text and, where a search may
    choose it, its default search range. `identity=False` leaves it out of run_id; `flag=False`
    gives it no `regbench run` flag. check_config, the `regbench run` flags and help, a search's
    searchable fields and the run id's rule all read these declarations (`specs()`)."""
    if isinstance(check, Bound):
        spec = Spec(help_text, bound=check, search=search, identity=identity, flag=flag)
    else:
        spec = Spec(
            help_text, choices=tuple(check or ()), search=search, identity=identity, flag=flag
        )
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"spec": spec})
    return field(default=default, metadata={"spec": spec})


_SIZE = Bound(0, MAX_IMAGES, why="0 means all")
_SEED = Bound(0, SEED_LIMIT, high_open=True, why="torch's CPU generator uses only the low 32 "
              "bits, so larger or negative seeds repeat smaller ones")  # fmt: skip


@dataclass(frozen=True)
class RunConfig:
    """Everything one cell needs, one `hparam(default, help, check, ...)` per field, grouped by
    what the field is. Defaults suit a CPU smoke run."""

    # --- which sweep the cell belongs to (bookkeeping; set by bench.sweep) ---
    sweep: str = hparam("adhoc", "sweep name written to runs.csv (default: the results "
                        "folder's name)", identity=False)  # fmt: skip
    sweep_cells: int = hparam(0, "cells of the sweep this run belongs to (set by regbench sweep; "
                              "0 = a single run, written empty)",
                              Bound(0, MAX_IMAGES, why="the sweep's cell count; 0 = a single run"),
                              identity=False)  # fmt: skip
    sweep_file_sha256: str = hparam("", "sha256 (12 hex digits) of the sweep file the cell came "
                                    "from; empty for a single run", identity=False, flag=False)  # fmt: skip
    # --- the data ---
    dataset: str = hparam("cifar10", "synthetic is for tests only", DATASETS)
    data_dir: str = hparam("", "folder holding cifar-10-batches-py (default: $REGBENCH_DATA, "
                           "else ./data/cifar10, else ../shared/data/cifar10, relative to the "
                           "current folder; downloaded into the first if missing)",
                           identity=False)  # fmt: skip
    image_size: int = hparam(32, "input side in pixels after resizing on the device",
                             Bound(1, MAX_IMAGE_SIZE, why="pixels per side"))  # fmt: skip
    train_size: int = hparam(0, "training images after the validation hold-out; 0 = all", _SIZE)
    train_per_class: int = hparam(0, "stratified training images per class (0 = use "
                                  "--train-size)", Bound(0, MAX_IMAGES, why="images per class; "
                                  "0 = use train_size"))  # fmt: skip
    val_size: int = hparam(5000, "stratified validation hold-out from the training set",
                           Bound(10, MAX_IMAGES, why="temperature scaling and val metrics need a "
                                 "validation split of at least one image per class"))  # fmt: skip
    test_size: int = hparam(0, "stratified test subset; 0 = the whole test set", _SIZE)
    train_eval_size: int = hparam(10000, "clean-train metrics on a fixed subset of at most this "
                                  "many", _SIZE)  # fmt: skip
    robustness_size: int = hparam(2000, "test images used for corruption / occlusion metrics",
                                  _SIZE)  # fmt: skip
    # issue 28: object size as an axis, and two objects in one image (docs/metrics.md)
    object_fraction: float = hparam(1.0, "every image (train, val, test) shrunk, centred, into a "
                                    "frame of this fraction of its area on the training set's "
                                    "mean pixel (1 = as loaded)",
                                    Bound(0, 1, low_open=True, why="a fraction of the image's "
                                          "area; 1 = the image as loaded"))  # fmt: skip
    composite_size: int = hparam(0, "two-object composites (left half of one test image, right "
                                 "half of another of a different class) evaluated; 0 = none",
                                 Bound(0, MAX_IMAGES, why="composites evaluated; 0 = none"))  # fmt: skip
    # --- the seeds ---
    seed: int = hparam(0, "run seed: head init, batch order, augmentation, regularizer draws",
                       _SEED)  # fmt: skip
    data_seed: int = hparam(FOLLOW_SEED, "fixes the validation hold-out and the train/test "
                            "subsets (default: follows --seed)",
                            Bound(0, SEED_LIMIT, high_open=True, why="as seed"))  # fmt: skip
    # --- the optimizer and its learning-rate schedule ---
    optimizer: str = hparam("sgd", "optimizer", OPTIMIZERS)
    lr: float = hparam(0.05, "peak learning rate of the head",
                       Bound(0, 10, low_open=True, why="a peak learning rate above 10 diverges"),
                       search=Range(1e-3, 1.0, log=True))  # fmt: skip
    backbone_lr_scale: float = hparam(0.1, "backbone lr = lr * this (unfrozen/staged)",
                                      Bound(0, 10, why="backbone lr = lr * this"),
                                      search=Range(0.01, 1.0, log=True))  # fmt: skip
    finetune_lr_scale: float = hparam(0.1, "head_first: fine-tuning peak lr = lr * this (own "
                                      "warmup + cosine)",
                                      Bound(0, 10, low_open=True, why="fine-tuning lr = lr * "
                                            "this"), search=Range(0.01, 1.0, log=True))  # fmt: skip
    momentum: float = hparam(0.9, "SGD momentum (Nesterov)",
                             Bound(0, 1, high_open=True, why="SGD with Nesterov momentum needs "
                                   "> 0"), search=Range(0.8, 0.99))  # fmt: skip
    weight_decay: float = hparam(5e-4, "weight decay", Bound(0, 1),
                                 search=Range(1e-6, 1e-2, log=True))  # fmt: skip
    warmup_epochs: float = hparam(0.5, "linear warmup (epochs, fractional ok), then cosine "
                                  "decay to 0", Bound(0, MAX_EPOCHS, why="in epochs, fractional "
                                  "ok"), search=Range(0.0, 5.0))  # fmt: skip
    # --- the model and what of it trains (docs/protocols.md) ---
    backbone: str = hparam("tf_efficientnet_lite0", "any timm model name")
    pretrained: str = hparam("auto", "auto | none | PATH to weights (.safetensors / .pth)")
    protocol: str = hparam("frozen", "what trains: the head only, everything, frozen then "
                           "unfrozen, from scratch, or head_first (linear probe, then fine-tune "
                           "at a low lr; docs/protocols.md)", PROTOCOLS)  # fmt: skip
    unfreeze_at: float = hparam(0.5, "staged / head_first: fraction of training spent frozen",
                                Bound(0, 1, low_open=True, high_open=True,
                                      why="a fraction of training"),
                                search=Range(0.1, 0.9))  # fmt: skip
    trainable_stages: int = hparam(0, "only the backbone's last k stages train (0 = all)",
                                   Bound(0, 100, why="the last k stages train; 0 = all"))  # fmt: skip
    bn: str = hparam("auto", "backbone BatchNorm while it trains: frozen (running statistics "
                     "kept), train, or auto (frozen for staged / head_first, train for unfrozen "
                     "/ scratch); runs.csv records the mode used", BN_MODES)  # fmt: skip
    # --- the regularizer ---
    regularizer: str = hparam("none", "see `regbench regularizers`")
    regularizer_params: dict[str, Any] = hparam({}, "the regularizer's parameters, schedule "
                                                "included (--reg-param, --schedule)", flag=False)  # fmt: skip
    schedule_from: str = hparam("start", "the regularizer's schedule counts progress from the "
                                "start or the unfreeze (staged / head_first / unfrozen)",
                                SCHEDULE_FROM)  # fmt: skip
    label_smoothing: float = hparam(0.0, "label smoothing, equal in every arm",
                                    Bound(0, 1, high_open=True), search=Range(0.0, 0.2))  # fmt: skip
    # --- the training budget and the evaluation cadence (docs/sweeps.md) ---
    epochs: int = hparam(3, "training epochs", Bound(1, MAX_EPOCHS))
    batch_size: int = hparam(128, "training batch size", Bound(1, 65_536))
    train_steps: int = hparam(0, "training budget in optimizer steps (0 = use --epochs); with "
                              "it, --epochs is the number of evaluation periods",
                              Bound(0, MAX_STEPS, why="optimizer steps in all; 0 = use epochs"))  # fmt: skip
    eval_every: int = hparam(1, "epochs between evaluations (the 80% point and the last are "
                             "always evaluated)", Bound(1, MAX_EPOCHS, why="epochs between "
                             "evaluations; the last epoch is always evaluated"))  # fmt: skip
    # issue 23: budgets in passes (comparable across training-set sizes) and the plateau rule
    train_passes: float = hparam(0.0, "training budget in passes over the training subset (0 = "
                                 "use --train-steps or --epochs); with it, --epochs is the number "
                                 "of evaluation periods", Bound(0, MAX_EPOCHS, why="passes over "
                                 "the training subset; 0 = use train_steps or epochs"))  # fmt: skip
    stop: str = hparam("budget", "when training ends: at the budget, or at a validation plateau "
                       "(the budget is then the cap; docs/protocols.md#the-plateau-rule)",
                       STOP_MODES)  # fmt: skip
    patience: int = hparam(3, "plateau: evaluation periods without a rise of --min-gain in "
                           "validation accuracy before a phase ends",
                           Bound(1, MAX_EPOCHS, why="evaluation periods"))  # fmt: skip
    min_gain: float = hparam(0.005, "plateau: the rise in validation accuracy (a fraction) that "
                             "counts as still learning", Bound(0, 1, why="a fraction of the "
                             "validation images"))  # fmt: skip
    # --- where and how fast it runs (left out of run_id, but amp: it changes the numbers) ---
    device: str = hparam("auto", "where to train", DEVICES, identity=False)
    compile: bool = hparam(False, "torch.compile the model (any device; a fresh compile per "
                           "cell)", identity=False)  # fmt: skip
    amp: str = hparam("auto", "autocast precision: bf16, fp16 (with gradient scaling), off "
                      "(float32), or auto (bf16 on CUDA, off on the CPU); runs.csv records the "
                      "precision used", AMP_MODES)  # fmt: skip
    channels_last: str = hparam("auto", "channels_last memory format: on, off, or auto (on for "
                                "CUDA, off on the CPU)", CHANNELS_LAST_MODES, identity=False)  # fmt: skip
    save_logits: bool = hparam(False, "keep final test logits (float16) as .npz",
                               identity=False)  # fmt: skip

    def __post_init__(self) -> None:
        if self.data_seed is FOLLOW_SEED:
            object.__setattr__(self, "data_seed", self.seed)  # frozen: set once, here

    @property
    def identity_version(self) -> int:
        """The identity rule this cell's run_id follows (runs.csv `identity_version`): 1 while
        every field version 1 does not know is at its default, else 2 (see `identity`)."""
        specs_ = specs(type(self))
        later = [n for n, (f, s) in specs_.items() if s.identity and n not in IDENTITY_V1_FIELDS]
        at_default = all(_is_default(getattr(self, n), specs_[n][0]) for n in later)
        return 1 if at_default else 2

    def identity(self) -> dict[str, Any]:
        """The fields that define what the cell measures (the input of run_id), by the rule of
        the cell's `identity_version`.

        Version 1 is the rule every committed run id was made by, frozen: the fields in
        IDENTITY_V1_FIELDS at their values, except those in IDENTITY_V1_OMITTED while they hold
        the value that reproduces older behaviour, `bn` as the mode used and only where it
        differs from the older behaviour (OLD_BN), and the mark of staged cells that re-warm
        their backbone (STAGED_REWARM_MARK). It never changes, so committed cells keep their
        ids and a sweep resumes them.

        Version 2 is the rule for a cell that sets a field version 1 does not know: every
        identity field that differs from its declared default (`bn` always, as the mode used),
        plus {"identity_version": 2}, so no version-2 id equals a version-1 id. A field added
        later needs no exception: at its default (declared as what the code did before it) the
        cell stays version 1 with its old id; set to anything else, the cell is version 2 and
        the field is in its id. What a version-2 id means rests on the declared defaults, so a
        default never changes (a different default is a new field); a change of what the code
        does without a field (as the staged re-warm was) gets a field, not a mark.

        Why not hash every field, defaults included, in version 2: then each field added later
        would change every version-2 id and need a version 3; leaving defaults out makes adding
        a field free at the price of frozen defaults, which a field's meaning needs anyway.
        """
        values = dataclasses.asdict(self)
        if self.identity_version == 1:
            values = {name: values[name] for name in IDENTITY_V1_FIELDS}
            for name, default in IDENTITY_V1_OMITTED.items():
                if values[name] == default and type(values[name]) is type(default):
                    values.pop(name)
            values["bn"] = resolved_bn(self)
            if self.protocol == "frozen" or values["bn"] == OLD_BN:
                values.pop("bn")
            if self.protocol == "staged":
                values[STAGED_REWARM_MARK[0]] = STAGED_REWARM_MARK[1]
            return values
        specs_ = specs(type(self))
        changed = {n: values[n] for n, (f, s) in specs_.items()
                   if s.identity and not _is_default(values[n], f)}  # fmt: skip
        return {**changed, "bn": resolved_bn(self), "identity_version": 2}

    @property
    def run_id(self) -> str:
        """Stable 12-hex-digit id: sha256 of the identity fields as canonical JSON."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


def specs(config_type: type = RunConfig) -> dict[str, tuple[dataclasses.Field, Spec]]:
    """Every field of a config dataclass (RunConfig, or a test's subclass) with its `Spec`, in
    declaration order. TypeError naming a field not declared with `hparam`."""
    found = {}
    for f in dataclasses.fields(config_type):
        spec = f.metadata.get("spec")
        if not isinstance(spec, Spec) or not spec.help:
            raise TypeError(f"{config_type.__name__}.{f.name}: declare it with hparam(default, "
                            "help, check) in bench/config.py")  # fmt: skip
        found[f.name] = (f, spec)
    return found


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _is_default(value: Any, f: dataclasses.Field) -> bool:
    """value is the field's declared default (an int where a float belongs counts as equal)."""
    default = _default(f)
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    if isinstance(default, float) and isinstance(value, int):
        return float(value) == default
    return type(value) is type(default) and value == default


# Identity version 1, frozen (see RunConfig.identity): the fields it hashes ...
IDENTITY_V1_FIELDS = (
    "amp", "backbone", "backbone_lr_scale", "batch_size", "bn", "data_seed", "dataset", "epochs",
    "eval_every", "finetune_lr_scale", "image_size", "label_smoothing", "lr", "momentum",
    "optimizer", "pretrained", "protocol", "regularizer", "regularizer_params",
    "robustness_size", "schedule_from", "seed", "test_size", "train_eval_size",
    "train_per_class", "train_size", "train_steps", "trainable_stages", "unfreeze_at",
    "val_size", "warmup_epochs", "weight_decay",
)  # fmt: skip
# ... the fields it leaves out while they hold the value that reproduces the code before them
# (added after results were committed: issue 13's budget and regimes, issue 24's precision) ...
IDENTITY_V1_OMITTED = {
    "train_steps": 0, "train_per_class": 0, "eval_every": 1, "finetune_lr_scale": 0.1,
    "schedule_from": "start", "trainable_stages": 0, "amp": "auto",
}  # fmt: skip
# ... `bn` as the mode a cell uses, only where it changes what the older code did: BatchNorm in
# train mode while the backbone trains was the only behaviour, and a frozen backbone never
# trains. So staged cells (now "frozen" by default) got new ids.
OLD_BN = "train"
# ... and staged cells whose backbone group warms up again at the switch (bench.train.StepPlan,
# backbone_rewarm_steps; issue 13) train differently from the staged cells committed before it,
# with no field to tell them apart: this mark enters the id of every staged cell, so a sweep
# resumed from an older results folder reruns them instead of mixing the two behaviours.
STAGED_REWARM_MARK = ("staged_backbone_rewarm", True)
IDENTITY_VERSIONS = (1, 2)

FLOAT_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.type == "float")
# Fields left out of run_id: they change where/how fast a cell runs, not what it measures.
NON_IDENTITY_FIELDS = tuple(name for name, (_, s) in specs().items() if not s.identity)
# The plausible range of every numeric RunConfig field, from its declaration: check_config
# refuses a value outside it with the range in the message, and bench.search checks every
# searched value (both ends of a range) against it. Every int and float field has one (a test).
BOUNDS: dict[str, Bound] = {name: s.bound for name, (_, s) in specs().items() if s.bound}
# Fields a search may choose (those with a default search range): training hyperparameters that
# leave the data, the model and the compared arm alone.
SEARCH_RANGES: dict[str, Range] = {name: s.search for name, (_, s) in specs().items() if s.search}


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
    for f in dataclasses.fields(type(cfg)):
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


@dataclass(frozen=True)
class Rule:
    """A check across fields, which no one field's declaration can state: `broken(cfg)` says
    whether the configuration breaks it; the message names `field` and what it may be given the
    others (`allowed`), or is `message` where that reads better. Both are format strings over
    the configuration's fields."""

    name: str
    field: str
    allowed: str
    broken: Callable[[RunConfig], bool]
    message: str = ""


def schedule_event(cfg: RunConfig) -> str:
    """The event the cell's regularizer schedule waits for: "unfreeze", "plateau" (the
    on_unfreeze / on_plateau schedules: off until it), or "" (counted from the start)."""
    from regularizers.schedules import schedule_event as event_of  # torch-free

    return event_of(cfg.regularizer_params.get("schedule"))


def watches_plateau(cfg: RunConfig) -> bool:
    """Whether the cell checks validation accuracy after every epoch for the plateau rule: it
    stops at a plateau, or its regularizer switches on at one."""
    return cfg.stop == "plateau" or schedule_event(cfg) == "plateau"


def _one_of(name: str, first: str, second: str) -> Rule:
    """The rule that at most one of two alternative fields is set (non-zero)."""
    return Rule(
        name, first, f"0 while {second} is set",
        lambda c: bool(getattr(c, first) and getattr(c, second)),
        message=f"{first}={{{first}}} and {second}={{{second}}} are both set; set one of them "
        "and the other to 0",
    )  # fmt: skip


# The cross-field rules, checked after every field's own check.
RULES = (
    Rule("sgd_needs_momentum", "momentum", "a value > 0 with optimizer 'sgd' (Nesterov momentum)",
         lambda c: c.optimizer == "sgd" and c.momentum == 0),
    Rule("scratch_needs_no_weights", "pretrained", "'none' (or 'auto') with protocol 'scratch'",
         lambda c: c.protocol == "scratch" and c.pretrained not in ("none", "auto")),
    Rule("steps_cover_the_epochs", "train_steps", "an integer >= epochs ({epochs}): with a step "
         "budget, epochs is the number of evaluation periods; lower epochs or raise train_steps",
         lambda c: 0 < c.train_steps < c.epochs),
    _one_of("one_budget", "train_steps", "train_passes"),
    Rule("plateau_needs_periods", "patience", "an integer < epochs ({epochs}) with stop "
         "'plateau' or an on_plateau schedule: the rule needs more evaluation periods than its "
         "patience; raise epochs (the periods of the budget) or lower patience",
         lambda c: watches_plateau(c) and c.patience >= c.epochs),
    _one_of("one_training_size", "train_size", "train_per_class"),
    Rule("partial_fine_tuning_trains_a_backbone", "trainable_stages", "0 with protocol "
         "{protocol!r} (partial fine-tuning needs a pretrained backbone that trains: unfrozen, "
         "staged or head_first)",
         lambda c: bool(c.trainable_stages) and c.protocol in ("frozen", "scratch")),
    Rule("schedule_from_unfreeze_needs_an_unfreeze", "schedule_from", "'start' with protocol "
         "'frozen' (the backbone never unfreezes), or a protocol that unfreezes: staged, "
         "head_first", lambda c: c.schedule_from == "unfreeze" and c.protocol == "frozen"),
    Rule("on_unfreeze_needs_a_switch", "protocol", "staged or head_first with the on_unfreeze "
         "schedule (it waits for the backbone to unfreeze; {protocol!r} has no switch): use a "
         "protocol that unfreezes, or another schedule",
         lambda c: schedule_event(c) == "unfreeze" and c.protocol not in ("staged", "head_first")),
    Rule("event_schedule_counts_from_its_event", "schedule_from", "'start' with an on_unfreeze "
         "or on_plateau schedule (it counts from its own event); set schedule_from = 'start'",
         lambda c: bool(schedule_event(c)) and c.schedule_from != "start"),
)  # fmt: skip


def check_config(cfg: RunConfig, where: str = "config") -> None:
    """Cheap checks that need no data, model or network; raises ValueError naming the fix.

    Each field's own check comes from its declaration (type; choices or a finite value within
    its bound), then the regularizer (a registered name whose parameters build), then RULES."""

    def bad(name: str, allowed: str) -> ValueError:
        return ValueError(f"{where}: {name}={getattr(cfg, name)!r} is invalid; allowed: {allowed}")

    _check_types(cfg, where)
    for name, (f, spec) in specs(type(cfg)).items():
        value = getattr(cfg, name)
        if spec.choices and value not in spec.choices:
            raise bad(name, ", ".join(spec.choices))
        if f.type == "float" and not math.isfinite(value):
            raise bad(name, "a finite number (not inf or nan)")
        if spec.bound and not spec.bound.holds(value):
            raise bad(name, spec.bound.allowed(integer=f.type != "float"))
    import regularizers  # local import: keeps `bench.config` light for the report side

    if cfg.regularizer not in regularizers.available():
        raise bad("regularizer", ", ".join(regularizers.available()))
    try:
        regularizers.build(cfg.regularizer, num_classes=10, **cfg.regularizer_params)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: regularizer {cfg.regularizer!r}: {error}") from None
    for rule in RULES:
        if rule.broken(cfg):
            values = dataclasses.asdict(cfg)
            if rule.message:
                raise ValueError(f"{where}: " + rule.message.format(**values))
            raise bad(rule.field, rule.allowed.format(**values))


# issue 13 (budget): which epochs are evaluated (shared by the cell and the cost model)
def gain_epoch(epochs: int) -> int:
    """The last epoch boundary at or before 80% of training (0: none after the start); its
    validation accuracy is the baseline of the convergence record (val_gain_last20)."""
    return (4 * epochs) // 5


def evaluation_epochs(epochs: int, eval_every: int, plateau: bool = False) -> list[int]:
    """The epochs after which a cell evaluates in full, ascending: every `eval_every`-th, the
    one at or before 80% of training (gain_epoch) and always the last. Under the plateau rule
    (`plateau`) not the 80% point: validation after every epoch is the convergence record there,
    and the stop is evaluated wherever it comes."""
    chosen = {e for e in range(eval_every, epochs + 1, eval_every)} | {epochs}
    if not plateau:
        chosen.add(gain_epoch(epochs))
    return sorted(e for e in chosen if e >= 1)
