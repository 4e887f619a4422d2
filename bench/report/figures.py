"""The report's figures, each saved as PNG (viewing) and PDF (papers).

Columns read (ok cells only; failed cells are never drawn):
- runs.csv: `arm`, `protocol`, `rest`, `seed`, `train_size`, `train_acc`, `test_acc`, `gap`,
  `test_ece`, `test_ece_ts`, `train_images_per_s`, `regularizer_share`, `corruption_acc`,
  `occlusion_acc`, `unfreeze_step`, `schedule_start_step`;
- epochs.csv: `epoch`, `train_acc`, `test_acc`, `regularizer_prob`, `regularizer_strength`;
- calibration.csv: `split`, `bin`, `bin_lower`, `bin_upper`, `count`, `mean_confidence`, `accuracy`;
- robustness.csv: `corruption`, `severity`, `accuracy`.

The first figure, `who_wins`, shows at a glance which regularizer beats `none` where: the paired
difference from `none` (seeds paired, 95% t interval) per scope (rows) and key metric (columns,
one shared axis per metric), signed so that right is better. The schedule figure draws the
schedules themselves (`regularizers.schedules`, no torch) at every optimizer step of the cell,
not the epoch-end samples of epochs.csv (an event schedule, on_unfreeze or on_plateau, off
until its cell's `schedule_start_step`). Learning curves mark the unfreeze step (runs.csv
`unfreeze_step`, where recorded); they and the schedule figure mark where a schedule started
(runs.csv `schedule_start_step`, where recorded and > 0: dash-dot, in the arm's colour, named
in the legend only when drawn).

Panels are faceted by protocol (columns) and by the other configuration columns that vary
(rows; `_facet_grid`). Every arm keeps its colour, marker and row position in every figure
(`style.arm_styles`). A figure whose data the sweep lacks is skipped with the reason, never drawn
empty. Figures only draw: means, intervals and pooled bins come from `stats` (and the claim
effects from `verdicts`).
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from bench import schema  # column declarations only: no torch behind it
from bench.report import draw, stats, style, verdicts
from bench.report.claims import CUTMIX_IMPROVES_TEST_ACC
from bench.report.derive import matches
from bench.report.load import Results
from bench.report.marks import lookup
from regularizers import schedules  # no torch behind it (regularizers/__init__.py is lazy)

SEEDS_NOTE = "small points: seeds; large: mean; bars: 95% t interval"
FEW_IMAGES = 20  # reliability bins with fewer images (seeds pooled) are drawn hollow
RELIABILITY_TITLE = 22  # characters per title line in the reliability grid's 1.75-inch panels
TRAIN_SIZE_CLAIM = CUTMIX_IMPROVES_TEST_ACC  # its effect is drawn against the train size


@dataclass
class Drawn:
    name: str  # file stem under figures/
    title: str
    caption: str
    files: list[Path] = field(default_factory=list)
    skipped: str = ""  # why nothing was drawn


@dataclass
class Facet:
    """One protocol (grid column) x `rest` (grid row) of a facet grid."""

    protocol: str
    rest: str
    column: int
    axes: list  # the facet's panels, top first; the top one carries the facet's title
    rows: pd.DataFrame  # the rows of the faceted table in this facet


def _facet_grid(
    results: Results,
    panel_height: float,
    panels: int = 1,
    frame: pd.DataFrame | None = None,
    **kwargs,
):
    """A figure with one column per protocol and `panels` panels per `rest` (figure row), each
    facet titled, with the rows of `frame` (the ok cells by default) that fall in it.

    Returns (figure, axes grid, facets in grid order); kwargs go to `draw.new_figure`.
    """
    frame = results.ok if frame is None else frame
    rests, protocols = results.rests, results.protocols
    fig, axes = draw.new_figure(panels * len(rests), len(protocols), panel_height, **kwargs)
    facets = []
    for r, rest in enumerate(rests):
        for c, protocol in enumerate(protocols):
            mine = [axes[panels * r + k, c] for k in range(panels)]
            mine[0].set_title(draw.panel_title(results.column_titles[protocol], rest))
            rows = frame[(frame["protocol"] == protocol) & (frame["rest"] == rest)]
            facets.append(Facet(protocol, rest, c, mine, rows))
    return fig, axes, facets


def _empty(facet: Facet, text: str = "no finished cells") -> bool:
    """Mark every panel of a facet without rows as empty; True when it was."""
    if not facet.rows.empty:
        return False
    for ax in facet.axes:
        draw.empty_panel(ax, text)
    return True


def _panel_height(arms: list[str]) -> float:
    return 0.27 * len(arms) + 0.75


# The metrics of the who-wins figure, in column order: (metric, the one it replaces if present).
WHO_WINS_METRICS = [
    ("test_acc", None),
    ("gap", None),
    ("test_ece", None),
    ("ece_over", None),
    ("corruption_retained", "corruption_acc"),
    ("occlusion_retained", "occlusion_acc"),
    ("flip_rate_correct", "flip_rate"),
]
BASELINE = "none"


def who_wins_metrics(results: Results) -> list[str]:
    """The key metrics the sweep has values for: retained accuracy where measured, else the
    absolute one it replaces."""
    chosen = []
    for metric, fallback in WHO_WINS_METRICS:
        if metric in style.metrics() and metric in results.measured:
            chosen.append(metric)
        elif fallback and fallback in results.measured:
            chosen.append(fallback)
    return chosen


def paired_vs_none(results: Results, scope: str, arm: str, metric: str) -> stats.Comparison:
    """The arm's paired difference from none in one scope (seeds paired; 95% t interval)."""
    ok = results.ok
    cells = ok[ok["scope"] == scope]
    mine = cells[cells["arm"] == arm].groupby("seed")[metric].mean()
    base = cells[cells["regularizer"] == BASELINE].groupby("seed")[metric].mean()
    return stats.compare(mine, base, margin=schema.margins().get(metric, math.nan))


