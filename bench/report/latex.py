"""Paper-ready LaTeX tables: display names, a caption (with the rows' provenance) and a label,
booktabs rules, and a layout that fits a portrait text block of TEXT_WIDTH_CM at \\footnotesize.

Every table is a `longtable` (package longtable, with booktabs): it breaks across pages where it
is long (the claims table has dozens of rows) and carries its own caption and label, so
`\\input{tables/summary.tex}` is all a paper needs (one-column documents; longtable does not
work inside two-column mode). Wide tables are split into panels of metrics stacked in the same
longtable (a new header row per panel) rather than scaled down. Every string from the CSVs is
escaped (`tables.latex_escape`); display names replace code names (`random_erasing` ->
Random Erasing, `train_per_class=10` -> 10/class).
"""

from __future__ import annotations

import re

import pandas as pd

from bench.report import style, tables
from bench.report.load import Results
from bench.report.provenance import provenance

TEXT_WIDTH_CM = 16.0  # a 21 cm A4 page with 2.5 cm margins
CHAR_CM = 0.17  # an average character of \footnotesize Computer Modern, measured with margin
COLUMN_PAD_CM = 2 * 3 / 72 * 2.54  # \tabcolsep = 3pt on each side of a column
PREAMBLE = (
    r"\footnotesize",
    r"\setlength{\tabcolsep}{3pt}",
    r"\setlength{\LTcapwidth}{\linewidth}",
)
PACKAGES = r"\usepackage{booktabs,longtable}"

REGULARIZER_NAMES = {"none": "None", "random_erasing": "Random Erasing", "mixup": "MixUp",
                     "cutmix": "CutMix", "mixup_cutmix": "MixUp/CutMix"}  # fmt: skip
PROTOCOL_NAMES = {"head_first": "head-first"}
# scope column -> how one value reads ({} is the value)
SCOPE_FORMATS = {
    "train_size": "{} images", "train_per_class": "{}/class", "batch_size": "batch {}",
    "image_size": "{} px", "epochs": "{} epochs", "train_steps": "{} steps", "lr": "lr {}",
    "bn": "BN {}", "backbone": "{}", "pretrained": "weights {}", "seed": "seed {}",
}  # fmt: skip
_REGULARIZER = re.compile(r"\b(" + "|".join(sorted(REGULARIZER_NAMES, key=len)[::-1]) + r")\b")


def display_arm(label: str) -> str:
    """`random_erasing` -> `Random Erasing`, `cutmix (staged)` -> `CutMix (staged)`; the
    parenthesised parameters stay as they are."""
    name, sep, rest = label.partition(" ")
    return REGULARIZER_NAMES.get(name, name) + sep + rest


def display_text(text: str) -> str:
    """Regularizer names in running text (a claim) by their display names."""
    return _REGULARIZER.sub(lambda m: REGULARIZER_NAMES[m.group(1)], text)


def display_scope_part(column: str, value: str) -> str:
    if column == "protocol":
        return PROTOCOL_NAMES.get(value, value)
    if column == "trainable_stages":
        return "all stages" if value in ("0", "") else f"last {value} stages"
    return SCOPE_FORMATS.get(column, column.replace("_", " ") + " {}").format(value)


def display_scope(scope: str) -> str:
    """`protocol=frozen, train_size=100, train_per_class=10` -> `frozen, 100 images, 10/class`
    (a part without `=` is kept as it is)."""
    parts = []
    for part in str(scope).split(", "):
        column, sep, value = part.partition("=")
        parts.append(display_scope_part(column, value) if sep else part)
    return ", ".join(p for p in parts if p)


def label_name(sweep: str, what: str) -> str:
    """`tab:regbench-<sweep>-<what>`, with only letters, digits and - in it."""
    return "tab:regbench-" + re.sub(r"[^A-Za-z0-9]+", "-", f"{sweep}-{what}").strip("-")


def _width_cm(texts: list[str]) -> float:
    return max((len(t) for t in texts), default=0) * CHAR_CM + COLUMN_PAD_CM


