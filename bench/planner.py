"""Size a sweep for its claims before it runs: `plan_sweep(sweep, pilot)` (`regbench sweep plan`).

From a pilot (a results folder of the same preset: its claim rows, each with the SD of the paired
per-seed differences and, where outcome files exist, that SD split into a seed and a test-image
component, `bench.report.verdicts`), per claim row:

- the spread of a paired difference at N test images: sd(N)^2 = sd^2 - v + v * N0/N with v the
  image variance sd_images^2 (at most sd^2), where each seed draws its own N test images (the
  pilot's N0; `test_images` = per seed), so sd(N0) is the pilot's SD; the
  pilot's whole spread at the pilot's images where the image component is unknown (no outcome
  file for the metric: gap, train and robustness metrics) or the test set is fixed across seeds;
- the seed pairs for 80% power to decide the row whichever way the truth lies: the larger of
  the paired t-test's pairs against a true effect equal to the margin (at the first Holm
  threshold, 0.05 / the rows with a p) and the TOST's pairs when the true effect is 0 (at the
  first Holm threshold of the equivalence family) (`bench.report.stats`), with the range the
  pilot SD's 95% chi-square interval gives;
- what that costs by the cost model (`bench.cost.estimate_seconds` over the sweep's cells of
  the row's scope and two arms, per seed, with `test_size` set to N).

And for the sweep as a whole: at each test-image count, how many seeds the budget buys for all
its cells, which rows that decides with 80% power, and which it cannot. The planner never plans
for the pilot's observed effects (post-hoc power inherits the winner's curse). Nonsense (a spread
or margin <= 0, fewer than 2 pairs, a budget <= 0) raises `PlanError` or
`stats.PowerInputError` with the value named. Imports no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from bench.arms import Arm
from bench.config import RunConfig, resolved_bn
from bench.cost import CIFAR10_CLASSES, CIFAR10_TEST, CIFAR10_TRAIN, estimate_seconds
from bench.report import stats, style, verdicts
from bench.report.claims import CLAIMS
from bench.report.derive import matches
from bench.report.load import Results
from bench.sweep import Sweep

IMAGE_STEPS = (1000, 2000, 5000, CIFAR10_TEST)  # test images per seed the planner tries
DEFAULT_BUDGET_HOURS = 24.0
CLAIM_ARMS = {c.claim_id: (c.arm_a, c.arm_b) for c in CLAIMS}
FACTOR_CLAIMS = {c.claim_id for c in CLAIMS if c.factors}  # planned by no single paired sd


class PlanError(ValueError):
    """A pilot or an option the planner cannot work from; the message says why and the fix."""


@dataclass(frozen=True)
class Option:
    images: int  # test images per seed (the pilot's where its spread cannot be split)
    seeds: float  # pairs for 80% power (inf: beyond stats.MOST_SEEDS)
    seeds_low: float  # at the low and high ends of the pilot SD's 95% interval
    seeds_high: float
    cost_s: float  # the row's cells (its scope, both arms) for that many seeds, cost model


@dataclass(frozen=True)
class RowPlan:
    claim_id: str
    scope: str
    metric: str
    margin: float
    sd: float  # the pilot's SD of the paired differences
    sd_seed: float  # its seed component (NaN: unknown)
    sd_images: float  # its test-image component at the pilot's images (NaN: unknown)
    pilot_seeds: int
    pilot_images: int | None  # test images per seed in the pilot (None: unknown)
    case: str  # verdicts.PER_SEED / FIXED / ""
    options: list[Option]  # one per test-image count tried (one when images cannot be split)
    note: str = ""

    @property
    def best(self) -> Option | None:
        """The cheapest option that reaches 80% power (finite seeds), if any."""
        finite = [o for o in self.options if math.isfinite(o.seeds)]
        return min(finite, key=lambda o: (o.cost_s, o.seeds)) if finite else None


@dataclass(frozen=True)
class SweepOption:
    images: int | None  # test images per seed for the whole sweep (None: as in the sweep file)
    seed_cost_s: float  # one seed of every cell of the sweep at that many images
    affordable_seeds: int  # seeds the budget buys (every cell)
    decided: list[str]  # "claim_id @ scope" of the rows that many seeds give 80% power
    seeds_for_those: int  # the largest of those rows' needs (what to run)


@dataclass
class Plan:
    sweep: str
    pilot: str
    device: str
    family: int  # rows with a p in the pilot: the Holm family
    alpha: float  # first Holm threshold of the difference test
    alpha_equivalence: float
    budget_s: float
    rows: list[RowPlan]
    skipped: list[str] = field(default_factory=list)  # rows that cannot be planned, and why
    sweep_options: list[SweepOption] = field(default_factory=list)

    @property
    def best_sweep(self) -> SweepOption | None:
        """The sweep option that decides the most rows within the budget (then the cheapest)."""
        if not self.sweep_options:
            return None
        return max(
            self.sweep_options,
            key=lambda o: (len(o.decided), -o.seeds_for_those * o.seed_cost_s),
        )


def pairs_needed(
    margin: float, sd: float, alpha: float, alpha_equivalence: float, target: float = stats.POWER
) -> float:
    """Pairs for `target` power to decide a row whichever way the truth lies: the larger of the
    paired t-test's against a true effect = margin and the TOST's when the true effect is 0.
    Raises stats.PowerInputError for a spread or margin that is not a positive number."""
    if not margin > 0:
        raise stats.PowerInputError(f"margin must be > 0, got {margin!r}")
    return max(
        stats.seeds_needed(margin, sd, alpha, target),
        stats.equivalence_seeds_needed(margin, sd, alpha_equivalence, target),
    )


def spread_at(sd: float, sd_images: float, pilot_images: int, images: int) -> float:
    """The SD of one seed's paired difference when each seed draws `images` test images, from
    the pilot's SD `sd` at `pilot_images` and its image component `sd_images` there: the image
    variance (at most the whole variance) scales as 1 / images, the rest stays, so at the pilot's
    count the answer is the pilot's SD."""
    if not (pilot_images >= 1 and images >= 1):
        raise PlanError(f"test images must be >= 1, got {pilot_images} and {images}")
    image_var = min(sd_images**2, sd**2)
    return math.sqrt(sd**2 - image_var + image_var * pilot_images / images)


