"""Every column of every results file, declared once (see docs/results-schema.md).

A `Column` says which file it belongs to, what kind of thing it is, its type and, for a metric,
how a report shows it (label, unit, scale, decimals) and which direction is better. Everything
else derives from these declarations: the writer's column lists and checks (`FILES`), the row a
cell starts from, the report's loaders (which columns are required, numeric or text) and its
metric catalogue (`METRICS`). Adding a metric is one `Column(...)` line here plus the code that
computes it; its position in `RUNS` is its position in runs.csv. A configuration column that
holds a RunConfig field (`_config`) takes its type and range from the field's declaration.

Columns may be added at the end of a file's list; existing ones keep their names and meanings
(the shared contract, `shared=True`, is in shared/design/results-schema.md). Imports nothing
heavy: the report reads this module without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from bench.config import IDENTITY_VERSIONS, specs

Kind = Literal["identity", "configuration", "metric", "environment", "key", "derived"]
Dtype = Literal["text", "int", "float"]

RUNS_FILE = "runs.csv"
EPOCHS_FILE = "epochs.csv"
CALIBRATION_FILE = "calibration.csv"
ROBUSTNESS_FILE = "robustness.csv"
SEARCH_FILE = "search.csv"


@dataclass(frozen=True)
class Margin:
    """A smallest effect of interest: `value` in stored units (fractions), and `what` the metrics
    it covers, as the report's Method text names them (argued in docs/report.md)."""

    value: float
    what: str


# The margins a metric column may name (`Column.margin`), in the order the Method text lists
# them: accuracy-like metrics 0.5 pp, calibration errors 1 pp, retained accuracy 1% of the clean
# accuracy, flip rates 0.5 pp.
ACCURACY_MARGIN = Margin(0.005, "accuracies")
CALIBRATION_MARGIN = Margin(0.01, "calibration errors")
RETAINED_MARGIN = Margin(0.01, "retained accuracy")
FLIP_MARGIN = Margin(0.005, "flip rates")
MARGINS = [ACCURACY_MARGIN, CALIBRATION_MARGIN, RETAINED_MARGIN, FLIP_MARGIN]


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
    margin: the metric's smallest effect of interest (a `Margin` of `MARGINS`): a claim on it
    uses it unless the claim declares its own, and the report's bold and filled marks need a
    difference at least this large; None: no margin (0 for the marks).
    image_metric: the per-image metric (computed in `bench.report.stats`: "accuracy", "ece",
    "ece_over") the two-level bootstrap recomputes from outcome files for a claim on this
    metric; "" when the metric has no image-level interval.
    source: for a derived metric, the side file it is computed from ("" : runs.csv's columns);
    a claim on it is "not measured" when that file is absent.
    formula: for a derived metric, how claims.csv's `metric` column names it (its definition,
    e.g. "test_mean_conf - test_acc"); "": its name.
    companion: a metric whose arms' means a claim row on this one notes beside its effect
    (ece_under beside ece_over: the part of the ECE the claim does not test).
    rank: the metric's place in the report's catalogue (summary.csv's metric columns, lowest
    first); None: after the ranked ones, in declaration order. table: shown in the summary
    table of report.md and the paper (in rank order).
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
    margin: Margin | None = None
    image_metric: str = ""
    source: str = ""
    formula: str = ""
    companion: str = ""
    rank: int | None = None
    table: bool = False
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


def _config(name: str, **extra) -> Column:
    """A configuration column holding the RunConfig field of the same name: its dtype and range
    come from the field's one declaration (bench.config `hparam`); `extra` adds what only the
    column says (required, shared, or a range where the row stores what the cell used)."""
    field, spec = CONFIG_FIELDS[name]
    dtype: Dtype = field.type if field.type in ("int", "float") else "text"  # type: ignore[assignment]
    declared = {}
    if spec.bound:  # inclusive ends: an open int end is the next integer inside
        high = spec.bound.high - (dtype == "int" and spec.bound.high_open)
        declared = {"low": spec.bound.low + (dtype == "int" and spec.bound.low_open), "high": high}
    return Column(name, RUNS_FILE, "configuration", dtype, **{**declared, **extra})


def _metric(name: str, label: str, unit: str, scale: float, decimals: int, better: int, **extra):
    return Column(name, RUNS_FILE, "metric", "float", label=label, unit=unit, scale=scale,
                  decimals=decimals, better=better, **extra)  # fmt: skip


