"""`regbench run`: one cell from the command line, and errors that name the fix."""

from __future__ import annotations

import csv
import dataclasses
import errno
import re
from pathlib import Path

import pytest

from bench import cli
from bench.cli import run as run_cli
from bench.config import RunConfig, specs

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
    # provenance: the data read (synthetic: no files to fingerprint), no sweep file
    assert rows[0]["data_source"] == "synthetic" and rows[0]["data_fingerprint"] == ""
    assert rows[0]["sweep_file_sha256"] == ""
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


def test_library_modules_do_not_print():
    repo = Path(__file__).resolve().parents[2]
    for path in [*repo.glob("bench/**/*.py"), *repo.glob("regularizers/*.py")]:
        if path.parent.name != "cli":
            assert not re.search(r"(^|[^.\w])print\(", path.read_text()), path


def test_help_shows_every_default_and_every_config_field_has_a_flag():
    parser = run_cli.build_parser()
    formatter = parser._get_formatter()
    flags = {}
    for action in parser._actions:
        if action.dest == "help":
            continue
        flags[action.dest] = action
        assert "(default:" in formatter._get_help_string(action), action.dest
    for name, (_, spec) in specs(RunConfig).items():
        if spec.flag:  # not: regularizer_params (--reg-param / --schedule), set by sweeps
            assert name in flags, f"RunConfig.{name} has no flag"
            assert f"--{name.replace('_', '-')}" in flags[name].option_strings
            assert flags[name].help == spec.help.replace("%", "%%")  # the declared help
        else:
            assert name not in flags
    help_text = parser.format_help()
    for flag in ("--warmup-epochs", "--momentum", "--robustness-size", "--train-eval-size"):
        assert flag in help_text


def test_every_config_field_can_be_set_from_the_command_line():
    defaults = RunConfig()
    argv, expected = [], {}
    for field in dataclasses.fields(RunConfig):
        flag, default = f"--{field.name.replace('_', '-')}", getattr(defaults, field.name)
        spec = specs(RunConfig)[field.name][1]
        if not spec.flag:
            continue
        if field.type == "bool":
            argv.append(flag if not default else f"--no-{flag[2:]}")
            expected[field.name] = not default
            continue
        choices = spec.choices
        if choices:
            value = [c for c in choices if c != default][0]
        else:
            value = {"int": 3, "float": 0.25, "str": "x"}[field.type]
            value = value if field.type == "str" else default + value
        argv += [flag, str(value)]
        expected[field.name] = value
    cfg = run_cli.config_from_args(run_cli.build_parser().parse_args(argv))
    for name, value in expected.items():
        assert getattr(cfg, name) == value, name
    # Unchanged behaviour: the sweep name defaults to the results folder's name.
    plain = run_cli.config_from_args(run_cli.build_parser().parse_args(["--results-dir", "r/x"]))
    assert plain.sweep == "x" and plain.warmup_epochs == defaults.warmup_epochs


@pytest.fixture(scope="module")
def trained_cell():
    """One real synthetic cell, trained once and handed to the tests below."""
    from bench import train

    args = run_cli.build_parser().parse_args(SYNTHETIC[1:])
    result = train.train_cell(run_cli.config_from_args(args), progress=False, keep_model=True)
    assert result.row["status"] == "ok"
    return result


@pytest.fixture
def cached_cell(trained_cell, monkeypatch):
    from bench import train

    monkeypatch.setattr(train, "train_cell", lambda cfg, **kwargs: trained_cell)
    return trained_cell


def test_save_model_creates_missing_folders(cached_cell, tmp_path, capsys):
    model = tmp_path / "models" / "deep" / "lite0"
    argv = [*SYNTHETIC, "--results-dir", str(tmp_path / "r"), "--save-model", str(model)]
    assert cli.main(argv) == 0
    assert model.with_suffix(".json").is_file() and model.with_suffix(".safetensors").is_file()
    assert f"saved model: {model}.safetensors" in capsys.readouterr().out


def test_save_model_under_a_file_fails_before_training(tmp_path, capsys, monkeypatch):
    from bench import train

    monkeypatch.setattr(train, "train_cell", lambda *a, **k: pytest.fail("trained"))
    (tmp_path / "afile").write_text("x")
    argv = [*SYNTHETIC, "--results-dir", str(tmp_path / "r"), "--save-model",
            str(tmp_path / "afile" / "m")]  # fmt: skip
    assert cli.main(argv) == 2
    assert "afile is a file, not a folder" in capsys.readouterr().err


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "runs.csv")


