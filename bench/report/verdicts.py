"""Verdicts on the claims (`claims.CLAIMS`): one row per claim and scope, in `claims.csv`.

Reads from the ok runs: `regularizer`, `schedule`, `arm` (which also tells the parameter
variants of one regularizer and schedule apart), the scope columns (protocol and every other
configuration column that varies), `seed`, the claim's metric (`gap`, `train_acc`, `test_acc`,
`test_ece`, `test_ece_ts`, `ece_over` and `ece_under` (derived from calibration.csv),
`flip_rate_correct`, `corruption_acc`, `corruption_retained`, `corruption_ece`,
`occlusion_acc`, `occlusion_retained`), and where present the per-image outcomes
(`Results.outcomes`); failed cells count only in the notes. A claim on a column that this
runs.csv lacks (older results) is `not measured`, never an error.

A claim names its arms by regularizer and schedule (`bench.arms.Arm` values, `style.report_arm`).
When the sweep has several parameter variants of one of them (e.g. mixup with alpha=0.2 and
alpha=1.0; `Results.variants`), the claim is tested for every combination of the two arms'
variants, one row each, and the row's scope ends with the arms compared (`protocol=frozen;
mixup (alpha=0.2) vs cutmix`); variants are never pooled and none is preferred. With a single variant per arm the rows are exactly as before (no arm suffix).

`effect` is the mean paired difference, oriented so that a positive value is the claimed
direction, in the metric's own units (fractions for accuracies and ECE). Cells of two arms are
paired by seed within a scope (every configuration column equal); an interaction claim pairs the
per-seed arm difference across two protocols or train sizes, matching every other configuration
column except those that move together with the compared one (e.g. epochs chosen per train size).
`ci_low`/`ci_high`: 95% paired t interval (BCa bootstrap from 20 pairs); `p_value`: two-sided
paired t-test; `p_holm`: Holm over every row with a p-value; `p_equivalence`: TOST at +-margin,
`p_equivalence_holm` the same Holm-adjusted over every row that has one; `sd`: the SD of the
paired differences; `seeds_needed` (`seeds_plan`): blank for decided rows, else pairs for 80%
power to detect a true effect equal to the margin at the first Holm threshold (0.05 / rows with
a p), or, when the estimate lies within the margin, for the TOST to show equivalence; its range
`seeds_needed_low`/`_high` from the SD's chi-square interval. `test_images`: whether each seed
drew its own test images (`PER_SEED`: their sampling is in the seed spread) or all seeds shared
them (`FIXED`); `sd_images`/`sd_seed`: the paired difference's image and seed components, from
the outcome files; `ci_images_low`/`ci_images_high`: for a fixed test set only, the interval
that resamples seeds and (once per draw, shared by the seeds) test images. `clears_margin`: a
decided row's whole interval lies beyond the margin. `finding`: the claim whose finding the row
belongs to (`Claim.finding`); `regime`, `hparams_a`/`_b`, `converged_a`/`_b`: what the row
speaks for, each arm's selected settings and convergence flags.

A factor claim (`Claim.factors`, `timing_matters_more_than_strength`) has one row per scope: the
crossing of its regularizer's start times with its strengths (`crossing`), its effect D and
interval from `stats.factor_contrast`, its p the smallest level at which that interval excludes 0
(so it joins Holm like any p). A claim on an arm with an event schedule (on_unfreeze, on_plateau)
none of whose cells in a scope switched on (runs.csv `schedule_start_step` empty) is `not
measured` there (`never_started`).

Verdict (`verdict_of`): `supported` / `contradicted` when p_holm < 0.05, |effect| >= margin (the
point estimate) and the image-level interval (where there is one) excludes 0, in / against the
claimed direction; else `equivalent` when p_equivalence_holm < 0.05; else `inconclusive`; `not
measured` when the sweep lacks the cells or the column.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import schema  # column declarations only: no torch behind it
from bench.report import stats, style
from bench.report.claims import CLAIMS, EVENT_SCHEDULES, TIMING_SCHEDULES, Claim
from bench.report.derive import matches
from bench.report.load import Results
from regularizers import schedules  # no torch behind it (regularizers/__init__.py is lazy)

COLUMNS = [
    "claim_id",
    "claim",
    "scope",
    "metric",
    "effect",
    "ci_low",
    "ci_high",
    "n",
    "p_value",
    "p_holm",
    "verdict",
    "note",
    "margin",
    "p_equivalence",
    "p_equivalence_holm",
    "seeds_needed",
    "ci_images_low",
    "ci_images_high",
    "sd",
    "seeds_needed_low",
    "seeds_needed_high",
    "seeds_plan",
    "test_images",
    "sd_seed",
    "sd_images",
    "clears_margin",
    "finding",
    "regime",
    "hparams_a",
    "hparams_b",
    "converged_a",
    "converged_b",
]
TEXT_COLUMNS = ("claim_id", "claim", "scope", "metric", "verdict", "note", "n", "seeds_plan",
                "test_images", "finding", "regime", "hparams_a", "hparams_b", "converged_a",
                "converged_b")  # fmt: skip
VERDICTS = ["supported", "contradicted", "equivalent", "inconclusive", "not measured"]


def image_metrics() -> dict[str, str]:
    """Claim metric -> the per-image metric the two-level bootstrap recomputes from outcome
    files (`Column.image_metric` of the catalogue, read when called)."""
    return {name: c.image_metric for name, c in schema.METRICS.items() if c.image_metric}


Pair = tuple[str, str]  # the arm labels (variants) a claim row compares: arm_a's, arm_b's


def variant_pairs(results: Results, claim: Claim) -> list[Pair]:
    """Every combination of a variant of arm_a with a variant of arm_b, in display order; where
    both arms are one regularizer (on-plateau CutMix against CutMix from the start), only the
    variants with the same parameters are paired (the claim is about the schedule, so the
    strength is held fixed), unless no two variants match.

    An arm without cells in the sweep stands for itself (its plain label), so the claim's row
    can say 'no ... cells'. Both arms with a single variant: one pair, as before variants.
    """
    a = results.variants.get(claim.arm_a) or [style.arm_label(claim.arm_a)]
    b = results.variants.get(claim.arm_b) or [style.arm_label(claim.arm_b)]
    pairs = [(label_a, label_b) for label_a in a for label_b in b]
    if claim.arm_a.regularizer == claim.arm_b.regularizer:
        variant = {label: style.variant_of(arm) for label, arm in results.arms.items()}
        matched = [(x, y) for x, y in pairs if x in variant and variant.get(x) == variant.get(y)]
        return matched or pairs
    return pairs


def _select(frame: pd.DataFrame, label: str, where: dict) -> pd.DataFrame:
    return frame[(frame["arm"] == label) & matches(frame, where)]


def per_seed(results: Results, label: str, where: dict, metric: str) -> pd.Series:
    """The metric of one arm's ok cells matching `where`, one value per seed (NaN dropped).

    `label`: the arm's label (a key of `results.arms`), which names its parameter variant.
    """
    cells = _select(results.ok, label, where)
    return cells.groupby("seed")[metric].mean().dropna()


def _missing(results: Results, claim: Claim, pair: Pair, where: dict) -> str | None:
    """Why this scope cannot be measured, or None when both arms have values."""
    metric = claim.metric
    source = getattr(schema.METRICS.get(metric), "source", "")
    sides = {schema.EPOCHS_FILE: results.epochs, schema.CALIBRATION_FILE: results.calibration,
             schema.ROBUSTNESS_FILE: results.robustness}  # fmt: skip
    if source and sides.get(source) is None:
        return f"no {source} ({metric} comes from its test bins)"
    if metric in results.absent_columns or metric not in results.runs.columns:
        return f"runs.csv has no {metric} column"
    for label in pair:
        cells = _select(results.runs, label, where)
        ok = cells[cells["status"] == "ok"]
        if cells.empty:
            return f"no {label} cells"
        if ok.empty:
            return f"all {len(cells)} {label} cell(s) failed"
        if ok[metric].isna().all():
            return f"{label} cells have no {metric} values"
    return None


def _scope_text(
    results: Results, where: dict, levels: tuple | None = None, pair: Pair | None = None
) -> str:
    """'protocol=frozen', with levels 'protocol=unfrozen vs frozen'; with `pair` (a claim whose
    arms have several variants) the arms compared follow: '...; mixup (alpha=0.2) vs cutmix'."""
    parts = []
    for column in results.scope_columns:
        if levels and column == levels[0]:
            parts.append(
                f"{column}={style.format_value(levels[1])} vs {style.format_value(levels[2])}"
            )
        elif column in where:
            parts.append(f"{column}={style.format_value(where[column])}")
    if levels and levels[0] not in results.scope_columns:
        parts.append(f"{levels[0]}={levels[1]} vs {levels[2]}")
    text = ", ".join(parts) or "all cells"
    return f"{text}; {pair[0]} vs {pair[1]}" if pair else text


PER_SEED = "per seed"  # test_images: each seed drew its own test subset (data_seed follows seed)
FIXED = "fixed"  # test_images: the same test images for every seed


@dataclass(frozen=True)
class ImageParts:
    """What the test images contribute to one row: which case applies (`PER_SEED`, `FIXED`, or
    "" when unknown), the within-seed SD of the paired difference from image sampling alone
    (outcome files only), the image-level interval (a test set fixed across seeds only), and
    why there is none."""

    case: str = ""
    sd_images: float = math.nan
    interval: tuple[float, float] = (math.nan, math.nan)
    note: str = ""


def test_images_case(results: Results, cells: pd.DataFrame) -> str:
    """`FIXED` when the cells' test set is the whole test split (`test_size` 0) or one subset
    for every seed (one `data_seed`), `PER_SEED` when the seeds drew different subsets, "" when
    runs.csv does not say (no `test_size`/`data_seed` columns)."""
    if cells.empty or "test_size" not in cells or cells["test_size"].isna().all():
        return ""
    if (cells["test_size"].fillna(0) == 0).all():
        return FIXED
    if "data_seed" not in cells or cells["data_seed"].isna().all():
        return ""
    return PER_SEED if cells.groupby("seed")["data_seed"].first().nunique() > 1 else FIXED


def _joined(values) -> str:
    """'a' or 'a | b' for the distinct non-empty values, in order."""
    seen = [str(v) for v in dict.fromkeys(values) if str(v) not in ("", "nan", "{}")]
    return " | ".join(seen)


def _params(text: object) -> dict:
    """A row's regularizer_params as a dict ({} for an empty field; load.py has refused any
    that is not a JSON object, so the fallback never applies to loaded results)."""
    try:
        found = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        found = {}
    return found if isinstance(found, dict) else {}


def arm_settings(results: Results, cells: pd.DataFrame) -> str:
    """One arm's selected hyperparameters in a scope, as its cells have them: the configuration
    columns the search selected per arm (`lr=0.03`) and the searched regularizer parameters
    (`alpha=0.2`); without a search, the regularizer's parameters ('alpha=1.0, prob=1.0')."""
    searched = set(results.search["parameter"]) if results.search is not None else None
    parts = []
    for column in results.selected_per_arm:
        if column in cells:
            parts.append(f"{column}={_joined(style.format_value(v) for v in cells[column])}")
    texts = []
    for text in dict.fromkeys(cells.get("regularizer_params", pd.Series(dtype=str))):
        params = _params(text)
        shown = {k: v for k, v in params.items() if v is not None
                 and (k in searched if searched is not None else k not in ("schedule", "mode"))}  # fmt: skip
        if shown:
            texts.append(", ".join(f"{k}={style.format_value(v)}" for k, v in shown.items()))
    return "; ".join(parts + ([" | ".join(texts)] if texts else []))


