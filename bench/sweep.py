"""Sweep files (TOML) -> validated cells: `load_sweep(path) -> Sweep`.

A sweep file has a `name`, `[defaults]` (any RunConfig field), `[axes]` whose lists are crossed
(`[[axes.arm]]` tables pair a regularizer with its parameters) and optional `[[extra]]` cells
(defaults + their own keys, not crossed). The format is documented, with an example, in
docs/sweeps.md. Everything is checked before the first cell runs: a mistake names the file, the
key and the allowed values.

Cells are identified by RunConfig.run_id, so rerunning a sweep skips what runs.csv already holds
(bench.runner); bench.cost estimates and reports a sweep's progress; `regbench sweep` is
bench.cli.sweep.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.arms import ARM_FIELDS, SEED_FIELDS, Arm, Scope, arm_of
from bench.config import RunConfig, check_config, config_fields, from_dict
from bench.files import NotRegularFileError, file_hexdigest, read_regular
from bench.search import Search, parse_search

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TOP_LEVEL_KEYS = ("name", "description", "defaults", "axes", "extra", "executor", "search")
ARM_KEYS = ("regularizer", "params", "cross")
# Fields a sweep file may not set: the sweep name comes from `name`, its cell count from the
# expanded cells. Field -> what sets it.
RESERVED_FIELDS = {"sweep": "the sweep's `name`", "sweep_cells": "counting the sweep's cells",
                   "sweep_file_sha256": "hashing the sweep file"}  # fmt: skip
# A sweep's name is a folder name (results/<name>): no separators, no `.`/`..`, no hidden name.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_DEPTH = 16  # deepest nesting of arrays and tables a sweep file may have (real ones: 4)
MAX_SWEEP_BYTES = 1 << 20  # largest sweep file read (the committed ones: under 10 kB)


class SweepError(ValueError):
    """A sweep file that cannot run; the message names the file and the key."""


# (the fields one axis value sets, its label: `cutmix(alpha=1.0)`, `frozen`, `0.1`)
Choice = tuple[dict[str, Any], str]


@dataclass(frozen=True)
class Sweep:
    name: str
    path: Path
    cells: list[RunConfig]  # in a stable order: the first axis varies slowest, then extras
    labels: list[str]  # per cell: where it comes from, e.g. "arm=cutmix(alpha=1.0) protocol=frozen"
    description: str = ""
    axes: dict[str, list[Choice]] = field(default_factory=dict)  # axis -> its values, in order
    executor: dict[str, Any] = field(default_factory=dict)  # the [executor] table, checked
    # the [search] table, checked (bench.search): `cells` then hold the values before selection
    search: Search | None = None
    # per cell: the axis values it shares with the other arms and seeds of its scope (what a
    # search selects per arm x scope; bench.arms)
    scopes: list[Scope] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not len(self.cells) == len(self.labels) == len(self.scopes):
            raise ValueError(
                f"a sweep has a label and a scope per cell: {len(self.cells)} cells, "
                f"{len(self.labels)} labels, {len(self.scopes)} scopes"
            )


# ---------------------------------------------------------------------------------------------
# Loading and validation


def load_sweep(
    path: str | os.PathLike[str],
    overrides: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> Sweep:
    """Read, expand and validate a sweep file. `settings` (`--set KEY=VALUE`) change the file's
    [defaults], or replace an axis's values when KEY names an axis (`seed=[0, 1, 2]`), exactly
    as editing the file would (new values: new cells and run ids; its own values: the same cells
    and ids); `overrides` (data_dir,
    device from the command line: not part of run_id) are applied to every cell. Raises
    SweepError naming the file and the key."""
    path = Path(path)
    doc = _read(path)

    def fail(key: str, message: str) -> SweepError:
        return _fail(path, key, message)

    unknown = [key for key in doc if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise fail(unknown[0], f"unknown top-level key; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise fail(
            "name", "a non-empty string of at most 100 letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit, is required (it names the results folder); "
            f"got {name!r}",
        )  # fmt: skip
    description = doc.get("description", "")
    defaults = _table(doc.get("defaults", {}), "defaults", fail)
    axes = _table(doc.get("axes", {}), "axes", fail)
    extras = doc.get("extra", [])
    if not isinstance(extras, list) or not all(isinstance(e, dict) for e in extras):
        raise fail("extra", "must be an array of tables ([[extra]])")
    if not axes and not extras:
        raise fail("axes", "the sweep has no cells: give [axes] and/or [[extra]] cells")
    executor = _executor(doc.get("executor", {}), fail)

    _check(_config(defaults, "defaults", {}, fail), "defaults", fail)
    # `--set AXIS=[...]` replaces that axis's values (a single value: a one-value axis), exactly
    # as editing axes.AXIS would; other keys change [defaults].
    settings = dict(settings or {})
    for axis in [key for key in settings if key in axes]:
        value = settings.pop(axis)
        axes = {**axes, axis: value if isinstance(value, list) else [value]}
    owner: dict[str, str] = {}  # field -> the axis that sets it
    choices = {axis: _axis(axis, values, defaults, owner, fail) for axis, values in axes.items()}
    if settings:
        defaults = _apply_settings(defaults, settings, owner, fail)
        choices = {axis: _axis(axis, axes[axis], defaults, {}, fail) for axis in axes}
    cells, labels, scopes = _expand(defaults, choices, extras, dict(overrides or {}), fail)
    # Every cell records how many the whole sweep has (--only keeps it: the sweep is unchanged),
    # so a report of a half-finished sweep can say how many are missing.
    # the sweep file's hash in every row (provenance; a FIFO or the like is not read twice)
    digest = file_hexdigest(path, "sha256")[:12] if path.is_file() else ""
    cells = [
        cfg.replace(sweep=name, sweep_cells=len(cells), sweep_file_sha256=digest) for cfg in cells
    ]
    _check_cells(cells, labels, fail)
    _check_backbones(cells, labels, fail)
    search = None
    if "search" in doc:
        search = parse_search(doc["search"], cells, labels, set(owner), fail)
        _check_settings_not_searched(search, settings or {}, fail)
    return Sweep(name, path, cells, labels, str(description), choices, executor, search, scopes)


def _read(path: Path) -> dict[str, Any]:
    """The sweep file's TOML document: a regular file only (a FIFO or /dev/zero is refused
    before anything is read), at most MAX_SWEEP_BYTES, UTF-8 (a leading BOM is skipped)."""
    text = ""
    try:
        text = read_regular(path, MAX_SWEEP_BYTES).decode("utf-8-sig")
        doc = tomllib.loads(text)
    except FileNotFoundError:
        raise SweepError(f"{path}: no such sweep file") from None
    except NotRegularFileError as error:
        if error.kind == "folder":
            raise SweepError(f"{path}: is a folder; give a sweep file (.toml)") from None
        if error.kind == "too large":
            raise SweepError(
                f"{path}: larger than {MAX_SWEEP_BYTES} bytes; a sweep file is a few kB of TOML "
                "(give the sweep file, not a data file)"
            ) from None
        raise SweepError(
            f"{path}: a {error.kind}, not a regular file; give a sweep file (.toml)"
        ) from None
    except OSError as error:
        raise SweepError(
            f"{path}: cannot read the sweep file ({error.strerror or error})"
        ) from None
    except UnicodeDecodeError as error:
        raise SweepError(
            f"{path}: not UTF-8 text (byte {error.start}: {error.object[error.start : error.start + 1]!r}); "
            "save the sweep file as UTF-8"
        ) from None
    except RecursionError:
        raise SweepError(
            f"{path}: arrays or tables nested too deeply (at most {MAX_DEPTH})"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise SweepError(_syntax_error(path, text, error)) from None
    depth = _depth(doc)
    if depth > MAX_DEPTH:
        raise SweepError(
            f"{path}: arrays or tables nested {depth} deep; at most {MAX_DEPTH} (see docs/sweeps.md)"
        )
    return doc


def _depth(value: Any) -> int:
    """How deeply lists and dicts nest in `value` (without recursion: any depth is safe)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


