"""Bad input gives exit code 2 and one line naming the problem and the fix, never a traceback."""

from __future__ import annotations

import pandas as pd
import pytest
from report_fixtures import (
    EXTENSION,
    RUNS_COLUMNS,
    make_results,
)

from bench.cli.report import main
from bench.report import build_report, columns, load, style, tables
from bench.report.build import default_out
from bench.report.verdicts import evaluate_claims


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


def test_cells_the_report_cannot_tell_apart_are_noted(results):
    folder, runs = results
    twin = runs.iloc[:1].copy()  # differs only in columns that are not configuration
    twin["run_id"], twin["robustness_s"], twin["num_gpus_visible"] = "twin", 99.0, 8
    pd.concat([runs, twin]).to_csv(folder / "runs.csv", index=False)
    loaded = load.load_results(folder)
    assert "2 cells share regularizer, schedule, regularizer_params, configuration and seed" in (
        " ".join(loaded.notes)
    )
    assert loaded.varying == []  # robustness_s and num_gpus_visible never split a scope


def test_extra_columns_and_runs_csv_path_are_accepted(results):
    folder, runs = results
    runs["something_new"] = "x"
    runs.to_csv(folder / "runs.csv", index=False)
    loaded = load.load_results(folder / "runs.csv")
    assert loaded.sweep == "fixture" and len(loaded.ok) == len(runs)
    assert loaded.varying == []  # the extension columns are configuration but do not vary here
    assert loaded.config_columns == columns.config_columns() + columns.extension_config()


@pytest.mark.parametrize(
    ("column", "other", "shown"),
    [
        ("unfreeze_at", 0.25, "0.25"),
        ("data_seed", 1, "1"),
        ("test_size", "", "(empty)"),  # an empty field is a value of its own
        ("dataset", "", "(empty)"),
        ("amp", "bf16", "bf16"),  # cells of another precision are other cells
    ],
)
def test_a_varying_extension_column_splits_the_scope(tmp_path, column, other, shown):
    runs = make_results(tmp_path, seeds=(0, 1, 2), protocols=("frozen",))
    copies = runs.copy()
    copies["run_id"] = "copy-" + copies["run_id"]
    copies[column] = other
    copies["test_acc"] = copies["test_acc"] + 0.1  # what pooling would average away
    pd.concat([runs, copies]).to_csv(tmp_path / "runs.csv", index=False)
    loaded = load.load_results(tmp_path)
    assert loaded.varying == [column]
    mine = f"protocol=frozen, {column}={shown}"
    base = f"protocol=frozen, {column}={style.format_value(EXTENSION[column])}"
    assert set(loaded.scopes) == {mine, base}
    assert not [n for n in loaded.notes if "cells share" in n]  # told apart, not averaged
    summary = tables.summary_table(loaded).set_index(["scope", "arm"])
    assert column in summary.columns  # the varying extension column is a column of summary.csv
    for scope, frame in ((mine, copies), (base, runs)):
        cells = frame[frame["regularizer"] == "cutmix"]
        want = cells[cells["schedule"] == "constant"]["test_acc"].mean()
        row = summary.loc[(scope, "cutmix")]
        assert row["test_acc_mean"] == pytest.approx(want, abs=1e-12) and row["n"] == 3
    verdicts = evaluate_claims(loaded)
    gap = verdicts[verdicts["claim_id"] == "cutmix_reduces_gap"]
    assert list(gap["scope"]) == sorted([mine, base], key=loaded.scopes.index)
    assert set(gap["verdict"]) == {"supported"}  # cells with the empty value are found too
    assert (gap["n"] == 3).all()


def test_a_results_folder_without_extension_columns_loads(tmp_path):
    runs = make_results(tmp_path / "results", seeds=(0, 1), protocols=("frozen",),
                        arms=[("none", "constant"), ("cutmix", "constant")])  # fmt: skip
    shared_only = runs.drop(columns=[*EXTENSION, "robustness_s", "num_gpus_visible"])
    shared_only.to_csv(tmp_path / "results" / "runs.csv", index=False)
    loaded = load.load_results(tmp_path / "results")
    assert loaded.config_columns == columns.config_columns() and loaded.varying == []
    assert list(loaded.styles) == ["none", "cutmix"]
    index = build_report(tmp_path / "results", tmp_path / "report")
    assert "same in every cell" in index.read_text()
    verdicts = pd.read_csv(tmp_path / "report" / "claims.csv", keep_default_na=False)
    gap = verdicts[verdicts["claim_id"] == "cutmix_reduces_gap"]
    assert list(gap["scope"]) == ["protocol=frozen"] and list(gap["verdict"]) == ["supported"]


@pytest.mark.parametrize(
    "bad",
    ['{"alpha": 0.2', "alpha=0.2", "{'alpha': 0.2}", "[0.2, 1.0]", "0.2", "null", "[" * 100_000],
)
def test_malformed_regularizer_params_are_an_input_error(results, capsys, bad):
    folder, runs = results
    runs.loc[runs.index[3], "regularizer_params"] = bad
    runs.to_csv(folder / "runs.csv", index=False)
    code, err = run_cli(capsys, folder)
    assert_one_line_error(code, err, "regularizer_params", runs["run_id"].iloc[3], "JSON object")
    assert len(err) < 400  # a long value is shortened


def test_empty_regularizer_params_mean_not_recorded(results):
    folder, runs = results
    runs["regularizer_params"] = ""
    runs.to_csv(folder / "runs.csv", index=False)
    loaded = load.load_results(folder)
    assert set(loaded.ok["arm"]) == {"none", "random_erasing", "mixup", "cutmix",
                                     "cutmix (staged)"}  # fmt: skip


def test_missing_optional_metric_columns_are_listed(results):
    folder, runs = results
    runs.drop(columns=["flip_rate", "gap"]).to_csv(folder / "runs.csv", index=False)
    loaded = load.load_results(folder)
    assert loaded.absent_columns == ["flip_rate"]  # gap is derived from train_acc - test_acc
    ok = loaded.ok
    assert (ok["gap"] - (ok["train_acc"] - ok["test_acc"])).abs().max() < 1e-12