def convergence_text(cells: pd.DataFrame) -> str:
    """'8 of 10 converged' from runs.csv's `converged` flags ("" when not recorded)."""
    if "converged" not in cells or cells["converged"].isna().all():
        return ""
    flags = cells["converged"].dropna()
    return f"{int((flags == 1).sum())} of {len(flags)} converged"


def regime_text(results: Results, cells: pd.DataFrame, where: dict) -> str:
    """The regime a row speaks for: backbone, resolution and the clean test accuracy of `none`
    in the scope ('tf_efficientnet_lite0, 32 px, none test acc 26.4%')."""
    parts = []
    if "backbone" in cells:
        parts.append(_joined(cells["backbone"]))
    if "image_size" in cells:
        parts.append(f"{_joined(style.format_value(v) for v in cells['image_size'])} px")
    ok = results.ok
    base = ok[(ok["regularizer"] == "none") & matches(ok, where)]
    if "test_acc" in base and base["test_acc"].notna().any():
        parts.append(f"none test acc {100 * base['test_acc'].mean():.1f}%")
    return ", ".join(p for p in parts if p)


def _context(results: Results, pair: Pair, wheres: list[dict]) -> dict:
    """The row's regime, each arm's selected hyperparameters and convergence (claims.csv); an
    interaction row has one `where` per level, shown as 'first vs second'."""
    found: dict[str, list[str]] = {}
    for where in wheres:
        cells = [_select(results.ok, label, where) for label in pair]
        for key, text in [("regime", regime_text(results, pd.concat(cells), where)),
                          ("hparams_a", arm_settings(results, cells[0])),
                          ("hparams_b", arm_settings(results, cells[1])),
                          ("converged_a", convergence_text(cells[0])),
                          ("converged_b", convergence_text(cells[1]))]:  # fmt: skip
            found.setdefault(key, []).append(text)
    return {key: " vs ".join(texts) if len(set(texts)) > 1 else texts[0]
            for key, texts in found.items()}  # fmt: skip


