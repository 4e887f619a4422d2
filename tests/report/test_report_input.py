"""Bad input gives exit code 2 and one line naming the problem and the fix, never a traceback."""

from __future__ import annotations

import pandas as pd
import pytest
from report_fixtures import CALIBRATION_COLUMNS, EPOCHS_COLUMNS, RUNS_COLUMNS, make_results

from bench.report import load
from bench.report.build import default_out
from bench.report.cli import main


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("regbench report: error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture()
def results(tmp_path):
    runs = make_results(tmp_path / "results", seeds=(0, 1), protocols=("frozen",))
    return tmp_path / "results", runs


def test_missing_folder(tmp_path, capsys):
    assert_one_line_error(*run_cli(capsys, tmp_path / "nope"), "does not exist", "runs.csv")


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(*run_cli(capsys, tmp_path / "empty"), "no runs.csv")


def test_empty_file(tmp_path, capsys):
    (tmp_path / "runs.csv").write_text("")
    assert_one_line_error(*run_cli(capsys, tmp_path), "empty")


def test_header_only(tmp_path, capsys):
    (tmp_path / "runs.csv").write_text(",".join(RUNS_COLUMNS) + "\n")
    assert_one_line_error(*run_cli(capsys, tmp_path), "no rows")


def test_missing_required_columns_are_named(results, capsys):
    folder, runs = results
    runs.drop(columns=["seed", "test_acc"]).to_csv(folder / "runs.csv", index=False)
    assert_one_line_error(*run_cli(capsys, folder), "seed", "test_acc", "runs.csv")


def test_missing_columns_in_optional_files_are_named(results, capsys):
    folder, _ = results
    epochs = pd.read_csv(folder / "epochs.csv").drop(columns=["epoch"])
    epochs.to_csv(folder / "epochs.csv", index=False)
    assert_one_line_error(*run_cli(capsys, folder), "epochs.csv", "epoch")


def test_mixed_sweeps(results, capsys):
    folder, runs = results
    runs.loc[runs.index[:3], "sweep"] = "other"
    runs.to_csv(folder / "runs.csv", index=False)
    assert_one_line_error(*run_cli(capsys, folder), "mixes 2 sweeps", "'other'")


def test_duplicate_run_id(results, capsys):
    folder, runs = results
    pd.concat([runs, runs.iloc[:1]]).to_csv(folder / "runs.csv", index=False)
    assert_one_line_error(*run_cli(capsys, folder), "more than once")


def test_non_numeric_metric(results, capsys):
    folder, runs = results
    runs["test_acc"] = runs["test_acc"].astype(object)
    runs.loc[runs.index[2], "test_acc"] = "high"
    runs.to_csv(folder / "runs.csv", index=False)
    assert_one_line_error(*run_cli(capsys, folder), "test_acc", "'high'", runs["run_id"].iloc[2])


def test_unknown_status(results, capsys):
    folder, runs = results
    runs.loc[runs.index[0], "status"] = "running"
    runs.to_csv(folder / "runs.csv", index=False)
    assert_one_line_error(*run_cli(capsys, folder), "running", "'ok'")


def test_missing_configuration(results, capsys):
    folder, runs = results
    runs["protocol"] = runs["protocol"].astype(object)
    runs.loc[runs.index[0], "protocol"] = ""
    runs.to_csv(folder / "runs.csv", index=False)
    assert_one_line_error(*run_cli(capsys, folder), "protocol", "empty")


def test_out_is_a_file(results, tmp_path, capsys):
    folder, _ = results
    (tmp_path / "file").write_text("x")
    assert_one_line_error(*run_cli(capsys, folder, "--out", tmp_path / "file"), "is a file")


def test_out_is_the_results_folder(results, capsys):
    folder, _ = results
    assert_one_line_error(*run_cli(capsys, folder, "--out", folder), "results folder")


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["a", "--bogus"]) == 2
    assert main(["--help"]) == 0
    capsys.readouterr()


def test_default_out_is_path_safe():
    assert str(default_out("cpu-quick")) == "reports/cpu-quick"
    assert str(default_out("../../etc")) == "reports/etc"
    assert str(default_out("<b>x</b>")) == "reports/b_x_b"
    assert str(default_out("..")) == "reports/sweep"


def test_the_report_reads_only_columns_the_runner_writes(results):
    """load.py's column lists against the runner's (bench.schema); the fixture writes them all."""
    assert set(load.REQUIRED_RUNS + load.RUN_METRICS + load.RUN_TEXT) <= set(RUNS_COLUMNS)
    assert set(load.EPOCHS_NUMERIC + load.EPOCHS_REQUIRED) <= set(EPOCHS_COLUMNS)
    assert set(load.CALIBRATION_REQUIRED) == set(CALIBRATION_COLUMNS)
    folder, _ = results
    header = (folder / "runs.csv").read_text().splitlines()[0].split(",")
    assert header == [*RUNS_COLUMNS, "unknown_future_column"]


def test_cells_the_report_cannot_tell_apart_are_noted(results):
    folder, runs = results
    twin = runs.iloc[:1].copy()
    twin["run_id"], twin["unfreeze_at"] = "twin", 0.25
    pd.concat([runs, twin]).to_csv(folder / "runs.csv", index=False)
    notes = " ".join(load.load_results(folder).notes)
    assert "2 cells share regularizer, schedule, configuration and seed" in notes


def test_extra_columns_and_runs_csv_path_are_accepted(results):
    folder, runs = results
    runs["something_new"] = "x"
    runs.to_csv(folder / "runs.csv", index=False)
    loaded = load.load_results(folder / "runs.csv")
    assert loaded.sweep == "fixture" and len(loaded.ok) == len(runs)
    assert loaded.varying == []  # test_size, data_seed, ... are not configuration columns


def test_missing_optional_metric_columns_are_listed(results):
    folder, runs = results
    runs.drop(columns=["flip_rate", "gap"]).to_csv(folder / "runs.csv", index=False)
    loaded = load.load_results(folder)
    assert loaded.absent_columns == ["flip_rate"]  # gap is derived from train_acc - test_acc
    ok = loaded.ok
    assert (ok["gap"] - (ok["train_acc"] - ok["test_acc"])).abs().max() < 1e-12
