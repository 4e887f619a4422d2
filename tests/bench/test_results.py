"""bench.results: the writer's guarantees on hand-made rows (no training): column order, empty
fields for missing values, side files before runs.csv, replacing a failed cell, cleaning what a
kill leaves, and the lock (second writer refused, stale lock taken over)."""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from measured import measured

from bench.results import (
    MAX_OUTCOMES,
    OUTCOMES_ARRAYS,
    LockError,
    ResultsDir,
    ResultsError,
    check_outcomes,
    format_value,
    read_outcomes,
    read_table,
    register_repair,
)
from bench.rows import CellResult
from bench.schema import FILES, RUNS


def make_result(run_id: str, status: str = "ok", **extra) -> CellResult:
    row = {"run_id": run_id, "sweep": "t", "status": status, "lr": 0.1}
    if status == "ok":
        row.update(measured(test_acc=0.5))
    else:
        row.update(error="non-finite loss at epoch 1 step 3", test_acc=None)
    row.update(extra)
    epochs = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_acc": float("nan")} for e in (1, 2)]
    calibration = [{"split": "test", "bin": b, "count": 3} for b in range(3)]
    return CellResult(row=row, epochs=epochs, calibration=calibration)


def take(results: ResultsDir) -> None:
    with results.lock():
        pass


def test_format_value() -> None:
    assert format_value(None) == ""
    assert format_value(float("nan")) == ""
    assert format_value(0.1) == "0.1" and float(format_value(1 / 3)) == 1 / 3
    assert format_value(np.float32(0.5)) == "0.5" and format_value(np.int64(3)) == "3"
    assert format_value({"b": 1, "a": [1, 2]}) == '{"a": [1, 2], "b": 1}'
    assert format_value(True) == "True" and format_value(float("inf")) == "inf"
    with pytest.raises(TypeError):
        format_value(object())


def test_write_rows_in_schema_order(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path)
    with results.lock():
        results.write(make_result("a" * 12))
        results.write(make_result("b" * 12, status="failed"))
    for name, columns in FILES.items():
        header, _ = read_table(tmp_path / name)
        assert header == columns, name
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs.run_id) == ["a" * 12, "b" * 12]
    assert runs.test_acc.iloc[0] == 0.5 and math.isnan(runs.test_acc.iloc[1])
    assert runs.error.iloc[1] == "non-finite loss at epoch 1 step 3"
    epochs = pd.read_csv(tmp_path / "epochs.csv")
    assert len(epochs) == 4 and epochs.val_acc.isna().all()
    assert len(pd.read_csv(tmp_path / "calibration.csv")) == 6
    assert pd.read_csv(tmp_path / "robustness.csv").empty
    assert results.finished_ids() == {"a" * 12, "b" * 12}
    assert results.failed_ids() == {"b" * 12}
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / ".lock").exists()


def test_write_needs_lock_and_known_columns(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path)
    with pytest.raises(RuntimeError, match="lock"):
        results.write(make_result("a" * 12))
    with results.lock():
        with pytest.raises(ValueError, match="unknown column"):
            results.write(make_result("a" * 12, not_a_column=1))
        bad = make_result("a" * 12)
        bad.epochs[0]["run_id"] = "other"
        with pytest.raises(ValueError, match="run_id"):
            results.write(bad)
        assert not (tmp_path / "runs.csv").exists() or results.finished_ids() == set()


def test_an_ok_row_must_carry_every_declared_metric(tmp_path: Path) -> None:
    # the other direction of "unknown column": a declared metric an ok cell did not produce
    results = ResultsDir(tmp_path)
    optional = [c.name for c in RUNS if c.kind == "metric" and c.empty_when]
    assert "val_gain_last20" in optional and "test_acc" not in optional
    with results.lock():
        lacking = make_result("a" * 12)
        del lacking.row["flip_rate"]
        with pytest.raises(ValueError, match=r"finished ok without the declared metric\(s\) "
                                             r"\['flip_rate'\]"):  # fmt: skip
            results.write(lacking)
        with pytest.raises(ValueError, match=r"metric\(s\) \['test_ece'\]"):
            results.write(make_result("a" * 12, test_ece=None))  # None: not measured
        absent = make_result("a" * 12)
        del absent.row["val_gain_last20"]  # may be empty, but its phase must say so (None)
        with pytest.raises(ValueError, match=r"metric\(s\) \['val_gain_last20'\]"):
            results.write(absent)
        assert results.finished_ids() == set() and not (tmp_path / "runs.csv").exists()
        results.write(make_result("a" * 12, **dict.fromkeys(optional)))  # declared empty: fine
        results.write(make_result("b" * 12, status="failed"))  # a failed cell measured nothing
    assert results.finished_ids() == {"a" * 12, "b" * 12}


