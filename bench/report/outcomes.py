"""Per-image test outcomes `outcomes/<run_id>.npz` (arrays `label` uint8 [N], `pred` uint8 [N],
`conf` float16 [N]), read where present as untrusted files through the results store's reader:
numpy without pickles, a size limit, exact keys, 1-D arrays of one length, integer labels and
predictions in [0, 255], finite confidences in [0, 1]. A file that fails is left out with a
note; it never stops the report."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from bench.report.errors import quoted
from bench.results import OUTCOMES_DIR, ResultsError
from bench.results import read_outcomes as read_checked

SAFE_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class OutcomeError(ValueError):
    """An outcomes file the report refuses (the message says why)."""


def read_outcomes(path: Path) -> dict[str, np.ndarray]:
    """One outcomes/<run_id>.npz through the results store's reader (the one place that knows
    the format and treats the file as untrusted), as int64 labels/predictions and float
    confidences for the statistics; OutcomeError naming the problem if refused."""
    try:
        arrays = read_checked(path)
    except ResultsError as error:
        raise OutcomeError(str(error).removeprefix(f"{path}: ")) from None
    return {"label": arrays["label"].astype(np.int64), "pred": arrays["pred"].astype(np.int64),
            "conf": arrays["conf"].astype(float)}  # fmt: skip


def read_all(run_ids, folders: list[Path]) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """The outcomes file of every run id given (the ok cells), from the first of the results
    folders that has it, where present: run_id -> arrays, and the note naming the refused files
    (left out), if any."""
    outcomes, refused = {}, []
    for run_id in run_ids:
        if not SAFE_RUN_ID.fullmatch(str(run_id)):
            continue  # never a path from CSV text that is not a plain name
        for folder in folders:
            path = folder / OUTCOMES_DIR / f"{run_id}.npz"
            if not os.path.lexists(path):
                continue
            try:
                outcomes[str(run_id)] = read_outcomes(path)
            except OutcomeError as error:
                refused.append(f"{quoted(str(run_id))} ({error})")
            break
    if not refused:
        return outcomes, []
    return outcomes, [
        f"{len(refused)} outcomes file(s) refused and left out: {'; '.join(refused[:5])}"
        + ("; ..." if len(refused) > 5 else "")
        + ". Their rows get no image-level interval; rewrite the files with the sweep runner."
    ]