def _side(file: str, names: str, kind: Kind, dtype: Dtype, required: str = "") -> list[Column]:
    needed = set(required.split())
    return [
        Column(n, file, kind, dtype, required=n in needed, **RANGES.get(n, NONNEGATIVE))
        for n in names.split()
    ]


CONFIG_FIELDS = specs()  # RunConfig's fields with their declarations (bench.config)
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
# When a cell measures no two-object composites (issue 28).
NO_COMPOSITES = "composite_size = 0 (no two-object composites evaluated)"

# runs.csv, in column order: the shared contract, then this project's extensions.
RUNS: list[Column] = [
    _runs("run_id", "identity", "text", required=True),
    _runs("sweep", "identity", "text", required=True),
    _runs("status", "identity", "text", required=True),
    _runs("error", "identity", "text"),
    _config("regularizer", required=True),
    _runs("regularizer_params", "configuration", "text"),
    _runs("schedule", "configuration", "text", required=True),
    _config("protocol", required=True),
    _config("backbone", required=True),
    _config("pretrained", required=True),
    _config("image_size", required=True),
    _config("train_size", required=True, low=1),  # the images drawn (>= 1)
    _config("epochs", required=True),
    _config("batch_size", required=True),
    _config("optimizer", required=True),
    _config("lr", required=True),
    _config("weight_decay", required=True),
    _config("label_smoothing", required=True),
    _config("seed", required=True),
    _metric("train_acc", "clean-train acc.", "%", 100, 2, 0, required=True, **FRACTION,
            rank=2, table=True, margin=ACCURACY_MARGIN),
    _metric("train_loss", "clean-train NLL", "nats", 1, 3, -1, in_report=False, **NONNEGATIVE),
    _metric("val_acc", "val. acc.", "%", 100, 2, +1, **FRACTION,
            rank=9),
    _metric("val_loss", "val. NLL", "nats", 1, 3, -1, in_report=False, **NONNEGATIVE),
    _metric("test_acc", "test acc.", "%", 100, 2, +1, required=True, **FRACTION,
            rank=1, table=True, margin=ACCURACY_MARGIN, image_metric="accuracy"),
    _metric("test_loss", "NLL", "nats", 1, 3, -1, **NONNEGATIVE,
            rank=5, table=True),
    _metric("gap", "gap", "pp", 100, 2, -1, low=-1, high=1,
            rank=3, table=True, margin=ACCURACY_MARGIN),
    _metric("test_ece", "ECE", "%", 100, 2, -1, **FRACTION,
            rank=4, table=True, margin=CALIBRATION_MARGIN, image_metric="ece"),
    _metric("test_mce", "MCE", "%", 100, 2, -1, **FRACTION,
            rank=10),
    _metric("test_brier", "Brier", "", 1, 4, -1, **NONNEGATIVE,
            rank=6, table=True),
    _metric("test_mean_conf", "mean confidence", "%", 100, 2, 0, **FRACTION,
            rank=11),
    _metric("temperature", "temperature", "", 1, 3, 0, **NONNEGATIVE,
            rank=18),
    _metric("test_ece_ts", "ECE after TS", "%", 100, 2, -1, **FRACTION,
            rank=15, margin=CALIBRATION_MARGIN),
    _metric("test_nll_ts", "NLL after TS", "nats", 1, 3, -1, **NONNEGATIVE,
            rank=16),
    _metric("test_ece_adaptive", "adaptive ECE", "%", 100, 2, -1, **FRACTION,
            rank=17),
    _metric("val_ece", "val. ECE", "%", 100, 2, -1, in_report=False, **FRACTION),
    _metric("flip_rate", "flip rate", "%", 100, 2, -1, **FRACTION,
            rank=7, table=True, margin=FLIP_MARGIN),
    _metric("occlusion_acc", "occluded acc.", "%", 100, 2, +1, **FRACTION,
            rank=19, margin=ACCURACY_MARGIN),
    _metric("corruption_acc", "corrupted acc.", "%", 100, 2, +1, **FRACTION,
            rank=20, margin=ACCURACY_MARGIN),
    _metric("corruption_ece", "corrupted ECE", "%", 100, 2, -1, **FRACTION,
            rank=21, margin=CALIBRATION_MARGIN),
    _metric("train_images_per_s", "train speed", "images/s", 1, 0, +1, **NONNEGATIVE,
            rank=8, table=True),
    _metric("eval_images_per_s", "eval speed", "images/s", 1, 0, +1, **NONNEGATIVE,
            rank=22),
    _metric("regularizer_ms_per_batch", "regularizer time", "ms/batch", 1, 3, -1, **NONNEGATIVE,
            rank=23),
    _metric("peak_mem_mb", "peak memory", "MB", 1, 0, -1, **NONNEGATIVE,
            rank=25),
    _metric("wall_s", "wall time", "s", 1, 0, -1, **NONNEGATIVE,
            rank=26),
    _runs("device", "environment", "text"),
    _runs("torch_version", "environment", "text"),
    _runs("timm_version", "environment", "text"),
    _runs("git_commit", "environment", "text"),
    _runs("started_at", "environment", "text"),
    # Extensions beyond the shared contract: the rest of the cell's configuration and cost.
    _config("dataset", shared=False),
    _config("val_size", shared=False),
    _config("test_size", shared=False),
    _config("data_seed", shared=False),
    _config("momentum", shared=False),
    _config("backbone_lr_scale", shared=False),
    _config("warmup_epochs", shared=False),
    _config("unfreeze_at", shared=False),
    _config("train_eval_size", shared=False),
    _config("robustness_size", shared=False),
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
        "occlusion_retained", "occluded acc. retained", "%", 100, 2, +1, shared=False, **NONNEGATIVE,
        margin=RETAINED_MARGIN,
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
        margin=RETAINED_MARGIN,
    ),
    _metric(
        "flip_rate_correct", "flip rate (correct images)", "%", 100, 2, -1, shared=False, **FRACTION,
        margin=FLIP_MARGIN,
    ),
    _runs("sweep_cells", "identity", "int", shared=False, low=1),
    # issue 13 (budget): the training budget, tiny data and evaluation cadence (configuration);
    # what the fit ran, what it cost and whether it converged (metrics; docs/sweeps.md).
    _config("train_steps", shared=False),
    _config("train_per_class", shared=False),
    _config("eval_every", shared=False),
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
    # issue 23: the budget in passes, the plateau rule's settings, and why the fit stopped
    # ("budget": it ran its budget; "plateau": the rule ended it; "cap": the rule's cap did).
    _config("train_passes", shared=False),
    _config("stop", shared=False),
    _config("patience", shared=False),
    _config("min_gain", shared=False),
    _runs("stop_reason", "metric", "text", shared=False, in_report=False),
    # issue 13 (regimes): BatchNorm mode used ("frozen" | "train"; config "auto" resolved), the
    # head_first and partial fine-tuning fields, and the first step with a trainable backbone
    # (empty if it never trains). See docs/protocols.md.
    _config("bn", shared=False),
    _config("finetune_lr_scale", shared=False),
    _config("schedule_from", shared=False),
    _config("trainable_stages", shared=False),
    _runs("unfreeze_step", "metric", "int", shared=False, in_report=False,
          empty_when="the backbone never trains (frozen; head_first or staged with no step "
          "left after the switch)", **NONNEGATIVE),
    # issue 28: the step the regularizer's schedule counts from: 0 (schedule_from "start"), the
    # unfreeze (schedule_from "unfreeze"; the on_unfreeze schedule), or the step the validation
    # accuracy plateaued (the on_plateau schedule, off before it). docs/protocols.md.
    _runs("schedule_start_step", "metric", "int", shared=False, in_report=False,
          empty_when="an on_plateau schedule whose plateau never came (the regularizer never "
          "switched on), or an on_unfreeze one whose backbone never trained", **NONNEGATIVE),
    # issue 24 (precision): the autocast precision a cell used ("bf16" | "fp16" | "off"; config
    # "auto" resolved for its device: it changes the numbers, so it is configuration), and how
    # it ran, which changes only its speed: channels_last memory format and torch.compile (1 on,
    # 0 off; empty when the cell failed before its model was built).
    _config("amp", shared=False),
    _runs("channels_last", "metric", "int", shared=False, in_report=False, low=0, high=1),
    _runs("compile", "metric", "int", shared=False, in_report=False, low=0, high=1),
    # issue 26 (provenance): which CIFAR-10 files a cell read (bench.data: "official", "offline
    # JPEG copy", "modified copy", "synthetic"; the fingerprint: sha256 of the files' md5 sums,
    # 16 hex digits) and the sha256 of the sweep file that made the cell (12 hex digits; empty
    # for a single `regbench run`). Empty in results written before them: "not recorded".
    _runs("data_source", "environment", "text", shared=False),
    _runs("data_fingerprint", "environment", "text", shared=False),
    _runs("sweep_file_sha256", "identity", "text", shared=False),
    # issue 25 (identity): the rule the row's run_id was made by (bench.config RunConfig.identity;
    # docs/results-schema.md); empty in rows written before it, which read as version 1.
    _runs("identity_version", "identity", "int", shared=False, low=1, high=max(IDENTITY_VERSIONS)),
    # issue 28: object size as an axis (every image shrunk into a centred frame of this fraction
    # of its area) and two objects in one image: composites of two test images of different
    # classes (docs/metrics.md#two-objects-in-one-image), measured when composite_size > 0.
    _config("object_fraction", shared=False),
    _config("composite_size", shared=False),
    _metric("composite_recall", "two-object recall", "%", 100, 2, +1, shared=False, **FRACTION,
            margin=ACCURACY_MARGIN, empty_when=NO_COMPOSITES),
    _metric("composite_mass", "two-object probability mass", "%", 100, 2, +1, shared=False,
            **FRACTION, empty_when=NO_COMPOSITES),
    _metric("composite_balance", "two-object balance", "", 1, 3, 0, shared=False, low=0.0,
            high=0.5, empty_when=NO_COMPOSITES),
]  # fmt: skip

