"""bench.train's budget (issue 13): the step budget, evaluation cadence and the 80% point, the
convergence record, tiny stratified training sets, data_seed following seed, and the timings.
Synthetic data and timm's test-sized ResNet at 16 px: every cell here trains in about a second."""

from __future__ import annotations

import math

import pytest
import torch

from bench import data, train
from bench.cli import run as run_cli
from bench.config import BN_MODES, RunConfig, check_config, evaluation_epochs, from_dict, gain_epoch

TINY = RunConfig(
    sweep="test", dataset="synthetic", backbone="test_resnet", pretrained="none",
    protocol="unfrozen", regularizer="none", epochs=2, batch_size=32, lr=0.05,
    backbone_lr_scale=1.0, image_size=16, train_size=160, val_size=100, test_size=100,
    train_eval_size=50, robustness_size=40, device="cpu",
)  # fmt: skip


# --- bad values fail before training, naming the fix -----------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train_steps": -1}, r"train_steps=-1 is invalid; allowed: an integer >= 0"),
        ({"train_steps": 2, "epochs": 3}, r"train_steps=2 .* >= epochs \(3\).*raise train_steps"),
        ({"eval_every": 0}, r"eval_every=0 is invalid; allowed: an integer >= 1"),
        ({"eval_every": -2}, r"eval_every=-2 is invalid"),
        ({"train_per_class": -1}, r"train_per_class=-1 is invalid; allowed: an integer >= 0"),
        ({"train_per_class": 10}, r"train_size=160 and train_per_class=10 are both set; set one"),
    ],
)
def test_bad_budget_values_fail_with_the_fix(changes, message):
    with pytest.raises(ValueError, match=message):
        check_config(TINY.replace(**changes))
    with pytest.raises(ValueError, match=message):  # train_cell checks before anything else
        train.train_cell(TINY.replace(**changes), progress=False)


def test_good_budget_values_pass():
    check_config(TINY.replace(train_steps=2, epochs=2, eval_every=5))
    check_config(TINY.replace(train_size=0, train_per_class=10))


def test_more_per_class_than_exist_fails_in_preflight_naming_the_limit():
    raw = data.synthetic_cifar()  # 2,400 training images, 240 per class
    left = 240 - 10  # after a stratified hold-out of 100 (10 per class)
    cfg = TINY.replace(train_size=0, train_per_class=left + 1)
    fix = rf"train_per_class={left + 1} is larger than the {left} images of class .* "
    fix += rf"left after the validation hold-out of 100; use train_per_class <= {left}"
    with pytest.raises(ValueError, match=fix):
        train.preflight(cfg)
    with pytest.raises(ValueError, match=fix):
        data.make_splits(raw, val_size=100, train_size=0, test_size=0, data_seed=0,
                         device=torch.device("cpu"), train_per_class=left + 1)  # fmt: skip
    train.preflight(cfg.replace(train_per_class=left))  # exactly what is left is fine


def test_cli_refuses_a_bad_budget_before_training(capsys):
    argv = ["--dataset", "synthetic", "--backbone", "test_resnet", "--pretrained", "none",
            "--device", "cpu", "--eval-every", "0", "--no-progress"]  # fmt: skip
    assert run_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "eval_every=0 is invalid" in err and "Traceback" not in err


# --- data_seed follows seed -------------------------------------------------------------------


def test_data_seed_follows_seed_unless_fixed_and_run_id_is_pure():
    assert RunConfig(seed=3).data_seed == 3 and isinstance(RunConfig(seed=3).data_seed, int)
    assert RunConfig().data_seed == 0
    assert RunConfig(seed=3, data_seed=0).data_seed == 0  # fixed stays fixed
    assert from_dict({"seed": 2}).data_seed == 2  # a sweep cell without data_seed follows
    assert from_dict({"seed": 2, "data_seed": 7}).data_seed == 7
    # run_id hashes the number drawn with: following seed 3 is the same cell as fixing 3 ...
    assert RunConfig(seed=3).run_id == RunConfig(seed=3, data_seed=3).run_id
    # ... and not the same cell as seed 3 on subset 0
    assert RunConfig(seed=3).run_id != RunConfig(seed=3, data_seed=0).run_id
    assert RunConfig(seed=0).run_id == RunConfig(seed=0, data_seed=0).run_id
    with pytest.raises(ValueError, match=r"data_seed=-1 is invalid"):  # no numeric sentinel
        check_config(RunConfig(data_seed=-1))


def test_following_seed_draws_another_subset_per_seed():
    rows = {s: train.train_cell(TINY.replace(seed=s, data_seed=s, epochs=1), progress=False).row
            for s in (1, 2)}  # fmt: skip
    assert rows[1]["data_seed"] == 1 and rows[2]["data_seed"] == 2
    raw = data.synthetic_cifar()

    def train_set(seed: int) -> torch.Tensor:
        cfg = RunConfig(seed=seed, train_size=0, train_per_class=10, val_size=100)
        splits = data.make_splits(raw, val_size=100, train_size=0, test_size=0,
                                  data_seed=cfg.data_seed, device=torch.device("cpu"),
                                  train_per_class=cfg.train_per_class)  # fmt: skip
        return splits.train_x

    assert not torch.equal(train_set(1), train_set(2))
    assert torch.equal(train_set(1), train_set(1))