def images_cases(results: Results) -> set[str]:
    """The `test_images` cases of the report's scopes (`PER_SEED`, `FIXED`, "" unknown)."""
    ok = results.ok
    return {test_images_case(results, ok[ok["scope"] == scope]) for scope in ok["scope"].unique()}


def _row(
    claim: Claim,
    pair: Pair,
    scope: str,
    result: stats.Comparison | None,
    note: str,
    images: tuple[float, float] = (math.nan, math.nan),
    parts: ImageParts | None = None,
) -> dict:
    """One claims.csv row before the table-wide columns (p_holm, seeds_needed, verdict)."""
    row = {"claim_id": claim.claim_id, "claim": claim.claim, "scope": scope}
    row["metric"] = claim.metric_for(*pair)
    row["margin"] = claim.smallest_effect
    parts = parts or ImageParts()
    row.update(test_images=parts.case, sd_images=parts.sd_images, finding=claim.finding)
    if result is None:
        return {**row, "n": 0, "verdict": "not measured", "note": note, "sd": math.nan}
    low, high = sorted((claim.sign * result.ci_low, claim.sign * result.ci_high))
    image_low, image_high = sorted((claim.sign * images[0], claim.sign * images[1]))
    row.update(effect=claim.sign * result.effect, ci_low=low, ci_high=high, n=result.n)
    row.update(ci_images_low=image_low, ci_images_high=image_high, sd=result.sd)
    notes = "; ".join(part for part in (result.note, note) if part)
    return {**row, "p_value": result.p_value, "p_equivalence": result.p_equivalence, "note": notes}


def verdict_of(
    effect: float,
    p_holm: float,
    p_equivalence_holm: float,
    margin: float,
    images: tuple[float, float] = (math.nan, math.nan),
) -> str:
    """The verdict of one measured row (effect positive = the claimed direction).

    `supported` / `contradicted`: Holm p < 0.05 and |effect| >= margin, and the image-level
    interval `images` (where it is not NaN) excludes 0 on the same side; `equivalent`: the
    Holm-adjusted TOST p < 0.05; `inconclusive` otherwise (NaN p's count as not significant).
    """
    low, high = images
    if p_holm < stats.ALPHA and abs(effect) >= margin:
        if effect > 0 and (math.isnan(low) or low > 0):
            return "supported"
        if effect < 0 and (math.isnan(high) or high < 0):
            return "contradicted"
    if p_equivalence_holm < stats.ALPHA:
        return "equivalent"
    return "inconclusive"


