"""bench.train's plateau rule and budgets in passes (issue 23): a cell that ends where its
validation accuracy stopped rising, or at its cap (flagged unconverged); head_first's phases each
run to their own plateau; budgets in passes give every training-set size the same passes. The
rule's decisions are tested on scripted validation curves (validation_accuracy replaced), the
real cells on synthetic data with timm's test-sized ResNet (about a second each)."""

from __future__ import annotations

import pytest
from tiny_cell import scripted

from bench import train
from bench.config import RunConfig, check_config, from_dict

TINY = RunConfig(
    sweep="test", dataset="synthetic", backbone="test_resnet", pretrained="none",
    protocol="frozen", regularizer="none", epochs=8, batch_size=32, lr=0.05,
    backbone_lr_scale=1.0, image_size=16, train_size=160, val_size=100, test_size=100,
    train_eval_size=50, robustness_size=40, device="cpu", train_steps=16, eval_every=100,
    stop="plateau", patience=2, min_gain=0.01,
)  # fmt: skip


# --- bad values fail before training, naming the fix -----------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"patience": 0}, r"patience=0 is invalid; allowed: an integer >= 1"),
        ({"min_gain": -0.1}, r"min_gain=-0.1 is invalid; allowed: a number >= 0"),
        ({"stop": "early"}, r"stop='early' is invalid; allowed: budget, plateau"),
        ({"patience": 8}, r"patience=8 is invalid; allowed: an integer < epochs \(8\).*raise "
                          r"epochs"),
        ({"train_passes": 2.0}, r"train_steps=16 and train_passes=2.0 are both set; set one"),
        ({"train_passes": -1.0}, r"train_passes=-1.0 is invalid; allowed: a number >= 0"),
        ({"val_size": 0}, r"val_size=0 is invalid.*validation split"),
    ],
)  # fmt: skip
def test_bad_plateau_and_budget_values_fail_with_the_fix(changes, message):
    with pytest.raises(ValueError, match=message):
        check_config(TINY.replace(**changes))
    with pytest.raises(ValueError, match=message):  # train_cell checks before anything else
        train.train_cell(TINY.replace(**changes), progress=False)


def test_a_passes_budget_shorter_than_its_periods_fails_in_preflight_naming_the_fix():
    short = TINY.replace(train_steps=0, train_passes=0.5, epochs=8, patience=2)  # 2 steps
    with pytest.raises(
        ValueError,
        match=r"train_passes=0.5 is 2 steps .* fewer than the 8 "
        r"evaluation periods \(epochs\); raise train_passes or lower epochs",
    ):
        train.preflight(short)


def test_plateau_is_a_new_identity_and_the_default_keeps_old_ids():
    fixed = TINY.replace(stop="budget", patience=3, min_gain=0.005)
    assert fixed.identity_version == 1  # the new fields at their defaults: run ids unchanged
    assert TINY.identity_version == 2 and TINY.run_id != fixed.run_id
    assert TINY.replace(patience=3).run_id != TINY.run_id  # each setting is in the id
    assert from_dict({"stop": "plateau", "patience": 2}).stop == "plateau"


# --- the rule on hand-made curves -------------------------------------------------------------


@pytest.mark.parametrize(
    ("curve", "patience", "min_gain", "stops_after"),
    [
        ([0.5, 0.5, 0.5, 0.5], 2, 0.01, 3),  # flat: the first value, then 2 without a rise
        ([0.1, 0.2, 0.3, 0.4, 0.5], 2, 0.01, None),  # rising by 10 pp each time: never
        ([0.5, 0.505, 0.51, 0.515, 0.52], 2, 0.01, 3),  # +0.5 pp steps are under min_gain
        ([0.5, 0.4, 0.45, 0.52, 0.52, 0.52], 2, 0.01, 3),  # a dip counts as no rise
        ([0.5, 0.4, 0.52, 0.52, 0.52], 2, 0.01, 5),  # beating the best resets the wait
        ([0.5, 0.5, 0.5], 1, 0.0, 2),  # min_gain 0: an equal value is no rise
    ],
)  # fmt: skip
def test_plateau_rule_on_hand_made_curves(curve, patience, min_gain, stops_after):
    rule = train.Plateau(patience, min_gain)
    stops = [rule.update(value) for value in curve]
    expected = [i + 1 == stops_after for i in range(len(curve))] if stops_after else None
    if stops_after is None:
        assert not any(stops)
    else:
        assert stops[:stops_after] == expected[:stops_after]


def test_a_new_phase_starts_the_rule_afresh():
    rule = train.Plateau(2, 0.01)
    assert [rule.update(v, phase=0) for v in (0.5, 0.5)] == [False, False]
    assert rule.update(0.3, phase=1) is False  # unfrozen: the dip is the new phase's baseline
    assert [rule.update(v, phase=1) for v in (0.3, 0.3)] == [False, True]


