"""bench.cost: the cost model of a cell and a sweep's status (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cost, robustness
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
    # what `sweep status` prints as "finished cells: ... (2.00x the estimate)"
    assert status.measured_s == pytest.approx(2 * sum(est[:2]))
    assert status.predicted_s == pytest.approx(sum(est[:2]))
    # a row without wall_s counts in neither sum, and no finished cell means no comparison
    rows[0]["wall_s"] = ""
    partial = cost.sweep_status(sweep, rows, "cpu")
    assert partial.measured_s == pytest.approx(2 * est[1]) and partial.predicted_s == est[1]
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
    assert 2 + len(robustness.CORRUPTIONS) == cost.ROBUSTNESS_PASSES  # what a cell evaluates
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
