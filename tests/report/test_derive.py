"""bench/report/derive.py: the derived metrics and the labels' orders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.arms import Arm
from bench.report.derive import calibration_parts, column_titles, scopes, variants


def test_ece_parts_add_up_to_the_binned_ece():
    bins = pd.DataFrame({
        "run_id": ["a"] * 3 + ["a"],
        "split": ["test"] * 3 + ["val"],
        "count": [10, 30, 0, 50],
        "mean_confidence": [0.9, 0.5, np.nan, 0.1],
        "accuracy": [0.7, 0.6, np.nan, 0.9],
    })  # fmt: skip
    parts = calibration_parts(bins).set_index("run_id")
    assert parts.at["a", "ece_over"] == pytest.approx(10 / 40 * 0.2)
    assert parts.at["a", "ece_under"] == pytest.approx(30 / 40 * 0.1)


def test_scopes_are_protocol_major_and_rests_in_order():
    runs = pd.DataFrame({"protocol": ["unfrozen", "frozen", "frozen", "unfrozen"],
                         "rest": ["n=2", "n=2", "n=1", "n=1"]})  # fmt: skip
    runs["scope"] = "protocol=" + runs["protocol"] + ", " + runs["rest"]
    assert scopes(runs, ["frozen", "unfrozen"], ["n=1", "n=2"]) == [
        "protocol=frozen, n=1", "protocol=frozen, n=2",
        "protocol=unfrozen, n=1", "protocol=unfrozen, n=2",
    ]  # fmt: skip


def test_variants_and_column_titles():
    arms = {"mixup (alpha=0.2)": Arm.of("mixup", {"alpha": "0.2"}),
            "mixup (alpha=1)": Arm.of("mixup", {"alpha": "1"}),
            "none": Arm("none")}  # fmt: skip
    found = variants(arms, dict.fromkeys(["none", "mixup (alpha=0.2)", "mixup (alpha=1)"]))
    assert found == {Arm("none"): ["none"],
                     Arm("mixup"): ["mixup (alpha=0.2)", "mixup (alpha=1)"]}  # fmt: skip
    assert Arm("cutmix") not in found  # an arm without cells has no variants
    runs = pd.DataFrame({"protocol": ["frozen", "unfrozen"], "lr": [0.1, 0.01]})
    assert column_titles(runs, ["frozen", "unfrozen"], []) == {"frozen": "frozen",
                                                               "unfrozen": "unfrozen"}  # fmt: skip
    assert column_titles(runs, ["frozen", "unfrozen"], ["lr"])["unfrozen"] == "unfrozen, lr=0.01"
