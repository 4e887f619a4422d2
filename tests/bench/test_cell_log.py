"""The log per cell (logs/<run_id>.log: configuration, progress, traceback; the row's `log`
column), the progress a cell reports (evaluation and robustness phases included, without
changing what it computes), the plain-text display (no cursor codes), --tensorboard, and a full
disk that stops the sweep without a failed row for a finished cell."""

from __future__ import annotations

import errno
import io
import sys
from pathlib import Path

import pytest
from measured import measured

from bench import rows, train
from bench.cli.progress import CellLines, cell_display
from bench.config import RunConfig
from bench.executors import DiskFullError, ExecutorError, base, check_options
from bench.executors.local import run_local
from bench.progress import CellProgress
from bench.results import ResultsDir

CELL = RunConfig(
    sweep="log-test", dataset="synthetic", backbone="test_resnet", pretrained="none",
    protocol="frozen", regularizer="none", epochs=1, batch_size=32, lr=0.05, image_size=16,
    train_size=64, val_size=32, test_size=32, train_eval_size=32, robustness_size=16,
    device="cpu",
)  # fmt: skip
OTHER = CELL.replace(seed=1)
REAL_TRAIN = train.train_cell


class Recording(CellProgress):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, cfg, total_steps, batch_size):
        self.calls.append(("start", total_steps, batch_size))

    def step(self, epoch, step, steps_per_epoch, loss):
        self.calls.append(("step", epoch, step, loss))

    def phase(self, name, part, done, total):
        self.calls.append(("phase", name, part, done, total))

    def epoch(self, epoch, row):
        self.calls.append(("epoch", epoch, row["test_acc"]))

    def close(self):
        self.calls.append(("close",))


def run(folder: Path, cells: list[RunConfig], **options) -> list[str]:
    statuses: list[str] = []
    with ResultsDir(folder).lock() as results:
        run_local(cells, results, on_result=lambda c, r: statuses.append(r.row["status"]),
                  **options)  # fmt: skip
    return statuses


def fake_ok(cfg, **kwargs):
    """A cell that finishes at once (nothing measured)."""
    row = rows.runs_row(cfg)
    row.update(measured(), status="ok")
    return rows.CellResult(row=row, epochs=[{"epoch": 1, "train_acc": 0.5, "test_acc": 0.5}])


def test_progress_reports_every_phase_and_changes_nothing() -> None:
    progress = Recording()
    shown = REAL_TRAIN(CELL, progress=progress)
    plain = REAL_TRAIN(CELL, progress=None)
    volatile = {"wall_s", "train_images_per_s", "eval_images_per_s", "regularizer_ms_per_batch",
                "robustness_s", "peak_mem_mb", "started_at", "train_s", "eval_s"}  # fmt: skip
    assert {k: v for k, v in shown.row.items() if k not in volatile} == {
        k: v for k, v in plain.row.items() if k not in volatile
    }
    kinds = [call[0] for call in progress.calls]
    assert kinds[0] == "start" and kinds[-1] == "close" and kinds.count("close") == 1
    assert kinds.count("step") == 2 and all(
        c[3] is not None for c in progress.calls if c[0] == "step"
    )
    phases = [c[1:] for c in progress.calls if c[0] == "phase"]
    assert phases[:4] == [("evaluation", "train", 0, 3), ("evaluation", "val", 1, 3),
                          ("evaluation", "test", 2, 3), ("evaluation", "", 3, 3)]  # fmt: skip
    robust = [p for p in phases if p[0] == "robustness"]
    assert robust[0] == ("robustness", "flip", 0, 7) and robust[-1] == ("robustness", "", 7, 7)
    assert ("epoch", 1, shown.row["test_acc"]) in progress.calls


