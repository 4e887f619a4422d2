"""Issue 28, two objects in one image: the composites (bench.robustness.two_object_composites),
their scores (bench.metrics.two_object_scores) and a real tiny cell that measures them on
shrunk images (object_fraction 0.25)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from tiny_cell import TINY

from bench import metrics, robustness, train
from bench.results import ResultsDir


def test_scores_of_hand_made_logits() -> None:
    a, b = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0])
    # the two true classes on top, evenly: recall 1, balance 0.5
    even = torch.tensor([[5.0, 5.0, 0.0], [0.0, 5.0, 5.0], [5.0, 0.0, 5.0]])
    scores = metrics.two_object_scores(even, a, b)
    assert scores["recall"] == 1.0 and scores["balance"] == pytest.approx(0.5)
    p = math.exp(5) / (2 * math.exp(5) + 1)
    assert scores["mass"] == pytest.approx(2 * p)
    # a one-hot on the first class (the second below a third): recall 0, balance 0
    one_hot = torch.tensor([[100.0, -100.0, 0.0], [0.0, 100.0, -100.0], [-100.0, 0.0, 100.0]])
    scores = metrics.two_object_scores(one_hot, a, b)
    assert scores["recall"] == 0.0
    assert scores["balance"] == pytest.approx(0.0, abs=1e-40)
    assert scores["mass"] == pytest.approx(1.0)
    # one of three right (no ties): the first composite puts 0.75 / 0.25 on its two classes,
    # the others a third class on top and e : 1 between theirs
    mixed = torch.tensor([[math.log(3), 0.0, -50.0], [9.0, 1.0, 0.0], [0.0, 9.0, 1.0]])
    scores = metrics.two_object_scores(mixed, a, b)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["balance"] == pytest.approx(
        (0.25 + 2 / (1 + math.e)) / 3, rel=1e-6
    )  # float32 logits


def test_scores_refuse_equal_labels_and_non_finite_logits() -> None:
    with pytest.raises(ValueError, match="two different labels"):
        metrics.two_object_scores(torch.zeros(2, 3), torch.tensor([0, 1]), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="NaN"):
        bad = torch.tensor([[math.nan, 0.0, 0.0]])
        metrics.two_object_scores(bad, torch.tensor([0]), torch.tensor([1]))


def test_composites_pair_different_classes_left_and_right_deterministically() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 0, 0, 2, 1])
    images = labels.view(-1, 1, 1, 1).expand(-1, 3, 4, 4).to(torch.uint8) * 10 + torch.arange(
        4, dtype=torch.uint8
    )  # an image's value says its class; columns 0..3
    out, left, right = robustness.two_object_composites(images, labels, 7)
    again = robustness.two_object_composites(images, labels, 7)
    assert all(torch.equal(x, y) for x, y in zip((out, left, right), again, strict=True))
    assert out.shape == (7, 3, 4, 4) and out.dtype == torch.uint8
    assert bool((left != right).all())  # always two different classes
    assert torch.equal(out[:, 0, 0, :2], (left * 10).view(-1, 1) + torch.arange(2))
    assert torch.equal(out[:, 0, 0, 2:], (right * 10).view(-1, 1) + torch.arange(2, 4))
    # each left image is a distinct test image, its partner the next of another class in the
    # seeded order
    order = torch.randperm(10, generator=torch.Generator().manual_seed(robustness.COMPOSITE_SEED))
    assert torch.equal(left, labels[order[:7]])
    for i in range(7):
        j = next(
            order[(i + k) % 10]
            for k in range(1, 10)
            if labels[order[(i + k) % 10]] != labels[order[i]]
        )
        assert int(right[i]) == int(labels[j])
    # more composites asked than images: one per image
    assert len(robustness.two_object_composites(images, labels, 50)[1]) == 10


def test_one_class_fails_with_the_fix() -> None:
    with pytest.raises(ValueError, match="at least two classes.*composite_size = 0"):
        robustness.two_object_composites(
            torch.zeros(5, 3, 4, 4), torch.zeros(5, dtype=torch.long), 3
        )


def test_one_class_test_set_fails_preflight_and_the_cell_before_training(monkeypatch) -> None:
    raw = dict(train.load_raw(TINY))
    raw["test_y"] = np.zeros_like(raw["test_y"])
    monkeypatch.setattr(train, "load_raw", lambda cfg: raw)
    cfg = dataclasses.replace(TINY, composite_size=50, test_size=0)  # the whole test set
    with pytest.raises(ValueError, match="at least two classes"):
        train.preflight(cfg)
    calls = []
    monkeypatch.setattr(train, "fit", lambda *a, **k: calls.append(a))
    with pytest.raises(ValueError, match="at least two classes"):
        train.train_cell(cfg)
    assert not calls  # never trained
    train.preflight(cfg.replace(composite_size=0))  # no composites: the same data is fine


def test_a_tiny_cell_on_shrunk_images_measures_two_objects(tmp_path) -> None:
    cfg = dataclasses.replace(TINY, object_fraction=0.25, composite_size=100)
    result = train.train_cell(cfg)
    row = result.row
    assert row["status"] == "ok", row.get("error")
    assert row["object_fraction"] == 0.25 and row["composite_size"] == 100
    assert 0 <= row["composite_recall"] <= 1 and 0 <= row["composite_mass"] <= 1
    assert 0 <= row["composite_balance"] <= 0.5
    assert row["test_acc"] > 0.2  # learned something from the shrunk images (chance is 0.1)
    plain_result = train.train_cell(TINY)  # the default: no composites, the images as loaded
    plain = plain_result.row
    with ResultsDir(tmp_path).lock() as results:  # the writer takes both rows
        results.write(result)
        results.write(plain_result)
        assert results.finished_ids() == {cfg.run_id, TINY.run_id}
    assert plain["object_fraction"] == 1.0 and plain["composite_size"] == 0
    assert plain["composite_recall"] is None and plain["run_id"] == TINY.run_id
    assert plain["test_acc"] != row["test_acc"]
