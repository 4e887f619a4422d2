"""The report writes and deletes only inside its folder, never through a link, and deletes only
files it writes itself, whatever an existing `.regbench-report` manifest lists (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import make_results

from bench.report import ReportInputError, build_report
from bench.report.build import MANIFEST, own_files


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("results")
    arms = [("none", "constant"), ("cutmix", "constant")]
    make_results(folder, arms=arms, protocols=("frozen",), seeds=(0, 1), robustness=False)
    return folder


def _outside(tmp_path: Path, name: str = "outside.txt") -> Path:
    victim = tmp_path / "elsewhere" / name
    victim.parent.mkdir(exist_ok=True)
    victim.write_text("keep me")
    return victim


def _forge(out: Path, *names: str) -> None:
    out.mkdir(exist_ok=True)
    (out / MANIFEST).write_text("\n".join(names) + "\n")


def _survives(victim: Path) -> None:
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in victim.parent.iterdir()) == [victim.name]  # nothing written


def test_an_absolute_path_in_the_manifest_is_not_deleted(tmp_path, results):
    victim = _outside(tmp_path)
    _forge(tmp_path / "report", str(victim))
    build_report(results, tmp_path / "report")
    _survives(victim)


def test_a_dotdot_path_in_the_manifest_is_not_deleted(tmp_path, results):
    victim = _outside(tmp_path)
    _forge(tmp_path / "report", "../elsewhere/outside.txt", "figures/../../elsewhere/outside.txt")
    build_report(results, tmp_path / "report")
    _survives(victim)


def test_a_path_through_a_linked_subfolder_is_not_deleted(tmp_path, results):
    victim = _outside(tmp_path, "summary.csv")  # a name the report writes, one folder down
    out = tmp_path / "report"
    _forge(out, "linked/summary.csv")
    (out / "linked").symlink_to(victim.parent, target_is_directory=True)
    build_report(results, out)
    _survives(victim)
    assert (out / "linked").is_symlink()


@pytest.mark.parametrize("sub", ["figures", "tables"])
def test_a_linked_figures_or_tables_folder_is_refused(tmp_path, results, sub):
    name = "gap.png" if sub == "figures" else "robustness.md"  # robustness.md would be stale
    victim = _outside(tmp_path, name)
    out = tmp_path / "report"
    _forge(out, f"{sub}/{name}")
    (out / sub).symlink_to(victim.parent, target_is_directory=True)
    with pytest.raises(ReportInputError, match="symbolic link"):
        build_report(results, out)
    _survives(victim)  # neither deleted nor written next to
    assert not list(out.glob(".staging-*"))


def test_user_files_with_innocent_names_are_not_deleted(tmp_path, results):
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    mine = [out / "notes.txt", out / "figures" / "my_plot.png", out / "data.csv"]
    for path in mine:
        path.write_text("mine")
    _forge(out, "notes.txt", "figures/my_plot.png", "data.csv", "", "figures")
    build_report(results, out)
    assert all(path.read_text() == "mine" for path in mine)
    written = (out / MANIFEST).read_text().split()
    assert set(written) <= own_files() and "index.html" in written


def test_a_linked_manifest_or_output_is_replaced_not_written_through(tmp_path, results):
    victim = _outside(tmp_path)
    out = tmp_path / "report"
    out.mkdir()
    (out / MANIFEST).symlink_to(victim)
    (out / "index.html").symlink_to(victim)
    build_report(results, out)
    _survives(victim)
    assert not (out / MANIFEST).is_symlink() and not (out / "index.html").is_symlink()
    assert "regbench report" in (out / "index.html").read_text()


def test_stale_own_files_are_still_removed(tmp_path, results):
    out = tmp_path / "report"
    build_report(results, out)
    stale = out / "figures" / "robustness_corruptions.png"  # these results have no robustness.csv
    stale.write_bytes(b"from an older report")
    with (out / MANIFEST).open("a") as manifest:
        manifest.write("figures/robustness_corruptions.png\n")
    build_report(results, out)
    assert not stale.exists()
