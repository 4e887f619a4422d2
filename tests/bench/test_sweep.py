"""bench.sweep: grid expansion, stable run_ids, every bad-sweep-file error (file + key + allowed
values), the shipped sweeps, and the command line end to end on the smoke sweep: a full run,
resume after SIGKILL, --retry-failed, failed cells, the lock, status and --dry-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench import sweep as sweep_module
from bench.config import RunConfig
from bench.results import ResultsDir
from bench.sweep import SweepError, load_sweep, main

REPO = Path(__file__).resolve().parents[2]
SWEEPS = REPO / "sweeps"
SMOKE = SWEEPS / "smoke.toml"

HEAD = """
name = "t"
[defaults]
dataset = "synthetic"
backbone = "resnet18"
pretrained = "none"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------
# Expansion and ids


def test_grid_expansion_order_and_labels(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + """
[axes]
seed = [0, 1]
protocol = ["frozen", "unfrozen", "staged"]
[[axes.arm]]
regularizer = "none"
[[axes.arm]]
regularizer = "cutmix"
params = { alpha = 0.5, schedule = "staged" }
[[extra]]
regularizer = "mixup"
params = { alpha = 0.2 }
protocol = "scratch"
""",
    )
    sweep = load_sweep(path)
    assert sweep.name == "t" and len(sweep.cells) == 2 * 3 * 2 + 1
    first, second = sweep.cells[0], sweep.cells[1]
    assert (first.seed, first.protocol, first.regularizer) == (0, "frozen", "none")
    assert (second.regularizer, second.regularizer_params) == (
        "cutmix",
        {"alpha": 0.5, "schedule": "staged"},
    )
    assert sweep.cells[6].seed == 1  # the first axis varies slowest
    assert all(cfg.sweep == "t" and cfg.backbone == "resnet18" for cfg in sweep.cells)
    extra = sweep.cells[-1]
    assert (extra.regularizer, extra.protocol, extra.seed) == ("mixup", "scratch", 0)
    assert sweep.labels[1] == "seed=0 protocol=frozen arm=cutmix(alpha=0.5,schedule=staged)"
    assert len({cfg.run_id for cfg in sweep.cells}) == len(sweep.cells)


def test_table_axis_sets_fields_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + """
[axes]
protocol = ["frozen"]
[[axes.regime]]
train_size = 500
epochs = 6
[[axes.regime]]
train_size = 5000
epochs = 2
""",
    )
    cells = load_sweep(path).cells
    assert [(c.train_size, c.epochs) for c in cells] == [(500, 6), (5000, 2)]


def test_run_ids_stable_and_overrides(tmp_path: Path) -> None:
    sweep = load_sweep(SMOKE)
    again = load_sweep(SMOKE, {"data_dir": str(tmp_path), "device": "cpu"})
    assert [c.run_id for c in sweep.cells] == [c.run_id for c in again.cells]
    assert all(c.data_dir == str(tmp_path) for c in again.cells)
    # run_id is the hash of the identity fields: a fixed config has a fixed id
    cfg = RunConfig(dataset="synthetic", backbone="resnet18", seed=3)
    assert cfg.run_id == RunConfig(dataset="synthetic", backbone="resnet18", seed=3).run_id
    assert cfg.run_id != cfg.replace(seed=4).run_id
    assert cfg.run_id == cfg.replace(device="cuda", data_dir="/x", sweep="other").run_id


