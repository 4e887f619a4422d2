"""Every fact about a metric lives in its one `Column` of bench/schema.py (issue 25): its margin,
image-level support, display rank, summary-table place, source file, formula and companion.
A metric declared in a test-local catalogue reaches every report place that uses those facts
with no other module edited, and no report module keeps a second table of them."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from bench import schema
from bench.report import build, claims, stats, style, verdicts

REPORT = Path(__file__).resolve().parents[2] / "bench" / "report"

SHARP_MARGIN = schema.Margin(0.02, "sharpness")
SHARP = schema.Column("sharpness", schema.RUNS_FILE, "metric", "float", label="sharpness",
                      unit="%", scale=100, decimals=1, better=-1, rank=0, table=True,
                      margin=SHARP_MARGIN, image_metric="ece")  # fmt: skip
SHARP_OVER = schema.Column("sharp_over", schema.RUNS_FILE, "derived", "float",
                           label="over-sharp", unit="pp", scale=100, decimals=2, better=-1,
                           source=schema.CALIBRATION_FILE, formula="sharpness - 1",
                           companion="sharpness")  # fmt: skip


@pytest.fixture
def catalogue(monkeypatch):
    """SHARP and SHARP_OVER declared as one more line each of bench/schema.py would declare
    them (and SHARP's margin as one more entry of schema.MARGINS); nothing else edited."""
    monkeypatch.setitem(schema.METRICS, SHARP.name, SHARP)
    monkeypatch.setitem(schema.METRICS, SHARP_OVER.name, SHARP_OVER)
    monkeypatch.setattr(schema, "MARGINS", [*schema.MARGINS, SHARP_MARGIN])


def test_a_declared_metric_takes_its_rank_table_place_margin_and_image_support(catalogue):
    shown = list(style.metrics())
    assert shown[0] == "sharpness"  # rank 0: before test_acc (rank 1)
    assert shown[-1] == "sharp_over"  # no rank: after the ranked ones, in declaration order
    assert style.table_metrics()[0] == "sharpness" and "sharp_over" not in style.table_metrics()
    assert schema.margins()["sharpness"] == 0.02 and "sharp_over" not in schema.margins()
    assert verdicts.image_metrics()["sharpness"] == "ece"
    assert "sharp_over" not in verdicts.image_metrics()
    claim = claims.Claim("c", "cutmix is sharper", "sharpness", claims.CUTMIX, claims.NONE, +1)
    assert claim.smallest_effect == 0.02  # the claim carries no margin: the metric's
    assert claims.Claim(**{**claim.__dict__, "margin": 0.1}).smallest_effect == 0.1
    assert build.margins_text().endswith(", 2 pp for sharpness")
    over = claims.Claim("o", "cutmix is over-sharp", "sharp_over", claims.CUTMIX, claims.NONE, 1)
    assert over.metric_label == "sharpness - 1"  # claims.csv names a derived metric's formula


def test_without_the_declaration_none_of_it_appears():
    assert "sharpness" not in style.metrics() and "sharpness" not in schema.margins()
    assert "sharpness" not in verdicts.image_metrics()
    assert "sharpness" not in build.margins_text()
    with pytest.raises(KeyError):  # a claim on a metric without a margin must declare one
        _ = claims.Claim("c", "x", "test_loss", claims.CUTMIX, claims.NONE, +1).smallest_effect


def test_todays_declarations_give_todays_report_facts():
    """The values the committed reports were built from (they regenerate byte-identical)."""
    assert style.table_metrics() == ["test_acc", "train_acc", "gap", "test_ece", "test_loss",
                                     "test_brier", "flip_rate", "train_images_per_s"]  # fmt: skip
    assert verdicts.image_metrics() == {"test_acc": "accuracy", "test_ece": "ece",
                                        "ece_over": "ece_over"}  # fmt: skip
    assert build.margins_text() == ("0.5 pp for accuracies, 1 pp for calibration errors and "
                                     "retained accuracy, 0.5 pp for flip rates")  # fmt: skip
    for claim in claims.CLAIMS:
        assert claim.smallest_effect > 0, claim.claim_id
    ranks = [c.rank for c in schema.METRICS.values() if c.rank is not None]
    assert len(ranks) == len(set(ranks))  # one place per ranked metric


def test_every_declared_image_metric_has_a_computation():
    rng = np.random.default_rng(0)
    cell = {"label": rng.integers(0, 10, 50), "pred": rng.integers(0, 10, 50),
            "conf": rng.uniform(0.1, 1.0, 50)}  # fmt: skip
    other = {**cell, "pred": rng.integers(0, 10, 50)}
    for name, image_metric in verdicts.image_metrics().items():
        assert math.isfinite(stats.image_sd(cell, other, image_metric)), name
    with pytest.raises(ValueError, match="no per-image computation"):
        stats.image_sd(cell, other, "sharpness")


def _report_modules():
    for path in sorted(REPORT.glob("*.py")):
        yield path.name, ast.parse(path.read_text(encoding="utf-8"))


def _strings(node) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {s for e in node.elts for s in _strings(e)}
    if isinstance(node, ast.Dict):
        return {s for k in node.keys if k is not None for s in _strings(k)}
    return set()


# Module-level collections of metric names that are choices of one figure, table or of the page,
# not facts of a metric: the who-wins figure's panels, the robustness table's columns, the
# metrics never marked (costs).
PRESENTATION = {("figures.py", "WHO_WINS_METRICS"), ("tables.py", "ROBUSTNESS_METRICS"),
                ("marks.py", "NEVER_MARKED")}  # fmt: skip


def test_no_report_module_keeps_a_second_table_of_metric_facts():
    """A module-level dict, list, tuple or set naming several catalogue metrics would be a second
    declaration (MARGINS, IMAGE_METRICS, METRIC_ORDER, TABLE_METRICS were); the only ones left
    are PRESENTATION's."""
    metrics = set(schema.METRICS)
    found = set()
    for name, tree in _report_modules():
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if len(_strings(node.value) & metrics) >= 2:
                    found |= {(name, getattr(t, "id", "?")) for t in targets}
    assert found <= PRESENTATION, found - PRESENTATION


def test_no_report_module_special_cases_a_metric_by_name():
    """`metric == "ece_over"` or `metric in ("ece_over", ...)` would be a fact outside the
    declaration; a computation may still name its inputs (`"test_mean_conf" in runs`)."""
    metrics = set(schema.METRICS)
    found = []
    for name, tree in _report_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                named = {s for c in node.comparators for s in _strings(c)} & metrics
                if named:
                    found.append((name, node.lineno, sorted(named)))
    assert not found
