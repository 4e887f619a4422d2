"""Where a sweep's cells run: the executor registry. Each executor is one module declaring an
`EXECUTOR` (bench.executors.base.Executor: name, run function, options); `regbench sweep run`
builds its `--executor` choices and flags from these declarations, and `check_options` validates
the options a sweep is run with against them.

    local   this process, or one worker process per visible GPU    (bench.executors.local)
    ray     one Ray task per cell                                  (bench.executors.ray)
    slurm   one SLURM array task per cell, through submitit        (bench.executors.slurm)

A new executor: a module with its run function (recording through base.Recorder) and its
`EXECUTOR`, plus one entry below.
"""

from __future__ import annotations

from typing import Any

from bench.executors import local, ray, slurm
from bench.executors.base import DiskFullError, Executor, ExecutorError, Option, check_cpus_per_cell

EXECUTORS: dict[str, Executor] = {e.name: e for e in (local.EXECUTOR, ray.EXECUTOR, slurm.EXECUTOR)}


def all_options() -> list[Option]:
    """Every declared option once, in registry order (an option shared by several executors,
    e.g. cpus_per_cell, is one declaration)."""
    seen: dict[str, Option] = {}
    for executor in EXECUTORS.values():
        for option in executor.options:
            seen.setdefault(option.name, option)
    return list(seen.values())


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The keyword options for executor `name`: `options` checked against its declarations
    (raises ExecutorError naming the flag and the executors that take it, or what the
    executor needs installed), defaults filled in. Another executor's option left at its
    default (e.g. keep_best_model=False) is dropped."""
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
    declared = {option.name: option for option in EXECUTORS[name].options}
    known = {option.name: option for option in all_options()}
    checked = {}
    for key, value in options.items():
        option = declared.get(key)
        if option is None and key in known and value == known[key].default:
            continue
        if option is None and key in known:
            takers = [e.name for e in EXECUTORS.values() if known[key] in e.options]
            raise ExecutorError(
                f"{known[key].cli_flag} works with --executor {', '.join(takers)} only"
            )
        if option is None:
            allowed = ", ".join(declared) or "none"
            raise ExecutorError(f"executor {name!r} has no option {key!r}; allowed: {allowed}")
        wrong_type = isinstance(value, bool) != (option.type is bool)
        if value is not None and (wrong_type or not isinstance(value, option.type)):
            raise ExecutorError(
                f"{option.cli_flag}: expected {option.type.__name__}, got {value!r}"
            )
        if option.check is not None:
            option.check(value)
        checked[key] = value
    if EXECUTORS[name].requires is not None:
        EXECUTORS[name].requires()
    filled = {**{o.name: o.default for o in declared.values()}, **checked}
    if "cpus_per_cell" in filled:
        check_cpus_per_cell(filled["cpus_per_cell"], here=EXECUTORS[name].runs_here(filled))
    return filled


__all__ = [
    "EXECUTORS", "DiskFullError", "Executor", "ExecutorError", "Option", "all_options",
    "check_options",
]  # fmt: skip
