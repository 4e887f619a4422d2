"""The local executor: the cells one after another in this process, or, with more than one GPU
visible, one spawned worker process per GPU taking cells from this process."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

from bench.config import RunConfig
from bench.executors.base import (
    CPUS_PER_CELL,
    TENSORBOARD,
    DisplayFactory,
    Executor,
    ExecutorError,
    LiveFiles,
    OnResult,
    Option,
    Recorder,
    failed_result,
    run_cell,
)


def visible_gpus() -> list[str]:
    """The CUDA_VISIBLE_DEVICES entries for the GPUs this process sees (one worker each; the
    count comes from the device seam, bench.device, which tests replace)."""
    from bench import device

    count = device.cuda_device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = [x.strip() for x in listed.split(",") if x.strip()]
        return ids[:count]
    return [str(i) for i in range(count)]


def run_local(
    cells: list[RunConfig],
    results,
    *,
    on_result: OnResult | None = None,
    progress: DisplayFactory | bool | None = None,
    keep_best_model: bool = False,
    gpus: list[str] | None = None,
    cpus_per_cell: int | None = None,
    tensorboard: bool = False,
) -> None:
    """Run `cells` and record each result in `results` (a locked bench.results.ResultsDir).

    With more than one GPU visible (or `gpus` given: the CUDA_VISIBLE_DEVICES value of each
    worker), one spawned worker process per GPU takes cells from this process; else the cells run
    one after another here, each shown by `progress(cfg)` (a display factory, e.g.
    bench.cli.progress.cell_display; workers show none). Every cell's log is written live to
    <results>/logs/<run_id>.log, and with `tensorboard` its scalars to <results>/tensorboard/.
    """
    record = Recorder(results, on_result, keep_best_model)
    live = LiveFiles.prepare(results, tensorboard)
    if gpus is None:
        on_gpu = any(cfg.device != "cpu" for cfg in cells)
        gpus = visible_gpus() if on_gpu and len(cells) > 1 else []
    if len(gpus) > 1:
        if keep_best_model:
            raise ExecutorError("--keep-best-model needs one device: set one GPU visible")
        threads = cpus_per_cell or max(1, (os.cpu_count() or 1) // len(gpus))
        for cfg, result in _worker_pool(cells, gpus, threads, live):
            record(cfg, result)
        return
    if cpus_per_cell:
        import torch

        torch.set_num_threads(cpus_per_cell)
    for cfg in cells:
        record(cfg, run_cell(cfg, progress=progress, keep_model=keep_best_model, live=live))


def keep_recorded_best(
    cells: list[RunConfig], results, progress: DisplayFactory | bool | None = None
) -> dict[str, str]:
    """--keep-best-model on cells recorded before this run (a finished sweep): for each protocol
    whose best ok cell by val_acc (among `cells`' rows in `results`, a locked ResultsDir) has no
    kept model in <results>/models/best-<protocol>, train that cell again and keep its model
    (its recorded row stays; the retrained one is not written). Returns protocol -> a note:
    which cell was kept, and whether the retrained val_acc equals the recorded one (it does on
    the machine that ran it; another device can differ by rounding). Needs one device, like
    --keep-best-model itself."""
    import json

    from bench.model_io import model_paths, save_model
    from bench.results import MODELS_DIR

    by_id = {cfg.run_id: cfg for cfg in cells}
    best: dict[str, dict[str, str]] = {}
    for row in results.runs():
        if row["run_id"] not in by_id or row.get("status") != "ok" or not row.get("val_acc"):
            continue
        protocol = by_id[row["run_id"]].protocol
        if protocol not in best or float(row["val_acc"]) > float(best[protocol]["val_acc"]):
            best[protocol] = row
    notes: dict[str, str] = {}
    for protocol, row in sorted(best.items()):
        target = results.path / MODELS_DIR / f"best-{protocol}"
        weights, meta = model_paths(target)
        try:
            kept = json.loads(meta.read_text()).get("run_id") if weights.is_file() else None
        except (OSError, ValueError, AttributeError):
            kept = None
        run_id = row["run_id"]
        if kept == run_id:
            notes[protocol] = f"cell {run_id} (val_acc {row['val_acc']}), kept before"
            continue
        cfg = by_id[run_id]
        result = run_cell(cfg, progress=progress, keep_model=True)
        if result.row["status"] != "ok" or result.model is None:
            notes[protocol] = (
                f"cell {run_id} could not be trained again ({result.row.get('error')}); "
                "no model kept"
            )
            continue
        save_model(result.model, cfg, result.row, target)
        again = result.row.get("val_acc")
        same = again is not None and repr(float(again)) == row["val_acc"]
        notes[protocol] = f"cell {run_id} (val_acc {row['val_acc']}), trained again now" + (
            "" if same else f" (val_acc {again} this time: another device or library version)"
        )
    return notes


def _worker(conn, gpu: str, threads: int, live: LiveFiles) -> None:
    """A spawned worker pinned to one GPU: receives cells, sends back results, until None."""
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before torch is imported in this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    import torch

    torch.set_num_threads(threads)
    while (cfg := conn.recv()) is not None:
        conn.send(run_cell(cfg, live=live))


def _worker_pool(
    cells: list[RunConfig], gpus: list[str], threads: int, live: LiveFiles
) -> Iterator[tuple]:
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")  # never fork a process that may hold CUDA
    queue = list(reversed(cells))
    busy: dict[Any, tuple[Any, str, RunConfig, float]] = {}  # conn -> (process, gpu, cell, t0)

    def start(gpu: str) -> None:
        if not queue:
            return
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, gpu, threads, live), daemon=True)
        process.start()
        child.close()
        cfg = queue.pop()
        parent.send(cfg)
        busy[parent] = (process, gpu, cfg, time.time())

    try:
        for gpu in gpus:
            start(gpu)
        while busy:
            for conn in wait(list(busy)):
                process, gpu, cfg, started = busy.pop(conn)
                try:
                    result = conn.recv()
                except (EOFError, OSError):  # the worker died (killed, segfault, host OOM)
                    process.join(5)
                    reason = f"worker process on GPU {gpu!r} died (exit code {process.exitcode})"
                    yield cfg, failed_result(cfg, reason, started)
                    start(gpu)  # a fresh worker takes its place
                    continue
                yield cfg, result
                if queue:
                    cfg = queue.pop()
                    conn.send(cfg)
                    busy[conn] = (process, gpu, cfg, time.time())
                else:
                    conn.send(None)
                    process.join(30)
    finally:  # interrupted (or the consumer failed): stop the workers still running a cell
        for conn, (process, *_rest) in busy.items():
            process.terminate()
            process.join(10)
            conn.close()


EXECUTOR = Executor(
    name="local",
    run=run_local,
    help="this process, or one worker process per visible GPU",
    options=(
        CPUS_PER_CELL,
        TENSORBOARD,
        Option(
            "keep_best_model", bool, False,
            "save the best-by-val_acc model per protocol to <results>/models (local executor)",
        ),
    ),
)  # fmt: skip
