"""bench.arms: an arm's one label, scopes made from pairs and read back from search.csv's
columns, the legacy scope label read once, the column order that keeps each scope's own."""

from __future__ import annotations

import pytest

from bench.arms import (
    Arm,
    Scope,
    legacy_scope,
    scope_columns,
    scope_fields,
    scope_header,
    scope_of_row,
)
from bench.config import RunConfig
from bench.sweep import arm_label


def test_an_arms_label_sorts_its_parameters_and_is_the_sweeps():
    arm = Arm.of("cutmix", {"schedule": "staged", "alpha": 1.0})
    assert arm.label == "cutmix(alpha=1.0,schedule=staged)"
    assert Arm.of("none").label == "none" and Arm.of("none", {}) == Arm("none")
    assert arm == Arm.of("cutmix", {"alpha": 1.0, "schedule": "staged"})  # order is no identity
    assert arm != Arm.of("cutmix", {"alpha": 0.2, "schedule": "staged"})
    cell = RunConfig(regularizer="mixup", regularizer_params={"alpha": 0.2})
    assert arm_label(cell) == "mixup(alpha=0.2)"


def test_a_scope_reads_in_its_order_and_equals_in_any():
    scope = Scope.of([("protocol", "frozen"), ("train_per_class", 10), ("batch_size", 32)])
    assert scope.text == "protocol=frozen, train_per_class=10, batch_size=32"
    swapped = Scope.of([("train_per_class", 10), ("batch_size", 32), ("protocol", "frozen")])
    assert swapped == scope and hash(swapped) == hash(scope) and swapped.text != scope.text
    assert scope != Scope.of([("protocol", "frozen"), ("train_per_class", 100), ("batch_size", 32)])
    assert Scope().text == "" and Scope() == Scope.of([])
    assert (
        Scope(verbatim="extra[0] x") != Scope()
        and Scope(verbatim="extra[0] x").text == "extra[0] x"
    )


def test_scope_columns_keep_each_scopes_field_order_and_read_back():
    frozen = Scope.of([("protocol", "frozen"), ("train_size", 64)])
    head_first = Scope.of([("protocol", "head_first"), ("trainable_stages", 2), ("train_size", 64)])
    fields = scope_fields([frozen, head_first])
    assert fields == ["protocol", "trainable_stages", "train_size"]
    assert scope_fields([head_first, frozen]) == fields
    assert scope_fields([Scope(), Scope()]) == []  # one scope: no columns
    header = [*scope_header(fields), "arm", "trial"]
    assert header[:3] == ["scope.protocol", "scope.trainable_stages", "scope.train_size"]
    assert scope_columns(header) == header[:3]
    row = {**frozen.columns(fields), "arm": "none", "trial": "0"}
    assert row["scope.trainable_stages"] == ""  # the frozen scope leaves it alone
    read = scope_of_row(row, scope_columns(header))
    assert read == frozen and read.text == "protocol=frozen, train_size=64"
    assert scope_of_row({"arm": "none"}, []) == Scope()


@pytest.mark.parametrize(
    "label, pairs, shown",
    [
        ("protocol=(protocol=frozen) size=(train_per_class=10,batch_size=32)",
         [("protocol", "frozen"), ("train_per_class", "10"), ("batch_size", "32")],
         "protocol=frozen, train_per_class=10, batch_size=32"),
        ("lr=0.1 protocol=(protocol=head_first,trainable_stages=2)",
         [("lr", "0.1"), ("protocol", "head_first"), ("trainable_stages", "2")],
         "lr=0.1, protocol=head_first, trainable_stages=2"),
        ("", [], ""),
        ("extra[0] cutmix(alpha=1.0) (lr=0.1)", None, "extra[0] cutmix(alpha=1.0) (lr=0.1)"),
        ("a=(b=(c)) d=e", None, "a=(b=(c)) d=e"),
        ("a=(x,y=1)", None, "x, y=1"),  # a part without `=`: shown as the old reader showed it
    ],
)  # fmt: skip
def test_the_legacy_label_is_read_into_the_same_scope(label, pairs, shown):
    scope = legacy_scope(label)
    assert scope.text == shown
    if pairs is not None:
        assert scope == Scope.of(pairs) and scope.values == tuple(pairs) and not scope.verbatim
    else:
        assert scope.verbatim == shown and scope.values == ()
    assert scope_of_row({"scope": label, "scope.protocol": "frozen"}, ["scope.protocol"]) == scope
