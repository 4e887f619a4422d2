"""`regbench sweep plan SWEEP.toml [--pilot RESULTS] [--budget-hours H] [--power P]`: size a
sweep for its claims from a pilot's spreads (bench.planner), and print the plan. Also shown by
`regbench sweep run --dry-run --pilot RESULTS`.

Exit codes: 0 plan printed, 2 a bad sweep file, pilot or option (one line on stderr).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from bench.planner import DEFAULT_BUDGET_HOURS, Plan, PlanError, plan_sweep
from bench.report.load import ReportInputError, load_results
from bench.report.stats import PowerInputError
from bench.sweep import Sweep


def add_options(parser: argparse.ArgumentParser, *, pilot_required: bool = False) -> None:
    """The planner's flags (on `sweep plan`, and `--pilot` etc. on `sweep run --dry-run`)."""
    parser.add_argument(
        "--pilot", metavar="RESULTS", required=pilot_required,
        help="results folder of a pilot of the same preset (default for `plan`: the sweep's own "
        "results folder)",
    )  # fmt: skip
    parser.add_argument(
        "--budget-hours", type=float, default=DEFAULT_BUDGET_HOURS, metavar="H",
        help=f"device hours the plan may spend (default {DEFAULT_BUDGET_HOURS:g})",
    )  # fmt: skip
    parser.add_argument(
        "--power", type=float, default=0.8, metavar="P", help="target power (default 0.8)"
    )


def _hours(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.0f} min"


def _seeds(value: float) -> str:
    return "> 100,000" if math.isinf(value) else f"{value:,.0f}"


def _pp(value: float) -> str:
    return "?" if math.isnan(value) else f"{100 * value:.2f}"


def plan(sweep: Sweep, args: argparse.Namespace, results_dir: Path, device: str) -> Plan:
    """The plan of `sweep` from `--pilot` (or the sweep's results folder). Raises PlanError,
    ReportInputError or PowerInputError for bad input."""
    pilot = Path(args.pilot) if args.pilot else results_dir
    if not (pilot / "runs.csv").is_file() and not args.pilot:
        raise PlanError(
            f"no pilot: {str(pilot)!r} has no runs.csv; pass --pilot RESULTS (a results folder "
            "of a pilot of the same preset, e.g. results/cpu-evidence)"
        )
    return plan_sweep(sweep, load_results(pilot), device, args.budget_hours, args.power)


def print_plan(found: Plan) -> None:
    print(
        f"plan for sweep {found.sweep} from pilot {found.pilot}: {found.family} claim rows with "
        f"a p (Holm's first threshold {found.alpha:.2g}; equivalence {found.alpha_equivalence:.2g}), "
        f"80%-power pairs to decide each row whether the truth is the margin or 0, cost model on "
        f"{found.device}, budget {_hours(found.budget_s)}"
    )
    print(
        f"{'seeds':>9} {'range':>17} {'images':>7} {'cost':>9}  {'sd pp (seed, images)':<22} claim @ scope"
    )
    for row in found.rows:
        best = row.best
        spread = f"{_pp(row.sd)} ({_pp(row.sd_seed)}, {_pp(row.sd_images)})"
        if best is None:
            option = row.options[0]
            print(f"{_seeds(option.seeds):>9} {'':>17} {option.images:>7} {'never':>9}  "
                  f"{spread:<22} {row.claim_id} @ {row.scope}")  # fmt: skip
            continue
        interval = f"{_seeds(best.seeds_low)}-{_seeds(best.seeds_high)}"
        note = f"  [{row.note}]" if row.note else ""
        print(f"{_seeds(best.seeds):>9} {interval:>17} {best.images:>7} {_hours(best.cost_s):>9}  "
              f"{spread:<22} {row.claim_id} @ {row.scope}{note}")  # fmt: skip
    print("whole sweep (every cell, seeds shared by every row of a scope):")
    for option in found.sweep_options:
        images = "as in the sweep file" if option.images is None else f"{option.images:,}"
        print(
            f"  {images} test images per seed: one seed of every cell {_hours(option.seed_cost_s)};"
            f" the budget buys {option.affordable_seeds:,} seeds; {len(option.decided)} of "
            f"{len(found.rows)} rows get 80% power, with {option.seeds_for_those:,} seeds "
            f"({_hours(option.seeds_for_those * option.seed_cost_s)})"
        )
    best = found.best_sweep
    if best is not None:
        left = [f"{r.claim_id} @ {r.scope}" for r in found.rows
                if f"{r.claim_id} @ {r.scope}" not in best.decided]  # fmt: skip
        images = "the sweep file's" if best.images is None else f"{best.images:,}"
        print(
            f"plan: {best.seeds_for_those:,} seeds x {images} test images per seed "
            f"({_hours(best.seeds_for_those * best.seed_cost_s)}) decides {len(best.decided)} of "
            f"{len(found.rows)} rows with 80% power; {len(left)} cannot be decided within "
            f"{_hours(found.budget_s)}:"
        )
        for label in left:
            print(f"  {label}")
    for label in found.skipped:
        print(f"not planned: {label}")


ERRORS = (PlanError, ReportInputError, PowerInputError)
