"""Hyperparameter selection on validation, per arm x scope: a sweep file's `[search]` table.

    [search]
    method = "grid"          # every combination of the listed values; or "random": `trials`
    trials = 6               #   seeded draws (ranges allowed), the same draws for every arm
    seed = 0                 # the seed of the random draws
    select = "val_acc"       # the validation metric that picks the trial (val_loss: NLL)
    seeds = [100]            # run seeds of the trial cells (their data_seed follows them
                             #   where the sweep's data_seed follows its seed; a pinned one stays)
    [search.space]
    lr = [0.01, 0.03, 0.1]                          # listed values
    weight_decay = { low = 1e-5, high = 1e-3, log = true }   # a range (random only)
    momentum = "default"     # a field's declared default search range (random only)
    alpha = [0.2, 1.0]       # a regularizer parameter: searched in the arms whose regularizer
                             #   takes it (mixup, cutmix), left alone in the others

A *group* is one arm x scope: the sweep's cells that differ only in their seed (and in a
data_seed that follows it). Each group's trials are its first cell with one trial's values, run
on the search seeds; the trial with the best mean `select` over its cells that finished ok is the
group's selection, and the group's cells (all seeds) then run with the selected values. A group
that takes none of the searched parameters (alpha alone, in the `none` arm) has no trials: its
cells run as they are. Nothing reads the test set to choose.
Trial cells are ordinary cells in `results/<sweep>/search/` (resumed like any sweep);
`search.csv` beside runs.csv records every trial, its score and the selection (bench.schema
SEARCH). Everything is checked when the sweep file loads, before anything runs.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

from bench.arms import Arm, Scope, arm_of
from bench.config import SEARCH_RANGES, SEED_LIMIT, RunConfig, check_config
from bench.schema import SELECT_METRICS

SEARCH_KEYS = (
    "method",
    "trials",
    "seed",
    "select",
    "seeds",
    "space",
    "extend_edges",
    "trial_cells",
)
# Fields a trial cell may set apart from the sweep's cells ([search.trial_cells]): what it measures
# besides validation (selection reads validation only), so trials need not pay for a full test set.
TRIAL_CELL_FIELDS = ("test_size", "robustness_size", "train_eval_size", "composite_size")
METHODS = ("grid", "random")
# RunConfig fields a search may choose: those declared with a default search range (training
# hyperparameters that leave the data, the model and the compared arm alone).
SEARCHABLE_FIELDS = tuple(SEARCH_RANGES)
SEARCH_FOLDER = "search"  # results/<sweep>/search/: the trial cells' own results folder
MAX_TRIALS = 1000  # trials per group: more is a typo (a grid of 10 x 10 x 10 is the limit)


@dataclass(frozen=True)
class Param:
    """One searched parameter: listed `values`, or a range [low, high] (log-uniform with `log`).
    `field`: a RunConfig field (True) or a regularizer parameter (False)."""

    name: str
    field: bool
    values: tuple[float, ...] = ()
    low: float = math.nan
    high: float = math.nan
    log: bool = False

    @property
    def bounds(self) -> tuple[float, float]:
        """The ends of the searched range (the listed values' min and max)."""
        return (min(self.values), max(self.values)) if self.values else (self.low, self.high)


@dataclass(frozen=True)
class Search:
    method: str
    trials: int  # per group (a grid: the number of combinations)
    seed: int
    select: str  # a key of SELECT_METRICS
    seeds: tuple[int, ...]
    space: tuple[Param, ...]
    # seedless_key of the sweep's cells whose data_seed does not follow their seed (pinned, or
    # an axis): decided on every cell of the sweep when it loads, so --only cannot change it
    fixed_data_seed: frozenset[str] = frozenset()
    # a grid: add one trial a grid step past an edge where a group's best value sits (issue 23)
    extend_edges: bool = True
    # [search.trial_cells]: TRIAL_CELL_FIELDS values every trial cell takes (issue 23)
    trial_cells: tuple[tuple[str, Any], ...] = ()

    def points(self) -> list[dict[str, float]]:
        """Every trial's values, in trial order: the grid's combinations (the first parameter
        varies slowest), or `trials` seeded draws (values rounded to 3 significant digits, so
        the run ids and the tables read cleanly)."""
        if self.method == "grid":
            names = [p.name for p in self.space]
            return [dict(zip(names, combo, strict=True))
                    for combo in itertools.product(*(p.values for p in self.space))]  # fmt: skip
        draw = random.Random(self.seed)
        return [{p.name: _draw(p, draw) for p in self.space} for _ in range(self.trials)]


def _draw(param: Param, draw: random.Random) -> float:
    """One seeded draw of `param`: a listed value, or a value of its range (log-uniform with
    `log`) rounded to 3 significant digits and kept within the range (0.99955, drawn from
    [0.1, 0.9996], rounds to 1.0: outside the range whose ends were checked at load)."""
    if param.values:
        return param.values[draw.randrange(len(param.values))]
    if param.log:
        value = math.exp(draw.uniform(math.log(param.low), math.log(param.high)))
    else:
        value = draw.uniform(param.low, param.high)
    return min(max(float(f"{value:.3g}"), param.low), param.high)


# ---------------------------------------------------------------------------------------------
# The [search] table, checked


def regularizer_params() -> dict[str, list[str]]:
    """Numeric regularizer parameters a search may choose -> the regularizers that take them."""
    import regularizers

    taken: dict[str, list[str]] = {}
    for name, info in regularizers.describe().items():
        for param, default in info["params"].items():
            numeric = isinstance(default, int | float) and not isinstance(default, bool)
            if numeric and param != "label_smoothing":  # a RunConfig field, searched as one
                taken.setdefault(param, []).append(name)
    return taken


def parse_search(
    table: Any, cells: list[RunConfig], labels: list[str], axis_fields: set[str], fail
) -> Search:
    """The `[search]` table of a sweep whose expanded cells are `cells` (with their `labels`;
    `axis_fields`: fields its axes set), checked; `fail(key, message)` makes the SweepError to
    raise."""
    if not isinstance(table, dict):
        raise fail("search", f"must be a table ([search]), got {table!r}")
    for key in table:
        if key not in SEARCH_KEYS:
            raise fail(f"search.{key}", f"unknown key; allowed: {', '.join(SEARCH_KEYS)}")
    method = table.get("method", "grid")
    if method not in METHODS:
        raise fail("search.method", f"got {method!r}; allowed: {', '.join(METHODS)}")
    select = table.get("select", "val_acc")
    if select not in SELECT_METRICS:
        raise fail(
            "search.select",
            f"{select!r} is not a validation metric runs.csv records; allowed: "
            f"{', '.join(SELECT_METRICS)} (selection never uses the test set)",
        )
    seed = table.get("seed", 0)
    if not _is_int(seed) or not 0 <= seed < SEED_LIMIT:
        raise fail("search.seed", f"got {seed!r}; give an integer >= 0 and < {SEED_LIMIT} (the "
                   "draws' seed)")  # fmt: skip
    seeds = table.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) and s >= 0 for s in seeds):
        raise fail("search.seeds", f"got {seeds!r}; give a non-empty list of run seeds >= 0")
    if len(set(seeds)) != len(seeds):
        raise fail("search.seeds", f"{seeds!r} lists a seed twice; list each once")
    space_table = table.get("space")
    if not isinstance(space_table, dict) or not space_table:
        raise fail(
            "search.space", "give at least one parameter, e.g. [search.space] lr = [0.01, 0.1]"
        )
    reg_params = regularizer_params()
    space = tuple(
        _param(name, spec, method, reg_params, axis_fields, fail)
        for name, spec in space_table.items()
    )
    if method == "grid":
        ranges = [p.name for p in space if not p.values]
        if ranges:
            raise fail(f"search.space.{ranges[0]}", "a range needs method = \"random\"; "
                       "with method = \"grid\" list the values")  # fmt: skip
        count = math.prod(len(p.values) for p in space)
        if "trials" in table and table["trials"] != count:
            raise fail("search.trials", f"the grid has {count} combinations, trials = "
                       f"{table['trials']!r}; leave trials out with method = \"grid\"")  # fmt: skip
        trials = count
    else:
        trials = table.get("trials")
        if not _is_int(trials) or trials < 1:
            raise fail("search.trials", f"got {trials!r}; give an integer >= 1 (random draws "
                       "per arm x scope)")  # fmt: skip
    if trials > MAX_TRIALS:
        raise fail("search.trials", f"{trials} trials per arm x scope; at most {MAX_TRIALS}")
    extend_edges = table.get("extend_edges", True)
    if not isinstance(extend_edges, bool):
        raise fail("search.extend_edges", f"got {extend_edges!r}; give true or false")
    trial_table = table.get("trial_cells", {})
    if not isinstance(trial_table, dict):
        raise fail("search.trial_cells", f"must be a table, got {trial_table!r}")
    for name in trial_table:
        if name not in TRIAL_CELL_FIELDS:
            raise fail(f"search.trial_cells.{name}", "a trial cell may set only what it measures "
                       f"besides validation: {', '.join(TRIAL_CELL_FIELDS)}")  # fmt: skip
    search = Search(method, trials, seed, select, tuple(seeds), space, fixed_data_seeds(cells),
                    extend_edges, tuple(sorted(trial_table.items())))  # fmt: skip
    _check_trials(search, cells, fail)
    _check_distinct(search, cells, labels, fail)
    return search


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _param(name: str, spec: Any, method: str, reg_params: dict, axis_fields: set, fail) -> Param:
    key = f"search.space.{name}"
    if name in SEARCHABLE_FIELDS:
        field = True
        if name in axis_fields:
            raise fail(key, f"an axis already sets {name!r} in every cell; search it or put it "
                       "on an axis, not both")  # fmt: skip
    elif name in reg_params:
        field = False
    else:
        allowed = [*SEARCHABLE_FIELDS, *(f"{p} ({', '.join(r)})" for p, r in reg_params.items())]
        raise fail(key, f"unknown parameter {name!r}; allowed: {', '.join(allowed)}")
    if spec == "default" and field:  # the field's declared default search range
        declared = SEARCH_RANGES[name]
        spec = {"low": declared.low, "high": declared.high, "log": declared.log}
    if isinstance(spec, list):
        if not spec:
            raise fail(key, "is empty; list at least one value")
        if not all(_number(v) for v in spec):
            raise fail(key, f"got {spec!r}; list finite numbers")
        if len(set(spec)) != len(spec):
            raise fail(key, f"{spec!r} lists a value twice; list each once")
        return Param(name, field, values=tuple(float(v) for v in spec))
    if isinstance(spec, dict):
        unknown = set(spec) - {"low", "high", "log"}
        if unknown:
            raise fail(f"{key}.{sorted(unknown)[0]}", "unknown key; allowed: low, high, log")
        low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
        if not (_number(low) and _number(high)) or not low < high:
            raise fail(key, f"a range needs numbers low < high, got low={low!r} high={high!r}")
        if not isinstance(log, bool) or (log and low <= 0):
            raise fail(key, "log = true needs low > 0 (and log must be true or false)")
        if method == "grid":
            raise fail(key, "a range needs method = \"random\"; with method = \"grid\" list the "
                       "values")  # fmt: skip
        return Param(name, field, low=float(low), high=float(high), log=log)
    raise fail(key, f"got {spec!r}; give a list of values or a range {{ low = .., high = .. }}"
               + (' (or "default": its declared range)' if field else ""))  # fmt: skip


