"""bench.cost: the cost model of a cell and a sweep's status (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cost, train
from bench.sweep import load_sweep

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"


def test_estimate_and_status(tmp_path: Path) -> None:
    sweep = load_sweep(SWEEPS / "cpu-quick.toml")
    est = [cost.estimate_seconds(c, "cpu") for c in sweep.cells]
    assert all(e > 0 for e in est)
    frozen = cost.estimate_seconds(sweep.cells[0].replace(protocol="frozen"), "cpu")
    unfrozen = cost.estimate_seconds(sweep.cells[0].replace(protocol="unfrozen"), "cpu")
    assert unfrozen > frozen
    # Two cells measured at twice the model's estimate: the ETA of the rest doubles.
    rows = [
        {
            "run_id": c.run_id,
            "status": s,
            "wall_s": str(2 * cost.estimate_seconds(c, "cpu")),
        }
        for c, s in zip(sweep.cells[:2], ["ok", "failed"], strict=True)
    ]
    status = cost.sweep_status(sweep, rows, "cpu")
    assert (len(status.done), len(status.failed), len(status.todo)) == (1, 1, len(est) - 2)
    assert status.measured
    assert status.eta_s == pytest.approx(2 * sum(est[2:]))
    # what `sweep status` prints as "cells finished ok: ... (2.00x the estimate)": the ok
    # cell only (a failed cell stops early), while the ETA above used both
    assert status.measured_s == pytest.approx(2 * est[0])
    assert status.predicted_s == pytest.approx(est[0])
    # a row without wall_s counts in neither sum: no ok cell measured, no comparison
    rows[0]["wall_s"] = ""
    partial = cost.sweep_status(sweep, rows, "cpu")
    assert partial.measured and partial.measured_s == partial.predicted_s == 0
    nothing = cost.sweep_status(sweep, [], "cpu")
    assert not nothing.measured and nothing.measured_s == nothing.predicted_s == 0


def test_cost_model_follows_the_step_budget_and_evaluation_cadence() -> None:
    from bench.config import RunConfig

    cfg = RunConfig(train_size=2000, val_size=1000, test_size=2000, train_eval_size=500,
                    robustness_size=500, epochs=5, batch_size=128, protocol="unfrozen")  # fmt: skip
    parts = cost.cost_parts(cfg)
    assert parts["train"] == 5 * 15 * 128 * 3  # 15 full batches a pass, 3 forward units each
    assert parts["eval"] == 5 * (500 + 1000 + 2000)  # every epoch evaluated
    assert parts["robustness"] == 500 * 7  # flip, occlusion and 5 corruptions of 500 images
    sparse = cost.cost_parts(cfg.replace(eval_every=2))  # epochs 2, 4 (80% point) and 5
    assert sparse["eval"] == 3 * (500 + 1000 + 2000) and sparse["train"] == parts["train"]
    assert cost.estimate_seconds(cfg.replace(eval_every=2), "cpu") < cost.estimate_seconds(
        cfg, "cpu"
    )
    # a step budget costs the same training whatever the training-set size
    tiny = cfg.replace(train_size=0, train_per_class=20, train_steps=300)
    large = cfg.replace(train_size=20000, train_steps=300)
    assert cost.cost_parts(tiny)["train"] == 300 * 128 * 3 == cost.cost_parts(large)["train"]
    assert cost.cost_parts(tiny)["eval"] == 5 * (200 + 1000 + 2000)  # clean-train: all 200


def test_the_cost_model_counts_the_images_a_real_cell_evaluates(monkeypatch) -> None:
    """cost_parts prices a cell's evaluation and robustness work in images; a real (tiny,
    synthetic) cell, counted as it runs, evaluates exactly that many, with a sparse cadence."""
    import tiny_cell

    cfg = tiny_cell.TINY.replace(epochs=3, eval_every=2, robustness_size=60)  # epochs 2 and 3
    seen = {"phase": "eval", "eval": 0, "robustness": 0}
    real_evaluate, real_robustness = train.Cell.evaluate, train.robustness_metrics

    def evaluate(self, images):
        seen[seen["phase"]] += len(images)
        return real_evaluate(self, images)

    def robustness_metrics(cell, fitted, progress=None):
        seen["phase"] = "robustness"
        return real_robustness(cell, fitted, progress)

    monkeypatch.setattr(train.Cell, "evaluate", evaluate)
    monkeypatch.setattr(train, "robustness_metrics", robustness_metrics)
    row = train.train_cell(cfg, progress=False).row
    assert row["status"] == "ok", row["error"]
    parts = cost.cost_parts(cfg)
    assert seen["eval"] == parts["eval"] == 2 * (300 + 400 + 300)
    assert seen["robustness"] == parts["robustness"] == 60 * cost.ROBUSTNESS_PASSES


def test_the_cost_model_prices_a_plateau_cell_by_its_cap(monkeypatch) -> None:
    """Under the plateau rule the validation split is evaluated after every epoch; a real cell
    that runs its whole cap evaluates what cost_parts prices, a cell stopped early less."""
    import tiny_cell

    counted = {"images": 0}
    real_evaluate = train.Cell.evaluate

    def evaluate(self, images):
        counted["images"] += len(images)
        return real_evaluate(self, images)

    monkeypatch.setattr(train.Cell, "evaluate", evaluate)
    cfg = tiny_cell.TINY.replace(epochs=3, eval_every=2, robustness_size=60, stop="plateau",
                                 patience=2, min_gain=1.0)  # fmt: skip
    row = train.train_cell(cfg, progress=False).row
    assert row["status"] == "ok" and row["steps_run"] == 30, row["error"]  # the whole cap
    parts = cost.cost_parts(cfg)
    assert parts["eval"] == 400 + 2 * (300 + 400 + 300)  # epoch 1: validation only
    assert counted["images"] == parts["eval"] + parts["robustness"]
    fixed = cost.cost_parts(cfg.replace(stop="budget"))
    assert fixed["train"] == parts["train"] and fixed["eval"] == parts["eval"] - 400
    passes = cost.cost_parts(cfg.replace(train_passes=2.5, stop="budget"))
    assert passes["train"] == round(2.5 * 10) * 64 * 3  # 640 images, batch 64: 10 steps a pass
