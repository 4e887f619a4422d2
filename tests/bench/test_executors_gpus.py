"""The local executor's one-worker-per-GPU plan, without GPUs: a simulated device count and
CUDA_VISIBLE_DEVICES, and spawned fake workers (tests/bench/fake_workers.py) that report which
GPU and which process ran each cell."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from fake_workers import fake_worker, ran_on
from sweep_files import SMOKE

from bench import device as devices
from bench.arms import Scope
from bench.executors import local
from bench.results import ResultsDir
from bench.runner import cells_to_run
from bench.sweep import load_sweep


def cells(count: int, **changes) -> list:
    base = load_sweep(SMOKE).cells[0].replace(**changes)
    return [base.replace(seed=seed) for seed in range(count)]


def run(folder: Path, todo: list, **options) -> dict[str, dict]:
    with ResultsDir(folder).lock() as results:
        local.run_local(todo, results, **options)
    return {row["run_id"]: row for row in ResultsDir(folder).runs()}


@pytest.fixture
def fake_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "_worker", fake_worker)


@pytest.mark.parametrize(
    ("count", "listed", "expected"),
    [(4, None, ["0", "1", "2", "3"]), (2, "3,5", ["3", "5"]), (1, "7, 2", ["7"]), (0, "0,1", [])],
)
def test_visible_gpus(monkeypatch, count: int, listed: str | None, expected: list[str]) -> None:
    monkeypatch.setattr(devices, "cuda_device_count", lambda: count)
    if listed is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
    assert local.visible_gpus() == expected


def test_one_worker_per_device(tmp_path: Path, monkeypatch, fake_workers) -> None:
    # Two simulated GPUs, five cells: every cell runs, in one of two workers, each pinned to its
    # own GPU for its whole life.
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    todo = cells(5, device="auto")
    rows = run(tmp_path, todo)
    assert [rows[c.run_id]["status"] for c in todo] == ["ok"] * 5
    placements = {ran_on(row) for row in rows.values()}
    assert {gpu for gpu, _ in placements} == {"4", "6"}
    workers = {pid for _, pid in placements}
    assert len(workers) == 2 and os.getpid() not in workers
    for pid in workers:  # one GPU per worker
        assert len({gpu for gpu, p in placements if p == pid}) == 1


@pytest.mark.parametrize(("count", "device"), [(1, "auto"), (2, "cpu")])
def test_no_workers_for_one_gpu_or_cpu_cells(
    tmp_path: Path, monkeypatch, fake_workers, count: int, device: str
) -> None:
    # One GPU (or cells pinned to the CPU): the cells run here, one after another.
    monkeypatch.setattr(devices, "cuda_device_count", lambda: count)
    ran = []

    def in_process(cfg, **kwargs):
        ran.append(os.getpid())
        return fake_result(cfg)

    monkeypatch.setattr(local, "run_cell", in_process)
    todo = cells(3, device=device)
    rows = run(tmp_path, todo)
    assert ran == [os.getpid()] * 3 and len(rows) == 3


def fake_result(cfg):
    from measured import measured

    from bench import rows

    row = rows.runs_row(cfg, build_regularizer=False)
    row.update(measured(), status="ok")
    return rows.CellResult(row=row)


def test_a_worker_that_dies(tmp_path: Path, fake_workers) -> None:
    # The worker running the third cell dies: that cell is a failed row naming the GPU, a fresh
    # worker takes the GPU, and every other cell still runs. Rerun with --retry-failed, the cell
    # is requeued and runs.
    marked = tmp_path / "data"
    marked.mkdir()
    (marked / "die").touch()
    todo = cells(5)
    todo[2] = todo[2].replace(data_dir=str(marked))
    folder = tmp_path / "results"
    rows = run(folder, todo, gpus=["0", "1"])
    statuses = [rows[c.run_id]["status"] for c in todo]
    assert statuses == ["ok", "ok", "failed", "ok", "ok"]
    dead = rows[todo[2].run_id]
    assert "worker process on GPU" in dead["error"] and "died (exit code 3)" in dead["error"]
    workers = {ran_on(row) for row in rows.values() if row["status"] == "ok"}
    # the dead worker ran a cell before it died; its replacement is a third process
    assert len({pid for _, pid in workers}) == 3 and {gpu for gpu, _ in workers} == {"0", "1"}

    sweep = dataclasses.replace(
        load_sweep(SMOKE),
        cells=todo,
        labels=[""] * len(todo),
        scopes=[Scope()] * len(todo),
    )
    assert cells_to_run(sweep, list(rows.values()), retry_failed=False) == []
    again = cells_to_run(sweep, list(rows.values()), retry_failed=True)
    assert [c.run_id for c in again] == [todo[2].run_id]
    rows = run(folder, again, gpus=["0", "1"])
    assert [rows[c.run_id]["status"] for c in todo] == ["ok"] * 5
    assert len(rows) == 5  # the failed row was replaced, not added to
