"""bench.executors (the registry; base, local, ray): exceptions become failed rows, the Ray
executor (a real local Ray instance) and the one-worker-per-GPU pool (two CPU workers here) give
the same results as the sequential local executor, --keep-best-model saves the best model per
protocol, consistently under a kill, and the registry checks the options it declares."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import timm
import torch
from measured import measured

from bench import model_io
from bench.config import RunConfig
from bench.executors import base
from bench.executors.local import run_local
from bench.executors.ray import _import_ray, run_ray
from bench.results import ResultsDir
from bench.sweep import load_sweep
from bench.train import CellResult

SMOKE = Path(__file__).resolve().parents[2] / "sweeps" / "smoke.toml"
# Columns that depend on when / where / how fast a cell ran, not on what it computed.
VOLATILE = {
    "wall_s", "train_images_per_s", "eval_images_per_s", "regularizer_ms_per_batch",
    "peak_mem_mb", "started_at", "device", "torch_version", "timm_version", "git_commit",
    "num_gpus_visible", "robustness_s", "images_per_s", "train_s", "eval_s",
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
    assert run(run_local, folder, progress=False, keep_best_model=True) == ["ok"] * 4
    return folder


def test_exception_becomes_failed_row(monkeypatch) -> None:
    cfg = load_sweep(SMOKE).cells[0]

    def boom(cfg, **kwargs):
        raise MemoryError("cannot allocate\n  4 GiB")

    monkeypatch.setattr("bench.train.train_cell", boom)
    result = base.run_cell(cfg)
    assert result.row["status"] == "failed" and result.model is None
    assert result.row["error"] == "MemoryError: cannot allocate 4 GiB"
    assert result.row["run_id"] == cfg.run_id and result.row["protocol"] == cfg.protocol
    assert result.row["torch_version"] and result.row["wall_s"] >= 0

    def interrupt(cfg, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("bench.train.train_cell", interrupt)
    with pytest.raises(KeyboardInterrupt):
        base.run_cell(cfg)


def test_missing_ray_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(base.ExecutorError, match=r"pip install 'regbench\[ray\]'"):
        _import_ray()


def test_ray_executor_matches_local(local_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    # Two CPUs per cell: the same torch thread count as the local run, so the same arithmetic.
    statuses = run(run_ray, tmp_path, cpus_per_cell=2)
    assert statuses == ["ok"] * 4
    assert_same_content(tmp_path, local_run)


def test_worker_pool_matches_local(local_run: Path, tmp_path: Path) -> None:
    # Two workers with CUDA_VISIBLE_DEVICES="" stand in for two GPUs; each gets 2 threads.
    cells = load_sweep(SMOKE).cells[1:3]
    statuses = run(run_local, tmp_path, cells, gpus=["", ""], cpus_per_cell=2)
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


def test_keep_best_model_on_a_finished_sweep_trains_the_best_again(
    local_run: Path, tmp_path: Path, monkeypatch
) -> None:
    import shutil

    from bench.runner import run_sweep

    folder = tmp_path / "finished"
    shutil.copytree(local_run, folder)
    kept = {p: json.loads((folder / "models" / f"best-{p}.json").read_text())["run_id"]
            for p in ("frozen", "unfrozen")}  # fmt: skip
    shutil.rmtree(folder / "models")
    before = (folder / "runs.csv").read_bytes()
    counts = run_sweep(load_sweep(SMOKE), ResultsDir(folder), keep_best_model=True)
    assert counts["ok"] == 0 and counts["skipped"] == 4  # nothing new ran ...
    for protocol, run_id in kept.items():  # ... yet the best cell's model is kept again
        meta = json.loads((folder / "models" / f"best-{protocol}.json").read_text())
        assert meta["run_id"] == run_id
        assert counts["kept_models"][protocol].startswith(f"cell {run_id}")
        assert "trained again now" in counts["kept_models"][protocol]
        assert "this time" not in counts["kept_models"][protocol]  # same val_acc: same machine
    assert (folder / "runs.csv").read_bytes() == before  # the recorded rows are untouched
    # a second time, the models are there: nothing trains
    monkeypatch.setattr("bench.train.train_cell", lambda *a, **k: pytest.fail("trained"))
    again = run_sweep(load_sweep(SMOKE), ResultsDir(folder), keep_best_model=True)
    assert all("kept before" in note for note in again["kept_models"].values())
    # without --keep-best-model nothing of the sort happens
    assert "kept_models" not in run_sweep(load_sweep(SMOKE), ResultsDir(folder))


# ---------------------------------------------------------------------------------------------
# --keep-best-model under a kill: the kept pair is never a mismatched one


class Killed(BaseException):
    """Stands in for SIGKILL: no `except Exception` (or OSError) handler stops it, so only code
    that would also run after a real kill (none) cleans up."""


def finished_cell(lr: float, val_acc: float, seed: int) -> tuple[RunConfig, CellResult]:
    """A smoke-sweep cell (its own run_id via `lr`) finished ok with `val_acc`, carrying an
    untrained model with seeded random weights (different for each seed)."""
    cfg = dataclasses.replace(load_sweep(SMOKE).cells[0], lr=lr)
    torch.manual_seed(seed)
    model = timm.create_model(cfg.backbone, pretrained=False, num_classes=10)
    row = {"run_id": cfg.run_id, "status": "ok", "protocol": cfg.protocol,
           **measured(val_acc=val_acc)}  # fmt: skip
    return cfg, CellResult(row=row, model=model)


def kept_model(folder: Path, protocol: str) -> tuple[str, dict[str, torch.Tensor]]:
    """(run_id in the JSON, weights) of the kept model, as `regbench predict` would load it."""
    model, metadata = model_io.load_model(folder / "models" / f"best-{protocol}")
    return metadata["run_id"], model.state_dict()


@pytest.mark.parametrize(
    ("failure", "moves_done"),
    [("kill", 0), ("kill", 1), ("kill", 2), ("error", 0), ("error", 1), ("error", 2)],
)
def test_keep_best_model_is_never_a_mismatched_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, moves_done: int
) -> None:
    """Replacing the kept model fails after `moves_done` of its two file moves into models/ (a
    kill, or an OSError the sweep survives). Right after, the loader gets the old model, the new
    one, or refuses the pair; once the next sweep takes the folder, it gets a whole one."""
    old_cfg, old = finished_cell(lr=0.05, val_acc=0.5, seed=1)
    new_cfg, new = finished_cell(lr=0.1, val_acc=0.6, seed=2)
    weights = {
        old_cfg.run_id: {k: v.clone() for k, v in old.model.state_dict().items()},
        new_cfg.run_id: {k: v.clone() for k, v in new.model.state_dict().items()},
    }
    models = tmp_path / "models"
    real_replace, real_fsync = os.replace, model_io.fsync_path
    moved: list[str] = []

    def fail() -> None:
        raise Killed() if failure == "kill" else OSError(28, "No space left on device")

    def replace_then_fail(source, target) -> None:
        if Path(target).parent == models:  # the model's moves; runs.csv writes go through
            if len(moved) == moves_done:
                fail()
            moved.append(Path(target).name)
        real_replace(source, target)

    def fsync_then_fail(path: Path) -> None:  # the step after both moves: fsync of models/
        if Path(path) == models and len(moved) == moves_done:
            fail()
        real_fsync(path)

    def sweep() -> None:
        with ResultsDir(tmp_path).lock() as results:
            record = base.Recorder(results, None, keep_best_model=True)
            record(old_cfg, old)
            monkeypatch.setattr(os, "replace", replace_then_fail)
            monkeypatch.setattr(model_io, "fsync_path", fsync_then_fail)
            record(new_cfg, new)

    if failure == "kill":
        with pytest.raises(Killed):
            sweep()
    else:
        with pytest.warns(UserWarning, match="could not keep the model .*No space left"):
            sweep()
    monkeypatch.undo()

    def assert_whole(expected_id: str) -> None:
        run_id, state = kept_model(tmp_path, old_cfg.protocol)
        assert run_id == expected_id
        assert all(torch.equal(value, weights[run_id][key]) for key, value in state.items())

    if moves_done == 1:  # the new JSON beside the old weights
        with pytest.raises(ValueError, match="are not the ones best-frozen.json describes"):
            kept_model(tmp_path, old_cfg.protocol)
    else:
        assert_whole(new_cfg.run_id if moves_done == 2 else old_cfg.run_id)
    if failure == "error" and moves_done == 0:  # nothing changed: the save cleaned up after itself
        assert not list(models.glob(".tmp-*"))
    # An even earlier save killed while writing its weights (its staging folder sorts first).
    junk = models / ".tmp-best-frozen-00000000"
    junk.mkdir()
    (junk / "best-frozen.safetensors").write_bytes(b"half a safetensors fi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ResultsDir(tmp_path).lock():  # the next sweep on this folder
            pass
    completed = [str(w.message) for w in caught if "completed the save" in str(w.message)]
    assert len(completed) == (moves_done == 1)
    assert_whole(new_cfg.run_id if moves_done >= 1 else old_cfg.run_id)
    assert sorted(p.name for p in models.iterdir()) == [
        "best-frozen.json",
        "best-frozen.safetensors",
    ]


@pytest.mark.parametrize("kept_format", ["sha256", "older"])
def test_stale_staging_folders_are_removed_when_a_sweep_starts(
    tmp_path: Path, kept_format: str
) -> None:
    """Staging folders that hold no weights the kept JSON records are never moved in, also beside
    a pair saved before the JSON recorded the weights' sha256 ("older"). Those named as this
    code names them (`.tmp-<stem>-` + mkdtemp's 8 characters) are removed; folders it cannot
    prove it wrote (an empty `.tmp-empty`, the old code's `.tmp-<run_id>`) are left alone."""
    cfg, kept = finished_cell(lr=0.05, val_acc=0.5, seed=1)
    other_cfg, other = finished_cell(lr=0.1, val_acc=0.6, seed=2)
    models = tmp_path / "models"
    _, kept_json = model_io.save_model(kept.model, cfg, kept.row, models / "best-frozen")
    if kept_format == "older":
        metadata = json.loads(kept_json.read_text())
        del metadata["weights_sha256"]
        kept_json.write_text(json.dumps(metadata))
    # A save killed while writing its weights, an empty staging folder, and a whole model staged
    # by the old code (`.tmp-<run_id>`, not the weights the kept JSON records): none may move in.
    half = models / ".tmp-best-frozen-k1ll3d_x"
    half.mkdir()
    (half / "best-frozen.safetensors").write_bytes(b"half a safetensors fi")
    (models / ".tmp-empty").mkdir()
    old_staging = models / f".tmp-{other_cfg.run_id}"
    model_io.save_model(other.model, other_cfg, other.row, old_staging / "best-frozen")
    with ResultsDir(tmp_path).lock():
        pass
    assert sorted(p.name for p in models.iterdir()) == sorted(
        [".tmp-empty", f".tmp-{other_cfg.run_id}", "best-frozen.json", "best-frozen.safetensors"]
    )
    run_id, state = kept_model(tmp_path, cfg.protocol)
    reference = kept.model.state_dict()
    assert run_id == cfg.run_id
    assert all(torch.equal(value, reference[key]) for key, value in state.items())


# ---------------------------------------------------------------------------------------------
# The registry: options declared once, checked, and turned into `regbench sweep run` flags


def test_registry_checks_options_against_declarations() -> None:
    from bench.executors import EXECUTORS, check_options

    assert set(EXECUTORS) == {"local", "ray", "slurm"}
    assert EXECUTORS["local"].run is run_local and EXECUTORS["ray"].run is run_ray
    assert check_options("local", {}) == {
        "cpus_per_cell": None,
        "keep_best_model": False,
        "tensorboard": False,
    }
    assert check_options("ray", {"cpus_per_cell": 2, "keep_best_model": False}) == {
        "address": None,
        "cpus_per_cell": 2,
        "tensorboard": False,
    }
    with pytest.raises(
        base.ExecutorError, match="^--keep-best-model works with --executor local only$"
    ):
        check_options("ray", {"keep_best_model": True})
    with pytest.raises(base.ExecutorError, match="^--ray-address works with --executor ray only$"):
        check_options("local", {"address": "auto"})
    with pytest.raises(base.ExecutorError, match="has no option 'gpu'; allowed: cpus_per_cell"):
        check_options("local", {"gpu": 1})
    with pytest.raises(base.ExecutorError, match="--cpus-per-cell: expected int, got '2'"):
        check_options("local", {"cpus_per_cell": "2"})
    with pytest.raises(
        base.ExecutorError, match="unknown executor 'pbs'; allowed: local, ray, slurm"
    ):
        check_options("pbs", {})


def test_sweep_flags_come_from_the_declarations() -> None:
    from bench.cli.sweep import build_parser, executor_options
    from bench.executors import all_options

    options = all_options()
    assert [o.name for o in options].count("cpus_per_cell") == 1  # shared, declared once
    argv = ["run", "s.toml", "--executor", "ray", "--ray-address", "auto", "--cpus-per-cell", "3"]
    args = build_parser().parse_args(argv)
    assert args.executor == "ray"
    assert executor_options(args) == {"address": "auto", "cpus_per_cell": 3}
    args = build_parser().parse_args(["run", "s.toml", "--keep-best-model"])
    assert executor_options(args) == {"keep_best_model": True}
