"""Issue 12's cell side on tiny synthetic cells: the per-image outcomes reproduce the row's
numbers, every robustness metric refers to the same fixed subset, retained accuracy and
flip_rate_correct behave as defined, and outcomes/<run_id>.npz reaches the results folder."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import tiny_cell
import torch

from bench import robustness, train
from bench.results import OUTCOMES_DIR, ResultsDir, read_outcomes

TINY = tiny_cell.TINY.replace(epochs=1)


@pytest.fixture(scope="module")
def cell() -> tuple[train.CellResult, list[int]]:
    """One trained cell (shared by the tests below), recording the batch size of every
    perturbation the robustness phase applied."""
    seen: list[int] = []
    patch = pytest.MonkeyPatch()
    for name in ("flip_perturb", "occlude", "corrupt"):
        original = getattr(robustness, name)

        def recording(images, *args, _original=original, **kwargs):
            seen.append(images.shape[0])
            return _original(images, *args, **kwargs)

        patch.setattr(robustness, name, recording)
    try:
        result = train.train_cell(TINY, progress=False)
    finally:
        patch.undo()
    assert result.row["status"] == "ok", result.row["error"]
    return result, seen


def test_outcomes_reproduce_the_rows_numbers_exactly(cell) -> None:
    result, _ = cell
    out, row = result.outcomes, result.row
    assert {k: v.dtype for k, v in out.items()} == {
        "label": np.uint8, "pred": np.uint8, "conf": np.float16,
    }  # fmt: skip
    assert all(v.shape == (TINY.test_size,) for v in out.values())
    correct = out["pred"] == out["label"]
    assert correct.mean() == row["test_acc"]  # the same images, the same predictions
    # float16 rounds each confidence by at most 2**-11 (relative), so the mean moves less
    assert abs(out["conf"].astype(np.float64).mean() - row["test_mean_conf"]) < 2**-11
    assert (out["conf"] >= 0.1 - 2**-11).all() and (out["conf"] <= 1).all()  # >= 1/K
    # the first robustness_size outcomes are the robustness subset
    robust = correct[: TINY.robustness_size]
    assert robust.mean() == row["robust_clean_acc"]
    assert result.test_logits is None  # the logits stay opt-in (save_logits)


def test_every_robustness_metric_uses_the_same_subset(cell) -> None:
    result, seen = cell
    row = result.row
    assert seen == [TINY.robustness_size] * (2 + len(robustness.CORRUPTIONS))  # flip included
    assert row["occlusion_retained"] == pytest.approx(
        row["occlusion_acc"] / row["robust_clean_acc"]
    )
    assert row["corruption_retained"] == pytest.approx(
        row["corruption_acc"] / row["robust_clean_acc"]
    )
    for name in ("robust_clean_acc", "flip_rate", "flip_rate_correct"):
        assert 0.0 <= row[name] <= 1.0, name
    assert row["sweep_cells"] is None  # a single run


def test_outcomes_reach_the_results_folder_before_the_row(cell, tmp_path: Path) -> None:
    result, _ = cell
    result = pickle.loads(pickle.dumps(result))  # as a Ray or SLURM worker sends it back
    results = ResultsDir(tmp_path)
    with results.lock():
        results.write(result)
    path = tmp_path / OUTCOMES_DIR / f"{TINY.run_id}.npz"
    back = read_outcomes(path)
    assert all(np.array_equal(back[k], result.outcomes[k]) for k in back)
    assert (back["pred"] == back["label"]).mean() == result.row["test_acc"]
    assert path.stat().st_size < 2_000  # 300 images: a few bytes each, compressed


def test_retained_is_one_and_nothing_flips_when_perturbations_do_nothing(monkeypatch) -> None:
    identity = lambda images, *args, **kwargs: images.clone()  # noqa: E731
    for name in ("flip_perturb", "occlude", "corrupt"):
        monkeypatch.setattr(robustness, name, identity)
    row = train.train_cell(TINY.replace(robustness_size=0), progress=False).row
    assert row["status"] == "ok", row["error"]
    assert row["robust_clean_acc"] == row["test_acc"]  # robustness_size 0: the whole subset
    assert row["occlusion_retained"] == 1.0 and row["corruption_retained"] == 1.0
    assert row["occlusion_acc"] == row["corruption_acc"] == row["test_acc"]
    assert row["flip_rate"] == 0.0 and row["flip_rate_correct"] == 0.0


def test_flip_rate_correct_counts_only_correct_images_in_a_cell(monkeypatch) -> None:
    """A perturbation that changes the prediction of exactly the wrongly classified images
    moves flip_rate but leaves flip_rate_correct at 0."""
    labels: dict[str, torch.Tensor] = {}
    real_evaluate = train.Cell.evaluate

    def evaluate(self, images):
        logits = real_evaluate(self, images)
        if images.dtype != torch.uint8 and "wrong" in labels:  # a perturbed robustness pass
            wrong = labels["wrong"]
            logits[wrong] = logits[wrong].roll(1, dims=1)  # another argmax (no ties: random net)
        return logits

    real_flip = robustness.flip_perturb

    def flip(images, generator):
        return real_flip(images, generator) * 0 + images  # the images unchanged

    real_robustness = train.robustness_metrics

    def robustness_metrics(cell, fitted, progress=None):
        count = TINY.robustness_size
        pred = fitted.last.test_logits[:count].argmax(1)
        labels["wrong"] = pred != cell.splits.test_y[:count]
        return real_robustness(cell, fitted, progress)

    monkeypatch.setattr(train.Cell, "evaluate", evaluate)
    monkeypatch.setattr(robustness, "flip_perturb", flip)
    monkeypatch.setattr(train, "robustness_metrics", robustness_metrics)
    row = train.train_cell(TINY, progress=False).row
    assert row["status"] == "ok", row["error"]
    wrong_share = 1 - row["robust_clean_acc"]
    assert 0 < wrong_share < 1
    assert row["flip_rate"] == pytest.approx(wrong_share)
    assert row["flip_rate_correct"] == 0.0
    assert not math.isnan(row["occlusion_retained"])