# ---------------------------------------------------------------------------------------------
# --set, --only and [executor]


def parse_assignments(pairs: list[str], flag: str) -> list[tuple[str, str, Any]]:
    """`KEY=VALUE` strings -> (key, text, value): the value read as a TOML value (`3`, `0.1`,
    `true`, `"x"`, `[1, 2]`, `{ alpha = 1.0 }`), else kept as the plain string (so
    `backbone=resnet18` needs no quotes). SweepError on a pair without `KEY=`."""
    out = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise SweepError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {flag} epochs=1")
        try:
            doc = tomllib.loads(f"v = {text}")
            value = doc["v"] if set(doc) == {"v"} and _depth(doc) <= MAX_DEPTH else text
        except (tomllib.TOMLDecodeError, RecursionError):
            value = text
        out.append((key, text, value))
    return out


def _apply_settings(
    defaults: dict[str, Any], settings: dict[str, Any], owner: dict[str, str], fail
) -> dict[str, Any]:
    """The file's [defaults] with `--set` applied, each key and the result checked."""
    for key in settings:
        _known_field(key, f"--set {key}", fail)
        setter = owner.get(key)
        if setter is not None:
            raise fail(
                f"--set {key}",
                f"axes.{setter} sets {key!r} in every cell, so --set would change nothing; "
                f"replace the axis with --set {setter}=[...] or pick cells with --only "
                f"{setter}=VALUE",
            )
    merged = {**defaults, **settings}
    if "regularizer" in settings and "regularizer_params" not in settings:
        merged["regularizer_params"] = {}  # parameters belong to the regularizer they came with
    _check(_config(merged, "--set", {}, fail), "--set", fail)
    return merged


