"""Schedules: how a regularizer's probability and strength follow training progress.

A schedule maps progress (the fraction of training done, in [0, 1]) to two factors in [0, 1]:
``(prob_factor, strength_factor)``. The regularizer applies itself with probability
``prob * prob_factor`` and scales the size of its perturbation by ``strength_factor``
(see `regularizers.base.Regularizer`). Three schedules ship:

    constant   (1, 1) at every step: the plain method.
    linear     both factors (or one of them) ramp from 0 to 1 between two fractions of training.
    staged     piecewise-constant stages, e.g. off, then mild (small patches), then full.

Stage boundaries are fractions of training and are left-closed: at exactly ``progress == 0.3``
a stage that starts at 0.3 is already in force.
"""

from __future__ import annotations

from typing import Any, ClassVar


def _fraction_pair(name: str, value: Any) -> tuple[float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or not 0.0 <= value[0] < value[1] <= 1.0:
        raise ValueError(
            f"{name} must be [start, end] with 0 <= start < end <= 1 (fractions of training), "
            f"got {value!r}"
        )
    return float(value[0]), float(value[1])


class Schedule:
    """Base class: `__call__(progress) -> (prob_factor, strength_factor)`, both in [0, 1]."""

    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, Any]] = {}  # parameter -> default, JSON-serialisable

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
    """Factor 0 before ramp[0], rising linearly to 1 at ramp[1], then 1; `ramps` picks which."""

    name = "linear"
    PARAMS = {"ramp": [0.0, 0.5], "ramps": "both"}
    RAMPS = ("both", "prob", "strength")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._start, self._end = _fraction_pair("ramp", self._params["ramp"])
        self._params["ramp"] = [self._start, self._end]
        if self._params["ramps"] not in self.RAMPS:
            raise ValueError(f"ramps must be one of {self.RAMPS}, got {self._params['ramps']!r}")

    def __call__(self, progress: float) -> tuple[float, float]:
        f = min(max((progress - self._start) / (self._end - self._start), 0.0), 1.0)
        ramps = self._params["ramps"]
        return (1.0 if ramps == "strength" else f), (1.0 if ramps == "prob" else f)


class Staged(Schedule):
    """Piecewise-constant [start_fraction, prob_factor, strength_factor] stages."""

    name = "staged"
    # Off for the first 30% of training, then mild (partner share / erased area scaled by 0.3),
    # then the full method for the last 30%.
    PARAMS = {"stages": [[0.0, 0.0, 0.0], [0.3, 1.0, 0.3], [0.7, 1.0, 1.0]]}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        stages = self._params["stages"]
        rule = (
            "stages must be a non-empty list of [start_fraction, prob_factor, strength_factor] "
            "with start fractions strictly increasing in [0, 1), the first one 0, "
            "and factors in [0, 1]"
        )
        if not isinstance(stages, (list, tuple)) or not stages:
            raise ValueError(f"{rule}; got {stages!r}")
        parsed = []
        for stage in stages:
            ok = isinstance(stage, (list, tuple)) and len(stage) == 3
            ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stage)
            if not ok or not (0.0 <= stage[0] < 1.0 and 0 <= stage[1] <= 1 and 0 <= stage[2] <= 1):
                raise ValueError(f"{rule}; got stage {stage!r}")
            parsed.append([float(v) for v in stage])
        starts = [s[0] for s in parsed]
        if starts[0] != 0.0 or any(a >= b for a, b in zip(starts, starts[1:])):
            raise ValueError(f"{rule}; got start fractions {starts}")
        self._stages = parsed
        self._params["stages"] = parsed

    def __call__(self, progress: float) -> tuple[float, float]:
        current = self._stages[0]
        for stage in self._stages:  # a handful of stages: a linear scan is clearest
            if progress >= stage[0]:
                current = stage
        return current[1], current[2]


SCHEDULES: dict[str, type[Schedule]] = {s.name: s for s in (Constant, Linear, Staged)}


def build_schedule(name: str, **params: Any) -> Schedule:
    """The schedule `name` ("constant" | "linear" | "staged") with `params`; ValueError if bad."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {name!r}")
    return SCHEDULES[name](**params)


def describe() -> dict[str, dict[str, Any]]:
    """For each schedule: its one-line doc and its parameters with defaults."""
    return {
        name: {"doc": (cls.__doc__ or "").strip().splitlines()[0], "params": dict(cls.PARAMS)}
        for name, cls in SCHEDULES.items()
    }