def _header_cell(label: str, unit: str = "") -> str:
    """A header of one or two stacked lines (the unit under the label), escaped."""
    top = tables.latex_escape(label)
    if not unit:
        return top
    return rf"\shortstack[r]{{{top}\\({tables.latex_escape(unit)})}}"


def _longtable(
    spec: str, columns: int, caption: str, label: str, panels: list[tuple[str, list[str]]]
) -> str:
    """A longtable whose body is `panels`: (header line, body lines), each panel opened by its
    header between rules. The first panel's header repeats on continuation pages."""
    first_header = panels[0][0]
    lines = [r"\begingroup", *PREAMBLE, rf"\begin{{longtable}}{{{spec}}}"]
    lines += [rf"\caption{{{caption}}}\label{{{label}}}\\", r"\toprule", first_header, r"\midrule"]
    lines += [r"\endfirsthead"]
    more = rf"\multicolumn{{{columns}}}{{l}}{{\emph{{(continued)}}}}\\"
    lines += [more, r"\toprule", first_header, r"\midrule", r"\endhead"]
    lines += [r"\bottomrule", r"\endlastfoot"]
    for index, (header, body) in enumerate(panels):
        if index:
            lines += [r"\midrule[\heavyrulewidth]", header, r"\midrule"]
        lines += body
    lines += [r"\end{longtable}", r"\endgroup"]  # the font size and spacing stay inside
    return "\n".join(lines) + "\n"


def _caption_text(text: str) -> str:
    """Caption text escaped, with true minus signs and $\\pm$ (tables.latex_number_text)."""
    return tables.latex_number_text(text)


def _comment(text: str) -> list[str]:
    return [f"% {' '.join(line.split())}" for line in text.splitlines()]


def summary_latex(
    results: Results, table: pd.DataFrame, metrics: list[str] | None = None, what: str = ""
) -> str:
    """The summary (or robustness) table: scope, regularizer, n, then the metrics, in panels of
    as many metrics as fit TEXT_WIDTH_CM."""
    header, rows, marks = tables.table_rows(results, table, metrics)
    n_scope = len(results.scope_columns)
    first_metric = len(header) - len(marks[0]) if marks else len(header)
    catalogue = style.metrics()
    shown = [m for m in (metrics or style.table_metrics()) if f"{m}_mean" in table]
    shown = [m for m in shown if m in catalogue]
    scopes = [display_scope(s) for s in table["scope"]]
    arms = [display_arm(a) for a in table["arm"]]
    counts = [row[first_metric - 1] for row in rows]
    # the scope is a row of its own above its arms (full width, no wrapping column)
    fixed = _width_cm(arms + ["regularizer"]) + _width_cm(counts + ["n"])
    # metrics per panel: as many as fit beside the fixed columns, the same number in every panel
    widths = [
        max(_width_cm([r[first_metric + j] for r in rows]),
            _width_cm([catalogue[m].label, f"({catalogue[m].unit})"]))
        for j, m in enumerate(shown)
    ]  # fmt: skip
    per_panel = max(1, len(shown))
    while per_panel > 1 and any(
        fixed + sum(widths[i : i + per_panel]) > TEXT_WIDTH_CM
        for i in range(0, len(shown), per_panel)
    ):
        per_panel -= 1
    spec = "lr" + "r" * per_panel
    columns = 2 + per_panel
    panels = []
    for start in range(0, max(len(shown), 1), per_panel):
        chunk = list(range(start, min(start + per_panel, len(shown))))
        head_cells = [tables.latex_escape("regularizer"), "n"]
        head_cells += [_header_cell(catalogue[shown[j]].label, catalogue[shown[j]].unit)
                       for j in chunk]  # fmt: skip
        head_cells += [""] * (columns - len(head_cells))
        body, previous = [], None
        for i, row in enumerate(rows):
            if n_scope and scopes[i] != previous:
                if previous is not None:
                    body.append(r"\addlinespace")
                scope = tables.latex_escape(scopes[i])
                body.append(rf"\multicolumn{{{columns}}}{{@{{}}l}}{{\emph{{{scope}}}}} \\")
            cells = [tables.latex_escape(arms[i]), tables.latex_number_text(counts[i])]
            for j in chunk:
                text = tables.latex_number_text(row[first_metric + j])
                cells.append(rf"\textbf{{{text}}}" if marks[i][j] else text)
            cells += [""] * (columns - len(cells))
            body.append(" & ".join(cells) + r" \\")
            previous = scopes[i]
        panels.append((" & ".join(head_cells) + r" \\", body))
    title = "robustness" if what else "summary"
    caption = (
        _caption_text(f"regbench sweep {results.sweep}{what}.")
        + " "
        + _caption_text(tables.SUMMARY_LEGEND)
        + " "
        + _caption_text(provenance(results.runs).caption())
    )
    lines = _comment(f"regbench sweep {results.sweep}{what} (generated; do not edit)")
    lines += _comment(f"needs {PACKAGES}; fits a {TEXT_WIDTH_CM:g} cm text block")
    text = _longtable(spec, columns, caption, label_name(results.sweep, title), panels)
    return "\n".join(lines) + "\n" + text


