"""The summary table (mean ± std over seeds, n) and its Markdown, LaTeX and CSV forms.

Reads from runs.csv: `arm`, `regularizer`, `schedule`, `status`, the configuration columns, and
every metric of `style.METRICS` that the sweep has. One row per arm and scope; failed cells are
counted (`n_failed`) and never averaged in. Per metric: mean, std (ddof=1), n (cells with a
value), and the 95% Student-t interval of the mean. A value is marked best (`<metric>_best`,
bold in Markdown and LaTeX) when it is the best in its scope and its mean ± std range does not
overlap the runner-up's, which needs n >= 2 for both.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from bench.report import stats, style
from bench.report.load import CONFIG_COLUMNS, Results

SUMMARY_FIELDS = ["mean", "std", "n", "ci_low", "ci_high"]


def summary_metrics(results: Results) -> list[str]:
    """The metrics of style.METRICS that at least one ok cell has, table metrics first."""
    ordered = style.TABLE_METRICS + [m for m in style.METRICS if m not in style.TABLE_METRICS]
    return [m for m in ordered if results.has(m)]


def _mark_best(table: pd.DataFrame, metric: str) -> pd.Series:
    better = style.METRICS[metric].better
    best = pd.Series(False, index=table.index)
    if better == 0:
        return best
    for _, group in table.groupby("scope", sort=False):
        ranked = group[group[f"{metric}_n"] > 0].sort_values(f"{metric}_mean", ascending=better < 0)
        if len(ranked) < 2:
            continue
        first, second = ranked.iloc[0], ranked.iloc[1]
        spread = first[f"{metric}_std"] + second[f"{metric}_std"]  # NaN when n < 2
        if better * (first[f"{metric}_mean"] - second[f"{metric}_mean"]) > spread:
            best[ranked.index[0]] = True
    return best


def summary_table(results: Results) -> pd.DataFrame:
    """One row per scope and arm (scopes in order, arms in display order), wide metric columns."""
    metrics = summary_metrics(results)
    rows = []
    order = {label: i for i, label in enumerate(results.styles)}
    for scope in results.scopes():
        cells = results.runs[results.runs["scope"] == scope]
        for arm, group in sorted(cells.groupby("arm"), key=lambda item: order[item[0]]):
            ok = group[group["status"] == "ok"]
            first = group.iloc[0]
            row = {"arm": arm, "regularizer": first["regularizer"], "schedule": first["schedule"]}
            row.update({c: first[c] for c in CONFIG_COLUMNS})
            row.update(scope=scope, n=len(ok), n_failed=len(group) - len(ok))
            for metric in metrics:
                described = stats.describe(ok[metric])
                row.update({f"{metric}_{k}": described[k] for k in SUMMARY_FIELDS})
            rows.append(row)
    table = pd.DataFrame(rows)
    for metric in metrics:
        table[f"{metric}_best"] = _mark_best(table, metric)
    return table


def cell_text(row: pd.Series, metric: str) -> str:
    """'91.23 ± 0.15' in the metric's display units; '(n=2)' when fewer cells have the value."""
    spec = style.METRICS[metric]
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


def table_rows(results: Results, table: pd.DataFrame) -> tuple[list[str], list[list[str]], list]:
    """Header, rows of plain text cells, and per row the metrics to mark best."""
    metrics = [m for m in style.TABLE_METRICS if f"{m}_mean" in table]
    scope_cols = results.scope_columns
    header = [*scope_cols, "regularizer", "n", *(style.METRICS[m].axis_label for m in metrics)]
    rows, marks = [], []
    for _, row in table.iterrows():
        cells = [style.format_value(row[c]) for c in scope_cols]
        cells += [row["arm"], n_text(row), *(cell_text(row, m) for m in metrics)]
        rows.append(cells)
        marks.append([bool(row[f"{m}_best"]) for m in metrics])
    return header, rows, marks


