"""The SLURM executor, through submitit: one array task per cell, submitted from this process
(a login node: no sbatch script), whose results are recorded here, in the driver, as the tasks
finish.

Recording: a task returns its CellResult (rows and log text, never the model) through submitit's
result file; this process records it under the results folder's lock with the same atomic writes
as every executor (bench.executors.base.Recorder). Tasks never write the results files, so many
tasks finishing together cannot interleave rows, and the folder's one-writer lock means what it
says. A task writes only its live log (and TensorBoard scalars) into the results folder, where
the compute node sees it (a shared file system).

Preemption and time limits: the task is a checkpointable callable (`SlurmCell.checkpoint`), so
when SLURM preempts it or its time runs out, submitit requeues the same cell, which starts again
from its beginning (a cell has no mid-run checkpoint; its live log is overwritten).

`cluster`: None or "slurm" submits to SLURM; "local" runs each task as a local subprocess
and "debug" in this process (submitit's own executors, for testing without a cluster).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.config import RunConfig
from bench.executors.base import (
    CPUS_PER_CELL,
    TENSORBOARD,
    CellLog,
    DisplayFactory,
    Executor,
    ExecutorError,
    LiveFiles,
    OnResult,
    Option,
    Recorder,
    failed_result,
    in_range,
    run_cell,
)
from bench.results import safe_path

CLUSTERS = ("slurm", "local", "debug")
SUBMITIT_DIR = "submitit"  # default folder for submitit's pickles and task logs, in <results>
POLL_S = {"slurm": 10.0, "local": 0.5, "debug": 0.0}  # seconds between checks of the tasks


def _import_submitit():
    try:
        import submitit
    except ImportError:
        raise ExecutorError(
            "the slurm executor needs submitit: pip install 'regbench[slurm]' (or use "
            "--executor local)"
        ) from None
    return submitit


def check_available() -> None:
    """Before anything runs: submitit importable (ExecutorError naming the install)."""
    _import_submitit()


def _check_cluster(value: str | None) -> None:
    if value is not None and value not in CLUSTERS:
        raise ExecutorError(f"--slurm-cluster: {value!r} is not one of {', '.join(CLUSTERS)}")


def _check_folder(value: str | None) -> None:
    """--slurm-folder: a folder, or a path where one can be made (not a file)."""
    if value is None:
        return
    path = Path(value)
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ExecutorError(
                    f"--slurm-folder: {parent} is a file, not a folder; give a folder for "
                    "submitit's files (or leave it out: <results>/submitit)"
                )
            break


def check_slurm_here(cluster: str) -> None:
    """ExecutorError unless SLURM can be reached from here (srun and sbatch on the PATH) when
    `cluster` is "slurm": submitit's own error is a traceback ("Could not detect srun")."""
    if cluster == "slurm" and not (shutil.which("srun") and shutil.which("sbatch")):
        raise ExecutorError(
            "--executor slurm: no SLURM here (srun/sbatch not on the PATH); run from a SLURM "
            "login node, or use --executor local (or --slurm-cluster local to try the tasks "
            "as local processes)"
        )


class SlurmCell:
    """The callable each array task runs: one cell, its log live into the results folder.
    submitit calls `checkpoint` when the task is preempted or times out; it requeues the same
    cell (from its start)."""

    def __init__(self, live: LiveFiles, threads: int | None):
        self.live, self.threads = live, threads

    def __call__(self, cfg: RunConfig) -> Any:
        if self.threads:
            import torch

            os.environ["OMP_NUM_THREADS"] = str(self.threads)
            torch.set_num_threads(self.threads)
        return run_cell(cfg, keep_model=False, live=self.live)  # rows and log: never a model

    def checkpoint(self, cfg: RunConfig) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, cfg)


def make_executor(cells: list[RunConfig], folder: Path, **options) -> Any:
    """The submitit executor for `cells` with the slurm options (see EXECUTOR)."""
    submitit = _import_submitit()
    cluster = options.get("slurm_cluster") or "slurm"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    gpus = options.get("slurm_gpus_per_task")
    if gpus is None:
        gpus = 1 if any(cfg.device != "cpu" for cfg in cells) else 0
    parameters: dict[str, Any] = {
        "name": f"regbench-{cells[0].sweep}" if cells else "regbench",
        "timeout_min": options.get("slurm_time"),
        "cpus_per_task": options.get("cpus_per_cell"),
        "slurm_partition": options.get("slurm_partition"),
        "slurm_mem": options.get("slurm_mem"),
        "slurm_array_parallelism": options.get("slurm_array_parallelism"),
    }
    if cluster == "slurm":
        parameters["slurm_gpus_per_task"] = gpus or None
    elif gpus:
        parameters["gpus_per_node"] = gpus
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return executor


