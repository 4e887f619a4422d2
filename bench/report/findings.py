"""Findings, not rows: the claim rows of one mechanism in one scope are one finding.

Claims declare their dependence (`Claim.finding_of`, `Claim.dependence`): gap = train_acc -
test_acc per cell, so `cutmix_reduces_gap`, `cutmix_lowers_train_acc` and
`cutmix_improves_test_acc` in one scope are one finding; ECE after temperature scaling sits
beside the raw ECE; retained accuracy is the perturbed accuracy over the clean one. claims.csv's
`finding` column names each row's finding (the id of the claim it belongs to); a finding is the
rows that share `finding` and `scope`.

- `group(claims)`: the findings, in claims order.
- `counts(claims)`: decided / undecided / not measured findings, each counted once: the
  headline counts of the page.
- `key_findings(claims)`: one sentence per decided finding (a finding with a supported,
  contradicted or equivalent row), written from its rows: the rows' verdicts, effects and
  intervals, the dependence, the regime (backbone, resolution, clean accuracy of `none`), each
  arm's selected hyperparameters, and its caveats (unconverged cells, an interval that does not
  clear the margin, rows of the finding that disagree, test images the intervals leave out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.report import style
from bench.report.claims import CLAIMS

DECIDED = ("supported", "contradicted", "equivalent")
DEPENDENCE = {c.claim_id: c.dependence for c in CLAIMS}
ARMS = {c.claim_id: (style.arm_label(c.arm_a), style.arm_label(c.arm_b)) for c in CLAIMS}


@dataclass
class Finding:
    finding: str  # the id of the claim the rows belong to
    scope: str
    rows: pd.DataFrame  # its claims.csv rows, in claims order

    @property
    def decided(self) -> bool:
        return bool(self.rows["verdict"].isin(DECIDED).any())

    @property
    def measured(self) -> bool:
        return bool((self.rows["verdict"] != "not measured").any())

    @property
    def state(self) -> str:
        """'decided', 'undecided' or 'not measured': how the finding counts in the headline."""
        return "decided" if self.decided else "undecided" if self.measured else "not measured"


def group(claims: pd.DataFrame) -> list[Finding]:
    """The findings of a claims table (rows sharing `finding` and `scope`), in row order."""
    keys = list(dict.fromkeys(zip(claims["finding"], claims["scope"], strict=True)))
    found = []
    for finding, scope in keys:
        rows = claims[(claims["finding"] == finding) & (claims["scope"] == scope)]
        found.append(Finding(finding, scope, rows))
    return found


STATES = ("decided", "undecided", "not measured")


def counts(claims: pd.DataFrame) -> dict[str, int]:
    """Findings per state, each counted once (states without findings left out)."""
    states = [f.state for f in group(claims)]
    return {s: states.count(s) for s in STATES if states.count(s)}


def headline(claims: pd.DataFrame) -> str:
    """'findings: 9 decided, 17 undecided (claim rows: 14 supported, 6 contradicted, ...)'."""
    found = ", ".join(f"{n} {s}" for s, n in counts(claims).items()) or "none"
    rows = claims["verdict"].value_counts()
    order = ["supported", "contradicted", "equivalent", "inconclusive", "not measured"]
    shown = ", ".join(f"{int(rows[v])} {v}" for v in order if rows.get(v, 0))
    return f"findings: {found} (claim rows: {shown})"


def _pp(value: float) -> str:
    return f"{100 * value:+.2f}"


def _row_text(row: pd.Series) -> str:
    """'gap(cutmix) < gap(none): supported, +3.62 pp [+1.95, +5.29]'."""
    text = f"{row['claim']}: {row['verdict']}"
    if not math.isnan(row["effect"]):
        text += f", {_pp(row['effect'])} pp"
        if not math.isnan(row["ci_low"]):
            text += f" [{_pp(row['ci_low'])}, {_pp(row['ci_high'])}]"
    return text


def _arm_names(row: pd.Series) -> tuple[str, str]:
    """The two arms' labels: from the scope where it names the variants compared, else the
    claim's arms."""
    scope = str(row["scope"])
    if "; " in scope and " vs " in scope.rsplit("; ", 1)[1]:
        first, second = scope.rsplit("; ", 1)[1].split(" vs ", 1)
        return first, second
    return ARMS.get(row["claim_id"], ("first arm", "second arm"))


def _caveats(finding: Finding) -> list[str]:
    rows = finding.rows[finding.rows["verdict"] != "not measured"]
    first = rows.iloc[0]
    caveats = []
    decided = rows[rows["verdict"].isin(DECIDED)]
    if len(decided) < len(rows):
        caveats.append(f"{len(decided)} of its {len(rows)} rows decided")
    loose = decided[decided["clears_margin"] == 0]
    if len(loose):
        caveats.append(
            f"{len(loose)} decided row(s) have an interval that reaches inside the margin"
        )
    for arm, side in zip(_arm_names(first), ("converged_a", "converged_b"), strict=True):
        text = str(first.get(side, ""))
        if text and not _all_converged(text):
            caveats.append(f"{arm}: {text}")
    if (rows["test_images"] == "fixed").any() and rows["ci_images_low"].isna().all():
        caveats.append(
            "the test images are fixed across seeds and not resampled (no outcome files)"
        )
    return caveats


def _all_converged(text: str) -> bool:
    """'10 of 10 converged' (or 'a vs b' of them): every cell converged."""
    for part in text.split(" vs "):
        words = part.split()
        if len(words) >= 3 and words[0] != words[2]:
            return False
    return True


def sentence(finding: Finding) -> str:
    """One sentence on a decided finding, from its rows (module doc)."""
    rows = finding.rows[finding.rows["verdict"] != "not measured"]
    first = rows.iloc[0]
    where = f"{finding.scope}" + (f"; {first['regime']}" if first.get("regime") else "")
    settings = ""
    if first.get("hparams_a") or first.get("hparams_b"):
        arms = _arm_names(first)
        shown = [f"{arm} {first[side] or '-'}"
                 for arm, side in zip(arms, ("hparams_a", "hparams_b"), strict=True)]  # fmt: skip
        settings = f" Settings: {'; '.join(shown)}."
    body = "; ".join(_row_text(row) for _, row in rows.iterrows())
    dependence = sorted({DEPENDENCE.get(c, "") for c in rows["claim_id"]} - {""})
    one = (
        f" One mechanism, counted once ({'; '.join(dependence)})." if len(rows) > 1 and dependence
        else ""
    )  # fmt: skip
    caveats = _caveats(finding)
    caveat = f" Caveats: {'; '.join(caveats)}." if caveats else ""
    return (
        f"{finding.finding} ({where}): {body} (pp, positive = as claimed).{one}{settings}{caveat}"
    )


def key_findings(claims: pd.DataFrame) -> list[str]:
    """One sentence per decided finding, in claims order."""
    return [sentence(f) for f in group(claims) if f.decided]
