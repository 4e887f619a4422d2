"""bench.provenance: the environment columns of a row."""

from __future__ import annotations

import re

import torch

from bench import provenance
from bench.schema import RUNS_FILE, columns


def test_environment_fills_exactly_the_declared_environment_columns():
    env = provenance.environment(torch.device("cpu"))
    assert list(env) == columns(RUNS_FILE, kind="environment")
    assert env["device"].startswith("cpu:") and env["torch_version"] == torch.__version__
    assert isinstance(env["num_gpus_visible"], int)
    assert provenance.environment()["device"] is None


def test_started_at_is_utc_iso_to_the_second():
    assert provenance.started_at(0.0) == "1970-01-01T00:00:00+00:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", provenance.started_at())


def test_git_commit_can_be_passed_in(monkeypatch):
    monkeypatch.setenv("REGBENCH_GIT_COMMIT", "feedbeef")
    provenance.git_commit.cache_clear()
    try:
        assert provenance.git_commit() == "feedbeef"
    finally:
        provenance.git_commit.cache_clear()


def test_peak_memory_is_positive_on_the_cpu():
    assert provenance.peak_memory_mb(torch.device("cpu")) > 0