CLAIMS_HEADER = ["claim", "scope", "effect", "95% CI", "n", "p (Holm)", "margin", "seeds",
                 "verdict"]  # fmt: skip
CLAIMS_SPEC = r"p{2.8cm}p{2.6cm}rrrrrp{1.4cm}p{1.9cm}"  # seeds wrap: "1,242 (591 to 4,127), TOST"
_BREAK = "\u200b"  # a break point, until the text is escaped


def claims_latex(claims: pd.DataFrame, results: Results) -> str:
    """The claims table: the claim in words, its scope, effect and interval (pp), n, the Holm
    p, the margin, the seeds needed and the verdict; one row per claim x scope."""
    body, previous = [], None
    for (_, claim), row in zip(claims.iterrows(), tables.claim_rows(claims), strict=True):
        row = row[:5] + row[6:]  # the Holm p decides: no unadjusted p
        text = display_text(str(claim["claim"]))
        row[0] = "" if claim["claim_id"] == previous else text
        row[1] = display_scope(row[1])
        if previous is not None and claim["claim_id"] != previous:
            body.append(r"\addlinespace")
        for j in (0, 1, len(row) - 1):
            row[j] = row[j].replace("_", "_" + _BREAK).replace(",", "," + _BREAK)
        cells = [tables.latex_escape(c) if j in (0, 1) else tables.latex_number_text(c)
                 for j, c in enumerate(row)]  # fmt: skip
        body.append(" & ".join(cells).replace(_BREAK, r"\allowbreak{}") + r" \\")
        previous = claim["claim_id"]
    header = " & ".join(tables.latex_escape(h) for h in CLAIMS_HEADER) + r" \\"
    caption = (
        _caption_text(
            f"regbench sweep {results.sweep}: claim verdicts. Effect, 95% CI and margin in "
            "percentage points; seeds: seed pairs needed for 80% power."
        )
        + " "
        + _caption_text(tables.CLAIMS_LEGEND)
        + " "
        + _caption_text(provenance(results.runs).caption())
    )
    lines = _comment(f"regbench sweep {results.sweep}: claims (generated; do not edit)")
    lines += _comment(f"needs {PACKAGES}; fits a {TEXT_WIDTH_CM:g} cm text block")
    text = _longtable(CLAIMS_SPEC, len(CLAIMS_HEADER), caption,
                      label_name(results.sweep, "claims"), [(header, body)])  # fmt: skip
    return "\n".join(lines) + "\n" + text


def standalone(table: str) -> str:
    """A minimal A4 document around one generated table (for checking that it compiles)."""
    return (
        "\\documentclass[10pt]{article}\n\\usepackage[a4paper,margin=2.5cm]{geometry}\n"
        f"{PACKAGES}\n\\usepackage[T1]{{fontenc}}\n\\begin{{document}}\n{table}\\end{{document}}\n"
    )
