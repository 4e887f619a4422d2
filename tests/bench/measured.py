"""What an ok cell measured, for tests whose cells measure nothing (fake executors, hand-made
rows): every runs.csv metric declared in bench.schema with a value inside its declared range, so
the writer (bench.results.check_runs_row) records the row. Imports no torch."""

from __future__ import annotations

from typing import Any

from bench.schema import RUNS


def measured(**values: Any) -> dict[str, Any]:
    """Every declared runs.csv metric: 0 for an integer column, 0.5 for a float one (inside
    every declared range), `values` overriding."""
    row: dict[str, Any] = {
        c.name: 0 if c.dtype == "int" else 0.5 for c in RUNS if c.kind == "metric"
    }
    row.update(values)
    return row
