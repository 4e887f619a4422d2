"""The summary table (mean ± std over seeds, n), its Markdown and CSV forms and the escaping and
rows the LaTeX tables share (bench.report.latex writes those).

Reads from runs.csv: `arm`, `regularizer`, `schedule`, `status`, the configuration columns (the
shared ones, plus the extension ones that vary in the sweep), and every metric of
`style.metrics()` that the sweep has. One row per arm and scope; failed cells are
counted (`n_failed`) and never averaged in. Per metric: mean, std (ddof=1), n (cells with a
value), and the 95% Student-t interval of the mean. A value is marked (`<metric>_beats_none`,
bold in HTML, Markdown and LaTeX) when the arm's paired difference from `none` in its scope
is decided by the page's one standard (`marks`: the claims' rule, Holm p < 0.05 and |effect|
>= margin; a claim row's verdict where the difference is one) and in the metric's better
direction; cost metrics (throughput, time, memory) and metrics without a better direction are
never marked.

The hyperparameter search table (`search_table`, from search.csv: every column of it but
`run_ids`) has one row per arm x scope x searched parameter: the selected trial's value, the
searched range, whether the value sits at an edge of it, the number of trials, and the best and
worst trial score.
"""

from __future__ import annotations

import html
import math
import re

import pandas as pd

from bench import schema
from bench.arms import Scope
from bench.report import stats, style
from bench.report.columns import config_columns
from bench.report.load import Results
from bench.report.marks import page_marks
from bench.report.search_csv import selection_metric

SUMMARY_FIELDS = ["mean", "std", "n", "ci_low", "ci_high"]


def summary_metrics(results: Results) -> list[str]:
    """The catalogue's metrics (style.metrics()) that at least one ok cell has, table metrics
    first."""
    catalogue, table = style.metrics(), style.table_metrics()
    ordered = table + [m for m in catalogue if m not in table]
    return [m for m in ordered if m in results.measured]


def _beats_none(results: Results, table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per row and metric: True when the arm's difference from `none` (same scope, seeds
    paired) is decided by the page's one standard (`marks`) and in the better direction."""
    marked = page_marks(results)
    flags = pd.DataFrame(False, index=table.index, columns=metrics)
    wanted = marked[marked["decided"] & (marked["effect"] > 0) & marked["metric"].isin(metrics)]
    for _, row in wanted.iterrows():
        where = table.index[(table["scope"] == row["scope"]) & (table["arm"] == row["arm"])]
        if len(where):
            flags.at[where[0], row["metric"]] = True
    return flags


def summary_table(results: Results) -> pd.DataFrame:
    """One row per scope and arm (scopes in order, arms in display order), wide metric columns.

    Identifying columns: scope, arm (its label names a parameter variant), regularizer,
    schedule, every shared configuration column, and the extension configuration columns that
    vary in the sweep (so the rows can be told apart by column, not only by the scope label).
    Arms whose cells all failed in a scope keep their row, with n = 0 and no values.
    """
    metrics = summary_metrics(results)
    keys = ["scope", "arm"]
    runs = results.runs
    shared = config_columns()
    extension = [c for c in results.varying if c not in shared]
    columns = [*keys, "regularizer", "schedule", *shared, *extension]
    table = runs.drop_duplicates(keys)[columns]
    table = table.set_index(keys)
    ok = runs["status"] == "ok"
    table["n"] = ok.groupby([runs[k] for k in keys]).sum()
    table["n_failed"] = (~ok).groupby([runs[k] for k in keys]).sum()
    if metrics:
        tidy = stats.summarize(results.ok, metrics, keys)
        wide = tidy.pivot(index=keys, columns="metric", values=SUMMARY_FIELDS)
        wide.columns = [f"{metric}_{field}" for field, metric in wide.columns]
        table = table.join(wide[[f"{m}_{f}" for m in metrics for f in SUMMARY_FIELDS]])
    table = table.reset_index()
    for metric in metrics:
        table[f"{metric}_n"] = table[f"{metric}_n"].fillna(0).astype(int)
    scope_rank = {s: i for i, s in enumerate(results.scopes)}
    arm_rank = {a: i for i, a in enumerate(results.styles)}
    order = sorted(
        table.index, key=lambda i: (scope_rank[table.at[i, "scope"]], arm_rank[table.at[i, "arm"]])
    )
    table = table.loc[order].reset_index(drop=True)
    marks = _beats_none(results, table, metrics)
    beats = marks.add_suffix("_beats_none")
    return pd.concat([table, beats], axis=1)  # one join, not a column insert per metric


