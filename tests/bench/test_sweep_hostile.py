"""Hostile or careless input to `regbench sweep` (issue 27): each case ends in one line on
stderr naming the problem and the fix, exit code 2, before anything runs; no traceback, no
crash, no hang. `sweep status` and `sweep run` share one validation of the results folder, so a
folder that run refuses is never called complete."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from bench.cli.sweep import main
from bench.sweep import MAX_SWEEP_BYTES, SweepError, load_sweep

SWEEP = """
name = "hostile"
[defaults]
dataset = "synthetic"
backbone = "test_resnet"
pretrained = "none"
device = "cpu"
image_size = 16
train_size = 64
val_size = 32
test_size = 32
train_eval_size = 32
robustness_size = 16
batch_size = 32
epochs = 1
[axes]
seed = [0]
"""
SEARCH = """
[search]
seeds = [7]
[search.space]
lr = [0.01, 0.1]
"""


def write(tmp_path: Path, text: str = SWEEP) -> Path:
    path = tmp_path / "hostile.toml"
    path.write_text(textwrap.dedent(text))
    return path


def refused(capsys, argv: list[str], *fragments: str) -> str:
    """Run the CLI: exit 2, one line on stderr holding every fragment, no traceback."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


# ---------------------------------------------------------------------------------------------
# The sweep file: not a regular file, too large, a BOM


def test_a_fifo_as_the_sweep_file_is_refused_without_waiting_for_a_writer(
    tmp_path: Path, capsys
) -> None:
    fifo = tmp_path / "s.toml"
    os.mkfifo(fifo)
    refused(capsys, ["run", fifo], f"{fifo}: a FIFO, not a regular file; give a sweep file")
    refused(capsys, ["status", fifo], "a FIFO, not a regular file")


def test_dev_zero_and_a_huge_file_are_refused_before_reading(tmp_path: Path, capsys) -> None:
    refused(capsys, ["status", "/dev/zero"], "/dev/zero: a device, not a regular file")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_SWEEP_BYTES + 1))
    refused(capsys, ["run", big], f"larger than {MAX_SWEEP_BYTES} bytes")
    with pytest.raises(SweepError, match="is a folder"):
        load_sweep(tmp_path)


def test_a_sweep_file_with_a_bom_loads_like_one_without(tmp_path: Path) -> None:
    plain = load_sweep(write(tmp_path))
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + textwrap.dedent(SWEEP).encode())
    assert [c.run_id for c in load_sweep(path).cells] == [c.run_id for c in plain.cells]


# ---------------------------------------------------------------------------------------------
# Implausible values: the bound is in the message


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("lr = { low = 1e-3, high = 1e300, log = true }", "lr=1e+300 is invalid; allowed: a "
         "number > 0 and <= 10"),
        ("lr = { low = 1e-3, high = 1e308 }", "lr=1e+308 is invalid"),
        ("weight_decay = { low = 0.0, high = 1e300 }", "weight_decay=1e+300 is invalid; allowed:"
         " a number >= 0 and <= 1"),
        ("warmup_epochs = [0.5, 1e12]", "warmup_epochs=1000000000000.0 is invalid"),
        ("alpha = { low = 0.1, high = 1e300, log = true }", "alpha must be a number in (0.0, "
         "100.0], got 1e+300"),
    ],
)  # fmt: skip
def test_search_ranges_beyond_plausible_bounds_are_refused(tmp_path: Path, space, message) -> None:
    text = SWEEP.replace("[axes]\nseed = [0]\n", "[axes]\nseed = [0]\n[[axes.arm]]\n"
                         "regularizer = \"mixup\"\n")  # fmt: skip
    path = write(
        tmp_path, text + f'[search]\nmethod = "random"\ntrials = 2\n[search.space]\n{space}\n'
    )
    with pytest.raises(SweepError) as caught:
        load_sweep(path)
    assert message in str(caught.value)


