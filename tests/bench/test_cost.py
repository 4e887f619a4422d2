"""bench.cost: the cost model of a cell and a sweep's status (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cost
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
