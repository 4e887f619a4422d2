"""The hyperparameter search (search.csv, issue 14): read as untrusted input and checked against
bench.schema.SEARCH, shown in its own section with the values selected at an edge flagged, and
the configuration columns it selects per arm (lr, ...) kept out of the scopes."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from report_fixtures import SCOPE, make_results, make_search

from bench import schema
from bench.arms import Scope, legacy_scope
from bench.cli.report import main
from bench.report import build, tables, verdicts
from bench.report.load import load_results

NONE_MIXUP_CUTMIX = [("none", "constant"), ("mixup", "constant"), ("cutmix", "constant")]
SMALL = {"arms": NONE_MIXUP_CUTMIX, "protocols": ("frozen", "unfrozen"), "robustness": False}
RANGES = {"lr": (0.01, 0.1), "weight_decay": (0.0001, 0.001)}
EDGE = {("cutmix", "frozen"): 2}  # cutmix, frozen: the last trial, both values at the high end
EVIL = "<script>alert(1)</script>"


def build_without_figures(folder: Path, out: Path) -> Path:
    """The report of `folder` (figures are tested elsewhere; drawing them is the slow part)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build.figures, "draw_figures", lambda results, figures: [])
        return build.build_report(folder, out)


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> SimpleNamespace:
    """lr and weight_decay searched (3 trials) per arm x protocol; cutmix, frozen at an edge."""
    root = tmp_path_factory.mktemp("searched")
    folder = root / "results"
    runs = make_results(folder, **SMALL)
    search = make_search(folder, runs, RANGES, selected=EDGE)
    index = build_without_figures(folder, root / "report")
    return SimpleNamespace(folder=folder, out=root / "report", search=search, index=index)


def md_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in `text`, as stripped cells."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


# --- read and shown ---------------------------------------------------------------------------


def test_search_csv_is_read_with_its_declared_types(searched):
    results = load_results(searched.folder)
    assert results.search is not None and len(results.search) == len(searched.search) == 36
    assert list(results.search.columns) == ["scope", *schema.SEARCH_COLUMNS]
    assert set(results.search["scope"]) == {Scope.of([("protocol", p)]) for p in SMALL["protocols"]}
    for column in ["trial", "seeds", "selected", "at_edge"]:
        assert results.search[column].dtype == "int64", column
    assert results.search["value"].dtype == float
    assert results.selected_per_arm == ["lr", "weight_decay"]


def test_the_section_shows_each_arms_selected_values(searched):
    page = searched.index.read_text()
    assert '<h2 id="hyperparameter-search">Hyperparameter search</h2>' in page
    assert "took no part in the selection" in page and "2 selection seed(s)" in page
    markdown = (searched.out / build.SEARCH_TABLE).read_text()
    rows = md_rows(markdown)
    assert len(rows) == 2 * 3 * 2  # protocols x arms x searched parameters
    by_key = {(r[0], r[1], r[2]): r for r in rows}
    assert by_key[("protocol=frozen", "cutmix", "lr")] == [
        "protocol=frozen", "cutmix", "lr", "val_acc (%)", "**0.1**", "\\[0.01, 0.1\\]",
        f"**{tables.EDGE_FLAG}**", "3", "2", "70.00", "68.00", "1.00 ± not recorded",
    ]  # fmt: skip
    assert by_key[("protocol=unfrozen", "mixup", "weight_decay")] == [
        "protocol=unfrozen", "mixup", "weight_decay", "val_acc (%)", "0.00055",
        "\\[0.0001, 0.001\\]", "", "3", "2", "70.00", "69.00", "1.00 ± not recorded",
    ]  # fmt: skip
    assert "Hyperparameter search" in (searched.out / "report.md").read_text()
    assert f'href="{build.SEARCH_TABLE}"' in page
    manifest = (searched.out / build.MANIFEST).read_text().split()
    assert build.SEARCH_TABLE in manifest


