"""Hostile and careless results folders (issue 15): every one is refused with exit code 2 and one
line on stderr naming the problem, before anything is drawn; nothing outside --out is written;
a full disk leaves the previous report; spreadsheet formulas are defused; folders merge."""

from __future__ import annotations

import csv
import errno
import io
import random
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import make_results

from bench import schema
from bench.cli.report import main
from bench.report import build, load, tables

SMALL = {
    "arms": [("none", "constant"), ("mixup", "constant"), ("cutmix", "constant")],
    "protocols": ("frozen",),
    "seeds": (0, 1),
}


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(code: int, err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("regbench report: error: ") and "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture()
def small(tmp_path) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path / "results"
    return folder, make_results(folder, **SMALL)


def edit_runs(folder: Path, row: int, column: str, value: str) -> None:
    runs = pd.read_csv(folder / "runs.csv", dtype=str, keep_default_na=False)
    runs.loc[row, column] = value
    runs.to_csv(folder / "runs.csv", index=False)


# --- ranges and types come from the declarations in bench/schema.py ---------------------------


def test_every_accuracy_and_ece_column_is_declared_a_fraction():
    for file, declared in schema.DECLARED.items():
        for column in declared:
            if column.name.endswith(("_acc", "_ece")) or column.name in ("accuracy", "ece"):
                assert (column.low, column.high) == (0.0, 1.0), (file, column.name)


@pytest.mark.parametrize(
    "column, value, words",
    [
        ("test_acc", "85.0", ["test_acc", "[0, 1]", "0.85 not 85"]),
        ("train_acc", "-0.1", ["train_acc", "[0, 1]"]),
        ("test_ece", "1.5", ["test_ece"]),
        ("test_acc", "inf", ["test_acc", "'inf'"]),
        ("test_loss", "-2", ["test_loss", "[0, inf]"]),
        ("seed", "1.5", ["seed", "non-integer", "'1.5'"]),
        ("epochs", "2.5", ["epochs", "whole number"]),
        ("lr", "inf", ["lr", "non-finite"]),
        ("seed", "nan", ["seed", "non-finite"]),
        ("batch_size", "0", ["batch_size", "[1, 65536]"]),  # the field's declared bound
        ("lr", "1e6", ["lr", "[0, 10]"]),  # a configuration column's range is its field's
    ],
)
def test_values_outside_their_declaration_are_refused(small, capsys, column, value, words):
    folder, runs = small
    edit_runs(folder, 3, column, value)
    code, _, err = run_cli(capsys, folder, "--out", folder.parent / "out")
    assert_refused(code, err, *words, runs["run_id"].iloc[3])
    assert not (folder.parent / "out").exists()


def test_a_fraction_one_ulp_above_1_and_an_empty_metric_are_accepted(small):
    folder, runs = small
    edit_runs(folder, 0, "test_ece", "1.0000000000000002")
    edit_runs(folder, 1, "test_mean_conf", "")
    edit_runs(folder, 2, "test_loss", "nan")
    loaded = load.load_results(folder)
    assert loaded.runs["test_mean_conf"].isna().sum() == 1


@pytest.mark.parametrize(
    "file, column, value, words",
    [
        ("calibration.csv", "accuracy", "2.0", ["calibration.csv", "accuracy", "[0, 1]"]),
        ("epochs.csv", "test_acc", "77", ["epochs.csv", "test_acc"]),
        ("robustness.csv", "severity", "2.5", ["robustness.csv", "severity", "non-integer"]),
        ("epochs.csv", "epoch", "nan", ["epochs.csv", "epoch", "non-finite"]),
    ],
)
def test_side_file_values_are_checked_too(small, capsys, file, column, value, words):
    folder, _ = small
    table = pd.read_csv(folder / file, dtype=str, keep_default_na=False)
    table.loc[1, column] = value
    table.to_csv(folder / file, index=False)
    code, _, err = run_cli(capsys, folder, "--out", folder.parent / "out")
    assert_refused(code, err, *words)


# --- malformed CSVs ---------------------------------------------------------------------------


def test_a_csv_that_is_not_utf8_is_named(small, capsys):
    folder, _ = small
    data = (folder / "runs.csv").read_bytes().replace(b"frozen", b"fr\xf6zen", 1)
    (folder / "runs.csv").write_bytes(data)
    code, _, err = run_cli(capsys, folder, "--out", folder.parent / "out")
    assert_refused(code, err, "runs.csv", "not UTF-8", "save it as UTF-8")


@pytest.mark.parametrize("extra", [True, False])
def test_ragged_rows_are_named(small, capsys, extra):
    folder, _ = small
    lines = (folder / "runs.csv").read_text().splitlines()
    lines[3] = lines[3] + ",surplus" if extra else lines[3].rsplit(",", 5)[0]
    (folder / "runs.csv").write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(capsys, folder, "--out", folder.parent / "out")
    assert_refused(code, err, "runs.csv", "line 4", "fields, the header", "ragged row")


def test_a_column_named_twice_is_refused(small, capsys):
    folder, _ = small
    text = (folder / "runs.csv").read_text().replace("test_loss", "test_acc", 1)
    (folder / "runs.csv").write_text(text)
    code, _, err = run_cli(capsys, folder, "--out", folder.parent / "out")
    assert_refused(code, err, "'test_acc'", "more than once")


def test_a_side_file_repeating_a_row_is_refused(small, capsys):
    folder, _ = small
    epochs = pd.read_csv(folder / "epochs.csv", dtype=str, keep_default_na=False)
    pd.concat([epochs, epochs.iloc[[2]]]).to_csv(folder / "epochs.csv", index=False)
    code, _, err = run_cli(capsys, folder, "--out", folder.parent / "out")
    assert_refused(code, err, "epochs.csv", "more than once", epochs["run_id"].iloc[2])


def test_control_characters_in_a_run_id_do_not_forge_lines(small, capsys):
    folder, _ = small
    edit_runs(folder, 0, "run_id", "abc\n\x1b[2Jregbench report: wrote evil")
    edit_runs(folder, 0, "test_acc", "high")
    code, _, err = run_cli(capsys, folder, "--out", folder.parent / "out")
    line = assert_refused(code, err, "\\n", "\\x1b")
    assert "\x1b" not in line


# --- a full disk ------------------------------------------------------------------------------


def previous_report(out: Path) -> None:
    out.mkdir()
    (out / "index.html").write_text("previous report")
    (out / build.MANIFEST).write_text("index.html\n")


def full_disk(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_drawing_is_named_and_keeps_the_previous_report(
    small, capsys, monkeypatch
):
    folder, _ = small
    out = folder.parent / "out"
    previous_report(out)
    monkeypatch.setattr(build.figures, "draw_figures", full_disk)
    code, _, err = run_cli(capsys, folder, "--out", out)
    assert_refused(code, err, "No space left on device", "previous report")
    assert (out / "index.html").read_text() == "previous report"
    assert (out / build.MANIFEST).read_text() == "index.html\n"
    assert sorted(p.name for p in out.iterdir()) == [build.MANIFEST, "index.html"]  # no staging


def test_a_full_disk_at_the_last_write_deletes_nothing(small, capsys, monkeypatch):
    folder, _ = small
    out = folder.parent / "out"
    previous_report(out)
    (out / "claims.csv").write_text("stale")  # listed: the next report would delete it
    (out / build.MANIFEST).write_text("index.html\nclaims.csv\n")
    monkeypatch.setattr(build.figures, "draw_figures", lambda results, folder: [])
    write_text = Path.write_text

    def manifest_fills_the_disk(self, *args, **kwargs):
        if self.name == build.MANIFEST:
            full_disk()
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", manifest_fills_the_disk)
    code, _, err = run_cli(capsys, folder, "--out", out)
    assert_refused(code, err, "No space left on device")
    assert (out / "index.html").read_text() == "previous report"
    assert (out / "claims.csv").read_text() == "stale"


# --- formula injection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, safe",
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-0.5", "-0.5"),  # a number written as text stays a number
        ("cutmix", "cutmix"),
        (-0.5, -0.5),
    ],
)
def test_spreadsheet_cells(value, safe):
    assert tables.spreadsheet_cell(value) == safe