def _scopes(results: Results, protocol: str | None) -> list[dict]:
    """The scope columns' values of every scope (in report order), optionally one protocol's."""
    first = results.runs.drop_duplicates("scope").set_index("scope")
    wheres = [first.loc[scope, results.scope_columns].to_dict() for scope in results.scopes]
    return [w for w in wheres if protocol is None or w["protocol"] == protocol]


def scope_wheres(results: Results) -> dict[str, dict]:
    """Each scope's text, as claims.csv's `scope` shows it, -> its scope columns' values (the
    planner matches a row to the sweep's cells by them, never by parsing the text)."""
    return {_scope_text(results, where): where for where in _scopes(results, None)}


def _pairwise(results: Results, claim: Claim) -> list[dict]:
    pairs = variant_pairs(results, claim)
    named = len(pairs) > 1  # name the arms in the scope when the claim has several rows per scope
    scopes = _scopes(results, claim.protocol)
    if not scopes:
        scope = f"protocol={claim.protocol}"
        return [_row(claim, pairs[0], scope, None, f"the sweep has no {claim.protocol} cells")]
    rows = []
    for where in scopes:
        for pair in pairs:
            rows.append(_compare_pair(results, claim, pair, where, named))
    return rows


def _compare_pair(results: Results, claim: Claim, pair: Pair, where: dict, named: bool) -> dict:
    """The row of one claim, pair of arm variants and scope."""
    scope = _scope_text(results, where, pair=pair if named else None)
    reason = _missing(results, claim, pair, where)
    if reason:
        return _row(claim, pair, scope, None, reason)
    started = [never_started(results, _select(results.ok, label, where)) for label in pair]
    for label, (never, total) in zip(pair, started, strict=True):
        if total and never == total:
            reason = (f"the regularizer of {label} never switched on in any of its {total} "
                      "cell(s) (runs.csv schedule_start_step empty): the arm is none under "
                      "another name")  # fmt: skip
            return _row(claim, pair, scope, None, reason)
    a = per_seed(results, pair[0], where, claim.metric)
    b = per_seed(results, pair[1], where, claim.metric)
    if claim.statistic == "std" and min(len(a.index.intersection(b.index)), len(a), len(b)) < 3:
        return _row(claim, pair, scope, None, "fewer than 3 seeds shared by both arms")
    seed = stats.seed_for(claim.claim_id, scope)
    result = stats.compare(a, b, claim.statistic, seed, margin=claim.smallest_effect)
    cells = pd.concat([_select(results.ok, label, where) for label in pair])
    parts = ImageParts(case=test_images_case(results, cells))
    if claim.statistic == "mean" and claim.metric in image_metrics() and results.outcomes:
        parts = _image_parts(results, claim, pair, where, seed, parts.case)
    note = "; ".join(filter(None, [parts.note, *(
        f"{never} of {total} {label} cell(s) never switched on (schedule_start_step empty), "
        "compared as they ran" for label, (never, total) in zip(pair, started, strict=True)
        if never)]))  # fmt: skip
    companion = getattr(schema.METRICS.get(claim.metric), "companion", "")
    if companion:
        note = "; ".join(filter(None, [note, _companion_note(results, pair, where, companion)]))
    return {**_row(claim, pair, scope, result, note, parts.interval, parts),
            **_context(results, pair, [where])}  # fmt: skip


def _companion_note(results: Results, pair: Pair, where: dict, companion: str) -> str:
    """'ece_under (mean): cutmix 11.31 pp, none 0.43 pp' (means over seeds, as the catalogue
    shows the metric), noted beside a claim on the metric that declares it its `companion`."""
    means = [per_seed(results, label, where, companion).mean() for label in pair]
    if any(math.isnan(m) for m in means):
        return ""
    column = schema.METRICS[companion]
    shown = ", ".join(
        f"{label} {column.show(m)} {column.unit}" for label, m in zip(pair, means, strict=True)
    )
    return f"{companion} (mean): {shown}"


def _image_parts(
    results: Results, claim: Claim, pair: Pair, where: dict, seed: int, case: str
) -> ImageParts:
    """The test images' part of one row, from the outcome files (module doc): the within-seed
    image SD of pair[0] - pair[1], and, where every seed saw the same test images, the crossed
    interval (seeds and one shared image resample). Where each seed drew its own test images
    the seed spread already contains their sampling: no image resampling, no double count.

    Cells are paired by seed; both need an outcomes file, one cell per arm and seed, and the
    same labels in the same order (the same test images)."""
    cells = []
    ok = results.ok
    seeds = sorted(
        set(_select(ok, pair[0], where)["seed"]) & set(_select(ok, pair[1], where)["seed"])
    )
    for s in seeds:
        ids = []
        for label in pair:
            run = _select(ok, label, {**where, "seed": s})["run_id"]
            if len(run) != 1:
                return ImageParts(case, note="no image-level parts: several cells per arm and seed")
            ids.append(str(run.iloc[0]))
        if not all(i in results.outcomes for i in ids):
            return ImageParts(
                case, note="no image-level parts: outcome files missing for some cells"
            )
        first, second = (results.outcomes[i] for i in ids)
        if not np.array_equal(first["label"], second["label"]):
            note = f"no image-level parts: seed {s} cells have different test labels"
            return ImageParts(case, note=note)
        cells.append((first, second))
    if len(cells) < 2:
        return ImageParts(case)
    metric = image_metrics()[claim.metric]
    labels = [a["label"] for a, _ in cells]
    same = all(len(x) == len(labels[0]) and np.array_equal(x, labels[0]) for x in labels)
    case = FIXED if same else PER_SEED  # the files themselves say which case applies
    variances = [stats.image_sd(a, b, metric, seed + i) ** 2 for i, (a, b) in enumerate(cells)]
    sd_images = math.sqrt(float(np.mean(variances)))
    if case == PER_SEED:
        return ImageParts(case, sd_images)
    return ImageParts(case, sd_images, stats.crossed_interval(cells, metric, seed))