def _check_settings_not_searched(search: Search, settings: dict[str, Any], fail) -> None:
    """`--set` of a field the search chooses would change no cell (the selection replaces it in
    every cell, trials included): refused, as `--set` of a field an axis sets is."""
    for param in search.space:
        if param.field and param.name in settings:
            raise fail(
                f"--set {param.name}",
                f"[search.space] chooses {param.name!r} in every cell, so --set would change "
                f"nothing; edit search.space.{param.name} in the sweep file",
            )


def select(sweep: Sweep, only: list[tuple[str, str, Any]]) -> Sweep:
    """The cells of `sweep` whose axis values match `--only AXIS=VALUE` pairs (several values of
    one axis: any of them; several axes: all of them), in the sweep's order; run ids unchanged.
    A value matches an axis value equal to it or whose label it is, exactly
    (`arm=cutmix(alpha=1.0)`); a bare regularizer name (`arm=cutmix`) matches the one arm of that
    regularizer, and is refused, with the arms' labels, when several arms share it. SweepError
    names the axes or values allowed.
    A search sweep keeps its search: the kept cells' arm x scopes are searched, as in the whole
    sweep (bench.search decided at load how their data_seed goes with their seed)."""
    wanted: dict[str, list[dict[str, Any]]] = {}
    for axis, text, value in only:
        if axis not in sweep.axes:
            hint = difflib.get_close_matches(axis, list(sweep.axes), n=1)
            raise _fail(
                sweep.path, f"--only {axis}",
                "not an axis of this sweep" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; axes: {', '.join(sweep.axes) or 'none (only [[extra]] cells)'}",
            )  # fmt: skip
        found = [change for change, label in sweep.axes[axis]
                 if _matches(axis, change, label, text, value)]  # fmt: skip
        if not found:
            by_name = [label for change, label in sweep.axes[axis]
                       if change.get("regularizer") == text.strip()]  # fmt: skip
            if len(by_name) > 1:
                raise _fail(
                    sweep.path, f"--only {axis}={text}",
                    f"{len(by_name)} arms use {text.strip()!r}: {', '.join(by_name)}; give one "
                    "label exactly (quoted), or several --only values",
                )  # fmt: skip
            found = [change for change, _ in sweep.axes[axis]
                     if change.get("regularizer") == text.strip()]  # fmt: skip
        if not found:
            names = ", ".join(label for _, label in sweep.axes[axis])
            raise _fail(
                sweep.path, f"--only {axis}={text}", f"not a value of axes.{axis}; choices: {names}"
            )
        wanted.setdefault(axis, []).extend(found)
    keep = [
        i for i, cfg in enumerate(sweep.cells)
        if all(any(_has(cfg, change) for change in changes) for changes in wanted.values())
    ]  # fmt: skip
    return dataclasses.replace(
        sweep,
        cells=[sweep.cells[i] for i in keep],
        labels=[sweep.labels[i] for i in keep],
        scopes=[sweep.scopes[i] for i in keep],
    )