def test_spreadsheet_safe_touches_text_columns_only():
    frame = pd.DataFrame({"arm": ["=1+1", "none"], "effect": [-0.5, 0.2]})
    safe = tables.spreadsheet_safe(frame)
    assert list(safe["arm"]) == ["'=1+1", "none"]
    assert list(safe["effect"]) == [-0.5, 0.2] and safe["effect"].dtype == float
    assert list(frame["arm"]) == ["=1+1", "none"]  # the input is not changed


# --- merging several folders ------------------------------------------------------------------


def split_folder(folder: Path, a: Path, b: Path, overlap: int = 2) -> pd.DataFrame:
    """Split a results folder's rows in two folders sharing `overlap` identical rows."""
    runs = pd.read_csv(folder / "runs.csv", dtype=str, keep_default_na=False)
    half = len(runs) // 2
    for target, part in [(a, runs.iloc[: half + overlap]), (b, runs.iloc[half:])]:
        target.mkdir()
        part.to_csv(target / "runs.csv", index=False)
        for file in ["epochs.csv", "calibration.csv", "robustness.csv"]:
            side = pd.read_csv(folder / file, dtype=str, keep_default_na=False)
            side[side["run_id"].isin(part["run_id"])].to_csv(target / file, index=False)
    return runs


def test_a_merged_report_covers_both_folders_and_defuses_formulas(small, capsys):
    folder, _ = small
    text = (folder / "runs.csv").read_text().replace(",mixup,", ',"=HYPERLINK(""x"")",')
    (folder / "runs.csv").write_text(text)
    a, b, out = folder.parent / "a", folder.parent / "b", folder.parent / "merged"
    runs = split_folder(folder, a, b)
    code, stdout, err = run_cli(capsys, a, b, "--out", out)
    assert code == 0, err
    assert "Merged from 2 results folders" in err and "2 identical duplicate row(s)" in err
    summary = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False)
    assert '\'=HYPERLINK("x")' in set(summary["arm"])
    assert not any(v.startswith("=") for c in summary.columns for v in summary[c])
    assert int(summary["n"].astype(int).sum()) == len(runs)  # every cell once
    assert "results folders" in (out / "report.md").read_text()