def arm_effect(results: Results, claim: Claim, where: dict, pair: Pair) -> pd.Series:
    """Per-seed difference of the claim's metric between the arms labelled pair[0] and pair[1]
    (variants of the claim's arm_a and arm_b, see `variant_pairs`) in one scope (shared seeds)."""
    a = per_seed(results, pair[0], where, claim.metric)
    b = per_seed(results, pair[1], where, claim.metric)
    return (a - b).dropna()


def effects_per_level(
    results: Results, claim: Claim, pair: Pair, facet: pd.DataFrame, column: str
) -> list[tuple[object, stats.Comparison]]:
    """The paired pair[0] - pair[1] difference of the claim's metric (not signed by the claim) at
    each value of `column` among the rows `facet` (one scope per value), with its 95% paired t
    interval; values without a seed that has both arms are left out."""
    effects = []
    for level in sorted(facet[column].unique()):
        cell = facet[facet[column] == level].iloc[0]
        where = {k: cell[k] for k in results.scope_columns}
        diff = arm_effect(results, claim, where, pair)
        if len(diff):
            zero = pd.Series(0.0, index=diff.index)
            effects.append((level, stats.compare(diff, zero, seed=stats.seed_for(column, where))))
    return effects


def _moving_with(runs: pd.DataFrame, column: str, candidates: list[str]) -> list[str]:
    """Columns whose value is fixed by `column` (one value per level) but differs between levels."""
    moving = []
    for other in candidates:
        levels = runs.groupby(column)[other].nunique(dropna=False)
        if runs[other].nunique(dropna=False) > 1 and levels.max() == 1:
            moving.append(other)
    return moving


def _across(results: Results, claim: Claim) -> list[dict]:
    column, first, second = claim.across
    pairs = variant_pairs(results, claim)
    named = len(pairs) > 1
    runs = results.runs
    if column not in runs:  # an axis added later (object_fraction): older results lack it
        scope = _scope_text(results, {}, claim.across)
        return [_row(claim, pairs[0], scope, None, f"runs.csv has no {column} column")]
    if column == "protocol":
        runs = runs[runs["protocol"].isin([first, second])]
    levels = sorted(runs[column].unique())
    if len(levels) < 2:
        scope = _scope_text(results, {}, claim.across)
        have = ", ".join(map(style.format_value, levels)) or "none"
        missing = [str(level) for level in (first, second) if level not in set(levels)]
        if column == "protocol" and missing:  # e.g. a frozen + head_first sweep: no unfrozen cells
            present = ", ".join(map(style.format_value, sorted(results.runs[column].unique())))
            reason = f"the sweep has no {' or '.join(missing)} cells (protocols: {present})"
        else:
            reason = f"the sweep has one {column} only ({have})"
        return [_row(claim, pairs[0], scope, None, reason)]
    others = [c for c in results.scope_columns if c != column]
    keep = [c for c in others if c not in _moving_with(runs, column, others)]
    rows = []
    groups = runs.groupby(keep, sort=False, dropna=False) if keep else [((), runs)]
    for key, group in groups:
        where = dict(zip(keep, key if isinstance(key, tuple) else (key,), strict=True))
        present = sorted(group[column].unique())
        lo, hi = (first, second) if column == "protocol" else (present[0], present[-1])
        for pair in pairs:
            levels = (column, lo, hi)
            scope = _scope_text(results, where, levels, pair if named else None)
            if lo not in present or hi not in present or lo == hi:
                rows.append(_row(claim, pair, scope, None, f"this scope has one {column} only"))
                continue
            rows.append(_interaction(results, claim, pair, group, levels, scope))
    return rows


def _interaction(
    results: Results, claim: Claim, pair: Pair, group: pd.DataFrame, levels: tuple, scope: str
) -> dict:
    """The row comparing the per-seed arm difference between two levels of `levels[0]`."""
    column = levels[0]
    effects, wheres = [], []
    for level in levels[1:]:
        sub = group[group[column] == level]
        level_where = {c: sub[c].iloc[0] for c in results.scope_columns}
        wheres.append(level_where)
        reason = _missing(results, claim, pair, level_where)
        if reason is None:
            effects.append(arm_effect(results, claim, level_where, pair))
            if effects[-1].empty:
                reason = "no seed has both arms"
        if reason:
            return _row(claim, pair, scope, None, f"{column}={style.format_value(level)}: {reason}")
    budget = ""
    if column in SIZE_COLUMNS:
        cells = group[group[column].isin(levels[1:])]
        problem, budget = size_budget(cells)
        if problem:
            return _row(claim, pair, scope, None, problem)
    seed = stats.seed_for(claim.claim_id, scope)
    result = stats.compare(*effects, claim.statistic, seed, margin=claim.smallest_effect)
    return {**_row(claim, pair, scope, result, budget), **_context(results, pair, wheres)}


