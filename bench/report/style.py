"""Names, order, colours and units shared by every table and figure of a report.

One place decides how an arm (regularizer, schedule) is labelled, where it sits in every list and
legend, and which colour and marker it gets, so a regularizer looks the same in every figure. The
metric table says how each runs.csv metric is shown (label, unit, scale, decimals) and which
direction is better. Reads no columns itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KNOWN_REGULARIZERS = ["none", "random_erasing", "mixup", "cutmix"]
PROTOCOL_ORDER = ["frozen", "unfrozen", "staged", "scratch"]

# Okabe-Ito colours (colour-blind safe); a scheduled variant gets a related but distinct hue.
BASE_COLOURS = {
    "none": "#555555",
    "random_erasing": "#009E73",
    "mixup": "#0072B2",
    "cutmix": "#D55E00",
}
VARIANT_COLOURS = {"random_erasing": "#7FC97F", "mixup": "#56B4E9", "cutmix": "#E69F00"}
SPARE_COLOURS = ["#CC79A7", "#882255", "#44AA99", "#999933", "#AA4499", "#332288", "#117733"]
MARKERS = ["o", "s", "D", "^", "v", "P", "X", "<", ">", "p", "h", "*"]


def arm_label(regularizer: str, schedule: str) -> str:
    """`cutmix` for the constant schedule, `cutmix (staged)` for a named schedule."""
    if schedule in ("", "constant"):
        return regularizer
    return f"{regularizer} ({schedule})"


def order_protocols(protocols) -> list[str]:
    known = [p for p in PROTOCOL_ORDER if p in set(protocols)]
    return known + sorted(set(protocols) - set(known))


def order_arms(pairs) -> list[tuple[str, str]]:
    """Known regularizers first (constant schedule before its variants), then the rest by name."""

    def key(pair: tuple[str, str]) -> tuple:
        regularizer, schedule = pair
        rank = KNOWN_REGULARIZERS.index(regularizer) if regularizer in KNOWN_REGULARIZERS else 99
        return (rank, regularizer, schedule not in ("", "constant"), schedule)

    return sorted(set(pairs), key=key)


@dataclass(frozen=True)
class ArmStyle:
    label: str
    colour: str
    marker: str


def arm_styles(pairs) -> dict[str, ArmStyle]:
    """Label -> colour/marker for every arm of a sweep, in display order (dicts keep order)."""
    styles: dict[str, ArmStyle] = {}
    taken: set[str] = set()
    spare = iter(SPARE_COLOURS * 4)
    for index, (regularizer, schedule) in enumerate(order_arms(pairs)):
        label = arm_label(regularizer, schedule)
        table = BASE_COLOURS if schedule in ("", "constant") else VARIANT_COLOURS
        colour = table.get(regularizer)
        while colour is None or colour in taken:
            colour = next(spare)
        taken.add(colour)
        styles[label] = ArmStyle(label, colour, MARKERS[index % len(MARKERS)])
    return styles


@dataclass(frozen=True)
class Metric:
    column: str
    label: str  # short name for table headers and axes
    unit: str  # shown after the label: %, pp (percentage points), images/s, ...
    scale: float  # stored value x scale = shown value
    decimals: int
    better: int  # +1 higher is better, -1 lower is better, 0 neither

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def show(self, value: float) -> str:
        return (
            "" if value is None or math.isnan(value) else f"{value * self.scale:.{self.decimals}f}"
        )


METRICS = {
    m.column: m
    for m in [
        Metric("test_acc", "test acc.", "%", 100, 2, +1),
        Metric("train_acc", "clean-train acc.", "%", 100, 2, 0),
        Metric("gap", "gap", "pp", 100, 2, -1),
        Metric("test_ece", "ECE", "%", 100, 2, -1),
        Metric("test_loss", "NLL", "nats", 1, 3, -1),
        Metric("test_brier", "Brier", "", 1, 4, -1),
        Metric("flip_rate", "flip rate", "%", 100, 2, -1),
        Metric("train_images_per_s", "train speed", "images/s", 1, 0, +1),
        Metric("val_acc", "val. acc.", "%", 100, 2, +1),
        Metric("test_mce", "MCE", "%", 100, 2, -1),
        Metric("test_mean_conf", "mean confidence", "%", 100, 2, 0),
        Metric("overconfidence", "confidence - accuracy", "pp", 100, 2, -1),
        Metric("test_ece_ts", "ECE after TS", "%", 100, 2, -1),
        Metric("test_nll_ts", "NLL after TS", "nats", 1, 3, -1),
        Metric("test_ece_adaptive", "adaptive ECE", "%", 100, 2, -1),
        Metric("temperature", "temperature", "", 1, 3, 0),
        Metric("occlusion_acc", "occluded acc.", "%", 100, 2, +1),
        Metric("corruption_acc", "corrupted acc.", "%", 100, 2, +1),
        Metric("corruption_ece", "corrupted ECE", "%", 100, 2, -1),
        Metric("eval_images_per_s", "eval speed", "images/s", 1, 0, +1),
        Metric("regularizer_ms_per_batch", "regularizer time", "ms/batch", 1, 3, -1),
        Metric("regularizer_share", "regularizer share of step", "%", 100, 2, -1),
        Metric("peak_mem_mb", "peak memory", "MB", 1, 0, -1),
        Metric("wall_s", "wall time", "s", 1, 0, -1),
    ]
}
TABLE_METRICS = [
    "test_acc",
    "train_acc",
    "gap",
    "test_ece",
    "test_loss",
    "test_brier",
    "flip_rate",
    "train_images_per_s",
]


def format_value(value: object) -> str:
    """Config values for labels: integers without decimals, floats in short form."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def plot_text(text: str, limit: int = 40) -> str:
    """CSV text made safe for matplotlib: no mathtext ($), one line, bounded length."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")