def _matches(axis: str, change: dict[str, Any], label: str, text: str, value: Any) -> bool:
    if text.strip() == label:
        return True
    plain = set(change) == {axis}
    return plain and type(value) is type(change[axis]) and value == change[axis]


def _has(cfg: RunConfig, change: dict[str, Any]) -> bool:
    """Whether a cell holds the fields of one axis value (an [[extra]] cell can, too)."""
    normal = from_dict(change)
    return all(getattr(cfg, name) == getattr(normal, name) for name in change)


def _executor(table: Any, fail) -> dict[str, Any]:
    """The [executor] table: `name` (default "local") and that executor's options, checked
    against their declarations in bench.executors."""
    table = dict(_table(table, "executor", fail))
    from bench.executors import EXECUTORS, ExecutorError, check_options

    name = table.pop("name", "local")
    if not isinstance(name, str) or name not in EXECUTORS:
        raise fail("executor.name", f"got {name!r}; allowed: {', '.join(EXECUTORS)}")
    declared = [option.name for option in EXECUTORS[name].options]
    for key in table:
        if key not in declared:
            hint = difflib.get_close_matches(key, declared, n=1)
            raise fail(
                f"executor.{key}",
                f"executor {name!r} has no option {key!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; allowed: name, {', '.join(declared) or '(none)'}",
            )
    try:
        check_options(name, table)
    except ExecutorError as error:
        raise fail("executor", str(error)) from None
    return {"name": name, **table}


def _axis(
    axis: str, values: Any, defaults: dict[str, Any], owner: dict[str, str], fail
) -> list[tuple[dict[str, Any], str]]:
    """One axis -> its (change, label) choices: a non-empty list of distinct values, each checked
    on top of the defaults. A value is a scalar (axes.FIELD = [...]) or a table of fields set
    together ([[axes.NAME]], e.g. an arm = regularizer + params, or a data regime = train_size +
    epochs). `owner` (field -> axis) catches two axes setting one field."""
    key = f"axes.{axis}"
    if not isinstance(values, list):
        raise fail(key, f"must be a list of values, got {values!r}")
    if not values:
        raise fail(key, "is empty; give at least one value")
    tables = [isinstance(value, dict) for value in values]
    if any(tables) and not all(tables):
        raise fail(key, "mixes tables and plain values; use one kind")
    wheres = [f"{key}[{i}]" for i in range(len(values))]  # the key each value is named by
    if all(tables):
        if axis == "regularizer_params":
            raise fail(key, "give regularizer parameters as [[axes.arm]] tables")
        allowed = ARM_KEYS if axis == "arm" else None
        if axis == "arm":  # a table with `cross` is several arms
            crossed = [(arm, f"{where}.cross[{j}]" if "cross" in value else where)
                       for value, where in zip(values, wheres, strict=True)
                       for j, arm in enumerate(_crossed(value, where, fail))]  # fmt: skip
            values, wheres = [arm for arm, _ in crossed], [where for _, where in crossed]
        changes = [_change(v, w, fail, allowed) for v, w in zip(values, wheres, strict=True)]
        labels = [_label(change) for change in changes]
    else:
        _known_field(axis, key, fail)
        if axis == "regularizer_params":
            raise fail(key, "give regularizer parameters as [[axes.arm]] tables")
        changes = [_change({axis: v}, w, fail) for v, w in zip(values, wheres, strict=True)]
        labels = [str(value) for value in values]
    for name in {f for change in changes for f in change}:
        if name in owner:
            raise fail(key, f"sets {name!r}, which axes.{owner[name]} already sets")
        owner[name] = axis
    seen: dict[str, int] = {}
    for i, change in enumerate(changes):
        where = wheres[i]
        _check(_config(defaults, where, change, fail), where, fail)
        blob = json.dumps(change, sort_keys=True, default=str)
        if blob in seen:
            raise fail(where, f"duplicate of {wheres[seen[blob]]} ({axis}={labels[i]})")
        seen[blob] = i
    return list(zip(changes, labels, strict=True))


