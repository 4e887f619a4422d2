"""One standard for every significance mark on the page: the who-wins figure's filled markers,
the summary's bold and the claims' verdicts all come from the rule of `verdicts.verdict_of`.

A difference of an arm from `none` in one scope on one metric (seeds paired, `stats.compare`)
is **decided** when its Holm-adjusted p is below 0.05 and |effect| >= the metric's margin
(its `Column.margin` in `bench.schema`; 0 for a metric without one), like a claim row. Which Holm family:

- a difference that is a claim row (same arms, scope and metric: e.g. cutmix vs none on `gap`
  is `cutmix_reduces_gap`) takes that row's verdict: decided when it is supported or
  contradicted, so a filled marker or a bold value never contradicts the claims table;
- every other difference from `none` (every arm x scope x metric with a better direction that
  is not a cost and not a claim row) is one family of its own, Holm-adjusted together; the
  figure and the summary table read the same table, so they agree with each other.

`page_marks(results)` is that table (one row per scope x arm x metric); `claims_of(results)` the
claims table it used. Both are computed once per loaded results (the claims' bootstrap is the
slow part of a report), so `build`, `tables` and `figures` share them.

Columns of `page_marks`: scope, arm, metric, effect and ci_low/ci_high (signed so that positive
is better, metric units), n, p_value, p_holm (in its family), margin, decided (bool), family
(`claim <claim_id>` or `vs none`).
"""

from __future__ import annotations

import math

import pandas as pd

from bench import schema  # column declarations only: no torch behind it
from bench.report import stats, style, verdicts
from bench.report.claims import CLAIMS, NONE
from bench.report.load import Results

BASELINE = "none"
# Never marked: they measure the machine, not the method (as before this module).
NEVER_MARKED = {"train_images_per_s", "eval_images_per_s", "regularizer_ms_per_batch",
                "regularizer_share", "peak_mem_mb", "wall_s", "robustness_s", "train_s", "eval_s"}  # fmt: skip
VS_NONE = "vs none"
COLUMNS = ["scope", "arm", "metric", "effect", "ci_low", "ci_high", "n", "p_value", "p_holm",
           "margin", "decided", "family"]  # fmt: skip

_memo: dict[str, tuple[Results, pd.DataFrame]] = {}


def _remembered(name: str, results: Results, compute) -> pd.DataFrame:
    held = _memo.get(name)
    if held is not None and held[0] is results:
        return held[1]
    found = compute(results)
    _memo[name] = (results, found)
    return found


def claims_of(results: Results) -> pd.DataFrame:
    """`verdicts.evaluate_claims(results)`, computed once per loaded results."""
    return _remembered("claims", results, verdicts.evaluate_claims)


def page_marks(results: Results) -> pd.DataFrame:
    """Every difference from none the page may mark, with whether it is decided (module doc)."""
    return _remembered("marks", results, _page_marks)


def marked_metrics(results: Results) -> list[str]:
    """The metrics a mark may be put on: a better direction, not a cost, with values."""
    catalogue = style.metrics()
    return [m for m, spec in catalogue.items()
            if spec.better != 0 and m not in NEVER_MARKED and m in results.measured]  # fmt: skip


def _claim_rows(results: Results, claims: pd.DataFrame) -> dict[tuple[str, str, str], pd.Series]:
    """(scope, arm, metric) -> the claim row that tests the same difference from none (a claim
    whose arms have several variants names the pair in its row's scope: 'scope; a vs none')."""
    found = {}
    for claim in CLAIMS:
        if claim.arm_b != NONE or claim.across or claim.statistic != "mean":
            continue
        pairs = verdicts.variant_pairs(results, claim)
        rows = claims[claims["claim_id"] == claim.claim_id].set_index("scope")
        for scope in results.scopes:
            for arm, base in pairs:
                text = f"{scope}; {arm} vs {base}" if len(pairs) > 1 else scope
                if text in rows.index:
                    found[(scope, arm, claim.metric)] = rows.loc[text]
    return found


def _page_marks(results: Results) -> pd.DataFrame:
    claims = claims_of(results)
    catalogue = style.metrics()
    by_claim = _claim_rows(results, claims)
    rows = []
    ok = results.ok
    for metric in marked_metrics(results):
        better = catalogue[metric].better
        margin = schema.margins().get(metric, 0.0)
        for scope, cells in ok.groupby("scope", sort=False):
            base = cells[cells["regularizer"] == BASELINE]
            if base.empty or base["arm"].nunique() != 1:
                continue
            reference = base.groupby("seed")[metric].mean()
            for arm, mine in cells[cells["regularizer"] != BASELINE].groupby("arm"):
                found = stats.compare(mine.groupby("seed")[metric].mean(), reference,
                                      margin=margin if margin > 0 else math.nan)  # fmt: skip
                if math.isnan(found.effect):
                    continue
                low, high = sorted((better * found.ci_low, better * found.ci_high))
                row = {"scope": scope, "arm": arm, "metric": metric,
                       "effect": better * found.effect, "ci_low": low, "ci_high": high,
                       "n": found.n, "p_value": found.p_value, "margin": margin}  # fmt: skip
                claim = by_claim.get((scope, arm, metric))
                if claim is not None:
                    row.update(p_holm=claim["p_holm"], family=f"claim {claim['claim_id']}",
                               decided=claim["verdict"] in ("supported", "contradicted"))  # fmt: skip
                else:
                    row.update(family=VS_NONE)
                rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["decided"] = table["decided"].astype(object)
    own = (table["family"] == VS_NONE) & table["p_value"].notna() & (table["n"] >= 2)
    adjusted = stats.holm(table.loc[own, "p_value"].to_numpy(float))
    table.loc[own, "p_holm"] = adjusted
    table["p_holm"] = table["p_holm"].astype(float)
    in_family = table["family"] == VS_NONE
    decided = (table["p_holm"] < stats.ALPHA) & (table["effect"].abs() >= table["margin"])
    table.loc[in_family, "decided"] = decided[in_family]
    table["decided"] = [value is True or value == 1 for value in table["decided"]]
    return table


def family_size(results: Results) -> int:
    """How many differences from none form the page's own Holm family."""
    table = page_marks(results)
    return int(((table["family"] == VS_NONE) & table["p_holm"].notna()).sum())


def lookup(results: Results, scope: str, arm: str, metric: str) -> pd.Series | None:
    """The mark row of one difference, or None when the page has none for it."""
    table = page_marks(results)
    hit = table[(table["scope"] == scope) & (table["arm"] == arm) & (table["metric"] == metric)]
    return None if hit.empty else hit.iloc[0]


def standard_text(results: Results) -> str:
    """One sentence the figure, the summary and the method share."""
    table = page_marks(results)
    claims = int((table["family"] != VS_NONE).sum())
    return (
        "filled / bold = decided by the claims' rule (Holm-adjusted p < 0.05 and |difference| "
        "≥ the metric's margin): where the difference is a claim row (same arms, scope and "
        f"metric; {claims} here) its verdict decides, every other difference from none is "
        f"Holm-adjusted in one family of {family_size(results)}"
    )
