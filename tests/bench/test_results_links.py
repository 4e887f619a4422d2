"""No symbolic link is followed out of a results folder (issue 27): a hostile fork commits
`results/<sweep>/logs/` and can plant a link anywhere in it. Each path a sweep writes gets a link
to a decoy outside the folder: `sweep run` (and `sweep status`) refuse the folder with a named
error and the decoy is untouched. A link that points inside the folder is replaced by a real
file or folder. Links planted after the check (between the check and the write) are refused by
the writers themselves (bench.results.safe_path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.cli.sweep import main
from bench.config import RunConfig
from bench.executors.base import LiveFiles, Recorder, tensorboard_run_name
from bench.results import ResultsDir, UnsafePathError, check_links, safe_path
from bench.rows import CellResult
from bench.sweep import load_sweep

ONE_CELL = """
name = "links"
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


def sweep_file(tmp_path: Path, text: str = ONE_CELL) -> tuple[Path, str]:
    path = tmp_path / "links.toml"
    path.write_text(text)
    return path, load_sweep(path).cells[0].run_id


def board_name(path: Path) -> str:
    """The TensorBoard run folder of the sweep file's one cell."""
    return tensorboard_run_name(load_sweep(path).cells[0])


def snapshot(decoy: Path) -> dict[str, bytes]:
    """Every file under `decoy` (or `decoy` itself) with its bytes."""
    if decoy.is_file():
        return {decoy.name: decoy.read_bytes()}
    return {str(p.relative_to(decoy)): p.read_bytes() for p in sorted(decoy.rglob("*"))}


def make_decoy(tmp_path: Path, folder: bool) -> Path:
    decoy = tmp_path / "decoy"
    if folder:
        decoy.mkdir()
        (decoy / "events.out.tfevents.1.victim").write_bytes(b"the owner's events")
        (decoy / "precious.txt").write_text("do not touch")
    else:
        decoy.write_text("the owner's file\n")
    return decoy


# path in the results folder ({id}: the cell's run_id; {board}: its TensorBoard run folder)
# -> (decoy is a folder, extra flags)
PLANTED = {
    "logs/{id}.log": (False, []),
    "logs": (True, []),
    "tensorboard/{board}": (True, ["--tensorboard"]),
    "tensorboard": (True, ["--tensorboard"]),
    "logits": (True, ["--set", "save_logits=true"]),
    "models": (True, ["--keep-best-model"]),
    "outcomes": (True, []),
    "search": (True, []),
    "runs.csv": (False, []),
    "epochs.csv": (False, []),
    "search/logs/{id}.log": (False, []),
}


