"""Which columns the report reads from each results file, and how: derived from the
declarations in `bench.schema`, read when called (so a test-local declaration counts).

`config_columns` (shared configuration, compared within a scope), `extension_config` (the
project's own configuration columns, where present), `run_metrics` / `extension_metrics`
(numbers; a missing shared one is NaN), `run_text` (optional text), `side_columns` (a side file's
required and numeric columns), `environment_columns` (what two runs of one cell may differ in).
"""

from __future__ import annotations

from bench import schema  # column declarations only: no torch behind it
from bench.report import arms

RUNS_FILE = schema.RUNS_FILE
ARM_COLUMNS = ["regularizer", "schedule"]
# Configuration columns that are not compared like the others: the arm's (arms.py) and the seed
# (cells are paired by it).
NOT_COMPARED = [*ARM_COLUMNS, arms.PARAMS_COLUMN, "seed"]
SEARCH_FILE = schema.SEARCH_FILE
# Every file the report reads, with its declared columns: the per-cell files of schema.DECLARED,
# and search.csv, which the sweep writes once (so DECLARED leaves it out) but is read the same way.
READ: dict[str, list[schema.Column]] = {**schema.DECLARED, SEARCH_FILE: schema.SEARCH}


def numbers(file: str, names: list[str]) -> list[str]:
    """The names among `names` that `file` declares as numbers (int or float)."""
    text = {c.name for c in READ[file] if c.dtype == "text"}
    return [name for name in names if name not in text]


def config_columns() -> list[str]:
    """Every shared configuration column but the arm's and the seed, protocol first: cells are
    compared only when all of these match."""
    shared = schema.columns(RUNS_FILE, kind="configuration", shared=True)
    return [c for c in shared if c not in NOT_COMPARED]


def numeric_config() -> list[str]:
    """The shared configuration columns that are numbers, the seed among them."""
    return numbers(RUNS_FILE, schema.columns(RUNS_FILE, kind="configuration", shared=True))


def extension_config() -> list[str]:
    """The project's extension columns that belong to a cell's configuration (docs/results-schema,
    "Extensions in this project"). Optional: a runs.csv written to the shared schema alone lacks
    them. Where present they count like `config_columns`, except that an empty field is allowed
    and is a value of its own. Cost and environment columns are not configuration."""
    return schema.columns(RUNS_FILE, kind="configuration", shared=False)


def required_runs() -> list[str]:
    """The runs.csv columns without which the report refuses the file."""
    return schema.columns(RUNS_FILE, required=True)


def run_metrics() -> list[str]:
    """The shared metric columns: numbers; a missing one is NaN and named in the report."""
    return schema.columns(RUNS_FILE, kind="metric", shared=True)


def extension_metrics() -> list[str]:
    """The project's extension metric columns: numbers where present."""
    return schema.columns(RUNS_FILE, kind="metric", shared=False)


def run_text() -> list[str]:
    """The optional shared text columns (error, regularizer_params, provenance): '' when absent."""
    return schema.columns(RUNS_FILE, dtype="text", shared=True, required=False)


def side_columns(file: str) -> tuple[list[str], list[str]]:
    """(required, numeric) columns of a side file (epochs.csv, calibration.csv, robustness.csv,
    search.csv), as declared."""
    declared = READ[file]
    return [c.name for c in declared if c.required], numbers(file, [c.name for c in declared])


# Units of the cost metrics (speed, time, memory): they measure the machine, not the result.
COST_UNITS = {"images/s", "ms/batch", "MB", "s"}


def environment_columns() -> set[str]:
    """runs.csv columns that say where, when and how fast a cell ran (kind "environment", the
    cost metrics, the log's path): two runs of one cell may differ in them and still be one
    result."""
    cost = {name for name, c in schema.METRICS.items() if c.unit in COST_UNITS}
    return set(schema.columns(RUNS_FILE, kind="environment")) | cost | {"log"}
