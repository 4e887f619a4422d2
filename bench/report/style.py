"""Names, order, colours and units shared by every table and figure of a report.

One place decides how an arm (a `bench.arms.Arm`: regularizer, schedule and, where the sweep has
several, the parameters that set it apart) is labelled, where it sits in every list and legend,
and which colour and marker it gets, so a regularizer looks the same in every figure. How a
metric is shown (label, unit, scale, decimals), which direction is better, and where it is listed
(`rank`, `table`) is declared in `bench.schema`; here that order is applied. Reads no columns
itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench import schema  # column declarations only: no torch behind it
from bench.arms import Arm  # the ground floor: no torch behind it

KNOWN_REGULARIZERS = ["none", "random_erasing", "mixup", "cutmix"]
PROTOCOL_ORDER = ["frozen", "unfrozen", "staged", "scratch"]

# Okabe-Ito colours (colour-blind safe); a scheduled variant, or a second parameter variant of a
# constant arm, gets a related but distinct hue.
BASE_COLOURS = {
    "none": "#555555",
    "random_erasing": "#009E73",
    "mixup": "#0072B2",
    "cutmix": "#D55E00",
}
VARIANT_COLOURS = {"random_erasing": "#7FC97F", "mixup": "#56B4E9", "cutmix": "#E69F00"}
SPARE_COLOURS = ["#CC79A7", "#882255", "#44AA99", "#999933", "#AA4499", "#332288", "#117733"]
MARKERS = ["o", "s", "D", "^", "v", "P", "X", "<", ">", "p", "h", "*"]

# The regularizer parameters that tell an arm from the other cells of its regularizer and
# schedule, as (parameter, value as shown) pairs sorted by parameter; () when they do not vary.
Variant = tuple[tuple[str, str], ...]
# The parameter of a report's arm that holds its schedule (as regularizer_params name it); an arm
# without it has the constant schedule.
SCHEDULE = "schedule"
CONSTANT = "constant"


def _is_constant(schedule: str) -> bool:
    return schedule in ("", CONSTANT)


def report_arm(regularizer: str, schedule: str = CONSTANT, variant: Variant = ()) -> Arm:
    """A report's arm: the regularizer with the parameters that set it apart, its schedule (left
    out when constant) and its `variant`, values as the label shows them (text)."""
    params = dict(variant)
    if not _is_constant(schedule):
        params[SCHEDULE] = schedule
    return Arm.of(regularizer, params)


def schedule_of(arm: Arm) -> str:
    """The arm's schedule: `staged`, or `constant` when it names none."""
    return dict(arm.params).get(SCHEDULE, CONSTANT)


def variant_of(arm: Arm) -> Variant:
    """The arm's parameters other than its schedule, sorted by name; () for no variant."""
    return tuple((name, value) for name, value in arm.params if name != SCHEDULE)


def family(arm: Arm) -> Arm:
    """The arm without its variant parameters: its regularizer and schedule (what a claim names,
    e.g. staged cutmix)."""
    return report_arm(arm.regularizer, schedule_of(arm))


def arm_label(arm: Arm) -> str:
    """`cutmix` for the constant schedule, `cutmix (staged)` for a named schedule; the parameters
    of a variant follow: `mixup (alpha=0.2)`, `cutmix (staged, minmax=[0.2, 0.8])`."""
    schedule = schedule_of(arm)
    extras = [] if _is_constant(schedule) else [schedule]
    extras += [f"{parameter}={value}" for parameter, value in variant_of(arm)]
    return f"{arm.regularizer} ({', '.join(extras)})" if extras else arm.regularizer


def order_protocols(protocols) -> list[str]:
    known = [p for p in PROTOCOL_ORDER if p in set(protocols)]
    return known + sorted(set(protocols) - set(known))


def _value_order(shown: str) -> tuple[int, float, str]:
    """Numbers by value (0.2 < 1.0 < 10), before any other text, which sorts as text."""
    try:
        number = float(shown)
    except ValueError:
        number = math.nan
    return (0, number, "") if math.isfinite(number) else (1, 0.0, shown)


def order_arms(arms) -> list[Arm]:
    """Known regularizers first (constant schedule before its variants), then the rest by name;
    parameter variants of one regularizer and schedule by their values (numbers by size).

    `arms`: `bench.arms.Arm` values (`report_arm`); each once.
    """

    def key(arm: Arm) -> tuple:
        regularizer, schedule = arm.regularizer, schedule_of(arm)
        rank = KNOWN_REGULARIZERS.index(regularizer) if regularizer in KNOWN_REGULARIZERS else 99
        values = [_value_order(shown) for _, shown in variant_of(arm)]
        return (rank, regularizer, not _is_constant(schedule), schedule, values)

    return sorted(set(arms), key=key)


@dataclass(frozen=True)
class ArmStyle:
    label: str
    colour: str
    marker: str


def arm_styles(arms) -> dict[str, ArmStyle]:
    """Label -> colour/marker for every arm of a sweep, in display order (dicts keep order).

    `arms`: `bench.arms.Arm` values (`report_arm`).
    """
    styles: dict[str, ArmStyle] = {}
    taken: set[str] = set()
    spare = iter(SPARE_COLOURS * 4)
    for index, arm in enumerate(order_arms(arms)):
        regularizer, label = arm.regularizer, arm_label(arm)
        constant = _is_constant(schedule_of(arm))
        tables = [BASE_COLOURS, VARIANT_COLOURS] if constant else [VARIANT_COLOURS]
        preferred = [table[regularizer] for table in tables if regularizer in table]
        colour = next((c for c in preferred if c not in taken), None)
        while colour is None or colour in taken:
            colour = next(spare)
        taken.add(colour)
        styles[label] = ArmStyle(label, colour, MARKERS[index % len(MARKERS)])
    return styles


# A metric as the report shows it: label, unit, scale, decimals, direction (`bench.schema`).
Metric = schema.Column


def metrics() -> dict[str, Metric]:
    """The report's metric catalogue (`bench.schema.METRICS`, read when called), in display order:
    the metrics with a `rank` by rank, then the others in declaration order."""
    catalogue = schema.METRICS
    ranked = sorted((c.rank, name) for name, c in catalogue.items() if c.rank is not None)
    named = [name for _, name in ranked]
    return {m: catalogue[m] for m in [*named, *(m for m in catalogue if m not in named)]}


def table_metrics() -> list[str]:
    """The metrics of the summary table (report.md, the paper), in display order: those
    declared with `table=True`."""
    return [name for name, metric in metrics().items() if metric.table]


EMPTY_VALUE = "(empty)"  # how an empty configuration field reads in labels


def format_value(value: object) -> str:
    """Config values for labels: integers without decimals, floats in short form, an empty
    field (NaN or empty text) as `(empty)`."""
    if isinstance(value, float):
        if math.isnan(value):
            return EMPTY_VALUE
        return str(int(value)) if value.is_integer() else f"{value:g}"
    text = str(value)
    return text if text else EMPTY_VALUE


def plot_text(text: str, limit: int = 40) -> str:
    """CSV text made safe for matplotlib: no mathtext ($), one line, bounded length."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")
