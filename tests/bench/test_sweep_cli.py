"""`regbench sweep` (bench.cli.sweep over bench.runner and the executors): bad files and failed
preflight stop before any cell runs; end to end on the smoke sweep: a full run, resume after
SIGKILL, --retry-failed, failed cells, the lock, status and --dry-run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sweep_files import HEAD, REPO, SMOKE, write

from bench.cli.sweep import main
from bench.results import ResultsDir
from bench.sweep import load_sweep

# ---------------------------------------------------------------------------------------------
# Errors before any cell runs


def test_cli_reports_bad_file_before_running(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, HEAD + '[axes]\nprotocol = ["thawed"]\n')
    assert main(["run", str(path), "--results-dir", str(tmp_path / "r")]) == 2
    assert "protocol='thawed'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_preflight_failure_stops_before_any_cell(tmp_path: Path, capsys, monkeypatch) -> None:
    path = write(tmp_path, HEAD.replace("synthetic", "cifar10") + "[axes]\nseed = [0]\n")
    monkeypatch.setenv("REGBENCH_DATA", str(tmp_path / "no-data-here"))
    ran = []
    monkeypatch.setattr("bench.train.train_cell", lambda *a, **k: ran.append(a))
    assert main(["run", str(path), "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "error" in err
    assert not ran and ResultsDir(tmp_path / "r").finished_ids() == set()


# ---------------------------------------------------------------------------------------------
# End to end on the smoke sweep (real training: a tiny model on synthetic data, seconds)

TABLES = ("runs.csv", "epochs.csv", "calibration.csv", "robustness.csv")


def read_all(folder: Path) -> dict[str, pd.DataFrame]:
    """Every results file, parsed (a truncated or torn file would fail here)."""
    return {name: pd.read_csv(folder / name, keep_default_na=False) for name in TABLES}


def check_consistent(folder: Path, expected_ids: set[str]) -> dict[str, pd.DataFrame]:
    tables = read_all(folder)
    runs = tables["runs.csv"]
    assert set(runs.run_id) == expected_ids
    assert runs.run_id.is_unique
    for name in TABLES[1:]:
        assert set(tables[name].run_id) <= expected_ids, name
    assert not list(folder.glob(".tmp-*")) and not (folder / ".lock").exists()
    return tables


@pytest.fixture(scope="module")
def smoke_ids() -> set[str]:
    return {cfg.run_id for cfg in load_sweep(SMOKE).cells}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, smoke_ids) -> Path:
    """The smoke sweep run once, uninterrupted, in this process."""
    folder = tmp_path_factory.mktemp("smoke") / "results"
    assert main(["run", str(SMOKE), "--results-dir", str(folder), "--no-progress"]) == 0
    return folder


def test_smoke_sweep_runs_then_skips(smoke_run: Path, smoke_ids, capsys) -> None:
    tables = check_consistent(smoke_run, smoke_ids)
    runs = tables["runs.csv"]
    assert (runs.status == "ok").all() and (runs.sweep == "smoke").all()
    assert (
        (runs.error == "").all() and (runs.device != "").all() and (runs.torch_version != "").all()
    )
    assert len(tables["epochs.csv"]) == 2 * len(smoke_ids)
    before = (smoke_run / "runs.csv").read_bytes()
    capsys.readouterr()
    assert main(["run", str(SMOKE), "--results-dir", str(smoke_run), "--no-progress"]) == 0
    assert "0 ok, 0 failed, 4 skipped" in capsys.readouterr().out
    assert (smoke_run / "runs.csv").read_bytes() == before
    assert main(["status", str(SMOKE), "--results-dir", str(smoke_run)]) == 0
    out = capsys.readouterr().out
    assert "4 done, 0 failed, 0 remaining" in out and "measured" in out
    assert re.search(r"cells finished ok: \S+ measured, \S+ by the cost model \(\d+\.\d\dx", out)
    assert main(["run", str(SMOKE), "--results-dir", str(smoke_run), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(run_id in out for run_id in smoke_ids) and out.count(" done ") == 4


def test_dry_run_lists_cells_and_runs_nothing(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "r"
    assert main(["run", str(SMOKE), "--results-dir", str(folder), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count(" todo ") == 4 and "estimated cost" in out and "arm=cutmix" in out
    assert "cells finished ok" not in out  # nothing measured yet: no comparison
    assert not folder.exists()


def test_resume_after_sigkill(tmp_path: Path, smoke_run: Path, smoke_ids) -> None:
    """A real `regbench sweep run` killed with SIGKILL mid-sweep, then resumed."""
    folder = tmp_path / "results"
    script = Path(sys.executable).with_name("regbench")  # the installed console script
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bench.cli"]
    command += ["sweep", "run", str(SMOKE)]
    command += ["--results-dir", str(folder), "--no-progress"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline and process.poll() is None:
        if len(ResultsDir(folder).finished_ids()) >= 1:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the sweep finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = ResultsDir(folder).finished_ids()
    assert 1 <= len(done) < len(smoke_ids)
    assert (folder / ".lock").exists()  # left behind by the killed process
    read_all(folder)  # every file parses after the kill

    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "stale lock" in resumed.stderr
    assert f"{len(smoke_ids) - len(done)} ok, 0 failed, {len(done)} skipped" in resumed.stdout
    tables = check_consistent(folder, smoke_ids)
    # Same content as the uninterrupted run (timing and environment columns aside).
    reference = read_all(smoke_run)
    for name, columns in {
        "runs.csv": ["run_id", "status", "test_acc", "val_loss", "test_ece", "flip_rate"],
        "epochs.csv": ["run_id", "epoch", "train_loss", "val_acc"],
    }.items():
        ours = tables[name][columns].sort_values(columns[:2]).reset_index(drop=True)
        theirs = reference[name][columns].sort_values(columns[:2]).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, theirs)


def test_second_sweep_on_same_folder_refused(tmp_path: Path, capsys) -> None:
    with ResultsDir(tmp_path).lock():
        assert main(["run", str(SMOKE), "--results-dir", str(tmp_path), "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert f"in use by another sweep (process {os.getpid()} on this machine" in err
    assert ResultsDir(tmp_path).finished_ids() == set()


def test_failed_cells_recorded_then_retried(tmp_path: Path, monkeypatch, capsys, smoke_ids):
    """A non-finite loss (a poisoned training step: a huge lr is refused at load since issue
    27) is recorded by train_cell; an exception out of train_cell is recorded by the executor;
    the sweep goes on; --retry-failed reruns only the failed ones."""
    from bench import train

    smoke = SMOKE.read_text()
    sweep_file = write(
        tmp_path,
        smoke[: smoke.index("[axes]")]
        + '[axes]\nprotocol = ["frozen"]\nregularizer = ["none", "mixup"]\n'
        + "[[extra]]\nlr = 10.0\nwarmup_epochs = 0\nepochs = 1\n",
    )
    sweep = load_sweep(sweep_file)
    assert len(sweep.cells) == 3
    exploding = sweep.cells[-1].run_id
    raising = sweep.cells[1].run_id
    real = train.train_cell
    real_step = train.train_step

    def exploding_step(cell, *args):
        loss, timer = real_step(cell, *args)
        return (loss * float("inf") if cell.cfg.run_id == exploding else loss), timer

    monkeypatch.setattr(train, "train_step", exploding_step)

    def flaky(cfg, **kwargs):
        if cfg.run_id == raising:
            raise RuntimeError("disk on fire")
        return real(cfg, **kwargs)

    monkeypatch.setattr(train, "train_cell", flaky)
    folder = tmp_path / "r"
    args = ["run", str(sweep_file), "--results-dir", str(folder), "--no-progress"]
    assert main(args) == 1
    assert "1 ok, 2 failed, 0 skipped" in capsys.readouterr().out
    runs = read_all(folder)["runs.csv"].set_index("run_id")
    assert runs.loc[raising, "error"] == "RuntimeError: disk on fire"
    assert runs.loc[raising, "regularizer"] == sweep.cells[1].regularizer
    assert runs.loc[exploding, "status"] == "failed"
    assert "non-finite" in runs.loc[exploding, "error"]
    assert ResultsDir(folder).failed_ids() == {raising, exploding}

    assert main(args) == 0  # failed cells count as done
    assert "0 ok, 0 failed, 3 skipped" in capsys.readouterr().out
    monkeypatch.setattr(train, "train_cell", real)
    assert main([*args, "--retry-failed"]) == 1  # the exploding cell fails again
    assert "1 ok, 1 failed, 1 skipped" in capsys.readouterr().out
    tables = check_consistent(folder, {c.run_id for c in sweep.cells})
    runs = tables["runs.csv"].set_index("run_id")
    assert runs.loc[raising, "status"] == "ok" and runs.loc[raising, "error"] == ""
    assert (tables["epochs.csv"].run_id == raising).sum() == 2


def test_a_row_the_writer_refuses_is_recorded_as_failed(tmp_path: Path, monkeypatch, capsys):
    """An error while recording a cell (here a row with an unknown column) fails that cell
    with the reason; the sweep goes on."""
    from bench import train

    smoke = SMOKE.read_text()
    sweep_file = write(
        tmp_path,
        smoke[: smoke.index("[axes]")]
        + '[axes]\nprotocol = ["frozen"]\nregularizer = ["none", "mixup"]\n',
    )
    sweep = load_sweep(sweep_file)
    bad = sweep.cells[0].run_id
    real = train.train_cell

    def odd_row(cfg, **kwargs):
        result = real(cfg, **kwargs)
        if cfg.run_id == bad:
            result.row["surprise"] = 1
        return result

    monkeypatch.setattr(train, "train_cell", odd_row)
    folder = tmp_path / "r"
    assert main(["run", str(sweep_file), "--results-dir", str(folder), "--no-progress"]) == 1
    assert "1 ok, 1 failed, 0 skipped" in capsys.readouterr().out
    runs = read_all(folder)["runs.csv"].set_index("run_id")
    assert runs.loc[bad, "status"] == "failed"
    assert runs.loc[bad, "error"].startswith("recording failed: ValueError")


def test_keyboard_interrupt_stops_cleanly(tmp_path: Path, monkeypatch, capsys) -> None:
    from bench import train
    from bench.executors.base import failed_result

    calls = []

    def interrupt_second(cfg, **kwargs):  # a quick (failed) first cell, then Ctrl-C
        calls.append(cfg.run_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return failed_result(cfg, "stand-in", time.time())

    monkeypatch.setattr(train, "train_cell", interrupt_second)
    folder = tmp_path / "r"
    assert main(["run", str(SMOKE), "--results-dir", str(folder), "--no-progress"]) == 130
    assert len(calls) == 2
    assert "interrupted" in capsys.readouterr().err
    assert ResultsDir(folder).finished_ids() == {calls[0]}
    assert not (folder / ".lock").exists()


def test_option_of_another_executor_refused_before_anything_runs(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "r"
    argv = ["run", str(SMOKE), "--results-dir", str(folder), "--executor", "ray"]
    assert main([*argv, "--keep-best-model"]) == 2
    assert capsys.readouterr().err == "error: --keep-best-model works with --executor local only\n"
    assert not folder.exists()


# ---------------------------------------------------------------------------------------------
# --set, --only, [executor] and bad results folders through the command line (nothing trains)


def test_set_and_only_in_dry_run_and_status(tmp_path: Path, capsys) -> None:
    folder = str(tmp_path / "r")
    full = load_sweep(SMOKE)
    changed = load_sweep(SMOKE, settings={"epochs": 1})
    assert main(["run", str(SMOKE), "--results-dir", folder, "--dry-run", "--set", "epochs=1"]) == 0
    out = capsys.readouterr().out
    assert all(c.run_id in out for c in changed.cells) and not any(
        c.run_id in out for c in full.cells
    )
    argv = ["run", str(SMOKE), "--results-dir", folder, "--dry-run", "--only", "arm=none"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    kept = [
        c.run_id for c, label in zip(full.cells, full.labels, strict=True) if "arm=none" in label
    ]
    assert len(kept) == 2 and all(run_id in out for run_id in kept)
    assert sum(c.run_id in out for c in full.cells) == 2
    assert (
        main(
            ["status", str(SMOKE), "--results-dir", folder, "--only", "protocol=frozen", "arm=none"]
        )
        == 0
    )
    assert "1 cells: 0 done, 0 failed, 1 remaining" in capsys.readouterr().out
    assert main(["status", str(SMOKE), "--results-dir", folder, "--set", "epoch=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did you mean 'epochs'" in err and err.count("\n") == 1
    assert main(["run", str(SMOKE), "--results-dir", folder, "--only", "seed=9"]) == 2
    assert "choices: 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_executor_from_file_and_flags(tmp_path: Path) -> None:
    from bench.runner import executor_settings

    text = SMOKE.read_text() + '\n[executor]\nname = "ray"\naddress = "auto"\ncpus_per_cell = 2\n'
    sweep = load_sweep(write(tmp_path, text))
    assert executor_settings(sweep, None, {}) == (
        "ray",
        {"address": "auto", "cpus_per_cell": 2, "tensorboard": False},
    )
    assert executor_settings(sweep, None, {"cpus_per_cell": 4})[1]["cpus_per_cell"] == 4
    # another executor on the command line keeps only the file's options it takes too
    assert executor_settings(sweep, "local", {}) == (
        "local", {"cpus_per_cell": 2, "tensorboard": False, "keep_best_model": False}
    )  # fmt: skip


@pytest.mark.parametrize("verb", [["run"], ["run", "--dry-run"], ["status"]])
def test_bad_results_folder_and_options_stop_before_anything(tmp_path: Path, capsys, verb) -> None:
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "runs.csv").write_text("run_id,status\nabc,ok\nabc,ok\n")
    argv = [*verb[:1], str(SMOKE), "--results-dir", str(folder), *verb[1:]]
    assert main(argv) == 2
    assert (
        capsys.readouterr().err == f"error: {folder / 'runs.csv'}: run_id abc has 2 rows; "
        "repair or move the file away (a results folder holds only what regbench wrote)\n"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["runs.csv"]
    if verb == ["status"]:
        return
    (folder / "runs.csv").unlink()
    assert main([*argv, "--cpus-per-cell", "-1"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: --cpus-per-cell: expected an integer >= 1 and <= "
    )
    assert main([*argv, "--cpus-per-cell", "100000"]) == 2  # issue 27: a segfault, exit 139
    assert f"<= {os.cpu_count()} (this machine's CPUs" in capsys.readouterr().err
    assert not list(folder.iterdir())