def _expand(
    defaults: dict[str, Any],
    choices: dict[str, list[Choice]],
    extras: list[dict[str, Any]],
    overrides: dict[str, Any],
    fail,
) -> tuple[list[RunConfig], list[str], list[Scope]]:
    """The crossed axes (the first varies slowest), then the extra cells, with their labels and
    scopes."""
    cells: list[RunConfig] = []
    labels: list[str] = []
    scopes: list[Scope] = []
    for combo in itertools.product(*choices.values()) if choices else ():
        change = {field: value for part, _ in combo for field, value in part.items()}
        cells.append(_config(defaults, "axes", {**change, **overrides}, fail))
        labels.append(
            " ".join(f"{axis}={label}" for axis, (_, label) in zip(choices, combo, strict=True))
        )
        scopes.append(_scope([part for part, _ in combo]))
    for i, extra in enumerate(extras):
        where = f"extra[{i}]"
        change = _change(extra, where, fail)
        cells.append(_config(defaults, where, {**change, **overrides}, fail))
        labels.append(f"{where} {_label(change)}")
        scopes.append(_scope([change]))
    return cells, labels, scopes


def _scope(changes: list[dict[str, Any]]) -> Scope:
    """A cell's scope: the fields its axis values (or its [[extra]] table) set, in the sweep's
    order, but its arm's and its seed's."""
    return Scope.of((name, value) for change in changes for name, value in change.items()
                    if name not in (*ARM_FIELDS, *SEED_FIELDS))  # fmt: skip


def _check_cells(cells: list[RunConfig], labels: list[str], fail) -> None:
    """Every cell valid, and no two cells with the same configuration (run_id)."""
    first: dict[str, int] = {}
    for i, cfg in enumerate(cells):
        _check(cfg, f"cell {i} ({labels[i]})", fail)
        if cfg.run_id in first:
            j = first[cfg.run_id]
            raise fail(
                "cells",
                f"duplicate cells: cell {j} ({labels[j]}) and cell {i} ({labels[i]}) "
                f"have the same configuration (run_id {cfg.run_id})",
            )
        first[cfg.run_id] = i


def _syntax_error(path: Path, text: str, error: Exception) -> str:
    """'<file>:<line>: TOML syntax error: ...' with the offending line (tomllib only says
    "(at line L, column C)" or "(at end of document)" in its message)."""
    lines = text.splitlines() or [""]
    found = re.search(r"at line (\d+)", str(error))
    line = int(found.group(1)) if found else len(lines)
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    return f"{path}:{line}: TOML syntax error: {error}" + (f"\n    {text}" if text else "")


def _table(value: Any, key: str, fail) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(key, f"must be a table ([{key}]), got {value!r}")
    return value


def _known_field(name: str, key: str, fail) -> None:
    fields = [f for f in config_fields() if f not in RESERVED_FIELDS]
    if name in RESERVED_FIELDS:
        raise fail(key, f"set by {RESERVED_FIELDS[name]}; remove it")
    if name not in fields:
        hint = difflib.get_close_matches(name, fields, n=1)
        raise fail(
            key,
            f"unknown key {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; allowed: {', '.join(fields)}",
        )


def _crossed(table: dict[str, Any], key: str, fail) -> list[dict[str, Any]]:
    """An [[axes.arm]] table -> its arms: itself, or with `cross = { schedule = [...], alpha =
    [...] }` one arm per combination of those parameters' values (the first varies slowest),
    each on top of its `params`: a crossing of timing and strength as arms (issue 28)."""
    if "cross" not in table:
        return [table]
    cross, where = table["cross"], f"{key}.cross"
    if not isinstance(cross, dict) or not cross:
        raise fail(where, "must be a table of parameter -> list of values, e.g. cross = { "
                   "schedule = ['constant', 'on_plateau'], alpha = [0.2, 1.0] }")  # fmt: skip
    params = table.get("params", {})
    if not isinstance(params, dict):
        raise fail(f"{key}.params", "must be a table, e.g. params = { alpha = 1.0 }")
    for name, values in cross.items():
        if not isinstance(values, list) or not values:
            raise fail(f"{where}.{name}", f"must be a non-empty list of values, got {values!r}")
        if name in params:
            raise fail(f"{where}.{name}", "is also in params; give it in one of them")
    base = {name: value for name, value in table.items() if name != "cross"}
    return [{**base, "params": {**params, **dict(zip(cross, combo, strict=True))}}
            for combo in itertools.product(*cross.values())]  # fmt: skip


