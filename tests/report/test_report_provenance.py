"""bench.report.provenance: the data, code version and sweep file of a report's rows, "not
recorded" (never guessed) where runs.csv predates a column."""

from __future__ import annotations

import pandas as pd

from bench.report.provenance import NOT_RECORDED, provenance


def test_results_without_the_columns_say_not_recorded():
    runs = pd.DataFrame({"run_id": ["a", "b"], "git_commit": ["", ""]})
    found = provenance(runs)
    assert found.data == NOT_RECORDED and found.sweep_file == NOT_RECORDED
    assert found.code == NOT_RECORDED
    assert "offline" not in found.caption() and "official" not in found.caption()


def test_recorded_provenance_is_shown_with_the_dirty_flag_and_gaps():
    runs = pd.DataFrame({
        "run_id": ["a", "b", "c"],
        "data_source": ["offline JPEG copy"] * 3,
        "data_fingerprint": ["0123456789abcdef"] * 3,
        "git_commit": ["149f4c3d88aa", "149f4c3d88aa-dirty", "149f4c3d88aa"],
        "sweep_file_sha256": ["abcdefabcdef", "abcdefabcdef", ""],
    })  # fmt: skip
    found = provenance(runs)
    assert found.data == "offline JPEG copy, fingerprint 0123456789abcdef"
    assert found.code == (
        "149f4c3d88aa (2 cells), 149f4c3d88aa-dirty (1 cells) (1 cells ran with uncommitted "
        "changes)"
    )
    assert found.sweep_file == "sha256 abcdefabcdef; 1 cells not recorded"
    assert dict(found.facts())["data"] == found.data
    assert found.caption().startswith("Data: offline JPEG copy")


def test_committed_report_setup_shows_provenance(tmp_path):
    from pathlib import Path

    from bench.report import build_report

    results = Path(__file__).resolve().parents[2] / "results" / "app-demo"
    if not (results / "runs.csv").is_file():
        import pytest

        pytest.skip("results/app-demo is absent")
    index = build_report(results, tmp_path / "report")
    text = (index.parent / "report.md").read_text()
    assert "| data | not recorded |" in text and "| sweep file | not recorded |" in text
    assert "| code version |" in text
