"""Sweep-file helpers shared by the sweep tests (test_sweep.py, test_sweep_cli.py)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SWEEPS = REPO / "sweeps"
SMOKE = SWEEPS / "smoke.toml"

HEAD = """
name = "t"
[defaults]
dataset = "synthetic"
backbone = "resnet18"
pretrained = "none"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
