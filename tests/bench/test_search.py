"""bench.search: the [search] table (checked before anything runs), its trials, the selection on
validation (never test), search.csv, and a search sweep run and resumed end to end."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest

from bench import search
from bench.results import ResultsDir
from bench.runner import SearchError, run_sweep, search_phases
from bench.schema import SEARCH_COLUMNS
from bench.sweep import SweepError, load_sweep

BASE = """
name = "searchy"
[defaults]
dataset = "synthetic"
backbone = "test_resnet"
pretrained = "none"
device = "cpu"
image_size = 16
train_size = 64
val_size = 32
test_size = 32
train_eval_size = 32
robustness_size = 16
batch_size = 32
epochs = 1
lr = 0.05
[axes]
seed = [0, 1]
protocol = ["frozen"]
[[axes.arm]]
regularizer = "none"
[[axes.arm]]
regularizer = "mixup"
params = { alpha = 1.0 }
"""


def write(tmp_path: Path, search_text: str, base: str = BASE) -> Path:
    path = tmp_path / "search.toml"
    path.write_text(textwrap.dedent(base) + textwrap.dedent(search_text))
    return path


GRID = """
[search]
seeds = [7]
[search.space]
lr = [0.01, 0.1]
alpha = [0.2, 1.0]
"""


# ---------------------------------------------------------------------------------------------
# The table, checked before anything runs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[search]\n[search.space]\nlrr = [0.1]\n", "unknown parameter 'lrr'; allowed: lr,"),
        ("[search]\n[search.space]\nseed = [1, 2]\n", "unknown parameter 'seed'"),
        ("[search]\n[search.space]\nlr = []\n", "search.space.lr: is empty"),
        ("[search]\n[search.space]\nlr = [0.1, 0.1]\n", "lists a value twice"),
        ("[search]\n[search.space]\nlr = ['a']\n", "list finite numbers"),
        ("[search]\nmethod = 'random'\ntrials = 0\n[search.space]\nlr = [0.1]\n",
         "search.trials: got 0; give an integer >= 1"),
        ("[search]\nmethod = 'random'\n[search.space]\nlr = [0.1]\n", "search.trials: got None"),
        ("[search]\ntrials = 3\n[search.space]\nlr = [0.1, 0.2]\n",
         "the grid has 2 combinations, trials = 3"),
        ("[search]\nselect = 'test_acc'\n[search.space]\nlr = [0.1]\n",
         "'test_acc' is not a validation metric runs.csv records; allowed: val_acc, val_loss"),
        ("[search]\nselect = 'val_magic'\n[search.space]\nlr = [0.1]\n", "val_magic"),
        ("[search]\n[search.space]\nlr = { low = 0.01, high = 0.1 }\n",
         'a range needs method = "random"'),
        ("[search]\nmethod = 'random'\ntrials = 2\n[search.space]\nlr = { low = 0.1, high = 0.01 }\n",
         "a range needs numbers low < high"),
        ("[search]\nmethod = 'random'\ntrials = 2\n[search.space]\nlr = { low = 0, high = 1, log = true }\n",
         "log = true needs low > 0"),
        ("[search]\n[search.space]\nlr = [-0.1, 0.1]\n", "lr=-0.1 is invalid"),
        ("[search]\n[search.space]\nminmax = [0.1]\n", "unknown parameter 'minmax'"),
        ("[search]\nseeds = []\n[search.space]\nlr = [0.1]\n", "give a non-empty list"),
        ("[search]\nseeds = [1, 1]\n[search.space]\nlr = [0.1]\n", "lists a seed twice"),
        ("[search]\nsteps = 3\n[search.space]\nlr = [0.1]\n", "search.steps: unknown key"),
        ("[search]\n", "search.space: give at least one parameter"),
    ],
)  # fmt: skip
def test_bad_search_tables_fail_at_load_naming_the_key_and_the_fix(tmp_path, text, message):
    with pytest.raises(SweepError) as error:
        load_sweep(write(tmp_path, text))
    assert message in str(error.value)


def test_a_parameter_no_arm_takes_or_an_axis_sets_is_refused(tmp_path):
    only_none = BASE.split('[[axes.arm]]\nregularizer = "mixup"')[0]
    with pytest.raises(SweepError, match="search.space.alpha: no arm of the sweep takes"):
        load_sweep(write(tmp_path, "[search]\n[search.space]\nalpha = [0.2, 1.0]\n", only_none))
    on_axis = BASE.replace('protocol = ["frozen"]', 'protocol = ["frozen"]\nlr = [0.1, 0.2]')
    with pytest.raises(SweepError, match="an axis already sets 'lr'"):
        load_sweep(write(tmp_path, "[search]\n[search.space]\nlr = [0.1]\n", on_axis))


def test_no_search_table_means_no_search(tmp_path):
    assert load_sweep(write(tmp_path, "")).search is None


# ---------------------------------------------------------------------------------------------
# Trials


def test_grid_trials_cover_every_combination_and_drop_repeats_per_arm(tmp_path):
    sweep = load_sweep(write(tmp_path, GRID))
    assert sweep.search.trials == 4
    trials = search.trials(sweep.search, sweep.cells, sweep.labels)
    by_arm = {}
    for trial in trials:
        by_arm.setdefault(trial.arm, []).append(trial.values)
    # none takes no alpha: its 4 grid points are 2 distinct trials
    assert by_arm["none"] == [{"lr": 0.01}, {"lr": 0.1}]
    assert len(by_arm["mixup(alpha=1.0)"]) == 4
    assert {(v["lr"], v["alpha"]) for v in by_arm["mixup(alpha=1.0)"]} == {
        (0.01, 0.2), (0.01, 1.0), (0.1, 0.2), (0.1, 1.0)
    }  # fmt: skip
    cell = next(t for t in trials if t.values == {"lr": 0.1, "alpha": 0.2}).cells[0]
    assert (cell.lr, cell.regularizer_params["alpha"], cell.seed, cell.data_seed) == (
        0.1,
        0.2,
        7,
        7,
    )
    # trial cells are not the sweep's cells: selection seeds apart from the reported seeds
    assert not {c.run_id for t in trials for c in t.cells} & {c.run_id for c in sweep.cells}


def test_random_draws_are_seeded_within_range_and_log_uniform(tmp_path):
    text = """
    [search]
    method = "random"
    trials = 200
    seed = 3
    [search.space]
    lr = { low = 0.001, high = 1.0, log = true }
    weight_decay = [0.0, 0.0005]
    """
    first = load_sweep(write(tmp_path, text)).search
    again = load_sweep(write(tmp_path, text)).search
    assert first.points() == again.points()
    other = load_sweep(write(tmp_path, text.replace("seed = 3", "seed = 4"))).search
    assert other.points() != first.points()
    lrs = [p["lr"] for p in first.points()]
    assert all(0.001 <= lr <= 1.0 for lr in lrs)
    # log-uniform: about a third of draws per decade, not 90% in the top decade
    below = sum(lr < 0.01 for lr in lrs) / len(lrs)
    assert 0.2 < below < 0.5
    assert {p["weight_decay"] for p in first.points()} == {0.0, 0.0005}


# ---------------------------------------------------------------------------------------------
# Selection


def rows_for(trials, scores, status="ok", test=None):
    """runs.csv rows of every trial cell: val_acc from `scores` (trial position -> value)."""
    rows = []
    for i, trial in enumerate(trials):
        for cell in trial.cells:
            rows.append({"run_id": cell.run_id, "status": status, "val_acc": str(scores[i]),
                         "val_loss": "1.0", "test_acc": str((test or scores)[i])})  # fmt: skip
    return rows


def test_selection_uses_validation_not_test_and_flags_edges(tmp_path):
    sweep = load_sweep(write(tmp_path, GRID))
    trials = search.trials(sweep.search, sweep.cells, sweep.labels)
    val = [0.3, 0.5] + [0.2, 0.4, 0.6, 0.1]  # none: lr 0.1 wins; mixup: lr 0.1 alpha 0.2 wins
    test = [0.9, 0.1] + [0.9, 0.9, 0.1, 0.9]  # test would pick the other trials
    chosen, table = search.select(sweep.search, trials, rows_for(trials, val, test=test))
    picked = sorted((t.arm, tuple(sorted(t.values.items()))) for t in chosen.values())
    assert picked == [("mixup(alpha=1.0)", (("alpha", 0.2), ("lr", 0.1))), ("none", (("lr", 0.1),))]
    assert [list(row) for row in table][0] == SEARCH_COLUMNS
    selected = [row for row in table if row["selected"]]
    assert {(r["arm"], r["parameter"], r["value"], r["at_edge"]) for r in selected} == {
        ("none", "lr", 0.1, 1), ("mixup(alpha=1.0)", "lr", 0.1, 1),
        ("mixup(alpha=1.0)", "alpha", 0.2, 1),
    }  # fmt: skip
    assert all(r["at_edge"] == 0 for r in table if not r["selected"])  # only a selection is flagged
    # final cells: every seed of the group at the selected values; nothing left out
    final, _, missing = search.final_cells(sweep.cells, sweep.labels, chosen)
    assert missing == [] and len(final) == len(sweep.cells)
    assert {(c.regularizer, c.lr, c.regularizer_params.get("alpha")) for c in final} == {
        ("none", 0.1, None), ("mixup", 0.1, 0.2)
    }  # fmt: skip


def test_lower_is_better_metrics_and_interior_values_are_not_edges(tmp_path):
    text = GRID.replace("lr = [0.01, 0.1]", "lr = [0.01, 0.03, 0.1]").replace(
        "[search]", '[search]\nselect = "val_loss"'
    )
    sweep = load_sweep(write(tmp_path, text))
    trials = [t for t in search.trials(sweep.search, sweep.cells, sweep.labels) if t.arm == "none"]
    rows = rows_for(trials, [0.0] * 3)
    for row, loss in zip(rows, [2.0, 1.0, 3.0], strict=True):
        row["val_loss"] = str(loss)
    chosen, table = search.select(sweep.search, trials, rows)
    assert list(chosen.values())[0].values == {"lr": 0.03}
    assert [(r["value"], r["selected"], r["at_edge"]) for r in table] == [
        (0.01, 0, 0), (0.03, 1, 0), (0.1, 0, 0)
    ]  # fmt: skip


def test_failed_or_missing_trials_do_not_count_and_a_group_without_scores_runs_nothing(tmp_path):
    sweep = load_sweep(write(tmp_path, GRID))
    trials = search.trials(sweep.search, sweep.cells, sweep.labels)
    rows = rows_for(trials, [0.3, 0.9, 0.5, 0.5, 0.5, 0.5])
    rows[1]["status"] = "failed"  # none, lr 0.1: the best val_acc, but failed
    rows = [row for row in rows if row["run_id"] not in {c.run_id for c in trials[2].cells}]
    chosen, table = search.select(sweep.search, trials, rows)
    none_choice = next(t for t in chosen.values() if t.arm == "none")
    assert none_choice.values == {"lr": 0.01}
    failed_trial = [r for r in table if r["arm"] == "none" and r["value"] == 0.1]
    assert [(r["trial"], r["seeds"], r["score"], r["selected"]) for r in failed_trial] == [
        (2, 0, None, 0)  # grid order: (lr, alpha) = (0.1, 0.2) is the third point
    ]
    # every mixup trial failed: its cells are left out (and named), not run at a guess
    failed = rows_for(trials, [0.3] * 6)
    for row in failed[2:]:
        row["status"] = "failed"
    chosen, _ = search.select(sweep.search, trials, failed)
    final, _, missing = search.final_cells(sweep.cells, sweep.labels, chosen)
    assert {c.regularizer for c in final} == {"none"}
    assert len(missing) == 2 and all("mixup" in label for label in missing)


# ---------------------------------------------------------------------------------------------
# End to end: trials, search.csv, the selected cells, resume


def test_a_search_sweep_runs_trials_then_selected_cells_and_resumes(tmp_path):
    text = """
    [search]
    seeds = [7]
    [search.space]
    lr = [0.01, 0.2]
    """
    base = BASE.replace("seed = [0, 1]", "seed = [0]").split('[[axes.arm]]\nregularizer = "mixup"')[
        0
    ]
    sweep = load_sweep(write(tmp_path, text, base))
    results = ResultsDir(tmp_path / "out")
    _, final, _ = search_phases(sweep, results)
    assert final is None  # no trial has run: the selection is not known yet
    counts = run_sweep(sweep, results, progress=None)
    assert (counts["ok"], counts["failed"], counts["trials"]) == (3, 0, 2)
    trial_rows = ResultsDir(tmp_path / "out" / "search").runs()
    assert len(trial_rows) == 2 and {r["seed"] for r in trial_rows} == {"7"}
    with open(tmp_path / "out" / "search.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["selected"] for row in table].count("1") == 1
    best = max(trial_rows, key=lambda r: float(r["val_acc"]))
    chosen = next(row for row in table if row["selected"] == "1")
    assert float(chosen["value"]) == float(best["lr"])
    (final_row,) = results.runs()
    assert float(final_row["lr"]) == float(chosen["value"]) and final_row["seed"] == "0"
    # resumed: nothing runs again
    again = run_sweep(sweep, results, progress=None)
    assert (again["ok"], again["skipped"]) == (0, 3)
    # an edited search that selects other values must not pool its cells with these: refused
    # (its trials run and are kept; the final cells do not)
    other = load_sweep(write(tmp_path, text.replace("[0.01, 0.2]", "[0.5, 0.9]"), base))
    with pytest.raises(SearchError, match="selects other values than the cells already in"):
        run_sweep(other, results, progress=None)
    assert len(results.runs()) == 1