def test_the_edge_warning_names_exactly_the_values_selected_at_an_edge(searched):
    page = searched.index.read_text()
    paragraphs = [part.split("</p>")[0] for part in page.split("<p>")[1:]]
    warnings = [text for text in paragraphs if text.startswith("Warning: ")]
    assert len(warnings) == 1
    warning = warnings[0]
    assert warning.startswith("Warning: 2 selected value(s) sit at an edge")
    assert "cutmix in protocol=frozen: lr = 0.1, range [0.01, 0.1]" in warning
    assert "cutmix in protocol=frozen: weight_decay = 0.001, range [0.0001, 0.001]" in warning
    assert "mixup" not in warning and "none in" not in warning and "unfrozen" not in warning
    # unselected trials at the ends of their range carry at_edge = 1 too: never flagged
    assert (searched.search["at_edge"] == 1).sum() > 2
    rows = md_rows((searched.out / build.SEARCH_TABLE).read_text())
    flagged = [(r[0], r[1], r[2]) for r in rows if tables.EDGE_FLAG in r[6]]
    assert flagged == [("protocol=frozen", "cutmix", "lr"), ("protocol=frozen", "cutmix", "weight_decay")]  # fmt: skip
    assert page.count(f"<strong>{tables.EDGE_FLAG}</strong>") == 2
    notes = [n for n in load_results(searched.folder).notes if "edge" in n]
    assert notes == []  # the edge note is the report's (build), not the loader's
    assert "2 searched value(s) were selected at an edge of their range" in page


@pytest.mark.parametrize(("margin_se", "shown", "noisy"), [(0.02, "2.00", 6), (0.001, "0.10", 0)])
def test_each_selections_lead_is_shown_against_its_standard_error(
    tmp_path, margin_se, shown, noisy
):
    """The lead over the runner-up (0.70 vs 0.69: 1 pp) against search.csv's margin_se: a lead
    under 2 standard errors is counted as one noise could have picked."""
    runs = make_results(tmp_path / "results", **SMALL)
    make_search(tmp_path / "results", runs, RANGES, margin_se=margin_se)
    build_without_figures(tmp_path / "results", tmp_path / "report")
    markdown = (tmp_path / "report" / build.SEARCH_TABLE).read_text()
    assert {row[-1] for row in md_rows(markdown)} == {f"1.00 ± {shown}"}
    assert f"{noisy} of 6 selections lead by less than 2 standard errors" in markdown


def test_no_edge_no_warning(tmp_path):
    runs = make_results(tmp_path, **SMALL)
    make_search(tmp_path, runs, RANGES)  # every arm selects the middle trial
    table = tables.search_table(load_results(tmp_path).search)
    assert len(table) == 12 and (table["at_edge"] == 0).all()
    assert tables.edge_warning(table) is None


def test_an_arm_without_a_selected_trial_is_shown_as_such(tmp_path):
    runs = make_results(tmp_path, **SMALL)
    search = make_search(tmp_path, runs, {"lr": (0.01, 0.1)})
    search.loc[(search["arm"] == "mixup") & (search[SCOPE] == "frozen"), "selected"] = 0
    search.loc[search["trial"] == 0, "score"] = float("nan")  # its cells failed
    search.to_csv(tmp_path / schema.SEARCH_FILE, index=False)
    table = tables.search_table(load_results(tmp_path).search)
    rows, _ = tables.search_rows(table)
    mixup = next(r for r in rows if r[:2] == ["protocol=frozen", "mixup"])
    assert mixup[4] == tables.NOT_SELECTED and mixup[7] == "3 (1 without a score)"
    assert mixup[8] == "–" and mixup[9:] == ["70.00", "69.00", "–"]  # no lead: none selected


@pytest.mark.parametrize(
    "label, shown",
    [
        ("protocol=(protocol=frozen) size=(train_per_class=10,batch_size=32)",
         "protocol=frozen, train_per_class=10, batch_size=32"),
        ("backbone=resnet50 protocol=(protocol=head_first,trainable_stages=2)",
         "backbone=resnet50, protocol=head_first, trainable_stages=2"),
        ("protocol=frozen", "protocol=frozen"),
        ("a=(b=(c)) d=e", "a=(b=(c)) d=e"),  # not a sweep label: shown as it is
        ("free text (x", "free text (x"),
        ("", "(empty)"),
    ],
)  # fmt: skip
def test_legacy_search_scope_labels_read_plainly(label, shown):
    assert tables.search_scope_text(legacy_scope(label)) == shown