def test_ok_and_failed_cells_each_get_a_log_the_row_points_to(tmp_path, monkeypatch) -> None:
    def train_or_fail(cfg, **kwargs):
        if cfg.run_id == OTHER.run_id:
            return deep_failure(3)
        return REAL_TRAIN(cfg, **kwargs)

    def deep_failure(depth):
        if depth == 0:
            raise RuntimeError("exploded deep inside")
        return deep_failure(depth - 1)

    monkeypatch.setattr("bench.train.train_cell", train_or_fail)
    stale = tmp_path / "logs" / f"{CELL.run_id}.log"
    stale.parent.mkdir(parents=True)
    stale.write_text("an old attempt that was killed\n")  # a rerun overwrites it
    assert run(tmp_path, [CELL, OTHER]) == ["ok", "failed"]
    runs = {row["run_id"]: row for row in ResultsDir(tmp_path).runs()}
    ok_log = (tmp_path / runs[CELL.run_id]["log"]).read_text()
    failed_log = (tmp_path / runs[OTHER.run_id]["log"]).read_text()
    assert runs[OTHER.run_id]["log"] == f"logs/{OTHER.run_id}.log"
    assert runs[OTHER.run_id]["error"] == "RuntimeError: exploded deep inside"  # unchanged
    assert "an old attempt" not in ok_log
    assert f"  seed = {CELL.seed}" in ok_log and '  backbone = "test_resnet"' in ok_log
    assert "epoch 1/1 done: train_loss_aug" in ok_log and "evaluation 2/3: val" in ok_log
    assert "robustness 3/7: gaussian_noise" in ok_log
    assert ok_log.splitlines()[-1].split("] ", 1)[1].startswith(f"cell {CELL.run_id} finished: ok")
    assert "Traceback" not in ok_log
    assert "Traceback (most recent call last)" in failed_log
    assert failed_log.count("in deep_failure") == 4  # the full traceback, every frame
    assert failed_log.rstrip().endswith("failed RuntimeError: exploded deep inside")
    assert not list((tmp_path / "logs").glob(".tmp-*"))


def test_the_live_log_grows_while_the_cell_runs(tmp_path) -> None:
    seen = {}

    class Peek(CellProgress):
        def epoch(self, epoch, row):
            path = tmp_path / "logs" / f"{CELL.run_id}.log"
            seen["text"] = path.read_text()
            seen["rows"] = ResultsDir(tmp_path).runs()

    assert run(tmp_path, [CELL], progress=lambda cfg: Peek()) == ["ok"]
    assert "configuration:" in seen["text"] and "training: 1 epochs" in seen["text"]
    assert f"cell {CELL.run_id} finished" not in seen["text"] and seen["rows"] == []


def test_plain_display_has_no_cursor_codes(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(cell_display(CELL), CellLines)  # stderr is not a terminal
    out = io.StringIO()
    REAL_TRAIN(CELL, progress=CellLines(CELL, out))
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert "evaluation 1/3: train" in text and "robustness 7/7: pixelate" in text
    assert "epoch 1/1 done: train_loss_aug" in text


def test_tensorboard_flag_fails_early_without_the_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ExecutorError, match="--tensorboard needs the tensorboard package: pip "
                       "install tensorboard"):  # fmt: skip
        check_options("local", {"tensorboard": True})
    assert check_options("local", {})["tensorboard"] is False  # off: nothing needed