@pytest.mark.parametrize("seed", ["-1", str(2**32), str(2**70)])
def test_the_search_seed_is_bounded_like_a_run_seed(tmp_path: Path, seed: str) -> None:
    path = write(tmp_path, SWEEP + SEARCH.replace("seeds = [7]", f"seed = {seed}"))
    with pytest.raises(SweepError, match=f"search.seed: got {seed}; give an integer >= 0 and < "
                       "4294967296"):  # fmt: skip
        load_sweep(path)


def test_cpus_per_cell_beyond_this_machine_is_refused_in_the_file_and_the_flag(
    tmp_path: Path, capsys
) -> None:
    cpus = os.cpu_count()
    path = write(tmp_path, SWEEP + '[executor]\nname = "local"\ncpus_per_cell = 100000\n')
    refused(capsys, ["run", path, "--results-dir", tmp_path / "r"], f"<= {cpus} (this machine")
    path = write(tmp_path)
    refused(capsys, ["run", path, "--results-dir", tmp_path / "r", "--cpus-per-cell", 100000],
            "--cpus-per-cell: expected an integer >= 1 and <= ", "got 100000")  # fmt: skip
    assert not (tmp_path / "r").exists()  # nothing ran, no lock left behind


# ---------------------------------------------------------------------------------------------
# Executors that cannot run here: named in seconds


def test_slurm_folder_naming_a_file_is_refused(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = ["run", write(tmp_path), "--results-dir", tmp_path / "r", "--executor", "slurm"]
    refused(capsys, [*argv, "--slurm-folder", afile], f"--slurm-folder: {afile} is a file")
    refused(capsys, [*argv, "--slurm-folder", afile / "sub"], f"{afile} is a file, not a folder")


@pytest.mark.skipif(bool(shutil.which("srun")), reason="SLURM is installed here")
def test_slurm_without_slurm_names_the_fix(tmp_path: Path, capsys) -> None:
    pytest.importorskip("submitit")
    argv = ["run", write(tmp_path), "--results-dir", tmp_path / "r", "--executor", "slurm"]
    refused(capsys, [*argv, "--no-progress"], "no SLURM here (srun/sbatch not on the PATH)",
            "--executor local")  # fmt: skip
    assert not (tmp_path / "r" / "runs.csv").exists() and not (tmp_path / "r" / ".lock").exists()
    assert not (tmp_path / "r" / "submitit").exists()  # stopped before anything was written


@pytest.mark.parametrize("address", ["not-an-address", "http://x", "host:99999", "a b:1"])
def test_a_malformed_ray_address_is_refused(tmp_path: Path, capsys, address: str) -> None:
    pytest.importorskip("ray")
    argv = ["run", write(tmp_path), "--results-dir", tmp_path / "r", "--executor", "ray"]
    refused(capsys, [*argv, "--ray-address", address], f"--ray-address: {address!r} is not a Ray "
            "address", "HOST:PORT")  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_an_unreachable_ray_address_is_named_without_retrying(tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    argv = ["run", write(tmp_path), "--results-dir", tmp_path / "r", "--executor", "ray",
            "--ray-address", "127.0.0.1:1", "--no-progress"]  # fmt: skip
    refused(capsys, argv, "--ray-address 127.0.0.1:1: nothing answers there", "ray start --head")
    assert not (tmp_path / "r" / "runs.csv").exists() and not (tmp_path / "r" / ".lock").exists()


# ---------------------------------------------------------------------------------------------
# `sweep status` and `sweep run` agree


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> tuple[Path, Path]:
    """A one-cell sweep run once: (its sweep file, its results folder)."""
    tmp = tmp_path_factory.mktemp("done")
    path = write(tmp)
    assert main(["run", str(path), "--results-dir", str(tmp / "r"), "--no-progress"]) == 0
    return path, tmp / "r"


def edited(done: tuple[Path, Path], tmp_path: Path, change) -> Path:
    folder = tmp_path / "r"
    shutil.copytree(done[1], folder)
    runs = folder / "runs.csv"
    runs.write_bytes(change(runs.read_bytes()))
    return folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.replace(b",ok,", b",running,", 1), "status 'running', not one of ok, failed"),
        (lambda b: b.replace(b",hostile,", b",host\x00ile,", 1), "line 2 holds a NUL byte"),
        (lambda b: b.replace(b"status", b"state", 1), "no status column"),
    ],
)
def test_status_refuses_what_run_refuses(done, tmp_path: Path, capsys, change, message) -> None:
    folder = edited(done, tmp_path, change)
    before = (folder / "runs.csv").read_bytes()
    for verb in (["status"], ["run", "--no-progress"], ["run", "--dry-run"]):
        argv = [verb[0], done[0], "--results-dir", folder, *verb[1:]]
        refused(capsys, argv, f"{folder / 'runs.csv'}: ", message)
    assert (folder / "runs.csv").read_bytes() == before and not (folder / ".lock").exists()