def _arm_of(cfg: RunConfig) -> Arm:
    """The cell's arm as a claim names it: its regularizer and schedule (`style.report_arm`)."""
    schedule = str(cfg.regularizer_params.get(style.SCHEDULE, style.CONSTANT))
    return style.report_arm(cfg.regularizer, schedule)


def _recorded(cfg: RunConfig, column: str) -> object:
    """What runs.csv records for a configuration column of this cell: the field as is, but
    `train_size` as the training images the cell draws and `bn` as the mode it uses ("auto"
    resolved), as bench.train overwrites them."""
    if column == "bn":
        return resolved_bn(cfg)
    if column == "train_size":
        if cfg.train_per_class:
            return cfg.train_per_class * CIFAR10_CLASSES
        return cfg.train_size or CIFAR10_TRAIN - cfg.val_size
    return getattr(cfg, column)


def _same(a: object, b: object) -> bool:
    try:
        return float(a) == float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(a) == str(b)


def _cells(sweep: Sweep, claim_id: str, where: dict | None) -> list[RunConfig]:
    """The sweep's cells of one seed that a row needs: its two arms in its scope (every scope
    when `where` is None, e.g. an interaction row that spans two)."""
    arms = set(CLAIM_ARMS.get(claim_id, ()))
    first = min(cfg.seed for cfg in sweep.cells)
    chosen = []
    for cfg in sweep.cells:
        if cfg.seed != first or _arm_of(cfg) not in arms:
            continue
        if where and not all(
            _same(_recorded(cfg, k), v) for k, v in where.items() if hasattr(cfg, k)
        ):
            continue
        chosen.append(cfg)
    return chosen


def _cost(cells: list[RunConfig], images: int | None, device: str) -> float:
    """Seconds for one seed of `cells` at `images` test images per seed (None: as they are)."""
    return sum(
        estimate_seconds(cfg if images is None else cfg.replace(test_size=images), device)
        for cfg in cells
    )


def _pilot_images(pilot: Results, scope_cells: pd.DataFrame) -> int | None:
    """Test images per seed in the pilot's cells (outcome files, else test_size)."""
    for run_id in scope_cells["run_id"]:
        outcome = pilot.outcomes.get(str(run_id))
        if outcome is not None:
            return len(outcome["label"])
    if "test_size" in scope_cells and scope_cells["test_size"].notna().any():
        size = int(scope_cells["test_size"].iloc[0])
        return size or CIFAR10_TEST
    return None


