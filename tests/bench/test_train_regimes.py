"""bench.train's regimes (issue 13): BatchNorm mode, head_first, partial fine-tuning, the
regularizer's schedule from the switch, and the rule that an unfreeze must not erase what was
learned."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_cell import TINY

from bench import backbones, train
from bench.config import RunConfig, check_config
from bench.sweep import load_sweep

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"


def initial_model(cfg: RunConfig) -> torch.nn.Module:
    """The model train_cell starts from (same seed, same init)."""
    torch.manual_seed(cfg.seed)
    model, _ = backbones.create_backbone(cfg.backbone, "none", 10)
    return model


def running_stats(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


# ---------------------------------------------------------------------------------------------
# BatchNorm mode


def test_bn_frozen_keeps_running_statistics_while_the_backbone_trains():
    cfg = TINY.replace(epochs=1, bn="frozen")
    result = train.train_cell(cfg, progress=False, keep_model=True)
    assert result.row["status"] == "ok", result.row["error"]
    assert result.row["bn"] == "frozen"
    before, after = initial_model(cfg).state_dict(), result.model.state_dict()
    stats = running_stats(before)
    assert stats, "test_resnet has BatchNorm layers"
    for key, tensor in stats.items():
        assert torch.equal(tensor, after[key]), f"{key} changed under bn=frozen"
    # the backbone did train (its weights moved), so the statistics were kept, not skipped
    assert not torch.equal(before["conv1.0.weight"], after["conv1.0.weight"])


def test_bn_train_updates_running_statistics():
    """The must-not above can fail: with bn=train the same cell moves the statistics."""
    cfg = TINY.replace(epochs=1, bn="train")
    result = train.train_cell(cfg, progress=False, keep_model=True)
    assert result.row["bn"] == "train"
    before, after = initial_model(cfg).state_dict(), result.model.state_dict()
    changed = [k for k, v in running_stats(before).items() if not torch.equal(v, after[k])]
    assert changed


def test_bn_mode_survives_the_evaluation_between_epochs(monkeypatch):
    """evaluate_epoch restores train mode without naming bn: BatchNorm must stay frozen."""
    modes = []
    real_step = train.train_step

    def record(cell, step, batch, timed):
        out = real_step(cell, step, batch, timed)
        norms = backbones.backbone_batchnorms(cell.model)
        modes.append(any(m.training for m in norms))
        return out

    monkeypatch.setattr(train, "train_step", record)
    result = train.train_cell(TINY.replace(epochs=2, bn="frozen"), progress=False)
    assert result.row["status"] == "ok"
    assert len(modes) == 20 and not any(modes)


def test_auto_bn_resolves_per_protocol_and_is_recorded():
    from bench.config import resolved_bn

    expected = {"frozen": "frozen", "staged": "frozen", "head_first": "frozen",
                "unfrozen": "train", "scratch": "train"}  # fmt: skip
    for protocol, mode in expected.items():
        assert resolved_bn(TINY.replace(protocol=protocol)) == mode, protocol
        assert resolved_bn(TINY.replace(protocol=protocol, bn="train")) == "train"


# ---------------------------------------------------------------------------------------------
# unfreeze_step, head_first phases


def test_unfreeze_step_is_recorded_per_protocol():
    plan_steps = 2 * (640 // 64)
    for protocol, expected in (("frozen", None), ("unfrozen", 0), ("staged", plan_steps // 2),
                               ("head_first", plan_steps // 2)):  # fmt: skip
        row = train.train_cell(TINY.replace(protocol=protocol), progress=False).row
        assert row["unfreeze_step"] == expected, protocol  # the fit records where it switched


def test_head_first_schedule_restarts_at_the_switch_at_finetune_lr_scale():
    cfg = TINY.replace(protocol="head_first", unfreeze_at=0.5, finetune_lr_scale=0.1,
                       warmup_epochs=0.2)  # fmt: skip
    plan = train.StepPlan.for_cell(cfg, 640)
    switch, total = plan.unfreeze_step, plan.total_steps
    factors = [plan.lr_at(s) for s in range(total)]
    assert switch == 10 and plan.warmup_steps == 2
    assert factors[1] == pytest.approx(1.0)  # head phase: full lr after its warmup
    assert factors[switch - 1] < 0.05  # ... decayed to about 0 at the switch
    assert factors[switch] == pytest.approx(0.1 * 0.5)  # fine-tuning: warmup again
    assert max(factors[switch:]) == pytest.approx(0.1)  # ... to lr * finetune_lr_scale
    # staged keeps one schedule over the whole run (no restart)
    staged = train.StepPlan.for_cell(cfg.replace(protocol="staged"), 640)
    assert staged.lr_at(switch) == pytest.approx(train.lr_factor(switch, total, 2))


def test_staged_backbone_rewarms_after_the_switch_and_the_head_does_not():
    cfg = TINY.replace(protocol="staged", unfreeze_at=0.5, warmup_epochs=0.2)
    plan = train.StepPlan.for_cell(cfg, 640)
    switch = plan.unfreeze_step
    assert plan.backbone_rewarm_steps == plan.warmup_steps == 2
    ramps = [plan.backbone_ramp(s) for s in range(plan.total_steps)]
    assert ramps[:switch] == [1.0] * switch  # frozen backbone: no gradient, the factor is moot
    assert ramps[switch : switch + 3] == [0.5, 1.0, 1.0]  # linear over 2 steps from the switch
    # the optimizer sees it: backbone group at ramp x schedule, head group at the schedule alone
    cell, _ = train.set_up(cfg, torch.device("cpu"))
    train.train_step(cell, switch, torch.arange(cell.plan.batch_size))
    head, body = (group["lr"] for group in cell.optimizer.param_groups)
    assert head == pytest.approx(cfg.lr * plan.lr_at(switch))
    assert body == pytest.approx(cfg.lr * cfg.backbone_lr_scale * plan.lr_at(switch) * 0.5)
    # no other protocol re-warms
    for protocol in ("frozen", "unfrozen", "head_first", "scratch"):
        other = train.StepPlan.for_cell(cfg.replace(protocol=protocol), 640)
        assert other.backbone_rewarm_steps == 0, protocol


def test_head_first_head_weights_carry_into_finetuning(monkeypatch):
    """An unfreeze must not erase what was learned: the head that trained on the frozen
    backbone is the one fine-tuning starts from (not re-initialised, not reset)."""
    cfg = TINY.replace(protocol="head_first", unfreeze_at=0.5)
    heads = []  # (step, trainable before the step, head weight before, head weight after)
    real_step = train.train_step

    def record(cell, step, batch, timed):
        before = cell.model.get_classifier().weight.detach().clone()
        out = real_step(cell, step, batch, timed)
        heads.append((step, before, cell.model.get_classifier().weight.detach().clone()))
        return out

    monkeypatch.setattr(train, "train_step", record)
    result = train.train_cell(cfg, progress=False, keep_model=True)
    assert result.row["status"] == "ok", result.row["error"]
    switch = result.row["unfreeze_step"]
    assert switch == 10
    init = heads[0][1]
    end_of_head_phase = heads[switch - 1][2]
    start_of_finetuning = heads[switch][1]
    assert not torch.equal(end_of_head_phase, init)  # the head did train in the head phase
    assert torch.equal(start_of_finetuning, end_of_head_phase)  # ... and was carried over
    assert not torch.equal(heads[-1][2], end_of_head_phase)  # ... and fine-tuned after


def test_head_first_freezes_the_backbone_only_in_the_head_phase():
    cfg = TINY.replace(protocol="head_first", unfreeze_at=0.5, epochs=1)
    before = initial_model(cfg).state_dict()
    # unfreeze_at close to 1 leaves no fine-tuning step: the backbone must not change
    frozen_run = train.train_cell(cfg.replace(unfreeze_at=0.99), progress=False, keep_model=True)
    after = frozen_run.model.state_dict()
    assert frozen_run.row["unfreeze_step"] is None
    assert torch.equal(before["conv1.0.weight"], after["conv1.0.weight"])
    tuned = train.train_cell(cfg, progress=False, keep_model=True).model.state_dict()
    assert not torch.equal(before["conv1.0.weight"], tuned["conv1.0.weight"])


# ---------------------------------------------------------------------------------------------
# the regularizer's schedule from the switch


def record_progress(monkeypatch) -> list[float]:
    seen: list[float] = []
    real_build = train.build_regularizer

    def build(cfg, num_classes):
        reg = real_build(cfg, num_classes)
        real_set = reg.set_progress

        def set_progress(progress, on=True):
            seen.append(progress)
            return real_set(progress, on)

        reg.set_progress = set_progress
        return reg

    monkeypatch.setattr(train, "build_regularizer", build)
    return seen


@pytest.mark.parametrize("protocol", ["head_first", "staged"])
def test_schedule_from_unfreeze_gives_progress_zero_at_the_switch(monkeypatch, protocol):
    seen = record_progress(monkeypatch)
    cfg = TINY.replace(protocol=protocol, regularizer="cutmix",
                       regularizer_params={"alpha": 1.0, "schedule": "staged"},
                       schedule_from="unfreeze", unfreeze_at=0.5)  # fmt: skip
    result = train.train_cell(cfg, progress=False)
    switch = result.row["unfreeze_step"]
    assert len(seen) == 20 and switch == 10
    assert seen[: switch + 1] == [0.0] * (switch + 1)  # 0 up to and at the switch
    assert seen[switch + 1] == pytest.approx(1 / 10)
    assert seen[-1] == pytest.approx(9 / 10)


def test_schedule_from_start_counts_from_step_zero(monkeypatch):
    seen = record_progress(monkeypatch)
    cfg = TINY.replace(protocol="head_first", regularizer="cutmix",
                       regularizer_params={"alpha": 1.0}, unfreeze_at=0.5)  # fmt: skip
    train.train_cell(cfg, progress=False)
    assert seen[10] == pytest.approx(10 / 20) and seen[1] == pytest.approx(1 / 20)


# ---------------------------------------------------------------------------------------------
# partial fine-tuning


def test_trainable_stages_leaves_earlier_stages_bit_identical():
    cfg = TINY.replace(trainable_stages=1, epochs=1)
    result = train.train_cell(cfg, progress=False, keep_model=True)
    assert result.row["status"] == "ok", result.row["error"]
    assert result.row["trainable_stages"] == 1
    model = initial_model(cfg)
    stages = backbones.backbone_stages(model)
    assert len(stages) >= 2
    before, after = model.state_dict(), result.model.state_dict()
    frozen = [name for stage in stages[:-1] for name in stage]
    for name in frozen:
        assert torch.equal(before[name], after[name]), f"frozen-stage {name} changed"
    frozen_modules = {name.rsplit(".", 1)[0] for name in frozen}
    for key, tensor in running_stats(before).items():  # their BatchNorm statistics too
        if key.rsplit(".", 1)[0] in frozen_modules:
            assert torch.equal(tensor, after[key]), f"frozen-stage {key} changed"
    changed = [n for n in stages[-1] if not torch.equal(before[n], after[n])]
    assert changed, "the last stage did not train"


# ---------------------------------------------------------------------------------------------
# bad values fail before training, naming the fix


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trainable_stages": -1}, "trainable_stages=-1 is invalid; allowed: an integer >= 0"),
        ({"trainable_stages": 2, "protocol": "frozen"}, "0 with protocol 'frozen'"),
        ({"trainable_stages": 2, "protocol": "scratch"}, "0 with protocol 'scratch'"),
        ({"bn": "batch"}, "bn='batch' is invalid; allowed: auto, frozen, train"),
        ({"schedule_from": "end"}, "schedule_from='end' is invalid; allowed: start, unfreeze"),
        ({"schedule_from": "unfreeze", "protocol": "frozen"}, "never unfreezes"),
        ({"finetune_lr_scale": 0.0}, "finetune_lr_scale=0.0 is invalid"),
    ],
)
def test_bad_regime_values_fail_in_check_config(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_config(TINY.replace(**changes))


def test_good_regime_values_pass_check_config():
    for changes in ({"protocol": "head_first", "schedule_from": "unfreeze", "bn": "train"},
                    {"protocol": "staged", "trainable_stages": 3},
                    {"protocol": "unfrozen", "schedule_from": "unfreeze"}):  # fmt: skip
        check_config(TINY.replace(**changes))


def test_more_trainable_stages_than_the_backbone_has_fails_before_training(monkeypatch):
    steps = []
    monkeypatch.setattr(train, "train_step", lambda *args: steps.append(1))
    count = len(backbones.backbone_stages(initial_model(TINY)))
    with pytest.raises(ValueError, match=f"has {count} stages.*use 1..{count}, or 0"):
        train.train_cell(TINY.replace(trainable_stages=count + 1), progress=False)
    assert steps == []
    with pytest.raises(ValueError, match=f"has {count} stages"):
        backbones.check_backbone_stages("test_resnet", count + 1)
    backbones.check_backbone_stages("test_resnet", count)  # the largest valid k passes


# ---------------------------------------------------------------------------------------------
# real data: an unfreeze must not erase what was learned


@pytest.mark.slow
def test_staged_cell_at_cpu_quick_settings_does_not_collapse_at_the_unfreeze(cifar_dir):
    """cpu-quick's staged `none` cell, seed 0 (sweeps/cpu-quick.toml: 32 px, train 2000, val
    1000, 100 steps in 4 periods, unfreeze at step 50, evaluated after periods 2, 3 and 4; test,
    clean-train and robustness subsets cut to 100 for time): val accuracy in the periods after
    the unfreeze is at most ~1 pp below the one before it. Without the backbone's re-warmup this
    cell fell from 35.6% to 17.3% (docs/measurements/staged-collapse.md); with bn="train" the
    45-step cell fell from 29.5% to 20.7%."""
    if backbones.offline_package_file() is None and not backbones.hub_reachable():
        pytest.skip("no pretrained tf_efficientnet_lite0 weights (hub or offline package)")
    cells = load_sweep(SWEEPS / "cpu-quick.toml", {"data_dir": str(cifar_dir)}).cells
    cfg = next(c for c in cells if (c.protocol, c.regularizer, c.seed) == ("staged", "none", 0))
    cfg = cfg.replace(test_size=100, train_eval_size=100, robustness_size=100)
    result = train.train_cell(cfg, progress=False)
    assert result.row["status"] == "ok", result.row["error"]
    assert result.row["bn"] == "frozen"
    assert result.row["unfreeze_step"] == 50  # of 100: the end of period 2
    val = {e["epoch"]: e["val_acc"] for e in result.epochs}
    assert sorted(val) == [2, 3, 4]
    for epoch in (3, 4):
        assert val[epoch] >= val[2] - 0.011, (
            f"val acc {val[2]:.3f} -> {val[epoch]:.3f} (period {epoch})"
        )