# --- tiny data: exactly k per class -----------------------------------------------------------


@pytest.mark.parametrize("per_class", [1, 10, 23])
def test_train_per_class_takes_exactly_k_of_every_class(per_class):
    raw = data.synthetic_cifar()
    split = {}
    for seed in (0, 1):
        split[seed] = data.make_splits(raw, val_size=100, train_size=0, test_size=0,
                                       data_seed=seed, device=torch.device("cpu"),
                                       train_per_class=per_class)  # fmt: skip
        counts = torch.bincount(split[seed].train_y, minlength=10)
        assert counts.tolist() == [per_class] * 10
        assert torch.bincount(split[seed].val_y, minlength=10).tolist() == [10] * 10
    assert not torch.equal(split[0].train_x, split[1].train_x)  # another data_seed, another set


def test_smaller_subsets_are_nested_in_larger_ones_for_one_data_seed():
    raw = data.synthetic_cifar()

    def train_images(per_class: int) -> set[bytes]:
        splits = data.make_splits(raw, val_size=100, train_size=0, test_size=0, data_seed=4,
                                  device=torch.device("cpu"), train_per_class=per_class)  # fmt: skip
        return {bytes(image.numpy()) for image in splits.train_x}

    assert train_images(10) < train_images(50)


def test_train_per_class_cell_records_what_it_drew():
    cfg = TINY.replace(train_size=0, train_per_class=5, epochs=1)
    row = train.train_cell(cfg, progress=False).row
    assert row["status"] == "ok", row["error"]
    assert row["train_size"] == 50 and row["train_per_class"] == 5


# --- the step budget --------------------------------------------------------------------------


def test_step_budget_is_the_same_for_tiny_and_large_training_sets():
    cfg = TINY.replace(train_steps=60, epochs=4, warmup_epochs=0.5)
    tiny, large = train.StepPlan.for_cell(cfg, 50), train.StepPlan.for_cell(cfg, 2000)
    for plan in (tiny, large):
        assert plan.total_steps == 60 and plan.epoch_ends == (15, 30, 45, 60)
        assert plan.warmup_steps == round(0.5 * 60 / 4)  # warmup: half an epoch of the budget
        assert plan.eval_epochs == (1, 2, 3, 4)
    assert (tiny.per_epoch, large.per_epoch) == (1, 62)  # passes differ: 60 vs ~1
    # without a budget, epochs are passes, as before
    plain = train.StepPlan.for_cell(TINY.replace(epochs=3), 160)
    assert plain.total_steps == 15 and plain.epoch_ends == (5, 10, 15)
    assert plain.warmup_steps == round(TINY.warmup_epochs * 5)


def test_step_budget_cell_runs_exactly_that_many_steps_over_several_passes():
    steps_seen = []
    cfg = TINY.replace(train_size=0, train_per_class=5, batch_size=25, train_steps=9, epochs=3)

    class Count(train.CellProgress):
        def step(self, epoch, step, steps_per_epoch, loss):
            steps_seen.append((epoch, step, steps_per_epoch))

    result = train.train_cell(cfg, progress=Count())
    row = result.row
    assert row["status"] == "ok", row["error"]
    assert row["steps_run"] == 9 and row["passes"] == pytest.approx(9 * 25 / 50)
    assert [e["epoch"] for e in result.epochs] == [1, 2, 3]
    assert [s[2] for s in steps_seen] == [3] * 9  # 3 steps per budget epoch
    assert result.epochs[-1]["lr"] < 0.2 * cfg.lr  # cosine decayed over the budget


def test_each_pass_of_a_step_budget_visits_every_image_once(monkeypatch):
    cfg = TINY.replace(train_size=0, train_per_class=4, batch_size=10, train_steps=12, epochs=2)
    seen: list[torch.Tensor] = []
    original = train.train_step

    def spy(cell, step, batch, timed):
        seen.append(batch.clone())
        return original(cell, step, batch, timed)

    monkeypatch.setattr(train, "train_step", spy)
    assert train.train_cell(cfg, progress=False).row["status"] == "ok"
    assert len(seen) == 12  # 40 images, batch 10: 4 steps per pass, 3 passes
    for start in range(0, 12, 4):
        assert sorted(torch.cat(seen[start : start + 4]).tolist()) == list(range(40))


# --- evaluation cadence and the convergence record --------------------------------------------


@pytest.mark.parametrize(
    ("epochs", "every", "expected"),
    [(3, 1, [1, 2, 3]), (3, 3, [2, 3]), (10, 4, [4, 8, 10]), (10, 20, [8, 10]), (1, 5, [1]),
     (6, 5, [4, 5, 6]), (5, 2, [2, 4, 5])],
)  # fmt: skip
def test_evaluation_epochs_every_k_plus_the_80_percent_point_and_always_the_last(
    epochs, every, expected
):
    assert evaluation_epochs(epochs, every) == expected
    assert epochs in evaluation_epochs(epochs, every)
    at_or_before_80 = max(e for e in range(epochs + 1) if 5 * e <= 4 * epochs)
    assert gain_epoch(epochs) == at_or_before_80
    assert at_or_before_80 == 0 or at_or_before_80 in expected


