"""One standard on the page (`bench.report.marks`): the who-wins figure's filled markers, the
summary's bold and the claims' verdicts agree on every difference they share."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pytest
from report_fixtures import make_results

from bench.report import figures, marks, tables
from bench.report.load import load_results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("standard")
    make_results(folder, protocols=("frozen", "unfrozen"))
    return load_results(folder)


def test_a_claim_quantity_takes_the_claim_verdict(results):
    table = marks.page_marks(results)
    claims = marks.claims_of(results)
    shared = table[table["family"] != marks.VS_NONE]
    assert len(shared) > 0
    for _, row in shared.iterrows():
        claim = claims[(claims["claim_id"] == row["family"].split(" ", 1)[1])
                       & (claims["scope"] == row["scope"])].iloc[0]  # fmt: skip
        assert row["decided"] == (claim["verdict"] in ("supported", "contradicted"))
        assert row["p_holm"] == claim["p_holm"]


def test_the_other_differences_form_one_holm_family_with_the_margin(results):
    table = marks.page_marks(results)
    own = table[table["family"] == marks.VS_NONE]
    assert marks.family_size(results) == own["p_holm"].notna().sum() > 10
    assert (own["p_holm"] >= own["p_value"]).all()
    # decided needs both: Holm p < 0.05 and |effect| >= margin, never one alone
    assert (own.loc[own["decided"], "p_holm"] < 0.05).all()
    assert (own.loc[own["decided"], "effect"].abs() >= own.loc[own["decided"], "margin"]).all()
    significant_small = own[(own["p_holm"] < 0.05) & (own["effect"].abs() < own["margin"])]
    assert not significant_small["decided"].any()


def test_summary_bold_is_the_decided_better_differences(results):
    summary = tables.summary_table(results)
    table = marks.page_marks(results)
    for _, row in table.iterrows():
        column = f"{row['metric']}_beats_none"
        if column not in summary:
            continue
        line = summary[(summary["scope"] == row["scope"]) & (summary["arm"] == row["arm"])]
        assert bool(line[column].iloc[0]) == bool(row["decided"] and row["effect"] > 0)
    assert summary.filter(like="_beats_none").to_numpy().any()


def test_who_wins_fills_exactly_the_decided_markers(results, tmp_path, monkeypatch):
    drawn = {}

    def keep(fig, folder, name):
        drawn[name] = fig
        return []

    monkeypatch.setattr(figures.draw, "save", keep)
    figures.who_wins_figure(results, tmp_path)
    fig = drawn["who_wins"]
    metrics = figures.who_wins_metrics(results)
    arms = [a for a in results.styles if results.arms[a].regularizer != figures.BASELINE]
    scopes = results.scopes
    filled, hollow = 0, 0
    axes = [ax for ax in fig.axes if ax.collections]
    assert len(axes) == len(scopes) * len(metrics)
    for k, ax in enumerate(axes):
        scope, metric = scopes[k // len(metrics)], metrics[k % len(metrics)]
        for points in ax.collections:
            y = int(round(points.get_offsets()[0][1]))
            face = mcolors.to_hex(points.get_facecolor()[0])
            row = marks.lookup(results, scope, arms[y], metric)
            assert (face != "#ffffff") == bool(row["decided"]), (scope, arms[y], metric)
            filled += face != "#ffffff"
            hollow += face == "#ffffff"
        assert "(%)" not in ax.get_xlabel()
    assert filled and hollow  # both kinds occur: the test can tell them apart


def test_differences_of_percentages_are_in_percentage_points():
    assert figures.difference_unit("%") == "pp"
    assert figures.difference_unit("pp") == "pp"
    assert figures.difference_unit("img/s") == "img/s"


def test_parameter_variants_take_their_own_claim_rows(tmp_path):
    from report_fixtures import add_variant

    runs = make_results(tmp_path, protocols=("frozen",))
    add_variant(tmp_path, runs, "cutmix", {"minmax": [0.2, 0.8]}, {"test_acc": 0.01})
    results = load_results(tmp_path)
    table = marks.page_marks(results)
    gap = table[(table["metric"] == "gap") & table["arm"].str.startswith("cutmix")]
    assert len(gap) >= 2  # both variants (and the staged arm)
    variants = gap[~gap["arm"].str.contains("staged")]
    assert len(variants) == 2 and (variants["family"] == "claim cutmix_reduces_gap").all()
    claims = marks.claims_of(results)
    for _, row in variants.iterrows():
        text = f"{row['scope']}; {row['arm']} vs none"
        claim = claims[(claims["claim_id"] == "cutmix_reduces_gap") & (claims["scope"] == text)]
        assert row["decided"] == (claim["verdict"].iloc[0] in ("supported", "contradicted"))
