"""bench.executors.slurm through submitit's local executor (each array task a local process):
two synthetic cells recorded by the driver with their logs, a task that dies becomes a failed
row, the options are checked before anything runs, and a missing submitit names the install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.config import RunConfig
from bench.executors import ExecutorError, check_options
from bench.executors import slurm as slurm_executor
from bench.results import ResultsDir

submitit = pytest.importorskip("submitit")

CELL = RunConfig(
    sweep="slurm-test", dataset="synthetic", backbone="test_resnet", pretrained="none",
    protocol="frozen", regularizer="none", epochs=1, batch_size=32, lr=0.05, image_size=16,
    train_size=64, val_size=32, test_size=32, train_eval_size=32, robustness_size=16,
    device="cpu",
)  # fmt: skip
CELLS = [CELL, CELL.replace(seed=1)]


def record(folder: Path, cells: list[RunConfig], **options) -> list:
    recorded = []
    with ResultsDir(folder).lock() as results:
        slurm_executor.run_slurm(
            cells, results, on_result=lambda cfg, r: recorded.append(r), **options
        )
    return recorded


def test_local_cluster_runs_each_cell_as_a_task_and_records_it_here(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    recorded = record(folder, CELLS, slurm_cluster="local", cpus_per_cell=1)
    assert sorted(r.row["run_id"] for r in recorded) == sorted(c.run_id for c in CELLS)
    assert all(r.row["status"] == "ok" for r in recorded), [r.row["error"] for r in recorded]
    runs = ResultsDir(folder).runs()
    assert sorted(row["run_id"] for row in runs) == sorted(c.run_id for c in CELLS)
    for cfg in CELLS:
        log = (folder / "logs" / f"{cfg.run_id}.log").read_text()
        assert (
            log.rstrip()
            .splitlines()[-1]
            .split("] ", 1)[1]
            .startswith(f"cell {cfg.run_id} finished: ok")
        )
        assert (
            "epoch 1/1 done" in log
            and "robustness 7/7: pixelate" in log
            and "robustness done" in log
        )
    # submitit's files went to <results>/submitit (one folder per job), not elsewhere
    assert any((folder / "submitit").iterdir())
    # the tasks did not write results files themselves: no leftovers, no lock left
    assert not list(folder.glob(".tmp-*")) and not (folder / ".lock").exists()


class DeadJob:
    """A submitit job whose task died: done, and its result raises what submitit raises."""

    job_id = "4242_0"

    def done(self) -> bool:
        return True

    def result(self):
        raise submitit.core.utils.UncompletedJobError(
            "Job 4242_0 (task: 0) with path .../4242_0_result.pkl\nhas not produced any output "
            "(state: NODE_FAIL)"
        )


def test_a_task_that_dies_becomes_a_failed_row_with_a_log(tmp_path: Path, monkeypatch) -> None:
    class FakeExecutor:
        def map_array(self, task, cells):
            return [DeadJob() for _ in cells]

    monkeypatch.setattr(slurm_executor, "make_executor", lambda *a, **k: FakeExecutor())
    monkeypatch.setattr(slurm_executor, "check_slurm_here", lambda cluster: None)  # no srun here
    folder = tmp_path / "results"
    recorded = record(folder, CELLS[:1])
    (row,) = ResultsDir(folder).runs()
    assert row["status"] == "failed"
    assert (
        row["error"]
        == "SLURM task 4242_0 failed: Job 4242_0 (task: 0) with path .../4242_0_result.pkl"
    )
    assert row["log"] == f"logs/{CELL.run_id}.log"
    log = (folder / row["log"]).read_text()
    assert "state: NODE_FAIL" in log and f"cell {CELL.run_id} finished: failed" in log
    assert recorded[0].row["status"] == "failed"


def test_checkpoint_requeues_the_same_cell() -> None:
    task = slurm_executor.SlurmCell(slurm_executor.LiveFiles("/nonexistent"), None)
    delayed = task.checkpoint(CELL)
    assert delayed.function is task and delayed.args == (CELL,)


def test_options_are_checked_before_anything_runs() -> None:
    with pytest.raises(ExecutorError, match="--slurm-cluster: 'mars' is not one of"):
        check_options("slurm", {"slurm_cluster": "mars"})
    with pytest.raises(ExecutorError, match="--slurm-time: expected an integer >= 1"):
        check_options("slurm", {"slurm_time": 0})
    with pytest.raises(ExecutorError, match="--slurm-partition works with --executor slurm"):
        check_options("local", {"slurm_partition": "gpu"})
    options = check_options("slurm", {"slurm_partition": "gpu", "slurm_time": 60})
    assert options["slurm_partition"] == "gpu" and options["slurm_cluster"] is None


def test_missing_submitit_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(ExecutorError, match=r"pip install 'regbench\[slurm\]'"):
        check_options("slurm", {})