SIZE_COLUMNS = ("train_size", "train_per_class")  # a claim across sizes compares budgets too


def size_budget(cells: pd.DataFrame) -> tuple[str, str]:
    """Whether cells of different training-set sizes had comparable optimisation: (the problem,
    "" when none; the budget they were compared under). Comparable: every cell ended at a
    validation plateau (runs.csv stop = plateau), or trained the same passes over its own
    training set (train_passes, or epochs without a step budget). One step budget for every
    size (train_steps) is not: 120 steps are 38 passes over 100 images and 7.7 over 1,000, so
    the sizes would differ in how far they trained as well as in their data."""

    def column(name: str, empty: object) -> pd.Series:
        return cells[name].fillna(empty) if name in cells else pd.Series(empty, index=cells.index)

    if set(column("stop", "budget")) == {"plateau"}:
        return "", "sizes compared under the plateau rule (each cell trained to its plateau)"
    steps, passes = column("train_steps", 0), column("train_passes", 0)
    if (steps == 0).all() and (passes > 0).all() and passes.nunique() == 1:
        return "", f"sizes compared at {style.format_value(float(passes.iloc[0]))} passes each"
    if (steps == 0).all() and (passes == 0).all() and column("epochs", 0).nunique() == 1:
        return "", "sizes compared at the same epochs (passes) each"
    ran = column("passes", math.nan).groupby(cells["train_size"]).mean()
    shown = " vs ".join(f"{style.format_value(round(float(v), 1))}" for v in ran)
    if (steps > 0).any():
        budget = f"one step budget (train_steps = {_joined(map(style.format_value, steps))}"
    elif (passes > 0).any():
        budget = f"different budgets (train_passes = {_joined(map(style.format_value, passes))}"
    else:
        budget = (
            f"different budgets (epochs = {_joined(map(style.format_value, column('epochs', 0)))}"
        )
    return (
        f"the sizes trained under {budget}: {shown} passes), so they differ in how far they "
        'trained as well as in their data; set one train_passes or stop = "plateau" to compare '
        "sizes",
        "",
    )


START_COLUMN = "schedule_start_step"  # runs.csv: empty when an event schedule never started


def never_started(results: Results, cells: pd.DataFrame) -> tuple[int, int]:
    """(cells whose schedule never started, cells with an event schedule) among `cells`: an
    `EVENT_SCHEDULES` cell with an empty runs.csv `schedule_start_step` ran without its
    regularizer. (0, 0) where runs.csv has no such column (results written before issue 28)."""
    if START_COLUMN not in results.runs.columns or cells.empty:
        return 0, 0
    event = cells[cells["schedule"].isin(EVENT_SCHEDULES)]
    return int(event[START_COLUMN].isna().sum()), len(event)


# The regularizer_params that set a cell's schedule rather than its strength: `schedule` and
# every parameter a schedule declares (`stages`, `ramp`, ...; read from the registry).
SCHEDULE_PARAMS = frozenset({style.SCHEDULE}).union(
    *(cls.PARAMS for cls in schedules.SCHEDULES.values())
)


def _level_labels(keys: list[dict], shown: list[str]) -> list[str]:
    """Each level's label: its values of the parameters that differ between levels."""
    varying = [n for n in sorted(set().union(*keys)) if len({json.dumps(k.get(n), sort_keys=True)
                                                             for k in keys}) > 1]  # fmt: skip
    return [
        ", ".join(filter(None, [base, *(f"{n}={json.dumps(k.get(n), sort_keys=True)}"
                                        for n in varying)])) or "all"
        for k, base in zip(keys, shown, strict=True)
    ]  # fmt: skip


@dataclass(frozen=True)
class Crossing:
    """A scope's complete crossing of a factor claim: the metric [timing, strength, seed]."""

    timing: list[str]
    strength: list[str]
    seeds: list
    values: np.ndarray
    cells: pd.DataFrame
    notes: list[str]


