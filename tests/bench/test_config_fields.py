"""RunConfig fields, each declared once (issue 25): `hparam(default, help, check, search=...)`
is the one place a field's default, check, help text and search range live; check_config, the
`regbench run` flags and help, the searchable fields and the run id's rule derive from it, so a
field added through the declaration alone is checked and appears in `--help`."""

from __future__ import annotations

import dataclasses

import pytest

from bench import search
from bench.cli import run as run_cli
from bench.config import (
    RULES,
    SEARCH_RANGES,
    Bound,
    Range,
    RunConfig,
    check_config,
    hparam,
    specs,
)

# A valid cell (synthetic data, a test backbone, sgd with momentum).
BASE = RunConfig(dataset="synthetic", backbone="test_resnet", pretrained="none", device="cpu")
NUMERIC = ("int", "float")


def test_every_field_is_declared_once_with_help_and_a_check():
    declared = specs(RunConfig)
    assert list(declared) == [f.name for f in dataclasses.fields(RunConfig)]
    for name, (field, spec) in declared.items():
        assert spec.help.strip(), name
        if field.type in NUMERIC:
            assert spec.bound is not None and not spec.choices, name  # a range, always
        else:
            assert spec.bound is None, name  # text, bool, dict: type (and choices) only
        if spec.choices:
            assert field.type == "str" and field.default in spec.choices, name
        if spec.search:
            assert field.type == "float", name


def test_every_declared_check_refuses_a_wrong_type_and_a_choice_outside():
    for name, (field, spec) in specs(RunConfig).items():
        wrong = [1, 2] if field.type != "dict[str, Any]" else "x"
        with pytest.raises(ValueError, match=rf"^cell: {name}=.* should be of type"):
            check_config(dataclasses.replace(BASE, **{name: wrong}), where="cell")
        if spec.choices:
            with pytest.raises(ValueError) as caught:
                check_config(dataclasses.replace(BASE, **{name: "nonsense"}), where="cell")
            assert str(caught.value) == (
                f"cell: {name}='nonsense' is invalid; allowed: {', '.join(spec.choices)}"
            )
    check_config(BASE, where="cell")  # every default passes its own check


def test_a_field_without_a_declaration_is_refused_by_name():
    bare = dataclasses.make_dataclass(
        "Bare", [("knob", "int", dataclasses.field(default=1))], bases=(RunConfig,), frozen=True
    )
    with pytest.raises(TypeError, match=r"Bare\.knob: declare it with hparam"):
        specs(bare)
    with pytest.raises(TypeError, match="knob"):
        check_config(bare(dataset="synthetic"))


def test_cross_field_rules_are_named_and_each_one_fires():
    broken = {
        "sgd_needs_momentum": {"momentum": 0.0},
        "scratch_needs_no_weights": {"protocol": "scratch", "pretrained": "w.pth"},
        "steps_cover_the_epochs": {"train_steps": 2, "epochs": 3},
        "one_training_size": {"train_size": 160, "train_per_class": 10},
        "partial_fine_tuning_trains_a_backbone": {"trainable_stages": 1},
        "schedule_from_unfreeze_needs_an_unfreeze": {"schedule_from": "unfreeze"},
        "one_budget": {"train_steps": 4, "train_passes": 2.0},
        "plateau_needs_periods": {"stop": "plateau", "patience": 3, "epochs": 3},
        "on_unfreeze_needs_a_switch": {
            "regularizer": "cutmix",
            "regularizer_params": {"schedule": "on_unfreeze"},
        },
        "event_schedule_counts_from_its_event": {
            "protocol": "head_first",
            "schedule_from": "unfreeze",
            "regularizer": "cutmix",
            "regularizer_params": {"schedule": "on_plateau"},
            "epochs": 4,
        },
    }
    assert sorted(rule.name for rule in RULES) == sorted(broken)
    for rule in RULES:
        cfg = dataclasses.replace(BASE, **broken[rule.name])
        assert rule.broken(cfg) and not rule.broken(BASE), rule.name
        with pytest.raises(ValueError, match=rf"^cell: {rule.field}="):
            check_config(cfg, where="cell")


def test_search_ranges_are_declared_with_their_field_and_lie_within_its_bound():
    assert tuple(SEARCH_RANGES) == search.SEARCHABLE_FIELDS
    assert {"lr", "weight_decay"} <= set(SEARCH_RANGES)
    assert not {"seed", "protocol", "train_size", "epochs"} & set(SEARCH_RANGES)
    for name, declared in SEARCH_RANGES.items():
        bound = specs(RunConfig)[name][1].bound
        assert declared.low < declared.high and bound.holds(declared.low), name
        assert bound.holds(declared.high) and (declared.low > 0 or not declared.log), name


