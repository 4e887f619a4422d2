"""bench.train: the loop on synthetic data, the protocols, the failure path, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_cell import TINY

from bench import train
from bench.config import RunConfig
from bench.results import ResultsDir
from bench.schema import (
    CALIBRATION_COLUMNS,
    EPOCHS_COLUMNS,
    ROBUSTNESS_COLUMNS,
    RUNS_COLUMNS,
    RUNS_FILE,
    columns,
)


def test_learns_synthetic_data_and_fills_every_schema_column():
    result = train.train_cell(TINY, progress=False)
    row = result.row
    assert row["status"] == "ok", row["error"]
    assert set(row) == set(RUNS_COLUMNS)
    assert row["test_acc"] > 0.5  # chance is 0.1
    assert math.isclose(row["gap"], row["train_acc"] - row["test_acc"])
    for name in ("test_ece", "test_ece_ts", "temperature", "flip_rate", "occlusion_acc",
                 "corruption_acc", "corruption_ece", "train_images_per_s",
                 "regularizer_ms_per_batch", "peak_mem_mb", "wall_s"):  # fmt: skip
        assert row[name] is not None and math.isfinite(row[name]), name
    assert [e["epoch"] for e in result.epochs] == [1, 2]
    assert all(set(e) == set(EPOCHS_COLUMNS) for e in result.epochs)
    assert {c["split"] for c in result.calibration} == {"test", "val"}
    assert all(set(c) == set(CALIBRATION_COLUMNS) for c in result.calibration)
    assert sum(c["count"] for c in result.calibration if c["split"] == "test") == 300
    assert len(result.robustness) >= 5
    assert all(set(r) == set(ROBUSTNESS_COLUMNS) for r in result.robustness)
    assert row["pretrained"] == "none" and row["train_size"] == 640


def test_the_row_is_built_from_the_phases_and_the_writer_takes_it(tmp_path):
    result = train.train_cell(TINY.replace(epochs=1), progress=False)
    assert result.row["status"] == "ok", result.row["error"]
    # a one-epoch cell has no convergence record: declared empty (schema), given as None
    assert result.row["val_gain_last20"] is None and "converged" in result.row
    with ResultsDir(tmp_path).lock() as results:
        results.write(result)
        assert results.finished_ids() == {TINY.replace(epochs=1).run_id}


@pytest.mark.parametrize("phase", ["set_up", "fit_record", "final_metrics", "robustness_metrics"])
def test_a_metric_a_phase_stops_returning_fails_by_name(monkeypatch, tmp_path, phase):
    """Deleting a metric's line from a phase of train.py: the row lacks that metric (nothing
    pre-fills it) and the writer refuses the ok row, naming it."""
    real = getattr(train, phase)
    dropped = []

    def without_one_metric(*args, **kwargs):
        out = real(*args, **kwargs)
        record = out if isinstance(out, dict) else out[1] if phase == "set_up" else out[0]
        name = next(n for n in record if n in columns(RUNS_FILE, kind="metric"))
        dropped.append(name)
        del record[name]
        return out

    monkeypatch.setattr(train, phase, without_one_metric)
    result = train.train_cell(TINY.replace(epochs=1), progress=False)
    (name,) = dropped
    assert result.row["status"] == "ok" and name not in result.row
    with ResultsDir(tmp_path).lock() as results:
        with pytest.raises(ValueError, match=rf"without the declared metric\(s\) \['{name}'\]"):
            results.write(result)
        assert results.finished_ids() == set()


def test_same_seed_same_numbers_on_cpu():
    cfg = TINY.replace(epochs=1, regularizer="cutmix")
    first, second = train.train_cell(cfg, progress=False), train.train_cell(cfg, progress=False)
    for name in ("train_acc", "test_acc", "test_loss", "test_ece", "flip_rate"):
        assert first.row[name] == second.row[name], name


def test_frozen_protocol_changes_only_the_head():
    torch.manual_seed(TINY.seed)
    cfg = TINY.replace(protocol="frozen", epochs=1)
    result = train.train_cell(cfg, progress=False, keep_model=True)
    torch.manual_seed(cfg.seed)  # the same init train_cell started from
    from bench import backbones

    initial, _ = backbones.create_backbone(cfg.backbone, "none", 10)
    trained = result.model.state_dict()
    head = {f"{initial.default_cfg['classifier']}.{s}" for s in ("weight", "bias")}
    for key, tensor in initial.state_dict().items():
        if key in head:
            assert not torch.equal(tensor, trained[key]), f"head {key} did not train"
        else:  # weights and BatchNorm running statistics are bit-identical
            assert torch.equal(tensor, trained[key]), f"backbone {key} changed"


def test_staged_protocol_unfreezes_partway(monkeypatch):
    from bench import backbones

    steps, switches = [], []
    lr_factor, set_trainable = train.lr_factor, backbones.set_backbone_trainable

    def record_step(step, *args):
        steps.append(step)
        return lr_factor(step, *args)

    def record_switch(model, trainable):
        switches.append((trainable, len(steps)))  # steps begun before this one
        return set_trainable(model, trainable)

    monkeypatch.setattr(train, "lr_factor", record_step)
    monkeypatch.setattr(backbones, "set_backbone_trainable", record_switch)
    cfg = TINY.replace(protocol="staged", unfreeze_at=0.5, epochs=2)
    result = train.train_cell(cfg, progress=False)
    assert result.row["status"] == "ok"
    # frozen from the first step, unfrozen once, at the first step of the second half
    assert switches == [(False, 0), (True, len(steps) // 2)]


def test_non_finite_loss_is_a_failed_result_not_a_crash(monkeypatch):
    # A poisoned training step (lr = 1e30, which diverged here, is refused at load since issue 27)
    real_step = train.train_step

    def poisoned(*args):
        loss, timer = real_step(*args)
        return loss * float("inf"), timer

    monkeypatch.setattr(train, "train_step", poisoned)
    cfg = TINY.replace(epochs=2, optimizer="sgd")
    result = train.train_cell(cfg, progress=False)
    assert result.row["status"] == "failed"
    assert result.row["error"].startswith("non-finite loss at epoch 1 step ")
    assert result.row.get("test_acc") is None and result.row["wall_s"] > 0
    assert result.row["pretrained"] == "none" and result.row["amp"] == "off"  # set-up finished


def test_lr_schedule_warms_up_then_decays_to_zero():
    factors = [train.lr_factor(s, 100, 10) for s in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[100] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_preflight_rejects_bad_input_before_training():
    with pytest.raises(ValueError, match="train_size=5000 is larger than"):
        train.preflight(TINY.replace(train_size=5000))
    with pytest.raises(ValueError, match="unknown backbone"):
        train.preflight(TINY.replace(backbone="no_such_net"))
    with pytest.raises(ValueError, match="protocol='sideways' is invalid"):
        train.preflight(TINY.replace(protocol="sideways"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train.preflight(TINY.replace(pretrained="/nonexistent/weights.pth"))


@pytest.mark.slow
def test_real_cifar_frozen_head_beats_chance(cifar_dir):
    """The offline CIFAR-10 copy + offline-pretrained backbone: a short frozen run."""
    cfg = RunConfig(
        sweep="test", data_dir=str(cifar_dir), backbone="tf_efficientnet_lite0",
        pretrained="auto", protocol="frozen", regularizer="none", epochs=2, batch_size=128,
        lr=0.1, image_size=32, train_size=1280, val_size=500, test_size=1000,
        train_eval_size=500, robustness_size=200, device="cpu",
    )  # fmt: skip
    result = train.train_cell(cfg, progress=False)
    assert result.row["status"] == "ok", result.row["error"]
    assert result.row["pretrained"].startswith(("package:", "hub:"))
    assert result.row["test_acc"] > 0.25  # chance is 0.10


def test_val_size_below_one_per_class_is_refused():
    with pytest.raises(ValueError, match="val_size=0 is invalid"):
        train.preflight(TINY.replace(val_size=0))


def test_non_finite_outputs_after_a_finite_loss_fail_the_cell(monkeypatch):
    real = train.predict_logits

    def poisoned(*args, **kwargs):
        logits = real(*args, **kwargs)
        logits[0, 0] = float("nan")
        return logits

    monkeypatch.setattr(train, "predict_logits", poisoned)
    result = train.train_cell(TINY.replace(epochs=1), progress=False)
    assert result.row["status"] == "failed"
    assert result.row["error"] == "non-finite model outputs at epoch 1 (evaluation)"


def test_save_logits_keeps_final_test_logits_and_labels_beside_the_csvs(tmp_path):
    import numpy as np

    from bench.metrics import accuracy
    from bench.results import ResultsDir

    result = train.train_cell(TINY.replace(epochs=1, save_logits=True), progress=False)
    results = ResultsDir(tmp_path)
    with results.lock():
        results.write(result)
    saved = np.load(tmp_path / "logits" / f"{result.row['run_id']}.npz")
    assert saved["logits"].dtype == np.float16 and saved["logits"].shape == (300, 10)
    recomputed = accuracy(
        torch.from_numpy(saved["logits"]).float(), torch.from_numpy(saved["labels"])
    )
    assert recomputed == pytest.approx(result.row["test_acc"], abs=0.01)  # float16 rounding
