"""bench.executors: exceptions become failed rows, the Ray executor (a real local Ray instance) and
the one-worker-per-GPU pool (two CPU workers here) give the same results as the sequential local
executor, and --keep-best-model saves the best model per protocol."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench import executors
from bench.results import ResultsDir
from bench.sweep import load_sweep

SMOKE = Path(__file__).resolve().parents[2] / "sweeps" / "smoke.toml"
# Columns that depend on when / where / how fast a cell ran, not on what it computed.
VOLATILE = {
    "wall_s", "train_images_per_s", "eval_images_per_s", "regularizer_ms_per_batch",
    "peak_mem_mb", "started_at", "device", "torch_version", "timm_version", "git_commit",
    "num_gpus_visible", "robustness_s", "images_per_s",
}  # fmt: skip
TABLES = ("runs.csv", "epochs.csv", "calibration.csv", "robustness.csv")


def content(folder: Path) -> dict[str, pd.DataFrame]:
    """Every results file without its volatile columns, rows in a canonical order."""
    out = {}
    for name in TABLES:
        table = pd.read_csv(folder / name, keep_default_na=False)
        table = table.drop(columns=[c for c in table.columns if c in VOLATILE])
        out[name] = table.sort_values(list(table.columns)).reset_index(drop=True)
    return out


def assert_same_content(a: Path, b: Path, run_ids: set[str] | None = None) -> None:
    ours, theirs = content(a), content(b)
    for name in TABLES:
        if run_ids is not None:
            theirs[name] = theirs[name][theirs[name].run_id.isin(run_ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)


def run(runner, folder: Path, cells=None, **options) -> list[str]:
    cells = load_sweep(SMOKE).cells if cells is None else cells
    statuses: list[str] = []
    with ResultsDir(folder).lock() as results:
        runner(cells, results, on_result=lambda c, r: statuses.append(r.row["status"]), **options)
    return statuses


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    """The sequential local executor on the smoke sweep, keeping the best model per protocol."""
    folder = tmp_path_factory.mktemp("local")
    assert run(executors.run_local, folder, progress=False, keep_best_model=True) == ["ok"] * 4
    return folder


def test_exception_becomes_failed_row(monkeypatch) -> None:
    cfg = load_sweep(SMOKE).cells[0]

    def boom(cfg, **kwargs):
        raise MemoryError("cannot allocate\n  4 GiB")

    monkeypatch.setattr("bench.train.train_cell", boom)
    result = executors.run_cell(cfg)
    assert result.row["status"] == "failed" and result.model is None
    assert result.row["error"] == "MemoryError: cannot allocate 4 GiB"
    assert result.row["run_id"] == cfg.run_id and result.row["protocol"] == cfg.protocol
    assert result.row["torch_version"] and result.row["wall_s"] >= 0

    def interrupt(cfg, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("bench.train.train_cell", interrupt)
    with pytest.raises(KeyboardInterrupt):
        executors.run_cell(cfg)


def test_missing_ray_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(executors.ExecutorError, match=r"pip install 'regbench\[ray\]'"):
        executors._import_ray()


def test_ray_executor_matches_local(local_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    # Two CPUs per cell: the same torch thread count as the local run, so the same arithmetic.
    statuses = run(executors.run_ray, tmp_path, cpus_per_cell=2)
    assert statuses == ["ok"] * 4
    assert_same_content(tmp_path, local_run)


def test_worker_pool_matches_local(local_run: Path, tmp_path: Path) -> None:
    # Two workers with CUDA_VISIBLE_DEVICES="" stand in for two GPUs; each gets 2 threads.
    cells = load_sweep(SMOKE).cells[1:3]
    statuses = run(executors.run_local, tmp_path, cells, gpus=["", ""], cpus_per_cell=2)
    assert statuses == ["ok"] * 2
    assert_same_content(tmp_path, local_run, {cfg.run_id for cfg in cells})


def test_keep_best_model(local_run: Path) -> None:
    runs = pd.read_csv(local_run / "runs.csv")
    for protocol in ("frozen", "unfrozen"):
        cells = runs[runs.protocol == protocol]
        meta = json.loads((local_run / "models" / f"best-{protocol}.json").read_text())
        assert meta["run_id"] == cells.loc[cells.val_acc.idxmax(), "run_id"]
        assert (local_run / "models" / f"best-{protocol}.safetensors").exists()
    assert sorted(p.name for p in (local_run / "models").iterdir()) == [
        "best-frozen.json", "best-frozen.safetensors",
        "best-unfrozen.json", "best-unfrozen.safetensors",
    ]  # fmt: skip