def markdown_escape(text: str) -> str:
    """CSV text made inert in Markdown: HTML escaped, table pipes and markup characters escaped."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    for char in "\\`*[]|":
        text = text.replace(char, "\\" + char)
    return text


def to_markdown(header: list[str], rows: list[list[str]], bold=None, right_from: int = 0) -> str:
    """A GitHub table; cells are escaped here, `bold[i][j]` bolds the j-th cell from right_from."""
    aligns = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(markdown_escape(h) for h in header) + " |"]
    lines.append("| " + " | ".join(aligns) + " |")
    for i, row in enumerate(rows):
        cells = [markdown_escape(c) for c in row]
        for j, flag in enumerate(bold[i] if bold else []):
            if flag:
                cells[right_from + j] = f"**{cells[right_from + j]}**"
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


def to_latex(
    header: list[str],
    rows: list[list[str]],
    *,
    groups: list[str],
    caption: str,
    blank: int,
    bold=None,
    right_from: int = 0,
) -> str:
    """A booktabs tabular: a rule between groups, the first `blank` cells left out on repeats.

    `caption` goes into comment lines above the table (its lines are not interpreted by LaTeX).
    """

    def cell(text: str, strong: bool) -> str:
        text = latex_escape(text).replace("±", r"$\pm$").replace("–", "--")
        return rf"\textbf{{{text}}}" if strong else text

    spec = "l" * right_from + "r" * (len(header) - right_from)
    lines = [f"% {' '.join(line.split())}" for line in caption.splitlines()]
    lines += ["% needs \\usepackage{booktabs}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(cell(h, False) for h in header) + r" \\")
    previous = None
    for i, row in enumerate(rows):
        if groups[i] != previous:
            lines.append(r"\midrule")
        flags = [False] * right_from + list(bold[i] if bold else [])
        flags += [False] * (len(row) - len(flags))
        cells = [cell(text, flag) for text, flag in zip(row, flags, strict=True)]
        if groups[i] == previous:
            cells[:blank] = [""] * blank
        lines.append(" & ".join(cells) + r" \\")
        previous = groups[i]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def summary_markdown(results: Results, table: pd.DataFrame) -> str:
    header, rows, marks = table_rows(results, table)
    return to_markdown(header, rows, marks, right_from=len(header) - len(marks[0]) if marks else 0)


def summary_latex(results: Results, table: pd.DataFrame) -> str:
    header, rows, marks = table_rows(results, table)
    metric_start = len(header) - len(marks[0]) if marks else len(header)
    caption = (
        f"regbench sweep {results.sweep}: mean ± std over seeds (std with ddof=1), n finished "
        "cells per row;\nbold: best in its scope with mean ± std ranges not overlapping the "
        "runner-up's."
    )
    return to_latex(
        header,
        rows,
        groups=list(table["scope"]),
        caption=caption,
        blank=len(results.scope_columns),
        bold=marks,
        right_from=metric_start,
    )


CLAIM_HEADER = ["claim", "scope", "effect (pp)", "95% CI (pp)", "n", "p", "p (Holm)", "verdict"]


def _pp(value: float) -> str:
    return "" if math.isnan(value) else f"{100 * value:+.2f}"


def _p(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.3g}"


def claim_rows(claims: pd.DataFrame) -> list[list[str]]:
    """Plain-text cells of the claims table (effects in percentage points)."""
    rows = []
    for _, c in claims.iterrows():
        interval = f"[{_pp(c['ci_low'])}, {_pp(c['ci_high'])}]" if _pp(c["ci_low"]) else ""
        verdict = c["verdict"]
        if c["note"] and verdict in ("not measured", "inconclusive") and not _pp(c["ci_low"]):
            verdict = f"{verdict} ({c['note']})"
        rows.append(
            [
                c["claim_id"],
                c["scope"],
                _pp(c["effect"]),
                interval,
                str(c["n"]),
                _p(c["p_value"]),
                _p(c["p_holm"]),
                verdict,
            ]
        )
    return rows


def claims_markdown(claims: pd.DataFrame) -> str:
    return to_markdown(CLAIM_HEADER, claim_rows(claims), right_from=2)


def claims_latex(claims: pd.DataFrame, sweep: str) -> str:
    caption = (
        f"regbench sweep {sweep}: claim verdicts; effect in percentage points, positive = the "
        "claimed direction,\n95% percentile bootstrap interval over seeds; two-sided paired "
        "permutation p, Holm-adjusted across the table."
    )
    return to_latex(
        CLAIM_HEADER,
        claim_rows(claims),
        groups=list(claims["claim_id"]),
        caption=caption,
        blank=1,
        right_from=2,
    )
