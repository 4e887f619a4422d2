"""bench.search: the [search] table (checked before anything runs), its trials, the selection on
validation (never test), search.csv, and a search sweep run and resumed end to end."""

from __future__ import annotations

import csv
import dataclasses
import math
import textwrap
from pathlib import Path

import pytest

from bench import runner, search
from bench.arms import Scope
from bench.results import ResultsDir, ResultsError, format_value
from bench.runner import SearchError, run_sweep, search_phases
from bench.schema import SEARCH_COLUMNS
from bench.sweep import SweepError, load_sweep, parse_assignments, select

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
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    by_arm = {}
    for trial in trials:
        by_arm.setdefault(trial.arm.label, []).append(trial.values)
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
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    val = [0.3, 0.5] + [0.2, 0.4, 0.6, 0.1]  # none: lr 0.1 wins; mixup: lr 0.1 alpha 0.2 wins
    test = [0.9, 0.1] + [0.9, 0.9, 0.1, 0.9]  # test would pick the other trials
    chosen, table = search.select(sweep.search, trials, rows_for(trials, val, test=test))
    picked = sorted((t.arm.label, tuple(sorted(t.values.items()))) for t in chosen.values())
    assert picked == [("mixup(alpha=1.0)", (("alpha", 0.2), ("lr", 0.1))), ("none", (("lr", 0.1),))]
    assert [list(row) for row in table][0] == ["scope", *SEARCH_COLUMNS]
    selected = [row for row in table if row["selected"]]
    assert {(r["arm"], r["parameter"], r["value"], r["at_edge"]) for r in selected} == {
        ("none", "lr", 0.1, 1), ("mixup(alpha=1.0)", "lr", 0.1, 1),
        ("mixup(alpha=1.0)", "alpha", 0.2, 1),
    }  # fmt: skip
    assert all(r["at_edge"] == 0 for r in table if not r["selected"])  # only a selection is flagged
    # final cells: every seed of the group at the selected values; nothing left out
    final, _, _, missing = search.final_cells(
        sweep.search, sweep.cells, sweep.labels, sweep.scopes, chosen
    )
    assert missing == [] and len(final) == len(sweep.cells)
    assert {(c.regularizer, c.lr, c.regularizer_params.get("alpha")) for c in final} == {
        ("none", 0.1, None), ("mixup", 0.1, 0.2)
    }  # fmt: skip


def test_lower_is_better_metrics_and_interior_values_are_not_edges(tmp_path):
    text = GRID.replace("lr = [0.01, 0.1]", "lr = [0.01, 0.03, 0.1]").replace(
        "[search]", '[search]\nselect = "val_loss"'
    )
    sweep = load_sweep(write(tmp_path, text))
    trials = [
        t for t in search.trials(sweep.search, sweep.cells, sweep.scopes) if t.arm.label == "none"
    ]
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
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    rows = rows_for(trials, [0.3, 0.9, 0.5, 0.5, 0.5, 0.5])
    rows[1]["status"] = "failed"  # none, lr 0.1: the best val_acc, but failed
    rows = [row for row in rows if row["run_id"] not in {c.run_id for c in trials[2].cells}]
    chosen, table = search.select(sweep.search, trials, rows)
    none_choice = next(t for t in chosen.values() if t.arm.label == "none")
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
    final, _, _, missing = search.final_cells(
        sweep.search, sweep.cells, sweep.labels, sweep.scopes, chosen
    )
    assert {c.regularizer for c in final} == {"none"}
    assert len(missing) == 2 and all("mixup" in label for label in missing)


# ---------------------------------------------------------------------------------------------
# End to end: trials, search.csv, the selected cells, resume