def crossing(results: Results, claim: Claim, where: dict) -> Crossing | str:
    """The complete crossing of TIMING (the cells' schedule among `TIMING_SCHEDULES`, with its
    parameters where they differ) and STRENGTH (the other regularizer_params) of the claim's
    regularizer in one scope, or why there is none (a `not measured` reason). Cells of another
    schedule (`staged`) are left out; a timing level none of whose cells switched on is left
    out (it is the arm without the regularizer); the seeds are those with every combination."""
    regularizer, metric = claim.arm_a.regularizer, claim.metric
    if metric in results.absent_columns or metric not in results.runs.columns:
        return f"runs.csv has no {metric} column"
    ok = results.ok
    cells = ok[(ok["regularizer"] == regularizer) & matches(ok, where)].dropna(subset=[metric])
    if cells.empty:
        return f"no {regularizer} cells with {metric} values"
    notes = []
    other = sorted(set(cells["schedule"]) - set(TIMING_SCHEDULES))
    if other:
        notes.append(f"{', '.join(other)} cells left out: a schedule's shape, not a start time")
    cells = cells[cells["schedule"].isin(TIMING_SCHEDULES)]
    params = [_params(t) for t in cells["regularizer_params"]]
    timing_keys = [{k: v for k, v in p.items() if k in SCHEDULE_PARAMS - {style.SCHEDULE}}
                   for p in params]  # fmt: skip
    strength_keys = [{k: v for k, v in p.items() if k not in SCHEDULE_PARAMS} for p in params]
    # a timing level is its schedule, with the schedule's own parameters where they differ
    # between cells of that schedule (two on_plateau variants), not where schedules differ
    timing = [""] * len(cells)
    for name in set(cells["schedule"]):
        rows = [i for i, shown in enumerate(cells["schedule"]) if shown == name]
        labels = _level_labels([timing_keys[i] for i in rows], [name] * len(rows))
        for i, label in zip(rows, labels, strict=True):
            timing[i] = label
    strength = _level_labels(strength_keys, [""] * len(cells))
    cells = cells.assign(timing_level=timing, strength_level=strength)
    for level, group in cells.groupby("timing_level", sort=False):
        never, total = never_started(results, group)
        if total and never == total:
            notes.append(f"{regularizer} ({level}) left out: it never switched on in any of its "
                         f"{total} cell(s) (schedule_start_step empty)")  # fmt: skip
            cells = cells[cells["timing_level"] != level]
        elif never:
            notes.append(f"{never} of {total} {regularizer} ({level}) cell(s) never switched on "
                         "(schedule_start_step empty), compared as they ran")  # fmt: skip
    order = {name: i for i, name in enumerate(TIMING_SCHEDULES)}
    timings = sorted(set(cells["timing_level"]), key=lambda t: (order[t.split(",")[0]], t))
    strengths = sorted(set(cells["strength_level"]), key=style.plot_text)
    left = "".join(f"; {note}" for note in notes)
    for name, levels in (("timing", timings), ("strength", strengths)):
        if len(levels) < 2:
            shown = ", ".join(levels) or "none"
            return f"fewer than 2 {name} levels of {regularizer} ({shown}){left}"
    per_seed_values = cells.groupby(["timing_level", "strength_level", "seed"])[metric].mean()
    seeds = None
    for t, k in itertools.product(timings, strengths):
        if (t, k) not in per_seed_values.index.droplevel(2):
            return f"incomplete crossing: no {regularizer} ({t}, {k}) cells{left}"
        found = set(per_seed_values.loc[(t, k)].index)
        seeds = found if seeds is None else seeds & found
    seeds = sorted(seeds)
    if len(seeds) < 2:
        return f"fewer than 2 seeds have every timing x strength combination{left}"
    values = np.array([[[per_seed_values.loc[(t, k, s)] for s in seeds] for k in strengths]
                       for t in timings])  # fmt: skip
    return Crossing(timings, strengths, seeds, values, cells, notes)


def _difference_text(metric: str, levels: list[str], pair: tuple) -> str:
    """'on_plateau - constant = +2.10 pp [0.80, 3.40]', oriented so the difference is >= 0."""
    i, j, effect, low, high = pair
    if effect < 0:
        i, j, effect, low, high = j, i, -effect, -high, -low
    column = schema.METRICS.get(metric)
    scale, unit = (100.0, "pp") if column is not None and column.unit == "%" else (1.0, "")
    shown = f"{scale * effect:+.2f} {unit}".rstrip()
    return f"{levels[i]} - {levels[j]} = {shown} [{scale * low:.2f}, {scale * high:.2f}]"


def _factors(results: Results, claim: Claim) -> list[dict]:
    """One row per scope: the larger main-effect difference of TIMING against STRENGTH
    (`crossing`, `stats.factor_contrast`); `not measured` without a complete crossing."""
    label = style.arm_label(claim.arm_a)
    pair = (label, label)
    rows = []
    for where in _scopes(results, claim.protocol):
        scope = _scope_text(results, where)
        found = crossing(results, claim, where)
        if isinstance(found, str):
            rows.append(_row(claim, pair, scope, None, found))
            continue
        contrast = stats.factor_contrast(found.values, stats.ALPHA, claim.smallest_effect)
        largest = [max(d, key=lambda p: abs(p[2])) for d in contrast.differences]
        pairs = len(contrast.differences[0]) + len(contrast.differences[1])
        note = "; ".join([
            f"largest timing difference {_difference_text(claim.metric, found.timing, largest[0])}",
            f"largest strength difference "
            f"{_difference_text(claim.metric, found.strength, largest[1])}",
            f"{len(found.timing)} timing x {len(found.strength)} strength levels paired over "
            f"{contrast.n} seeds; intervals Bonferroni over {pairs} pairwise differences",
            *found.notes,
        ])  # fmt: skip
        result = stats.Comparison(contrast.effect, contrast.ci_low, contrast.ci_high, contrast.n,
                                  contrast.p_value, "", p_equivalence=contrast.p_equivalence)  # fmt: skip
        parts = ImageParts(case=test_images_case(results, found.cells))
        context = {"regime": regime_text(results, found.cells, where),
                   "converged_a": convergence_text(found.cells)}  # fmt: skip
        rows.append({**_row(claim, pair, scope, result, note, parts=parts), **context})
    return rows