def test_a_search_space_entry_default_searches_the_declared_range(tmp_path):
    from bench.sweep import SweepError, load_sweep

    text = (
        'name = "s"\n[defaults]\ndataset = "synthetic"\nbackbone = "test_resnet"\n'
        'pretrained = "none"\ndevice = "cpu"\n[axes]\nseed = [0]\n[[axes.arm]]\n'
        'regularizer = "none"\n[search]\nmethod = "random"\ntrials = 2\n'
        '[search.space]\nlr = "default"\n'
    )
    path = tmp_path / "s.toml"
    path.write_text(text)
    (param,) = load_sweep(path).search.space
    assert (param.low, param.high, param.log) == (0.001, 1.0, True) == (
        SEARCH_RANGES["lr"].low, SEARCH_RANGES["lr"].high, SEARCH_RANGES["lr"].log
    )  # fmt: skip
    path.write_text(text.replace('lr = "default"', 'alpha = "default"'))
    with pytest.raises(SweepError, match="alpha"):  # a regularizer parameter has none
        load_sweep(path)
    path.write_text(text.replace('method = "random"\ntrials = 2', 'method = "grid"'))
    with pytest.raises(SweepError, match="a range needs method"):
        load_sweep(path)


# --- a field added through its declaration alone ------------------------------------------


Extended = dataclasses.make_dataclass(
    "Extended",
    [("knob", "int", hparam(3, "a test knob, 100% declared once", Bound(0, 5))),
     ("flavour", "str", hparam("plain", "a test choice", ("plain", "fancy"))),
     ("ratio", "float", hparam(0.5, "a test ratio", Bound(0, 1), search=Range(0.1, 0.9)))],
    bases=(RunConfig,),
    frozen=True,
)  # fmt: skip


@pytest.fixture
def extended(monkeypatch):
    monkeypatch.setattr(run_cli, "RunConfig", Extended)
    return run_cli.build_parser()


def test_a_declared_field_gets_a_flag_with_its_help_default_and_choices(extended):
    text = " ".join(extended.format_help().split())
    assert "--knob KNOB a test knob, 100% declared once (default: 3)" in text
    assert "--flavour {plain,fancy} a test choice (default: plain)" in text
    assert "--ratio RATIO a test ratio (default: 0.5)" in text
    cfg = run_cli.config_from_args(extended.parse_args(["--knob", "4", "--flavour", "fancy"]))
    assert isinstance(cfg, Extended) and (cfg.knob, cfg.flavour, cfg.ratio) == (4, "fancy", 0.5)
    with pytest.raises(SystemExit):  # argparse refuses a choice outside (exit 2)
        extended.parse_args(["--flavour", "odd"])


def test_a_declared_field_is_checked(extended):
    base = dict(dataset="synthetic", backbone="test_resnet", pretrained="none", device="cpu")
    check_config(Extended(**base, knob=5, ratio=1.0), where="cell")  # the closed ends
    cases = [
        ({"knob": 6}, "cell: knob=6 is invalid; allowed: an integer >= 0 and <= 5"),
        ({"knob": -1}, "cell: knob=-1 is invalid; allowed: an integer >= 0 and <= 5"),
        ({"ratio": float("nan")}, "cell: ratio=nan is invalid; allowed: a finite number"),
        ({"ratio": 1.5}, "cell: ratio=1.5 is invalid; allowed: a number >= 0 and <= 1"),
        ({"flavour": "odd"}, "cell: flavour='odd' is invalid; allowed: plain, fancy"),
        ({"knob": True}, "cell: knob=True should be of type int"),
    ]
    for changes, message in cases:
        with pytest.raises(ValueError) as caught:
            check_config(Extended(**base, **changes), where="cell")
        assert str(caught.value).startswith(message), changes
    args = extended.parse_args(["--knob", "9", "--dataset", "synthetic"])
    with pytest.raises(ValueError, match="knob=9 is invalid"):  # what `regbench run` checks
        check_config(run_cli.config_from_args(args))


def test_the_schema_configuration_columns_take_type_and_range_from_the_declaration():
    from bench.schema import RUNS

    fields = specs(RunConfig)
    configured = [c for c in RUNS if c.kind == "configuration" and c.name in fields]
    assert len(configured) >= 30
    for column in configured:
        field, spec = fields[column.name]
        assert column.dtype == (field.type if field.type in NUMERIC else "text"), column.name
        if spec.bound is None:
            assert column.low is None and column.high is None, column.name
            continue
        integer = field.type == "int"  # an open int end: the next integer inside
        low = spec.bound.low + (integer and spec.bound.low_open)
        high = spec.bound.high - (integer and spec.bound.high_open)
        assert column.high == high, column.name
        assert column.low == (1 if column.name == "train_size" else low), column.name  # drawn


def test_the_results_schema_page_names_every_runs_column():
    from pathlib import Path

    from bench.schema import RUNS_COLUMNS

    page = (Path(__file__).resolve().parents[2] / "docs" / "results-schema.md").read_text()
    assert [c for c in RUNS_COLUMNS if f"`{c}`" not in page] == []
    assert "`identity_version`" in page