def test_tensorboard_writes_one_run_folder_per_cell(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    assert run(tmp_path, [CELL], tensorboard=True) == ["ok"]
    (folder,) = (tmp_path / "tensorboard").iterdir()
    # named by arm and scope, with hyperparameters, the run_id last (unique)
    assert folder.name == f"none_frozen_n64_seed0_lr0.05_{CELL.run_id}"
    (events,) = folder.glob("events.out.tfevents.*")
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    hparams, tags = {}, set()
    for event in EventFileLoader(str(events)).Load():
        for value in event.summary.value:
            tags.add(value.tag)
            if value.metadata.plugin_data.plugin_name == "hparams":
                data = plugin_data_pb2.HParamsPluginData.FromString(
                    value.metadata.plugin_data.content
                )
                for name, entry in data.session_start_info.hparams.items():
                    hparams[name] = entry.WhichOneof("kind") and getattr(
                        entry, entry.WhichOneof("kind")
                    )
    assert hparams["arm"] == "none" and hparams["protocol"] == "frozen"
    assert hparams["lr"] == 0.05 and hparams["seed"] == 0 and hparams["run_id"] == CELL.run_id
    assert {"epoch/val_acc", "epoch/test_acc"} <= tags  # the HParams metrics exist as scalars


def test_tensorboard_run_names_tell_arms_apart_and_stay_file_names() -> None:
    from bench.executors.base import tensorboard_run_name

    cut = CELL.replace(regularizer="cutmix", regularizer_params={"alpha": 1.0, "mode": "a/b"})
    names = {tensorboard_run_name(c) for c in (CELL, OTHER, cut)}
    assert len(names) == 3 and all("/" not in n and " " not in n for n in names)
    assert tensorboard_run_name(cut).startswith("cutmix(alpha=1.0,mode=a_b)_frozen_n64_seed0")


# ---------------------------------------------------------------------------------------------
# A full disk


def disk_full_on(monkeypatch, nth: int, target: str = "runs.csv") -> None:
    """The nth atomic write of `target` (a results file name, or "log") raises ENOSPC."""
    real_results, real_log = ResultsDir._atomic_write, base._atomic_write_text
    count = {"n": 0}

    def maybe_fail(path: Path) -> None:
        name = "log" if path.suffix == ".log" else path.name
        if name == target:
            count["n"] += 1
            if count["n"] == nth:
                raise OSError(errno.ENOSPC, "No space left on device")

    def results_write(target_path, data):
        maybe_fail(target_path)
        return real_results(target_path, data)

    def log_write(target_path, text):
        maybe_fail(target_path)
        return real_log(target_path, text)

    monkeypatch.setattr(ResultsDir, "_atomic_write", staticmethod(results_write))
    monkeypatch.setattr(base, "_atomic_write_text", log_write)


@pytest.mark.parametrize("target", ["runs.csv", "log", "epochs.csv"])
def test_a_full_disk_stops_the_sweep_and_keeps_every_row(tmp_path, monkeypatch, target) -> None:
    monkeypatch.setattr("bench.train.train_cell", fake_ok)
    cells = [CELL, OTHER, CELL.replace(seed=2)]
    disk_full_on(monkeypatch, 2, target)
    statuses: list[str] = []
    with pytest.raises(DiskFullError) as caught, ResultsDir(tmp_path).lock() as results:
        run_local(cells, results, on_result=lambda c, r: statuses.append(r.row["status"]))
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path) in message and OTHER.run_id in message
    assert "No space left on device" in message and "rerun the same command" in message
    assert statuses == ["ok"]  # the third cell never started
    (row,) = ResultsDir(tmp_path).runs()  # no failed row for the cell that finished
    assert row["run_id"] == CELL.run_id and row["status"] == "ok"
    assert not (tmp_path / ".lock").exists() and not list(tmp_path.glob(".tmp-*"))
    monkeypatch.undo()
    monkeypatch.setattr("bench.train.train_cell", fake_ok)
    # A plain rerun (space freed) continues with the cells not recorded.
    todo = [c for c in cells if c.run_id not in ResultsDir(tmp_path).finished_ids()]
    assert run(tmp_path, todo) == ["ok", "ok"]
    assert {r["status"] for r in ResultsDir(tmp_path).runs()} == {"ok"}


def test_a_full_disk_while_recording_a_refused_row_is_one_error(tmp_path, monkeypatch) -> None:
    """A row the writer refuses becomes a failed row; when that does not fit either, the sweep
    stops with DiskFullError (not a traceback within a traceback)."""

    def refused(cfg, **kwargs):
        result = fake_ok(cfg)
        result.row["epochs"] = "many"  # an int column: the writer refuses the row
        return result

    monkeypatch.setattr("bench.train.train_cell", refused)
    disk_full_on(monkeypatch, 1, "runs.csv")
    with pytest.raises(DiskFullError, match="No space left on device while recording cell"):
        run(tmp_path, [CELL])
    assert ResultsDir(tmp_path).runs() == []


def test_other_os_errors_still_become_failed_rows(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("bench.train.train_cell", fake_ok)
    real = ResultsDir._atomic_write
    calls = {"n": 0}

    def once_denied(path, data):
        if path.name == "runs.csv" and calls["n"] == 0:
            calls["n"] += 1
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(path, data)

    monkeypatch.setattr(ResultsDir, "_atomic_write", staticmethod(once_denied))
    assert run(tmp_path, [CELL]) == ["failed"]
    (row,) = ResultsDir(tmp_path).runs()
    assert row["error"].startswith("recording failed: PermissionError")