def difference_unit(unit: str) -> str:
    """The unit of a difference of the metric: percentage points for a percentage."""
    return "pp" if unit in ("%", "pp") else unit


def who_wins_figure(results: Results, folder: Path) -> list[Path]:
    metrics = who_wins_metrics(results)
    styles = results.styles
    arms = [a for a in styles if results.arms[a].regularizer != BASELINE]
    scopes = results.scopes
    catalogue = style.metrics()
    fig, axes = draw.new_figure(
        len(scopes), len(metrics), _panel_height(arms), panel_width=1.9, sharex="col", sharey=True
    )
    for r, scope in enumerate(scopes):
        for c, metric in enumerate(metrics):
            ax = axes[r, c]
            spec = catalogue[metric]
            ax.axvline(0, color="0.3", lw=0.8)
            margin = 100 * schema.margins().get(metric, math.nan)
            if math.isfinite(margin):
                ax.axvspan(-margin, margin, color="0.85", lw=0, zorder=0)
            for i, arm in enumerate(arms):
                found = paired_vs_none(results, scope, arm, metric)
                if math.isnan(found.effect):
                    continue
                sign = 100 * spec.better
                mean = sign * found.effect
                low, high = sorted([sign * found.ci_low, sign * found.ci_high])
                colour = styles[arm].colour
                mark = lookup(results, scope, arm, metric)
                clear = bool(mark is not None and mark["decided"])  # the page's one standard
                if math.isfinite(low):
                    ax.plot([low, high], [i, i], color=colour, lw=1.4, zorder=3)
                ax.scatter(mean, i, s=36, marker=styles[arm].marker, zorder=4, edgecolor=colour,
                           facecolor=colour if clear else "white", lw=1.3)  # fmt: skip
            draw.arm_axis(ax, arms)
            if r == 0:
                ax.set_title(style.plot_text(spec.label, limit=26))
            if c == 0:
                # a long scope (several compared columns) wraps instead of running off the panel
                label = "\n".join(
                    textwrap.wrap(style.plot_text(scope, limit=100), 34, break_long_words=False)
                )
                ax.set_ylabel(label, fontsize="x-small" if "\n" in label else "small")
            if r == len(scopes) - 1:
                ax.set_xlabel(f"vs none ({difference_unit(spec.unit)}); better →")
    note = ("paired difference from none, signed so that right is better; bars: 95% t "
            "interval over seeds; filled: decided (Holm p < 0.05 and |difference| ≥ margin, "
            "as the claims and the summary's bold); grey band: ±margin")  # fmt: skip
    draw.legend(fig, [], note)
    return draw.save(fig, folder, "who_wins")


def gap_figure(results: Results, folder: Path) -> list[Path]:
    """Top: accuracies per arm (seeds and means); bottom: the paired gap difference from none
    (the quantity the gap claim tests), on one axis range for every panel."""
    styles = results.styles
    arms = list(styles)
    fig, axes, facets = _facet_grid(results, _panel_height(arms), panels=2, sharey=True)
    bottoms = []
    for facet in facets:
        if _empty(facet):
            continue
        top, bottom = facet.axes
        cells, dot = facet.rows, draw.dot_panel
        dot(top, cells, "train_acc", arms, styles, 100, marker="^", filled=False, shift=-0.18)
        dot(top, cells, "test_acc", arms, styles, 100, marker="o", shift=0.18)
        scope = cells["scope"].iloc[0]
        bottom.axvline(0, color="0.3", lw=0.8)
        for i, arm in enumerate(arms):
            if results.arms[arm].regularizer == BASELINE:
                continue
            found = paired_vs_none(results, scope, arm, "gap")
            if math.isnan(found.effect):
                continue
            colour = styles[arm].colour
            if math.isfinite(found.ci_low):
                bottom.plot([100 * found.ci_low, 100 * found.ci_high], [i, i], color=colour,
                            lw=1.4)  # fmt: skip
            bottom.scatter(100 * found.effect, i, s=36, marker=styles[arm].marker, color=colour,
                           zorder=4)  # fmt: skip
        top.set_xlabel("accuracy (%)")
        bottom.set_xlabel("gap vs none, paired (pp)")
        bottoms.append(bottom)
    if bottoms:  # one axis range for every protocol
        lows, highs = zip(*(ax.get_xlim() for ax in bottoms), strict=True)
        for ax in bottoms:
            ax.set_xlim(min(lows), max(highs))
    for ax in axes.flat:
        draw.arm_axis(ax, arms)
    legend = [("clean-train accuracy", "^", False), ("test accuracy", "o", True)]
    note = SEEDS_NOTE + "; bottom: gap(arm) − gap(none) per seed pair, mean and 95% t interval"
    draw.marker_legend(fig, legend, note=note)
    return draw.save(fig, folder, "gap")