def test_values_must_fit_the_declared_dtype(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path)
    with results.lock():
        with pytest.raises(ValueError, match="column epochs is declared int .* an integer"):
            results.write(make_result("a" * 12, epochs=2.5))
        with pytest.raises(ValueError, match="column lr is declared float .* a number"):
            results.write(make_result("a" * 12, lr="0.1"))
        bad = make_result("a" * 12)
        bad.calibration[0]["count"] = True
        with pytest.raises(ValueError, match="calibration.csv: column count is declared int"):
            results.write(bad)
        assert results.finished_ids() == set()
        results.write(make_result("a" * 12, epochs=np.int64(3), lr=np.float32(0.5), seed=None,
                                  test_loss=float("nan"), regularizer_params={"alpha": 1}))  # fmt: skip
    row = read_table(tmp_path / "runs.csv")[1][0]
    assert (row["epochs"], row["lr"], row["seed"], row["test_loss"]) == ("3", "0.5", "", "")


def test_registered_subfolder_repair_runs_under_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.results

    monkeypatch.setattr(bench.results, "_REPAIRS", {})
    seen = []

    def repair(folder: Path) -> list[str]:
        seen.append(folder)
        return [f"{folder}: fixed"]

    register_repair("things", repair)
    take(ResultsDir(tmp_path))
    assert seen == []  # no such subfolder
    (tmp_path / "things").mkdir()
    with pytest.warns(UserWarning, match="things: fixed"):
        take(ResultsDir(tmp_path))
    assert seen == [tmp_path / "things"]


def test_the_csv_store_imports_neither_torch_nor_the_model_format() -> None:
    code = (
        "import sys, bench.results, bench.rows; "
        "assert not {'torch', 'bench.model_io', 'bench.train'} & set(sys.modules), sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_failed_cell_is_replaced_ok_cell_is_not(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path)
    with results.lock():
        results.write(make_result("a" * 12, status="failed"))
        results.write(make_result("b" * 12))
        retry = make_result("a" * 12, test_acc=0.75)
        retry.epochs = retry.epochs[:1]
        results.write(retry)
        with pytest.raises(ValueError, match="already recorded as ok"):
            results.write(make_result("b" * 12))
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert sorted(runs.run_id) == ["a" * 12, "b" * 12]
    assert runs.set_index("run_id").loc["a" * 12, "status"] == "ok"
    assert runs.set_index("run_id").loc["a" * 12, "test_acc"] == 0.75
    epochs = pd.read_csv(tmp_path / "epochs.csv")
    assert (epochs.run_id == "a" * 12).sum() == 1 and (epochs.run_id == "b" * 12).sum() == 2


def test_lock_repairs_what_a_kill_leaves(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path)
    with results.lock():
        results.write(make_result("a" * 12))
    # A kill after the side files of cell b but before its runs.csv row, and a stray temp file:
    header, rows = read_table(tmp_path / "epochs.csv")
    with open(tmp_path / "epochs.csv", "a", newline="") as handle:
        csv.writer(handle).writerow(["b" * 12] + [""] * (len(header) - 1))
    # (temporaries named as the writer names them: .tmp-<target>.<mkstemp's 8 characters>)
    (tmp_path / ".tmp-runs.csv.abc_1234").write_text("half a file")
    (tmp_path / "logits").mkdir()
    (tmp_path / "logits" / f"{'b' * 12}.npz").write_bytes(b"")
    (tmp_path / "logits" / f".tmp-{'b' * 12}.npz.k1ll3d00").write_bytes(b"")
    with results.lock():
        pass
    assert set(pd.read_csv(tmp_path / "epochs.csv").run_id) == {"a" * 12}
    assert not (tmp_path / ".tmp-runs.csv.abc_1234").exists()
    assert not (tmp_path / "logits" / f"{'b' * 12}.npz").exists()
    assert not list((tmp_path / "logits").iterdir())


def test_lock_removes_only_files_the_writer_names(tmp_path: Path) -> None:
    """A user's files that merely look like temporaries or logits stay (issue 15, class 6)."""
    results = ResultsDir(tmp_path)
    with results.lock():
        results.write(make_result("a" * 12))
    (tmp_path / "logits").mkdir()
    users = [
        ".tmp-abc", ".tmp-notes.txt", ".tmp-runs.csv", ".tmp-runs.csv.abc", ".tmp-runs.csv.ABCDEFGH",
        ".tmp-other.csv.abcdefgh", "logits/.tmp-x", "logits/notes.npz", "logits/ABCDEF012345.npz",
        f"logits/{'b' * 12}.npz.bak", f"logits/.tmp-{'b' * 12}.npz", "logits/b.npz",
    ]  # fmt: skip
    for name in users:
        (tmp_path / name).write_text("mine")
    (tmp_path / ".tmp-epochs.csv.dir12345").mkdir()  # a folder with a writer-like name
    (tmp_path / "outside.txt").write_text("mine")
    (tmp_path / ".tmp-runs.csv.link1234").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "logits" / f"{'a' * 12}.npz").write_bytes(b"known run")
    with results.lock():
        pass
    assert all((tmp_path / name).read_text() == "mine" for name in users)
    assert (tmp_path / ".tmp-epochs.csv.dir12345").is_dir()
    assert (tmp_path / ".tmp-runs.csv.link1234").is_symlink()
    assert (tmp_path / "outside.txt").read_text() == "mine"
    assert (tmp_path / "logits" / f"{'a' * 12}.npz").exists()