def _check_trials(search: Search, cells: list[RunConfig], fail) -> None:
    """Every group's trial configurations valid (a value out of a field's allowed range fails
    here, naming the parameter, not after hours of trials), and every parameter used by some
    arm."""
    used: set[str] = set()
    for group in groups(search, cells):
        follows = follows_seed(search, group[0])
        for point in _check_points(search):
            trial = apply(group[0], point).replace(**dict(search.trial_cells))
            used.update(applied(group[0], point))
            for seed in search.seeds:
                cfg = with_seed(trial, seed, follows)
                try:
                    check_config(cfg, where="search")
                except ValueError as error:
                    raise fail("search.space", f"{point}: {error}") from None
    unused = [p.name for p in search.space if p.name not in used]
    if unused:
        raise fail(f"search.space.{unused[0]}", "no arm of the sweep takes this parameter; "
                   "remove it or add an arm whose regularizer does")  # fmt: skip


def _check_distinct(search: Search, cells: list[RunConfig], labels: list[str], fail) -> None:
    """No two cells that the selection would make one: cells that differ only in values the
    search sets (two arms that differ only in a searched alpha, an [[extra]] cell that sets a
    searched lr) get the same values, so the same run_id, and would run once for both."""
    point = search.points()[0]
    first: dict[str, int] = {}
    for i, cfg in enumerate(cells):
        run_id = apply(cfg, point).run_id
        if run_id not in first:
            first[run_id] = i
            continue
        other = cells[first[run_id]]
        names = [n for n in applied(cfg, point) if _current(cfg, n) != _current(other, n)]
        name = names[0] if names else "a searched parameter"
        raise fail(
            f"search.space.{name}",
            f"cells {labels[first[run_id]]!r} and {labels[i]!r} differ only in {name}, which "
            f"the search sets, so they would run as one cell; search {name} or vary it in the "
            "sweep, not both",
        )


