"""The Ray executor: one Ray task per cell, on an existing cluster or a local Ray instance; the
results are recorded here, in the driver, as the tasks complete."""

from __future__ import annotations

import os
import re
import socket
import time
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


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "the ray executor needs Ray: pip install 'regbench[ray]' (or use --executor local)"
        ) from None
    return ray


def _ray_cell(cfg: RunConfig, threads: int, live: LiveFiles) -> Any:
    """The body of one Ray task. Ray sets CUDA_VISIBLE_DEVICES to the task's GPU (so the cell
    uses cuda:0) and OMP_NUM_THREADS=1, so torch's thread count is set from num_cpus here. The
    live log (and scalars) go to the results folder where the task's node sees it."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    return run_cell(cfg, keep_model=False, live=live)  # rows and log only: never ship a model


CONNECT_TIMEOUT_S = 5.0  # a Ray head that does not answer a TCP connect in this long is down
# host:port, optionally behind ray:// (Ray Client); host a name, IPv4 or [IPv6]
ADDRESS = re.compile(r"(?:ray://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})")
ADDRESS_FIX = 'give "auto" (a cluster started on this machine with `ray start --head`), HOST:PORT or ray://HOST:PORT, or leave --ray-address out for a local Ray instance'  # fmt: skip


def check_address(value: str | None) -> None:
    """--ray-address: "auto", "local", HOST:PORT or ray://HOST:PORT with a port in 1..65535
    (ray.init's own error for anything else is a traceback)."""
    if value is None or value in ("auto", "local"):
        return
    found = ADDRESS.fullmatch(value)
    if not found or not 1 <= int(found["port"]) <= 65535:
        raise ExecutorError(f"--ray-address: {value!r} is not a Ray address; {ADDRESS_FIX}")


def check_reachable(value: str | None) -> None:
    """ExecutorError within CONNECT_TIMEOUT_S when nothing answers at HOST:PORT (ray.init
    would retry for minutes)."""
    found = ADDRESS.fullmatch(value or "")
    if not found:
        return
    host, port = found["host"].strip("[]"), int(found["port"])
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ExecutorError(
            f"--ray-address {value}: nothing answers there ({reason}); start the cluster "
            f"(`ray start --head` on its head node) or fix the address: {ADDRESS_FIX}"
        ) from None


def check_available() -> None:
    """Before anything runs: Ray importable (ExecutorError naming the install)."""
    _import_ray()


def _cpus_per_gpu(ray) -> int:
    """CPUs per GPU on the nodes that have GPUs (a CPU-only head node must not count: a task
    asking for more CPUs than any GPU node has would wait forever as infeasible)."""
    gpu_nodes = [
        node.get("Resources", {})
        for node in ray.nodes()
        if node.get("Alive", True) and node.get("Resources", {}).get("GPU", 0) >= 1
    ]
    return min((int(n.get("CPU", 1) // n["GPU"]) for n in gpu_nodes), default=1)


def run_ray(
    cells: list[RunConfig],
    results,
    *,
    address: str | None = None,
    on_result: OnResult | None = None,
    progress: DisplayFactory | bool | None = None,
    cpus_per_cell: int | None = None,
    tensorboard: bool = False,
) -> None:
    """Run each cell as a Ray task (num_gpus=1 where the cluster has GPUs and the cell is not
    pinned to the CPU) and record results here, in the driver, as they complete.

    `address`: an existing cluster ("auto", "ray://head:10001", ...); None = $RAY_ADDRESS if set,
    else a local Ray instance started (and shut down) here. `progress` is unused: a task's own
    display would interleave with the others (each cell's log is in <results>/logs/).
    """
    del progress
    ray = _import_ray()
    check_address(address)
    check_reachable(address or os.environ.get("RAY_ADDRESS"))
    record = Recorder(results, on_result, keep_best_model=False)
    live = LiveFiles.prepare(results, tensorboard)
    started_here = not ray.is_initialized()
    if started_here:
        local = address is None and not os.environ.get("RAY_ADDRESS")
        options = {"include_dashboard": False} if local else {}  # a local instance: no dashboard
        try:
            ray.init(address=address, logging_level="WARNING", **options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise ExecutorError(f"--ray-address {address}: Ray could not start ({first})") from None
    try:
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        per_gpu = _cpus_per_gpu(ray)
        task = ray.remote(max_retries=0)(_ray_cell)
        pending = {}
        for cfg in cells:
            gpus = 1 if cluster_gpus >= 1 and cfg.device != "cpu" else 0
            cpus = cpus_per_cell or (max(1, per_gpu) if gpus else 1)
            ref = task.options(num_cpus=cpus, num_gpus=gpus).remote(cfg, cpus, live)
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


EXECUTOR = Executor(
    name="ray",
    run=run_ray,
    help="one Ray task per cell",
    requires=check_available,
    # a local Ray instance (no address) runs the cells here
    runs_here=lambda options: not (options.get("address") or os.environ.get("RAY_ADDRESS")),
    options=(
        Option("address", str, None, "Ray cluster address (default: a local Ray instance)",
               flag="--ray-address", check=check_address),
        CPUS_PER_CELL,
        TENSORBOARD,
    ),
)  # fmt: skip