def test_logits_saved_atomically(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path)
    logits = np.random.default_rng(0).normal(size=(7, 10)).astype(np.float16)
    with results.lock():
        results.write(
            CellResult(row={"run_id": "c" * 12, "status": "ok", **measured()}, test_logits=logits)
        )
    saved = np.load(tmp_path / "logits" / f"{'c' * 12}.npz")["logits"]
    assert saved.dtype == np.float16 and np.array_equal(saved, logits)


def test_second_writer_refused(tmp_path: Path) -> None:
    first, second = ResultsDir(tmp_path), ResultsDir(tmp_path)
    with first.lock(), pytest.raises(LockError, match=r"in use by another sweep \(process \d+"):
        take(second)
    take(second)  # released on exit


def test_second_writer_in_another_process_refused(tmp_path: Path) -> None:
    code = (
        "import sys; from bench.results import ResultsDir, LockError\n"
        "try:\n    ResultsDir(sys.argv[1]).lock().__enter__()\n"
        "except LockError as e:\n    print(e); sys.exit(3)\n"
    )
    with ResultsDir(tmp_path).lock():
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True)
    assert out.returncode == 3, out.stderr
    assert f"process {os.getpid()}" in out.stdout.decode()


def test_stale_lock_of_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = {"pid": dead.pid, "hostname": socket.gethostname(), "started_at": "earlier"}
    (tmp_path / ".lock").write_text(json.dumps(lock))
    with pytest.warns(UserWarning, match="stale lock"), ResultsDir(tmp_path).lock():
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".lock").exists()


def test_lock_of_live_process_on_other_host_refused(tmp_path: Path) -> None:
    lock = {"pid": 1, "hostname": "elsewhere.example", "started_at": "earlier"}
    (tmp_path / ".lock").write_text(json.dumps(lock))
    with pytest.raises(LockError, match="host elsewhere.example.*delete"):
        take(ResultsDir(tmp_path))


def test_empty_lock_fresh_refused_old_taken_over(tmp_path: Path) -> None:
    (tmp_path / ".lock").write_text("")
    with pytest.raises(LockError, match="starting"):
        take(ResultsDir(tmp_path))
    old = time.time() - 60
    os.utime(tmp_path / ".lock", (old, old))
    with pytest.warns(UserWarning, match="stale lock"), ResultsDir(tmp_path).lock():
        pass


