"""Issue 12, report side: outcome files (two-level bootstrap; hostile files: test_outcomes.py),
derived ECE parts (their arithmetic: test_derive.py),
the who-wins figure first, schedules at step resolution, incomplete sweeps, unconverged arms,
the unfreeze step, open-ended protocols."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest
from report_fixtures import PROTOCOL_TEST_ACC, make_results

from bench.report import build_report, figures, verdicts
from bench.report.load import load_results

ARMS = [("none", "constant"), ("cutmix", "constant"), ("cutmix", "staged")]
IMAGES = 300  # per seed: the image-level interval of a 2 pp effect then spans about +-4 pp


def write_outcomes(folder, runs: pd.DataFrame, fixed: bool = True) -> None:
    """One outcomes file per ok cell: the same test labels for both arms of a seed (fixed: for
    every seed, as the fixtures' one data_seed says), predictions correct with probability
    test_acc."""
    (folder / "outcomes").mkdir(exist_ok=True)
    for _, row in runs[runs["status"] == "ok"].iterrows():
        labels = np.random.default_rng(0 if fixed else int(row["seed"])).integers(0, 10, IMAGES)
        rng = np.random.default_rng(zlib.crc32(str(row["run_id"]).encode()))  # not hash(): salted
        right = rng.random(IMAGES) < row["test_acc"]
        pred = np.where(right, labels, (labels + 1) % 10)
        conf = rng.uniform(0.3, 1.0, IMAGES)
        np.savez(folder / "outcomes" / f"{row['run_id']}.npz", label=labels.astype(np.uint8),
                 pred=pred.astype(np.uint8), conf=conf.astype(np.float16))  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A sweep with a new protocol, sweep_cells (3 cells missing), converged, unfreeze_step and
    outcome files (one of them hostile)."""
    folder = tmp_path_factory.mktemp("issue12")
    PROTOCOL_TEST_ACC.setdefault("head_first", 0.78)
    runs = make_results(folder / "results", arms=ARMS, protocols=("frozen", "head_first"))
    runs["sweep_cells"] = len(runs) + 3
    runs["converged"] = np.where((runs["regularizer"] == "cutmix") & (runs["seed"] == 0), 0, 1)
    runs["unfreeze_step"] = np.where(runs["protocol"] == "head_first", 31, np.nan)
    runs.to_csv(folder / "results" / "runs.csv", index=False)
    write_outcomes(folder / "results", runs)
    hostile = runs["run_id"].iloc[-1]
    (folder / "results" / "outcomes" / f"{hostile}.npz").write_bytes(b"PK\x03\x04 not a zip")
    index = build_report(folder / "results", folder / "report")
    return folder, runs, index, hostile


def test_who_wins_is_the_first_figure_on_the_page(report):
    folder, _, index, _ = report
    page = index.read_text()
    assert (folder / "report" / "figures" / "who_wins.png").is_file()
    assert page.index("who_wins.png") < page.index('<h2 id="setup"') < page.index("gap.png")
    md = (folder / "report" / "report.md").read_text()
    assert md.index("who_wins.png") < md.index("## Setup")


def test_missing_cells_unconverged_arms_and_new_protocols(report):
    _, _, index, _ = report
    page = index.read_text()
    assert "3 of its 21 cells have no row yet" in page
    assert "21 (3 missing)" in page
    assert "Unconverged cells" in page and "cutmix (2 of 6)" in page
    assert "cutmix (staged) (2 of 6)" in page and "none (" not in page.split("Unconverged")[1][:80]
    claims = pd.read_csv(index.parent / "claims.csv", keep_default_na=False)
    scopes = set(claims.loc[claims["claim_id"] == "cutmix_reduces_gap", "scope"])
    assert scopes == {"protocol=frozen", "protocol=head_first"}


def test_outcome_files_give_two_level_intervals_and_a_bad_one_is_refused(report):
    _, runs, index, hostile = report
    page = index.read_text()
    assert "1 outcomes file(s) refused" in page and hostile in page
    assert "cover seeds only" not in page  # there are outcome files
    claims = pd.read_csv(index.parent / "claims.csv")
    frozen = claims[(claims["claim_id"] == "cutmix_improves_test_acc")
                    & (claims["scope"] == "protocol=frozen")].iloc[0]  # fmt: skip
    assert frozen["ci_images_low"] < frozen["effect"] < frozen["ci_images_high"]
    # 300 images per seed: the image-level interval is far wider than the seeds' spread
    assert frozen["ci_images_high"] - frozen["ci_images_low"] > frozen["ci_high"] - frozen["ci_low"]
    assert frozen["verdict"] != "supported"  # the image-level interval covers 0 at 2 pp, 300 images
    ece_over = claims[claims["claim_id"] == "cutmix_reduces_overconfidence"]
    assert ece_over["ci_images_low"].notna().any()
    gap = claims[claims["claim_id"] == "cutmix_reduces_gap"]
    assert gap["ci_images_low"].isna().all()  # train accuracy has no outcome file
    # one test set for every seed: the image-level interval applies, and the page says so
    assert (frozen["test_images"], frozen["sd_seed"]) == ("fixed", frozen["sd"])
    assert frozen["sd_images"] > 0
    assert "the same images (a test set fixed across seeds)" in page


def test_test_images_drawn_per_seed_are_not_resampled_again(tmp_path):
    # data_seed follows seed: the seed spread holds the image sampling; no double count
    runs = make_results(tmp_path, arms=ARMS[:2], protocols=("frozen",))
    runs["data_seed"], runs["test_size"] = runs["seed"], IMAGES
    runs.to_csv(tmp_path / "runs.csv", index=False)
    write_outcomes(tmp_path, runs, fixed=False)
    table = verdicts.evaluate_claims(load_results(tmp_path))
    row = table[table["claim_id"] == "cutmix_improves_test_acc"].iloc[0]
    assert row["test_images"] == "per seed"
    assert np.isnan(row["ci_images_low"]) and np.isnan(row["ci_images_high"])
    # 300 images: about 3 pp of image noise per seed, far above the fixture's seed pattern
    assert 0.01 < row["sd_images"] < 0.06
    assert row["sd_seed"] == pytest.approx(np.sqrt(max(row["sd"] ** 2 - row["sd_images"] ** 2, 0)))
    gap = table[table["claim_id"] == "cutmix_reduces_gap"].iloc[0]
    assert gap["test_images"] == "per seed" and np.isnan(gap["sd_images"])  # no outcome file


def test_mismatched_labels_skip_the_image_interval_with_a_note(tmp_path):
    runs = make_results(tmp_path, arms=ARMS[:2], protocols=("frozen",))
    write_outcomes(tmp_path, runs)
    first = runs[(runs["regularizer"] == "cutmix") & (runs["seed"] == 1)]["run_id"].iloc[0]
    with np.load(tmp_path / "outcomes" / f"{first}.npz") as file:
        arrays = dict(file)
    arrays["label"] = (arrays["label"] + 1) % 10
    np.savez(tmp_path / "outcomes" / f"{first}.npz", **arrays)
    table = verdicts.evaluate_claims(load_results(tmp_path))
    row = table[table["claim_id"] == "cutmix_improves_test_acc"].iloc[0]
    assert np.isnan(row["ci_images_low"]) and "different test labels" in row["note"]


def test_ece_over_matches_the_committed_ece_on_a_fixture(tmp_path):
    make_results(tmp_path, arms=ARMS[:2], protocols=("frozen",))
    ok = load_results(tmp_path).ok
    assert (ok["ece_over"] >= 0).all() and (ok["ece_under"] >= 0).all()
    cutmix = ok[ok["regularizer"] == "cutmix"]
    assert (cutmix["ece_under"] > cutmix["ece_over"]).all()  # planted under-confident


def test_schedule_is_drawn_at_step_resolution():
    params = {"prob": 1.0, "schedule": "staged",
              "stages": [[0.0, 0.0, 0.0], [0.3, 1.0, 0.3], [0.7, 1.0, 1.0]]}  # fmt: skip
    cell = pd.Series({"regularizer_params": json.dumps(params), "schedule": "staged",
                      "epochs": 3, "train_size": 2000, "batch_size": 128})  # fmt: skip
    fraction, prob, strength = figures.schedule_curve(cell)
    assert len(fraction) == 45  # 3 epochs x 15 full batches: every optimizer step
    switch = int(np.argmax(prob > 0))
    assert switch == 14 and fraction[switch] == pytest.approx(14 / 45)  # ceil(0.3 x 45)
    assert prob[:14].max() == 0  # the off stage is there, not averaged away
    assert strength[14] == pytest.approx(0.3) and strength[-1] == 1.0
    broken = cell.copy()
    broken["regularizer_params"] = '{"stages": "nonsense"}'
    assert figures.schedule_curve(broken) is None


def test_unfreeze_step_on_the_epoch_axis(report):
    folder, _, _, _ = report
    results = load_results(folder / "results")
    # 2000 images / 128 = 15 steps per epoch: step 31 is just past the end of epoch 2
    assert figures.unfreeze_epochs(results, "head_first", "") == [pytest.approx(31 / 15)]
    assert figures.unfreeze_epochs(results, "frozen", "") == []


def test_committed_like_results_without_new_columns_say_unknown(tmp_path):
    make_results(tmp_path / "results", arms=ARMS[:2], protocols=("frozen",), seeds=(0, 1))
    results = load_results(tmp_path / "results")
    assert "sweep_cells" not in results.measured and not results.outcomes
    from bench.report import build

    assert build.missing_cells(results) is None
    assert "unknown" in build._sweep_size(results)


def test_staged_cells_before_the_batchnorm_fix_are_named(tmp_path):
    runs = make_results(tmp_path, arms=ARMS[:2], protocols=("frozen", "staged"))
    runs["bn"] = ""  # results written before issue 13 have no bn value
    runs.to_csv(tmp_path / "runs.csv", index=False)
    staged = int(((runs["protocol"] == "staged") & (runs["status"] == "ok")).sum())
    staged_all = int((runs["protocol"] == "staged").sum())
    notes = " ".join(load_results(tmp_path).notes)
    assert f"{staged_all} staged cell(s) ran before the BatchNorm fix" in notes and staged > 0
    runs["bn"] = np.where(runs["protocol"] == "staged", "frozen", "")
    runs.to_csv(tmp_path / "runs.csv", index=False)
    assert "BatchNorm fix" not in " ".join(load_results(tmp_path).notes)  # recorded: no note


def test_data_seed_following_seed_pairs_cells_instead_of_splitting_scopes(tmp_path):
    runs = make_results(tmp_path, arms=ARMS[:2], protocols=("frozen",))
    plain = load_results(tmp_path).scopes
    runs["data_seed"] = runs["seed"]  # the presets: each seed draws its own subset
    runs.to_csv(tmp_path / "runs.csv", index=False)
    results = load_results(tmp_path)
    assert results.scopes == plain == ["protocol=frozen"]
    table = verdicts.evaluate_claims(results)
    row = table[table["claim_id"] == "cutmix_improves_test_acc"].iloc[0]
    assert row["n"] >= 2  # the seeds pair within the one scope


def test_cells_that_lose_what_they_learned_are_named_and_steady_ones_are_not(tmp_path):
    runs = make_results(tmp_path, arms=ARMS[:2], protocols=("frozen", "staged"))
    epochs = pd.read_csv(tmp_path / "epochs.csv")
    clean = build_report(tmp_path, tmp_path / "before").read_text()
    assert "fell by more than" not in clean  # the fixture's curves only rise
    victim = runs[(runs["protocol"] == "staged") & (runs["status"] == "ok")]["run_id"].iloc[0]
    last = epochs["epoch"] == epochs.loc[epochs["run_id"] == victim, "epoch"].max()
    epochs.loc[(epochs["run_id"] == victim) & last, "val_acc"] = 0.05
    epochs.to_csv(tmp_path / "epochs.csv", index=False)
    page = build_report(tmp_path, tmp_path / "after").read_text()
    staged = int(((runs["protocol"] == "staged") & (runs["status"] == "ok")).sum())
    assert f"fell by more than 5 pp between two evaluations: staged (1 of {staged})" in page