def _change(table: Any, key: str, fail, allowed: tuple[str, ...] | None = None) -> dict:
    """Fields one axis value / extra cell sets. `params` is short for regularizer_params; a
    table that names a regularizer without params resets them (parameters belong to it)."""
    if not isinstance(table, dict):
        raise fail(key, f"must be a table, got {table!r}")
    change = dict(table)
    for name in change:
        if allowed is not None and name not in allowed:
            raise fail(f"{key}.{name}", f"unknown key; allowed: {', '.join(allowed)}")
        if name != "params":
            _known_field(name, f"{key}.{name}", fail)
    if allowed == ARM_KEYS and "regularizer" not in change:
        raise fail(key, "an arm needs `regularizer = NAME` (and optionally params = { ... })")
    if "params" in change:
        if "regularizer_params" in change:
            raise fail(key, "give either params or regularizer_params, not both")
        change["regularizer_params"] = change.pop("params")
    if "regularizer" in change:
        change.setdefault("regularizer_params", {})
    if not isinstance(change.get("regularizer_params", {}), dict):
        raise fail(f"{key}.params", "must be a table, e.g. params = { alpha = 1.0 }")
    return change


def arm_label(cfg: RunConfig) -> str:
    """A cell's regularizer and its parameters, e.g. cutmix(alpha=1.0,schedule=staged)
    (`bench.arms.Arm.label`)."""
    return arm_of(cfg).label


def _label(change: dict[str, Any]) -> str:
    """A short human label of a table value: cutmix(alpha=1.0,schedule=staged) or (a=1,b=2)
    (an arm's part is `bench.arms.Arm.label`)."""
    others = ",".join(f"{k}={v}" for k, v in change.items() if k not in ARM_FIELDS)
    name = (
        Arm.of(str(change["regularizer"]), change.get("regularizer_params")).label
        if "regularizer" in change
        else ""
    )
    return " ".join(part for part in (name, f"({others})" if others else "") if part)


def _fail(path: Path, key: str, message: str) -> SweepError:
    return SweepError(f"{path}: {key}: {message}")


def _config(defaults: dict[str, Any], where: str, change: dict[str, Any], fail) -> RunConfig:
    for key in defaults:
        _known_field(key, f"defaults.{key}", fail)
    try:  # bench.config's messages start with `where` (the TOML key)
        return from_dict({**defaults, **change}, where=where)
    except ValueError as error:
        raise fail(where, str(error).removeprefix(f"{where}: ")) from None


def _check(cfg: RunConfig, where: str, fail) -> None:
    try:
        check_config(cfg, where=where)
    except ValueError as error:
        raise fail(where, str(error).removeprefix(f"{where}: ")) from None


def _check_backbones(cells: list[RunConfig], labels: list[str], fail) -> None:
    """Every backbone must be a timm model name (timm's list; nothing is built or downloaded)."""
    names = {}
    for cfg, label in zip(cells, labels, strict=True):
        names.setdefault(cfg.backbone, label)
    import timm  # only here: listing models is cheap, but importing timm takes a second

    for name, label in names.items():
        if name.startswith(("hf-hub:", "hf_hub:")) or timm.is_model(name):
            continue
        hint = difflib.get_close_matches(name, timm.list_models(), n=5)
        raise fail(
            "backbone",
            f"unknown timm model {name!r} (first used by {label}); "
            + (f"close matches: {', '.join(hint)}; " if hint else "")
            + "allowed: any name in timm.list_models()",
        )
