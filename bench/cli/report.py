"""`regbench report RESULTS_DIR [RESULTS_DIR ...] [--out DIR]`: turn results into a report.

Several folders of one sweep (e.g. from several machines) are merged into one report: a run_id
found in several folders must hold the same row (kept once), else the report is refused; the
folders must hold the same sweep, and `--out` is then required (no default could say which
folders it came from, and reports/<sweep>/ may hold the committed reference).

Exit codes: 0 report written (what the reader must know, e.g. failed cells or a single seed,
is printed as warnings and marked in the report), 2 bad input or arguments (one line on stderr
naming the problem and the fix). Imports pandas, numpy, matplotlib and seaborn, never torch.
"""

from __future__ import annotations

import argparse
import sys

from bench.cli import printable


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="regbench report",
        description="Turn a results folder (runs.csv; epochs.csv, calibration.csv, "
        "robustness.csv where present) into figures, tables, claim verdicts, index.html and "
        "report.md. Several folders of one sweep are merged into one report.",
    )
    p.add_argument(
        "results_dirs",
        nargs="+",
        metavar="RESULTS_DIR",
        help="the folder a sweep wrote, e.g. results/cpu-quick; several folders of one sweep "
        "are merged (identical duplicate run_ids kept once, conflicting ones refused)",
    )
    p.add_argument(
        "--out",
        help="report folder (default for one results folder: reports/<sweep>/ under this "
        "folder; required when several are merged)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return int(exit_.code or 0)
    from bench.report.build import default_out, write_report
    from bench.report.load import ReportInputError, load_results

    try:
        if len(args.results_dirs) > 1 and not args.out:
            raise ReportInputError(
                f"{len(args.results_dirs)} results folders are merged into one report; pass "
                "--out DIR for it (e.g. --out reports/<sweep>-merged)"
            )
        results = load_results(args.results_dirs)
        written = write_report(results, args.out or default_out(results.sweep))
    except ReportInputError as error:
        print(f"regbench report: error: {printable(str(error))}", file=sys.stderr)
        return 2
    verdicts = ", ".join(f"{n} {v}" for v, n in written.verdicts.items())
    found = ", ".join(f"{n} {state}" for state, n in written.findings.items())
    print(f"regbench report: wrote {written.index} (claims: {verdicts}; findings: {found})")
    for note in written.notes:
        print(f"regbench report: warning: {printable(note)}", file=sys.stderr)
    return 0