# Metrics the report derives from runs.csv columns (never written by a cell).
DERIVED: list[Column] = [
    Column("overconfidence", RUNS_FILE, "derived", "float", label="confidence - accuracy",
           unit="pp", scale=100, decimals=2, better=-1, rank=12,
           formula="test_mean_conf - test_acc"),
    Column("regularizer_share", RUNS_FILE, "derived", "float", label="regularizer share of step",
           unit="%", scale=100, decimals=2, better=-1, rank=24),
    # From calibration.csv's test bins (w_b = bin share of the images): the over- and
    # under-confident parts of the test ECE, sum_b w_b max(0, conf_b - acc_b) and
    # sum_b w_b max(0, acc_b - conf_b); they add up to test_ece.
    Column("ece_over", RUNS_FILE, "derived", "float", label="over-confident ECE",
           unit="pp", scale=100, decimals=2, better=-1, rank=13, margin=CALIBRATION_MARGIN,
           image_metric="ece_over", source=CALIBRATION_FILE, companion="ece_under"),
    Column("ece_under", RUNS_FILE, "derived", "float", label="under-confident ECE",
           unit="pp", scale=100, decimals=2, better=-1, rank=14, source=CALIBRATION_FILE),
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
# searched parameter: its scope columns (the sweep's axis values other than the arm and the seed:
# one text column `scope.<field>` per field, first, in the sweep's order; empty where that scope
# leaves the field alone; none for a sweep of one scope: bench.arms.SCOPE_PREFIX) and `arm` (the
# regularizer with its parameters, bench.arms.Arm.label) say which arm x scope the trial belongs
# to (a search.csv written before issue 25 holds one `scope` label instead, read by
# bench.arms.legacy_scope); `value` is the parameter's value in the trial, `low`/`high` the ends of its searched
# range; `score` the mean of `select_metric` over the trial's cells that finished ok (`seeds` of
# them, run ids in `run_ids`); `selected` = 1 for the trial whose configuration the arm's final
# cells (runs.csv) ran, and `at_edge` = 1 where that value is an end of its range (a search to
# widen). See docs/sweeps.md#hyperparameter-search.
SEARCH: list[Column] = [
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
    # issue 23: a trial added one grid step past the edge its group's best value sat at
    # (`extended` = 1), and on the selected rows the standard error of the selected trial's
    # margin over the runner-up (paired over the selection seeds; with one seed a binomial
    # bound on val_acc). Empty in search.csv files written before them.
    Column("extended", SEARCH_FILE, "metric", "int", low=0, high=1),
    Column("margin_se", SEARCH_FILE, "metric", "float", low=0),
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


def margins() -> dict[str, float]:
    """metric -> its smallest effect of interest in stored units (`Column.margin`), for every
    metric of the catalogue that declares one (read when called)."""
    return {name: c.margin.value for name, c in METRICS.items() if c.margin is not None}


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
