"""Shared test fixtures: where the real CIFAR-10 copy is, and quiet checksum warnings."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"


@pytest.fixture
def cifar_dir() -> Path:
    """The offline CIFAR-10 copy beside the checkout; skip (with the reason) when absent."""
    if not (SHARED_CIFAR / "cifar-10-batches-py" / "test_batch").exists():
        pytest.skip(f"real CIFAR-10 not found at {SHARED_CIFAR}")
    warnings.filterwarnings("ignore", message=".*checksum differs.*")
    return SHARED_CIFAR