@pytest.mark.parametrize("name", sorted(path.stem for path in SWEEPS.glob("*.toml")))
def test_shipped_sweeps_are_valid(name: str) -> None:
    sweep = load_sweep(SWEEPS / f"{name}.toml")
    assert sweep.name == name
    if name not in ("smoke", "cpu-quick", "gpu-full"):
        return
    regs = {(c.regularizer, c.regularizer_params.get("schedule", "constant")) for c in sweep.cells}
    if name == "smoke":
        assert len(sweep.cells) >= 4 and {c.dataset for c in sweep.cells} == {"synthetic"}
        return
    assert {r for r, _ in regs} == {"none", "random_erasing", "mixup", "cutmix"}
    assert ("cutmix", "staged") in regs
    assert {c.protocol for c in sweep.cells} == {"frozen", "unfrozen", "staged"}
    assert len({c.seed for c in sweep.cells}) >= 2
    if name == "gpu-full":
        assert {"resnet50", "tf_efficientnet_lite0"} <= {c.backbone for c in sweep.cells}
        assert len({c.seed for c in sweep.cells}) >= 3
        assert {500, 45000} <= {c.train_size for c in sweep.cells}
        assert all(c.image_size == 224 and c.device == "cuda" for c in sweep.cells)


# ---------------------------------------------------------------------------------------------
# Bad sweep files: each error names the file, the key and what is allowed


