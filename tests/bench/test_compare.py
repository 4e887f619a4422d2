"""`regbench compare REF NEW`: verdicts per metric, arms and cells, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from report_fixtures import make_results  # noqa: E402

from bench.cli.compare import main  # noqa: E402
from bench.compare import DIFFERS, IDENTICAL, NOISE, compare_results, compared_metrics  # noqa: E402


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("compare") / "ref"
    make_results(folder, protocols=("frozen", "unfrozen"), seeds=(0, 1, 2))
    return folder


def copy_with(ref: Path, target: Path, change=None) -> Path:
    """A copy of REF's folder; `change(runs)` edits its runs table before it is written."""
    shutil.copytree(ref, target)
    if change:
        runs = pd.read_csv(target / "runs.csv", dtype=str, keep_default_na=False)
        change(runs)
        runs.to_csv(target / "runs.csv", index=False)
    return target


def shift(runs: pd.DataFrame, row: int, column: str, amount: float) -> None:
    runs.loc[row, column] = repr(float(runs.loc[row, column]) + amount)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_copy_is_identical_and_exits_0(ref, tmp_path, capsys):
    new = copy_with(ref, tmp_path / "new")
    code, out, err = run(capsys, ref, new)
    assert code == 0, out + err
    assert err == ""
    assert "NEW reproduces REF" in out
    comparison = compare_results(ref, new)
    assert set(comparison.metrics["verdict"]) == {IDENTICAL}
    assert not comparison.differs
    assert comparison.shared == 30 and comparison.only_ref.empty and comparison.only_new.empty


def test_a_large_change_differs_and_names_the_cell(ref, tmp_path, capsys):
    runs = pd.read_csv(ref / "runs.csv", dtype=str, keep_default_na=False)
    target = runs.loc[4, "run_id"]
    new = copy_with(ref, tmp_path / "new", lambda r: shift(r, 4, "test_acc", 0.05))
    code, out, _ = run(capsys, ref, new)
    assert code == 1
    assert target in out and "NEW differs from REF" in out
    comparison = compare_results(ref, new)
    verdicts = comparison.metrics.set_index("metric")["verdict"]
    assert verdicts["test_acc"] == DIFFERS
    assert verdicts["train_acc"] == IDENTICAL  # only the changed metric differs
    cells = comparison.cells[comparison.cells["verdict"] == DIFFERS]
    assert list(cells["run_id"]) == [target] and list(cells["metric"]) == ["test_acc"]
    assert cells["difference"].iloc[0] == pytest.approx(0.05)


def test_a_change_inside_the_seed_spread_is_noise_and_exits_0(ref, tmp_path, capsys):
    # the fixture's seed pattern has a std of about 0.001: 0.0005 is within 2 x std
    new = copy_with(ref, tmp_path / "new", lambda r: shift(r, 0, "test_acc", 0.0005))
    code, out, _ = run(capsys, ref, new)
    assert code == 0, out
    verdicts = compare_results(ref, new).metrics.set_index("metric")["verdict"]
    assert verdicts["test_acc"] == NOISE
    assert "within noise" in out


def test_cost_metrics_are_not_compared(ref, tmp_path, capsys):
    new = copy_with(ref, tmp_path / "new", lambda r: shift(r, 0, "wall_s", 1000.0))
    assert "wall_s" not in compared_metrics() and "test_acc" in compared_metrics()
    assert run(capsys, ref, new)[0] == 0


def test_cells_in_one_folder_are_listed_and_a_status_change_differs(ref, tmp_path, capsys):
    def change(runs):
        runs.loc[1, "status"] = "failed"
        for column in ["train_acc", "test_acc"]:
            runs.loc[1, column] = ""

    new = copy_with(ref, tmp_path / "new", change)
    runs = pd.read_csv(new / "runs.csv", dtype=str, keep_default_na=False)
    dropped = runs.loc[2, "run_id"]
    runs.drop(index=2).to_csv(new / "runs.csv", index=False)
    comparison = compare_results(ref, new)
    assert list(comparison.only_ref["run_id"]) == [dropped]
    assert comparison.only_new.empty
    assert list(comparison.status["new_status"]) == ["failed"]
    assert comparison.differs
    code, out, _ = run(capsys, ref, new)
    assert code == 1 and "only in REF" in out and dropped in out and "status differs" in out


def test_json_output_is_complete_and_strict(ref, tmp_path, capsys):
    new = copy_with(ref, tmp_path / "new", lambda r: shift(r, 4, "test_acc", 0.05))
    code, out, _ = run(capsys, ref, new, "--json")
    assert code == 1
    data = json.loads(out)  # allow_nan=False: NaN is null
    assert data["differs"] is True
    assert {m["metric"] for m in data["metrics"]} == set(compared_metrics())
    assert any(c["verdict"] == DIFFERS for c in data["cells"])


