"""Where a sweep's cells run: `run_local` (this process, or one worker process per GPU) and
`run_ray` (one Ray task per cell). Either way only the calling process writes the results folder:
workers return small rows (bench.train.CellResult without the model), the driver records them.

A cell never stops the sweep: an exception out of train_cell (or a worker that dies) becomes a
failed row whose `error` is the exception's type and message. KeyboardInterrupt still stops it;
the cells recorded so far stay, and rerunning the sweep resumes.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from bench.config import RunConfig

OnResult = Callable[[RunConfig, Any], None]
ERROR_CHARS = 500  # longest `error` field kept in runs.csv


class ExecutorError(RuntimeError):
    """An executor cannot run these cells as asked (missing Ray, unsupported option)."""


# ---------------------------------------------------------------------------------------------
# One cell, never raising (except KeyboardInterrupt)


def run_cell(cfg: RunConfig, *, progress: bool = False, keep_model: bool = False) -> Any:
    """train_cell(cfg), with any exception turned into a failed CellResult."""
    started = time.time()
    try:
        from bench.train import train_cell

        return train_cell(cfg, progress=progress, keep_model=keep_model)
    except Exception as error:  # noqa: BLE001 - one bad cell must not kill the sweep
        return failed_result(cfg, error, started)


def failed_result(cfg: RunConfig, error: BaseException | str, started: float) -> Any:
    """A CellResult with status failed: the cell's configuration and environment, the reason."""
    from bench import provenance, rows

    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    try:
        row = rows.runs_row(cfg, provenance.environment())
    except Exception:  # noqa: BLE001 - still record the failure, with the config columns only
        row = rows.runs_row(cfg, build_regularizer=False)
    row.update(
        status="failed",
        error=" ".join(str(error).split())[:ERROR_CHARS],
        wall_s=round(time.time() - started, 3),
        started_at=provenance.started_at(started),
    )
    return rows.CellResult(row=row)


# ---------------------------------------------------------------------------------------------
# Recording: the one place results are written


class _Recorder:
    """Writes each result, keeps the best model per protocol when asked, reports progress."""

    def __init__(self, results, on_result: OnResult | None, keep_best_model: bool):
        self.results = results
        self.on_result = on_result
        self.best_val: dict[str, float] | None = None
        if keep_best_model:
            from bench.model_io import save_model  # noqa: F401 - fail before any cell runs

            self.best_val = {}
            for row in results.runs():
                if row.get("status") == "ok" and row.get("val_acc"):
                    protocol, val = row["protocol"], float(row["val_acc"])
                    self.best_val[protocol] = max(val, self.best_val.get(protocol, val))

    def __call__(self, cfg: RunConfig, result: Any) -> None:
        model, result.model = result.model, None  # the model is large; never keep it around
        try:
            self.results.write(result)
        except Exception as error:  # noqa: BLE001 - a row the writer refuses must not end
            # the sweep: record the cell as failed with the reason instead (the row comes first,
            # so a kill never leaves a best model of a cell that runs.csv does not know).
            reason = f"recording failed: {type(error).__name__}: {error}"
            result = failed_result(cfg, reason, time.time() - float(result.row.get("wall_s") or 0))
            self.results.write(result)
            model = None
        if self.best_val is not None and model is not None:
            try:
                self._maybe_save_model(cfg, result, model)
            except OSError as error:
                warnings.warn(
                    f"could not keep the model of cell {cfg.run_id}: {error}", stacklevel=2
                )
        if self.on_result is not None:
            self.on_result(cfg, result)

    def _maybe_save_model(self, cfg: RunConfig, result: Any, model: Any) -> None:
        val = result.row.get("val_acc")
        if result.row["status"] != "ok" or val is None or val != val:
            return
        if val <= self.best_val.get(cfg.protocol, float("-inf")):
            return
        from bench.model_io import save_model
        from bench.results import MODELS_DIR

        # save_model replaces the pair safely under a kill: the JSON records the weights' sha256
        # and moves in first, so a kill between the moves leaves a pair the loader refuses, and
        # the next lock of the results folder moves the staged weights in.
        save_model(model, cfg, result.row, self.results.path / MODELS_DIR / f"best-{cfg.protocol}")
        self.best_val[cfg.protocol] = val


# ---------------------------------------------------------------------------------------------
# Local: sequential, or one worker process per visible GPU