def plan_sweep(
    sweep: Sweep,
    pilot: Results,
    device: str = "cpu",
    budget_hours: float = DEFAULT_BUDGET_HOURS,
    target: float = stats.POWER,
) -> Plan:
    """The plan of `sweep` from the pilot's claim rows (module doc)."""
    if not (math.isfinite(budget_hours) and budget_hours > 0):
        raise PlanError(f"--budget-hours must be a positive number of hours, got {budget_hours}")
    if not 0 < target < 1:
        raise PlanError(f"--power must lie in (0, 1), got {target}")
    if not sweep.cells:
        raise PlanError(f"{sweep.path}: the sweep has no cells to plan")
    claims = verdicts.evaluate_claims(pilot)
    alpha, alpha_equivalence = verdicts.thresholds(claims)
    family = int(claims["p_value"].notna().sum())
    if family == 0:
        raise PlanError(
            "the pilot has no claim row with a p-value (it needs at least 2 seeds of two "
            "compared arms in one scope): run a pilot with more seeds, or pass another --pilot"
        )
    wheres = verdicts.scope_wheres(pilot)
    rows, skipped = [], []
    for row in claims.itertuples():
        label = f"{row.claim_id} @ {row.scope}"
        if row.verdict == "not measured":
            skipped.append(f"{label}: not measured in the pilot ({row.note})")
            continue
        if not (math.isfinite(row.sd) and row.sd > 0 and row.n >= 2):
            kind = ("a crossing of two factors (simultaneous intervals, no one paired sd)"
                    if row.claim_id in FACTOR_CLAIMS else "a spread claim (std over seeds)")  # fmt: skip
            why = kind if math.isnan(row.sd) else f"sd {row.sd:g}"
            skipped.append(f"{label}: no paired spread to plan from ({why}, n={row.n})")
            continue
        where = wheres.get(row.scope)
        scope_cells = pilot.ok if where is None else pilot.ok[matches(pilot.ok, where)]
        pilot_images = _pilot_images(pilot, scope_cells)
        cells = _cells(sweep, row.claim_id, where)
        if not cells:
            skipped.append(f"{label}: the sweep has no cells of this row's arms and scope")
            continue
        rows.append(
            _plan_row(row, where, cells, pilot_images, device, alpha, alpha_equivalence, target)
        )
    plan = Plan(sweep.name, str(pilot.folder), device, family, alpha, alpha_equivalence,
                budget_hours * 3600, rows, skipped)  # fmt: skip
    plan.sweep_options = _sweep_options(sweep, plan, device)
    return plan


def _plan_row(row, where, cells, pilot_images, device, alpha, alpha_eq, target) -> RowPlan:
    low, high = stats.sd_interval(row.sd, row.n)
    split = (
        row.test_images == verdicts.PER_SEED
        and math.isfinite(row.sd_images)
        and pilot_images is not None
    )
    counts = sorted({pilot_images, *(n for n in IMAGE_STEPS if n > pilot_images)}) if split else []
    options = []
    for images in counts or [None]:
        if images is None:
            spreads = (row.sd, low, high)
        else:
            sd = spread_at(row.sd, row.sd_images, pilot_images, images)
            spreads = (sd, sd * low / row.sd, sd * high / row.sd)  # the same relative uncertainty
        needed = [pairs_needed(row.margin, s, alpha, alpha_eq, target) for s in spreads]
        per_seed = _cost(cells, images, device)
        options.append(
            Option(
                images or pilot_images or 0,
                *needed,
                needed[0] * per_seed if math.isfinite(needed[0]) else math.inf,
            )  # fmt: skip
        )
    note = ""
    if not split:
        note = {
            verdicts.FIXED: "test set fixed across seeds: its image noise does not shrink with "
            "seeds (plan images with outcome files)",
        }.get(row.test_images, "no image component for this metric: seeds only")
    if where is None:
        note = "; ".join(filter(None, [note, "spans scopes: cost of both arms in every scope"]))
    return RowPlan(row.claim_id, row.scope, row.metric, row.margin, row.sd, row.sd_seed,
                   row.sd_images, int(row.n), pilot_images, row.test_images, options, note)  # fmt: skip


def _sweep_options(sweep: Sweep, plan: Plan, device: str) -> list[SweepOption]:
    """Per test-image count: what one seed of the whole sweep costs, how many seeds the budget
    buys, and which rows those seeds decide with 80% power."""
    firsts = min(cfg.seed for cfg in sweep.cells)
    one_seed = [cfg for cfg in sweep.cells if cfg.seed == firsts]
    counts = sorted({o.images for r in plan.rows for o in r.options if o.images})
    found = []
    for images in counts or [None]:
        cost = _cost(one_seed, images, device)
        affordable = int(plan.budget_s // cost) if cost > 0 else 0
        decided, needs = [], []
        for row in plan.rows:
            option = _option_at(row, images)
            if option is not None and option.seeds <= affordable:
                decided.append(f"{row.claim_id} @ {row.scope}")
                needs.append(option.seeds)
        found.append(SweepOption(images, cost, affordable, decided, int(max(needs, default=0))))
    return found


def _option_at(row: RowPlan, images: int | None) -> Option | None:
    """The row's option at `images` per seed; a row whose images cannot be split keeps its one
    option (the pilot's spread, whatever the count: more images would only help it)."""
    if len(row.options) == 1 or images is None:
        return row.options[0]
    return next((o for o in row.options if o.images == images), None)
