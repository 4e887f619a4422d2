"""The essay's claims, as data: what each claim compares, on which metric, in which direction.

A claim names its arms as `bench.arms.Arm` values of a regularizer and schedule (`NONE`,
`STAGED_CUTMIX`: `style.report_arm`) and a metric of runs.csv (or one the report derives, e.g.
`overconfidence`); `verdicts` tests every claim in every scope and writes one row
per claim and scope to `claims.csv`. Adding a claim is one `Claim(...)` in `CLAIMS`.

Rows are not independent findings: a claim that measures the same mechanism as another
declares it (`finding_of`, with the `dependence` in words: gap = train_acc - test_acc per cell;
ECE after temperature scaling beside the raw ECE; retained = perturbed / clean accuracy), and
the report groups the rows of one finding and scope and counts them once (`findings`).

Every claim declares its `margin`: the smallest effect of interest, in the metric's stored units
(fractions). A difference smaller than the margin is not a win even when it is significant, and
two arms whose difference lies within +-margin (TOST) are `equivalent`. A claim without its own
`margin` uses its metric's, declared once with the metric (`Column.margin` in `bench.schema`,
argued in docs/report.md). A figure
that shows a claim's effect refers to the claim object (e.g. `CUTMIX_IMPROVES_TEST_ACC`), never
to its id.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import schema  # column declarations only: no torch behind it
from bench.arms import Arm
from bench.report import style
from regularizers import schedules  # no torch behind it (regularizers/__init__.py is lazy)

NONE = style.report_arm("none")
ERASING = style.report_arm("random_erasing")
MIXUP = style.report_arm("mixup")
CUTMIX = style.report_arm("cutmix")
STAGED_CUTMIX = style.report_arm("cutmix", "staged")
ON_PLATEAU_CUTMIX = style.report_arm("cutmix", "on_plateau")

# Schedules that stay off until an event of the cell's training (the backbone unfreezes; the
# validation accuracy plateaus): runs.csv `schedule_start_step` is empty when the event never
# came, and such a cell ran without its regularizer (`verdicts` counts them; an arm none of whose
# cells switched on is not measured).
EVENT_SCHEDULES = tuple(name for name, s in schedules.SCHEDULES.items() if s.event)
# The TIMING levels of a factor claim (`Claim.factors`): when the regularizer starts. `staged`
# (and any other schedule) is a shape over the whole budget, not a start time: its cells are
# left out of the crossing (docs/report.md, "Timing against strength").
TIMING_SCHEDULES = (style.CONSTANT, *EVENT_SCHEDULES)


@dataclass(frozen=True)
class Claim:
    """statistic(metric | first) vs statistic(metric | second); sign +1 claims first > second.

    With `across`, first and second are the per-seed differences arm_a - arm_b at two levels of
    the `across` column (the levels are fixed protocol names, or 'smallest'/'largest' of a
    numeric column such as train_size or object_fraction: the effect at the smallest value is
    `first`).
    """

    claim_id: str
    claim: str
    metric: str
    arm_a: Arm  # a regularizer and schedule (`style.report_arm`): every variant of it is tested
    arm_b: Arm
    sign: int
    protocol: str | None = None  # only scopes with this protocol
    across: tuple[str, object, object] | None = None  # (column, first level, second level)
    statistic: str = "mean"
    margin: float | None = None  # smallest effect of interest; None: the metric's Column.margin
    # The claim this one is not independent of (its rows join that claim's finding in the same
    # scope), and why: e.g. gap = train_acc - test_acc per cell. None: a finding of its own.
    finding_of: str | None = None
    dependence: str = ""
    # A factor claim (issue 28), the names of its two factors as rows show them: ("timing",
    # "strength") compares the main effects of two factors crossed among arm_a's regularizer's
    # cells in a scope: TIMING, the cell's schedule among `TIMING_SCHEDULES`, against STRENGTH,
    # its other parameters (a level: the tuple of its non-schedule parameters; the only crossing
    # `verdicts.crossing` knows). The row's effect is D = max |timing difference| - max
    # |strength difference| (`stats.factor_contrast`); arm_b is unused (set it to arm_a).
    factors: tuple[str, str] | None = None

    @property
    def smallest_effect(self) -> float:
        """The claim's margin (declared, or its metric's `Column.margin`)."""
        return self.margin if self.margin is not None else schema.margins()[self.metric]

    @property
    def metric_label(self) -> str:
        return self.metric_for(style.arm_label(self.arm_a), style.arm_label(self.arm_b))

    @property
    def finding(self) -> str:
        """The id of the finding this claim's rows belong to (per scope): its own, or the one it
        declares it depends on."""
        return self.finding_of or self.claim_id

    def metric_for(self, label_a: str, label_b: str) -> str:
        """The `metric` text of a row comparing the arms labelled label_a and label_b."""
        declared = schema.METRICS.get(self.metric)
        label = (declared.formula if declared else "") or self.metric
        if self.statistic == "std":
            label = f"std({label}) over seeds"
        if self.factors:
            return (
                f"max |{label} difference| between {self.factors[0]} levels - max between "
                f"{self.factors[1]} levels"
            )
        if self.across:
            label += f", {label_a} - {label_b}"
        return label


# The claim whose effect the train-size figure draws per train size.
CUTMIX_IMPROVES_TEST_ACC = Claim(
    "cutmix_improves_test_acc",
    "test acc(cutmix) > test acc(none)",
    "test_acc",
    CUTMIX,
    NONE,
    1,
    finding_of="cutmix_reduces_gap",
    dependence="gap = train_acc - test_acc per cell",
)

CLAIMS = [
    Claim("cutmix_reduces_gap", "gap(cutmix) < gap(none)", "gap", CUTMIX, NONE, -1),
    Claim(
        "cutmix_lowers_train_acc",
        "clean-train acc(cutmix) < acc(none)",
        "train_acc",
        CUTMIX,
        NONE,
        -1,
        finding_of="cutmix_reduces_gap",
        dependence="gap = train_acc - test_acc per cell",
    ),
    CUTMIX_IMPROVES_TEST_ACC,
    Claim(
        "cutmix_beats_random_erasing",
        "test acc(cutmix) > test acc(random_erasing)",
        "test_acc",
        CUTMIX,
        ERASING,
        1,
    ),
    Claim(
        "mixup_better_calibrated_than_cutmix",
        "test ECE(mixup) < test ECE(cutmix)",
        "test_ece",
        MIXUP,
        CUTMIX,
        -1,
    ),
    Claim(
        "mixup_better_calibrated_than_cutmix_after_ts",
        "test ECE after temperature scaling(mixup) < (cutmix)",
        "test_ece_ts",
        MIXUP,
        CUTMIX,
        -1,
        finding_of="mixup_better_calibrated_than_cutmix",
        dependence="the same cells' ECE after temperature scaling, beside the raw one",
    ),
    Claim(
        "cutmix_reduces_overconfidence",
        "over-confident part of test ECE(cutmix) < (none)",
        "ece_over",
        CUTMIX,
        NONE,
        -1,
    ),
    Claim(
        "cutmix_stabler_predictions",
        "flip rate among correctly classified test images(cutmix) < (none)",
        "flip_rate_correct",
        CUTMIX,
        NONE,
        -1,
    ),
    Claim(
        "staged_cutmix_beats_early_cutmix_unfrozen",
        "unfrozen: test acc(cutmix, staged schedule) > test acc(cutmix from the start)",
        "test_acc",
        STAGED_CUTMIX,
        CUTMIX,
        1,
        protocol="unfrozen",
    ),
    Claim(
        "cutmix_hurts_unfrozen_more",
        "test-acc effect of cutmix over none is smaller unfrozen than frozen",
        "test_acc",
        CUTMIX,
        NONE,
        -1,
        across=("protocol", "unfrozen", "frozen"),
    ),
    Claim(
        "cutmix_struggles_tiny_data",
        "test-acc effect of cutmix over none is smaller at the smallest train size",
        "test_acc",
        CUTMIX,
        NONE,
        -1,
        across=("train_size", "smallest", "largest"),
    ),
    Claim(
        "mixup_more_robust_than_cutmix",
        "corruption acc(mixup) > corruption acc(cutmix)",
        "corruption_acc",
        MIXUP,
        CUTMIX,
        1,
    ),
    Claim(
        "mixup_retains_more_under_corruption_than_cutmix",
        "corruption acc / clean acc on the same images(mixup) > (cutmix)",
        "corruption_retained",
        MIXUP,
        CUTMIX,
        1,
        finding_of="mixup_more_robust_than_cutmix",
        dependence="corruption_retained = corruption_acc / clean acc on the same images",
    ),
    Claim(
        "mixup_better_calibrated_under_corruption",
        "corruption ECE(mixup) < corruption ECE(cutmix)",
        "corruption_ece",
        MIXUP,
        CUTMIX,
        -1,
    ),
    Claim(
        "random_erasing_occlusion_robust",
        "occlusion acc(random_erasing) > occlusion acc(none)",
        "occlusion_acc",
        ERASING,
        NONE,
        1,
    ),
    Claim(
        "random_erasing_retains_more_under_occlusion",
        "occlusion acc / clean acc on the same images(random_erasing) > (none)",
        "occlusion_retained",
        ERASING,
        NONE,
        1,
        finding_of="random_erasing_occlusion_robust",
        dependence="occlusion_retained = occlusion_acc / clean acc on the same images",
    ),
    Claim(
        "cutmix_occlusion_robust",
        "occlusion acc(cutmix) > occlusion acc(none)",
        "occlusion_acc",
        CUTMIX,
        NONE,
        1,
    ),
    Claim(
        "cutmix_retains_more_under_occlusion",
        "occlusion acc / clean acc on the same images(cutmix) > (none)",
        "occlusion_retained",
        CUTMIX,
        NONE,
        1,
        finding_of="cutmix_occlusion_robust",
        dependence="occlusion_retained = occlusion_acc / clean acc on the same images",
    ),
    Claim(
        "cutmix_increases_seed_variance_unfrozen",
        "unfrozen: seed std of test acc(cutmix) > (none)",
        "test_acc",
        CUTMIX,
        NONE,
        1,
        protocol="unfrozen",
        statistic="std",
    ),
    # issue 28: object size (the `object_fraction` axis; smallest vs largest, as train_size)
    Claim(
        "cutmix_struggles_object_fills_frame",
        "test-acc effect of cutmix over none is smaller when the object fills the frame than at "
        "the smallest object fraction",
        "test_acc",
        CUTMIX,
        NONE,
        1,  # effect at the smallest fraction > effect at the largest (the full frame)
        across=("object_fraction", "smallest", "largest"),
    ),
    # issue 28: two objects in one image (composite_size > 0; docs/metrics.md)
    Claim(
        "cutmix_raises_two_object_recall",
        "two-object recall(cutmix) > (none)",
        "composite_recall",
        CUTMIX,
        NONE,
        1,
    ),
    Claim(
        "cutmix_two_object_recall_beats_mixup",
        "two-object recall(cutmix) > (mixup)",
        "composite_recall",
        CUTMIX,
        MIXUP,
        1,
    ),
    # issue 28: CutMix switched on when the validation accuracy plateaus (schedule on_plateau),
    # per protocol; an on_plateau arm that never switched on in a scope is not measured there
    Claim(
        "on_plateau_cutmix_beats_cutmix_from_start",
        "test acc(cutmix switched on at the plateau) > test acc(cutmix from the start)",
        "test_acc",
        ON_PLATEAU_CUTMIX,
        CUTMIX,
        1,
    ),
    # issue 28: timing (when cutmix starts) against strength (its other parameters), per scope
    Claim(
        "timing_matters_more_than_strength",
        "cutmix: the largest test-acc difference between start times (from the start, at the "
        "unfreeze, at the plateau) > the largest between strengths",
        "test_acc",
        CUTMIX,
        CUTMIX,
        1,
        factors=("timing", "strength"),
    ),
]
