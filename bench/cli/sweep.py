"""`regbench sweep`: run a sweep file's cells into one results folder, or show its status.

    regbench sweep run SWEEP.toml [--results-dir DIR] [--executor local|ray|slurm] [--dry-run] ...
        [--set KEY=VALUE ...] [--only AXIS=VALUE ...]
    regbench sweep status SWEEP.toml [--results-dir DIR] [--set ...] [--only ...]
    regbench sweep check SWEEP.toml [--results-dir DIR] [--set ...] [--only ...] [--probe-steps N]
    regbench sweep plan SWEEP.toml [--pilot RESULTS] [--budget-hours H] [--power P]

`check` probes every distinct cell shape of the cells not done yet on this machine (a few
optimizer steps and one evaluation batch each; bench.preflight): memory, speed against the cost
model, data, weights, disk; go (exit 0) or no-go (exit 2, every problem listed). It never
writes into the results folder. `run --preflight` runs it first and stops on a no-go.

`--set` changes the sweep file's [defaults] or replaces an axis's values (new cells, new run ids,
exactly as editing the file would); `--only` runs or shows a subset of the cells, by axis value
or exact label (their run ids unchanged).

Exit codes: 0 every cell ok (or nothing to run), 1 some cells failed, 2 a bad sweep file, option,
results folder or preflight check (nothing ran), 3 the results folder is in use, 130
interrupted. Errors are one line on stderr. The executor flags come from the options the
executors declare (bench.executors); they override the sweep file's [executor] table.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from bench.cli import format_seconds, printable
from bench.cli import plan as plan_cli
from bench.cli.progress import cell_display, stderr_is_terminal
from bench.config import RunConfig
from bench.cost import guess_device, sweep_status
from bench.executors import EXECUTORS, DiskFullError, ExecutorError, all_options
from bench.preflight import PROBE_STEPS
from bench.results import LockError, ResultsDir, ResultsError
from bench.runner import PreflightError, SearchError, executor_settings, run_sweep, search_phases
from bench.search import SEARCH_FOLDER
from bench.sweep import Sweep, SweepError, arm_label, load_sweep, parse_assignments, select


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regbench sweep", description="Sweep files (TOML) -> validated cells -> an executor "
        "-> one results folder.",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("sweep_file", help="a sweep TOML file, e.g. sweeps/smoke.toml")
    common.add_argument("--results-dir", help="results folder (default: results/<sweep name>)")
    common.add_argument(
        "--data-dir", help="folder with cifar-10-batches-py (default: $REGBENCH_DATA, else the "
        "offline copy when it exists)",
    )  # fmt: skip
    common.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override every cell")
    common.add_argument(
        "--set",
        dest="settings",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="change the sweep file's [defaults] (a TOML value, e.g. epochs=1 lr=0.1 "
        "regularizer_params='{ alpha = 1.0 }') or replace an axis's values (seed='[0, 1, 2]'); "
        "new cells and run ids, as editing the file",
    )
    common.add_argument(
        "--only", nargs="+", action="extend", default=[], metavar="AXIS=VALUE",
        help="only the cells with these axis values or exact labels (e.g. "
        "arm='cutmix(alpha=1.0)' seed=0; one axis given twice: either value); run ids unchanged",
    )  # fmt: skip

    run = sub.add_parser(
        "run", parents=[common], help="run the cells not done yet",
        description="Run the cells of SWEEP_FILE that RESULTS_DIR lacks (a killed sweep resumes: "
        "rerun the same command), on the local machine, Ray or SLURM; --dry-run lists the cells "
        "and their estimated cost without training.",
    )  # fmt: skip
    run.add_argument(
        "--executor", choices=tuple(EXECUTORS), default=None,
        help="default: the sweep file's [executor] name, else local",
    )  # fmt: skip
    for option in all_options():
        if option.type is bool:
            run.add_argument(
                option.cli_flag, dest=option.name, action="store_true", help=option.help
            )
        else:
            metavar = option.cli_flag.lstrip("-").replace("-", "_").upper()
            run.add_argument(
                option.cli_flag, dest=option.name, type=option.type, metavar=metavar,
                help=option.help,
            )  # fmt: skip
    run.add_argument("--dry-run", action="store_true", help="list the cells and estimated cost")
    run.add_argument("--retry-failed", action="store_true", help="rerun cells recorded as failed")
    run.add_argument(
        "--skip-preflight", action="store_true",
        help="do not check data and weights in this process first (when only workers see them)",
    )  # fmt: skip
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--preflight", action="store_true",
        help="first probe every cell shape as `regbench sweep check` does; stop on a no-go",
    )  # fmt: skip
    sub.add_parser(
        "status", parents=[common], help="done / failed / remaining, ETA",
        description="Count SWEEP_FILE's cells done, failed and remaining in RESULTS_DIR, with the "
        "estimated time left (rescaled by the measured cell times once some have run). Reads only.",
    )  # fmt: skip
    check = sub.add_parser(
        "check", parents=[common],
        help="will it run here? probe each cell shape: memory, speed, data, weights, disk",
        description="Probe every distinct cell shape of SWEEP_FILE's cells not done yet on this "
        "machine (a few optimizer steps and one evaluation batch each): memory, speed against the "
        "cost model, data, weights, disk. go (exit 0) or no-go (exit 2, every problem listed). "
        "Never writes into RESULTS_DIR.",
    )  # fmt: skip
    check.add_argument(
        "--probe-steps", type=positive_int, default=PROBE_STEPS, metavar="N",
        help="optimizer steps per protocol phase of each probe (the first is not timed)",
    )  # fmt: skip
    plan_cli.add_options(run)  # --dry-run --pilot RESULTS: the plan after the cells
    plan = sub.add_parser("plan", parents=[common], help="seeds x test images for 80% power "
                          "per claim, from a pilot, and what that costs")  # fmt: skip
    plan_cli.add_options(plan)
    return parser


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {value}")
    return value


def executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The executor flags given on the command line (switches on, values set), by option name."""
    given = {option.name: getattr(args, option.name) for option in all_options()}
    return {
        name: value for name, value in given.items() if value is not None and value is not False
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    data_dir = args.data_dir or os.environ.get("REGBENCH_DATA")
    if data_dir:
        overrides["data_dir"] = os.path.abspath(os.path.expanduser(data_dir))
    if args.device:
        overrides["device"] = args.device
    try:
        settings = {key: value for key, _, value in parse_assignments(args.settings, "--set")}
        sweep = load_sweep(args.sweep_file, overrides, settings)
        sweep = select(sweep, parse_assignments(args.only, "--only"))
        results = ResultsDir(args.results_dir or Path("results") / sweep.name)
        results.check()
        if sweep.search is not None:  # its trials' folder and search.csv, before hours of trials
            ResultsDir(results.path / SEARCH_FOLDER).check()
            results.search_rows()
        if args.command == "run":
            executor, options = executor_settings(sweep, args.executor, executor_options(args))
    except (SweepError, ResultsError, ExecutorError) as error:
        return fail(error)

    if args.command == "check":
        return check(sweep, results, args.probe_steps)
    if args.command == "plan" or (args.command == "run" and args.dry_run and args.pilot):
        if args.command == "run":
            print_status(sweep, results, guess_device(sweep.cells), cells=True)
        try:
            plan_cli.print_plan(plan_cli.plan(sweep, args, results.path, plan_device(sweep)))
        except plan_cli.ERRORS as error:
            return fail(error)
        return 0
    if args.command == "status" or args.dry_run:
        try:
            print_status(sweep, results, guess_device(sweep.cells), cells=args.command == "run")
        except (ResultsError, SearchError) as error:  # what `sweep run` refuses too
            return fail(error)
        return 0
    if args.preflight:
        keep = bool(options.get("keep_best_model"))
        code = check(sweep, results, PROBE_STEPS, keep_best_model=keep)
        if code:
            return code
    return run(sweep, results, args, executor, options)


def check(sweep: Sweep, results, probe_steps: int, keep_best_model: bool = False) -> int:
    """`regbench sweep check` (bench.cli.check): 0 go, 2 no-go or a folder it cannot read."""
    from bench.cli import check as check_cli

    try:
        return check_cli.check(
            sweep, results, probe_steps=probe_steps, keep_best_model=keep_best_model
        )
    except (ResultsError, SearchError, SweepError) as error:
        return fail(error)


def plan_device(sweep: Sweep) -> str:
    """The cost model's device for a plan: cuda when any cell asks for it, else cpu (a plan
    never probes for a GPU)."""
    return "cuda" if any(cfg.device == "cuda" for cfg in sweep.cells) else "cpu"


def fail(error: Exception, prefix: str = "") -> int:
    """Print `error` as one line on stderr (line breaks folded, control characters escaped:
    a path or key from the input cannot forge output lines); exit code 2."""
    text = re.sub(r"\s*\n\s*", ": ", f"{prefix}{error}".strip())
    text = printable(text)
    print(f"error: {text}", file=sys.stderr)
    return 2


def run(
    sweep: Sweep, results, args: argparse.Namespace, executor: str, options: dict[str, Any]
) -> int:
    """`regbench sweep run` past the dry run: the sweep with a progress bar, then its summary."""
    bar = ProgressBar(sweep.name, enabled=not args.no_progress)
    try:
        try:
            counts = run_sweep(
                sweep, results, executor=executor, retry_failed=args.retry_failed,
                progress=None if args.no_progress else cell_display,
                skip_preflight=args.skip_preflight,
                on_start=bar.start, on_result=bar.update, **options,
            )  # fmt: skip
        finally:  # before any message below
            bar.close()
    except LockError as error:
        fail(error)
        return 3
    except DiskFullError as error:  # every row recorded so far stays; a plain rerun resumes
        return fail(error)
    except (ExecutorError, ResultsError, SearchError) as error:
        return fail(error)
    except PreflightError as error:  # bad data, backbone or weights: nothing ran
        return fail(error, f"{sweep.path}: preflight: ")
    except KeyboardInterrupt:
        print(f"\ninterrupted; rerun the same command to resume ({results.path})", file=sys.stderr)
        return 130
    print(
        f"sweep {sweep.name}: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} "
        f"skipped (already done), wall {format_seconds(counts['wall_s'])}; results in {results.path}"
    )
    for protocol, note in counts.get("kept_models", {}).items():
        print(f"kept model {results.path}/models/best-{protocol}: {note}")
    if "trials" in counts:
        print(f"search: {counts['trials']} trial cells in {results.path}/search/, the selection "
              f"in {results.path}/search.csv")  # fmt: skip
        for label in counts["unselected"]:
            print(f"  not run (every trial of its arm x scope failed): {label}")
    if counts["failed"]:
        print(
            f"some cells failed (reasons in runs.csv, column error; full logs in {results.path}"
            "/logs/); rerun with --retry-failed"
        )
    return 1 if counts["failed"] else 0


# ---------------------------------------------------------------------------------------------
# Output: status table, progress bar, one line per finished cell


def print_status(sweep: Sweep, results, device: str, *, cells: bool) -> None:
    """Counts and cost estimate of `sweep` against `results`; with `cells`, one line per cell.
    A search sweep: its trials, then its cells (with their selected values once every trial
    has a row; before, at the sweep file's values, for the estimate)."""
    if sweep.search is not None:
        trials, final, missing = search_phases(sweep, results)
        print(f"search: {sweep.search.trials} trial(s) per arm x scope on seeds "
              f"{list(sweep.search.seeds)}, selected on {sweep.search.select} (validation)")  # fmt: skip
        _print_status(trials, ResultsDir(results.path / SEARCH_FOLDER), device, cells=cells)
        if final is None:
            print("the cells below run with each arm's selected values once the trials are done")
        for label in missing:
            print(f"  not run (every trial of its arm x scope failed): {label}")
        sweep = final or sweep
    _print_status(sweep, results, device, cells=cells)


def _print_status(sweep: Sweep, results, device: str, *, cells: bool) -> None:
    status = sweep_status(sweep, results.runs(), device)
    if cells:
        state = {c.run_id: "done" for c in status.done}
        state.update({c.run_id: "failed" for c in status.failed})
        print(f"{'run_id':<13}{'status':<8}{'est.':>8}  cell")
        for cfg, label in zip(sweep.cells, sweep.labels, strict=True):
            est = format_seconds(status.estimates[cfg.run_id])
            print(f"{cfg.run_id:<13}{state.get(cfg.run_id, 'todo'):<8}{est:>8}  {label}")
    total = sum(status.estimates.values())
    print(
        f"sweep {sweep.name}: {len(sweep.cells)} cells: {len(status.done)} done, "
        f"{len(status.failed)} failed, {len(status.todo)} remaining "
        f"(results in {results.path})"
    )
    how = "rescaled by the measured cell times" if status.measured else "the cost model alone"
    print(
        f"estimated cost: {format_seconds(total)} for all cells on {device} (rough cost model, "
        f"see docs/sweeps.md); remaining: {format_seconds(status.eta_s)} ({how})"
    )
    if status.predicted_s > 0:
        print(
            f"cells finished ok: {format_seconds(status.measured_s)} measured, "
            f"{format_seconds(status.predicted_s)} by the cost model "
            f"({status.measured_s / status.predicted_s:.2f}x the estimate)"
        )
    for run_id, error in status.errors.items():
        print(f"  failed {run_id}: {error}")


class ProgressBar:
    """The sweep's tqdm bar (drawn once the cells to run are known) and one line per cell."""

    def __init__(self, name: str, enabled: bool):
        self.name, self.enabled = name, enabled
        self.bar = None
        self.counts = {"ok": 0, "failed": 0}

    def start(self, cells: list[RunConfig]) -> None:
        from tqdm import tqdm

        self.close()  # a search sweep starts twice: its trials, then the selected cells
        self.bar = tqdm(
            total=len(cells), desc=f"sweep {self.name}", unit="cell",
            disable=not self.enabled or not stderr_is_terminal(), position=0,
        )  # fmt: skip

    def update(self, cfg: RunConfig, result) -> None:
        status = result.row["status"]
        self.counts[status] += 1
        self.bar.update(1)
        self.bar.set_postfix(ok=self.counts["ok"], failed=self.counts["failed"])
        detail = result.row.get("error") if status == "failed" else _score(result.row)
        if status == "failed" and result.row.get("log"):
            detail += f" (log: {result.row['log']})"
        self.bar.write(f"{status:<6} {cfg.run_id} {_short(cfg)}  {detail}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _short(cfg: RunConfig) -> str:
    size = f"{cfg.train_per_class}/class" if cfg.train_per_class else cfg.train_size or "all"
    return f"{cfg.backbone} {arm_label(cfg)} {cfg.protocol} n={size} seed={cfg.seed} lr={cfg.lr:g}"


def _score(row: dict[str, Any]) -> str:
    parts = [f"{k}={row[k]:.4f}" for k in ("test_acc", "test_ece") if _is_number(row.get(k))]
    if _is_number(row.get("wall_s")):
        parts.append(f"{row['wall_s']:.1f}s")
    return " ".join(parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