def _current(cfg: RunConfig, name: str) -> Any:
    """The value a cell has for a searchable parameter (None: a regularizer parameter left
    at its default)."""
    return getattr(cfg, name) if name in SEARCHABLE_FIELDS else cfg.regularizer_params.get(name)


def _check_points(search: Search) -> list[dict[str, float]]:
    """The values a check must cover: a grid's combinations; for random draws every listed
    value and both ends of every range, one parameter at a time."""
    if search.method == "grid":
        return search.points()
    base = {p.name: p.values[0] if p.values else p.low for p in search.space}
    return [{**base, p.name: value} for p in search.space for value in (p.values or p.bounds)]


# ---------------------------------------------------------------------------------------------
# Groups, trials and the selection


def seedless_key(cfg: RunConfig) -> str:
    """A cell's identity without its seed and data_seed, as canonical text."""
    values = cfg.identity()
    values.pop("seed", None)
    values.pop("data_seed", None)
    return repr(sorted(values.items()))


def fixed_data_seeds(cells: list[RunConfig]) -> frozenset[str]:
    """The seedless keys whose data_seed does not follow the seed: some cell with that key has
    data_seed != seed (a pinned data_seed = 0 with seeds 0, 1, 2; a data_seed axis). Decided on
    the whole sweep: a single cell cannot tell, as a pinned data_seed equal to its seed is the
    same cell as one that follows it."""
    return frozenset(seedless_key(cfg) for cfg in cells if cfg.data_seed != cfg.seed)


