"""`regbench` itself: --version, a description in every subcommand's --help, and the README's
example folders ignored by git."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import cli

REPO = Path(__file__).resolve().parents[2]
# every subcommand, with its sub-subcommands
HELP_PATHS = [[name] for name in cli.SUBCOMMANDS if name != "sweep"] + [
    ["sweep", "run"],
    ["sweep", "status"],
]


def test_version_prints_the_package_version(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    declared = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]
    assert out == f"regbench {declared}" or out.startswith("regbench (not installed")
    assert cli.main(["-V"]) == 0 and capsys.readouterr().out.strip() == out
    assert "--version" in cli.usage()


@pytest.mark.parametrize("path", HELP_PATHS, ids=" ".join)
def test_every_subcommand_help_has_a_description(path, capsys):
    try:
        code = cli.main([*path, "--help"])
    except SystemExit as exited:  # argparse's own exit (most subcommands)
        code = exited.code
    assert code == 0
    text = capsys.readouterr().out
    # argparse prints: usage (maybe wrapped), a blank line, the description, then the arguments
    blocks = re.split(r"\n\s*\n", text.strip())
    assert blocks[0].startswith("usage:")
    description = blocks[1]
    assert not description.startswith(("positional arguments:", "options:")), text[:400]
    assert len(description.split()) >= 5


def test_the_readme_example_folders_are_ignored_by_git():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (or no git): .gitignore cannot be asked")
    readme = (REPO / "README.md").read_text()
    folders = set(re.findall(r"--(?:results-dir|out)\s+((?:results|reports)/[\w.-]+)", readme))
    folders.add("results/adhoc")  # `regbench run`'s default --results-dir
    assert {"results/adhoc", "results/mine", "reports/mine"} <= folders
    for folder in sorted(folders):
        probe = f"{folder}/runs.csv"
        ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", probe])
        assert ignored.returncode == 0, f"{folder} is not ignored by git"
    # ... while the committed results stay tracked
    kept = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", "results/cpu-quick/runs.csv"]
    )
    assert kept.returncode == 1


def test_readme_quotes_the_cost_model_and_status_as_the_tools_print_them(capsys):
    """The README's cpu-quick times are copied from `sweep status` on the committed results;
    a change of the cost model (or of those results) must show up here, not drift silently."""
    from bench.cli.sweep import main as sweep_main

    if not (REPO / "results" / "cpu-quick" / "runs.csv").is_file():
        pytest.skip("the committed results/cpu-quick are absent")
    assert sweep_main(["status", str(REPO / "sweeps" / "cpu-quick.toml"), "--results-dir",
                       str(REPO / "results" / "cpu-quick")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    estimate = re.search(r"estimated cost: (\S+) for all cells", out)[1]
    measured = re.search(r"cells finished ok: (.+ \(\d+\.\d+x the estimate\))", out)[1]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"`estimated cost: {estimate}`" in readme
    assert f"`{measured}`" in readme
