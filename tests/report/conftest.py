"""Shared report fixtures: results folders with planted effects, and reports built from them once.

Each built report is session-scoped: drawing the figures is the slow part (seconds), so the
tests that only read a report share one build.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from report_fixtures import make_results  # noqa: E402  (after the backend choice)

from bench.report import build_report  # noqa: E402


def _built(root: Path, **kwargs) -> SimpleNamespace:
    runs = make_results(root / "results", **kwargs)
    index = build_report(root / "results", root / "report")
    return SimpleNamespace(results=root / "results", out=root / "report", runs=runs, index=index)


@pytest.fixture(scope="session")
def quick(tmp_path_factory) -> SimpleNamespace:
    """Like results/cpu-quick: 5 arms x 3 protocols x 3 seeds, one failed cell (mixup, frozen)."""
    return _built(tmp_path_factory.mktemp("quick"), failed={("mixup", "frozen", 2)})


@pytest.fixture(scope="session")
def sizes(tmp_path_factory) -> SimpleNamespace:
    """Two backbones x two train sizes, frozen only: facet rows and the train-size figure."""
    arms = [("none", "constant"), ("mixup", "constant"), ("cutmix", "constant")]
    return _built(
        tmp_path_factory.mktemp("sizes"),
        arms=arms,
        protocols=("frozen",),
        train_sizes=(500, 5000),
        backbones=("resnet18", "tf_efficientnet_lite0"),
        robustness=False,
    )


@pytest.fixture(scope="session")
def single(tmp_path_factory) -> SimpleNamespace:
    """One seed per cell: a report without intervals."""
    return _built(tmp_path_factory.mktemp("single"), seeds=(0,), protocols=("frozen", "unfrozen"))
