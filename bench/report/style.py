"""Names, order, colours and units shared by every table and figure of a report.

One place decides how an arm (regularizer, schedule and, where the sweep has several, the
parameters that set it apart) is labelled, where it sits in every list and legend, and which
colour and marker it gets, so a regularizer looks the same in every figure. How a metric is
shown (label, unit, scale, decimals), which direction is better, and where it is listed
(`rank`, `table`) is declared in `bench.schema`; here that order is applied. Reads no columns
itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench import schema  # column declarations only: no torch behind it

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
# An arm: (regularizer, schedule, variant). Functions below also take (regularizer, schedule).
ArmKey = tuple[str, str, Variant]


def _is_constant(schedule: str) -> bool:
    return schedule in ("", "constant")


def arm_label(regularizer: str, schedule: str, variant: Variant = ()) -> str:
    """`cutmix` for the constant schedule, `cutmix (staged)` for a named schedule; the parameters
    of a variant follow: `mixup (alpha=0.2)`, `cutmix (staged, minmax=[0.2, 0.8])`."""
    extras = [] if _is_constant(schedule) else [schedule]
    extras += [f"{parameter}={value}" for parameter, value in variant]
    return f"{regularizer} ({', '.join(extras)})" if extras else regularizer


def order_protocols(protocols) -> list[str]:
    known = [p for p in PROTOCOL_ORDER if p in set(protocols)]
    return known + sorted(set(protocols) - set(known))


def _arm_key(arm: tuple) -> ArmKey:
    regularizer, schedule, *variant = arm
    return regularizer, schedule, tuple(variant[0]) if variant else ()


def _value_order(shown: str) -> tuple[int, float, str]:
    """Numbers by value (0.2 < 1.0 < 10), before any other text, which sorts as text."""
    try:
        number = float(shown)
    except ValueError:
        number = math.nan
    return (0, number, "") if math.isfinite(number) else (1, 0.0, shown)


def order_arms(arms) -> list[ArmKey]:
    """Known regularizers first (constant schedule before its variants), then the rest by name;
    parameter variants of one regularizer and schedule by their values (numbers by size).

    `arms`: (regularizer, schedule) or (regularizer, schedule, variant) tuples.
    """

    def key(arm: ArmKey) -> tuple:
        regularizer, schedule, variant = arm
        rank = KNOWN_REGULARIZERS.index(regularizer) if regularizer in KNOWN_REGULARIZERS else 99
        values = [_value_order(shown) for _, shown in variant]
        return (rank, regularizer, not _is_constant(schedule), schedule, values)

    return sorted({_arm_key(arm) for arm in arms}, key=key)


@dataclass(frozen=True)
class ArmStyle:
    label: str
    colour: str
    marker: str


def arm_styles(arms) -> dict[str, ArmStyle]:
    """Label -> colour/marker for every arm of a sweep, in display order (dicts keep order).

    `arms`: (regularizer, schedule) or (regularizer, schedule, variant) tuples.
    """
    styles: dict[str, ArmStyle] = {}
    taken: set[str] = set()
    spare = iter(SPARE_COLOURS * 4)
    for index, (regularizer, schedule, variant) in enumerate(order_arms(arms)):
        label = arm_label(regularizer, schedule, variant)
        tables = [BASE_COLOURS, VARIANT_COLOURS] if _is_constant(schedule) else [VARIANT_COLOURS]
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