def test_conflicting_duplicates_are_refused_naming_both_folders(small, capsys):
    folder, _ = small
    a, b = folder.parent / "a", folder.parent / "b"
    runs = split_folder(folder, a, b)
    shared = runs["run_id"].iloc[len(runs) // 2]
    edit_runs(b, 0, "test_acc", "0.1234")
    code, _, err = run_cli(capsys, a, b, "--out", folder.parent / "out")
    assert_refused(code, err, shared, str(a), str(b), "test_acc", "different values")
    assert not (folder.parent / "out").exists()


def test_reruns_differing_only_in_environment_columns_merge_keeping_the_first(small, capsys):
    folder, _ = small
    a, b, out = folder.parent / "a", folder.parent / "b", folder.parent / "merged"
    runs = split_folder(folder, a, b)
    shared = runs["run_id"].iloc[len(runs) // 2]
    kept_speed = runs.loc[runs["run_id"] == shared, "train_images_per_s"].iloc[0]
    b_runs = pd.read_csv(b / "runs.csv", dtype=str, keep_default_na=False)
    b_runs.loc[0, ["train_images_per_s", "wall_s", "device", "started_at"]] = [
        "1.5", "999.0", "cpu:other-host", "2030-01-01T00:00:00+00:00",
    ]  # fmt: skip
    b_runs.to_csv(b / "runs.csv", index=False)
    epochs = pd.read_csv(b / "epochs.csv", dtype=str, keep_default_na=False)
    mine = epochs["run_id"] == shared
    assert mine.any()
    epochs.loc[mine, "wall_s"] = "123.0"  # the rerun's own side rows: never mixed in
    epochs.to_csv(b / "epochs.csv", index=False)
    code, _, err = run_cli(capsys, a, b, "--out", out)
    assert code == 0, err
    assert "1 rerun(s) of a cell that differ only in where, when or how fast" in err
    assert "the row of the first folder given is kept" in err
    from bench.report.load import load_results

    merged = load_results([a, b])
    row = merged.runs[merged.runs["run_id"] == shared].iloc[0]
    assert len(merged.runs) == len(runs) and float(row["train_images_per_s"]) == float(kept_speed)
    assert "123.0" not in set(
        merged.epochs.loc[merged.epochs["run_id"] == shared, "wall_s"].astype(str)
    )
    # the other order keeps the other folder's row
    other = load_results([b, a])
    assert float(other.runs.set_index("run_id").loc[shared, "train_images_per_s"]) == 1.5


def test_merging_different_sweeps_is_refused(tmp_path, capsys):
    make_results(tmp_path / "a", sweep="one", **SMALL)
    make_results(tmp_path / "b", sweep="two", **SMALL)
    code, _, err = run_cli(capsys, tmp_path / "a", tmp_path / "b", "--out", tmp_path / "out")
    assert_refused(code, err, "'one'", "'two'", str(tmp_path / "a"), str(tmp_path / "b"))


def test_merging_needs_out_and_distinct_folders(small, capsys, monkeypatch):
    folder, _ = small
    monkeypatch.chdir(folder.parent)
    code, _, err = run_cli(capsys, folder, folder.parent / "results")
    assert_refused(code, err, "--out")
    code, _, err = run_cli(capsys, folder, "results", "--out", "x")
    assert_refused(code, err, "given twice")
    assert sorted(p.name for p in folder.parent.iterdir()) == ["results"]


# --- fuzz: a couple hundred bad folders -------------------------------------------------------


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _set(rows, rng, columns, value):
    header = rows[0]
    name = rng.choice([c for c in columns if c in header])
    rows[rng.randrange(1, len(rows))][header.index(name)] = value
    return rows


def _bounded(file: str) -> list[schema.Column]:
    return [c for c in schema.DECLARED[file] if c.low is not None or c.high is not None]


def _mutations(file: str):
    """(name, rows -> rows or bytes) for one file: every one must be refused."""
    declared = schema.DECLARED[file]
    numeric = [c.name for c in declared if c.dtype != "text" and c.kind != "environment"]
    ints = [c.name for c in declared if c.dtype == "int" and c.kind != "environment"]
    finite = [c.name for c in declared if c.dtype != "text" and c.kind in ("configuration", "key")]
    required = [c.name for c in declared if c.required]

    def bad_number(rows, rng):
        value = rng.choice(["abc", "1.2.3", "--1", "1e", "TRUE", "½", "1,5", "12%", "x" * 200_000])
        return _set(rows, rng, numeric, value)

    def out_of_range(rows, rng):
        column = rng.choice([c for c in _bounded(file) if c.name in rows[0]])
        value = (
            column.high + rng.choice([0.5, 99.0, float("inf")])
            if column.high is not None and rng.random() < 0.5
            else column.low - rng.choice([0.5, 1e6, float("inf")])
        )
        return _set(rows, rng, [column.name], repr(value))

    def non_integer(rows, rng):
        return _set(rows, rng, ints, rng.choice(["1.5", "2.25", "1e-3"]))

    def non_finite(rows, rng):
        return _set(rows, rng, finite, rng.choice(["nan", "inf", "-inf", "NaN"]))

    def missing_column(rows, rng):
        index = rows[0].index(rng.choice(required))
        return [row[:index] + row[index + 1 :] for row in rows]

    def duplicate_row(rows, rng):
        return [*rows, list(rng.choice(rows[1:]))]

    def ragged(rows, rng):
        row = rows[rng.randrange(1, len(rows))]
        if rng.random() < 0.5:
            row.append("surplus")
        else:
            del row[rng.randrange(1, len(row)) :]
        return rows

    def not_utf8(rows, rng):
        data = _text(rows).encode()
        at = rng.randrange(len(data.split(b"\n")[0]) + 1, len(data) - 1)
        return data[:at] + rng.choice([b"\xff", b"\xe9t\xe9", b"\xc3\x28", b"\x80"]) + data[at:]

    def control_characters(rows, rng):
        evil = rng.choice(["\x1b[2J", "\r\nregbench report: wrote x", "\x00", "\x07\b"])
        rows = _set(rows, rng, ["run_id"], "id" + evil)
        return bad_number(rows, rng)

    def empty(rows, rng):
        return rng.choice([b"", b"\xef\xbb\xbf", (",".join(rows[0]) + "\n").encode()])

    found = [bad_number, out_of_range, non_integer, non_finite, missing_column, duplicate_row,
             ragged, not_utf8, control_characters]  # fmt: skip
    if file == schema.RUNS_FILE:

        def runs_only(rows, rng):
            column, value = rng.choice(
                [("status", "running"), ("status", "ok" * 100_000), ("sweep", "other"),
                 ("run_id", ""), ("protocol", ""), ("regularizer_params", "[1, 2]"),
                 ("regularizer_params", "{" * 5000), ("status", "ok\x1b[31m\nFAKE")]
            )  # fmt: skip
            return _set(rows, rng, [column], value)

        found += [empty, runs_only]
    if file != schema.RUNS_FILE:
        found.remove(duplicate_row)  # a repeated side row is refused: kept in the list below
        found.append(lambda rows, rng: [*rows, list(rows[1])])
    return found


def test_fuzz_bad_results_folders(tmp_path, capsys, monkeypatch):
    base = tmp_path / "base"
    make_results(base, **SMALL)
    originals = {p.name: p.read_text() for p in base.iterdir()}
    monkeypatch.chdir(tmp_path)  # a default reports/ here would show up below
    rng = random.Random(15)
    cases = [(file, mutate) for file in schema.DECLARED for mutate in _mutations(file)]
    tried = 0
    for index in range(200):
        file, mutate = cases[index % len(cases)]
        case = tmp_path / f"case{index}"
        folder, out = case / "results", case / "out"
        folder.mkdir(parents=True)
        for name, text in originals.items():
            (folder / name).write_text(text)
        mutated = mutate(_rows(originals[file]), rng)
        data = mutated if isinstance(mutated, bytes) else _text(mutated).encode()
        (folder / file).write_bytes(data)
        before = {p: p.read_bytes() for p in folder.iterdir()}
        code, stdout, err = run_cli(capsys, folder, "--out", out)
        what = f"case {index}: {file} {getattr(mutate, '__name__', 'repeat')}"
        assert code == 2, (what, err)
        assert stdout == "" and "Traceback" not in err, (what, err)
        assert len(err.strip().splitlines()) == 1, (what, err)
        assert all(c.isprintable() for c in err.strip()), (what, err)
        assert {p: p.read_bytes() for p in folder.iterdir()} == before, what
        assert not out.exists(), what  # refused at load: nothing drawn, nothing written
        tried += 1
    assert tried == 200
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("case")) == ["base"]
