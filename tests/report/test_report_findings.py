"""Findings, not rows (`bench.report.findings`): dependent claim rows are one finding, counted
once, and the page opens with one sentence per decided finding."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from report_fixtures import make_results

from bench.report import build_report, findings, verdicts
from bench.report.claims import CLAIMS
from bench.report.load import load_results


def test_dependences_are_declared_on_claims_that_exist_and_share_arms():
    by_id = {c.claim_id: c for c in CLAIMS}
    dependent = [c for c in CLAIMS if c.finding_of]
    assert {c.claim_id for c in dependent} >= {
        "cutmix_lowers_train_acc",
        "cutmix_improves_test_acc",
        "mixup_better_calibrated_than_cutmix_after_ts",
    }
    for claim in dependent:
        lead = by_id[claim.finding_of]
        assert lead.finding_of is None  # one level: the lead is a finding of its own
        assert {claim.arm_a, claim.arm_b} == {lead.arm_a, lead.arm_b}  # same cells
        assert claim.dependence and claim.across == lead.across


def _row(claim_id, scope, verdict, effect=0.03, **extra):
    claim = next(c for c in CLAIMS if c.claim_id == claim_id)
    row = {"claim_id": claim_id, "claim": claim.claim, "scope": scope, "verdict": verdict,
           "effect": effect, "ci_low": effect - 0.01, "ci_high": effect + 0.01,
           "finding": claim.finding, "clears_margin": 1.0 if verdict != "inconclusive" else math.nan,
           "regime": "lite0, 32 px, none test acc 30.0%", "hparams_a": "lr=0.3",
           "hparams_b": "lr=0.1", "converged_a": "6 of 10 converged",
           "converged_b": "10 of 10 converged", "test_images": "per seed",
           "ci_images_low": math.nan}  # fmt: skip
    return {**row, **extra}


@pytest.fixture
def claims():
    return pd.DataFrame(
        [
            _row("cutmix_reduces_gap", "protocol=frozen", "supported"),
            _row("cutmix_lowers_train_acc", "protocol=frozen", "supported"),
            _row("cutmix_improves_test_acc", "protocol=frozen", "contradicted", -0.02),
            _row("cutmix_reduces_gap", "protocol=unfrozen", "inconclusive"),
            _row("cutmix_lowers_train_acc", "protocol=unfrozen", "supported"),
            _row("cutmix_beats_random_erasing", "protocol=frozen", "inconclusive"),
            _row("cutmix_stabler_predictions", "protocol=frozen", "not measured", math.nan),
        ]
    )


def test_dependent_rows_are_one_finding_counted_once(claims):
    groups = findings.group(claims)
    assert [(f.finding, f.scope, len(f.rows)) for f in groups] == [
        ("cutmix_reduces_gap", "protocol=frozen", 3),
        ("cutmix_reduces_gap", "protocol=unfrozen", 2),
        ("cutmix_beats_random_erasing", "protocol=frozen", 1),
        ("cutmix_stabler_predictions", "protocol=frozen", 1),
    ]
    # 4 decided rows, but 2 decided findings; never one per row
    assert findings.counts(claims) == {"decided": 2, "undecided": 1, "not measured": 1}
    assert findings.headline(claims).startswith("findings: 2 decided, 1 undecided, 1 not measured")
    assert "claim rows: 3 supported, 1 contradicted, 2 inconclusive, 1 not measured" in (
        findings.headline(claims)
    )


def test_key_findings_are_one_sentence_per_decided_finding_with_caveats(claims):
    sentences = findings.key_findings(claims)
    assert len(sentences) == 2
    first, second = sentences
    assert first.startswith("cutmix_reduces_gap (protocol=frozen; lite0, 32 px")
    assert "gap = train_acc - test_acc per cell" in first and "counted once" in first
    assert "test acc(cutmix) > test acc(none): contradicted, -2.00 pp" in first
    assert "cutmix lr=0.3; none lr=0.1" in first
    assert "cutmix: 6 of 10 converged" in first and "none: 10 of 10" not in first
    assert "1 of its 2 rows decided" in second
    assert not any("cutmix_beats_random_erasing" in s for s in sentences)  # undecided: no line


def test_a_report_opens_with_key_findings_and_counts_findings(tmp_path):
    make_results(tmp_path / "results", protocols=("frozen",))
    index = build_report(tmp_path / "results", tmp_path / "report")
    page = (tmp_path / "report" / "report.md").read_text()
    assert page.index("## Key findings") < page.index("## Setup")
    first_heading = [line for line in page.splitlines() if line.startswith("## ")][0]
    assert first_heading == "## Key findings"
    claims = verdicts.evaluate_claims(load_results(tmp_path / "results"))
    assert set(claims["finding"]) <= {c.claim_id for c in CLAIMS}
    decided = findings.counts(claims)["decided"]
    assert page.count("\n- ") >= decided > 0
    assert findings.headline(claims) in index.read_text().replace("&lt;", "<")
    # every row carries its regime and both arms' settings where measured
    measured = claims[claims["verdict"] != "not measured"]
    assert (measured["regime"].str.contains("px")).all()


def test_only_a_report_without_a_decided_finding_calls_itself_a_pipeline_check(claims):
    """Issue 23: a report in which nothing is decided (cpu-quick at 3 seeds) says it is a check
    that the pipeline runs, not evidence; one with decided findings never says so."""
    from bench.report import build

    def opening(table) -> str:
        return " ".join(block.text for block in build._key_findings_blocks(table)
                        if hasattr(block, "text"))  # fmt: skip

    undecided = claims.assign(verdict="inconclusive")
    assert "not as evidence for or against any claim" in opening(undecided)
    assert "pipeline" not in opening(claims)