def test_taking_the_lock_waits_for_a_concurrent_take_over(tmp_path):
    """Creating or replacing the lock happens under an flock on a guard file, so two sweeps that
    start together cannot both replace the same stale lock."""
    import fcntl
    import threading

    from bench.results import LOCK_GUARD_FILE

    folder = ResultsDir(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    guard = os.open(tmp_path / LOCK_GUARD_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(guard, fcntl.LOCK_EX)  # another process in the middle of taking the lock
    acquired = threading.Event()

    def take() -> None:
        with folder.lock():
            acquired.set()

    worker = threading.Thread(target=take)
    worker.start()
    assert not acquired.wait(0.5), "took the lock while another take-over was under way"
    os.close(guard)  # the other process is done
    assert acquired.wait(10)
    worker.join(10)
    assert not (tmp_path / ".lock").exists()


@pytest.mark.parametrize(
    ("files", "pattern"),
    [
        ({"runs.csv": b"run_id,status\n\xe9,ok\n"}, r"runs\.csv: not UTF-8 text \(byte 14\)"),
        (
            {"runs.csv": b"run_id,status\nabc,ok,x\n"},
            r"runs\.csv: line 2 has 3 fields, the header 2",
        ),
        ({"runs.csv": b"run_id,status\nabc,ok\nabc,ok\n"}, r"runs\.csv: run_id abc has 2 rows"),
        ({"runs.csv": b"id,status\nabc,ok\n"}, r"runs\.csv: no run_id column"),
        ({"epochs.csv": b"run_id,epoch\nabc,1,2\n"}, r"epochs\.csv: line 2 has 3 fields"),
        ({".lock": None}, r"\.lock: not a plain file .*remove it"),
    ],
)
def test_unusable_results_folders_are_named_errors(tmp_path: Path, files, pattern) -> None:
    for name, data in files.items():
        (tmp_path / name).mkdir() if data is None else (tmp_path / name).write_bytes(data)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir())
    with pytest.raises(ResultsError, match=pattern):
        ResultsDir(tmp_path).check()
    with pytest.raises(ResultsError, match=pattern):
        take(ResultsDir(tmp_path))
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir()) == before


def test_results_folder_that_is_a_file_or_not_writable(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultsError, match=r"file: not a folder; give a results folder"):
        ResultsDir(tmp_path / "file").runs()
    with pytest.raises(ResultsError, match=r"not a folder"):
        take(ResultsDir(tmp_path / "file"))
    real_open = os.open

    def read_only(path, flags, *args):  # what a read-only folder (or file system) answers
        if flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(
        ResultsError,
        match=r"cannot write to the results folder \(Permission denied\); make it writable",
    ):
        take(ResultsDir(tmp_path / "ro"))


# ---------------------------------------------------------------------------------------------
# outcomes/<run_id>.npz (issue 12)


def with_outcomes(run_id: str, arrays: dict) -> CellResult:
    result = make_result(run_id)
    result.outcomes = arrays
    return result


def outcomes(n: int = 7, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "label": rng.integers(0, 10, n),  # int64, as a cell's labels are before the writer
        "pred": rng.integers(0, 10, n),
        "conf": rng.uniform(0.1, 1.0, n),  # float64
    }


def test_outcomes_written_before_runs_csv_and_read_back(tmp_path: Path, monkeypatch) -> None:
    results = ResultsDir(tmp_path)
    given = outcomes()
    target = tmp_path / "outcomes" / f"{'c' * 12}.npz"
    replaced = []
    original = ResultsDir._replace

    def record(self, name, header, rows):
        replaced.append((name, target.exists()))
        return original(self, name, header, rows)

    monkeypatch.setattr(ResultsDir, "_replace", record)
    with results.lock():
        results.write(with_outcomes("c" * 12, given))
    assert replaced[-1] == ("runs.csv", True)  # the done-marker comes after the outcomes
    back = read_outcomes(target)
    assert {k: str(v.dtype) for k, v in back.items()} == OUTCOMES_ARRAYS
    assert np.array_equal(back["label"], given["label"])
    assert np.array_equal(back["pred"], given["pred"])
    assert np.array_equal(back["conf"], given["conf"].astype(np.float16))
    with np.load(target, allow_pickle=False) as npz:  # what the report does: plain numpy
        assert sorted(npz.files) == ["conf", "label", "pred"]