def ece_figure(results: Results, folder: Path) -> list[Path]:
    styles = results.styles
    arms = list(styles)
    with_ts = "test_ece_ts" in results.measured
    shift = 0.18 if with_ts else 0.0
    fig, axes, facets = _facet_grid(results, _panel_height(arms), sharey=True)
    for facet in facets:
        (ax,) = facet.axes
        if not _empty(facet):
            draw.dot_panel(ax, facet.rows, "test_ece", arms, styles, 100, shift=-shift)
            if with_ts:
                draw.dot_panel(ax, facet.rows, "test_ece_ts", arms, styles, 100, marker="D",
                               filled=False, shift=shift)  # fmt: skip
            ax.set_xlim(left=0)
            ax.set_xlabel("test ECE (%)")
        draw.arm_axis(ax, arms)
    legend = [("test ECE", "o", True)]
    if with_ts:
        legend.append(("after temperature scaling", "D", False))
    draw.marker_legend(fig, legend, note=SEEDS_NOTE)
    return draw.save(fig, folder, "calibration_ece")


def _facets(results: Results) -> list[tuple[str, str]]:
    return [(p, r) for r in results.rests for p in results.protocols]


def _reliability_panel(ax, cell: pd.DataFrame, colour: str, ece: float) -> None:
    """One arm's pooled bins in one facet: image shares as bars, accuracy against confidence."""
    if cell.empty:
        ax.text(50, 50, "no bins", ha="center", va="center", color="0.4")
        return
    width = 100 * (cell["bin_upper"] - cell["bin_lower"])
    cell = cell.sort_values("bin")
    ax.bar(100 * cell["bin_lower"], 100 * cell["share"], width=width, align="edge", color="0.82",
           lw=0)  # fmt: skip
    # Bins with few images give noisy accuracies: drawn hollow and left off the line.
    solid = cell[cell["count"] >= FEW_IMAGES]
    sparse = cell[(cell["count"] > 0) & (cell["count"] < FEW_IMAGES)]
    x, y = 100 * solid["mean_confidence"], 100 * solid["accuracy"]
    ax.plot(x, y, color=colour, marker="o", ms=3)
    x, y = 100 * sparse["mean_confidence"], 100 * sparse["accuracy"]
    ax.plot(x, y, ls="", marker="o", ms=3, mfc="white", mec=colour)
    if np.isfinite(ece):
        ax.text(4, 92, f"ECE {100 * ece:.1f}%", fontsize=7, va="top")


def reliability_figure(results: Results, folder: Path) -> list[Path]:
    """A grid of its own: one row per arm, one column per facet."""
    styles = results.styles
    keys = ["arm", "protocol", "rest"]
    bins = stats.pooled_bins(results.calibration, keys)
    arms = [a for a in styles if a in set(bins["arm"])]
    facets = _facets(results)
    fig, axes = draw.new_figure(
        len(arms), len(facets), 1.75, panel_width=1.75, sharex=True, sharey=True
    )
    ece = stats.means(results.ok, "test_ece", keys)
    for i, arm in enumerate(arms):
        for j, (protocol, rest) in enumerate(facets):
            ax = axes[i, j]
            ax.plot([0, 100], [0, 100], ls="--", color="0.5", lw=0.8)
            cell = bins[
                (bins["arm"] == arm) & (bins["protocol"] == protocol) & (bins["rest"] == rest)
            ]
            if i == 0:  # narrow panels: titles wrapped narrower than the default
                title = draw.panel_title(results.column_titles[protocol], rest, RELIABILITY_TITLE)
                ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{style.plot_text(arm, 24)}\naccuracy (%)")
            if i == len(arms) - 1:
                ax.set_xlabel("confidence (%)")
            ax.set_xlim(0, 100)
            ax.set_ylim(0, 100)
            value = ece.get((arm, protocol, rest), np.nan)
            _reliability_panel(ax, cell, styles[arm].colour, value)
    handles = [
        Line2D([], [], color="0.3", marker="o", ms=3, label="accuracy per bin"),
        Line2D([], [], ls="", marker="o", ms=3, mfc="white", mec="0.3", label="< 20 images"),
        Line2D([], [], color="0.82", lw=6, label="share of images (%)"),
        Line2D([], [], color="0.5", ls="--", label="perfect calibration"),
    ]
    draw.legend(fig, handles, inches_per_entry=1.9)
    return draw.save(fig, folder, "reliability")


def confidence_figure(results: Results, folder: Path) -> list[Path]:
    styles = results.styles
    bins = stats.pooled_bins(results.calibration, ["arm", "protocol", "rest"])
    arms = [a for a in styles if a in set(bins["arm"])]
    fig, _, facets = _facet_grid(results, 2.0, frame=bins, sharey=True)
    for facet in facets:
        (ax,) = facet.axes
        ax.set_xlabel("confidence (%)")
        for arm in arms:
            cell = facet.rows[facet.rows["arm"] == arm]
            if cell.empty:
                continue
            cell = cell.sort_values("bin")
            edges = np.append(cell["bin_lower"].to_numpy(), cell["bin_upper"].iloc[-1])
            share = cell["share"].to_numpy() * 100
            ax.stairs(share, 100 * edges, color=styles[arm].colour, lw=1.4)
        ax.set_xlim(0, 100)
        if facet.column == 0:
            ax.set_ylabel("share of test images (%)")
    draw.arm_legend(fig, arms, styles, markers=False)
    return draw.save(fig, folder, "confidence")