def follows_seed(search: Search, cfg: RunConfig) -> bool:
    """Whether the data_seed of `cfg`'s arm x scope follows the run seed."""
    return seedless_key(cfg) not in search.fixed_data_seed


def group_key(search: Search, cfg: RunConfig) -> str:
    """What one arm x scope shares: the identity without the seed, and without a data_seed that
    follows it, as canonical text."""
    key = seedless_key(cfg)  # follows_seed's test, without hashing the identity twice
    return f"{key} data_seed={cfg.data_seed}" if key in search.fixed_data_seed else key


def groups(search: Search, cells: list[RunConfig]) -> list[list[RunConfig]]:
    """The sweep's cells grouped by arm x scope, in the order each group first appears."""
    found: dict[str, list[RunConfig]] = {}
    for cfg in cells:
        found.setdefault(group_key(search, cfg), []).append(cfg)
    return list(found.values())


@functools.cache
def _takes(regularizer: str) -> frozenset[str]:
    """The parameter names a registered regularizer's build() accepts (describe() deep-copies
    every default, and loading a sweep asks once per cell and trial point)."""
    import regularizers

    return frozenset(regularizers.describe()[regularizer]["params"])


def searched_in(search: Search, cfg: RunConfig) -> list[str]:
    """The searched parameters that apply to `cfg` (see `applied`); none: its cells run as they
    are, without trials."""
    return list(applied(cfg, dict.fromkeys(p.name for p in search.space)))