def test_full_disk_while_recording_keeps_the_saved_model_and_says_so(
    cached_cell, tmp_path, capsys, monkeypatch
):
    from bench.results import ResultsDir

    monkeypatch.setattr(ResultsDir, "write", disk_full)
    model = tmp_path / "m"
    argv = [*SYNTHETIC, "--results-dir", str(tmp_path / "r"), "--save-model", str(model)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "could not record cell" in err and "the disk is full" in err
    assert f"its model is saved in {model}.safetensors" in err
    assert model.with_suffix(".safetensors").is_file()  # the model survived


def test_full_disk_while_saving_the_model_records_no_row(
    cached_cell, tmp_path, capsys, monkeypatch
):
    from bench import model_io

    monkeypatch.setattr(model_io, "save_model", disk_full)
    argv = [*SYNTHETIC, "--results-dir", str(tmp_path / "r"), "--save-model", str(tmp_path / "m")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "the disk is full" in err
    assert "its row was not recorded either" in err
    runs = tmp_path / "r" / "runs.csv"
    assert not runs.exists() or cached_cell.row["run_id"] not in runs.read_text()


def test_full_disk_without_save_model_is_one_named_error(
    cached_cell, tmp_path, capsys, monkeypatch
):
    from bench.results import ResultsDir

    monkeypatch.setattr(ResultsDir, "write", disk_full)
    assert cli.main([*SYNTHETIC, "--results-dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("regbench run: error: could not record cell ")
    assert len(err.splitlines()) == 1 and "free space and rerun" in err


def test_data_seed_follows_seed_unless_given() -> None:
    def config(*argv: str) -> RunConfig:
        return run_cli.config_from_args(run_cli.build_parser().parse_args(list(argv)))

    assert config("--seed", "3").data_seed == 3  # another seed draws another subset
    assert config("--seed", "3", "--data-seed", "0").data_seed == 0  # unless fixed
    assert config().data_seed == 0


def test_a_recorded_cell_is_refused_before_training_and_nothing_is_written(
    cached_cell, tmp_path, capsys, monkeypatch
):
    from bench import train

    results = tmp_path / "r"
    assert cli.main([*SYNTHETIC, "--results-dir", str(results)]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in results.iterdir() if p.is_file()}
    monkeypatch.setattr(train, "train_cell", lambda *a, **k: pytest.fail("trained"))
    model = tmp_path / "m"
    argv = [*SYNTHETIC, "--results-dir", str(results), "--save-model", str(model)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "already recorded as ok" in err
    assert "--results-dir" in err  # the fix is named
    assert (
        not model.with_suffix(".safetensors").exists() and not model.with_suffix(".json").exists()
    )
    assert {p.name: p.read_bytes() for p in results.iterdir() if p.is_file()} == before


def test_a_different_cell_or_a_failed_one_is_not_refused(cached_cell, tmp_path, capsys):
    import csv as csv_module

    results = tmp_path / "r"
    assert cli.main([*SYNTHETIC, "--results-dir", str(results)]) == 0
    run_id = run_cli.config_from_args(
        run_cli.build_parser().parse_args([*SYNTHETIC[1:], "--results-dir", str(results)])
    ).run_id
    with open(results / "runs.csv", newline="") as handle:
        rows = list(csv_module.DictReader(handle))
    rows[0]["status"] = "failed"
    with open(results / "runs.csv", "w", newline="") as handle:
        writer = csv_module.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert rows[0]["run_id"] == run_id
    run_cli.refuse_recorded(str(results), run_id)  # failed: retrained, not refused
    rows[0]["status"] = "ok"
    with open(results / "runs.csv", "w", newline="") as handle:
        writer = csv_module.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match="already recorded as ok"):
        run_cli.refuse_recorded(str(results), run_id)
    run_cli.refuse_recorded(str(results), "0123456789ab")  # another cell: not refused
    run_cli.refuse_recorded(str(tmp_path / "absent"), run_id)  # no folder: nothing recorded
    assert not (tmp_path / "absent").exists()
