"""bench.train's event schedules (issue 28): a regularizer that stays off until validation
accuracy plateaus (on_plateau) or the backbone unfreezes (on_unfreeze), then runs its stages;
the step it switched on is recorded per row (schedule_start_step) and the epochs.csv rows show it
off, then on. The plateau decisions run on scripted validation curves (validation_accuracy
replaced, as in test_train_plateau.py), the cells on synthetic data with timm's test ResNet."""

from __future__ import annotations

import pytest
from tiny_cell import scripted

from bench import train
from bench.config import RunConfig, check_config, watches_plateau

# 8 periods of 2 steps, a full evaluation after each (so every epoch's row shows the regularizer)
CELL = RunConfig(
    sweep="test", dataset="synthetic", backbone="test_resnet", pretrained="none",
    protocol="frozen", regularizer="cutmix",
    regularizer_params={"alpha": 1.0, "schedule": "on_plateau"}, epochs=8, batch_size=32,
    lr=0.05, backbone_lr_scale=1.0, image_size=16, train_size=160, val_size=100, test_size=100,
    train_eval_size=50, robustness_size=40, device="cpu", train_steps=16, eval_every=1,
    patience=2, min_gain=0.01,
)  # fmt: skip


def trained(cfg: RunConfig):
    result = train.train_cell(cfg, progress=False)
    assert result.row["status"] == "ok", result.row["error"]
    return result.row, {row["epoch"]: row["regularizer_prob"] for row in result.epochs}


def test_on_plateau_is_off_until_the_plateau_then_on_to_the_budget(monkeypatch):
    seen = scripted(monkeypatch, [0.4])  # flat: the plateau after 1 + patience = 3 epochs
    row, prob = trained(CELL)
    assert len(seen) == 8  # a budget cell checks validation after every epoch for the rule
    assert row["schedule_start_step"] == 6  # the end of epoch 3
    assert [prob[e] for e in range(1, 9)] == [0.0] * 3 + [1.0] * 5
    assert row["stop_reason"] == "budget" and row["steps_run"] == 16  # the budget is kept


def test_on_plateau_without_a_plateau_never_switches_on(monkeypatch):
    """Must not: a regularizer whose plateau never came acts on no batch, and the row says so
    with an empty schedule_start_step (the report then has no effect to test)."""
    scripted(monkeypatch, [0.1 * i for i in range(1, 9)])  # rising by 10 pp: no plateau
    row, prob = trained(CELL)
    assert row["schedule_start_step"] is None
    assert set(prob.values()) == {0.0}


def test_under_the_plateau_stop_the_switch_starts_a_new_phase(monkeypatch):
    """With stop = plateau, the first plateau switches the regularizer on (it does not stop the
    cell); the rule starts afresh and the second plateau stops it."""
    scripted(monkeypatch, [0.4])
    row, prob = trained(CELL.replace(stop="plateau", eval_every=100))
    assert row["schedule_start_step"] == 6
    assert row["stop_reason"] == "plateau" and row["steps_run"] == 12  # 3 more periods
    assert prob == {6: 1.0}  # the stop, evaluated in full


def test_head_first_switches_on_at_the_fine_tuning_plateau_not_the_heads(monkeypatch):
    """Three phases, each to its plateau: the head (then the backbone unfreezes), fine-tuning
    (then the regularizer switches on), fine-tuning with it (then the cell stops)."""
    cfg = CELL.replace(protocol="head_first", epochs=16, train_steps=32, unfreeze_at=0.75,
                       stop="plateau", eval_every=100)  # fmt: skip
    seen = scripted(monkeypatch, [0.4])
    row, _ = trained(cfg)
    assert row["unfreeze_step"] == 6 and row["schedule_start_step"] == 12
    assert seen == [False] * 3 + [True] * 6
    assert row["stop_reason"] == "plateau" and row["steps_run"] == 18


def test_under_a_budget_the_head_plateau_does_not_move_the_unfreeze(monkeypatch):
    cfg = CELL.replace(protocol="head_first", epochs=16, train_steps=32, unfreeze_at=0.5)
    scripted(monkeypatch, [0.4])  # flat: the head "plateaus" early, which a budget ignores
    row, prob = trained(cfg)
    assert row["unfreeze_step"] == 16  # planned: half of 32 steps
    assert row["schedule_start_step"] == 22  # 3 fine-tuning epochs after the switch
    assert max(prob[e] for e in range(1, 12)) == 0.0 and prob[12] == 1.0


def test_on_unfreeze_is_off_until_the_backbone_unfreezes(monkeypatch):
    cfg = CELL.replace(protocol="head_first", epochs=8, train_steps=16, unfreeze_at=0.5,
                       regularizer_params={"alpha": 1.0, "schedule": "on_unfreeze"})  # fmt: skip
    assert not watches_plateau(cfg)  # no validation checks beyond the evaluations
    row, prob = trained(cfg)
    assert row["unfreeze_step"] == row["schedule_start_step"] == 8
    assert [prob[e] for e in range(1, 9)] == [0.0] * 4 + [1.0] * 4
    # under the plateau stop the schedule follows the unfreeze where the rule moved it
    scripted(monkeypatch, [0.4])
    moved, _ = trained(cfg.replace(stop="plateau", epochs=16, train_steps=32, unfreeze_at=0.75))
    assert moved["unfreeze_step"] == moved["schedule_start_step"] == 6


def test_a_constant_schedule_counts_from_the_start():
    row, prob = trained(CELL.replace(regularizer_params={"alpha": 1.0}, epochs=2))
    assert row["schedule_start_step"] == 0 and set(prob.values()) == {1.0}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"patience": 8}, r"patience=8 is invalid; allowed: an integer < epochs \(8\) with stop "
                          r"'plateau' or an on_plateau schedule"),
        ({"val_size": 0}, r"val_size=0 is invalid.*validation split"),  # no plateau to wait for
        ({"regularizer_params": {"schedule": "on_unfreeze"}},
         r"protocol='frozen' is invalid; allowed: staged or head_first with the on_unfreeze"),
        ({"protocol": "unfrozen", "regularizer_params": {"schedule": "on_unfreeze"}},
         r"protocol='unfrozen' is invalid; allowed: staged or head_first"),
        ({"protocol": "head_first", "schedule_from": "unfreeze"},
         r"schedule_from='unfreeze' is invalid; allowed: 'start' with an on_unfreeze or "
         r"on_plateau schedule"),
    ],
)  # fmt: skip
def test_bad_event_schedules_fail_before_training_with_the_fix(changes, message):
    with pytest.raises(ValueError, match=message):
        check_config(CELL.replace(**changes))
    with pytest.raises(ValueError, match=message):
        train.train_cell(CELL.replace(**changes), progress=False)