def test_a_legacy_sweeps_table_axis_labels_read_plainly_on_the_page(tmp_path):
    """search.csv before issue 25 kept the sweep's labels; the page and tables/search.md show
    them plainly."""
    folder = tmp_path / "results"
    runs = make_results(folder, **SMALL)
    search = make_search(folder, runs, RANGES, selected=EDGE, legacy=True)
    label = "protocol=(protocol=frozen) size=(train_per_class=10,batch_size=32)"
    search["scope"] = search["scope"].replace("protocol=frozen", label)
    search.to_csv(folder / schema.SEARCH_FILE, index=False)
    build_without_figures(folder, tmp_path / "report")
    for name in ["report.md", build.SEARCH_TABLE]:
        text = (tmp_path / "report" / name).read_text()
        assert "protocol=frozen, train_per_class=10, batch_size=32" in text, name
        assert "protocol=(protocol=frozen)" not in text, name
    assert pd.read_csv(folder / schema.SEARCH_FILE)["scope"].eq(label).any()


def test_hostile_text_is_escaped(tmp_path):
    folder = tmp_path / "results"
    runs = make_results(folder, **SMALL)
    search = make_search(folder, runs, RANGES, selected=EDGE)
    for column, value in [(SCOPE, "frozen"), ("arm", "cutmix"), ("parameter", "lr")]:
        search[column] = search[column].replace(value, f"{EVIL} | *[x]")
    search.to_csv(folder / schema.SEARCH_FILE, index=False)
    build_without_figures(folder, tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Warning: 2 selected value(s)" in page  # the hostile scope, arm and parameter too
    for name in ["report.md", build.SEARCH_TABLE]:
        text = (tmp_path / "report" / name).read_text()
        assert "<script" not in text, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt; \\| \\*\\[x\\]" in text, name


# --- bad files --------------------------------------------------------------------------------


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _trial(search: pd.DataFrame, arm: str, trial: int) -> pd.Series:
    """The rows of one trial of `arm` in protocol=frozen (search.csv read as text)."""
    scope, arms, trials = search[SCOPE], search["arm"], search["trial"]
    return (scope == "frozen") & (arms == arm) & (trials == str(trial))


def _drop_selected(search):
    return search.drop(columns=["selected"])


def _selected_2(search):
    search.loc[3, "selected"] = "2"
    return search


def _two_selected(search):
    search.loc[_trial(search, "mixup", 0), "selected"] = "1"
    return search


def _half_selected(search):
    search.loc[search.index[_trial(search, "mixup", 0)][0], "selected"] = "1"
    return search


def _non_numeric(search):
    search.loc[4, "value"] = "abc"
    return search


def _outside(search):
    search.loc[4, "value"] = "5"
    return search


def _at_edge_half(search):
    search.loc[2, "at_edge"] = "0.5"
    return search


def _unknown_metric(search):
    search["select_metric"] = "accuracy"
    return search


def _empty_arm(search):
    search.loc[5, "arm"] = ""
    return search


def _repeated_row(search):
    return pd.concat([search, search.iloc[[7]]])


def _header_only(search):
    return search.iloc[:0]


@pytest.mark.parametrize(
    "edit, words",
    [
        (_drop_selected, ["lacks required column(s) selected", "regenerate"]),
        (_selected_2, ["column selected", "'2'", "[0, 1]"]),
        (_two_selected, ["scope 'protocol=frozen', arm 'mixup' has 2 selected trials (0, 1)",
                         "keep selected = 1 on the trial"]),
        (_half_selected, ["trial 0 disagree on selected", "one trial has one value"]),
        (_non_numeric, ["column value", "non-numeric value 'abc'", "line 6"]),
        (_outside, ["value is outside [low, high]", "value 5"]),
        (_at_edge_half, ["column at_edge", "non-integer"]),
        (_unknown_metric, ["select_metric 'accuracy'", "e.g. val_acc"]),
        (_empty_arm, ["column arm is empty on line 7"]),
        (_repeated_row, ["appears more than once"]),
        (_header_only, ["header but no rows", "delete the file"]),
    ],
)  # fmt: skip
def test_a_bad_search_csv_is_refused_naming_the_file_column_and_fix(tmp_path, capsys, edit, words):
    folder = tmp_path / "results"
    runs = make_results(folder, **SMALL)
    make_search(folder, runs, RANGES)
    search = pd.read_csv(folder / schema.SEARCH_FILE, dtype=str, keep_default_na=False)
    edit(search).to_csv(folder / schema.SEARCH_FILE, index=False)
    code, out, err = run_cli(capsys, folder, "--out", tmp_path / "out")
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("regbench report: error: search.csv") and "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "out").exists()


# --- scopes -----------------------------------------------------------------------------------


def test_a_searched_lr_does_not_split_scopes(searched):
    results = load_results(searched.folder)
    frozen = results.runs[results.runs["protocol"] == "frozen"]
    assert sorted(frozen["lr"].unique()) == pytest.approx(
        [0.055, 0.1]
    )  # cutmix's lr differs from the others
    assert "lr" not in results.varying and "weight_decay" not in results.varying
    assert results.scopes == ["protocol=frozen", "protocol=unfrozen"]
    notes = [n for n in results.notes if "selected per arm" in n]
    assert notes == [
        "lr, weight_decay were selected per arm on val_acc (search.csv), so they differ between "
        "the arms of one scope by design and scopes are not split by them: the comparison is "
        "each arm at its selected values (see Hyperparameter search)."
    ]
    claims = verdicts.evaluate_claims(results)
    gap = claims[claims["claim_id"] == "cutmix_reduces_gap"]
    assert list(gap["scope"]) == ["protocol=frozen", "protocol=unfrozen"]
    assert (gap["n"] == 3).all() and set(gap["verdict"]) == {"supported"}
    page = searched.index.read_text()
    assert "selected per arm</th><td>lr, weight_decay (see Hyperparameter search)" in page


def test_without_search_csv_a_varying_lr_still_splits_scopes(searched, tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(searched.folder, folder)
    (folder / schema.SEARCH_FILE).unlink()
    results = load_results(folder)
    assert results.search is None and results.selected_per_arm == []
    assert "lr" in results.varying
    assert all("lr=" in scope for scope in results.scopes) and len(results.scopes) > 2
    assert not [n for n in results.notes if "selected per arm" in n]
    build_without_figures(folder, tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Hyperparameter search" not in page and "search.md" not in page
    assert not (tmp_path / "report" / build.SEARCH_TABLE).exists()


def test_a_searched_alpha_that_differs_between_regularizers_splits_nothing(tmp_path):
    runs = make_results(tmp_path, **SMALL)
    # frozen: mixup alpha 0.1, cutmix alpha 2.0; unfrozen: both 1.05
    selected = {("mixup", "frozen"): 0, ("cutmix", "frozen"): 2}
    make_search(tmp_path, runs, {"alpha": (0.1, 2.0)}, selected=selected, arms={"mixup", "cutmix"})
    results = load_results(tmp_path)
    alphas = results.runs["regularizer_params"].str.extract(r'"alpha": ([\d.]+)')[0]
    assert set(alphas.dropna()) == {"0.1", "2.0", "1.05"}  # the alphas really differ
    assert list(results.styles) == ["none", "mixup", "cutmix"]
    assert results.scopes == ["protocol=frozen", "protocol=unfrozen"]
    assert results.selected_per_arm == [] and results.varying == []
    assert not [n for n in results.notes if "variants" in n or "selected per arm" in n]
    claims = verdicts.evaluate_claims(results)
    ece = claims[claims["claim_id"] == "mixup_better_calibrated_than_cutmix"]
    assert list(ece["scope"]) == ["protocol=frozen", "protocol=unfrozen"] and (ece["n"] == 3).all()
    table = tables.search_table(results.search)
    assert list(table["parameter"]) == ["alpha"] * 4 and set(table["arm"]) == {"mixup", "cutmix"}


# --- search.csv's scope columns and the legacy scope label --------------------------------------

TINY_SEARCH = """
name = "tiny-search"
[defaults]
dataset = "synthetic"
backbone = "test_resnet"
pretrained = "none"
device = "cpu"
image_size = 16
val_size = 32
test_size = 32
train_eval_size = 32
robustness_size = 16
epochs = 1
lr = 0.05
[axes]
seed = [0]
[[axes.protocol]]
protocol = "frozen"
[[axes.protocol]]
protocol = "head_first"
trainable_stages = 1
unfreeze_at = 0.5
[[axes.size]]
train_size = 64
batch_size = 32
[[axes.arm]]
regularizer = "none"
[[axes.arm]]
regularizer = "mixup"
params = { alpha = 1.0 }
[search]
seeds = [7]
extend_edges = false  # the scopes are what this tests (tests/bench/test_search.py: extensions)
[search.space]
lr = [0.01, 0.2]
"""


def _legacy_label(label: str) -> str:
    """The scope search.csv held before issue 25: the cell's sweep label without its arm's and
    seed's parts (what bench.search wrote then)."""
    return " ".join(part for part in label.split(" ")
                    if not part.startswith(("arm=", "seed=", "regularizer=")))  # fmt: skip


def test_a_real_searchs_scope_columns_give_the_report_of_the_legacy_label(tmp_path):
    """A tiny real search writes its scopes as columns; the same search.csv with the legacy
    `scope` label instead gives the same search table, warnings and report pages."""
    from bench.results import ResultsDir
    from bench.runner import run_sweep
    from bench.sweep import load_sweep

    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SEARCH)
    sweep = load_sweep(path)
    folder = tmp_path / "results"
    counts = run_sweep(sweep, ResultsDir(folder), progress=None)
    assert (counts["failed"], counts["trials"]) == (0, 8)
    search = pd.read_csv(folder / schema.SEARCH_FILE, dtype=str, keep_default_na=False)
    # each scope's fields in its own order: head_first's after protocol, before the size's
    scope_columns = ["scope.protocol", "scope.trainable_stages", "scope.unfreeze_at",
                     "scope.train_size", "scope.batch_size"]  # fmt: skip
    assert list(search.columns) == [*scope_columns, *schema.SEARCH_COLUMNS]  # no `scope` label
    frozen = search[search["scope.protocol"] == "frozen"]
    assert set(frozen["scope.trainable_stages"]) == {""}  # the frozen scope leaves it alone
    # the legacy file of the same search: one `scope` label per row, as the old writer made it
    legacy_of = {scope: _legacy_label(label)
                 for scope, label in zip(sweep.scopes, sweep.labels, strict=True)}  # fmt: skip
    assert set(legacy_of.values()) == {
        "protocol=(protocol=frozen) size=(train_size=64,batch_size=32)",
        "protocol=(protocol=head_first,trainable_stages=1,unfreeze_at=0.5) "
        "size=(train_size=64,batch_size=32)",
    }
    rows = ResultsDir(folder).search_rows()
    new_table = tables.search_table(load_results(folder).search)
    build_without_figures(folder, tmp_path / "report-columns")
    legacy = search.drop(columns=scope_columns)
    legacy.insert(0, "scope", [legacy_of[row["scope"]] for row in rows])
    legacy.to_csv(folder / schema.SEARCH_FILE, index=False)  # the same folder: its path is shown
    assert [row["scope"] for row in ResultsDir(folder).search_rows()] == [r["scope"] for r in rows]
    old_table = tables.search_table(load_results(folder).search)
    assert tables.search_rows(new_table) == tables.search_rows(old_table)
    shown = {row[0] for row in tables.search_rows(new_table)[0]}
    assert shown == {"protocol=frozen, train_size=64, batch_size=32",
                     "protocol=head_first, trainable_stages=1, unfreeze_at=0.5, train_size=64, "
                     "batch_size=32"}  # fmt: skip
    build_without_figures(folder, tmp_path / "report-legacy")
    for name in ["report.md", "index.html", build.SEARCH_TABLE]:
        new_text = (tmp_path / "report-columns" / name).read_text()
        assert new_text == (tmp_path / "report-legacy" / name).read_text(), name
        assert "Hyperparameter search" in new_text or name == build.SEARCH_TABLE


def test_a_search_csv_with_both_scope_forms_is_refused(tmp_path, capsys):
    folder = tmp_path / "results"
    runs = make_results(folder, **SMALL)
    search = make_search(folder, runs, RANGES)
    search.insert(0, "scope", "protocol=frozen")
    search.to_csv(folder / schema.SEARCH_FILE, index=False)
    code, out, err = run_cli(capsys, folder, "--out", tmp_path / "out")
    assert code == 2 and "both a scope column and scope columns (scope.protocol" in err