def throughput_figure(results: Results, folder: Path) -> list[Path]:
    styles = results.styles
    arms = list(styles)
    panels = [("train_images_per_s", 1, "training throughput (images/s)")]
    if "regularizer_share" in results.measured:
        panels.append(("regularizer_share", 100, "regularizer time / step time (%)"))
    fig, axes, facets = _facet_grid(results, _panel_height(arms), panels=len(panels), sharey=True)
    for facet in facets:
        for ax, (metric, scale, label) in zip(facet.axes, panels, strict=True):
            if facet.rows.empty or facet.rows[metric].isna().all():
                draw.empty_panel(ax, "not measured")
                continue
            draw.dot_panel(ax, facet.rows, metric, arms, styles, scale)
            ax.set_xlim(left=0)
            ax.set_xlabel(label)
    for ax in axes.flat:
        draw.arm_axis(ax, arms)
    draw.marker_legend(fig, [], note=SEEDS_NOTE)
    return draw.save(fig, folder, "throughput")


def curves_figure(results: Results, folder: Path) -> list[Path]:
    styles = results.styles
    epochs = results.epochs
    arms = [a for a in styles if a in set(epochs["arm"])]
    panels = [("train_acc", "clean-train"), ("test_acc", "test")]
    fig, _, facets = _facet_grid(results, 1.9, panels=2, frame=epochs, sharex=True)
    x_end = max(1, int(epochs["epoch"].max())) if not epochs.empty else 1
    budget = "train_steps" in results.measured and (results.ok["train_steps"].fillna(0) > 0).any()
    x_label = "period (1/epochs of the step budget)" if budget else "epoch"
    for facet in facets:
        for k, (ax, (metric, label)) in enumerate(zip(facet.axes, panels, strict=True)):
            ax.set_ylabel(f"{label} accuracy (%)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(0, x_end)  # the whole training, so the unfreeze line is in range
            if k == 1:
                ax.set_xlabel(x_label)
            if facet.rows.empty:
                draw.empty_panel(ax, "no epochs")
                continue
            for arm in arms:
                cells = facet.rows[facet.rows["arm"] == arm]
                colour = styles[arm].colour
                for _, run in cells.groupby("run_id"):
                    ax.plot(run["epoch"], 100 * run[metric], color=colour, lw=0.6, alpha=0.35)
                mean = stats.means(cells, metric, "epoch")
                ax.plot(mean.index, 100 * mean.to_numpy(), color=colour, lw=1.6)
            for x in unfreeze_epochs(results, facet.protocol, facet.rest):
                ax.axvline(x, color="0.2", ls=":", lw=1.0)
            for arm, x in schedule_start_epochs(results, facet.protocol, facet.rest):
                ax.axvline(x, color=styles[arm].colour, ls=START_LINE, lw=1.0)
    title = "thick: mean over seeds; thin: single seeds"
    if "unfreeze_step" in results.measured:
        title += "; dotted: the unfreeze step"
    if not schedule_starts(results).empty:
        title += f"; {START_LEGEND}"
    draw.arm_legend(fig, arms, styles, title, markers=False)
    return draw.save(fig, folder, "learning_curves")


def steps_per_epoch(train_size: float, batch_size: float) -> int:
    """Optimizer steps per epoch as bench.data counts them (full batches; at least one)."""
    return max(1, math.floor(train_size / batch_size))


def step_budget(cell: pd.Series) -> int:
    """A cell's step budget as bench.train.StepPlan sets it: `train_steps`, or `train_passes`
    passes of full batches (issue 23); 0 without one (the budget is then `epochs` passes)."""
    steps = pd.to_numeric(cell.get("train_steps", math.nan), errors="coerce")
    if pd.notna(steps) and steps > 0:
        return int(steps)
    passes = pd.to_numeric(cell.get("train_passes", math.nan), errors="coerce")
    if pd.notna(passes) and passes > 0:
        batch = min(cell["batch_size"], cell["train_size"])
        return round(float(passes) * steps_per_epoch(cell["train_size"], batch))
    return 0


def epoch_ends(cell: pd.Series) -> list[int]:
    """The optimizer step at the end of each of a cell's epochs, as bench.train.StepPlan counts
    them: with a step budget (`train_steps` or `train_passes`: step_budget), epoch e ends at
    e * budget // epochs (an epoch is then an evaluation period, not a pass over the data); else
    e * steps per pass."""
    epochs = int(cell["epochs"])
    budget = step_budget(cell)
    if budget:
        return [e * budget // epochs for e in range(1, epochs + 1)]
    batch = min(cell["batch_size"], cell["train_size"])
    return [e * steps_per_epoch(cell["train_size"], batch) for e in range(1, epochs + 1)]


def step_to_epoch(cell: pd.Series, step: float) -> float:
    """An optimizer step on the learning curves' x axis (epoch k spans (k - 1, k])."""
    ends = epoch_ends(cell)
    return float(np.interp(step, [0, *ends], range(len(ends) + 1)))


def unfreeze_epochs(results: Results, protocol: str, rest: str) -> list[float]:
    """Where the backbone unfroze in a facet, on the epoch axis (epoch k ends at x = k): the
    distinct runs.csv `unfreeze_step` values of its cells, in the x axis's units (epochs, or the
    evaluation periods of a step budget: `step_to_epoch`); [] when none."""
    if "unfreeze_step" not in results.measured:
        return []
    ok = results.ok
    cells = ok[(ok["protocol"] == protocol) & (ok["rest"] == rest)].dropna(subset=["unfreeze_step"])
    positions = {step_to_epoch(row, float(row["unfreeze_step"])) for _, row in cells.iterrows()}
    return sorted(positions)


START_COLUMN = verdicts.START_COLUMN  # runs.csv schedule_start_step
START_LINE = "-."  # where a schedule started: dash-dot, in the arm's colour
START_LEGEND = "dash-dot: where the arm's schedule started (schedule_start_step)"


def schedule_starts(results: Results) -> pd.DataFrame:
    """The ok cells whose schedule started after step 0 (runs.csv `schedule_start_step`
    recorded and > 0: an on_unfreeze or on_plateau schedule, or one counted from the unfreeze);
    empty where the column is absent, empty or 0 everywhere."""
    ok = results.ok
    if START_COLUMN not in results.measured:
        return ok.iloc[0:0]
    steps = pd.to_numeric(ok[START_COLUMN], errors="coerce")
    return ok[steps.notna() & (steps > 0)]


def schedule_start_epochs(results: Results, protocol: str, rest: str) -> list[tuple[str, float]]:
    """Where each arm's schedule started in a facet, on the learning curves' x axis: (arm, x)
    for the distinct runs.csv `schedule_start_step` values (> 0) of its cells, in the x axis's
    units (`step_to_epoch`, as `unfreeze_epochs`); [] when none."""
    cells = schedule_starts(results)
    cells = cells[(cells["protocol"] == protocol) & (cells["rest"] == rest)]
    found = {
        (row["arm"], step_to_epoch(row, float(row[START_COLUMN]))) for _, row in cells.iterrows()
    }
    order = list(results.styles)
    return sorted(found, key=lambda item: (order.index(item[0]), item[1]))


def schedule_start_fractions(results: Results, arm: str) -> list[float]:
    """Where the arm's schedule started, as a fraction of each cell's optimizer steps (the
    schedule figure's x axis): the distinct `schedule_start_step` / steps of its cells (> 0)."""
    cells = schedule_starts(results)
    cells = cells[cells["arm"] == arm]
    return sorted({float(row[START_COLUMN]) / total_steps(row) for _, row in cells.iterrows()})


def total_steps(cell: pd.Series) -> int:
    """The optimizer steps of one cell's budget (the cap under the plateau rule): its step
    budget (`step_budget`), else epochs x steps per epoch."""
    return epoch_ends(cell)[-1]


def schedule_curve(cell: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(fraction of training, probability, strength) at every optimizer step of one cell, from
    its schedule and regularizer_params (the prob parameter times the schedule's factor); None
    when the parameters do not build a schedule. An event schedule (on_unfreeze, on_plateau) is
    off (0, 0) before the cell's runs.csv `schedule_start_step` and counts its progress from
    there to the end of the budget; off all along where the event never came (the column
    empty), as bench.train.StepPlan runs it."""
    try:
        params = json.loads(cell["regularizer_params"] or "{}")
        name = str(cell["schedule"] or "constant")
        known = schedules.SCHEDULES[name].PARAMS
        schedule = schedules.build_schedule(name, **{k: params[k] for k in known if k in params})
        prob = float(params.get("prob", 1.0))
        steps = total_steps(cell)
        begin = 0
        if schedule.event:
            start = pd.to_numeric(cell.get(START_COLUMN, math.nan), errors="coerce")
            begin = min(int(start), steps) if pd.notna(start) else steps
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    factors = np.zeros((steps, 2))
    for step in range(begin, steps):
        factors[step] = schedule((step - begin) / max(steps - begin, 1))
    return np.arange(steps) / steps, prob * factors[:, 0], factors[:, 1]


def _schedule_arms(results: Results) -> tuple[list[str], set[str]]:
    """The arms the schedule figure draws (display order) and those with a schedule: every
    scheduled arm, and the other arms of their regularizers."""
    ok = results.ok
    scheduled = set(ok.loc[ok["schedule"] != "constant", "arm"])
    regularizers = {results.arms[a].regularizer for a in scheduled}
    present = set(ok["arm"])
    arms = [
        a for a in results.styles if a in present and results.arms[a].regularizer in regularizers
    ]
    return arms, scheduled


def schedule_figure(results: Results, folder: Path) -> list[Path]:
    styles = results.styles
    arms, scheduled = _schedule_arms(results)
    fig, axes = draw.new_figure(1, 2, 2.0)
    drawn, skipped = [], []
    for arm in arms:
        cells = results.ok[results.ok["arm"] == arm]
        curve = schedule_curve(cells.iloc[0])
        if curve is None:
            skipped.append(arm)
            continue
        drawn.append(arm)
        for x in schedule_start_fractions(results, arm):
            for ax in axes[0]:
                ax.axvline(x, color=styles[arm].colour, ls=START_LINE, lw=1.0)
        fraction, prob, strength = curve
        for ax, values in [(axes[0, 0], prob), (axes[0, 1], strength)]:
            ax.plot(
                np.append(fraction, 1.0),
                np.append(values, values[-1]),
                color=styles[arm].colour,
                ls="-" if arm in scheduled else "--",
                drawstyle="steps-post",  # a value holds from its step to the next
            )
    for ax, label in [(axes[0, 0], "probability per batch"), (axes[0, 1], "strength factor")]:
        ax.set_ylim(-0.05, 1.08)  # a value of 0 stays visible above the axis
        ax.set_xlim(0, 1)
        ax.set_xlabel("fraction of training (optimizer steps)")
        ax.set_ylabel(label)
    handles = [
        Line2D([], [], color=styles[a].colour, ls="-" if a in scheduled else "--",
               label=style.plot_text(a))
        for a in drawn
    ]  # fmt: skip
    title = "from each arm's schedule at every step; dashed: constant schedule"
    if any(schedule_start_fractions(results, arm) for arm in drawn):
        title += f"; {START_LEGEND}, as a fraction of the cell's steps"
    if skipped:
        title += f"; not drawn (parameters unreadable): {', '.join(skipped)}"
    draw.legend(fig, handles, style.plot_text(title, limit=200))
    return draw.save(fig, folder, "schedules")


def scatter_figure(results: Results, folder: Path) -> list[Path]:
    styles = results.styles
    arms = list(styles)
    fig, _, facets = _facet_grid(results, 2.4)
    for facet in facets:
        (ax,) = facet.axes
        ax.set_xlabel("test ECE (%)")
        if facet.column == 0:
            ax.set_ylabel("test accuracy (%)")
        if _empty(facet):
            continue
        for arm in arms:
            cell = facet.rows[facet.rows["arm"] == arm].dropna(subset=["test_ece", "test_acc"])
            if cell.empty:
                continue
            x, y = 100 * cell["test_ece"].to_numpy(), 100 * cell["test_acc"].to_numpy()
            st = styles[arm]
            ax.scatter(x, y, s=12, color=st.colour, marker=st.marker, alpha=0.45, lw=0)
            sx, sy = stats.describe(x), stats.describe(y)
            err = {}
            if sx["n"] > 1:
                err = {"xerr": sx["ci_high"] - sx["mean"], "yerr": sy["ci_high"] - sy["mean"]}
            ax.errorbar(sx["mean"], sy["mean"], **err, color=st.colour, marker=st.marker, ms=6,
                        mec="white", mew=0.6, lw=1, capsize=2)  # fmt: skip
    draw.arm_legend(
        fig,
        arms,
        styles,
        title="small: single cells; large: mean with 95% t intervals; up-left is better",
    )
    return draw.save(fig, folder, "accuracy_vs_ece")


def _effect_line(
    ax, results: Results, pair: verdicts.Pair, facet: pd.DataFrame, several: bool
) -> None:
    """The paired pair[0] - pair[1] test-accuracy difference per train size, with its 95% paired t
    interval; coloured as pair[0], marked as pair[1] when the claim has several variant pairs."""
    styles = results.styles
    per_size = verdicts.effects_per_level(results, TRAIN_SIZE_CLAIM, pair, facet, "train_size")
    if not per_size:
        return
    sizes = [size for size, _ in per_size]
    mean = np.array([e.effect for _, e in per_size]) * 100
    low = np.array([e.ci_low for _, e in per_size]) * 100
    high = np.array([e.ci_high for _, e in per_size]) * 100
    yerr = np.nan_to_num(np.vstack([mean - low, high - mean]))
    first = next(iter(styles.values()))
    ax.errorbar(
        sizes,
        mean,
        yerr=yerr,
        color=styles.get(pair[0], first).colour,
        marker=styles.get(pair[1], first).marker if several else "o",
        capsize=2,
    )


def _gap_lines(ax, results: Results, facet: pd.DataFrame) -> None:
    """Per arm, the mean gap per train size with its 95% t interval."""
    styles = results.styles
    for arm in styles:
        cells = facet[facet["arm"] == arm]
        if cells.empty:
            continue
        described = stats.describe_groups(cells, "gap", "train_size")
        ax.errorbar(
            described.index,
            100 * described["mean"],
            yerr=100 * (described["ci_high"] - described["mean"]).fillna(0),
            color=styles[arm].colour,
            marker=styles[arm].marker,
            ms=4,
            capsize=2,
        )


def columns_with_train_size(ok: pd.DataFrame, columns: list[str]) -> list[str]:
    """The facet columns (but train_size) that hold one value per train size, e.g. a batch size
    or train_per_class chosen with each size: they go with the x axis, not into figure rows
    (which would leave one size per panel)."""
    if "train_size" not in ok or ok["train_size"].nunique() < 2:
        return []
    return [
        c for c in columns
        if c != "train_size" and ok.groupby("train_size")[c].nunique(dropna=False).max() <= 1
    ]  # fmt: skip


def train_size_figure(results: Results, folder: Path) -> list[Path]:
    """A grid of its own: train size is the x axis, so it makes no figure rows."""
    ok = results.ok
    with_size = columns_with_train_size(ok, results.facet_columns)
    others = [c for c in results.facet_columns if c != "train_size" and c not in with_size]
    rests = ok[others].drop_duplicates().sort_values(others) if others else pd.DataFrame(index=[0])
    fig, axes = draw.new_figure(2 * len(rests), len(results.protocols), 2.2, sharex=True)
    pairs = verdicts.variant_pairs(results, TRAIN_SIZE_CLAIM)  # one line per variant pair
    for r, (_, rest_row) in enumerate(rests.iterrows()):
        rest = ", ".join(f"{c}={style.format_value(rest_row[c])}" for c in others)
        for c, protocol in enumerate(results.protocols):
            facet = ok[matches(ok, {"protocol": protocol, **rest_row[others].to_dict()})]
            top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
            top.set_title(draw.panel_title(results.column_titles[protocol], rest))
            _gap_lines(top, results, facet)
            top.set_ylabel("gap (pp)")
            bottom.axhline(0, color="0.4", lw=0.8)
            for pair in pairs:
                _effect_line(bottom, results, pair, facet, len(pairs) > 1)
            bottom.set_ylabel("test acc.: cutmix − none (pp)")
            if r == len(rests) - 1:
                goes_with = f"\n({', '.join(with_size)} set with it)" if with_size else ""
                bottom.set_xlabel("training images" + goes_with)
    for ax in axes.flat:  # log scale, ticks at the sizes the sweep used
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(sorted(ok["train_size"].unique())))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_locator(NullLocator())
    draw.arm_legend(
        fig,
        list(results.styles),
        results.styles,
        title="top: gap per arm (95% t interval); "
        "bottom: paired difference (95% paired t interval)",
    )
    return draw.save(fig, folder, "train_size")


def robustness_figure(results: Results, folder: Path) -> list[Path]:
    styles = results.styles
    arms = list(styles)
    metrics = [("test_acc", "clean", "o", True)]
    metrics += [
        (m, label, mk, f)
        for m, label, mk, f in [
            ("corruption_acc", "corrupted (mean over corruptions)", "s", False),
            ("occlusion_acc", "occluded (25% grey square)", "^", False),
        ]
        if m in results.measured
    ]
    shifts = np.linspace(-0.22, 0.22, len(metrics))
    fig, _, facets = _facet_grid(results, _panel_height(arms) + 0.3, sharey=True)
    for facet in facets:
        (ax,) = facet.axes
        draw.arm_axis(ax, arms)
        if _empty(facet):
            continue
        for (metric, _, marker, filled), shift in zip(metrics, shifts, strict=True):
            draw.dot_panel(ax, facet.rows, metric, arms, styles, 100, marker=marker,
                           filled=filled, shift=shift)  # fmt: skip
        ax.set_xlabel("test accuracy (%)")
    draw.marker_legend(fig, [(label, m, f) for _, label, m, f in metrics], note=SEEDS_NOTE)
    return draw.save(fig, folder, "robustness")


def corruption_figure(results: Results, folder: Path) -> list[Path]:
    styles = results.styles
    table = results.robustness
    arms = [a for a in styles if a in set(table["arm"])]
    families = sorted(table["corruption"].unique())
    # severities averaged per cell (one value per arm, facet, corruption and seed)
    keys = ["arm", "protocol", "rest", "corruption", "seed"]
    per_seed = stats.means(table, "accuracy", keys).reset_index()
    height = 0.32 * len(families) * max(1, len(arms) / 3) + 0.9
    fig, _, facets = _facet_grid(results, height, frame=per_seed, sharey=True)
    dodge = draw.offsets(len(arms), width=0.7)
    for facet in facets:
        (ax,) = facet.axes
        rows = facet.rows
        for k, arm in enumerate(arms):
            for i, family in enumerate(families):
                values = rows[(rows["arm"] == arm) & (rows["corruption"] == family)]["accuracy"]
                if len(values):
                    draw.dot_row(ax, i + dodge[k], 100 * values.to_numpy(), styles[arm].colour,
                                 marker=styles[arm].marker, spread=0.08)  # fmt: skip
        ax.set_yticks(range(len(families)), [style.plot_text(f, 24) for f in families])
        ax.set_ylim(len(families) - 0.5, -0.5)
        ax.set_xlabel("accuracy (%)")
    severities = sorted(table["severity"].dropna().unique())
    if len(severities) == 1:
        note = f"severity {style.format_value(severities[0])}"
    else:
        note = "mean over severities " + ", ".join(map(style.format_value, severities))
    draw.arm_legend(fig, arms, styles, title=note)
    return draw.save(fig, folder, "robustness_corruptions")


@dataclass(frozen=True)
class FigureSpec:
    name: str
    title: str
    caption: str
    draw: Callable[[Results, Path], list[Path]]
    needs: tuple[Callable[[Results], str], ...] = ()  # each: '' when satisfied, else why not


def _has(column: str) -> Callable[[Results], str]:
    return lambda r: "" if column in r.measured else f"runs.csv has no {column} values"


def _table(name: str) -> Callable[[Results], str]:
    return lambda r: "" if getattr(r, name) is not None else f"no {name}.csv rows of ok cells"


def _scheduled(results: Results) -> str:
    if not (results.ok["schedule"] != "constant").any():
        return "no arm has a schedule other than constant"
    return ""


def _who_wins(results: Results) -> str:
    if not (results.ok["regularizer"] == BASELINE).any():
        return "no finished none cells to compare with"
    if len(results.ok["regularizer"].unique()) < 2:
        return "no regularizer besides none"
    return "" if who_wins_metrics(results) else "no key metric has values"


def _sizes(results: Results) -> str:
    return "" if results.ok["train_size"].nunique() > 1 else "the sweep has one train size"


def _robust(results: Results) -> str:
    if "corruption_acc" in results.measured or "occlusion_acc" in results.measured:
        return ""
    return "runs.csv has no corruption_acc / occlusion_acc values"


FIGURES = [
    FigureSpec(
        "who_wins",
        "Who wins where",
        "Each regularizer's paired difference from none (seeds paired), per scope (rows) and "
        "key metric (columns; one axis per metric), signed so that right is better; bars: 95% "
        "t interval; filled: decided by the page's one standard (the claims' rule: Holm-adjusted "
        "p < 0.05 and |difference| ≥ the metric's margin; a claim row's verdict where the "
        "difference is one, else Holm over every other difference from none on the page; the "
        "summary's bold uses the same); grey band: the claims' margin (smallest "
        "effect of interest). Differences of percentages are in percentage points (pp). Retained accuracy (perturbed / clean on the same images) and the "
        "flip rate among correctly classified images replace the absolute ones where measured.",
        who_wins_figure,
        (_who_wins,),
    ),
    FigureSpec(
        "gap",
        "Generalization gap",
        "Top: clean-train (hollow triangles) and test accuracy (dots) per regularizer. Bottom: "
        "the gap's paired difference from none (seeds paired; the quantity the gap claim tests) "
        "with its 95% t interval, on one axis range for every panel.",
        gap_figure,
    ),
    FigureSpec(
        "calibration_ece",
        "Calibration: ECE",
        "Expected calibration error on test (15 equal-width bins, top label); hollow diamonds: "
        "after temperature scaling fitted on the validation split.",
        ece_figure,
        (_has("test_ece"),),
    ),
    FigureSpec(
        "reliability",
        "Reliability diagrams",
        "Accuracy vs confidence per bin on test, seeds pooled (counts summed); hollow: bins "
        "with fewer than 20 images; grey bars: share of test images per bin; dashed: perfect "
        "calibration; the ECE printed is the mean test ECE over seeds from runs.csv.",
        reliability_figure,
        (_table("calibration"),),
    ),
    FigureSpec(
        "confidence",
        "Confidence histograms",
        "Share of test images per confidence bin (top-label confidence), seeds pooled.",
        confidence_figure,
        (_table("calibration"),),
    ),
    FigureSpec(
        "throughput",
        "Throughput",
        "Training images per second (steady state), and the regularizer's time per batch as a "
        "share of the time of a batch at that throughput; it can exceed 100% when the "
        "regularizer's mean time includes slow first calls that the throughput leaves out.",
        throughput_figure,
        (_has("train_images_per_s"),),
    ),
    FigureSpec(
        "learning_curves",
        "Learning curves",
        "Clean-train and test accuracy after each epoch; dotted: the step where the backbone "
        "unfroze (where runs.csv records unfreeze_step).",
        curves_figure,
        (_table("epochs"),),
    ),
    FigureSpec(
        "schedules",
        "Regularizer schedules",
        "Probability and strength of the regularizer at every optimizer step, computed from "
        "each arm's schedule and parameters (regularizer_params), for scheduled arms (solid) and "
        "the same regularizer with the constant schedule (dashed).",
        schedule_figure,
        (_scheduled,),
    ),
    FigureSpec(
        "accuracy_vs_ece",
        "Accuracy vs calibration",
        "Test accuracy against test ECE: one small point per cell, the mean per regularizer "
        "with 95% t intervals.",
        scatter_figure,
        (_has("test_ece"),),
    ),
    FigureSpec(
        "train_size",
        "Effect of train size",
        "Gap per regularizer, and the paired cutmix − none test-accuracy difference, against "
        "the number of training images.",
        train_size_figure,
        (_sizes,),
    ),
    FigureSpec(
        "robustness",
        "Robustness",
        "Clean test accuracy, mean accuracy over synthetic corruptions, and accuracy with an "
        "occluding square.",
        robustness_figure,
        (_robust,),
    ),
    FigureSpec(
        "robustness_corruptions",
        "Accuracy per corruption",
        "Accuracy per corruption family (severities averaged per cell), mean over seeds with "
        "95% t intervals.",
        corruption_figure,
        (_table("robustness"),),
    ),
]


def draw_figures(results: Results, folder: Path) -> list[Drawn]:
    """Draw every figure the results allow into `folder`; skipped ones carry the reason."""
    drawn = []
    with draw.figure_style():
        for spec in FIGURES:
            item = Drawn(spec.name, spec.title, spec.caption)
            checks = [lambda r: "" if len(r.ok) else "no finished cells", *spec.needs]
            item.skipped = next((why for why in (check(results) for check in checks) if why), "")
            if not item.skipped:
                folder.mkdir(parents=True, exist_ok=True)
                item.files = spec.draw(results, folder)
            drawn.append(item)
    return drawn