def test_the_plateau_rule_evaluates_in_full_only_at_its_cadence_and_its_stop():
    """The 80% point of the cap is no convergence baseline under the rule (validation after
    every epoch is): it is not evaluated in full unless eval_every picks it."""
    assert train.StepPlan.for_cell(TINY, 160).eval_epochs == (8,)  # eval_every 100: the cap
    assert train.StepPlan.for_cell(TINY.replace(stop="budget"), 160).eval_epochs == (6, 8)
    assert train.StepPlan.for_cell(TINY.replace(eval_every=3), 160).eval_epochs == (3, 6, 8)


def test_learning_rate_stays_at_its_peak_after_warmup_under_the_plateau_rule():
    plateau = train.StepPlan.for_cell(TINY.replace(warmup_epochs=1.0), 160)
    cosine = train.StepPlan.for_cell(TINY.replace(warmup_epochs=1.0, stop="budget"), 160)
    assert plateau.warmup_steps == cosine.warmup_steps == 2
    assert plateau.lr_at(0) == cosine.lr_at(0) == 0.5
    assert [plateau.lr_at(s) for s in (2, 8, 15)] == [1.0, 1.0, 1.0]
    assert cosine.lr_at(15) < 0.05  # the budget's cosine decays; the rule's does not


# --- cells ------------------------------------------------------------------------------------


def test_flat_validation_stops_at_the_plateau_and_counts_as_converged(monkeypatch):
    seen = scripted(monkeypatch, [0.4, 0.4, 0.4])
    result = train.train_cell(TINY, progress=False)
    row = result.row
    assert row["status"] == "ok", row["error"]
    assert len(seen) == 3  # epochs 1-3: the first accuracy, then 2 without a rise
    assert row["stop_reason"] == "plateau" and row["converged"] == 1
    assert row["steps_run"] == 3 * 16 // 8  # 3 of the cap's 8 periods of 2 steps
    assert [e["epoch"] for e in result.epochs] == [3]  # the stop is always evaluated in full


def test_rising_validation_runs_to_the_cap_and_counts_as_unconverged(monkeypatch):
    scripted(monkeypatch, [0.1 * i for i in range(1, 9)])
    row = train.train_cell(TINY, progress=False).row
    assert row["status"] == "ok", row["error"]
    assert row["stop_reason"] == "cap" and row["converged"] == 0 and row["steps_run"] == 16
    assert row["val_gain_last20"] is not None  # over the last fifth of the epochs run


def test_a_fixed_budget_records_that_it_ran_its_budget():
    row = train.train_cell(TINY.replace(stop="budget", epochs=2), progress=False).row
    assert row["status"] == "ok", row["error"]
    assert row["stop_reason"] == "budget" and row["steps_run"] == 16


def test_head_first_phases_each_run_to_their_own_plateau(monkeypatch):
    cfg = TINY.replace(protocol="head_first", epochs=16, train_steps=32, unfreeze_at=0.75)
    seen = scripted(monkeypatch, [0.4])  # flat: each phase ends after 1 + patience epochs
    row = train.train_cell(cfg, progress=False).row
    assert row["status"] == "ok", row["error"]
    # planned switch at 24 of 32 steps; the head plateaued after 3 periods of 2 steps
    assert row["unfreeze_step"] == 6
    assert seen == [False] * 3 + [True] * 3  # frozen phase, then the fine-tuning phase
    assert row["stop_reason"] == "plateau" and row["steps_run"] == 12


def test_head_first_without_a_head_plateau_switches_where_planned(monkeypatch):
    cfg = TINY.replace(protocol="head_first", epochs=16, train_steps=32, unfreeze_at=0.25)
    scripted(monkeypatch, [0.1 * i for i in range(1, 4)] + [0.35])  # still rising at step 8
    row = train.train_cell(cfg, progress=False).row
    assert row["unfreeze_step"] == 8 and row["stop_reason"] == "plateau"


def test_a_killed_plateau_cell_reruns_to_the_same_stop_and_numbers():
    """A cell is atomic: a rerun after a kill trains from its start; the stopping decision reads
    the validation accuracy of a seeded run, so it repeats exactly."""
    cfg = TINY.replace(protocol="unfrozen", epochs=6, train_steps=24, patience=1, min_gain=0.02)
    first = train.train_cell(cfg, progress=False).row
    again = train.train_cell(cfg, progress=False).row
    assert first["status"] == again["status"] == "ok"
    for column in ("steps_run", "stop_reason", "val_acc", "test_acc", "test_loss", "converged"):
        assert first[column] == again[column], column


# --- budgets in passes ------------------------------------------------------------------------


def test_a_passes_budget_gives_every_size_the_same_passes():
    cfg = TINY.replace(train_steps=0, train_passes=4.0, stop="budget", epochs=4, batch_size=10)
    tiny, large = train.StepPlan.for_cell(cfg, 40), train.StepPlan.for_cell(cfg, 400)
    assert (tiny.total_steps, large.total_steps) == (16, 160)  # 4 passes of 4 and of 40 steps
    assert tiny.epoch_ends == (4, 8, 12, 16) and len(large.epoch_ends) == 4  # same periods
    row = train.train_cell(cfg.replace(train_size=40), progress=False).row
    assert row["status"] == "ok", row["error"]
    assert row["passes"] == 4.0 and row["steps_run"] == 16 and row["train_passes"] == 4.0
