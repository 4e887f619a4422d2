"""`regbench run`: train one cell and append its rows to a results folder.

Every RunConfig field has a flag, derived from its one declaration in bench/config.py
(`--field-name`, its type, default, choices and help text; a new field gets a flag by itself),
and `--help` shows every default. Regularizer
parameters come as repeated `--reg-param NAME=VALUE` (VALUE parsed as JSON when it can be:
numbers, lists, true/false) and `--schedule`. The configuration, data, backbone, weights and the
`--save-model` target are all checked before training starts.

Exit codes: 2 for bad input (named before any training), 1 when the cell failed or its results
could not be written (a full disk: ENOSPC/EFBIG, named with the fix), else 0. With `--save-model`
the model is saved before the cell's row is recorded, so a recorded cell always has its model; a
model that cannot be saved leaves the row unrecorded too, and rerunning the command trains again.

A cell already recorded as ok in RESULTS_DIR (same run_id) is refused before anything trains or
is written (exit 2, naming the fix: another --results-dir, or a changed setting such as --seed);
runs.csv holds one row per run_id, so there is no "retrain into the same folder". A cell recorded
as failed is trained again and its row replaced.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

from bench.config import RunConfig, specs

PROG = "regbench run"
TYPES = {"int": int, "float": float, "str": str}
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def parse_reg_params(pairs: list[str]) -> dict[str, object]:
    """['alpha=1.0', 'mode=elem'] -> {'alpha': 1.0, 'mode': 'elem'}."""
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--reg-param {pair!r}: expected NAME=VALUE, e.g. alpha=1.0")
        try:
            params[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            params[name.strip()] = text
    return params


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field declared with a flag, with the field's type, default,
    choices and help text (bench.config.hparam)."""
    for name, (field, spec) in specs(RunConfig).items():
        if not spec.flag:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = spec.help.replace("%", "%%")  # argparse formats help with %
        if name == "sweep":  # the results folder's name unless given
            parser.add_argument(flag, default=None, help=help_text)
        elif field.type == "bool":
            parser.add_argument(
                flag, default=field.default, action=argparse.BooleanOptionalAction, help=help_text
            )
        elif field.type in TYPES:
            parser.add_argument(
                flag,
                type=TYPES[field.type],
                default=field.default,
                choices=spec.choices or None,
                help=help_text,
            )
        else:
            raise TypeError(f"RunConfig.{name}: no flag for type {field.type!r}")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default, except where the help already explains it ("(default: ...)")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train one cell and append its rows to RESULTS_DIR.",
        formatter_class=DefaultsHelpFormatter,
    )
    add_config_flags(parser)
    add = parser.add_argument
    add("--reg-param", action="append", default=[], metavar="NAME=VALUE",
        help="a regularizer parameter, repeatable (e.g. alpha=1.0, mode=elem)")  # fmt: skip
    add("--schedule", default=None, help="constant | linear | staged (a regularizer parameter)")
    add("--results-dir", default="results/adhoc", help="folder of runs.csv etc.")
    add("--save-model", default=None, metavar="PATH",
        help="save the trained model (PATH.safetensors + PATH.json) for `regbench predict`; "
        "missing folders are created")  # fmt: skip
    add("--no-progress", action="store_true", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    params = parse_reg_params(args.reg_param)
    if args.schedule is not None:
        params["schedule"] = args.schedule
    values = {
        name: getattr(args, name) for name, (_, spec) in specs(RunConfig).items() if spec.flag
    }
    values["sweep"] = args.sweep or Path(args.results_dir).name
    return RunConfig(**values, regularizer_params=params)


def check_save_target(path: str) -> None:
    """ValueError naming the fix when PATH.safetensors / PATH.json cannot be written: a folder
    in their place, a file where a folder must be, or a folder that is not writable."""
    from bench.model_io import model_paths

    for file in model_paths(path):
        if file.is_dir():
            raise ValueError(f"--save-model: {file} is a folder; pass another PATH")
    folder = model_paths(path)[0].parent.absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--save-model: {existing} is a file, not a folder; pass another PATH")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--save-model: folder {existing} is not writable; pass another PATH")


def refuse_recorded(results_dir: str, run_id: str) -> None:
    """ValueError naming the fix when RESULTS_DIR already records cell RUN_ID as ok. Reads only
    (a missing folder or runs.csv records nothing); called before the lock and again under it."""
    from bench.results import ResultsDir

    recorded = [r for r in ResultsDir(Path(results_dir)).runs() if r["run_id"] == run_id]
    if any(r.get("status") == "ok" for r in recorded):
        raise ValueError(
            f"cell {run_id} is already recorded as ok in {results_dir}/runs.csv; nothing was "
            "trained or written. To train it again, pass another --results-dir (e.g. "
            f"{results_dir.rstrip('/')}-2) or change a setting (e.g. --seed)"
        )


def write_failure(what: str, error: OSError) -> str:
    """One line naming a failed write and the fix."""
    reason = error.strerror or str(error)
    where = f" ({error.filename})" if error.filename else ""
    if error.errno in DISK_FULL:
        return f"{what}: the disk is full ({reason}{where}); free space and rerun the same command"
    return f"{what}: {reason}{where}; fix the folder (permissions, space) and rerun the command"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from bench import train
    from bench.cli.progress import cell_display
    from bench.results import LockError, ResultsDir

    try:
        cfg = config_from_args(args)
        train.preflight(cfg)
        if args.save_model:
            check_save_target(args.save_model)
        results = ResultsDir(Path(args.results_dir))
        refuse_recorded(args.results_dir, cfg.run_id)
    except (ValueError, FileNotFoundError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    try:
        with results.lock():
            refuse_recorded(args.results_dir, cfg.run_id)  # another process may have won
            result = train.train_cell(
                cfg,
                progress=None if args.no_progress else cell_display(cfg),
                keep_model=bool(args.save_model),
            )
            row = result.row
            saved = None
            if args.save_model and row["status"] == "ok":
                from bench.model_io import save_model

                try:  # before the row: a recorded cell always has its model
                    saved = save_model(result.model, cfg, row, args.save_model)
                except OSError as error:
                    what = (
                        f"could not save the model of cell {row['run_id']} to "
                        f"{args.save_model}, so its row was not recorded either"
                    )
                    print(f"{PROG}: error: {write_failure(what, error)}", file=sys.stderr)
                    return 1
            try:
                results.write(result)
            except OSError as error:
                what = f"could not record cell {row['run_id']} in {args.results_dir}"
                if saved:
                    what += f" (its model is saved in {saved[0]})"
                print(f"{PROG}: error: {write_failure(what, error)}", file=sys.stderr)
                return 1
    except (ValueError, FileNotFoundError, LockError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: {write_failure(args.results_dir, error)}", file=sys.stderr)
        return 1
    if row["status"] != "ok":
        print(f"{PROG}: cell {row['run_id']} failed: {row['error']}", file=sys.stderr)
        return 1
    print(
        f"{row['run_id']}  {cfg.regularizer}/{cfg.protocol}  train_acc={row['train_acc']:.4f}  "
        f"test_acc={row['test_acc']:.4f}  gap={row['gap']:+.4f}  test_ece={row['test_ece']:.4f}  "
        f"{row['train_images_per_s']:.0f} img/s  -> {args.results_dir}/runs.csv"
    )
    if saved:
        print(f"saved model: {', '.join(str(p) for p in saved)}")
    return 0