@pytest.mark.parametrize(
    "case",
    ["one image", "edges", "uint8 in", "float32 conf", "many"],
)
def test_writer_rejects_nothing_the_report_needs(tmp_path: Path, case: str) -> None:
    """Every valid outcome the report can meet round-trips through writer and reader."""
    given = {
        "one image": {"label": [3], "pred": [3], "conf": [1.0]},
        "edges": {"label": [0, 9, 255], "pred": [255, 0, 9], "conf": [0.0, 1.0, 0.1]},
        "uint8 in": {k: np.asarray(v).astype(OUTCOMES_ARRAYS[k]) for k, v in outcomes().items()},
        "float32 conf": {**outcomes(), "conf": np.full(7, 0.99999, dtype=np.float32)},
        "many": outcomes(10_000, seed=1),
    }[case]
    results = ResultsDir(tmp_path)
    with results.lock():
        results.write(with_outcomes("d" * 12, given))
    back = read_outcomes(tmp_path / "outcomes" / f"{'d' * 12}.npz")
    assert np.array_equal(back["label"], np.asarray(given["label"]))
    assert np.array_equal(back["pred"], np.asarray(given["pred"]))
    assert np.allclose(back["conf"], np.asarray(given["conf"]), atol=2**-11)
    assert back["conf"].max() <= 1.0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"pred": None}, "expected arrays"),
        ({"extra": [1]}, "expected arrays"),
        ({"label": [1, 2]}, "same 1 <= N"),
        ({"conf": [[0.5]] * 7}, "same 1 <= N"),
        ({"label": [-1] * 7}, "label must hold class indices"),
        ({"pred": [256] * 7}, "pred must hold class indices"),
        ({"pred": [0.0] * 7}, "pred must hold class indices"),
        ({"conf": [1.5] * 7}, r"conf must hold probabilities in \[0, 1\]"),
        ({"conf": [float("nan")] * 7}, "conf must hold probabilities"),
        ({"conf": [1] * 7}, "conf must be floating point"),
    ],
)
def test_bad_outcomes_are_refused_before_anything_is_written(
    tmp_path: Path, change: dict, match: str
) -> None:
    bad = {**outcomes(), **change}
    bad = {k: v for k, v in bad.items() if v is not None}
    results = ResultsDir(tmp_path)
    with results.lock(), pytest.raises(ValueError, match=match):
        results.write(with_outcomes("e" * 12, bad))
    assert not (tmp_path / "runs.csv").exists() and not (tmp_path / "epochs.csv").exists()
    assert not (tmp_path / "outcomes").exists()


def test_empty_and_oversized_outcomes_refused() -> None:
    with pytest.raises(ValueError, match="same 1 <= N"):
        check_outcomes({"label": [], "pred": [], "conf": []})
    big = np.zeros(MAX_OUTCOMES + 1, dtype=np.uint8)
    with pytest.raises(ValueError, match="same 1 <= N"):
        check_outcomes({"label": big, "pred": big, "conf": big.astype(np.float16)})


def test_repair_removes_orphan_outcomes_never_one_with_a_row(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path)
    with results.lock():
        results.write(with_outcomes("a" * 12, outcomes()))
        results.write(make_result("f" * 12, status="failed"))
    folder = tmp_path / "outcomes"
    kept = (folder / f"{'a' * 12}.npz").read_bytes()
    # A kill after cell b's outcomes but before its row; another after a's rewrite began; a file
    # for a failed cell's run_id (its row exists); and files that are not the writer's.
    (folder / f"{'b' * 12}.npz").write_bytes(kept)
    (folder / f".tmp-{'a' * 12}.npz.k1ll3d00").write_bytes(b"half")
    (folder / f"{'f' * 12}.npz").write_bytes(kept)
    users = ["notes.npz", f"{'b' * 12}.npz.bak", "ABCDEF012345.npz", ".tmp-x"]
    for name in users:
        (folder / name).write_text("mine")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x").write_text("mine")
    (folder / f"{'c' * 12}.npz").symlink_to(tmp_path / "elsewhere" / "x")  # a link: not ours
    (folder / f"{'d' * 12}.npz").mkdir()  # a folder: not ours
    with results.lock():
        pass
    assert not (folder / f"{'b' * 12}.npz").exists()
    assert not (folder / f".tmp-{'a' * 12}.npz.k1ll3d00").exists()
    assert (folder / f"{'a' * 12}.npz").read_bytes() == kept  # its row exists
    assert (folder / f"{'f' * 12}.npz").exists()  # a failed row is a row
    assert all((folder / name).read_text() == "mine" for name in users)
    assert (folder / f"{'c' * 12}.npz").is_symlink() and (folder / f"{'d' * 12}.npz").is_dir()
    assert (tmp_path / "elsewhere" / "x").read_text() == "mine"