def applied(cfg: RunConfig, point: dict[str, Any]) -> dict[str, Any]:
    """The part of `point` that applies to `cfg`: every field, and the regularizer parameters
    its regularizer takes."""
    takes = _takes(cfg.regularizer)
    return {name: value for name, value in point.items()
            if name in SEARCHABLE_FIELDS or name in takes}  # fmt: skip


def apply(cfg: RunConfig, point: dict[str, float]) -> RunConfig:
    """`cfg` with a trial's values (fields and the regularizer parameters it takes)."""
    values = applied(cfg, point)
    fields = {name: value for name, value in values.items() if name in SEARCHABLE_FIELDS}
    params = {name: value for name, value in values.items() if name not in SEARCHABLE_FIELDS}
    if params:
        fields["regularizer_params"] = {**cfg.regularizer_params, **params}
    return cfg.replace(**fields)


def with_seed(cfg: RunConfig, seed: int, follows: bool) -> RunConfig:
    """`cfg` at run seed `seed`; its data_seed becomes `seed` too where it `follows` the seed,
    and stays as it is where it does not (follows_seed)."""
    return cfg.replace(seed=seed, data_seed=seed if follows else cfg.data_seed)


@dataclass(frozen=True)
class Trial:
    scope: Scope  # the group's axis values other than the arm and the seed
    arm: Arm  # the group's regularizer with its parameters
    index: int  # the trial's number in the group
    values: dict[str, float]  # the values that apply to this group (`applied`)
    cells: tuple[RunConfig, ...]  # one per search seed
    group: str  # group_key of the group's cells
    extended: bool = False  # added a grid step past an edge (`extensions`)


def trials(search: Search, cells: list[RunConfig], scopes: list[Scope]) -> list[Trial]:
    """Every group's trials, group by group (`scopes`: each cell's, as the sweep made them). A
    trial whose applied values repeat an earlier trial's in the same group (e.g. alpha draws in
    the `none` arm) is left out, and a group that takes no searched parameter has none."""
    scope_of = {cfg.run_id: scope for cfg, scope in zip(cells, scopes, strict=True)}
    out = []
    points = search.points()
    for group in groups(search, cells):
        first = group[0]
        if not searched_in(search, first):
            continue
        follows, group_id = follows_seed(search, first), group_key(search, first)
        scope, arm = scope_of[first.run_id], arm_of(first)
        seen = set()
        for index, point in enumerate(points):
            values = applied(first, point)
            key = tuple(sorted(values.items()))
            if key in seen:
                continue
            seen.add(key)
            trial = apply(first, point).replace(**dict(search.trial_cells))
            trial_cells = tuple(with_seed(trial, s, follows) for s in search.seeds)
            out.append(Trial(scope, arm, index, values, trial_cells, group_id))
    return out


