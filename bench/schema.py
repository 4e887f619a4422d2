"""Every column of every results file, declared once (see docs/results-schema.md).

A `Column` says which file it belongs to, what kind of thing it is, its type and, for a metric,
how a report shows it (label, unit, scale, decimals) and which direction is better. Everything
else derives from these declarations: the writer's column lists and checks (`FILES`), the row a
cell starts from, the report's loaders (which columns are required, numeric or text) and its
metric catalogue (`METRICS`). Adding a metric is one `Column(...)` line here plus the code that
computes it; its position in `RUNS` is its position in runs.csv.

Columns may be added at the end of a file's list; existing ones keep their names and meanings
(the shared contract, `shared=True`, is in shared/design/results-schema.md). Imports nothing
heavy: the report reads this module without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from bench.config import SEED_LIMIT

Kind = Literal["identity", "configuration", "metric", "environment", "key", "derived"]
Dtype = Literal["text", "int", "float"]

RUNS_FILE = "runs.csv"
EPOCHS_FILE = "epochs.csv"
CALIBRATION_FILE = "calibration.csv"
ROBUSTNESS_FILE = "robustness.csv"
SEARCH_FILE = "search.csv"


@dataclass(frozen=True)
class Column:
    """One column of one results file.

    kind: `identity` (which cell: run_id, sweep, status, error), `configuration` (what the cell
    ran), `metric` (what it measured), `environment` (where and when it ran), `key` (a row's
    position within a cell in a side file: epoch, bin, corruption, ...), `derived` (computed by
    the report from other columns, never written).
    dtype: how a reader parses it (`text`, `int`, `float`); an empty field is "not measured".
    required: the report refuses a file that lacks it (others may be absent in older results).
    shared: part of the shared contract (shared/design/results-schema.md) rather than an
    extension of this project.
    label, unit, scale, decimals, better: how a report shows a metric (stored value x scale,
    with `decimals` decimals; better = +1 higher is better, -1 lower is better, 0 neither).
    in_report: the metric appears in the report's catalogue (summary tables and figures).
    low, high: the range a stored value must lie in (inclusive; None: unbounded on that side),
    e.g. [0, 1] for accuracies, ECE and other fractions; readers refuse values outside it.
    empty_when: for a runs.csv metric, when a cell that finished ok leaves it empty (the phase
    that measures it returns None); "" (most metrics): an ok cell always measures it, and the
    writer refuses an ok row without it (bench.results.check_runs_row). A failed cell's row
    leaves empty every metric of the phases it did not finish.
    """

    name: str
    file: str
    kind: Kind
    dtype: Dtype
    required: bool = False
    shared: bool = True
    label: str = ""
    unit: str = ""
    scale: float = 1.0
    decimals: int = 0
    better: int = 0
    in_report: bool = True
    low: float | None = None
    high: float | None = None
    empty_when: str = ""

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def show(self, value: float | None) -> str:
        """The value as a report prints it: scaled, fixed decimals; '' when not measured."""
        if value is None or math.isnan(value):
            return ""
        return f"{value * self.scale:.{self.decimals}f}"


def _runs(name: str, kind: Kind, dtype: Dtype, **extra) -> Column:
    return Column(name, RUNS_FILE, kind, dtype, **extra)


def _metric(name: str, label: str, unit: str, scale: float, decimals: int, better: int, **extra):
    return Column(name, RUNS_FILE, "metric", "float", label=label, unit=unit, scale=scale,
                  decimals=decimals, better=better, **extra)  # fmt: skip


def _side(file: str, names: str, kind: Kind, dtype: Dtype, required: str = "") -> list[Column]:
    needed = set(required.split())
    return [
        Column(n, file, kind, dtype, required=n in needed, **RANGES.get(n, NONNEGATIVE))
        for n in names.split()
    ]


FRACTION = {"low": 0.0, "high": 1.0}  # accuracies, ECE, confidences, rates: never percentages
NONNEGATIVE = {"low": 0.0}
# Ranges of the side files' columns by name (every other side column is >= 0).
_FRACTIONS = "train_acc val_acc test_acc test_ece regularizer_prob bin_lower bin_upper "
RANGES: dict[str, dict] = {
    **dict.fromkeys((_FRACTIONS + "mean_confidence accuracy ece").split(), FRACTION),
    **dict.fromkeys(["run_id", "split", "corruption"], {}),
}


# When a cell that finished ok has no convergence record (Column.empty_when).
NO_GAIN_EPOCH = "no evaluation at or before 80% of training to compare with (e.g. one epoch)"

# runs.csv, in column order: the shared contract, then this project's extensions.
RUNS: list[Column] = [
    _runs("run_id", "identity", "text", required=True),
    _runs("sweep", "identity", "text", required=True),
    _runs("status", "identity", "text", required=True),
    _runs("error", "identity", "text"),
    _runs("regularizer", "configuration", "text", required=True),
    _runs("regularizer_params", "configuration", "text"),
    _runs("schedule", "configuration", "text", required=True),
    _runs("protocol", "configuration", "text", required=True),
    _runs("backbone", "configuration", "text", required=True),
    _runs("pretrained", "configuration", "text", required=True),
    _runs("image_size", "configuration", "int", required=True, low=1),
    _runs("train_size", "configuration", "int", required=True, low=1),
    _runs("epochs", "configuration", "int", required=True, low=1),
    _runs("batch_size", "configuration", "int", required=True, low=1),
    _runs("optimizer", "configuration", "text", required=True),
    _runs("lr", "configuration", "float", required=True, **NONNEGATIVE),
    _runs("weight_decay", "configuration", "float", required=True, **NONNEGATIVE),
    _runs("label_smoothing", "configuration", "float", required=True, **FRACTION),
    _runs("seed", "configuration", "int", required=True, low=0, high=SEED_LIMIT - 1),
    _metric("train_acc", "clean-train acc.", "%", 100, 2, 0, required=True, **FRACTION),
    _metric("train_loss", "clean-train NLL", "nats", 1, 3, -1, in_report=False, **NONNEGATIVE),
    _metric("val_acc", "val. acc.", "%", 100, 2, +1, **FRACTION),
    _metric("val_loss", "val. NLL", "nats", 1, 3, -1, in_report=False, **NONNEGATIVE),
    _metric("test_acc", "test acc.", "%", 100, 2, +1, required=True, **FRACTION),
    _metric("test_loss", "NLL", "nats", 1, 3, -1, **NONNEGATIVE),
    _metric("gap", "gap", "pp", 100, 2, -1, low=-1, high=1),
    _metric("test_ece", "ECE", "%", 100, 2, -1, **FRACTION),
    _metric("test_mce", "MCE", "%", 100, 2, -1, **FRACTION),
    _metric("test_brier", "Brier", "", 1, 4, -1, **NONNEGATIVE),
    _metric("test_mean_conf", "mean confidence", "%", 100, 2, 0, **FRACTION),
    _metric("temperature", "temperature", "", 1, 3, 0, **NONNEGATIVE),
    _metric("test_ece_ts", "ECE after TS", "%", 100, 2, -1, **FRACTION),
    _metric("test_nll_ts", "NLL after TS", "nats", 1, 3, -1, **NONNEGATIVE),
    _metric("test_ece_adaptive", "adaptive ECE", "%", 100, 2, -1, **FRACTION),
    _metric("val_ece", "val. ECE", "%", 100, 2, -1, in_report=False, **FRACTION),
    _metric("flip_rate", "flip rate", "%", 100, 2, -1, **FRACTION),
    _metric("occlusion_acc", "occluded acc.", "%", 100, 2, +1, **FRACTION),
    _metric("corruption_acc", "corrupted acc.", "%", 100, 2, +1, **FRACTION),
    _metric("corruption_ece", "corrupted ECE", "%", 100, 2, -1, **FRACTION),
    _metric("train_images_per_s", "train speed", "images/s", 1, 0, +1, **NONNEGATIVE),
    _metric("eval_images_per_s", "eval speed", "images/s", 1, 0, +1, **NONNEGATIVE),
    _metric("regularizer_ms_per_batch", "regularizer time", "ms/batch", 1, 3, -1, **NONNEGATIVE),
    _metric("peak_mem_mb", "peak memory", "MB", 1, 0, -1, **NONNEGATIVE),
    _metric("wall_s", "wall time", "s", 1, 0, -1, **NONNEGATIVE),
    _runs("device", "environment", "text"),
    _runs("torch_version", "environment", "text"),
    _runs("timm_version", "environment", "text"),
    _runs("git_commit", "environment", "text"),
    _runs("started_at", "environment", "text"),
    # Extensions beyond the shared contract: the rest of the cell's configuration and cost.
    _runs("dataset", "configuration", "text", shared=False),
    _runs("val_size", "configuration", "int", shared=False, **NONNEGATIVE),
    _runs("test_size", "configuration", "int", shared=False, **NONNEGATIVE),
    _runs("data_seed", "configuration", "int", shared=False, low=0, high=SEED_LIMIT - 1),
    _runs("momentum", "configuration", "float", shared=False, **FRACTION),
    _runs("backbone_lr_scale", "configuration", "float", shared=False, **NONNEGATIVE),
    _runs("warmup_epochs", "configuration", "float", shared=False, **NONNEGATIVE),
    _runs("unfreeze_at", "configuration", "float", shared=False, **NONNEGATIVE),
    _runs("train_eval_size", "configuration", "int", shared=False, **NONNEGATIVE),
    _runs("robustness_size", "configuration", "int", shared=False, **NONNEGATIVE),
    _metric(
        "robustness_s",
        "robustness time",
        "s",
        1,
        0,
        -1,
        shared=False,
        in_report=False,
        **NONNEGATIVE,
    ),
    _runs("num_gpus_visible", "environment", "int", shared=False, **NONNEGATIVE),
    # The cell's log (configuration, progress, the traceback of a failure), relative to the
    # results folder: logs/<run_id>.log; empty in results written before logs existed.
    _runs("log", "identity", "text", shared=False),
    # issue 12 (metrics): every robustness number on one fixed subset (the first robustness_size
    # test images), accuracy kept under perturbation as a share of clean accuracy there, and
    # stability among correctly classified images (docs/metrics.md); the sweep's cell count.
    _metric(
        "robust_clean_acc",
        "clean acc. (robustness subset)",
        "%",
        100,
        2,
        +1,
        shared=False,
        **FRACTION,
    ),
    _metric(
        "occlusion_retained", "occluded acc. retained", "%", 100, 2, +1, shared=False, **NONNEGATIVE
    ),
    _metric(
        "corruption_retained",
        "corrupted acc. retained",
        "%",
        100,
        2,
        +1,
        shared=False,
        **NONNEGATIVE,
    ),
    _metric(
        "flip_rate_correct", "flip rate (correct images)", "%", 100, 2, -1, shared=False, **FRACTION
    ),
    _runs("sweep_cells", "identity", "int", shared=False, low=1),
    # issue 13 (budget): the training budget, tiny data and evaluation cadence (configuration);
    # what the fit ran, what it cost and whether it converged (metrics; docs/sweeps.md).
    _runs("train_steps", "configuration", "int", shared=False, **NONNEGATIVE),
    _runs("train_per_class", "configuration", "int", shared=False, **NONNEGATIVE),
    _runs("eval_every", "configuration", "int", shared=False, low=1),
    _runs("steps_run", "metric", "int", shared=False, in_report=False, **NONNEGATIVE),
    _metric("passes", "passes over the training set", "", 1, 2, 0, shared=False,
            in_report=False, **NONNEGATIVE),
    _metric("train_s", "training time", "s", 1, 0, -1, shared=False, in_report=False,
            **NONNEGATIVE),
    _metric("eval_s", "evaluation time", "s", 1, 0, -1, shared=False, in_report=False,
            **NONNEGATIVE),
    _metric("val_gain_last20", "val. gain, last 20%", "pp", 100, 2, 0, shared=False,
            low=-1, high=1, empty_when=NO_GAIN_EPOCH),
    _runs("converged", "metric", "int", shared=False, in_report=False, low=0, high=1,
          empty_when=NO_GAIN_EPOCH),
    # issue 13 (regimes): BatchNorm mode used ("frozen" | "train"; config "auto" resolved), the
    # head_first and partial fine-tuning fields, and the first step with a trainable backbone
    # (empty if it never trains). See docs/protocols.md.
    _runs("bn", "configuration", "text", shared=False),
    _runs("finetune_lr_scale", "configuration", "float", shared=False, **NONNEGATIVE),
    _runs("schedule_from", "configuration", "text", shared=False),
    _runs("trainable_stages", "configuration", "int", shared=False, **NONNEGATIVE),
    _runs("unfreeze_step", "metric", "int", shared=False, in_report=False,
          empty_when="the backbone never trains (frozen; head_first or staged with no step "
          "left after the switch)", **NONNEGATIVE),
    # issue 24 (precision): the autocast precision a cell used ("bf16" | "fp16" | "off"; config
    # "auto" resolved for its device: it changes the numbers, so it is configuration), and how
    # it ran, which changes only its speed: channels_last memory format and torch.compile (1 on,
    # 0 off; empty when the cell failed before its model was built).
    _runs("amp", "configuration", "text", shared=False),
    _runs("channels_last", "metric", "int", shared=False, in_report=False, low=0, high=1),
    _runs("compile", "metric", "int", shared=False, in_report=False, low=0, high=1),
    # issue 26 (provenance): which CIFAR-10 files a cell read (bench.data: "official", "offline
    # JPEG copy", "modified copy", "synthetic"; the fingerprint: sha256 of the files' md5 sums,
    # 16 hex digits) and the sha256 of the sweep file that made the cell (12 hex digits; empty
    # for a single `regbench run`). Empty in results written before them: "not recorded".
    _runs("data_source", "environment", "text", shared=False),
    _runs("data_fingerprint", "environment", "text", shared=False),
    _runs("sweep_file_sha256", "identity", "text", shared=False),
]  # fmt: skip

# Metrics the report derives from runs.csv columns (never written by a cell).
DERIVED: list[Column] = [
    Column("overconfidence", RUNS_FILE, "derived", "float", label="confidence - accuracy",
           unit="pp", scale=100, decimals=2, better=-1),
    Column("regularizer_share", RUNS_FILE, "derived", "float", label="regularizer share of step",
           unit="%", scale=100, decimals=2, better=-1),
    # From calibration.csv's test bins (w_b = bin share of the images): the over- and
    # under-confident parts of the test ECE, sum_b w_b max(0, conf_b - acc_b) and
    # sum_b w_b max(0, acc_b - conf_b); they add up to test_ece.
    Column("ece_over", RUNS_FILE, "derived", "float", label="over-confident ECE",
           unit="pp", scale=100, decimals=2, better=-1),
    Column("ece_under", RUNS_FILE, "derived", "float", label="under-confident ECE",
           unit="pp", scale=100, decimals=2, better=-1),
]  # fmt: skip

EPOCHS: list[Column] = [
    *_side(EPOCHS_FILE, "run_id", "identity", "text", "run_id"),
    *_side(EPOCHS_FILE, "epoch", "key", "int", "epoch"),
    *_side(EPOCHS_FILE, "lr train_loss_aug train_acc train_loss val_acc val_loss test_acc "
           "test_loss test_ece regularizer_prob regularizer_strength images_per_s wall_s",
           "metric", "float", "train_acc test_acc"),
]  # fmt: skip

CALIBRATION: list[Column] = [
    *_side(CALIBRATION_FILE, "run_id", "identity", "text", "run_id"),
    *_side(CALIBRATION_FILE, "split", "key", "text", "split"),
    *_side(CALIBRATION_FILE, "bin", "key", "int", "bin"),
    *_side(CALIBRATION_FILE, "bin_lower bin_upper", "key", "float", "bin_lower bin_upper"),
    *_side(CALIBRATION_FILE, "count", "metric", "int", "count"),
    *_side(CALIBRATION_FILE, "mean_confidence accuracy", "metric", "float",
           "mean_confidence accuracy"),
]  # fmt: skip

ROBUSTNESS: list[Column] = [
    *_side(ROBUSTNESS_FILE, "run_id", "identity", "text", "run_id"),
    *_side(ROBUSTNESS_FILE, "corruption", "key", "text", "corruption"),
    *_side(ROBUSTNESS_FILE, "severity", "key", "int", "severity"),
    *_side(ROBUSTNESS_FILE, "accuracy ece", "metric", "float", "accuracy"),
]

# search.csv (issue 14): the hyperparameter search of a sweep with a [search] table, written by
# bench.search after its trials ran (not per cell: it is not in DECLARED). One row per trial and
# searched parameter: `scope` (the sweep's axis values other than the arm and the seed) and `arm`
# (the regularizer with its parameters, as the sweep names it) say which arm x scope the trial
# belongs to; `value` is the parameter's value in the trial, `low`/`high` the ends of its searched
# range; `score` the mean of `select_metric` over the trial's cells that finished ok (`seeds` of
# them, run ids in `run_ids`); `selected` = 1 for the trial whose configuration the arm's final
# cells (runs.csv) ran, and `at_edge` = 1 where that value is an end of its range (a search to
# widen). See docs/sweeps.md#hyperparameter-search.
SEARCH: list[Column] = [
    Column("scope", SEARCH_FILE, "key", "text", required=True),
    Column("arm", SEARCH_FILE, "key", "text", required=True),
    Column("trial", SEARCH_FILE, "key", "int", required=True, low=0),
    Column("parameter", SEARCH_FILE, "key", "text", required=True),
    Column("value", SEARCH_FILE, "configuration", "float", required=True),
    Column("low", SEARCH_FILE, "configuration", "float", required=True),
    Column("high", SEARCH_FILE, "configuration", "float", required=True),
    Column("select_metric", SEARCH_FILE, "configuration", "text", required=True),
    Column("score", SEARCH_FILE, "metric", "float"),
    Column("seeds", SEARCH_FILE, "metric", "int", required=True, low=0),
    Column("selected", SEARCH_FILE, "metric", "int", required=True, low=0, high=1),
    Column("at_edge", SEARCH_FILE, "metric", "int", required=True, low=0, high=1),
    Column("run_ids", SEARCH_FILE, "identity", "text"),
]
SEARCH_COLUMNS = [c.name for c in SEARCH]
# The convergence rule (runs.csv `converged`; docs/sweeps.md#the-convergence-record): a cell
# converged when its validation accuracy rose by less than this fraction (0.5 percentage points)
# over the last 20% of training (`val_gain_last20`). The runner flags cells with it; the report
# applies it to each arm's mean over seeds.
CONVERGED_GAIN = 0.005

# Classes per dataset (runs.csv `dataset`): what guessing scores, for the report's check of
# cells that learned nothing. bench.data's CIFAR-10 and synthetic sets (a test keeps them equal).
DATASET_CLASSES = {"cifar10": 10, "synthetic": 10}

# What a search may select on (search.csv `select_metric`): the runs.csv metrics measured on the
# validation split that have a better direction: name -> +1 (higher is better) or -1.
SELECT_METRICS = {
    c.name: c.better for c in RUNS if c.kind == "metric" and c.name.startswith("val_") and c.better
}

# file name -> its declared columns; runs.csv is written last, so it doubles as the done-marker.
DECLARED: dict[str, list[Column]] = {
    EPOCHS_FILE: EPOCHS,
    CALIBRATION_FILE: CALIBRATION,
    ROBUSTNESS_FILE: ROBUSTNESS,
    RUNS_FILE: RUNS,
}
# file name -> its column names, in order (what the writer writes).
FILES: dict[str, list[str]] = {name: [c.name for c in cols] for name, cols in DECLARED.items()}

RUNS_COLUMNS = FILES[RUNS_FILE]
EPOCHS_COLUMNS = FILES[EPOCHS_FILE]
CALIBRATION_COLUMNS = FILES[CALIBRATION_FILE]
ROBUSTNESS_COLUMNS = FILES[ROBUSTNESS_FILE]

# Every metric a report can show (runs.csv metrics with in_report, then derived ones), by name.
METRICS: dict[str, Column] = {
    c.name: c for c in [*RUNS, *DERIVED] if c.kind in ("metric", "derived") and c.in_report
}


def columns(
    file: str,
    *,
    kind: Kind | None = None,
    dtype: Dtype | None = None,
    shared: bool | None = None,
    required: bool | None = None,
) -> list[str]:
    """Names of one file's declared columns, in file order, filtered by any of the fields given.

    E.g. `columns("runs.csv", kind="configuration", shared=False)` lists the extension
    configuration columns.
    """  # fmt: skip
    return [
        c.name
        for c in DECLARED[file]
        if (kind is None or c.kind == kind)
        and (dtype is None or c.dtype == dtype)
        and (shared is None or c.shared == shared)
        and (required is None or c.required == required)
    ]