def test_convergence_record_of_hand_built_val_curves():
    rising = {1: 0.50, 2: 0.60, 3: 0.70, 4: 0.78, 5: 0.80}
    assert train.convergence(rising, 4) == (pytest.approx(0.02), 0)
    flat = {2: 0.70, 4: 0.797, 5: 0.80}
    assert train.convergence(flat, 4) == (pytest.approx(0.003), 1)
    falling = {4: 0.81, 5: 0.80}
    assert train.convergence(falling, 4) == (pytest.approx(-0.01), 1)
    at_threshold = {4: 0.25, 5: 0.25 + train.CONVERGED_GAIN}
    assert train.convergence(at_threshold, 4)[1] == 0  # "below" the threshold, strictly
    assert train.convergence({1: 0.5}, 0) == (None, None)  # one epoch: nothing to compare
    assert train.convergence({1: 0.5, 3: 0.9}, 2) == (None, None)  # not evaluated: no guess


def test_eval_every_evaluates_less_but_trains_the_same_model():
    every = train.train_cell(TINY.replace(epochs=5), progress=False)
    sparse = train.train_cell(TINY.replace(epochs=5, eval_every=3), progress=False)
    assert [e["epoch"] for e in every.epochs] == [1, 2, 3, 4, 5]
    assert [e["epoch"] for e in sparse.epochs] == [3, 4, 5]  # 3, the 80% point 4, the last 5
    for name in ("train_acc", "val_acc", "test_acc", "test_loss", "test_ece", "flip_rate"):
        assert every.row[name] == sparse.row[name], name  # evaluation never changes training
    val = {e["epoch"]: e["val_acc"] for e in every.epochs}
    assert every.row["val_gain_last20"] == pytest.approx(val[5] - val[4])
    assert sparse.row["val_gain_last20"] == every.row["val_gain_last20"]
    assert every.row["converged"] == int(every.row["val_gain_last20"] < train.CONVERGED_GAIN)
    # the mean training loss since the last row: epoch 3's row covers epochs 1-3
    assert sparse.epochs[-1]["train_loss_aug"] == pytest.approx(every.epochs[-1]["train_loss_aug"])


def test_one_epoch_cell_leaves_the_convergence_record_empty():
    row = train.train_cell(TINY.replace(epochs=1), progress=False).row
    assert row["status"] == "ok" and row["val_gain_last20"] is None and row["converged"] is None


# --- timings ----------------------------------------------------------------------------------


def test_timings_are_positive_and_sum_to_at_most_the_wall_time():
    row = train.train_cell(TINY.replace(epochs=3, eval_every=2), progress=False).row
    assert row["status"] == "ok", row["error"]
    parts = [row["train_s"], row["eval_s"], row["robustness_s"]]
    assert all(part > 0 and math.isfinite(part) for part in parts)
    assert sum(parts) <= row["wall_s"]
    assert row["steps_run"] == 15 and row["passes"] == pytest.approx(3.0)


# --- committed results keep their cells -------------------------------------------------------


def test_new_fields_at_their_old_behaviour_keep_run_ids_and_committed_cells():
    assert RunConfig().run_id == "7ee1ae1bd1b4"  # the id before issue 13's fields existed
    assert RunConfig(seed=2).run_id == "e03b0a4e3eca"  # = seed 2 with data_seed 2 before
    for changes in ({"train_steps": 300}, {"eval_every": 2}, {"train_per_class": 10}):
        assert RunConfig(**changes).run_id != RunConfig().run_id, changes
    import csv
    from pathlib import Path

    from bench.sweep import load_sweep

    root = Path(__file__).resolve().parents[2]
    runs = root / "results" / "gpu-subset" / "runs.csv"
    if not runs.exists():
        pytest.skip(f"{runs} is not in this checkout")
    with open(runs, newline="") as handle:
        committed = {row["run_id"] for row in csv.DictReader(handle)}
    cells = load_sweep(root / "sweeps" / "gpu-subset.toml").cells
    # staged cells changed meaning twice (BatchNorm statistics kept: bn "auto" -> "frozen"; the
    # backbone's re-warmup at the switch), so they get new ids, even with the old bn asked for;
    # every other cell is a committed one
    old = [cfg for cfg in cells if cfg.protocol != "staged"]
    staged = [cfg for cfg in cells if cfg.protocol == "staged"]
    assert len(staged) == 15 and len(old) == 30
    assert {cfg.run_id for cfg in old} <= committed  # data_seed = 0 pinned in the file
    assert not {cfg.replace(bn=b).run_id for cfg in staged for b in BN_MODES} & committed
    unpinned = {cfg.replace(data_seed=cfg.seed).run_id for cfg in old}
    assert not unpinned <= committed  # without the pin, seeds 1 and 2 would be new cells