def run_slurm(
    cells: list[RunConfig],
    results,
    *,
    on_result: OnResult | None = None,
    progress: DisplayFactory | bool | None = None,
    cpus_per_cell: int | None = None,
    tensorboard: bool = False,
    slurm_partition: str | None = None,
    slurm_time: int | None = None,
    slurm_gpus_per_task: int | None = None,
    slurm_mem: str | None = None,
    slurm_array_parallelism: int | None = None,
    slurm_folder: str | None = None,
    slurm_cluster: str | None = None,
) -> None:
    """Submit `cells` as one job array (one cell per task) and record each task's result in
    `results` as it finishes. A task that fails outside the cell (killed, out of time after its
    requeues, node failure) becomes a failed row with submitit's reason; its log says more.
    Interrupted (Ctrl-C) or stopped by a full disk, the tasks not recorded yet are cancelled.
    `progress` is unused (each cell's log is in <results>/logs/)."""
    del progress
    if not cells:
        return
    cluster = slurm_cluster or "slurm"
    check_slurm_here(cluster)  # before submitit's traceback, before anything is written
    _check_folder(slurm_folder)
    record = Recorder(results, on_result, keep_best_model=False)
    live = LiveFiles.prepare(results, tensorboard)
    if slurm_folder:
        folder = Path(slurm_folder)
    else:  # inside the results folder: no link followed out of it
        folder = safe_path(live.folder, SUBMITIT_DIR, folder=True, create=True)
    executor = make_executor(
        cells, folder, cpus_per_cell=cpus_per_cell, slurm_partition=slurm_partition,
        slurm_time=slurm_time, slurm_gpus_per_task=slurm_gpus_per_task, slurm_mem=slurm_mem,
        slurm_array_parallelism=slurm_array_parallelism, slurm_cluster=cluster,
    )  # fmt: skip
    submitted = time.time()
    jobs = executor.map_array(SlurmCell(live, cpus_per_cell), cells)
    pending = list(zip(jobs, cells, strict=True))
    try:
        while pending:
            finished = [(job, cfg) for job, cfg in pending if job.done()]
            for job, cfg in finished:
                pending.remove((job, cfg))
                record(cfg, _task_result(job, cfg, submitted))
            if pending and not finished:
                time.sleep(POLL_S[cluster])
    finally:  # interrupted or stopped: do not leave tasks running on the cluster
        for job, _cfg in pending:
            with contextlib.suppress(Exception):  # best effort: the sweep is stopping anyway
                job.cancel(check=False)


def _task_result(job: Any, cfg: RunConfig, submitted: float) -> Any:
    """The task's CellResult, or a failed one with submitit's reason (and its text as the log)."""
    try:
        return job.result()
    except Exception as error:  # noqa: BLE001 - the task died, timed out or was cancelled
        text = str(error).strip()
        first = text.splitlines()[0] if text else type(error).__name__
        result = failed_result(cfg, f"SLURM task {job.job_id} failed: {first}", submitted)
        log = CellLog(cfg)
        log.fail(f"submitit reported for task {job.job_id}:\n{text}")
        log.finish(result.row)
        result.log = log.text()
        return result


EXECUTOR = Executor(
    name="slurm",
    run=run_slurm,
    help="one SLURM array task per cell, through submitit (from a login node)",
    requires=check_available,
    runs_here=lambda options: options.get("slurm_cluster") in ("local", "debug"),
    options=(
        Option("slurm_partition", str, None, "SLURM partition of the tasks"),
        Option("slurm_time", int, None, "time limit per task, in minutes (a cell that runs out "
               "is requeued)", check=in_range("--slurm-time", 1, 525_600, "a year")),
        Option("slurm_gpus_per_task", int, None, "GPUs per task (default: 1 unless every cell "
               "is on the CPU)", check=in_range("--slurm-gpus-per-task", 0, 64, "one node's GPUs")),
        CPUS_PER_CELL,
        Option("slurm_mem", str, None, "memory per task, as SLURM writes it (e.g. 32G)"),
        Option("slurm_array_parallelism", int, None, "most tasks running at once",
               check=in_range("--slurm-array-parallelism", 1, 1_000_000, "more than any sweep's "
                              "cells")),
        Option("slurm_folder", str, None, "folder for submitit's files and task logs (default: "
               "<results>/submitit)", check=_check_folder),
        Option("slurm_cluster", str, None, "slurm (default); local: tasks as local processes; "
               "debug: in this process (testing without a cluster)", check=_check_cluster),
        TENSORBOARD,
    ),
)  # fmt: skip
