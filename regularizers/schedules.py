"""Schedules: how a regularizer's probability and strength follow training progress.

A schedule maps progress (the fraction of training done, in [0, 1]) to two factors in [0, 1]:
``(prob_factor, strength_factor)``. The regularizer applies itself with probability
``prob * prob_factor`` and scales the size of its perturbation by ``strength_factor``
(see `regularizers.base.Regularizer`). Three schedules ship:

    constant     (1, 1) at every step: the plain method.
    linear       both factors (or one of them) ramp from 0 to 1 between two fractions of training.
    staged       piecewise-constant stages, e.g. off, then mild (small patches), then full.
    on_unfreeze  off until the backbone unfreezes, then stages counted from there (default: full).
    on_plateau   off until validation accuracy plateaus, then stages counted from there.

Stage boundaries are fractions of training and are left-closed: at exactly ``progress == 0.3``
a stage that starts at 0.3 is already in force. The two event schedules (`event` set) need the
training loop: it keeps the regularizer off (`Regularizer.set_progress(..., on=False)`) until the
event, then passes progress counted from the event's step to the end of the budget
(bench.train.StepPlan; the plateau is bench.train.Plateau's, docs/protocols.md).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from .checks import check_choice, check_number, check_pair


class Schedule:
    """Base class: `__call__(progress) -> (prob_factor, strength_factor)`, both in [0, 1]."""

    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, Any]] = {}  # parameter -> default, JSON-serialisable
    event: ClassVar[str] = ""  # "": progress from the start; else off until "unfreeze" / "plateau"

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            allowed = ", ".join(self.PARAMS) or "none"
            raise ValueError(
                f"unknown parameter(s) {unknown} for schedule {self.name!r}; allowed: {allowed}"
            )
        self._params = {**self.PARAMS, **params}

    def params(self) -> dict[str, Any]:
        """All parameters with defaults filled in, as JSON-serialisable values."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._params.items()}

    def __call__(self, progress: float) -> tuple[float, float]:
        raise NotImplementedError


class Constant(Schedule):
    """Full probability and strength throughout training."""

    name = "constant"

    def __call__(self, progress: float) -> tuple[float, float]:
        return 1.0, 1.0


class Linear(Schedule):
    """Factors rise linearly from 0 at ramp[0] to 1 at ramp[1]; applies_to: both|prob|strength."""

    name = "linear"
    PARAMS = {"ramp": [0.0, 0.5], "applies_to": "both"}
    APPLIES_TO = ("both", "prob", "strength")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._start, self._end = check_pair("ramp", self._params["ramp"], 0.0, 1.0)
        if self._start == self._end:
            raise ValueError(
                f"ramp must be [start, end] with start < end, got {self._params['ramp']!r}"
            )
        self._params["ramp"] = [self._start, self._end]
        check_choice("applies_to", self._params["applies_to"], self.APPLIES_TO)

    def __call__(self, progress: float) -> tuple[float, float]:
        f = min(max((progress - self._start) / (self._end - self._start), 0.0), 1.0)
        applies_to = self._params["applies_to"]
        return (1.0 if applies_to == "strength" else f), (1.0 if applies_to == "prob" else f)


class Staged(Schedule):
    """Piecewise-constant [start_fraction, prob_factor, strength_factor] stages."""

    name = "staged"
    # Off for the first 30% of training, then mild (partner share / erased area scaled by 0.3),
    # then the full method for the last 30%.
    PARAMS = {"stages": [[0.0, 0.0, 0.0], [0.3, 1.0, 0.3], [0.7, 1.0, 1.0]]}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        stages = self._params["stages"]
        ok = isinstance(stages, (list, tuple)) and len(stages) > 0
        if not ok or not all(isinstance(st, (list, tuple)) and len(st) == 3 for st in stages):
            raise ValueError(
                "stages must be a non-empty list of [start_fraction, prob_factor, "
                f"strength_factor], got {stages!r}"
            )
        parsed = [
            [check_number(f"stages[{i}][{j}]", v, 0.0, 1.0) for j, v in enumerate(stage)]
            for i, stage in enumerate(stages)
        ]
        starts = [stage[0] for stage in parsed]
        if starts[0] != 0.0 or starts != sorted(set(starts)) or starts[-1] >= 1.0:
            raise ValueError(
                f"stage start fractions must rise strictly from 0 and stay below 1, got {starts}"
            )
        self._stages = parsed
        self._params["stages"] = parsed

    def __call__(self, progress: float) -> tuple[float, float]:
        current = self._stages[0]
        for stage in self._stages:  # a handful of stages: a linear scan is clearest
            if progress >= stage[0]:
                current = stage
        return current[1], current[2]


class OnUnfreeze(Staged):
    """Off until the backbone unfreezes, then [start_fraction, prob, strength] stages from there."""

    name = "on_unfreeze"
    event = "unfreeze"
    # counted from the event: full at once; mild-then-strong is e.g. [[0, 1, 0.3], [0.5, 1, 1]]
    PARAMS = {"stages": [[0.0, 1.0, 1.0]]}


class OnPlateau(OnUnfreeze):
    """Off until validation accuracy plateaus, then [start_fraction, prob, strength] stages."""

    name = "on_plateau"
    event = "plateau"


SCHEDULES: dict[str, type[Schedule]] = {
    s.name: s for s in (Constant, Linear, Staged, OnUnfreeze, OnPlateau)
}


def schedule_event(name: object) -> str:
    """The event the schedule called `name` waits for ("unfreeze" | "plateau"), or "" for one
    that counts from the start (or an unknown name: its own check reports it)."""
    schedule = SCHEDULES.get(name) if isinstance(name, str) else None
    return schedule.event if schedule else ""


def build_schedule(name: str, **params: Any) -> Schedule:
    """The schedule `name` (one of SCHEDULES) with `params`; ValueError if bad."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {name!r}")
    return SCHEDULES[name](**params)


def describe() -> dict[str, dict[str, Any]]:
    """For each schedule: its one-line doc and its parameters with defaults."""
    return {
        name: {
            "doc": (cls.__doc__ or "").strip().splitlines()[0],
            "params": copy.deepcopy(cls.PARAMS),
        }
        for name, cls in SCHEDULES.items()
    }