def select(search: Search, all_trials: list[Trial], rows: list[dict[str, str]]):
    """Each group's selected trial and the search.csv rows.

    `rows`: the trial folder's runs.csv rows (strings). A trial's score is the mean of
    search.select over its cells with status ok (a failed or missing cell does not count); the
    best score wins (ties: the earlier trial). Returns ({group_key: Trial}, search.csv rows);
    a group none of whose trials has a score is missing from the first.
    """
    by_id = {row["run_id"]: row for row in rows}
    direction = SELECT_METRICS[search.select]
    params = {p.name: p for p in search.space}
    scores: dict[int, float | None] = {}
    counts: dict[int, int] = {}
    for i, trial in enumerate(all_trials):
        values = [_float(by_id.get(c.run_id, {}), search.select) for c in trial.cells
                  if by_id.get(c.run_id, {}).get("status") == "ok"]  # fmt: skip
        values = [v for v in values if v is not None]
        counts[i] = len(values)
        scores[i] = sum(values) / len(values) if values else None
    chosen: dict[str, int] = {}
    for i, trial in enumerate(all_trials):
        if scores[i] is None:
            continue
        best = chosen.get(trial.group)
        if best is None or direction * scores[i] > direction * scores[best]:
            chosen[trial.group] = i
    margin_se = {group: _margin_se(search, all_trials, scores, i, by_id)
                 for group, i in chosen.items()}  # fmt: skip
    spans: dict[tuple[str, str], tuple[float, float]] = {}  # the range, widened by extensions
    for trial in all_trials:
        for name, value in trial.values.items():
            low, high = spans.get((trial.group, name), params[name].bounds)
            spans[trial.group, name] = (min(low, value), max(high, value))
    table = []
    for i, trial in enumerate(all_trials):
        for name, value in trial.values.items():
            low, high = spans[trial.group, name]
            selected = chosen.get(trial.group) == i
            table.append({
                "scope": trial.scope, "arm": trial.arm.label, "trial": trial.index,
                "parameter": name, "value": value, "low": low, "high": high,
                "select_metric": search.select, "score": scores[i], "seeds": counts[i],
                "selected": int(selected),
                "at_edge": int(selected and _at_edge(value, params[name], low, high)),
                "run_ids": " ".join(c.run_id for c in trial.cells),
                "extended": int(trial.extended),
                "margin_se": margin_se.get(trial.group) if selected else None,
            })  # fmt: skip
    return {group: all_trials[i] for group, i in chosen.items()}, table


def _at_edge(
    value: float, param: Param, low: float | None = None, high: float | None = None
) -> bool:
    """A selected value at an end of its range [low, high] (the searched range, widened by an
    extension trial): the best may lie beyond it. A listed value (grid or random) is at an edge
    when it is the smallest or largest tried; a value drawn from a range when it lies within 5%
    of the range of an end (in log space for a log range, linear otherwise). A single listed
    value is no search."""
    if low is None or high is None:
        low, high = param.bounds
    if low == high:
        return False
    if param.values:
        return value in (low, high)
    if param.log:
        span = math.log(high) - math.log(low)
        return min(math.log(value) - math.log(low), math.log(high) - math.log(value)) < 0.05 * span
    return min(value - low, high - value) < 0.05 * (high - low)


def _margin_se(
    search: Search, all_trials: list[Trial], scores: dict, best: int, by_id: dict
) -> float | None:
    """The standard error of trial `best`'s margin over its group's runner-up (the next best
    score): paired over the selection seeds both ran ok (the SD of the per-seed differences
    over sqrt(n)) with two or more; with one seed, for val_acc, the binomial bound
    sqrt(p1(1-p1)/n + p2(1-p2)/n) over the n validation images (an upper bound: two trials
    err on many of the same images). None without a runner-up or a way to tell."""
    group = all_trials[best].group
    direction = SELECT_METRICS[search.select]
    others = [i for i, t in enumerate(all_trials) if t.group == group and i != best
              and scores[i] is not None]  # fmt: skip
    if not others:
        return None
    runner_up = max(others, key=lambda i: direction * scores[i])

    def per_seed(i: int) -> list[float | None]:
        rows = [by_id.get(c.run_id, {}) for c in all_trials[i].cells]
        return [_float(r, search.select) if r.get("status") == "ok" else None for r in rows]

    pairs = [(a, b) for a, b in zip(per_seed(best), per_seed(runner_up), strict=True)
             if a is not None and b is not None]  # fmt: skip
    if len(pairs) >= 2:
        differences = [a - b for a, b in pairs]
        mean = sum(differences) / len(differences)
        variance = sum((d - mean) ** 2 for d in differences) / (len(differences) - 1)
        return math.sqrt(variance / len(differences))
    row = by_id.get(all_trials[best].cells[0].run_id, {})
    images = _float(row, "val_size")
    if len(pairs) != 1 or search.select != "val_acc" or not images:
        return None
    p1, p2 = pairs[0]
    return math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / images)