def test_a_failed_attempt_does_not_keep_an_earlier_attempts_outcomes(tmp_path: Path) -> None:
    """Recording an ok cell can fail after its outcomes were written (the Recorder then records
    it as failed): the failed row must not sit beside those outcomes, and a retry replaces them."""
    results = ResultsDir(tmp_path)
    target = tmp_path / "outcomes" / f"{'a' * 12}.npz"
    with results.lock():
        results.write(with_outcomes("b" * 12, outcomes()))
        target.write_bytes((tmp_path / "outcomes" / f"{'b' * 12}.npz").read_bytes())
        results.write(make_result("a" * 12, status="failed"))
        assert not target.exists()
        assert (tmp_path / "outcomes" / f"{'b' * 12}.npz").exists()  # another cell's stays
        results.write(with_outcomes("a" * 12, outcomes(seed=5)))
    assert np.array_equal(read_outcomes(target)["pred"], outcomes(seed=5)["pred"])


def test_outcomes_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path / "r")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "outcomes").symlink_to(tmp_path / "elsewhere")
    refused = pytest.raises(ResultsError, match="symbolic link to .*elsewhere, outside the results")
    with refused, results.lock():  # issue 27: refused when the folder is checked
        pass
    (tmp_path / "r" / "outcomes").unlink()
    with results.lock():  # planted after the check: the writer refuses it itself
        (tmp_path / "r" / "outcomes").symlink_to(tmp_path / "elsewhere")
        with pytest.raises(ResultsError, match="outside the results folder"):
            results.write(with_outcomes("a" * 12, outcomes()))
    assert (
        not list((tmp_path / "elsewhere").iterdir()) and not (tmp_path / "r" / "runs.csv").exists()
    )


def _npz(path: Path, **arrays) -> Path:
    np.savez_compressed(path, **arrays)
    return path


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_bytes(b"not a zip"),
        lambda p: p.write_bytes(b""),
        lambda p: _npz(p, label=np.zeros(3, np.uint8), pred=np.zeros(3, np.uint8)),
        lambda p: _npz(p, label=np.zeros(3, np.uint8), pred=np.zeros(3, np.uint8),
                       conf=np.zeros(3, np.float16), evil=np.zeros(1)),
        lambda p: _npz(p, label=np.zeros(3, np.int64), pred=np.zeros(3, np.uint8),
                       conf=np.zeros(3, np.float16)),
        lambda p: _npz(p, label=np.zeros(3, np.uint8), pred=np.zeros(2, np.uint8),
                       conf=np.zeros(3, np.float16)),
        lambda p: _npz(p, label=np.zeros(3, np.uint8), pred=np.zeros(3, np.uint8),
                       conf=np.full(3, 2.0, np.float16)),
        lambda p: _npz(p, label=np.array([{}, {}, {}], dtype=object),
                       pred=np.zeros(3, np.uint8), conf=np.zeros(3, np.float16)),
        lambda p: _npz(p, label=np.zeros(3, np.uint8), pred=np.zeros(3, np.uint8),
                       conf=np.zeros(MAX_OUTCOMES + 1, np.float16)),
        lambda p: p.mkdir(),
        lambda p: p.symlink_to(_npz(p.parent / "real.npz", **outcomes())),
        lambda p: os.mkfifo(p),
    ],
    ids=["garbage", "empty", "missing", "extra", "dtype", "ragged", "range", "pickle", "huge",
         "folder", "link", "fifo"],
)  # fmt: skip
def test_read_outcomes_refuses_hostile_files(tmp_path: Path, make) -> None:
    path = tmp_path / f"{'a' * 12}.npz"
    make(path)
    with pytest.raises(ResultsError, match=f"{path.name}: .*; remove it"):
        read_outcomes(path)


def test_read_outcomes_checks_sizes_before_decompressing(tmp_path: Path, monkeypatch) -> None:
    path = _npz(
        tmp_path / "bomb.npz", label=np.zeros(3, np.uint8), pred=np.zeros(3, np.uint8),
        conf=np.zeros(3 * MAX_OUTCOMES, np.float16),  # 6 MB of zeros, a few kB on disk
    )  # fmt: skip
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("decompressed a bomb"))
    with pytest.raises(ResultsError, match="larger than"):
        read_outcomes(path)