@pytest.mark.parametrize("planted", list(PLANTED))
def test_a_link_out_of_the_results_folder_is_refused_and_its_target_untouched(
    tmp_path: Path, capsys, planted: str
) -> None:
    folder_decoy, flags = PLANTED[planted]
    path, run_id = sweep_file(tmp_path, ONE_CELL + (SEARCH if planted.startswith("search") else ""))
    results = tmp_path / "results"
    link = results / planted.format(id=run_id, board=board_name(path))
    link.parent.mkdir(parents=True)
    decoy = make_decoy(tmp_path, folder_decoy)
    link.symlink_to(decoy)
    before = snapshot(decoy)
    for verb in (["status"], ["run", "--no-progress", *flags]):
        assert main([verb[0], str(path), "--results-dir", str(results), *verb[1:]]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"{link}: a symbolic link to {decoy}, outside the results folder" in err
        assert "regbench follows no link out of a results folder" in err
    assert snapshot(decoy) == before
    assert link.is_symlink()  # refused as it is: nothing replaced, nothing written
    assert not (results / "runs.csv").is_file() or planted == "runs.csv"


def test_links_inside_the_folder_are_replaced_by_real_files_and_folders(
    tmp_path: Path, capsys
) -> None:
    path, run_id = sweep_file(tmp_path)
    results = tmp_path / "results"
    (results / "logs").mkdir(parents=True)
    (results / "notes.txt").write_text("the owner's notes\n")
    (results / "logs" / f"{run_id}.log").symlink_to("../notes.txt")
    (results / "kept").mkdir()
    (results / "kept" / "events.out.tfevents.1.mine").write_bytes(b"kept")
    (results / "tensorboard").mkdir()
    (results / "tensorboard" / board_name(path)).symlink_to("../kept")
    argv = ["run", str(path), "--results-dir", str(results), "--no-progress", "--tensorboard"]
    assert main(argv) == 0, capsys.readouterr().err
    log = results / "logs" / f"{run_id}.log"
    assert not log.is_symlink() and f"cell {run_id} finished: ok" in log.read_text()
    assert (results / "notes.txt").read_text() == "the owner's notes\n"
    board = results / "tensorboard" / board_name(path)
    assert board.is_dir() and not board.is_symlink() and list(board.glob("events.out.*"))
    assert [p.name for p in (results / "kept").iterdir()] == ["events.out.tfevents.1.mine"]


# ---------------------------------------------------------------------------------------------
# Links planted after the folder was checked: the writers refuse them themselves


CELL = RunConfig(
    sweep="links", dataset="synthetic", backbone="test_resnet", pretrained="none",
    protocol="frozen", epochs=1, batch_size=32, image_size=16, train_size=64, val_size=32,
    test_size=32, train_eval_size=32, robustness_size=16, device="cpu",
)  # fmt: skip


def failed_cell() -> CellResult:
    from bench.executors.base import failed_result

    result = failed_result(CELL, "boom", 0.0)
    result.log = "a log\n"
    return result


def test_recorder_refuses_a_log_link_planted_after_the_check(tmp_path: Path) -> None:
    decoy = make_decoy(tmp_path, folder=False)
    with ResultsDir(tmp_path / "r").lock() as results:
        (results.path / "logs").mkdir()
        (results.path / "logs" / f"{CELL.run_id}.log").symlink_to(decoy)
        with pytest.raises(UnsafePathError, match="outside the results folder"):
            Recorder(results, None, keep_best_model=False)(CELL, failed_cell())
    assert decoy.read_text() == "the owner's file\n"


def test_results_writer_refuses_a_logits_link_planted_after_the_check(tmp_path: Path) -> None:
    import numpy as np

    decoy = make_decoy(tmp_path, folder=True)
    before = snapshot(decoy)
    result = failed_cell()
    result.test_logits = np.zeros((2, 10), np.float16)
    with ResultsDir(tmp_path / "r").lock() as results:
        (results.path / "logits").symlink_to(decoy)
        with pytest.raises(UnsafePathError, match="outside the results folder"):
            results.write(result)
    assert snapshot(decoy) == before and not (tmp_path / "r" / "runs.csv").exists()


def test_live_log_and_tensorboard_never_open_a_link_out(tmp_path: Path) -> None:
    from bench.executors.base import CellLog

    file_decoy, folder_decoy = make_decoy(tmp_path, folder=False), tmp_path / "board"
    folder_decoy.mkdir()
    (folder_decoy / "events.out.tfevents.1.x").write_bytes(b"x")
    results = ResultsDir(tmp_path / "r")
    live = LiveFiles.prepare(results, tensorboard=True)
    (results.path / "logs" / f"{CELL.run_id}.log").symlink_to(file_decoy)
    (results.path / "tensorboard" / tensorboard_run_name(CELL)).symlink_to(folder_decoy)
    assert live.log_path(CELL) is None  # no live file: the text still comes back with the result
    with pytest.raises(UnsafePathError):
        live.tensorboard_path(CELL)
    log = CellLog(CELL, results.path / "logs" / f"{CELL.run_id}.log")  # O_NOFOLLOW
    log.finish({"status": "ok"})
    assert file_decoy.read_text() == "the owner's file\n"
    assert [p.name for p in folder_decoy.iterdir()] == ["events.out.tfevents.1.x"]


def test_safe_path(tmp_path: Path) -> None:
    root = tmp_path / "r"
    outside = make_decoy(tmp_path, folder=True)
    (root / "a").mkdir(parents=True)
    (root / "a" / "out").symlink_to(outside)
    (root / "in").symlink_to(root / "a")
    (root / "file").write_text("x")
    os.mkfifo(root / "fifo")
    for create in (False, True):
        with pytest.raises(UnsafePathError, match="outside the results folder"):
            safe_path(root, "a", "out", "x.log", create=create)
    with pytest.raises(UnsafePathError, match="not a folder"):
        safe_path(root, "file", "x.log", create=True)
    with pytest.raises(UnsafePathError, match="not a regular file"):
        safe_path(root, "fifo")
    assert safe_path(root, "in", "x.log") == root / "in" / "x.log"  # a reader: left as it is
    assert (root / "in").is_symlink()
    assert safe_path(root, "in", "x.log", create=True) == root / "in" / "x.log"
    assert (root / "in").is_dir() and not (root / "in").is_symlink()  # a writer: replaced
    assert safe_path(root, "new", "deep", folder=True, create=True).is_dir()
    with pytest.raises(UnsafePathError, match=str(root / "a" / "out")):
        check_links(root)
    (root / "a" / "out").unlink()
    check_links(root)  # nothing left that leads out
    assert snapshot(outside) == {"events.out.tfevents.1.victim": b"the owner's events",
                                 "precious.txt": b"do not touch"}  # fmt: skip
