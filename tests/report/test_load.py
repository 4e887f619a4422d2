"""bench/report/load.py: `Results` is plain data (no property or method computes on access),
every field filled once by `load_results`, and the split modules each do one job."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from report_fixtures import make_results

from bench.report import load
from bench.report.load import Results, load_results


def test_results_is_a_frozen_dataclass_with_no_computed_attributes():
    assert dataclasses.is_dataclass(Results)
    own = {name: value for name, value in vars(Results).items() if not name.startswith("__")}
    computed = {name for name, value in own.items()
                if isinstance(value, property) or inspect.isfunction(value)}  # fmt: skip
    assert not computed  # no `ok` property, no `scopes()` method: they are fields


def test_every_field_is_filled_by_loading_and_never_changes(tmp_path):
    make_results(
        tmp_path, seeds=(0, 1), protocols=("frozen", "unfrozen"), failed=[("cutmix", "frozen", 1)]
    )
    results = load_results(tmp_path)
    runs = results.runs
    assert results.ok.equals(runs[runs["status"] == "ok"])
    assert results.failed.equals(runs[runs["status"] == "failed"]) and len(results.failed) == 1
    assert results.scope_columns == ["protocol", *results.varying]
    assert results.protocols == ["frozen", "unfrozen"]
    assert results.scopes == ["protocol=frozen", "protocol=unfrozen"]
    assert list(results.styles) == [a for a in results.styles if a in results.arms]
    assert "test_acc" in results.measured and "ece_over" in results.measured
    assert "sweep_cells" not in results.measured  # the fixture leaves it empty
    with pytest.raises(dataclasses.FrozenInstanceError):
        results.ok = runs  # a field is data: nothing recomputes or replaces it later


def test_load_only_assembles():
    """load.py runs the jobs of the modules it imports; it reads no file itself."""
    source = inspect.getsource(load)
    assert "read_csv(" not in source and "open(" not in source
