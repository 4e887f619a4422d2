"""`regbench report RESULTS_DIR [--out DIR]`: turn a results folder into a report.

Exit codes: 0 report written (what the reader must know, e.g. failed cells or a single seed,
is printed as warnings and marked in the report), 2 bad input or arguments (one line on stderr
naming the problem and the fix). Imports pandas, numpy, matplotlib and seaborn, never torch.
"""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="regbench report",
        description="Turn a results folder (runs.csv; epochs.csv, calibration.csv, "
        "robustness.csv where present) into figures, tables, claim verdicts, index.html and "
        "report.md.",
    )
    p.add_argument("results_dir", help="the folder a sweep wrote, e.g. results/cpu-quick")
    p.add_argument("--out", help="report folder (default: reports/<sweep>/ under this folder)")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return int(exit_.code or 0)
    from bench.report.build import default_out, write_report
    from bench.report.load import ReportInputError, load_results

    try:
        results = load_results(args.results_dir)
        written = write_report(results, args.out or default_out(results.sweep))
    except ReportInputError as error:
        print(f"regbench report: error: {error}", file=sys.stderr)
        return 2
    verdicts = ", ".join(f"{n} {v}" for v, n in written.verdicts.items())
    print(f"regbench report: wrote {written.index} (claims: {verdicts})")
    for note in written.notes:
        print(f"regbench report: warning: {note}", file=sys.stderr)
    return 0
