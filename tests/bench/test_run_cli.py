"""`regbench run`: one cell from the command line, and errors that name the fix."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from bench import cli

SYNTHETIC = [
    "run", "--dataset", "synthetic", "--backbone", "test_resnet", "--pretrained", "none",
    "--protocol", "unfrozen", "--epochs", "1", "--batch-size", "64", "--train-size", "320",
    "--val-size", "200", "--test-size", "200", "--device", "cpu", "--no-progress",
]  # fmt: skip


def test_run_appends_one_row_and_saves_a_model(tmp_path, capsys):
    results = tmp_path / "results"
    model = tmp_path / "model"
    argv = [*SYNTHETIC, "--regularizer", "mixup", "--reg-param", "alpha=0.4",
            "--reg-param", "mode=elem", "--results-dir", str(results), "--save-model", str(model)]  # fmt: skip
    assert cli.main(argv) == 0
    with open(results / "runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert '"alpha": 0.4' in rows[0]["regularizer_params"]
    assert '"mode": "elem"' in rows[0]["regularizer_params"]
    assert model.with_suffix(".safetensors").exists() and model.with_suffix(".json").exists()
    assert "test_acc=" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backbone", "resnet5O"], "unknown backbone 'resnet5O'"),
        (["--regularizer", "cutmx"], "allowed: none, random_erasing, mixup, cutmix"),
        (["--regularizer", "mixup", "--reg-param", "alfa=1"], "alfa"),
        (["--regularizer", "mixup", "--reg-param", "alpha=-1"], "alpha"),
        (["--reg-param", "oops"], "expected NAME=VALUE"),
        (["--train-size", "100000"], "train_size=100000 is larger than"),
        (["--pretrained", "/no/such/file.pth"], "does not exist"),
    ],
)
def test_bad_options_fail_before_training(tmp_path, capsys, extra, message):
    argv = [*SYNTHETIC, "--results-dir", str(tmp_path / "r"), *extra]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r" / "runs.csv").exists()


def test_missing_data_without_network_says_where_to_put_it(tmp_path, capsys, monkeypatch):
    from bench import data

    monkeypatch.setattr(data, "host_reachable", lambda *args, **kwargs: False)
    argv = [*SYNTHETIC, "--dataset", "cifar10", "--data-dir", str(tmp_path / "empty"),
            "--results-dir", str(tmp_path / "r")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "cifar-10-batches-py" in err and "--data-dir" in err


def test_unknown_subcommand_lists_the_real_ones(capsys):
    assert cli.main(["fly"]) == 2
    assert "regularizers" in capsys.readouterr().err


def test_command_lines_live_in_bench_cli():
    """Library modules neither parse argv nor exit: that is bench/cli/'s job."""
    repo = Path(__file__).resolve().parents[2]
    for path in [*repo.glob("bench/**/*.py"), *repo.glob("regularizers/*.py")]:
        if path.parent.name == "cli":
            continue
        text = path.read_text()
        assert not re.search(
            r"^\s*(import argparse|from argparse)|sys\.argv|sys\.exit", text, re.M
        ), path
