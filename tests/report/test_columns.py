"""bench/report/columns.py: the columns the report reads are the ones the runner writes, as
bench.schema declares them."""

from __future__ import annotations

from report_fixtures import (
    CALIBRATION_COLUMNS,
    EPOCHS_COLUMNS,
    EXTENSION,
    NEW_METRICS,
    RUNS_COLUMNS,
    make_results,
)

from bench.report import columns


def test_the_report_reads_only_columns_the_runner_writes(tmp_path):
    """The report's column lists against the runner's (bench.schema); the fixture writes them all."""
    read = (
        columns.required_runs()
        + columns.run_metrics()
        + columns.run_text()
        + columns.extension_config()
    )
    assert set(read) <= set(RUNS_COLUMNS)
    # configuration only: cost and environment columns never split a comparison
    assert not {"robustness_s", "num_gpus_visible"} & set(columns.extension_config())
    assert set(columns.extension_config()) == set(EXTENSION)  # every extension config column
    epochs_required, epochs_numeric = columns.side_columns("epochs.csv")
    assert set(epochs_numeric + epochs_required) <= set(EPOCHS_COLUMNS)
    assert set(columns.side_columns("calibration.csv")[0]) == set(CALIBRATION_COLUMNS)
    folder = tmp_path / "results"
    make_results(folder, seeds=(0, 1), protocols=("frozen",))
    header = (folder / "runs.csv").read_text().splitlines()[0].split(",")
    new = [c for c in NEW_METRICS if c not in RUNS_COLUMNS]  # issue 12's, until schema has them
    assert header == [*RUNS_COLUMNS, *new, "unknown_future_column"]
