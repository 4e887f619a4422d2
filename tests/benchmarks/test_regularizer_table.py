"""The regularizer cost table's code runs end to end on the CPU (tiny model, tiny batch), so a
lent GPU's minutes are not lost to a crash in the in-step columns it adds there."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import regularizer_table as rt  # noqa: E402

SMALL = rt.StepSetup(model="test_resnet", size=32, batch=8)


def test_in_step_percent_gives_a_finite_share_per_impl():
    impls = [i for i in rt.IMPLS if i.name in ("ours cutmix elem", "timm RandomErasing")]
    percent = rt.in_step_percent(impls, rt.torch.device("cpu"), SMALL, rounds=2, steps=2)
    assert set(percent) == {"ours cutmix elem", "timm RandomErasing"}
    assert all(math.isfinite(value) and value > -100 for value in percent.values())


def test_table_has_the_step_columns(monkeypatch):
    names = ["ours mixup batch", "ours mixup batch (default call)", "timm Mixup mixup batch"]
    monkeypatch.setattr(rt, "IMPLS", [i for i in rt.IMPLS if i.name in names])
    monkeypatch.setattr(rt, "SIZES", (32,))
    monkeypatch.setattr(rt, "BATCH", 8)
    text = rt.table(rt.torch.device("cpu"), repeats=2, warmup=1, train_repeats=2, setup=SMALL)
    header, rule, *rows = text.split("\n\n", 1)[1].splitlines()
    assert "isolated call" in header and header.endswith("% in step |")
    assert [row.split(" | ")[0] for row in rows] == [f"| {name}" for name in names]
    assert all(row.count("|") == header.count("|") for row in rows)
    assert rows[0].split(" | ")[2] != ""  # the ratio to timm's batch MixUp is filled in


def test_targets_table_has_a_row_per_setup_and_impl(monkeypatch):
    impls = [i for i in rt.IMPLS if i.name in ("ours none", "ours cutmix batch")]
    monkeypatch.setattr(rt, "target_impls", lambda every: impls)
    setups = [rt.StepSetup("test_resnet", 32, 8, p) for p in ("frozen", "unfrozen")]
    text = rt.targets_table(rt.torch.device("cpu"), setups, rounds=2, steps=2)
    header, rule, *rows = text.split("\n\n", 1)[1].splitlines()
    assert header.startswith("| step | regularizer | ops B=64 | ops B=512 |")
    assert len(rows) == 4 and all(row.count("|") == header.count("|") for row in rows)
    assert [" frozen |" in row for row in rows] == [True, True, False, False]
    assert all(row.endswith((" met |", " MISSED |")) for row in rows)


def test_frozen_step_trains_the_classifier_only():
    step = rt.RealStep(rt.torch.device("cpu"), rt.StepSetup("test_resnet", 32, 4, "frozen"))
    head = step.model.get_classifier()
    before = {name: p.clone() for name, p in step.model.named_parameters()}
    step()
    head_ids = {id(p) for p in head.parameters()}
    head_names = {name for name, p in step.model.named_parameters() if id(p) in head_ids}
    for name, param in step.model.named_parameters():
        assert rt.torch.equal(param, before[name]) == (name not in head_names), name


def test_the_benchmark_times_the_loops_own_step_and_its_timer(monkeypatch):
    """No copy of the step: each RealStep call is one bench.train.train_step, timed by the
    step's own regularizer timer (the loop's) when a call sits in its regularizer slot."""
    from bench import train

    calls = []
    real = train.train_step

    def spy(cell, step, batch, timed=False):
        loss, timer = real(cell, step, batch, timed)
        calls.append((step, timed, timer))
        return loss, timer

    monkeypatch.setattr(train, "train_step", spy)
    step = rt.RealStep(rt.torch.device("cpu"), SMALL)
    fn = next(i for i in rt.IMPLS if i.name == "ours cutmix batch").make(rt.torch.device("cpu"))
    assert step() is None
    timer = step(fn)
    assert [(s, t) for s, t, _ in calls] == [(0, False), (1, True)] and calls[1][2] is timer
    assert timer.seconds() > 0
    cost = rt.in_step_costs([rt.IMPLS[0]], rt.torch.device("cpu"), SMALL, rounds=2, steps=2)
    assert len(calls) == 2 + 2 + 2 + 2 * 2 * 2  # warm-up blocks, then 2 rounds of 2 blocks
    assert cost["ours none"].call_ms > 0


def test_loop_ms_is_the_rows_regularizer_time_of_ours_only():
    cpu = rt.torch.device("cpu")
    by_name = {i.name: i for i in rt.IMPLS}
    assert rt.loop_ms(cpu, SMALL, by_name["timm RandomErasing"], 2) is None
    assert rt.loop_ms(cpu, SMALL, by_name["ours mixup batch (default call)"], 2) is None
    loop = rt.loop_ms(cpu, SMALL, by_name["ours cutmix batch"], 3)
    assert len(loop.timed_ms) == 3 and loop.first_ms > 0 and loop.later_ms > 0
    # the row's number is the mean of the very timers the benchmark collected from the step
    assert loop.row_ms == pytest.approx(sum(loop.timed_ms) / 3, abs=1e-4)
    from bench import train

    assert train.train_step.__name__ == "train_step"  # the loop's step is put back


@pytest.mark.parametrize("impl", rt.IMPLS, ids=[i.name for i in rt.IMPLS])
def test_every_impl_runs_and_in_place_ones_change_their_input(impl):
    images, labels = rt.make_batch(6, 16, "cpu")
    before = images.clone()
    fn = impl.make(rt.torch.device("cpu"))
    for _ in range(3):
        fn(images, labels)
    changed = not rt.torch.equal(images, before)
    if impl.name == "ours none" or not impl.inplace:
        assert not changed  # "none" returns its input untouched; the others make a new tensor
    else:
        assert changed  # marked in place: the calls wrote into the input
