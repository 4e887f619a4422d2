"""Schedules: factors at stage boundaries, ramps, and what a regularizer reports for logging."""

from __future__ import annotations

import pytest
import torch

import regularizers
from regularizers.schedules import build_schedule, describe, schedule_event


def test_constant():
    schedule = build_schedule("constant")
    assert [schedule(p) for p in (0.0, 0.5, 1.0)] == [(1.0, 1.0)] * 3


def test_staged_default_boundaries_are_left_closed():
    schedule = build_schedule("staged")
    assert schedule(0.0) == (0.0, 0.0)
    assert schedule(0.2999) == (0.0, 0.0)
    assert schedule(0.3) == (1.0, 0.3)
    assert schedule(0.6999) == (1.0, 0.3)
    assert schedule(0.7) == (1.0, 1.0)
    assert schedule(1.0) == (1.0, 1.0)


def test_staged_custom():
    schedule = build_schedule("staged", stages=[[0, 0.5, 0.25], [0.5, 1, 0.5]])
    assert schedule(0.0) == (0.5, 0.25) and schedule(0.5) == (1.0, 0.5)
    assert schedule.params() == {"stages": [[0.0, 0.5, 0.25], [0.5, 1.0, 0.5]]}


@pytest.mark.parametrize(
    "applies_to,expected",
    [("both", (0.5, 0.5)), ("prob", (0.5, 1.0)), ("strength", (1.0, 0.5))],
)
def test_linear(applies_to, expected):
    schedule = build_schedule("linear", ramp=(0.2, 0.6), applies_to=applies_to)
    assert schedule(0.4) == pytest.approx(expected)
    assert schedule(0.0) == (
        0.0 if applies_to != "strength" else 1.0,
        0.0 if applies_to != "prob" else 1.0,
    )
    assert schedule(0.2) == schedule(0.0)
    assert schedule(0.6) == (1.0, 1.0) and schedule(1.0) == (1.0, 1.0)
    assert schedule.params() == {"ramp": [0.2, 0.6], "applies_to": applies_to}


def test_regularizer_reports_current_values():
    reg = regularizers.build("cutmix", 10, prob=0.8, schedule="staged")
    assert reg.schedule_name == "staged"
    seen = []
    for progress in (0.0, 0.3, 0.5, 0.7, 1.0):
        reg.set_progress(progress)
        seen.append((reg.current_prob, reg.current_strength))
    assert seen == [(0.0, 0.0), (0.8, 0.3), (0.8, 0.3), (0.8, 1.0), (0.8, 1.0)]
    assert isinstance(reg.current_prob, float) and isinstance(reg.current_strength, float)
    none = regularizers.build("none", 10)
    none.set_progress(0.5)
    assert (none.current_prob, none.current_strength, none.schedule_name) == (0.0, 0.0, "constant")


def test_no_cutmix_first_mild_cutmix_later():
    """The docs' example: off for the first half, then small patches (a quarter at most)."""
    reg = regularizers.build(
        "cutmix", 4, mode="elem", schedule="staged", stages=[[0.0, 0.0, 0.0], [0.5, 1.0, 0.25]]
    )
    images, labels = torch.randn(64, 3, 16, 16), torch.randint(0, 4, (64,))
    reg.set_progress(0.2)
    out, _ = reg(images, labels)
    assert out is images
    reg.set_progress(0.5)
    draws = reg.sample(images, torch.Generator().manual_seed(0))
    area = (draws["box"][:, 1] - draws["box"][:, 0]) * (draws["box"][:, 3] - draws["box"][:, 2])
    assert 0 < int(area.max()) <= 0.25 * 16 * 16


def test_describe_lists_every_schedule_with_defaults():
    info = describe()
    assert set(info) == {"constant", "linear", "staged", "on_unfreeze", "on_plateau"}
    assert info["linear"]["params"] == {"ramp": [0.0, 0.5], "applies_to": "both"}
    info["staged"]["params"]["stages"].append([0.9, 0, 0])  # a copy: defaults stay intact
    assert len(describe()["staged"]["params"]["stages"]) == 3


@pytest.mark.parametrize("name,event", [("on_unfreeze", "unfreeze"), ("on_plateau", "plateau")])
def test_event_schedules_are_full_from_their_event_by_default(name, event):
    """Progress counts from the event (the loop's job): from it, full unless stages say else."""
    schedule = build_schedule(name)
    assert schedule_event(name) == event
    assert [schedule(p) for p in (0.0, 0.5, 1.0)] == [(1.0, 1.0)] * 3
    mild_then_strong = build_schedule(name, stages=[[0.0, 1.0, 0.3], [0.5, 1.0, 1.0]])
    assert mild_then_strong(0.0) == (1.0, 0.3) and mild_then_strong(0.5) == (1.0, 1.0)


@pytest.mark.parametrize("name", ["constant", "linear", "staged", "no_such_schedule", None, 3])
def test_only_event_schedules_wait(name):
    assert schedule_event(name) == ""


def test_an_event_schedule_keeps_the_regularizer_off_until_the_loop_says_on():
    """`set_progress(..., on=False)` turns the regularizer off whatever its schedule says: no
    draws, the batch returned as it is, prob and strength logged as 0."""
    reg = regularizers.build("cutmix", 4, alpha=1.0, schedule="on_plateau")
    images, labels = torch.randn(8, 3, 16, 16), torch.randint(0, 4, (8,))
    reg.set_progress(0.0, on=False)
    assert (reg.current_prob, reg.current_strength) == (0.0, 0.0)
    out, targets = reg(images, labels)
    assert out is images and torch.equal(targets, torch.nn.functional.one_hot(labels, 4).float())
    reg.set_progress(0.0, on=True)
    assert (reg.current_prob, reg.current_strength) == (1.0, 1.0)
    out, targets = reg(images, labels, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(out, images)
    assert not torch.equal(targets, torch.nn.functional.one_hot(labels, 4).float())