def evaluate_claims(results: Results, claims: list[Claim] = CLAIMS) -> pd.DataFrame:
    """Every claim in every scope, with the table-wide columns: Holm-adjusted p and equivalence
    p, seeds needed at the first Holm threshold, and the verdict (`verdict_of`)."""
    rows = []
    for claim in claims:
        if claim.factors:
            rows += _factors(results, claim)
        else:
            rows += _across(results, claim) if claim.across else _pairwise(results, claim)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["n"] = table["n"].astype(int)
    for column in COLUMNS:
        if column not in TEXT_COLUMNS:
            table[column] = table[column].astype(float)
    table["p_holm"], table["p_equivalence_holm"], verdict = decide(
        table["effect"].to_numpy(float),
        table["p_value"].to_numpy(float),
        table["p_equivalence"].to_numpy(float),
        table["margin"].to_numpy(float),
        table[["ci_images_low", "ci_images_high"]].to_numpy(float),
    )
    measured = table["verdict"] != "not measured"
    table["verdict"] = table["verdict"].astype(object)  # all NaN (float) when every row measured
    table.loc[measured, "verdict"] = verdict[measured.to_numpy()]
    alphas = thresholds(table)
    plans = [
        seeds_plan(r.verdict, r.effect, r.sd, r.n, r.margin, *alphas) for r in table.itertuples()
    ]
    planned = ["seeds_needed", "seeds_needed_low", "seeds_needed_high", "seeds_plan"]
    table[planned] = pd.DataFrame(plans, columns=planned, index=table.index, dtype=object)
    for column in planned[:3]:
        table[column] = table[column].astype(float)
    table["sd_seed"] = [
        stats.seed_sd(r.sd, r.sd_images, r.test_images == PER_SEED) for r in table.itertuples()
    ]
    table["clears_margin"] = [
        clears_margin(r) if r.verdict in ("supported", "contradicted") else math.nan
        for r in table.itertuples()
    ]
    table["note"] = table["note"].fillna("")
    for column in TEXT_COLUMNS[8:]:
        table[column] = [value if isinstance(value, str) else "" for value in table[column]]
    return table[COLUMNS]


def clears_margin(row) -> float:
    """1 when the row's 95% interval (and its image-level interval, where there is one) lies
    wholly beyond the margin on the side of its effect, 0 when it does not, NaN when there is
    no interval. A verdict needs only the point beyond the margin (see `verdict_of`); this
    column says which decided rows also have the interval beyond it."""
    lows = [v for v in (row.ci_low, row.ci_images_low) if not math.isnan(v)]
    highs = [v for v in (row.ci_high, row.ci_images_high) if not math.isnan(v)]
    if not lows or math.isnan(row.effect):
        return math.nan
    if row.effect > 0:
        return float(min(lows) >= row.margin)
    return float(max(highs) <= -row.margin)


DECIDED = ("supported", "contradicted", "equivalent")
PLAN_DIFFERENCE = "t at margin"  # seeds_plan: pairs for the paired t-test to detect the margin
PLAN_EQUIVALENCE = "TOST"  # seeds_plan: pairs for the TOST to show equivalence (true diff. 0)


def thresholds(table: pd.DataFrame) -> tuple[float, float]:
    """The first Holm thresholds of the report: 0.05 / (rows with a p) for the difference test,
    0.05 / (rows with an equivalence p) for the TOST."""
    family = max(int(table["p_value"].notna().sum()), 1)
    equivalence = max(int(table["p_equivalence"].notna().sum()), 1)
    return stats.ALPHA / family, stats.ALPHA / equivalence


def seeds_plan(
    verdict: str,
    effect: float,
    sd: float,
    n: int,
    margin: float,
    alpha: float,
    alpha_equivalence: float,
) -> tuple[float, float, float, str]:
    """(seeds_needed, its low and high end, which test it plans for) of one claim row.

    Blank (NaN, "") for decided and unmeasured rows and rows without a positive spread. An
    undecided row whose point estimate lies within +-margin plans for equivalence (TOST at the
    first Holm threshold of the equivalence family, true difference 0); any other undecided row
    plans for the paired t-test to detect a true difference equal to the margin at the first
    Holm threshold: never for the observed effect (post-hoc power inherits the winner's curse).
    The low/high ends use the 95% chi-square interval of the observed SD (`stats.sd_interval`):
    a 10-pair SD moves the count by about 0.5-3x.
    """
    blank = (math.nan, math.nan, math.nan, "")
    if verdict in DECIDED or verdict == "not measured" or n < 2:
        return blank
    if not (math.isfinite(sd) and sd > 0 and math.isfinite(effect) and margin > 0):
        return blank
    if abs(effect) < margin:

        def needed(spread):
            return stats.equivalence_seeds_needed(margin, spread, alpha_equivalence)

        kind = PLAN_EQUIVALENCE
    else:

        def needed(spread):
            return stats.seeds_needed(margin, spread, alpha)

        kind = PLAN_DIFFERENCE
    low, high = stats.sd_interval(sd, n)
    return needed(sd), needed(low), needed(high), kind


def decide(
    effect: np.ndarray,
    p_value: np.ndarray,
    p_equivalence: np.ndarray,
    margin: np.ndarray,
    images: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The verdict engine over one report's rows (arrays [rows]; NaN p: not in the family):
    Holm-adjusted p, Holm-adjusted equivalence p, and each row's `verdict_of`.
    `images`: [rows, 2] image-level intervals (NaN where there is none)."""
    p_holm = stats.holm(p_value)
    p_equivalence_holm = stats.holm(p_equivalence)
    if images is None:
        images = np.full((len(effect), 2), np.nan)
    verdict = np.array(
        [
            verdict_of(e, p, q, m, (low, high))
            for e, p, q, m, (low, high) in zip(
                effect, p_holm, p_equivalence_holm, margin, images, strict=True
            )
        ],
        dtype=object,
    )
    return p_holm, p_equivalence_holm, verdict


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    counts = table["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS if counts.get(v, 0)}
