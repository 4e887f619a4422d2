"""bench.config.BOUNDS (issue 27): every numeric RunConfig field has a plausible range, declared
once; a value just outside either end is refused with the range in the message, a value at a
closed end is accepted."""

from __future__ import annotations

import dataclasses

import pytest

from bench.config import BOUNDS, FLOAT_FIELDS, RunConfig, check_config

# A valid cell the values below are set on (sizes small, sgd with momentum).
BASE = RunConfig(dataset="synthetic", backbone="test_resnet", pretrained="none", device="cpu")
NUMERIC = [f.name for f in dataclasses.fields(RunConfig) if f.type in ("int", "float")]


def test_every_numeric_field_has_a_bound_and_every_bound_a_field() -> None:
    assert sorted(BOUNDS) == sorted(NUMERIC)


def outside(name: str) -> list[float]:
    """Values just outside each end of the field's range."""
    bound, integer = BOUNDS[name], name not in FLOAT_FIELDS
    step = 1 if integer else max(abs(bound.high), 1) * 1e-9
    below = bound.low if bound.low_open else bound.low - (1 if integer else 1e-9)
    above = bound.high if bound.high_open else bound.high + step
    return [int(v) if integer else float(v) for v in (below, above)]


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_values_outside_the_range_are_refused_naming_it(name: str) -> None:
    bound, integer = BOUNDS[name], name not in FLOAT_FIELDS
    for value in outside(name):
        cfg = dataclasses.replace(BASE, **{name: value})
        with pytest.raises(ValueError) as caught:
            check_config(cfg, where="cell")
        assert f"cell: {name}={value!r} is invalid; allowed: {bound.allowed(integer)}" == str(
            caught.value
        )


@pytest.mark.parametrize(
    ("name", "value"),
    [("lr", 10.0), ("epochs", 10_000), ("weight_decay", 1.0), ("batch_size", 65_536),
     ("seed", 2**32 - 1), ("warmup_epochs", 0.0), ("train_steps", 10_000_000),
     ("image_size", 1024), ("val_size", 10), ("finetune_lr_scale", 10.0)],
)  # fmt: skip
def test_the_closed_ends_are_accepted(name: str, value: float) -> None:
    check_config(dataclasses.replace(BASE, **{name: value}), where="cell")
