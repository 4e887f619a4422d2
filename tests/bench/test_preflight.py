"""`regbench sweep check` (bench.preflight, bench.cli.check) and `sweep run --preflight`: every
cell shape probed on this machine, go / no-go with every problem listed, the results folder never
written. On the CPU with sweeps/smoke.toml, and with a fake GPU (tests/bench/fake_device.py) for
memory and out-of-memory."""

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from fake_device import FakeGpu, install
from sweep_files import SMOKE

from bench import preflight
from bench.cli.sweep import main
from bench.results import ResultsDir
from bench.sweep import load_sweep


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under `folder` with its size and modification time (ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}  # fmt: skip


def sweep_check(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_smoke_is_a_go_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "results"
    code, out, err = sweep_check(capsys, str(SMOKE), "--results-dir", str(folder))
    assert code == 0, err
    assert "sweep check smoke: 4 cells to run" in out and "2 distinct cell shapes" in out
    assert "test_resnet 16px batch 64 frozen: 2 cells, peak" in out
    assert "test_resnet 16px batch 64 unfrozen: 2 cells" in out
    assert "train images/s" in out and "estimated time:" in out and "free" in out
    assert "go: sweep smoke should run here" in out and "problem" not in err
    assert not folder.exists()  # not even created


def test_probe_measures_every_shape() -> None:
    sweep = load_sweep(SMOKE)
    report = preflight.check_sweep(sweep, ResultsDir("/nonexistent/results"), probe_steps=3)
    assert report.go and report.cells == 4 and len(report.probes) == 2
    for probe in report.probes:
        assert probe.cells == 2 and probe.weights == "none" and not probe.error
        assert probe.peak_mb > 0 and probe.total_mb > probe.peak_mb
        assert probe.step_images == 2 * 64  # 3 steps, the first a warm-up
        assert probe.speed_ratio > 0 and probe.eval_s > 0
        assert 0 < probe.setup_s < probe.model_s
    assert report.output_bytes > 4 * preflight.ROW_BYTES


def test_a_folder_with_done_cells_is_only_read(tmp_path: Path, capsys) -> None:
    # Two of the four cells done: only the other two are checked, and not one byte changes.
    folder = tmp_path / "results"
    assert main(["run", str(SMOKE), "--results-dir", str(folder), "--no-progress",
                 "--only", "protocol=frozen"]) == 0  # fmt: skip
    capsys.readouterr()
    before = snapshot(folder)
    code, out, err = sweep_check(capsys, str(SMOKE), "--results-dir", str(folder))
    assert code == 0, err
    assert "2 cells to run" in out and "1 distinct cell shapes" in out and "64 frozen:" not in out
    assert snapshot(folder) == before


def test_every_problem_is_listed(tmp_path: Path, monkeypatch, capsys) -> None:
    # Problems of four kinds at once: data missing for one backbone's cells, shapes over the
    # device's memory, a results folder that cannot be written, a disk too small. All are listed.
    sweep_file = tmp_path / "two.toml"
    text = SMOKE.read_text().replace("[axes]", "[axes]\nbackbone = ['test_resnet', 'test_vit']")
    sweep_file.write_text(text)
    install(monkeypatch, lambda: FakeGpu(total_mb=1000, peak_mb=950))

    from bench import train

    real_preflight = train.preflight

    def no_data_for_vit(cfg):
        if cfg.backbone == "test_vit":
            raise FileNotFoundError("no CIFAR-10 in /data/missing; pass --data-dir")
        return real_preflight(cfg)

    monkeypatch.setattr(train, "preflight", no_data_for_vit)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**6, 10**6 - 1000, 1000))
    folder = tmp_path / "results"
    code, out, err = sweep_check(capsys, str(sweep_file), "--results-dir", str(folder))
    assert code == 2
    problems = [line for line in err.splitlines() if line.startswith("  problem: ")]
    # data; memory for the 4 shapes (test_vit's probed without its input: the memory is still
    # measured); folder; disk
    assert len(problems) == 1 + 4 + 1 + 1, err
    assert "no-go: 7 problem(s):" in err
    assert any("backbone='test_vit'" in p and "pass --data-dir" in p for p in problems)
    memory = [p for p in problems if "peak memory 950 MiB is over 90% of the 1000 MiB" in p]
    assert len(memory) == 4 and all("fix: lower batch_size" in p for p in memory)
    assert any("is not writable" in p and "fix: give a --results-dir" in p for p in problems)
    assert any("0 MiB free" in p and "fix: free space" in p for p in problems)
    assert "go: sweep" not in out
    assert not folder.exists()


def test_out_of_memory_in_a_probe_is_a_named_problem(tmp_path: Path, monkeypatch, capsys):
    install(monkeypatch, lambda: FakeGpu(total_mb=8000, oom_at_timer=1))
    code, out, err = sweep_check(capsys, str(SMOKE), "--results-dir", str(tmp_path / "r"))
    assert code == 2
    problems = [line for line in err.splitlines() if line.startswith("  problem: ")]
    assert len(problems) == 2  # both shapes
    assert all("out of memory on Fake GPU (8000 MiB)" in p for p in problems)
    assert all("fix: lower batch_size for these cells (e.g. batch_size=32)" in p for p in problems)


def test_run_with_preflight_stops_on_a_no_go(tmp_path: Path, monkeypatch, capsys) -> None:
    install(monkeypatch, lambda: FakeGpu(total_mb=100, peak_mb=99))
    folder = tmp_path / "results"
    code = main(["run", str(SMOKE), "--results-dir", str(folder), "--no-progress", "--preflight"])
    _, err = capsys.readouterr()
    assert code == 2 and "no-go: 2 problem(s)" in err
    assert not folder.exists()  # no cell ran


def test_run_with_preflight_runs_on_a_go(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "results"
    code = main(["run", str(SMOKE), "--results-dir", str(folder), "--no-progress", "--preflight",
                 "--only", "protocol=frozen", "arm=none"])  # fmt: skip
    out, _ = capsys.readouterr()
    assert code == 0 and "go: sweep smoke should run here" in out and "1 ok" in out
    assert len(ResultsDir(folder).runs()) == 1


def test_bad_probe_steps(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["check", str(SMOKE), "--probe-steps", "1"])
    assert "expected an integer >= 2" in capsys.readouterr().err


def test_a_search_sweep_checks_its_trials_and_its_cells() -> None:
    # gpu-full: 1,080 search trials and 1,800 cells, in 36 shapes (2 backbones x 3 sizes, each
    # with its own batch size, x 6 protocol entries); nothing probed here.
    sweep = load_sweep(SMOKE.parent / "gpu-full.toml")
    cells = preflight.cells_left(sweep, ResultsDir("/nonexistent/results"))
    assert len(cells) == 1080 + 1800 and len({c.run_id for c in cells}) == len(cells)
    assert len({preflight.Shape.of(c) for c in cells}) == 36
    assert preflight.expected_output_bytes(cells, False, {}) > 2880 * preflight.ROW_BYTES