def cell_text(row: pd.Series, metric: str) -> str:
    """'91.23 ± 0.15' in the metric's display units; '(n=2)' when fewer cells have the value."""
    spec = style.metrics()[metric]
    n = int(row[f"{metric}_n"])
    if n == 0:
        return "–"
    text = spec.show(row[f"{metric}_mean"])
    if not math.isnan(row[f"{metric}_std"]):
        text += f" ± {spec.show(row[f'{metric}_std'])}"
    if n < row["n"]:
        text += f" (n={n})"
    return text


def n_text(row: pd.Series) -> str:
    return f"{row['n']} (+{row['n_failed']} failed)" if row["n_failed"] else str(row["n"])


ROBUSTNESS_METRICS = ["test_acc", "robust_clean_acc", "occlusion_acc", "occlusion_retained",
                      "corruption_acc", "corruption_retained", "corruption_ece", "flip_rate",
                      "flip_rate_correct"]  # fmt: skip


def table_rows(
    results: Results, table: pd.DataFrame, metrics: list[str] | None = None
) -> tuple[list[str], list[list[str]], list]:
    """Header, rows of plain text cells, and per row the metrics to mark best (`metrics`:
    the columns, style.table_metrics() by default; those without values are left out)."""
    metrics = [m for m in (metrics or style.table_metrics()) if f"{m}_mean" in table]
    metrics = [m for m in metrics if m in style.metrics()]
    scope_cols = results.scope_columns
    catalogue = style.metrics()
    header = [*scope_cols, "regularizer", "n", *(catalogue[m].axis_label for m in metrics)]
    rows, marks = [], []
    for _, row in table.iterrows():
        cells = [style.format_value(row[c]) for c in scope_cols]
        cells += [row["arm"], n_text(row), *(cell_text(row, m) for m in metrics)]
        rows.append(cells)
        marks.append([bool(row[f"{m}_beats_none"]) for m in metrics])
    return header, rows, marks


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def spreadsheet_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (it starts with =, +, -, @, tab or
    CR) gets a leading ' (OWASP's CSV-injection advice); numbers, and text that is a plain
    number such as '-0.5', are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text cell made safe to open in a spreadsheet (see
    `spreadsheet_cell`); number columns are left as they are."""
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(spreadsheet_cell)
    return safe


def markdown_escape(text: str) -> str:
    """CSV text made inert in Markdown: HTML escaped, table pipes and markup characters escaped."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    for char in "\\`*[]|":
        text = text.replace(char, "\\" + char)
    return text


def to_markdown(
    header: list[str], rows: list[list[str]], bold=None, right_from: int | None = None
) -> str:
    """A GitHub table; cells are escaped here. Columns from `right_from` on are numeric (right
    aligned) and `bold[i][j]` bolds the j-th of them in row i."""
    first = len(header) if right_from is None else right_from
    aligns = ["---" if i < first else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(markdown_escape(h) for h in header) + " |"]
    lines.append("| " + " | ".join(aligns) + " |")
    for i, row in enumerate(rows):
        cells = [markdown_escape(c) for c in row]
        for j, flag in enumerate(bold[i] if bold else []):
            if flag:
                cells[first + j] = f"**{cells[first + j]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(char, char) for char in " ".join(str(text).split()))


_MINUS = re.compile(r"(?<![\w.])[-\u2212](?=\d)")  # a minus sign before a number


def latex_number_text(text: str) -> str:
    r"""Escaped cell text with true minus signs ($-$, not a hyphen), $\pm$ and -- for a dash."""
    escaped = latex_escape(_MINUS.sub("\u2212", text))
    escaped = escaped.replace("\u2212", "$-$").replace("±", r"$\pm$").replace("–", "--")
    return escaped


SUMMARY_LEGEND = (
    "Mean ± std over seeds (std with ddof=1); n = finished cells averaged (+failed ones, never "
    "averaged in); bold = better than none in the same scope and decided by the claims' rule "
    "(paired over seeds, Holm-adjusted p < 0.05 and |difference| >= the metric's margin; where "
    "the difference is a claim row, that row's verdict; else Holm over every other difference "
    "from none on the page), the same standard as the who-wins figure's filled markers (never "
    "a cost such as throughput)."
)
CLAIMS_LEGEND = (
    "effect: mean paired difference in percentage points, positive = the claimed direction; "
    "95% CI: paired t interval (BCa bootstrap from 20 pairs); p: two-sided paired t-test; "
    "p (Holm): Holm-adjusted over every row with a p-value; margin: the smallest effect of "
    "interest; seeds: for undecided rows, the seed pairs for 80% power to detect a true effect "
    "equal to the margin at the first Holm threshold (TOST: to show equivalence when the true "
    "effect is 0), with the range the uncertainty of the observed spread gives. Verdicts: "
    "supported/contradicted = p (Holm) < 0.05 and the point |effect| >= margin ('interval "
    "clears margin' when the whole 95% interval lies beyond it, too); equivalent = TOST at "
    "±margin passes after Holm; otherwise inconclusive."
)


def summary_markdown(
    results: Results, table: pd.DataFrame, metrics: list[str] | None = None
) -> str:
    header, rows, marks = table_rows(results, table, metrics)
    body = to_markdown(header, rows, marks, right_from=len(header) - len(marks[0]))
    return f"{body}\n{SUMMARY_LEGEND}\n"


CLAIM_HEADER = ["claim", "scope", "effect (pp)", "95% CI (pp)", "n", "p", "p (Holm)",
                "margin (pp)", "seeds needed", "verdict"]  # fmt: skip
VERDICT_COLUMN = CLAIM_HEADER.index("verdict")


def _pp(value: float) -> str:
    """Signed percentage points; a value that rounds to zero shows as 0.00, not -0.00."""
    if math.isnan(value):
        return ""
    text = f"{100 * value:+.2f}"
    return "0.00" if float(text) == 0 else text


def _p(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.3g}"


def _count(value: float) -> str:
    return f"> {100_000:,}" if math.isinf(value) else f"{value:,.0f}"


def _seeds(value: float, low: float = math.nan, high: float = math.nan, plan: str = "") -> str:
    """'390 (180 to 1,300)': pairs needed, and the range the uncertainty of the observed SD gives;
    ', TOST' when the row plans for equivalence; blank for decided rows."""
    if math.isnan(value):
        return ""
    text = _count(value)
    if not (math.isnan(low) or math.isnan(high)):
        text += f" ({_count(low)} to {_count(high)})"
    return text + (", TOST" if plan == "TOST" else "")


CLEARS = "interval clears margin"  # a decided row whose 95% interval lies beyond the margin


def claim_rows(claims: pd.DataFrame) -> list[list[str]]:
    """Plain-text cells of the claims table (effects in percentage points)."""
    rows = []
    for _, c in claims.iterrows():
        interval = f"[{_pp(c['ci_low'])}, {_pp(c['ci_high'])}]" if _pp(c["ci_low"]) else ""
        verdict = c["verdict"]
        if c["verdict"] == "not measured" and c["note"]:
            verdict = f"{verdict} ({c['note']})"
        elif c["verdict"] in ("supported", "contradicted") and c.get("clears_margin") == 1:
            verdict = f"{verdict} ({CLEARS})"
        rows.append(
            [
                c["claim_id"],
                c["scope"],
                _pp(c["effect"]),
                interval,
                str(c["n"]),
                _p(c["p_value"]),
                _p(c["p_holm"]),
                f"{100 * c['margin']:.1f}",
                _seeds(
                    c["seeds_needed"],
                    c["seeds_needed_low"],
                    c["seeds_needed_high"],
                    c["seeds_plan"] if isinstance(c["seeds_plan"], str) else "",
                ),
                verdict,
            ]
        )
    return rows


def claims_markdown(claims: pd.DataFrame) -> str:
    return f"{to_markdown(CLAIM_HEADER, claim_rows(claims), right_from=2)}\n{CLAIMS_LEGEND}\n"


SEARCH_HEADER = ["scope", "arm", "parameter", "selected on", "selected value", "searched range",
                 "at edge", "trials", "selection seeds", "best score", "worst score",
                 "lead over runner-up ± SE"]  # fmt: skip
# A selection whose lead over the runner-up is under this many standard errors could be noise's.
NOISE_LEAD_SE = 2.0
SEARCH_NUMBERS = SEARCH_HEADER.index("selected value")  # the first right-aligned column
EDGE_FLAG = "at edge: widen the range"
NOT_SELECTED = "none selected"


def _best_and_worst(trials: pd.DataFrame, better: int) -> tuple[float, float, float]:
    """The best and worst score among trials (one row each) in the metric's better direction,
    and the best's lead over the runner-up (>= 0); NaN when no trial (no second) has a score."""
    scores = trials["score"].dropna().sort_values(ascending=better < 0)
    if not len(scores):
        return math.nan, math.nan, math.nan
    lead = abs(scores.iloc[0] - scores.iloc[1]) if len(scores) > 1 else math.nan
    return scores.iloc[0], scores.iloc[-1], lead


def search_table(search: pd.DataFrame) -> pd.DataFrame:
    """One row per arm x scope x searched parameter, in search.csv's order: scope, arm,
    parameter, select_metric, the selected trial's value, at_edge and seeds (NaN, 0, NaN when no
    trial is selected), low, high, trials (of the arm x scope), unscored (trials without a
    score: their cells failed), and the best and worst trial score."""
    rows = []
    for (scope, arm), cells in search.groupby(["scope", "arm"], sort=False):
        metric = cells["select_metric"].iloc[0]
        trials = cells.drop_duplicates("trial")
        best, worst, lead = _best_and_worst(trials, selection_metric(metric).better)
        for parameter, values in cells.groupby("parameter", sort=False):
            selected = values[values["selected"] == 1]
            chosen = selected.iloc[0] if len(selected) else None
            rows.append({
                "scope": scope, "arm": arm, "parameter": parameter, "select_metric": metric,
                "value": math.nan if chosen is None else chosen["value"],
                "at_edge": 0 if chosen is None else int(chosen["at_edge"]),
                "seeds": math.nan if chosen is None else chosen["seeds"],
                "low": values["low"].iloc[0], "high": values["high"].iloc[0],
                "trials": len(trials), "unscored": int(trials["score"].isna().sum()),
                "best": best, "worst": worst, "lead": math.nan if chosen is None else lead,
                "lead_se": math.nan if chosen is None else chosen.get("margin_se", math.nan),
            })  # fmt: skip
    return pd.DataFrame(rows)


def search_scope_text(scope: Scope) -> str:
    """A search.csv scope (bench.arms.Scope) in the form of the report's own scopes:
    `protocol=frozen, train_per_class=10, batch_size=32`; the one scope reads `(empty)`."""
    return style.format_value(scope.text)


def _search_range(row: pd.Series) -> str:
    return f"[{style.format_value(row['low'])}, {style.format_value(row['high'])}]"


def search_rows(table: pd.DataFrame) -> tuple[list[list[str]], list[list[bool]]]:
    """Plain-text cells of the search table (`SEARCH_HEADER`), and per row the cells from
    `SEARCH_NUMBERS` on to mark: the value and its flag where it sits at an edge."""
    rows, marks = [], []
    for _, row in table.iterrows():
        metric = selection_metric(row["select_metric"])
        selected = not math.isnan(row["value"])
        trials = str(row["trials"])
        if row["unscored"]:
            trials += f" ({row['unscored']} without a score)"
        rows.append([
            search_scope_text(row["scope"]), row["arm"], row["parameter"],
            f"{metric.name} ({metric.unit})" if metric.unit else metric.name,
            style.format_value(row["value"]) if selected else NOT_SELECTED,
            _search_range(row),
            EDGE_FLAG if row["at_edge"] else "",
            trials,
            str(int(row["seeds"])) if selected else "–",
            metric.show(row["best"]) or "–",
            metric.show(row["worst"]) or "–",
            _lead_text(row, metric),
        ])  # fmt: skip
        edge = bool(row["at_edge"])
        marks.append([edge, False, edge, False, False, False, False, False])
    return rows, marks


def _lead_text(row: pd.Series, metric) -> str:
    """`0.80 ± 2.10` (the lead, its standard error from search.csv's margin_se), `0.80 ± not
    recorded`, or – without a runner-up."""
    if math.isnan(row["lead"]):
        return "–"
    se = row["lead_se"]
    return f"{metric.show(row['lead'])} ± {'not recorded' if pd.isna(se) else metric.show(se)}"


def noisy_leads(table: pd.DataFrame) -> tuple[int, int]:
    """(selections whose lead over the runner-up is under NOISE_LEAD_SE standard errors, the
    selections whose standard error is recorded): one row per arm x scope."""
    groups = table.drop_duplicates(["scope", "arm"])
    known = groups[groups["lead_se"].notna() & groups["lead"].notna()]
    return int((known["lead"] < NOISE_LEAD_SE * known["lead_se"]).sum()), len(known)


def edge_warning(table: pd.DataFrame) -> str | None:
    """One line naming every arm x scope x parameter whose selected value sits at an edge of its
    range; None when there is none."""
    edges = table[table["at_edge"] == 1]
    if edges.empty:
        return None
    listed = "; ".join(
        f"{row['arm']} in {search_scope_text(row['scope'])}: {row['parameter']} = "
        f"{style.format_value(row['value'])}, range {_search_range(row)}"
        for _, row in edges.iterrows()
    )
    return (
        f"Warning: {len(edges)} selected value(s) sit at an edge of the searched range, so the "
        f"best value may lie outside it (widen the range and rerun the search): {listed}."
    )


def search_explanation(search: pd.DataFrame) -> str:
    """What the search table shows and does not show, with the sweep's metric and seed counts."""
    metrics = sorted(set(search["select_metric"]))
    seeds = sorted(set(search.loc[search["score"].notna(), "seeds"]))
    counts = "no" if not seeds else f"{seeds[0]} to {seeds[-1]}" if len(seeds) > 1 else seeds[0]
    validation = all(m in schema.SELECT_METRICS for m in metrics)
    where = (
        "a validation metric: the test set took no part in the selection"
        if validation
        else "not a validation metric: see Read this first"
    )
    return (
        "Each arm's hyperparameters were selected separately in each scope: every trial (one set "
        f"of values of the searched parameters) ran on {counts} selection seed(s) in cells of "
        "its own (the results folder's search/, counted nowhere else in this report), the "
        f"trial with the best {', '.join(metrics)} was selected ({where}), and the selected "
        "values then ran on every seed: those cells are what the other sections compare. Best "
        "and worst score are over the arm's trials, from their few selection seeds: they show "
        "how much the choice mattered, not how the arms compare; a value selected at an edge "
        "of its range means the best value may lie outside the range (a grid adds one trial a "
        "step past such an edge: search.csv extended = 1, and the range shown includes it). "
        "The lead over the runner-up is the selected trial's score minus the next best, with "
        "its standard error (paired over the selection seeds; with one seed a binomial bound "
        f"over the validation images): {_noise_text(search)}"
    )


def _noise_text(search: pd.DataFrame) -> str:
    noisy, known = noisy_leads(search_table(search))
    if not known:
        return "not recorded in this search.csv, so the table cannot show whether noise chose."
    return (
        f"{noisy} of {known} selections lead by less than {NOISE_LEAD_SE:g} standard errors, "
        "where the validation noise alone could have picked the value."
    )


def search_markdown(search: pd.DataFrame) -> str:
    table = search_table(search)
    rows, marks = search_rows(table)
    body = to_markdown(SEARCH_HEADER, rows, marks, right_from=SEARCH_NUMBERS)
    text = f"{body}\n{markdown_escape(search_explanation(search))}\n"
    warning = edge_warning(table)
    return text + (f"\n{markdown_escape(warning)}\n" if warning else "")


CONVERGENCE_METRIC = "val_gain_last20"  # the convergence record's runs.csv metric
CONVERGENCE_HEADER = ["status", "cells", "converged", "val. gain, last 20% (pp)", "95% CI (pp)"]
PLATEAUED, IMPROVING, UNCLEAR = "plateaued", "still improving", "unclear"
CAPPED = "stopped at the cap"  # the plateau rule's cap ended some of its cells (unconverged)


def convergence_status(ci_low: float, ci_high: float) -> str:
    """What an arm's gains over the last fifth say, from the 95% interval of their mean over
    seeds (fractions; NaN with fewer than 2 seeds): `plateaued` when the whole interval lies
    below the convergence rule's threshold (schema.CONVERGED_GAIN), `still improving` when it
    lies above 0, `unclear` otherwise (the seeds cannot tell)."""
    if ci_high < schema.CONVERGED_GAIN:
        return PLATEAUED
    return IMPROVING if ci_low > 0 else UNCLEAR


def convergence_rows(
    results: Results, summary: pd.DataFrame
) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and each row's scope for the convergence table: per scope and arm its
    convergence_status, its ok cells, how many met the convergence rule (runs.csv `converged`,
    of those that record it), and the mean validation-accuracy gain over the last fifth ± std
    ("(n=k)" when fewer cells record it) with its 95% t interval. Arms with no recorded gain
    are left out; no rows when no cell recorded one."""
    metric = CONVERGENCE_METRIC
    if f"{metric}_mean" not in summary:
        return [], [], []
    ok = results.ok
    flags = ok.groupby(["scope", "arm"])["converged"] if "converged" in results.measured else None
    stops = ok.groupby(["scope", "arm"])["stop_reason"] if "stop_reason" in ok else None
    scope_cols = results.scope_columns
    header = [*scope_cols, "regularizer", *CONVERGENCE_HEADER]
    rows, groups = [], []
    for _, row in summary.iterrows():
        n = int(row[f"{metric}_n"])
        if n == 0:
            continue
        key = (row["scope"], row["arm"])
        met = "–"
        if flags is not None and key in flags.groups:
            counted = flags.get_group(key).dropna()
            met = f"{int((counted == 1).sum())} of {len(counted)}" if len(counted) else "–"
        low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
        interval = "–" if math.isnan(low) else f"[{_pp(low)}, {_pp(high)}]"
        status = convergence_status(low, high) if not math.isnan(low) else UNCLEAR
        found = stops is not None and key in stops.groups
        reasons = set(stops.get_group(key).dropna()) if found else set()
        if reasons and reasons <= {"plateau", "cap"}:  # the plateau rule decided, cell by cell
            status = PLATEAUED if reasons == {"plateau"} else CAPPED
        cells = [style.format_value(row[c]) for c in scope_cols]
        gain = cell_text(row, metric)
        rows.append([*cells, row["arm"], status, n_text(row), met, gain, interval])
        groups.append(row["scope"])
    return header, rows, groups


def convergence_explanation(rows: list[list[str]]) -> str:
    """What the convergence table shows and does not show, with how many arms plateaued."""
    statuses = [row[-len(CONVERGENCE_HEADER)] for row in rows]  # the status column
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in (PLATEAUED, IMPROVING, UNCLEAR))
    if CAPPED in statuses:
        counts += f", {statuses.count(CAPPED)} {CAPPED}"
    threshold = f"{schema.CONVERGED_GAIN * 100:g} pp"
    return (
        "Whether each arm had stopped learning when its training ended: a cell converged when "
        f"its validation accuracy rose by less than {threshold} between the evaluation at 80% "
        "of training and the last one (runs.csv val_gain_last20 and converged). Per arm, over "
        f"its seeds: plateaued when the 95% interval of the mean gain lies below {threshold}, "
        "still improving when it lies above 0, unclear when the seeds cannot tell (fewer than "
        f"2 seeds, or an interval that reaches both). Of the arms in this report: {counts}. One "
        "cell's gain moves with the validation set's sampling noise (the ± column shows how "
        "much, across seeds), so single flags say little and an arm needs enough seeds to show "
        "it has plateaued. Arms trained under the plateau rule (runs.csv stop = plateau) are "
        f"{PLATEAUED} when every cell stopped at its plateau and {CAPPED} when any ran to the "
        "cap instead (those cells count as unconverged). "
        "Where arms are still "
        "improving, a comparison between them measures how fast they learn as much as where "
        "they end."
    )
