"""bench/report/outcomes.py: the per-image outcome files, read as untrusted; a hostile file is
refused with its reason, a run id that is not a plain name never becomes a path."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
from report_fixtures import make_results

from bench.report import outcomes
from bench.report.load import load_results
from bench.report.outcomes import OutcomeError, read_outcomes

ARMS = [("none", "constant"), ("cutmix", "constant")]


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_hostile_outcome_files_are_refused(tmp_path):
    good = {"label": np.zeros(5, np.uint8), "pred": np.zeros(5, np.uint8),
            "conf": np.full(5, 0.5, np.float16)}  # fmt: skip
    assert read_outcomes(_save(tmp_path / "good.npz", **good))["label"].shape == (5,)
    cases = {
        "garbage": None,
        "pickled": {**good, "conf": np.array([object()] * 5, dtype=object)},
        "extra key": {**good, "extra": np.zeros(5)},
        "missing key": {k: v for k, v in good.items() if k != "conf"},
        "2-D": {**good, "pred": np.zeros((5, 2), np.uint8)},
        "lengths differ": {**good, "pred": np.zeros(4, np.uint8)},
        "empty": {k: v[:0] for k, v in good.items()},
        "float labels": {**good, "label": np.zeros(5, np.float32)},
        "negative": {**good, "pred": np.full(5, -1, np.int16)},
        "nan conf": {**good, "conf": np.full(5, np.nan, np.float16)},
        "conf above 1": {**good, "conf": np.full(5, 2.0, np.float16)},
        "int conf": {**good, "conf": np.ones(5, np.int8)},
    }
    for name, arrays in cases.items():
        path = tmp_path / f"{name}.npz"
        if arrays is None:
            path.write_bytes(os.urandom(64))
        else:
            np.savez(path, **arrays)
        with pytest.raises(OutcomeError):
            read_outcomes(path)
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "good.npz")
    with pytest.raises(OutcomeError, match="symbolic link"):
        read_outcomes(link)
    bomb = tmp_path / "bomb.npz"  # declares 1 GiB unpacked: refused before anything is read
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for key in ("label", "pred"):
            archive.writestr(f"{key}.npy", b"")
        archive.writestr("conf.npy", b"\0" * (2**26 + 1))
    with pytest.raises(OutcomeError, match="larger than"):
        read_outcomes(bomb)


def test_a_run_id_that_is_not_a_plain_name_is_never_a_path(tmp_path):
    runs = make_results(tmp_path / "results", arms=ARMS, protocols=("frozen",), seeds=(0, 1))
    runs.loc[0, "run_id"] = "../../outside"
    runs.to_csv(tmp_path / "results" / "runs.csv", index=False)
    (tmp_path / "outside.npz").write_bytes(b"not read")
    results = load_results(tmp_path / "results")
    assert "../../outside" not in results.outcomes and not results.notes[-1].startswith("1 out")


def test_a_refused_file_is_left_out_with_a_note_and_the_others_are_read(tmp_path):
    good = {"label": np.zeros(5, np.uint8), "pred": np.zeros(5, np.uint8),
            "conf": np.full(5, 0.5, np.float16)}  # fmt: skip
    (tmp_path / "outcomes").mkdir()
    np.savez(tmp_path / "outcomes" / "a.npz", **good)
    (tmp_path / "outcomes" / "b.npz").write_bytes(b"PK\x03\x04 not a zip")
    read, notes = outcomes.read_all(["a", "b", "c"], [tmp_path])  # c: no file, no note
    assert list(read) == ["a"]
    assert (
        len(notes) == 1 and notes[0].startswith("1 outcomes file(s) refused") and "'b'" in notes[0]
    )
    again, none = outcomes.read_all(["a"], [tmp_path])
    assert list(again) == ["a"] and none == []  # nothing refused: no note