def extensions(search: Search, all_trials: list[Trial], rows: list[dict[str, str]]) -> list[Trial]:
    """One trial per group and parameter a grid step past the edge where the group's selected
    value sits (a grid of listed values with `extend_edges`): the selected trial's values with
    that parameter one step further out, by the ratio of the edge value to its neighbour for a
    grid of positive values (log-spaced: 0.3, 1.0 -> 3.33), else by their difference, rounded to
    3 significant digits. Left out where the value would break the field's bound (check_config)
    or repeat a trial. [] once extension trials exist or while a trial has no score to select
    by (the caller runs these, then selects over all)."""
    if search.method != "grid" or not search.extend_edges:
        return []
    if any(t.extended for t in all_trials):
        return []
    chosen, _ = select(search, all_trials, rows)
    params = {p.name: p for p in search.space}
    added = []
    for trial in chosen.values():
        follows = follows_seed(search, trial.cells[0])
        tried = {tuple(sorted(t.values.items())) for t in all_trials if t.group == trial.group}
        for name, value in trial.values.items():
            listed = sorted(params[name].values)
            if len(listed) < 2 or value not in (listed[0], listed[-1]):
                continue
            edge, neighbour = (listed[0], listed[1]) if value == listed[0] else listed[:-3:-1]
            if edge > 0 and neighbour > 0:
                beyond = edge * (edge / neighbour)
            else:
                beyond = edge + (edge - neighbour)
            point = {**trial.values, name: float(f"{beyond:.3g}")}
            if tuple(sorted(point.items())) in tried:
                continue
            base = apply(trial.cells[0], point)
            try:
                check_config(base, where="search")
            except ValueError:
                continue  # past the field's plausible range: the edge stays flagged
            cells = tuple(with_seed(base, c.seed, follows) for c in trial.cells)
            index = max(t.index for t in all_trials if t.group == trial.group) + 1 + len(added)
            added.append(dataclasses.replace(
                trial, index=index, values=point, cells=cells, extended=True
            ))  # fmt: skip
    return added


def _float(row: dict[str, str], column: str) -> float | None:
    try:
        value = float(row.get(column, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def final_cells(
    search: Search,
    cells: list[RunConfig],
    labels: list[str],
    scopes: list[Scope],
    chosen: dict[str, Trial],
) -> tuple[list[RunConfig], list[str], list[Scope], list[str]]:
    """The sweep's cells with their group's selected values (a cell no searched parameter
    applies to: as it is), their labels and scopes, and the labels of cells left out because
    their group has no selection (every trial failed)."""
    out, out_labels, out_scopes, missing = [], [], [], []
    for cfg, label, scope in zip(cells, labels, scopes, strict=True):
        searched = bool(searched_in(search, cfg))
        trial = chosen.get(group_key(search, cfg)) if searched else None
        if searched and trial is None:
            missing.append(label)
            continue
        out.append(cfg if trial is None else apply(cfg, trial.values))
        out_labels.append(label)
        out_scopes.append(scope)
    return out, out_labels, out_scopes, missing


def trial_cells(all_trials: list[Trial], sweep_name: str) -> list[RunConfig]:
    """The trial folder's cells, in order (a cell two trials share runs once)."""
    cells = list({c.run_id: c for t in all_trials for c in t.cells}.values())
    return [dataclasses.replace(c, sweep=sweep_name, sweep_cells=len(cells)) for c in cells]