@pytest.mark.parametrize(
    "argv_of, words",
    [
        (lambda ref, tmp: [ref, tmp / "nope"], ["does not exist"]),
        (lambda ref, tmp: [ref, ref, "--metrics", "accuracy_of_doom"], ["unknown metric"]),
    ],
)
def test_bad_input_exits_2_with_one_line(ref, tmp_path, capsys, argv_of, words):
    code, out, err = run(capsys, *argv_of(ref, tmp_path))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("regbench compare: error: ")
    assert all(word in lines[0] for word in words)


def test_a_metric_one_folder_lacks_is_left_out_with_a_note(ref, tmp_path, capsys):
    """An older folder without a metric the catalogue gained since (here val_gain_last20):
    the default comparison skips it and says so; asking for it by name is refused."""
    old = copy_with(ref, tmp_path / "old", lambda runs: runs.pop("val_gain_last20"))
    assert "val_gain_last20" in compared_metrics()
    comparison = compare_results(old, ref)
    assert "val_gain_last20" not in set(comparison.cells["metric"])
    assert "test_acc" in set(comparison.cells["metric"]) and not comparison.differs
    assert any("val_gain_last20" in note for note in comparison.notes)
    code, out, err = run(capsys, old, ref)
    assert code == 0 and "val_gain_last20" in out, out + err
    code, out, err = run(capsys, old, ref, "--metrics", "val_gain_last20")
    assert code == 2 and "val_gain_last20" in err and "Traceback" not in err


def test_folders_without_a_shared_cell_are_refused(ref, tmp_path, capsys):
    other = tmp_path / "other"
    make_results(other, protocols=("staged",), seeds=(7,))
    code, _, err = run(capsys, ref, other)
    assert code == 2 and "share no run_id" in err


def test_compare_writes_nothing(ref, tmp_path, capsys):
    new = copy_with(ref, tmp_path / "new", lambda r: shift(r, 4, "test_acc", 0.05))
    before = {p: p.stat().st_mtime_ns for p in [*ref.rglob("*"), *new.rglob("*")]}
    run(capsys, ref, new)
    after = {p: p.stat().st_mtime_ns for p in [*ref.rglob("*"), *new.rglob("*")]}
    assert before == after


def test_compare_is_a_subcommand(ref, capsys):
    from bench.cli import main as regbench

    assert regbench(["compare", str(ref), str(ref)]) == 0
    assert "NEW reproduces REF" in capsys.readouterr().out


def test_float_noise_is_within_the_tolerance_even_with_one_seed(tmp_path, capsys):
    ref = tmp_path / "ref"
    make_results(ref, protocols=("frozen",), seeds=(0,))
    new = copy_with(ref, tmp_path / "new", lambda r: shift(r, 0, "test_acc", 3e-8))
    comparison = compare_results(ref, new)
    assert comparison.metrics.set_index("metric").loc["test_acc", "verdict"] == NOISE
    code, out, _ = run(capsys, ref, new)
    assert code == 0 and "NEW reproduces REF" in out and "tolerance 1e-06" in out
    # an explicit tolerance of 0: bit-equal or differs
    assert run(capsys, ref, new, "--tolerance", "0")[0] == 1
    # a real difference with one seed still differs
    far = copy_with(ref, tmp_path / "far", lambda r: shift(r, 0, "test_acc", 0.01))
    assert compare_results(ref, far).differs
    code, _, err = run(capsys, ref, new, "--tolerance", "-1")
    assert code == 2 and "give a number >= 0" in err and len(err.splitlines()) == 1


def test_pair_on_compares_two_sweeps_that_differ_in_a_setting(tmp_path, capsys):
    ref = tmp_path / "ref"
    make_results(ref, protocols=("frozen",), seeds=(0, 1, 2))

    def other_lr(runs):
        runs["lr"] = "0.1"
        runs["run_id"] = ["x" + run_id[1:] for run_id in runs["run_id"]]

    new = copy_with(ref, tmp_path / "new", other_lr)
    for side in ("epochs.csv", "calibration.csv", "robustness.csv"):
        table = pd.read_csv(new / side, dtype=str, keep_default_na=False)
        table["run_id"] = ["x" + run_id[1:] for run_id in table["run_id"]]
        table.to_csv(new / side, index=False)
    code, _, err = run(capsys, ref, new)
    assert code == 2 and "share no run_id" in err  # by run_id: nothing to compare
    code, out, err = run(capsys, ref, new, "--pair-on", "regularizer,schedule,protocol,seed")
    assert code == 0, out + err
    assert "paired on regularizer, schedule, protocol, seed" in out and "lr (0.05 vs 0.1)" in out
    comparison = compare_results(ref, new, pair_on=["arm", "protocol", "seed"])  # the report's arm
    assert comparison.shared == len(pd.read_csv(ref / "runs.csv")) and not comparison.differs
    # cutmix and staged cutmix share regularizer, protocol and seed: refused, not guessed
    code, _, err = run(capsys, ref, new, "--pair-on", "regularizer,protocol,seed")
    assert code == 2 and "several cells" in err and len(err.splitlines()) == 1
    code, _, err = run(capsys, ref, new, "--pair-on", "regulariser")
    assert code == 2 and "no column(s) 'regulariser'" in err
