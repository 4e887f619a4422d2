"""`regbench compare REF NEW [--json] [--all] [--tolerance T] [--pair-on COLUMNS] [--metrics M ...]`:
does NEW reproduce REF?

Prints, for the cells both results folders share (same run_id), a verdict per metric
(identical / within noise / differs, see `bench.compare`), the arms and cells that are not
identical, status changes and the cells found in one folder only; `--json` prints the whole
comparison as JSON instead. Exit codes: 0 nothing differs beyond noise, 1 something differs
(a metric's verdict or a cell's status), 2 bad input or arguments (one line on stderr naming
the problem and the fix). Never imports torch.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from bench.cli import printable


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="regbench compare",
        description="Compare two results folders of one sweep cell by cell (shared run_ids): "
        "a verdict per metric (identical / within noise / differs). Exit code 0 when "
        "nothing differs, 1 when something does, 2 for bad input.",
    )
    p.add_argument(
        "ref", metavar="REF", help="the reference results folder, e.g. results/cpu-quick"
    )
    p.add_argument("new", metavar="NEW", help="the results folder to check against it")
    p.add_argument("--json", action="store_true", help="print the whole comparison as JSON")
    p.add_argument(
        "--all", action="store_true", help="list every arm and cell, not only those that differ"
    )
    p.add_argument(
        "--tolerance", type=float, default=None, metavar="T",
        help="the smallest difference that counts, in the metric's stored units (accuracy "
        "0.000001 = 0.0001 pp); decides alone where REF has one seed (default: 1e-06)",
    )  # fmt: skip
    p.add_argument(
        "--pair-on", default=None, metavar="COLUMNS",
        help="pair cells on these runs.csv columns instead of run_id, e.g. "
        "regularizer,protocol,seed: compares two sweeps that differ in a setting",
    )  # fmt: skip
    p.add_argument(
        "--metrics",
        nargs="+",
        metavar="METRIC",
        help="runs.csv metrics to compare (default: every report metric but speed, time, memory)",
    )
    return p


def _shown(metric: str, value: float, difference: bool = False) -> str:
    """A value in the report's units (e.g. 0.8123 -> 81.23 for %); a difference of a % metric
    is in pp, with two more decimals so small differences show."""
    from bench import schema

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    column = schema.METRICS[metric]
    decimals = column.decimals + (2 if difference else 0)
    return f"{value * column.scale:+.{decimals}f}" if difference else column.show(value)


def _unit(metric: str) -> str:
    from bench import schema

    column = schema.METRICS[metric]
    return column.label + (f" ({column.unit})" if column.unit else "")


def table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text columns, left-aligned, two spaces apart; cells made one-line safe."""
    cells = [[printable(str(c)) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def render(comparison, show_all: bool) -> str:
    from bench.compare import IDENTICAL, rule

    c = comparison
    out = [
        f"REF {c.ref}  vs  NEW {c.new}: {c.shared} shared cells, {len(c.only_ref)} only in REF, "
        f"{len(c.only_new)} only in NEW",
        f"rule: {rule(c.tolerance)}",
        "",
    ]
    rows = [
        [_unit(m.metric), m.verdict, m.cells, m.identical, m.within_noise, m.differs,
         m.arms_differ, _shown(m.metric, m.max_abs_difference, difference=True).lstrip("+")]
        for m in c.metrics.itertuples()
    ]  # fmt: skip
    out.append(table(["metric", "verdict", "cells", "identical", "within noise", "differs",
                      "arms differ", "max |diff|"], rows))  # fmt: skip
    arms = c.arms if show_all else c.arms[c.arms["verdict"] != IDENTICAL]
    if len(arms):
        out += [
            "",
            "arms" + ("" if show_all else " not identical") + " (NEW - REF, mean over seeds):",
        ]
        rows = [
            [a.arm, a.scope, a.metric, a.seeds, _shown(a.metric, a.ref_mean),
             _shown(a.metric, a.new_mean), _shown(a.metric, a.mean_difference, True),
             _shown(a.metric, a.spread), a.verdict]
            for a in arms.itertuples()
        ]  # fmt: skip
        out.append(table(["arm", "scope", "metric", "seeds", "REF", "NEW", "difference",
                          "REF seed std", "verdict"], rows))  # fmt: skip
    cells = c.cells if show_all else c.cells[c.cells["verdict"] == "differs"]
    if len(cells):
        out += ["", "cells" + ("" if show_all else " that differ") + ":"]
        rows = [
            [x.run_id, x.arm, x.scope, x.seed, x.metric, _shown(x.metric, x.ref),
             _shown(x.metric, x.new), _shown(x.metric, x.difference, True), x.verdict]
            for x in cells.itertuples()
        ]  # fmt: skip
        out.append(table(["run_id", "arm", "scope", "seed", "metric", "REF", "NEW", "difference",
                          "verdict"], rows))  # fmt: skip
    if len(c.status):
        out += ["", "cells whose status differs:"]
        rows = [[s.run_id, s.arm, s.scope, s.seed, s.ref_status, s.new_status]
                for s in c.status.itertuples()]  # fmt: skip
        out.append(table(["run_id", "arm", "scope", "seed", "REF", "NEW"], rows))
    for name, frame in [("only in REF", c.only_ref), ("only in NEW", c.only_new)]:
        if len(frame):
            out += ["", f"cells {name}:"]
            rows = [[x.run_id, x.arm, x.scope, x.seed, x.status] for x in frame.itertuples()]
            out.append(table(["run_id", "arm", "scope", "seed", "status"], rows))
    out += ["", *[f"note: {note}" for note in c.notes]] if c.notes else []
    out += ["", "verdict: " + ("NEW differs from REF" if c.differs else "NEW reproduces REF")]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return int(exit_.code or 0)
    from bench.compare import compare_results
    from bench.report.errors import ReportInputError

    try:
        from bench.compare import DEFAULT_TOLERANCE

        tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
        pair_on = (
            [c.strip() for c in args.pair_on.split(",") if c.strip()] if args.pair_on else None
        )
        if args.pair_on is not None and not pair_on:
            raise ReportInputError(
                "--pair-on: give runs.csv columns, e.g. regularizer,protocol,seed"
            )
        comparison = compare_results(
            args.ref, args.new, args.metrics, tolerance=tolerance, pair_on=pair_on
        )
    except ReportInputError as error:
        print(f"regbench compare: error: {printable(str(error))}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=1, allow_nan=False))
    else:
        print(render(comparison, args.all))
    return 1 if comparison.differs else 0
