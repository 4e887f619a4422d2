"""Drawing helpers shared by the figures: style, facet grids, dot panels, legends, saving.

Figures are `matplotlib.figure.Figure` objects drawn with the Agg/PDF canvases, never pyplot, so
building a report changes no global backend and leaks no open figures. Reads no CSV columns; the
callers pass ready values.
"""

from __future__ import annotations

import contextlib
import errno
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.report import stats, style

FORMATS = ("png", "pdf")  # every figure is saved in each, by `save`
PANEL_WIDTH = 2.35  # inches: three panels fit a 7-inch two-column page width
DPI = 150
RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "pdf.fonttype": 42,  # TrueType in the PDF: editable text, accepted by paper submission systems
}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Seaborn's white-grid look at paper sizes, for the duration of the drawing."""
    # plotting_context keeps only its own keys (font sizes, widths); the rest of RC needs its own
    # rc_context, or tight bounding boxes and TrueType PDF fonts would be silently dropped.
    with sns.axes_style("whitegrid"), sns.plotting_context("paper"), matplotlib.rc_context(RC):
        yield


def new_figure(
    rows: int, cols: int, panel_height: float, panel_width: float = PANEL_WIDTH, **kwargs
) -> tuple[Figure, np.ndarray]:
    size = (panel_width * cols + 0.6, panel_height * rows + 0.5)
    fig = Figure(figsize=size, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.06, wspace=0.04)  # keeps "100" and "0" of neighbours apart
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs)
    return fig, axes


def save(fig: Figure, folder: Path, name: str) -> list[Path]:
    """PNG for viewing and PDF for papers; no creation date, so reruns give identical PDFs."""
    paths = [folder / f"{name}.{ext}" for ext in FORMATS]
    try:
        fig.savefig(paths[0], dpi=DPI)
        fig.set_layout_engine("none")  # keep the layout just computed: the PDF needs no second pass
        fig.savefig(paths[1], metadata={"CreationDate": None})
    except zlib.error as error:  # a write failing midway (a nearly full disk) surfaces here
        raise OSError(errno.EIO, f"could not write {name} ({error}); is the disk full?") from None
    return paths


def arm_axis(ax, arms: list[str]) -> None:
    """Arms on the y axis, first arm at the top."""
    ax.set_yticks(range(len(arms)), [style.plot_text(a, limit=26) for a in arms])
    ax.set_ylim(len(arms) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)


def offsets(n: int, width: float = 0.24) -> np.ndarray:
    """Fixed vertical spread of n seed points around a row (no random jitter: reproducible)."""
    return np.linspace(-width / 2, width / 2, n) if n > 1 else np.zeros(n)


def dot_row(
    ax, y: float, values, colour: str, marker: str = "o", filled: bool = True, spread: float = 0.24
) -> None:
    """Seed values as small points, their mean as a large marker with a 95% t interval."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return
    face = colour if filled else "white"
    y_seeds = y + offsets(len(values), spread)
    ax.scatter(values, y_seeds, s=9, color=colour, alpha=0.55, lw=0, zorder=3)
    summary = stats.describe(values)
    if summary["n"] > 1:
        ax.errorbar(
            summary["mean"],
            y,
            xerr=[[summary["mean"] - summary["ci_low"]], [summary["ci_high"] - summary["mean"]]],
            color=colour,
            lw=1.2,
            capsize=2.5,
            zorder=4,
        )
    ax.scatter(
        summary["mean"], y, s=42, marker=marker, facecolor=face, edgecolor=colour, lw=1.4, zorder=5
    )


def dot_panel(ax, frame, metric: str, arms: list[str], styles, scale: float, **kwargs) -> None:
    """One dot row per arm (missing arms leave their row empty, so panels line up)."""
    shift = kwargs.pop("shift", 0.0)
    for i, arm in enumerate(arms):
        values = frame.loc[frame["arm"] == arm, metric].to_numpy(float) * scale
        dot_row(ax, i + shift, values, styles[arm].colour, **kwargs)


def empty_panel(ax, text: str = "no finished cells") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xticks([])


def legend(fig: Figure, handles: list, title: str = "", inches_per_entry: float = 1.5) -> None:
    """A legend under the panels with as many columns as fit the figure's width."""
    fits = int(fig.get_figwidth() // inches_per_entry)
    ncol = max(1, min(len(handles), fits))
    fig.legend(
        handles=handles, loc="outside lower center", ncol=ncol, frameon=False, title=title or None
    )


def marker_legend(fig: Figure, entries: list[tuple[str, str, bool]], note: str = "") -> None:
    """What the markers mean (label, marker, filled), with `note` as the legend's title."""
    handles = [
        Line2D([], [], ls="", marker=m, mfc="0.3" if f else "white", mec="0.3", ms=6, label=t)
        for t, m, f in entries
    ]
    legend(fig, handles, note, inches_per_entry=2.2)


def arm_legend(fig: Figure, arms: list[str], styles, title: str = "", markers: bool = True) -> None:
    """The arms' colours (and markers) in display order."""
    handles = [
        Line2D(
            [],
            [],
            color=styles[a].colour,
            marker=styles[a].marker if markers else None,
            ms=5,
            label=style.plot_text(a),
        )
        for a in arms
    ]
    legend(fig, handles, title)


def panel_title(protocol: str, rest: str, width: int = 26) -> str:
    """The protocol (with its protocol-bound columns), then the other scope columns, each wrapped
    to `width` characters (about the panel's width: neighbouring titles must not overlap)."""
    lines = textwrap.wrap(style.plot_text(protocol, limit=2 * width), width)
    lines += textwrap.wrap(style.plot_text(rest, limit=3 * width), width)
    return "\n".join(lines)
