"""`regbench report` on hostile input left over from issue 27: seeds outside what a cell can run
with, protocols regbench never writes (regularizer names stay open: a user may register one), a previous report's manifest that
is not UTF-8, and a PNG encoder failing on a nearly full disk. Each is one line, exit 2 (or, for
the manifest, a report that deletes nothing it does not own)."""

from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import make_results

from bench.cli.report import main
from bench.report import build

SMALL = {
    "arms": [("none", "constant"), ("mixup", "constant")],
    "protocols": ("frozen",),
    "seeds": (0, 1),
}


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def refused(code: int, err: str, *words: str) -> None:
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("regbench report: error: ")
    for word in words:
        assert word in err, (word, err)


@pytest.fixture()
def small(tmp_path) -> Path:
    folder = tmp_path / "results"
    make_results(folder, **SMALL)
    return folder


def edit_runs(folder: Path, column: str, value: str) -> None:
    runs = pd.read_csv(folder / "runs.csv", dtype=str, keep_default_na=False)
    runs.loc[0, column] = value
    runs.to_csv(folder / "runs.csv", index=False)


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("seed", "-1", ["seed", "outside its range"]),
        ("seed", str(2**32), ["seed", "outside its range"]),
        ("seed", str(2**64), ["seed"]),
        ("protocol", "thawed", ["protocol value(s) 'thawed'", "allowed: frozen, unfrozen"]),
        ("protocol", "<b>x</b>", ["protocol value(s)"]),
    ],
)
def test_values_regbench_never_writes_are_refused(small, tmp_path, capsys, column, value, words):
    edit_runs(small, column, value)
    code, err = run_cli(capsys, small, "--out", tmp_path / "out")
    refused(code, err, *words)
    assert not (tmp_path / "out").exists()


def test_a_users_own_regularizer_name_still_reports(small, tmp_path, capsys):
    runs = pd.read_csv(small / "runs.csv", dtype=str, keep_default_na=False)
    runs.loc[runs.regularizer == "mixup", "regularizer"] = "my_mixup2"
    runs.to_csv(small / "runs.csv", index=False)
    code, err = run_cli(capsys, small, "--out", tmp_path / "out")
    assert code == 0, err


def test_a_manifest_that_is_not_utf8_deletes_nothing_and_reports(small, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("previous")
    (out / "mine.txt").write_text("a user's file")
    (out / build.MANIFEST).write_bytes(b"\xff\xfe index.html\nmine.txt\xff\n")
    code, err = run_cli(capsys, small, "--out", out)
    assert code == 0, err
    assert (out / "mine.txt").read_text() == "a user's file"
    assert (out / "index.html").read_text() != "previous"  # the new report replaced it


def test_a_png_encoder_failing_on_a_nearly_full_disk_is_one_line(
    small, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("previous report")
    (out / build.MANIFEST).write_text("index.html\n")

    def broken_savefig(self, *args, **kwargs):
        raise zlib.error("Error -3 while decompressing data: invalid distance too far back")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", broken_savefig)
    code, err = run_cli(capsys, small, "--out", out)
    refused(code, err, "cannot write the report", "is the disk full?", "previous report there is")
    assert (out / "index.html").read_text() == "previous report"


def test_a_link_out_of_the_results_folder_is_refused_by_the_report(small, tmp_path, capsys):
    decoy = tmp_path / "decoy.csv"
    decoy.write_text("run_id\nxyz\n")
    (small / "epochs.csv").unlink(missing_ok=True)
    (small / "epochs.csv").symlink_to(decoy)
    code, err = run_cli(capsys, small, "--out", tmp_path / "out")
    refused(code, err, f"{small / 'epochs.csv'}: a symbolic link to {decoy}, outside the results")
    assert decoy.read_text() == "run_id\nxyz\n" and not (tmp_path / "out").exists()


def test_a_fifo_side_file_does_not_block_the_report(small, tmp_path, capsys):
    import os

    (small / "robustness.csv").unlink(missing_ok=True)
    os.mkfifo(small / "robustness.csv")  # opening it for reading would wait for a writer
    code, err = run_cli(capsys, small, "--out", tmp_path / "out")
    assert code == 0 and "Traceback" not in err, err  # skipped like a missing side file
    assert (tmp_path / "out" / "index.html").is_file()
