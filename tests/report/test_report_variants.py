"""Parameter variants: cells of one regularizer and schedule whose regularizer_params differ."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from report_fixtures import add_variant, make_results

from bench.arms import Arm
from bench.report import build_report, claims, style, tables, verdicts
from bench.report.load import ReportInputError, load_results

NONE_MIXUP_CUTMIX = [("none", "constant"), ("mixup", "constant"), ("cutmix", "constant")]


@pytest.fixture(scope="module")
def alphas(tmp_path_factory):
    """mixup with alpha=1.0 (the fixture's planted values) and alpha=0.2 (+5 points test acc.)."""
    folder = tmp_path_factory.mktemp("alphas")
    runs = make_results(folder, arms=NONE_MIXUP_CUTMIX, protocols=("frozen", "unfrozen"))
    runs = add_variant(
        folder, runs, "mixup", {"alpha": 0.2}, {"test_acc": 0.05, "test_ece": -0.05},
        base={"alpha": 1.0},
    )  # fmt: skip
    return folder, runs, load_results(folder)


def _mean(runs: pd.DataFrame, alpha: float | None, protocol: str, metric: str) -> pd.Series:
    """Per-seed values of the mixup cells with this alpha (None: the cutmix cells)."""
    if alpha is None:
        cells = runs[runs["regularizer"] == "cutmix"]
    else:
        params = runs["regularizer_params"].map(json.loads)
        cells = runs[(runs["regularizer"] == "mixup") & (params.str.get("alpha") == alpha)]
    return cells[cells["protocol"] == protocol].set_index("seed")[metric]


def test_two_alphas_of_mixup_are_two_arms_with_their_own_means(alphas):
    _, runs, results = alphas
    assert list(results.styles) == ["none", "mixup (alpha=0.2)", "mixup (alpha=1.0)", "cutmix"]
    colours = [s.colour for s in results.styles.values()]
    assert len(set(colours)) == len(colours)
    summary = tables.summary_table(results).set_index(["scope", "arm"])
    for alpha in (0.2, 1.0):
        row = summary.loc[("protocol=frozen", f"mixup (alpha={alpha})")]
        want = _mean(runs, alpha, "frozen", "test_acc")
        assert row["n"] == 3  # not the 6 cells of both alphas pooled
        assert row["test_acc_mean"] == pytest.approx(want.mean(), abs=1e-12)
        assert row["test_acc_std"] == pytest.approx(want.std(), abs=1e-12)
    assert not [n for n in results.notes if "cells share" in n]
    assert any("mixup (2 variants, by alpha)" in n for n in results.notes)


def test_claims_are_tested_once_per_variant(alphas):
    _, runs, results = alphas
    table = verdicts.evaluate_claims(results)
    ece = table[table["claim_id"] == "mixup_better_calibrated_than_cutmix"]
    assert list(ece["scope"]) == [
        "protocol=frozen; mixup (alpha=0.2) vs cutmix",
        "protocol=frozen; mixup (alpha=1.0) vs cutmix",
        "protocol=unfrozen; mixup (alpha=0.2) vs cutmix",
        "protocol=unfrozen; mixup (alpha=1.0) vs cutmix",
    ]
    for _, row in ece.iterrows():
        alpha = 0.2 if "alpha=0.2" in row["scope"] else 1.0
        protocol = row["scope"].split(";")[0].removeprefix("protocol=")
        diff = _mean(runs, alpha, protocol, "test_ece") - _mean(runs, None, protocol, "test_ece")
        assert row["effect"] == pytest.approx(-diff.mean(), abs=1e-12)  # claimed: lower ECE
        assert row["n"] == 3
    # planted: alpha=1.0 is worse calibrated than cutmix, alpha=0.2 better; not averaged away
    assert list(ece["verdict"]) == ["supported", "contradicted"] * 2
    # claims whose arms have a single variant keep their plain scope
    gap = table[table["claim_id"] == "cutmix_reduces_gap"]
    assert list(gap["scope"]) == ["protocol=frozen", "protocol=unfrozen"]


def test_interaction_claims_are_tested_once_per_variant(tmp_path):
    runs = make_results(tmp_path, arms=[("none", "constant"), ("cutmix", "constant")])
    add_variant(tmp_path, runs, "cutmix", {"minmax": [0.2, 0.8]}, {"test_acc": 0.01})
    results = load_results(tmp_path)
    assert list(results.styles) == ["none", "cutmix (minmax=[0.2, 0.8])", "cutmix (minmax=unset)"]
    table = verdicts.evaluate_claims(results)
    hurts = table[table["claim_id"] == "cutmix_hurts_unfrozen_more"]
    assert list(hurts["scope"]) == [
        "protocol=unfrozen vs frozen; cutmix (minmax=[0.2, 0.8]) vs none",
        "protocol=unfrozen vs frozen; cutmix (minmax=unset) vs none",
    ]
    assert list(hurts["metric"]) == [
        "test_acc, cutmix (minmax=[0.2, 0.8]) - none",
        "test_acc, cutmix (minmax=unset) - none",
    ]
    assert set(hurts["verdict"]) == {"supported"} and (hurts["n"] == 3).all()


def test_a_scheduled_arm_whose_params_do_not_vary_keeps_its_label(tmp_path):
    arms = [("none", "constant"), ("cutmix", "constant"), ("cutmix", "staged")]
    runs = make_results(tmp_path, arms=arms, protocols=("unfrozen",))
    constant = runs[runs["schedule"] == "constant"]
    staged = runs[runs["schedule"] == "staged"]
    variant = add_variant(
        tmp_path, constant, "cutmix", {"minmax": [0.2, 0.8]}, base={"minmax": None}
    )
    pd.concat([variant, staged]).to_csv(tmp_path / "runs.csv", index=False)
    results = load_results(tmp_path)
    assert list(results.styles) == [
        "none",
        "cutmix (minmax=[0.2, 0.8])",
        "cutmix (minmax=null)",
        "cutmix (staged)",
    ]
    assert results.variants[claims.STAGED_CUTMIX] == ["cutmix (staged)"]
    assert results.variants[claims.CUTMIX] == ["cutmix (minmax=[0.2, 0.8])", "cutmix (minmax=null)"]
    table = verdicts.evaluate_claims(results)
    staged_rows = table[table["claim_id"] == "staged_cutmix_beats_early_cutmix_unfrozen"]
    assert list(staged_rows["scope"]) == [
        "protocol=unfrozen; cutmix (staged) vs cutmix (minmax=[0.2, 0.8])",
        "protocol=unfrozen; cutmix (staged) vs cutmix (minmax=null)",
    ]
    assert set(staged_rows["verdict"]) == {"supported"}


def test_parameters_that_differ_only_between_scopes_do_not_split_an_arm(tmp_path):
    # an alpha chosen per protocol, and label_smoothing mirrored from a varying config column
    runs = make_results(tmp_path, arms=NONE_MIXUP_CUTMIX, protocols=("frozen", "unfrozen"))
    runs["label_smoothing"] = runs["protocol"].map({"frozen": 0.0, "unfrozen": 0.1})
    alpha = runs["protocol"].map({"frozen": 0.2, "unfrozen": 1.0})
    runs["regularizer_params"] = [
        json.dumps({"alpha": a, "label_smoothing": ls}) if r == "mixup" else p
        for r, p, a, ls in zip(
            runs["regularizer"],
            runs["regularizer_params"],
            alpha,
            runs["label_smoothing"],
            strict=True,
        )
    ]
    runs.to_csv(tmp_path / "runs.csv", index=False)
    results = load_results(tmp_path)
    assert list(results.styles) == ["none", "mixup", "cutmix"]
    table = verdicts.evaluate_claims(results)
    ece = table[table["claim_id"] == "mixup_better_calibrated_than_cutmix"]
    scopes = ["protocol=frozen, label_smoothing=0", "protocol=unfrozen, label_smoothing=0.1"]
    assert list(ece["scope"]) == scopes and (ece["n"] == 3).all()


def test_values_are_compared_as_json_not_as_text(tmp_path):
    runs = make_results(tmp_path, arms=NONE_MIXUP_CUTMIX, protocols=("frozen",))
    mixup = runs.index[runs["regularizer"] == "mixup"]
    spellings = ['{"alpha": 1, "p": 1.0}', '{"p":1.0,"alpha":1.0}', '{ "alpha" : 1.0 , "p": 1 }']
    runs.loc[mixup, "regularizer_params"] = spellings
    runs.to_csv(tmp_path / "runs.csv", index=False)
    assert list(load_results(tmp_path).styles) == ["none", "mixup", "cutmix"]


def test_labels_stay_distinct_when_text_and_numbers_print_alike(tmp_path):
    runs = make_results(tmp_path, arms=NONE_MIXUP_CUTMIX, protocols=("frozen",))
    add_variant(tmp_path, runs, "mixup", {"mode": "1.0"}, base={"mode": 1.0})
    results = load_results(tmp_path)
    assert list(results.styles) == ["none", "mixup (mode=1.0)", 'mixup (mode="1.0")', "cutmix"]


def test_arm_label_and_order():
    mixup = style.report_arm("mixup", "constant", (("alpha", "0.2"),))
    assert style.arm_label(mixup) == "mixup (alpha=0.2)"
    staged = style.report_arm("cutmix", "staged", (("p", "1"),))
    assert style.arm_label(staged) == "cutmix (staged, p=1)"
    assert style.arm_label(style.report_arm("cutmix", "staged")) == "cutmix (staged)"
    # the schedule is shown first whatever its parameters' names sort before or after it
    both = style.report_arm("cutmix", "staged", (("alpha", "1"), ("value", "zero")))
    assert style.arm_label(both) == "cutmix (staged, alpha=1, value=zero)"
    arms = [style.report_arm("mixup", "constant", (("alpha", v),)) for v in ("10", "2", "0.5", "x")]
    ordered = style.order_arms([*arms, style.report_arm("none"), arms[0]])
    assert ordered[0] == Arm("none") and len(ordered) == 5  # each arm once
    assert [style.variant_of(arm)[0][1] for arm in ordered[1:]] == [
        "0.5",
        "2",
        "10",
        "x",
    ]  # by size
    known = [
        style.report_arm("cutmix", "staged"),
        style.report_arm("zeta"),
        style.report_arm("cutmix"),
    ]
    assert [style.arm_label(a) for a in style.order_arms(known)] == [
        "cutmix", "cutmix (staged)", "zeta"
    ]  # fmt: skip


def test_a_reports_arm_is_a_bench_arm_with_the_parameters_that_set_it_apart():
    """The report's arm is the ground floor's Arm: its schedule (none when constant) and its
    variant as parameters; arms equal as Arms are one arm, with one label, style and place."""
    assert style.report_arm("cutmix") == Arm("cutmix") == style.report_arm("cutmix", "")
    staged = style.report_arm("cutmix", "staged", (("minmax", "[0.2, 0.8]"),))
    assert staged == Arm.of("cutmix", {"schedule": "staged", "minmax": "[0.2, 0.8]"})
    assert style.schedule_of(staged) == "staged" and style.schedule_of(Arm("cutmix")) == "constant"
    assert style.variant_of(staged) == (("minmax", "[0.2, 0.8]"),)
    assert style.family(staged) == claims.STAGED_CUTMIX != claims.CUTMIX
    same = Arm.of("cutmix", {"minmax": "[0.2, 0.8]", "schedule": "staged"})
    assert style.arm_label(same) == style.arm_label(staged) == "cutmix (staged, minmax=[0.2, 0.8])"
    assert list(style.arm_styles([staged, same, Arm("none")])) == ["none", style.arm_label(staged)]
    # what must not happen: another schedule or value is another arm, with another label
    other = style.report_arm("cutmix", "constant", (("minmax", "[0.2, 0.8]"),))
    assert other != staged and style.arm_label(other) == "cutmix (minmax=[0.2, 0.8])"
    assert len(style.arm_styles([staged, other, Arm("none")])) == 3


def test_the_loaded_arms_are_bench_arms(tmp_path):
    arms = [("none", "constant"), ("cutmix", "constant"), ("cutmix", "staged")]
    runs = make_results(tmp_path, arms=arms, protocols=("unfrozen",))
    add_variant(tmp_path, runs, "cutmix", {"alpha": 0.2}, base={"alpha": 1.0})
    results = load_results(tmp_path)
    assert all(type(arm) is Arm for arm in results.arms.values())
    assert results.arms == {
        "none": Arm("none"),
        "cutmix (alpha=1.0)": Arm.of("cutmix", {"alpha": "1.0"}),
        "cutmix (staged, alpha=1.0)": Arm.of("cutmix", {"alpha": "1.0", "schedule": "staged"}),
        "cutmix (alpha=0.2)": Arm.of("cutmix", {"alpha": "0.2"}),
        "cutmix (staged, alpha=0.2)": Arm.of("cutmix", {"alpha": "0.2", "schedule": "staged"}),
    }
    assert {label: style.arm_label(arm) for label, arm in results.arms.items()} == {
        label: label for label in results.arms
    }  # every label is its arm's own display text
    assert set(results.runs["arm"]) == set(results.arms) == set(results.styles)
    assert results.variants[claims.STAGED_CUTMIX] == [
        "cutmix (staged, alpha=0.2)", "cutmix (staged, alpha=1.0)"
    ]  # fmt: skip


def test_the_schedule_column_is_the_schedule_not_the_params_copy_of_it(tmp_path):
    """regularizer_params' own `schedule` entry, present in some cells of an arm and missing
    from others (a cell whose regularizer was not built, older rows), splits nothing."""
    runs = make_results(tmp_path, arms=NONE_MIXUP_CUTMIX, protocols=("frozen",))
    cutmix = runs.index[runs["regularizer"] == "cutmix"]
    runs.loc[cutmix, "regularizer_params"] = [
        json.dumps({"alpha": 1.0, **({"schedule": "constant"} if i % 2 else {})})
        for i in range(len(cutmix))
    ]
    runs.to_csv(tmp_path / "runs.csv", index=False)
    results = load_results(tmp_path)
    assert list(results.styles) == ["none", "mixup", "cutmix"]
    assert results.arms["cutmix"] == Arm("cutmix")
    assert not [n for n in results.notes if "variants" in n]
    # another parameter beside it still splits the arm, by that parameter alone
    runs.loc[cutmix[0], "regularizer_params"] = json.dumps({"alpha": 0.2, "schedule": "constant"})
    runs.to_csv(tmp_path / "runs.csv", index=False)
    assert list(load_results(tmp_path).styles) == [
        "none", "mixup", "cutmix (alpha=0.2)", "cutmix (alpha=1.0)"
    ]  # fmt: skip


def test_parameter_values_are_escaped_in_the_page(tmp_path):
    arms = [("none", "constant"), ("mixup", "constant")]
    runs = make_results(tmp_path / "results", arms=arms, protocols=("frozen",), seeds=(0, 1))
    evil = "<script>alert('x')</script>"
    add_variant(tmp_path / "results", runs, "mixup", {"mode": evil}, base={"mode": "batch"})
    index = build_report(tmp_path / "results", tmp_path / "report")
    page = index.read_text()
    assert "<script" not in page.lower()
    assert "mixup (mode=&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;)" in page
    assert "mixup (mode=batch)" in page
    md = (tmp_path / "report" / "report.md").read_text()
    assert "<script" not in md and "mixup (mode=&lt;script&gt;" in md
    tex = (tmp_path / "report" / "tables" / "summary.tex").read_text()
    assert r"MixUp (mode=\textless{}script\textgreater{}" in tex


def test_two_families_that_spell_one_label_stop_the_report(tmp_path):
    arms = [("none", "constant"), ("cutmix", "staged"), ("cutmix (staged)", "constant")]
    make_results(tmp_path, arms=arms, protocols=("frozen",))
    with pytest.raises(ReportInputError, match="would both be labelled") as error:
        load_results(tmp_path)
    message = str(error.value)
    assert "'cutmix'/'staged' and 'cutmix (staged)'/'constant'" in message
    assert "rename one of them" in message and "\n" not in message
