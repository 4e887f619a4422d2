"""A stand-in for the local executor's GPU worker (bench.executors.local._worker) that trains
nothing: it pins CUDA_VISIBLE_DEVICES like the real one and answers each cell with an ok row
whose `device` says which GPU and which process ran it. A cell whose data_dir holds a file
`die` makes the worker exit at once (the file is removed first, so a rerun of the cell lives).
Imports no torch: a spawned worker starts in a fraction of a second."""

from __future__ import annotations

import os
from pathlib import Path

from measured import measured

from bench import rows


def fake_worker(conn, gpu: str, threads: int, live) -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    while (cfg := conn.recv()) is not None:
        marker = Path(cfg.data_dir or ".", "die")
        if cfg.data_dir and marker.exists():
            marker.unlink()
            os._exit(3)  # as a segfault or the kernel's OOM killer would end it
        row = rows.runs_row(cfg, build_regularizer=False)
        row.update(
            measured(), status="ok", device=f"{os.environ['CUDA_VISIBLE_DEVICES']}:{os.getpid()}"
        )
        conn.send(rows.CellResult(row=row))


def ran_on(row: dict) -> tuple[str, int]:
    """(CUDA_VISIBLE_DEVICES, pid) of the worker that ran a fake cell."""
    gpu, pid = row["device"].rsplit(":", 1)
    return gpu, int(pid)