def test_a_search_sweep_runs_trials_then_selected_cells_and_resumes(tmp_path):
    text = """
    [search]
    seeds = [7]
    extend_edges = false
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


# ---------------------------------------------------------------------------------------------
# Groups: data_seed pinned or following the seed, --only, arms the search does not touch

LR_ONLY = "[search]\nseeds = [7]\n[search.space]\nlr = [0.01, 0.1]\n"


def group_cells(sweep):
    return [[c.seed for c in group] for group in search.groups(sweep.search, sweep.cells)]


def trial_seeds(sweep):
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    return {
        (t.scope, t.arm, t.index, c.run_id, c.seed, c.data_seed) for t in trials for c in t.cells
    }


def test_a_pinned_data_seed_makes_one_group_per_arm_whatever_only_keeps(tmp_path):
    # data_seed = 0 with seeds 0, 1: seed 0's cell is the same cell as one whose data_seed
    # follows its seed; it must still share its arm's group (and its trials) with seed 1's
    pinned = load_sweep(
        write(tmp_path, LR_ONLY, BASE.replace("lr = 0.05", "lr = 0.05\ndata_seed = 0"))
    )
    assert group_cells(pinned) == [[0, 1], [0, 1]]
    trials = trial_seeds(pinned)
    assert len(trials) == 4 and {(seed, data_seed) for *_, seed, data_seed in trials} == {(7, 0)}
    for only in (["seed=0"], ["seed=1"], ["arm=none", "seed=0"]):
        subset = select(pinned, parse_assignments(only, "--only"))
        assert trial_seeds(subset) <= trials and trial_seeds(
            subset
        )  # the same trials, not new ones
    # data_seed following the seed: the trials' data_seed follows the search seed, also under --only
    follows = load_sweep(write(tmp_path, LR_ONLY))
    assert group_cells(follows) == [[0, 1], [0, 1]]
    assert {(s, d) for *_, s, d in trial_seeds(follows)} == {(7, 7)}
    only = select(follows, parse_assignments(["seed=1"], "--only"))
    assert trial_seeds(only) == trial_seeds(follows)


def test_a_data_seed_axis_splits_groups_with_distinct_scopes(tmp_path):
    base = BASE.replace('protocol = ["frozen"]', 'protocol = ["frozen"]\ndata_seed = [0, 5]')
    sweep = load_sweep(write(tmp_path, LR_ONLY, base))
    assert len(search.groups(sweep.search, sweep.cells)) == 4  # 2 arms x 2 data seeds
    assert all(len(g) == 2 for g in search.groups(sweep.search, sweep.cells))
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    # search.csv tells arm x scopes apart by (scope, arm): one group each
    assert len({(t.scope, t.arm) for t in trials}) == 4
    assert {(t.scope.text, t.cells[0].data_seed) for t in trials} == {
        ("protocol=frozen, data_seed=0", 0), ("protocol=frozen, data_seed=5", 5)
    }  # fmt: skip


def test_table_axes_give_scopes_without_the_arm_and_seed(tmp_path):
    base = BASE.replace(
        'protocol = ["frozen"]\n',
        "[[axes.size]]\ntrain_size = 64\nbatch_size = 32\n[[axes.size]]\ntrain_size = 96\n"
        'batch_size = 16\n[[axes.protocol]]\nprotocol = "frozen"\n',
    )
    sweep = load_sweep(write(tmp_path, LR_ONLY, base))
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    scopes = {(t.scope, t.arm) for t in trials}
    assert len(scopes) == 4 == len(search.groups(sweep.search, sweep.cells))
    assert {s for s, _ in scopes} == {
        Scope((("train_size", "64"), ("batch_size", "32"), ("protocol", "frozen"))),
        Scope((("train_size", "96"), ("batch_size", "16"), ("protocol", "frozen"))),
    }


def test_an_arm_the_search_does_not_touch_runs_as_it_is_without_trials(tmp_path):
    sweep = load_sweep(
        write(tmp_path, "[search]\nseeds = [7]\n[search.space]\nalpha = [0.2, 1.0]\n")
    )
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    assert {t.arm.label for t in trials} == {
        "mixup(alpha=1.0)"
    }  # no trial of `none` at its own values
    # every trial failed (no selection at all): the none cells still run, unchanged; mixup's not
    chosen, _ = search.select(sweep.search, trials, rows_for(trials, [0.5, 0.5], status="failed"))
    assert chosen == {}
    final, labels, _, missing = search.final_cells(
        sweep.search, sweep.cells, sweep.labels, sweep.scopes, chosen
    )
    assert final == [c for c in sweep.cells if c.regularizer == "none"]
    assert len(missing) == 2 and all("mixup" in label for label in missing)
    # --only the untouched arm: nothing to search
    none_only = select(sweep, parse_assignments(["arm=none"], "--only"))
    assert search.trials(none_only.search, none_only.cells, none_only.scopes) == []


# ---------------------------------------------------------------------------------------------
# More checks before anything runs


def test_cells_the_search_would_merge_into_one_are_refused(tmp_path):
    two_alphas = BASE + '[[axes.arm]]\nregularizer = "mixup"\nparams = { alpha = 0.2 }\n'
    with pytest.raises(SweepError) as error:
        load_sweep(write(tmp_path, "[search]\n[search.space]\nalpha = [0.2, 1.0]\n", two_alphas))
    message = str(error.value)
    assert "search.space.alpha:" in message and "arm=mixup(alpha=0.2)" in message
    assert "would run as one cell" in message
    extra_lr = BASE + '[[extra]]\nregularizer = "none"\nseed = 0\nprotocol = "frozen"\nlr = 0.3\n'
    with pytest.raises(SweepError, match=r"search.space.lr: cells .* differ only in lr"):
        load_sweep(write(tmp_path, LR_ONLY, extra_lr))
    # alpha searched with two arms that differ in more than alpha: fine
    other = BASE + '[[axes.arm]]\nregularizer = "cutmix"\nparams = { alpha = 0.2 }\n'
    assert load_sweep(write(tmp_path, "[search]\n[search.space]\nalpha = [0.2, 1.0]\n", other))


def test_set_of_a_searched_field_is_refused_and_others_are_not(tmp_path):
    path = write(tmp_path, LR_ONLY)
    with pytest.raises(SweepError, match=r"--set lr: \[search.space\] chooses 'lr' in every cell"):
        load_sweep(path, settings={"lr": 0.2})
    assert {c.epochs for c in load_sweep(path, settings={"epochs": 2}).cells} == {2}


# ---------------------------------------------------------------------------------------------
# Random draws and edges


class FixedDraw:
    """A random.Random stand-in whose uniform() returns one value."""

    def __init__(self, value):
        self.value = value

    def uniform(self, low, high):
        return self.value


def test_a_rounded_draw_stays_within_its_range():
    param = search.Param("unfreeze_at", True, low=0.1, high=0.9996)
    assert search._draw(param, FixedDraw(0.99955)) == 0.9996  # 3 digits: 1.0, outside the range
    assert search._draw(param, FixedDraw(0.123456)) == 0.123
    logp = search.Param("lr", True, low=0.001234, high=0.1, log=True)
    assert search._draw(logp, FixedDraw(math.log(0.0012341))) == 0.001234  # not 0.00123
    assert search._draw(logp, FixedDraw(math.log(0.0456789))) == 0.0457


def test_edges_of_linear_and_log_ranges_and_of_listed_values():
    linear = search.Param("momentum", True, low=0.5, high=0.99)
    assert search._at_edge(0.52, linear)  # 0.02 from the end: within 5% of 0.49
    assert not search._at_edge(0.7, linear)
    log = search.Param("lr", True, low=0.001, high=1.0, log=True)
    assert search._at_edge(0.0013, log) and not search._at_edge(0.03, log)
    assert not search._at_edge(0.5, search.Param("lr", True, low=0.0, high=10.0))
    # listed values (grid or random): only the smallest and largest listed
    listed = search.Param("weight_decay", True, values=tuple(float(v) for v in range(1, 101)))
    assert search._at_edge(100.0, listed) and search._at_edge(1.0, listed)
    assert not search._at_edge(99.0, listed)
    assert not search._at_edge(3.0, search.Param("lr", True, values=(3.0,)))


# ---------------------------------------------------------------------------------------------
# search.csv: read back, compared, merged; --retry-failed keeps a recorded selection


def selection_table(tmp_path, scores):
    sweep = load_sweep(write(tmp_path, GRID))
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    return sweep, trials, search.select(sweep.search, trials, rows_for(trials, scores))[1]


def test_search_csv_round_trips_and_changes_are_found(tmp_path):
    text = GRID.replace("lr = [0.01, 0.1]", "lr = [1e-05, 0.30000000000000004]")
    sweep = load_sweep(write(tmp_path, text))
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    _, table = search.select(sweep.search, trials, rows_for(trials, [0.1, 0.9, 0.1, 0.2, 0.3, 0.9]))
    results = ResultsDir(tmp_path / "out")
    with results.lock():
        results.write_search(table)
    recorded = results.search_rows()
    assert [r["value"] for r in recorded if r["parameter"] == "lr"][:2] == [
        "1e-05",
        "0.30000000000000004",
    ]
    assert runner._changed_selection(recorded, table) == ""
    _, other = search.select(sweep.search, trials, rows_for(trials, [0.9, 0.1, 0.1, 0.2, 0.3, 0.9]))
    assert runner._changed_selection(recorded, other) == (
        "none in protocol=frozen: {'lr': 0.30000000000000004} then, {'lr': 1e-05} now"
    )
    # --only arm=none later: search.csv keeps mixup's rows
    none_only = [row for row in other if row["arm"] == "none"]
    merged = runner._merge_search(recorded, none_only)
    assert [r for r in merged if r["arm"] != "none"] == [r for r in recorded if r["arm"] != "none"]
    assert [r for r in merged if r["arm"] == "none"] == none_only


def test_a_legacy_search_csv_is_resumed_and_rewritten_with_scope_columns(tmp_path):
    """search.csv before issue 25 (one `scope` label): its selection is recognised on resume,
    and rewritten in the column format; a label of no `name=value` form is dropped then."""
    sweep, trials, table = selection_table(tmp_path, [0.3, 0.5, 0.2, 0.4, 0.6, 0.1])
    results = ResultsDir(tmp_path / "out")
    with results.lock():
        results.write_search(table)
    path = tmp_path / "out" / "search.csv"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:2] == ["scope.protocol", "arm"] and "scope" not in rows[0]
    legacy = [{"scope": f"protocol={row.pop('scope.protocol')}", **row} for row in rows]
    legacy[-1]["scope"] = "extra[0] mixup(alpha=0.2) (lr=0.1)"  # no typed form: dropped below
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(legacy[0]))
        writer.writeheader()
        writer.writerows(legacy)
    recorded = results.search_rows()
    assert recorded[0]["scope"] == trials[0].scope == Scope((("protocol", "frozen"),))
    assert runner._changed_selection(recorded, table) == ""
    merged = runner._merge_search(recorded, table[:2])
    assert len(merged) == len(table) - 1 and all(not r["scope"].verbatim for r in merged)
    with results.lock():
        results.write_search(merged)
    assert results.search_rows() == merged_text(merged)
    with open(path, newline="") as handle:
        assert next(csv.reader(handle))[:2] == ["scope.protocol", "arm"]
    with results.lock(), pytest.raises(ValueError, match="expected a Scope"):
        results.write_search([{**table[0], "scope": recorded[-1]["scope"]}])  # verbatim: refused


def merged_text(rows):
    """search.csv rows as search_rows reads them back: the scope typed, the rest text."""
    return [{k: v if k == "scope" else format_value(v) for k, v in row.items()} for row in rows]


@pytest.mark.parametrize(
    ("column", "text", "message"),
    [
        ("selected", None, "no column selected"),
        ("selected", "yes", "line 3: selected 'yes'"),
        ("value", "lots", "line 3: selected '1', value 'lots'"),
        ("value", "", "value ''"),
        ("value", "nan", "value 'nan'"),
    ],
)
def test_a_damaged_search_csv_is_refused_naming_the_file(tmp_path, column, text, message):
    _, _, table = selection_table(tmp_path, [0.3, 0.5, 0.2, 0.4, 0.6, 0.1])
    results = ResultsDir(tmp_path / "out")
    with results.lock():
        results.write_search(table)
    assert len(results.search_rows()) == len(table)
    path = tmp_path / "out" / "search.csv"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if text is None:  # the column is gone
        rows = [{k: v for k, v in row.items() if k != column} for row in rows]
    else:  # line 3: none, lr 0.1, the selected trial
        assert (rows[1]["arm"], rows[1]["selected"]) == ("none", "1")
        rows[1][column] = text
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ResultsError, match=message) as error:
        results.search_rows()
    assert str(path) in str(error.value)


def write_runs(folder: Path, rows: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "runs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_retry_failed_keeps_a_recorded_selection_and_retries_groups_without_one(
    tmp_path, monkeypatch
):
    sweep, trials, _ = selection_table(tmp_path, [0.0] * 6)
    rows = rows_for(trials, [0.3, 0.5, 0.2, 0.4, 0.6, 0.1])
    none_failed = trials[0].cells[0].run_id  # none, lr 0.01: failed; none selects lr 0.1
    for row in rows:
        if row["run_id"] == none_failed or row["run_id"] in {
            c.run_id for t in trials[2:] for c in t.cells
        }:
            row["status"] = "failed"  # ... and every mixup trial failed: no selection
    out = tmp_path / "out"
    write_runs(out / "search", rows)
    _, table = search.select(sweep.search, trials, ResultsDir(out / "search").runs())
    assert {r["arm"] for r in table if r["selected"]} == {"none"}
    with ResultsDir(out).lock() as results:
        results.write_search(table)
    given = []

    def fake_run_sweep(phase, folder, **options):  # records what each phase would run
        given.append({c.run_id for c in runner.cells_to_run(phase, folder.runs(), True)})
        return {"ok": 0, "failed": 0, "skipped": 0}

    monkeypatch.setattr(runner, "run_sweep", fake_run_sweep)
    runner._run_search(sweep, ResultsDir(out), retry_failed=True)
    mixup_trials = {c.run_id for t in trials[2:] for c in t.cells}
    assert given[0] == mixup_trials  # not none's failed trial: its selection is recorded
    assert none_failed not in given[0]


def test_status_of_a_search_sweep_with_an_empty_partial_failed_or_broken_search_folder(
    tmp_path, capsys
):
    from bench.cli.sweep import main

    path = write(tmp_path, GRID)
    sweep = load_sweep(path)
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    out = tmp_path / "out"
    status = ["status", str(path), "--results-dir", str(out)]
    assert main(status) == 0  # no search folder yet
    printed = capsys.readouterr().out
    assert "6 cells: 0 done, 0 failed, 6 remaining" in printed  # the trial cells
    assert "once the trials are done" in printed
    write_runs(out / "search", rows_for(trials[:2], [0.3, 0.5]))  # partial: none's trials
    assert main(status) == 0
    assert "6 cells: 2 done, 0 failed, 4 remaining" in capsys.readouterr().out
    write_runs(out / "search", rows_for(trials, [0.5] * 6, status="failed"))  # every trial failed
    dry_run = ["run", str(path), "--results-dir", str(out), "--dry-run"]
    assert main(status) == 0 and main(dry_run) == 0
    printed = capsys.readouterr().out
    assert printed.count("not run (every trial of its arm x scope failed)") == 2 * len(sweep.cells)
    assert "0 cells: 0 done" in printed
    (out / "search" / "runs.csv").unlink()
    (out / "search").rmdir()
    (out / "search").write_text("not a folder")
    assert main(status) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "search: not a folder" in err


def test_a_killed_search_csv_write_is_cleaned_up_at_lock_and_a_users_file_is_not(tmp_path):
    (tmp_path / ".tmp-search.csv.k1ll3d_0").write_text("half a search.csv")
    (tmp_path / ".tmp-search.csv.notes").write_text("a user's file")
    (tmp_path / ".tmp-search.csv.ABCDEFGH").write_text("not mkstemp's name either")
    with ResultsDir(tmp_path).lock():
        pass
    assert not (tmp_path / ".tmp-search.csv.k1ll3d_0").exists()
    assert (tmp_path / ".tmp-search.csv.notes").exists()
    assert (tmp_path / ".tmp-search.csv.ABCDEFGH").exists()


def test_a_sweep_keeps_one_scope_per_cell_through_only(tmp_path):
    sweep = load_sweep(write(tmp_path, LR_ONLY))
    assert len(sweep.scopes) == len(sweep.cells) == 4
    assert set(sweep.scopes) == {Scope((("protocol", "frozen"),))}  # arm and seed left out
    only = select(sweep, parse_assignments(["arm=mixup(alpha=1.0)"], "--only"))
    assert [c.regularizer for c in only.cells] == ["mixup"] * 2 and len(only.scopes) == 2
    with pytest.raises(ValueError, match="a label and a scope per cell: 1 cells, 4 labels"):
        dataclasses.replace(sweep, cells=sweep.cells[:1])


# ---------------------------------------------------------------------------------------------
# Issue 23: a grid extends one step past an edge; the selected margin's standard error


def _trial_rows(trials, scores, val_size=500):
    """Runs.csv rows (strings) of `trials`, each cell's val_acc from `scores[trial.index]` (a
    list: one value per search seed)."""
    return [{"run_id": c.run_id, "status": "ok", "val_acc": repr(score), "val_size": str(val_size)}
            for t in trials for c, score in zip(t.cells, scores[t.index], strict=True)]  # fmt: skip


def _grid_sweep(tmp_path, space, seeds="[7, 8]", extra=""):
    text = f"[search]\nseeds = {seeds}\n{extra}[search.space]\nlr = {space}\n"
    base = BASE.replace("seed = [0, 1]", "seed = [0]").split('[[axes.arm]]\nregularizer = "mixup"')[
        0
    ]
    return load_sweep(write(tmp_path, text, base))


def test_a_best_value_at_the_top_of_a_log_grid_gets_one_trial_a_step_past_it(tmp_path):
    sweep = _grid_sweep(tmp_path, "[0.01, 0.03, 0.1, 0.3, 1.0]")
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    rising = {i: [0.1 * i, 0.1 * i + 0.01] for i in range(5)}  # the largest lr is best
    (extra,) = search.extensions(sweep.search, trials, _trial_rows(trials, rising))
    assert extra.extended and extra.values == {"lr": 3.33}  # 1.0 x (1.0 / 0.3), 3 digits
    assert [c.seed for c in extra.cells] == [7, 8] and extra.index == 5
    assert all(c.lr == 3.33 for c in extra.cells)
    # once run, nothing more is added; the widened range is recorded, and where the extension
    # wins its value is at the new edge, where it loses the old edge is inside the range
    for won, at_edge in ((True, 1), (False, 0)):
        scores = {**rising, 5: [0.9, 0.91] if won else [0.0, 0.0]}
        rows = _trial_rows([*trials, extra], scores)
        assert search.extensions(sweep.search, [*trials, extra], rows) == []
        chosen, table = search.select(sweep.search, [*trials, extra], rows)
        selected = next(row for row in table if row["selected"])
        assert selected["value"] == (3.33 if won else 1.0) and selected["at_edge"] == at_edge
        assert {row["high"] for row in table} == {3.33} and {row["low"] for row in table} == {0.01}
        assert [row["extended"] for row in table] == [0, 0, 0, 0, 0, 1]


def test_a_best_value_inside_the_grid_or_a_bound_breaking_step_adds_no_trial(tmp_path):
    sweep = _grid_sweep(tmp_path, "[0.01, 0.1, 1.0]")
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    middle = {0: [0.1, 0.1], 1: [0.5, 0.5], 2: [0.2, 0.2]}
    assert search.extensions(sweep.search, trials, _trial_rows(trials, middle)) == []
    bottom = {0: [0.5, 0.5], 1: [0.2, 0.2], 2: [0.1, 0.1]}
    (extra,) = search.extensions(sweep.search, trials, _trial_rows(trials, bottom))
    assert extra.values == {"lr": 0.001}
    too_far = _grid_sweep(tmp_path, "[1.0, 8.0]")  # 8 x 8 = 64 > lr's bound of 10
    trials = search.trials(too_far.search, too_far.cells, too_far.scopes)
    top = {0: [0.1, 0.1], 1: [0.5, 0.5]}
    assert search.extensions(too_far.search, trials, _trial_rows(trials, top)) == []
    off = _grid_sweep(tmp_path, "[0.01, 0.1, 1.0]", extra="extend_edges = false\n")
    trials = search.trials(off.search, off.cells, off.scopes)
    assert search.extensions(off.search, trials, _trial_rows(trials, bottom)) == []


def test_extend_edges_must_be_true_or_false(tmp_path):
    with pytest.raises(SweepError, match=r"search.extend_edges.*got 'yes'; give true or false"):
        _grid_sweep(tmp_path, "[0.01, 0.1]", extra='extend_edges = "yes"\n')


def test_the_selected_margin_over_the_runner_up_has_a_paired_standard_error(tmp_path):
    sweep = _grid_sweep(tmp_path, "[0.01, 0.1, 1.0]", seeds="[7, 8, 9]")
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    scores = {0: [0.30, 0.32, 0.34], 1: [0.40, 0.40, 0.46], 2: [0.38, 0.39, 0.41]}
    _, table = search.select(sweep.search, trials, _trial_rows(trials, scores))
    (selected,) = [row for row in table if row["selected"]]
    differences = [0.02, 0.01, 0.05]  # best (lr 0.1) minus runner-up (lr 1.0), per seed
    mean = sum(differences) / 3
    expected = (sum((d - mean) ** 2 for d in differences) / 2 / 3) ** 0.5
    assert selected["margin_se"] == pytest.approx(expected)
    assert all(row["margin_se"] is None for row in table if not row["selected"])
    # one seed: the binomial bound over the validation images
    one = _grid_sweep(tmp_path, "[0.01, 0.1]", seeds="[7]")
    trials = search.trials(one.search, one.cells, one.scopes)
    _, table = search.select(one.search, trials, _trial_rows(trials, {0: [0.4], 1: [0.5]}))
    (selected,) = [row for row in table if row["selected"]]
    assert selected["margin_se"] == pytest.approx(((0.25 + 0.24) / 500) ** 0.5)


def test_a_search_sweep_runs_its_extension_trial_and_resumes(tmp_path):
    sweep = _grid_sweep(tmp_path, "[0.001, 0.002]", seeds="[7]")  # two values: both edges
    results = ResultsDir(tmp_path / "out")
    counts = run_sweep(sweep, results, progress=None)
    assert (counts["ok"], counts["failed"], counts["trials"]) == (4, 0, 3)
    with open(tmp_path / "out" / "search.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["extended"] for row in table] == ["0", "0", "1"]
    assert float(table[2]["value"]) in (0.0005, 0.004)  # a step past whichever edge won
    _, final, _ = search_phases(sweep, results)  # status agrees with what ran
    assert final is not None and len(final.cells) == 1
    again = run_sweep(sweep, results, progress=None)
    assert (again["ok"], again["skipped"]) == (0, 4)


def test_trial_cells_measure_less_besides_validation_and_only_that(tmp_path):
    sweep = _grid_sweep(tmp_path, "[0.01, 0.1]", extra="[search.trial_cells]\ntest_size = 8\n")
    trials = search.trials(sweep.search, sweep.cells, sweep.scopes)
    assert {c.test_size for t in trials for c in t.cells} == {8}
    assert {c.test_size for c in sweep.cells} == {32}  # the reported cells keep theirs
    chosen, _ = search.select(
        sweep.search, trials, _trial_rows(trials, {0: [0.5] * 2, 1: [0.4] * 2})
    )
    final, *_ = search.final_cells(sweep.search, sweep.cells, sweep.labels, sweep.scopes, chosen)
    assert {c.test_size for c in final} == {32} and {c.lr for c in final} == {0.01}
    with pytest.raises(SweepError, match=r"search.trial_cells.lr.*only what it measures besides "
                       r"validation: test_size, robustness_size, train_eval_size, composite_size"):  # fmt: skip
        _grid_sweep(tmp_path, "[0.01, 0.1]", extra="[search.trial_cells]\nlr = 0.5\n")
