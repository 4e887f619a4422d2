"""bench.device, the device seam: the CPU device, and the GPU branches of a cell exercised on the
CPU through a fake GPU (tests/bench/fake_device.py): sampled timing, synchronisation, memory,
and an out-of-memory error that fails the cell by name and leaves the sweep going."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fake_device import OOM_TEXT, FakeGpu, install
from sweep_files import SMOKE
from tiny_cell import TINY

from bench import device as devices
from bench import train
from bench.results import ResultsDir
from bench.runner import run_sweep
from bench.sweep import load_sweep


def test_cpu_device() -> None:
    cpu = devices.select("cpu")
    assert cpu.type == "cpu" and not cpu.asynchronous
    assert 0 < cpu.free_memory_mb() <= cpu.total_memory_mb()
    assert cpu.peak_memory_mb() > 0
    timer = cpu.timer()
    timer.start()
    sum(range(10000))
    timer.stop()
    assert timer.seconds() > 0
    assert devices.as_device(torch.device("cpu")).type == "cpu"
    assert devices.as_device(cpu) is cpu


def test_out_of_memory_is_recognised_and_nothing_else() -> None:
    cpu = devices.select("cpu")
    assert cpu.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert cpu.is_out_of_memory(MemoryError())
    assert cpu.is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: 9 GB"))
    assert not cpu.is_out_of_memory(RuntimeError("shape mismatch"))
    assert not cpu.is_out_of_memory(ValueError("not enough memory"))  # only RuntimeError text


def test_cuda_asked_for_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="sees no CUDA GPU; use --device cpu"):
        devices.select("cuda")
    assert devices.select("auto").type == "cpu"
    assert devices.cuda_device_count() == 0


def test_cell_on_an_asynchronous_device_takes_the_gpu_branches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = install(monkeypatch, lambda: FakeGpu(total_mb=4096, peak_mb=321.5))
    row = train.train_cell(TINY).row
    (fake,) = made
    assert row["status"] == "ok", row["error"]
    steps = row["steps_run"]
    # Regularizer timed on every REG_TIMING_EVERY-th step only, read after one sync per epoch.
    assert fake.timers == -(-steps // train.REG_TIMING_EVERY) < steps
    assert fake.synchronized == TINY.epochs
    assert row["peak_mem_mb"] == 321.5 and fake.resets == 1 and fake.released == 1
    assert row["regularizer_ms_per_batch"] > 0


def test_cpu_cell_times_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    class CountingCpu(devices.Device):
        timers = 0

        def timer(self):
            CountingCpu.timers += 1
            return super().timer()

    install(monkeypatch, CountingCpu)
    row = train.train_cell(TINY).row
    assert row["status"] == "ok" and CountingCpu.timers == row["steps_run"]


def test_out_of_memory_in_a_cell_is_a_named_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    made = install(monkeypatch, lambda: FakeGpu(total_mb=2048, peak_mb=2040, oom_at_timer=3))
    row = train.train_cell(TINY).row
    assert row["status"] == "failed"
    error = row["error"]
    assert error.startswith("out of memory at batch_size 64, image_size 32 on Fake GPU")
    assert "(2040 MiB peak of 2048 MiB)" in error
    assert "lower batch_size (e.g. --set batch_size=32)" in error and "sweep check" in error
    assert OOM_TEXT in error
    assert made[0].released == 1  # cached memory given back
    assert row["peak_mem_mb"] == 2040


def test_other_errors_are_not_called_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, lambda: FakeGpu(oom_at_timer=2, error=RuntimeError("cuDNN error")))
    with pytest.raises(RuntimeError, match="cuDNN error"):
        train.train_cell(TINY)  # run_cell turns it into a failed row with its own type


def test_out_of_memory_fails_one_cell_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = load_sweep(SMOKE)
    made = install(
        monkeypatch, lambda: FakeGpu(oom_at_timer=2 if len(made) == 1 else 0)
    )  # the second cell runs out of memory
    counts = run_sweep(sweep, ResultsDir(tmp_path), progress=None, skip_preflight=True)
    assert (counts["ok"], counts["failed"]) == (3, 1)
    rows = {row["run_id"]: row for row in ResultsDir(tmp_path).runs()}
    failed = rows[sweep.cells[1].run_id]
    assert failed["status"] == "failed" and failed["error"].startswith("out of memory at batch")
    assert [rows[c.run_id]["status"] for c in sweep.cells] == ["ok", "failed", "ok", "ok"]
    log = (tmp_path / failed["log"]).read_text()
    assert "OutOfMemoryError" in log and log.rstrip().splitlines()[-1].count("out of memory")


# ---------------------------------------------------------------------------------------------
# On a real GPU (skipped without CUDA; benchmarks/gpu_session.sh runs them on a lent one)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_cuda_device_seam() -> None:
    gpu = devices.select("cuda")
    assert gpu.asynchronous and gpu.type == "cuda" and devices.cuda_device_count() >= 1
    gpu.reset_peak_memory()
    before = gpu.peak_memory_mb()
    timer = gpu.timer()
    timer.start()
    x = torch.randn(4096, 4096, device="cuda")
    (x @ x).sum()
    timer.stop()
    gpu.synchronize()
    assert timer.seconds() > 0 and gpu.peak_memory_mb() >= before + 64
    assert 0 < gpu.free_memory_mb() < gpu.total_memory_mb()
    try:
        torch.empty(int(gpu.total_memory_mb() * 2**20 * 2), dtype=torch.uint8, device="cuda")
    except Exception as error:  # noqa: BLE001 - what matters is how the seam classifies it
        assert gpu.is_out_of_memory(error)
    else:
        pytest.fail("allocating twice the GPU's memory did not fail")
    gpu.release_memory()


@needs_cuda
def test_cuda_cell_auto_and_explicit_settings() -> None:
    auto = train.train_cell(TINY.replace(device="cuda")).row
    plain = train.train_cell(TINY.replace(device="cuda", amp="off", channels_last="off")).row
    assert auto["status"] == plain["status"] == "ok"
    assert (auto["amp"], auto["channels_last"], auto["compile"]) == ("bf16", 1, 0)
    assert (plain["amp"], plain["channels_last"]) == ("off", 0)
    assert abs(auto["test_acc"] - plain["test_acc"]) <= 0.02
    assert abs(auto["test_loss"] - plain["test_loss"]) <= 0.05
    assert auto["peak_mem_mb"] > 0 and auto["regularizer_ms_per_batch"] > 0
