"""Build a report folder from a results folder: `build_report(results_dir, out_dir)`.

Output (all paths relative to out_dir):
    index.html, report.md          the report (same content; HTML with inline CSS, no scripts)
    summary.csv, claims.csv        the numbers behind the tables, full precision, runs.csv units
    tables/summary.{md,tex}        mean ± std per regularizer x scope (LaTeX: booktabs)
    tables/robustness.{md,tex}     the robustness metrics, same form (when measured)
    tables/claims.{md,tex}         claim verdicts
    tables/search.md               the hyperparameter search (when search.csv exists)
    figures/<name>.{png,pdf}       see figures.FIGURES
    .regbench-report               the list of files above, so a rerun removes stale ones

Everything is first written to a staging folder inside out_dir and moved into place only when
the whole report succeeded, so a failed run leaves the previous report intact. The report writes
and deletes only inside out_dir and never through a symbolic link (a linked `figures/` or
`tables/` is refused); a rerun deletes only names the report itself writes (`own_files`) that
the previous manifest lists, and only when they are plain files, so files the report did not
write are never touched, whatever the manifest says. Reads the columns that load, tables, claims and figures read,
plus the provenance columns `device`, `torch_version`, `timm_version`, `git_commit`,
`data_source`, `data_fingerprint`, `sweep_file_sha256` (bench.report.provenance),
`started_at` and `regularizer_params`.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench import schema
from bench.files import NotRegularFileError, read_regular
from bench.report import (
    draw,
    figures,
    findings,
    latex,
    marks,
    render,
    stats,
    style,
    tables,
    verdicts,
)  # fmt: skip
from bench.report.claims import CLAIMS
from bench.report.errors import quoted_path
from bench.report.load import ReportInputError, Results, load_results
from bench.report.provenance import provenance

MANIFEST = ".regbench-report"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists a few hundred names
SUBFOLDERS = ("figures", "tables")
PAGES = ["index.html", "report.md", "summary.csv", "claims.csv"]
SEARCH_TABLE = "tables/search.md"
TABLES = ["tables/summary.md", "tables/summary.tex", "tables/claims.md", "tables/claims.tex",
          "tables/robustness.md", "tables/robustness.tex", SEARCH_TABLE]  # fmt: skip


def own_files() -> set[str]:
    """Every file a report may write, relative to its folder: the only names a rerun deletes."""
    figure_files = {
        f"figures/{spec.name}.{ext}" for spec in figures.FIGURES for ext in draw.FORMATS
    }
    return {*PAGES, *TABLES, *figure_files}


def _values(series: pd.Series) -> str:
    """'a' or 'a (3), b (1)' for the distinct non-empty values of a text column."""
    counts = series[series.astype(str) != ""].astype(str).value_counts()
    if len(counts) == 0:
        return "not recorded"
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{value} ({count} cells)" for value, count in counts.items())


def _notes(results: Results, summary: pd.DataFrame) -> list[str]:
    runs, ok, failed = results.runs, results.ok, results.failed
    notes = []
    if ok.empty:
        notes.append(
            f"All {len(runs)} cells failed: there are no metrics, figures or verdicts. "
            "The failures are listed below; fix them and rerun the sweep."
        )
    elif len(failed):
        notes.append(
            f"{len(failed)} of {len(runs)} cells failed; they are listed under Failed cells, "
            "counted in the tables as '+k failed', and never averaged in."
        )
    if len(ok):
        seeds = summary.loc[summary["n"] > 0, "n"]
        if seeds.max() == 1:
            notes.append(
                "Every cell has a single seed: there are no standard deviations, intervals or "
                "p-values, and no claim can be more than inconclusive. Run more seeds."
            )
        elif (seeds == 1).any():
            notes.append(
                f"{int((seeds == 1).sum())} regularizer x scope rows have a single seed: they "
                "show no ± and no interval."
            )
    cases = verdicts.images_cases(results) if len(ok) else set()
    if verdicts.FIXED in cases and not results.outcomes:
        notes.append(
            "The test images are the same for every seed (runs.csv test_size 0, or one "
            "data_seed) and this results folder has no per-image test outcomes "
            "(outcomes/<run_id>.npz): the intervals cover seeds only and leave out the sampling "
            "of the test images."
        )
    elif len(ok) and not results.outcomes and "" in cases:
        notes.append(
            "runs.csv does not say whether the seeds shared their test images (no test_size / "
            "data_seed columns) and there are no per-image test outcomes: the intervals cover "
            "seeds only, and may leave out the sampling of the test images."
        )
    notes += _sweep_notes(results)
    notes += _edge_note(results)
    for column, what in [("git_commit", "git commits"), ("device", "devices")]:
        distinct = ok[column][ok[column] != ""].unique()
        if len(distinct) > 1:
            notes.append(
                f"The finished cells come from {len(distinct)} {what} "
                f"({', '.join(map(str, distinct))}); differences may come from that, too."
            )
    if results.absent_columns:
        notes.append(
            "runs.csv has no column(s) " + ", ".join(results.absent_columns) + "; what needs them "
            "is marked not measured."
        )
    return notes + results.notes


def missing_cells(results: Results) -> int | None:
    """How many cells of the sweep have no row (runs.csv `sweep_cells`: the sweep's cell
    count, recorded per row); None when the rows do not record it."""
    if "sweep_cells" not in results.measured:
        return None
    expected = int(results.runs["sweep_cells"].max())
    return max(0, expected - len(results.runs))


def _sweep_notes(results: Results) -> list[str]:
    """Missing cells of an incomplete sweep; arms with unconverged cells."""
    notes = []
    missing = missing_cells(results)
    if missing:
        expected = int(results.runs["sweep_cells"].max())
        notes.append(
            f"The sweep is incomplete: {missing} of its {expected} cells have no row yet; "
            "what they would measure is missing from every table, figure and verdict."
        )
    if "converged" in results.measured:
        ok = results.ok
        flat = ok[ok["converged"] == 0]
        if len(flat):
            arms = _share_by(flat, ok, "arm")
            notes.append(
                f"Unconverged cells (runs.csv converged = 0) in these arms: {arms}; their "
                "numbers describe training that was still improving"
                + (
                    " (per scope and arm under Convergence)."
                    if tables.CONVERGENCE_METRIC in results.measured
                    else "."
                )
            )
    notes += _collapse_note(results) + _chance_note(results)
    return notes


def _share_by(flagged: pd.DataFrame, ok: pd.DataFrame, column: str, sort: bool = False) -> str:
    """'a (2 of 10), b (1 of 10)': per value of `column`, how many of its ok cells `flagged`
    (a subset of `ok`) holds; values in order of appearance, or sorted."""
    total = ok.groupby(column).size()
    return ", ".join(f"{key} ({n} of {int(total[key])})"
                     for key, n in flagged.groupby(column, sort=sort).size().items())  # fmt: skip


CHANCE_Z = 2.58  # a validation accuracy this many standard errors above guessing has learned


def _chance_note(results: Results) -> list[str]:
    """Cells whose validation accuracy is within CHANCE_Z binomial standard errors (on their
    val_size images) of guessing (1 / the dataset's classes), counted per arm: a cell that
    learned nothing, e.g. a learning rate that diverged without a non-finite loss, pulls its
    arm's means down, reads as converged (it gains nothing) and can carry a verdict alone."""
    ok = results.ok
    if not len(ok) or not {"val_acc", "val_size", "dataset"} <= set(ok):
        return []
    guess = 1 / ok["dataset"].map(schema.DATASET_CLASSES)
    margin = CHANCE_Z * (guess * (1 - guess) / ok["val_size"]) ** 0.5
    at_chance = ok[ok["val_acc"] <= guess + margin]  # unknown datasets (NaN) never match
    if at_chance.empty:
        return []
    counts = _share_by(at_chance, ok, "arm")
    return [
        f"Cells with a validation accuracy no better than guessing: {counts}. They learned "
        "nothing (e.g. a learning rate that diverged without a non-finite loss), yet they pull "
        "their arm's means down and read as converged; check their logs before citing a verdict "
        "in their scopes."
    ]


COLLAPSE_DROP = 0.05  # validation accuracy lost between two evaluations that flags a cell


def _collapse_note(results: Results) -> list[str]:
    """Cells whose validation accuracy fell by more than COLLAPSE_DROP between two consecutive
    evaluations (e.g. at an unfreeze), counted per protocol: their final numbers describe a run
    that lost what it had learned, which a convergence flag alone does not show."""
    epochs = results.epochs
    if epochs is None or "val_acc" not in epochs or epochs["val_acc"].isna().all():
        return []
    curves = epochs[epochs["run_id"].isin(results.ok["run_id"])].sort_values(["run_id", "epoch"])
    worst = curves.groupby("run_id")["val_acc"].apply(lambda v: v.diff().min())
    fell = results.ok[results.ok["run_id"].map(worst) < -COLLAPSE_DROP]
    if fell.empty:
        return []
    counts = _share_by(fell, results.ok, "protocol", sort=True)
    return [
        f"Cells whose validation accuracy fell by more than {COLLAPSE_DROP * 100:.0f} pp between "
        f"two evaluations: {counts}. Their final numbers describe training that lost what it had "
        "learned (see the learning curves); read those scopes with care."
    ]


def _edge_note(results: Results) -> list[str]:
    """Searched values selected at an edge of their range (details in the search section)."""
    if results.search is None:
        return []
    edges = int((tables.search_table(results.search)["at_edge"] == 1).sum())
    if not edges:
        return []
    return [
        f"{edges} searched value(s) were selected at an edge of their range: the best value may "
        "lie outside it (listed under Hyperparameter search); widen those ranges."
    ]


def _folders_fact(results: Results) -> tuple[str, str]:
    if len(results.folders) > 1:
        return ("results folders", ", ".join(map(str, results.folders)))
    return ("results folder", str(results.folder))


def _setup(results: Results) -> render.Facts:
    runs = results.runs
    constant = [c for c in results.config_columns if c not in results.scope_columns]
    seeds = sorted(runs["seed"].unique())
    started = sorted(s for s in runs["started_at"] if s)
    facts = [
        ("sweep", results.sweep),
        _folders_fact(results),
        (
            "cells",
            f"{len(results.ok)} finished, {len(results.failed)} failed ({len(runs)} in runs.csv)",
        ),
        ("cells in the sweep", _sweep_size(results)),
        ("regularizers", ", ".join(results.styles)),
        ("protocols", ", ".join(results.protocols)),
        ("seeds", ", ".join(map(style.format_value, seeds))),
        ("compared within", ", ".join(results.scope_columns)),
        (
            "same in every cell",
            ", ".join(f"{c}={style.format_value(runs[c].iloc[0])}" for c in constant),
        ),
        *_selected_fact(results),
        ("device", _values(runs["device"])),
        ("torch", _values(runs["torch_version"])),
        ("timm", _values(runs["timm_version"])),
        *provenance(runs).facts(),
        ("started", f"{started[0]} to {started[-1]}" if started else "not recorded"),
    ]
    return render.Facts(facts)


def _selected_fact(results: Results) -> list[tuple[str, str]]:
    """The configuration columns the search selected per arm (they are in no scope)."""
    if not results.selected_per_arm:
        return []
    names = ", ".join(results.selected_per_arm)
    return [("selected per arm", f"{names} (see Hyperparameter search)")]


def _sweep_size(results: Results) -> str:
    missing = missing_cells(results)
    if missing is None:
        return "unknown (runs.csv has no sweep_cells column), so missing cells cannot be counted"
    expected = int(results.runs["sweep_cells"].max())
    return f"{expected} ({missing} missing)" if missing else f"{expected} (all present)"


def _arms_table(results: Results) -> render.Table:
    rows = []
    for label in results.styles:
        cells = results.runs[results.runs["arm"] == label]
        params = "; ".join(sorted(set(cells["regularizer_params"]) - {""})) or "{}"
        first = cells.iloc[0]
        rows.append([label, first["regularizer"], first["schedule"], params])
    return render.Table(["label", "regularizer", "schedule", "regularizer_params"], rows)


def _claim_list() -> render.Table:
    rows = [[c.claim_id, c.claim, c.metric_label] for c in CLAIMS]
    return render.Table(["claim", "statement", "metric (effect = claimed direction)"], rows)


def _failures(results: Results) -> render.Table:
    rows = [
        [
            r["run_id"],
            r["arm"],
            r["scope"],
            style.format_value(r["seed"]),
            r["error"] or "(no reason given)",
        ]
        for _, r in results.failed.iterrows()
    ]
    return render.Table(["run_id", "regularizer", "scope", "seed", "error"], rows)


VERDICT_MEANING = (
    "What a verdict means: 'supported' or 'contradicted' says the paired difference is "
    "significant after Holm's correction over every claim row of this report (so the chance of "
    "any false verdict among them stays below 5%) and at least as large as the claim's margin, "
    "its smallest effect of interest. 'equivalent' says the difference is shown to lie within "
    "±margin (two one-sided tests, with the same correction), so the arms do not differ by an "
    "amount that matters. 'inconclusive' says neither could be shown with these seeds: it is not "
    "evidence of no effect, and the column 'seeds needed' estimates how many seed pairs would "
    "give 80% power to detect a true effect as large as the margin (or, where the estimate lies "
    "within the margin, to show equivalence); decided rows leave it blank."
)


def _images_text(results: Results) -> str:
    """Which test-image case applies (verdicts.test_images_case), and what the report does."""
    cases = verdicts.images_cases(results)
    per_seed = (
        "Each seed drew its own test subset (data_seed follows seed), so the spread over seeds "
        "already contains the sampling of the test images: the intervals are over seeds only, "
        "and images are not resampled again (that would count their noise twice)."
    )
    fixed = (
        "Every seed was tested on the same images (a test set fixed across seeds), so the seed "
        "spread does not contain their sampling: "
        + (
            "accuracy and calibration effects get an image-level interval from the outcome "
            "files that resamples seeds and, shared by every drawn seed, the test images; a "
            "supported or contradicted verdict then also needs it to exclude 0."
            if results.outcomes
            else "without per-image outcome files the intervals leave it out."
        )
    )
    parts = []
    if verdicts.PER_SEED in cases:
        parts.append(per_seed)
    if verdicts.FIXED in cases:
        parts.append(fixed)
    if "" in cases:
        parts.append("For some scopes runs.csv does not say whether the seeds shared test images.")
    if results.outcomes:
        parts.append(
            "claims.csv's test_images column names the case per row; sd_images is the SD of one "
            "seed's paired difference from test-image sampling alone (from the outcome files) "
            "and sd_seed the rest of the seed spread."
        )
    return " ".join(parts)


def margins_text() -> str:
    """The declared margins (`schema.MARGINS`, those a catalogue metric names), in their order,
    neighbours of one size joined: '0.5 pp for accuracies, 1 pp for calibration errors and
    retained accuracy, 0.5 pp for flip rates'."""
    named = {c.margin for c in schema.METRICS.values() if c.margin is not None}
    groups: list[tuple[float, list[str]]] = []
    for margin in (m for m in schema.MARGINS if m in named):
        if groups and groups[-1][0] == margin.value:
            groups[-1][1].append(margin.what)
        else:
            groups.append((margin.value, [margin.what]))
    return ", ".join(f"{100 * value:g} pp for {' and '.join(what)}" for value, what in groups)


def _method(results: Results, n_p: int) -> list[render.Para]:
    images = _images_text(results)
    return [
        render.Para(
            "Tables: mean ± sample standard deviation (ddof=1) over the seeds of one "
            "regularizer in one scope; n is the number of finished cells averaged, failed cells "
            "are counted separately and never averaged in. A value is bold when the arm's "
            "paired difference from none in its scope is better and decided by the page's one "
            "standard; costs such as throughput are never bold. One standard: the summary's "
            "bold, the who-wins figure's filled markers and the claims' verdicts all use the "
            "claims' rule (paired over seeds, Holm-adjusted p < 0.05 and |difference| ≥ the "
            "metric's margin). A difference that is a claim row (same arms, scope and metric) "
            "takes that row's verdict (Holm over the claim rows); every other difference from "
            f"none on the page is Holm-adjusted in one family of {marks.family_size(results)}. "
            "Differences of percentages are in percentage points (pp)."
        ),
        render.Para(
            "Figures: small points are single cells (seeds), large markers their mean, bars the "
            "95% Student-t interval of the mean (mean ± t(0.975, n-1) · std / sqrt(n)); cells "
            "with one seed have no bar. Paired differences (who wins where, the gap figure) "
            "pair cells by seed, like the claims."
        ),
        render.Para(
            "Claims: two arms are compared within a scope (every configuration column equal) and "
            "paired by seed; effect = mean over seeds of the per-seed difference, signed so that "
            "positive is the claimed direction, in percentage points. The 95% interval is the "
            "paired t interval below 20 pairs and a BCa bootstrap interval (scipy, "
            f"{stats.N_BOOTSTRAP:,} resamples) from 20 pairs on. p is the two-sided paired "
            "t-test, and p (Holm) adjusts it with Holm's step-down method over all "
            f"{n_p} rows of this report that have a p-value. Each claim has a margin (its "
            f"smallest effect of interest: {margins_text()}). Supported / contradicted: p (Holm) "
            "< 0.05 and the point |effect| >= margin, in / against the claimed direction (the "
            "point, not the interval, must clear the margin: a verdict says the effect is real "
            "and its best estimate matters; 'interval clears margin' marks the rows whose whole "
            "95% interval lies beyond the margin, which a reader citing a size should prefer); "
            "equivalent: "
            "the two one-sided tests (TOST) at ±margin pass after the same Holm correction over "
            "the equivalence p-values; otherwise inconclusive; not measured: cells or column "
            "missing. Seeds needed (undecided rows only): seed pairs for 80% power of the paired "
            "t-test against a true effect equal to the margin, at the first Holm threshold "
            f"(0.05 / {n_p}), from the observed SD of the paired differences; where the estimate "
            "lies within ±margin, the pairs for 80% power of the TOST (true effect 0) instead. "
            "Never the observed effect: power computed from it inherits the winner's curse. The "
            "range in parentheses recomputes the count at the ends of the SD's 95% chi-square "
            "interval: an SD from 10 pairs makes the count uncertain by about 0.5–3×. A spread claim "
            "(std over seeds) keeps a percentile bootstrap interval and a permutation p."
        ),
        *([render.Para(images)] if images else []),
        render.Para(VERDICT_MEANING),
    ]


def _key_findings_blocks(claims: pd.DataFrame) -> list:
    """The page's opening: one sentence per decided finding (`findings.key_findings`)."""
    sentences = findings.key_findings(claims)
    counted = findings.counts(claims)
    intro = (
        "One sentence per decided finding, written from the claim rows below. Rows that measure "
        "one mechanism in one scope (gap = train − test accuracy; ECE after temperature scaling "
        "beside the raw ECE; retained = perturbed / clean accuracy) are one finding, counted "
        f"once: {', '.join(f'{n} {s}' for s, n in counted.items()) or 'none'}. Read the notes "
        "below (Read this first) before citing one."
    )
    if not sentences:
        intro += (
            " No finding is decided: every claim is inconclusive or not measured. Read this "
            "report as a check that the pipeline runs end to end, not as evidence for or against "
            "any claim (a sweep sized for its claims: `regbench sweep plan`)."
        )
    return [render.Heading("Key findings"), render.Para(intro)] + (
        [render.Bullets(sentences)] if sentences else []
    )


def _claim_blocks(claims: pd.DataFrame) -> list:
    return [
        render.Heading("Claims"),
        render.Para(VERDICT_MEANING),
        render.Para(
            "One row per claim and scope. effect and its 95% interval are in percentage points, "
            "positive = the claimed direction; p is a paired t-test, p (Holm) the same adjusted "
            "over the whole table; margin is the smallest effect of interest; seeds needed is "
            "for 80% power at the margin, with its range (see Method)."
        ),
        render.Table(
            tables.CLAIM_HEADER,
            tables.claim_rows(claims),
            right_from=2,
            verdict_column=tables.VERDICT_COLUMN,
            groups=list(claims["claim_id"]),
        ),
        render.Para("What each claim says, and the metric its effect is computed on:"),
        _claim_list(),
    ]


def _metric_table(
    results: Results, summary: pd.DataFrame, metrics: list[str] | None
) -> render.Table:
    """The per-arm table of `metrics` (None: the summary's), bold where it beats none."""
    header, rows, marks = tables.table_rows(results, summary, metrics)
    right_from = len(header) - len(marks[0])
    return render.Table(header, rows, marks, right_from=right_from,
                        groups=list(summary["scope"]), nowrap=True)  # fmt: skip


def _summary_blocks(results: Results, summary: pd.DataFrame) -> list:
    return [
        render.Heading("Summary"),
        render.Para(
            "Mean ± std over seeds (std with ddof=1); n = finished cells (failed ones in "
            "parentheses); bold = better than none in its scope and decided by the page's one "
            "standard, the same as the who-wins figure's filled markers and the claims' "
            "verdicts (see Method; never a cost such as throughput)."
        ),
        _metric_table(results, summary, None),
    ]


def _robustness_blocks(results: Results, summary: pd.DataFrame) -> list:
    if not ("corruption_acc" in results.measured or "occlusion_acc" in results.measured):
        return []
    return [
        render.Heading("Robustness"),
        render.Para(
            "Mean ± std over seeds. Retained accuracy = perturbed accuracy / clean accuracy on "
            "the same images (where measured); bold as in the summary."
        ),
        _metric_table(results, summary, tables.ROBUSTNESS_METRICS),
    ]


def _search_blocks(results: Results) -> list:
    """The hyperparameter search: what it shows, the edge warning, the selected values."""
    if results.search is None:
        return []
    table = tables.search_table(results.search)
    rows, marks = tables.search_rows(table)
    warning = tables.edge_warning(table)
    return [
        render.Heading("Hyperparameter search"),
        render.Para(tables.search_explanation(results.search)),
        *([render.Para(warning)] if warning else []),
        render.Table(
            tables.SEARCH_HEADER,
            rows,
            marks,
            right_from=tables.SEARCH_NUMBERS,
            groups=list(table["scope"]),
        ),  # fmt: skip
    ]


def _convergence_blocks(results: Results, summary: pd.DataFrame) -> list:
    """Per scope and arm: whether training had stopped improving (when cells record it)."""
    header, rows, groups = tables.convergence_rows(results, summary)
    if not rows:
        return []
    return [
        render.Heading("Convergence"),
        render.Para(tables.convergence_explanation(rows)),
        render.Table(header, rows, right_from=len(results.scope_columns) + 2, groups=groups),
    ]


FIRST_FIGURE = "who_wins"


def _first_figure(drawn: list[figures.Drawn]) -> list:
    """The who-wins figure, placed first on the page."""
    for item in drawn:
        if item.name == FIRST_FIGURE and item.files:
            png, pdf = (f"figures/{p.name}" for p in item.files)
            image = render.Image(item.title, item.caption, png, pdf, titled=False)
            return [render.Heading(item.title), image]
    return []


def _figure_blocks(drawn: list[figures.Drawn]) -> list:
    blocks: list = [render.Heading("Figures")]
    for item in drawn:
        if item.files and item.name != FIRST_FIGURE:
            png, pdf = (f"figures/{p.name}" for p in item.files)
            blocks.append(render.Image(item.title, item.caption, png, pdf))
    skipped = [f"{item.title}: {item.skipped}" for item in drawn if item.skipped]
    if skipped:
        blocks.append(render.Para("Not drawn: " + "; ".join(skipped) + "."))
    return blocks


FILE_LINKS = [
    ("summary.csv: every metric, mean/std/n/95% CI, runs.csv units", "summary.csv"),
    ("claims.csv: the verdicts with full precision", "claims.csv"),
    ("tables/summary.md", "tables/summary.md"),
    ("tables/summary.tex (booktabs)", "tables/summary.tex"),
    ("tables/claims.md", "tables/claims.md"),
    ("tables/claims.tex (booktabs)", "tables/claims.tex"),
]
SEARCH_LINKS = [("tables/search.md: the hyperparameter search", SEARCH_TABLE)]
ROBUSTNESS_LINKS = [
    ("tables/robustness.md", "tables/robustness.md"),
    ("tables/robustness.tex (booktabs)", "tables/robustness.tex"),
]


def _pages(results, summary, claims, drawn, notes) -> render.Page:
    title = f"regbench report: {results.sweep}"
    subtitle = (
        f"{len(results.ok)} finished and {len(results.failed)} failed cells; "
        + findings.headline(claims)
    )
    blocks: list = _key_findings_blocks(claims)
    blocks += [render.Notes(notes)] if notes else []
    blocks += _first_figure(drawn)
    blocks += [render.Heading("Setup"), _setup(results), _arms_table(results)]
    blocks += _search_blocks(results) + _convergence_blocks(results, summary)
    blocks += _claim_blocks(claims) + _summary_blocks(results, summary)
    blocks += _robustness_blocks(results, summary)
    if len(results.failed):
        blocks += [render.Heading("Failed cells"), _failures(results)]
    blocks += _figure_blocks(drawn)
    links = FILE_LINKS + (ROBUSTNESS_LINKS if _robust(results) else [])
    links += SEARCH_LINKS if results.search is not None else []
    blocks += [render.Heading("Files"), render.Links(links), render.Heading("Method")]
    blocks += _method(results, int(claims["p_value"].notna().sum()))
    return render.Page(title, subtitle, blocks)


def _robust(results: Results) -> bool:
    return "corruption_acc" in results.measured or "occlusion_acc" in results.measured


@dataclass
class Written:
    index: Path  # index.html of the report
    notes: list[str]  # what the report's "Read this first" box says
    verdicts: dict[str, int]  # verdict -> number of claim rows
    findings: dict[str, int]  # decided / undecided / not measured -> findings (each once)


def _write(results: Results, folder: Path) -> tuple[list[str], list[str], pd.DataFrame]:
    """Write the whole report into `folder`; return the relative paths, notes and claims."""
    summary = tables.summary_table(results)
    claims = marks.claims_of(results)
    (folder / "tables").mkdir()
    files = {
        "summary.csv": tables.spreadsheet_safe(summary).to_csv(index=False),
        "claims.csv": tables.spreadsheet_safe(claims).to_csv(index=False),
        "tables/claims.md": tables.claims_markdown(claims),
        "tables/claims.tex": latex.claims_latex(claims, results),
    }
    files["tables/summary.md"] = tables.summary_markdown(results, summary)
    files["tables/summary.tex"] = latex.summary_latex(results, summary)
    if _robust(results):
        robust = tables.ROBUSTNESS_METRICS
        files["tables/robustness.md"] = tables.summary_markdown(results, summary, robust)
        what = ": robustness"
        files["tables/robustness.tex"] = latex.summary_latex(results, summary, robust, what)
    if results.search is not None:
        files[SEARCH_TABLE] = tables.search_markdown(results.search)
    drawn = figures.draw_figures(results, folder / "figures")
    notes = _notes(results, summary)
    page = _pages(results, summary, claims, drawn, notes)
    files["index.html"] = render.to_html(page)
    files["report.md"] = render.to_markdown_page(page)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    written = list(files) + [f"figures/{p.name}" for item in drawn for p in item.files]
    unknown = set(written) - own_files()
    assert not unknown, f"add {sorted(unknown)} to build.PAGES/TABLES or draw.FORMATS"
    return sorted(written), notes, claims


def _check_subfolders(out: Path) -> None:
    """Refuse a `figures/` or `tables/` that is a link or a file: the report would write (and
    delete) through it, outside its folder."""
    for sub in SUBFOLDERS:
        path = out / sub
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise ReportInputError(
                f"{str(path)!r} is a symbolic link or a file; the report writes only inside its "
                "folder: remove it or pass another --out"
            )


def _is_plain_file(path: Path) -> bool:
    """A regular file, not a link (os.lstat: links are never followed)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _stale(out: Path, written: list[str]) -> list[Path]:
    """Files of the previous report that this one did not write: names in its manifest that the
    report itself writes (`own_files`), and that are plain files, so a manifest naming anything
    else (an absolute path, `..`, a user's file, a path through a link) deletes nothing."""
    manifest = out / MANIFEST
    listed: list[str] = []
    if _is_plain_file(manifest):  # untrusted: bounded, and bytes that are not UTF-8 match nothing
        try:
            text = read_regular(manifest, MAX_MANIFEST_BYTES, follow_links=False)
            listed = text.decode("utf-8", errors="replace").split("\n")
        except (OSError, NotRegularFileError):
            listed = []  # unreadable or huge: delete nothing
    names = (own_files() & set(listed)) - set(written)
    return [out / name for name in sorted(names) if _is_plain_file(out / name)]


def _publish(staging: Path, out: Path, written: list[str]) -> None:
    """Replace the previous report's files with the staged ones; leave other files alone."""
    _check_subfolders(out)  # again: the folder may have changed while the report was drawn
    # the last write (it may find the disk full): before anything of the previous report goes
    (staging / MANIFEST).write_text("\n".join(written) + "\n", encoding="utf-8")
    for path in _stale(out, written):
        path.unlink()
    for name in [*written, MANIFEST]:
        target = out / name
        target.parent.mkdir(exist_ok=True)  # out/figures or out/tables, never through a link
        os.replace(staging / name, target)  # replaces a link at `target`, never writes through
    for sub in SUBFOLDERS:
        if (out / sub).is_dir() and not any((out / sub).iterdir()):
            (out / sub).rmdir()


def default_out(sweep: str) -> Path:
    """reports/<sweep>/ under the current folder; the sweep name (CSV text) made path-safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", sweep).strip("._") or "sweep"
    return Path("reports") / safe


def write_report(results: Results, out_dir: str | Path) -> Written:
    """Write the report of loaded results into out_dir (see the module docstring)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportInputError(f"--out {str(out)!r} is a file; pass a folder for the report")
    if out.resolve() in {folder.resolve() for folder in [results.folder, *results.folders]}:
        raise ReportInputError("--out is a results folder; write the report elsewhere")
    _check_subfolders(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    except OSError as error:
        raise ReportInputError(
            f"cannot write to {quoted_path(out)} ({error.strerror}); pass another --out"
        ) from None
    try:
        written, notes, claims = _write(results, staging)
        _publish(staging, out, written)
    except OSError as error:  # a full disk (ENOSPC), a quota, a folder made read-only meanwhile
        reason = error.strerror or type(error).__name__
        raise ReportInputError(
            f"cannot write the report to {quoted_path(out)} ({reason}); free space or pass "
            "another --out (the previous report there is unchanged)"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Written(
        out / "index.html", notes, verdicts.verdict_counts(claims), findings.counts(claims)
    )


def build_report(results_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Read results_dir, write its report into out_dir, return the path of index.html.

    out_dir defaults to reports/<sweep>/ under the current folder. Raises ReportInputError
    (a one-line message naming the problem and the fix) for bad input.
    """
    results = load_results(results_dir)
    return write_report(results, out_dir or default_out(results.sweep)).index
