"""Where a report's numbers come from, read from runs.csv alone: the data (its source and the
fingerprint of its files), the code version (git commit, with the dirty flag) and the sweep
file's hash. Shown in the report's Setup and in every LaTeX table's caption.

Results written before a column existed lack it: its value is "not recorded", never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

NOT_RECORDED = "not recorded"
DIRTY = "-dirty"  # bench.provenance.git_commit's mark of uncommitted changes


def distinct(runs: pd.DataFrame, column: str) -> list[tuple[str, int]]:
    """(value, cells) for each distinct non-empty value of a text column, most cells first;
    [] when the column is absent or empty everywhere."""
    if column not in runs.columns:
        return []
    values = runs[column].fillna("").astype(str)
    counts = values[values != ""].value_counts()
    return [(str(value), int(count)) for value, count in counts.items()]


def values_text(runs: pd.DataFrame, column: str) -> str:
    """'a', or 'a (3 cells), b (1 cells)', or 'not recorded' (absent or empty everywhere), with
    'k cells not recorded' added when only some rows lack it."""
    found = distinct(runs, column)
    if not found:
        return NOT_RECORDED
    text = found[0][0] if len(found) == 1 else ", ".join(f"{v} ({n} cells)" for v, n in found)
    missing = len(runs) - sum(n for _, n in found)
    return text + (f"; {missing} cells not recorded" if missing else "")


@dataclass(frozen=True)
class Provenance:
    data: str  # the data source(s) and fingerprint(s)
    code: str  # the git commit(s), with the dirty flag spelled out
    sweep_file: str  # the sweep file's sha256 (12 hex digits)

    def facts(self) -> list[tuple[str, str]]:
        return [("data", self.data), ("code version", self.code), ("sweep file", self.sweep_file)]

    def caption(self) -> str:
        """One sentence for a table caption."""
        return f"Data: {self.data}. Code: {self.code}. Sweep file: {self.sweep_file}."


def provenance(runs: pd.DataFrame) -> Provenance:
    """The provenance of a results table's rows (runs.csv columns data_source,
    data_fingerprint, git_commit, sweep_file_sha256)."""
    source = values_text(runs, "data_source")
    fingerprint = values_text(runs, "data_fingerprint")
    data = source if fingerprint == NOT_RECORDED else f"{source}, fingerprint {fingerprint}"
    commits = distinct(runs, "git_commit")
    code = values_text(runs, "git_commit")
    dirty = sum(n for value, n in commits if value.endswith(DIRTY))
    if dirty:
        code += f" ({dirty} cells ran with uncommitted changes)"
    sweep_file = values_text(runs, "sweep_file_sha256")
    if sweep_file != NOT_RECORDED:
        sweep_file = f"sha256 {sweep_file}"
    return Provenance(data, code, sweep_file)