def test_a_bom_in_runs_csv_is_read_by_status_and_run_alike(done, tmp_path: Path, capsys) -> None:
    folder = edited(done, tmp_path, lambda b: b"\xef\xbb\xbf" + b)
    assert main(["status", str(done[0]), "--results-dir", str(folder)]) == 0
    assert "1 done, 0 failed, 0 remaining" in capsys.readouterr().out
    assert main(["run", str(done[0]), "--results-dir", str(folder), "--no-progress"]) == 0
    assert "0 ok, 0 failed, 1 skipped" in capsys.readouterr().out


def test_a_flipped_selection_in_search_csv_is_refused_by_status_and_run(
    tmp_path: Path, capsys
) -> None:
    path = write(tmp_path, SWEEP + SEARCH)
    folder = tmp_path / "r"
    assert main(["run", str(path), "--results-dir", str(folder), "--no-progress"]) == 0
    assert main(["status", str(path), "--results-dir", str(folder)]) == 0
    assert "1 done, 0 failed, 0 remaining" in capsys.readouterr().out
    search = folder / "search.csv"
    lines = search.read_text().splitlines()
    column = lines[0].split(",").index("selected")
    flipped = [lines[0]]
    for line in lines[1:]:
        fields = line.split(",")
        fields[column] = "1" if fields[column] == "0" else "0"
        flipped.append(",".join(fields))
    search.write_text("\n".join(flipped) + "\n")
    for verb in (["status"], ["run", "--no-progress"]):
        refused(capsys, [verb[0], path, "--results-dir", folder, *verb[1:]],
                "the search now selects other values than the cells already in runs.csv ran "
                "with")  # fmt: skip


def test_cpus_per_cell_on_a_cluster_is_bounded_by_a_node_not_by_this_machine() -> None:
    from bench.executors import ExecutorError, check_options
    from bench.executors.base import MAX_CPUS_PER_CELL

    pytest.importorskip("ray")
    more = (os.cpu_count() or 1) + 1
    assert check_options("ray", {"address": "head:6379", "cpus_per_cell": more})["cpus_per_cell"]
    with pytest.raises(ExecutorError, match=f"<= {MAX_CPUS_PER_CELL} \\(CPUs of one cluster"):
        check_options("ray", {"address": "head:6379", "cpus_per_cell": 100000})
    with pytest.raises(ExecutorError, match="this machine's CPUs"):  # a local Ray instance
        check_options("ray", {"cpus_per_cell": more})
    with pytest.raises(ExecutorError, match="this machine's CPUs"):
        check_options("local", {"cpus_per_cell": more})


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("slurm_time", 10**9, "--slurm-time: expected an integer >= 1 and <= 525600 (a year)"),
     ("slurm_gpus_per_task", 10**6, "--slurm-gpus-per-task: expected an integer >= 0 and <= 64"),
     ("slurm_array_parallelism", 0, "--slurm-array-parallelism: expected an integer >= 1")],
)  # fmt: skip
def test_slurm_numbers_have_plausible_bounds(option: str, value: int, message: str) -> None:
    from bench.executors import ExecutorError, check_options

    pytest.importorskip("submitit")
    with pytest.raises(ExecutorError) as caught:
        check_options("slurm", {option: value})
    assert str(caught.value).startswith(message) and f"got {value}" in str(caught.value)
