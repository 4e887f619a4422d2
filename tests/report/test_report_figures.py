"""Figures drawn from the committed cpu-evidence results (a step budget, head_first, two train
sizes with a batch size each) and from single cells: the unfreeze line in the x axis's units and
inside the curves' range, reliability titles that do not overlap, train-size panels with a
trend (several sizes per panel)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from bench.report import draw, figures
from bench.report.load import load_results

EVIDENCE = Path(__file__).resolve().parents[2] / "results" / "cpu-evidence"


@pytest.fixture(scope="module")
def evidence():
    if not (EVIDENCE / "runs.csv").is_file():
        pytest.skip("the committed results/cpu-evidence are absent")
    return load_results(EVIDENCE)


def drawn(monkeypatch, make, results, tmp_path):
    """The matplotlib figure `make(results, folder)` draws, laid out (not saved)."""
    captured = []
    monkeypatch.setattr(draw, "save", lambda fig, folder, name: captured.append(fig) or [])
    make(results, tmp_path)
    (fig,) = captured
    FigureCanvasAgg(fig).draw()
    return fig


def test_epoch_ends_follow_the_step_plan():
    budget = pd.Series({"epochs": 5, "train_steps": 120, "train_size": 100, "batch_size": 32})
    assert figures.epoch_ends(budget) == [24, 48, 72, 96, 120]  # periods of the budget
    assert figures.step_to_epoch(budget, 60) == pytest.approx(2.5)
    passes = pd.Series({"epochs": 4, "train_steps": 0, "train_size": 1000, "batch_size": 100})
    assert figures.epoch_ends(passes) == [10, 20, 30, 40]
    assert figures.step_to_epoch(passes, 20) == pytest.approx(2.0)
    small = pd.Series({"epochs": 3, "train_size": 100, "batch_size": 128})  # no train_steps
    assert figures.epoch_ends(small) == [1, 2, 3]  # the batch is capped at the training set
    # a budget in passes (issue 23): 30 passes of 15 full batches in 6 periods, not 6 passes
    capped = pd.Series({"epochs": 6, "train_steps": 0, "train_passes": 30.0,
                        "train_size": 1000, "batch_size": 64})  # fmt: skip
    assert figures.epoch_ends(capped) == [75, 150, 225, 300, 375, 450]
    assert figures.total_steps(capped) == 450 and figures.total_steps(budget) == 120
    assert figures.step_to_epoch(capped, 150) == pytest.approx(2.0)


def test_unfreeze_line_lies_within_the_curves_x_range(evidence, monkeypatch, tmp_path):
    epochs = evidence.epochs
    for protocol, rest in itertools.product(evidence.protocols, evidence.rests):
        lines = figures.unfreeze_epochs(evidence, protocol, rest)
        if protocol == "head_first":
            assert lines == [pytest.approx(2.5)]  # step 60 of 120, 5 periods of 24 steps
        else:
            assert lines == []
        last = epochs[(epochs["protocol"] == protocol) & (epochs["rest"] == rest)]["epoch"].max()
        assert all(0 < x <= last for x in lines)
    fig = drawn(monkeypatch, figures.curves_figure, evidence, tmp_path)
    for ax in fig.axes:
        if not ax.lines:
            continue
        low, high = ax.get_xlim()
        verticals = [line for line in ax.lines if line.get_linestyle() == ":"]
        for line in verticals:
            assert low <= line.get_xdata()[0] <= high
        curves = [x for line in ax.lines if line not in verticals for x in line.get_xdata()]
        assert low <= min(curves) and max(curves) <= high and high == max(curves)


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("name", ["reliability_figure", "curves_figure", "train_size_figure"])
def test_panel_titles_do_not_overlap(evidence, monkeypatch, tmp_path, name):
    fig = drawn(monkeypatch, getattr(figures, name), evidence, tmp_path)
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    assert len(boxes) >= 2
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlap(a, b), (a, b)


def test_train_size_panels_show_several_sizes(evidence, monkeypatch, tmp_path):
    assert figures.columns_with_train_size(evidence.ok, evidence.facet_columns) == [
        c for c in evidence.facet_columns if c in ("batch_size", "train_per_class")
    ]
    fig = drawn(monkeypatch, figures.train_size_figure, evidence, tmp_path)
    sizes = set(evidence.ok["train_size"])
    assert len(sizes) == 2
    for ax in fig.axes:
        xs = {x for line in ax.lines for x in line.get_xdata()} & sizes
        assert xs == sizes, ax.get_title()  # a trend across sizes, not one point per panel


def test_a_column_that_varies_within_a_train_size_stays_a_figure_row():
    ok = pd.DataFrame({"train_size": [100, 100, 1000, 1000], "batch_size": [32, 32, 64, 64],
                       "backbone": ["a", "b", "a", "b"]})  # fmt: skip
    assert figures.columns_with_train_size(ok, ["train_size", "batch_size", "backbone"]) == [
        "batch_size"
    ]
    assert figures.columns_with_train_size(ok[ok["train_size"] == 100], ["batch_size"]) == []


# issue 28: where a schedule started (runs.csv schedule_start_step), on both figures


def _started(tmp_path, starts):
    """none, cutmix and cutmix (on_plateau), frozen, 3 seeds, 4 epochs of 2000 / 128 = 15 steps
    (60 steps); `starts(seed)`: the on_plateau cells' schedule_start_step; cutmix's is 0."""
    import math

    import numpy as np
    from report_fixtures import make_results

    arms = [("none", "constant"), ("cutmix", "constant"), ("cutmix", "on_plateau")]
    runs = make_results(tmp_path, arms=arms, protocols=("frozen",))
    runs["schedule_start_step"] = np.where(runs["regularizer"] == "cutmix", 0.0, math.nan)
    plateau = runs["schedule"] == "on_plateau"
    runs.loc[plateau, "schedule_start_step"] = [starts(s) for s in runs.loc[plateau, "seed"]]
    runs.to_csv(tmp_path / "runs.csv", index=False)
    return load_results(tmp_path)


def _start_lines(fig):
    return [
        (line.get_color(), line.get_xdata()[0])
        for ax in fig.axes
        for line in ax.lines
        if line.get_linestyle() == figures.START_LINE
    ]


def test_schedule_starts_are_drawn_where_recorded_and_past_step_0(tmp_path, monkeypatch):
    results = _started(tmp_path, lambda seed: 30.0 if seed else 45.0)
    plateau = "cutmix (on_plateau)"
    # 15 steps per epoch: step 30 ends epoch 2, step 45 epoch 3; cutmix's 0 is not drawn
    assert figures.schedule_start_epochs(results, "frozen", "") == [
        (plateau, pytest.approx(2.0)),
        (plateau, pytest.approx(3.0)),
    ]
    assert figures.schedule_start_fractions(results, plateau) == [0.5, 0.75]  # of 60 steps
    assert figures.schedule_start_fractions(results, "cutmix") == []
    colour = results.styles[plateau].colour
    curves = drawn(monkeypatch, figures.curves_figure, results, tmp_path)
    assert sorted(x for c, x in _start_lines(curves)) == [2.0, 2.0, 3.0, 3.0]  # two panels
    assert {c for c, _ in _start_lines(curves)} == {colour}
    assert figures.START_LEGEND in curves.legends[0].get_title().get_text()
    schedule = drawn(monkeypatch, figures.schedule_figure, results, tmp_path)
    assert sorted(x for _, x in _start_lines(schedule)) == [0.5, 0.5, 0.75, 0.75]
    assert figures.START_LEGEND in schedule.legends[0].get_title().get_text()
    # the drawn curve of the first cell (seed 0, step 45) is off before its start, on after
    fraction, prob, strength = figures.schedule_curve(
        results.ok[results.ok["arm"] == plateau].iloc[0]
    )
    assert prob[fraction < 0.75].max() == 0 and prob[fraction >= 0.75].min() == 1.0


def test_no_schedule_start_line_where_none_started_late(tmp_path, monkeypatch):
    # never switched on (empty) and started at step 0: nothing to mark, no legend line
    results = _started(tmp_path, lambda seed: math.nan if seed else 0.0)
    assert figures.schedule_start_epochs(results, "frozen", "") == []
    for make in (figures.curves_figure, figures.schedule_figure):
        fig = drawn(monkeypatch, make, results, tmp_path)
        assert _start_lines(fig) == []
        assert figures.START_LEGEND not in fig.legends[0].get_title().get_text()
    plateau = results.ok[results.ok["arm"] == "cutmix (on_plateau)"]
    never = plateau[plateau["schedule_start_step"].isna()].iloc[0]
    assert figures.schedule_curve(never)[1].max() == 0  # off all along


def test_results_without_the_column_draw_no_start_line(evidence, monkeypatch, tmp_path):
    assert "schedule_start_step" not in evidence.measured
    fig = drawn(monkeypatch, figures.curves_figure, evidence, tmp_path)
    assert _start_lines(fig) == []