BAD = {
    "unknown regularizer": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "dropblock"\n',
        r"axes\.arm\[0\].*regularizer='dropblock'.*allowed: .*cutmix",
    ),
    "unknown parameter": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "mixup"\nparams = { alfa = 1.0 }\n',
        r"axes\.arm\[0\].*alfa.*alpha",
    ),
    "bad parameter value": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "mixup"\nparams = { alpha = -1.0 }\n',
        r"axes\.arm\[0\].*alpha",
    ),
    "unknown protocol": (
        '[axes]\nprotocol = ["frozen", "thawed"]\n',
        r"axes\.protocol\[1\]: protocol='thawed' is invalid; allowed: frozen, unfrozen, staged",
    ),
    "unknown backbone": (
        '[axes]\nbackbone = ["resnet18", "resnet5O"]\n',
        r"backbone: unknown timm model 'resnet5O'.*close matches: .*resnet50.*timm\.list_models",
    ),
    "empty axis": ("[axes]\nseed = []\n", r"axes\.seed: is empty"),
    "axis not a list": ("[axes]\nseed = 3\n", r"axes\.seed: must be a list"),
    "duplicate axis value": ("[axes]\nseed = [0, 1, 0]\n", r"axes\.seed\[2\]: duplicate of"),
    "duplicate cells": (
        "[axes]\nseed = [0]\n[[extra]]\nseed = 0\n",
        r"cells: duplicate cells: cell 0 \(seed=0\) and cell 1 \(extra\[0\]",
    ),
    "unknown top-level key": (
        "[axis]\nseed = [0]\n",
        r": axis: unknown top-level key; allowed: name, description, defaults, axes, extra",
    ),
    "unknown defaults key": (
        "[axes]\nseed = [0]\n",
        r"defaults\.learning_rate: unknown key 'learning_rate'.*allowed: .*\blr\b",
    ),
    "unknown axis key": (
        "[axes]\nsed = [0]\n",
        r"axes\.sed: unknown key 'sed' \(did you mean 'seed'",
    ),
    "unknown arm key": (
        '[axes]\nseed = [0]\n[[axes.arm]]\nregularizer = "mixup"\nalpha = 1.0\n',
        r"axes\.arm\[0\]\.alpha: unknown key; allowed: regularizer, params",
    ),
    "arm without regularizer": (
        "[axes]\nseed = [0]\n[[axes.arm]]\nparams = { alpha = 1.0 }\n",
        r"axes\.arm\[0\]: an arm needs `regularizer = NAME`",
    ),
    "unknown extra key": ("[[extra]]\nsead = 1\n", r"extra\[0\]\.sead: unknown key"),
    "wrong type": ('[axes]\nepochs = ["three"]\n', r"axes\.epochs\[0\]: epochs='three' should be"),
    "no cells": ("", r": axes: the sweep has no cells"),
    "two axes set one field": (
        "[axes]\nepochs = [1]\n[[axes.regime]]\nepochs = 2\ntrain_size = 10\n",
        r"axes\.regime: sets 'epochs', which axes\.epochs already sets",
    ),
    "sweep field": ('[axes]\nsweep = ["x"]\n', r"axes\.sweep: set by the sweep's `name`"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_sweep_file(tmp_path: Path, case: str) -> None:
    body, pattern = BAD[case]
    head = HEAD + ("learning_rate = 0.1\n" if case == "unknown defaults key" else "")
    path = write(tmp_path, head + body)
    with pytest.raises(SweepError, match=pattern) as error:
        load_sweep(path)
    assert str(error.value).startswith(f"{path}: ")


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "t"\n[axes]\nseed = [0, 1\n')
    with pytest.raises(SweepError, match=r"s\.toml:3: TOML syntax error: .*\n +seed = \[0, 1"):
        load_sweep(path)
    path = write(tmp_path, 'name = "t"\nseed = = 2\n[axes]\n')
    with pytest.raises(SweepError, match=r"s\.toml:2: TOML syntax error: .*line 2"):
        load_sweep(path)


def test_missing_name_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=r": name: a non-empty string"):
        load_sweep(write(tmp_path, "[axes]\nseed = [0]\n"))
    with pytest.raises(SweepError, match="no such sweep file"):
        load_sweep(tmp_path / "missing.toml")


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
# Cost model and status (no training)


def test_estimate_and_status(tmp_path: Path) -> None:
    sweep = load_sweep(SWEEPS / "cpu-quick.toml")
    est = [sweep_module.estimate_seconds(c, "cpu") for c in sweep.cells]
    assert all(e > 0 for e in est)
    frozen = sweep_module.estimate_seconds(sweep.cells[0].replace(protocol="frozen"), "cpu")
    unfrozen = sweep_module.estimate_seconds(sweep.cells[0].replace(protocol="unfrozen"), "cpu")
    assert unfrozen > frozen
    # Two cells measured at twice the model's estimate: the ETA of the rest doubles.
    rows = [
        {
            "run_id": c.run_id,
            "status": s,
            "wall_s": str(2 * sweep_module.estimate_seconds(c, "cpu")),
        }
        for c, s in zip(sweep.cells[:2], ["ok", "failed"], strict=True)
    ]
    status = sweep_module.sweep_status(sweep, rows, "cpu")
    assert (len(status.done), len(status.failed), len(status.todo)) == (1, 1, len(est) - 2)
    assert status.measured
    assert status.eta_s == pytest.approx(2 * sum(est[2:]))


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
    assert main(["run", str(SMOKE), "--results-dir", str(smoke_run), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(run_id in out for run_id in smoke_ids) and out.count(" done ") == 4


def test_dry_run_lists_cells_and_runs_nothing(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "r"
    assert main(["run", str(SMOKE), "--results-dir", str(folder), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count(" todo ") == 4 and "estimated cost" in out and "arm=cutmix" in out
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
    """A non-finite loss (huge lr) is recorded by train_cell; an exception out of train_cell is
    recorded by the executor; the sweep goes on; --retry-failed reruns only the failed ones."""
    from bench import train

    smoke = SMOKE.read_text()
    sweep_file = write(
        tmp_path,
        smoke[: smoke.index("[axes]")]
        + '[axes]\nprotocol = ["frozen"]\nregularizer = ["none", "mixup"]\n'
        + "[[extra]]\nlr = 1e30\nwarmup_epochs = 0\nepochs = 1\n",
    )
    sweep = load_sweep(sweep_file)
    assert len(sweep.cells) == 3
    exploding = sweep.cells[-1].run_id
    raising = sweep.cells[1].run_id
    real = train.train_cell

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
    from bench import executors, train

    calls = []

    def interrupt_second(cfg, **kwargs):  # a quick (failed) first cell, then Ctrl-C
        calls.append(cfg.run_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return executors.failed_result(cfg, "stand-in", time.time())

    monkeypatch.setattr(train, "train_cell", interrupt_second)
    folder = tmp_path / "r"
    assert main(["run", str(SMOKE), "--results-dir", str(folder), "--no-progress"]) == 130
    assert len(calls) == 2
    assert "interrupted" in capsys.readouterr().err
    assert ResultsDir(folder).finished_ids() == {calls[0]}
    assert not (folder / ".lock").exists()