def visible_gpus() -> list[str]:
    """The CUDA_VISIBLE_DEVICES entries for the GPUs this process sees (one worker each)."""
    import torch

    count = torch.cuda.device_count()
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
    progress: bool = True,
    keep_best_model: bool = False,
    gpus: list[str] | None = None,
    cpus_per_cell: int | None = None,
) -> None:
    """Run `cells` and record each result in `results` (a locked bench.results.ResultsDir).

    With more than one GPU visible (or `gpus` given: the CUDA_VISIBLE_DEVICES value of each
    worker), one spawned worker process per GPU takes cells from this process; else the cells run
    one after another here, each with its own progress bar.
    """
    record = _Recorder(results, on_result, keep_best_model)
    if gpus is None:
        on_gpu = any(cfg.device != "cpu" for cfg in cells)
        gpus = visible_gpus() if on_gpu and len(cells) > 1 else []
    if len(gpus) > 1:
        if keep_best_model:
            raise ExecutorError("--keep-best-model needs one device: set one GPU visible")
        threads = cpus_per_cell or max(1, (os.cpu_count() or 1) // len(gpus))
        for cfg, result in _worker_pool(cells, gpus, threads):
            record(cfg, result)
        return
    if cpus_per_cell:
        import torch

        torch.set_num_threads(cpus_per_cell)
    for cfg in cells:
        record(cfg, run_cell(cfg, progress=progress, keep_model=keep_best_model))


def _worker(conn, gpu: str, threads: int) -> None:
    """A spawned worker pinned to one GPU: receives cells, sends back results, until None."""
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before torch is imported in this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    import torch

    torch.set_num_threads(threads)
    while (cfg := conn.recv()) is not None:
        conn.send(run_cell(cfg, progress=False))


def _worker_pool(cells: list[RunConfig], gpus: list[str], threads: int) -> Iterator[tuple]:
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")  # never fork a process that may hold CUDA
    queue = list(reversed(cells))
    busy: dict[Any, tuple[Any, str, RunConfig, float]] = {}  # conn -> (process, gpu, cell, t0)

    def start(gpu: str) -> None:
        if not queue:
            return
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, gpu, threads), daemon=True)
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


# ---------------------------------------------------------------------------------------------
# Ray: one task per cell on an existing cluster or a local instance


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "the ray executor needs Ray: pip install 'regbench[ray]' (or use --executor local)"
        ) from None
    return ray


def _ray_cell(cfg: RunConfig, threads: int) -> Any:
    """The body of one Ray task. Ray sets CUDA_VISIBLE_DEVICES to the task's GPU (so the cell
    uses cuda:0) and OMP_NUM_THREADS=1, so torch's thread count is set from num_cpus here."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    return run_cell(cfg, progress=False, keep_model=False)  # rows only: never ship a model


def run_ray(
    cells: list[RunConfig],
    results,
    *,
    address: str | None = None,
    on_result: OnResult | None = None,
    progress: bool = False,
    keep_best_model: bool = False,
    cpus_per_cell: int | None = None,
) -> None:
    """Run each cell as a Ray task (num_gpus=1 where the cluster has GPUs and the cell is not
    pinned to the CPU) and record results here, in the driver, as they complete.

    `address`: an existing cluster ("auto", "ray://head:10001", ...); None = $RAY_ADDRESS if set,
    else a local Ray instance started (and shut down) here. `progress` is unused: a task's own
    progress bar would interleave with the others.
    """
    del progress
    if keep_best_model:
        raise ExecutorError("--keep-best-model works with --executor local only")
    ray = _import_ray()
    record = _Recorder(results, on_result, keep_best_model=False)
    started_here = not ray.is_initialized()
    if started_here:
        local = address is None and not os.environ.get("RAY_ADDRESS")
        options = {"include_dashboard": False} if local else {}  # a local instance: no dashboard
        ray.init(address=address, logging_level="WARNING", **options)
    try:
        resources = ray.cluster_resources()
        cluster_gpus = resources.get("GPU", 0)
        # CPUs per GPU on the nodes that have GPUs (a CPU-only head node must not count: a task
        # asking for more CPUs than any GPU node has would wait forever as infeasible).
        gpu_nodes = [
            node.get("Resources", {})
            for node in ray.nodes()
            if node.get("Alive", True) and node.get("Resources", {}).get("GPU", 0) >= 1
        ]
        per_gpu = min((int(n.get("CPU", 1) // n["GPU"]) for n in gpu_nodes), default=1)
        task = ray.remote(max_retries=0)(_ray_cell)
        pending = {}
        for cfg in cells:
            gpus = 1 if cluster_gpus >= 1 and cfg.device != "cpu" else 0
            cpus = cpus_per_cell or (max(1, per_gpu) if gpus else 1)
            ref = task.options(num_cpus=cpus, num_gpus=gpus).remote(cfg, cpus)
            pending[ref] = (cfg, time.time())
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cfg, submitted = pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except Exception as error:  # noqa: BLE001 - worker crash, node lost, Ray OOM kill
                    result = failed_result(cfg, error, submitted)
                record(cfg, result)
        finally:  # interrupted: do not leave tasks running on the cluster
            for ref in pending:
                ray.cancel(ref, force=True)
    finally:
        if started_here:
            ray.shutdown()
