"""`regbench regularizers [--json]`: list the registered regularizers and the schedules, with
their parameters and defaults (what a sweep file's `regularizer_params` may set)."""

from __future__ import annotations

import argparse
import json

from regularizers import describe
from regularizers.schedules import describe as describe_schedules


def _format(title: str, entries: dict) -> list[str]:
    lines = [title]
    for name, entry in entries.items():
        lines.append(f"  {name:<16}{entry['doc']}")
        lines += [f"      {key} = {json.dumps(value)}" for key, value in entry["params"].items()]
    return lines


def main(argv: list[str]) -> int:
    """Print the regularizers and schedules; `--json` prints one JSON object instead."""
    parser = argparse.ArgumentParser(
        prog="regbench regularizers",
        description="List the registered regularizers and schedules with parameters and defaults.",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    info = {"regularizers": describe(), "schedules": describe_schedules()}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    lines = _format(
        "regularizers (regularizer = NAME; parameters with defaults):", info["regularizers"]
    )
    lines += [""]
    lines += _format(
        "schedules (schedule = NAME, for any regularizer but none; their parameters go beside "
        "the regularizer's):",
        info["schedules"],
    )
    print("\n".join(lines))
    return 0
