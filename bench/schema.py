"""Column lists of the results files (see docs/results-schema.md): the one place they are named.

The sweep runner writes rows with exactly these columns, in this order; the report reads them by
name. Columns may be added at the end of a list; existing ones keep their names and meanings.
"""

from __future__ import annotations

RUNS_COLUMNS = [
    "run_id", "sweep", "status", "error",
    "regularizer", "regularizer_params", "schedule", "protocol", "backbone", "pretrained",
    "image_size", "train_size",
    "epochs", "batch_size", "optimizer", "lr", "weight_decay", "label_smoothing", "seed",
    "train_acc", "train_loss", "val_acc", "val_loss", "test_acc", "test_loss", "gap",
    "test_ece", "test_mce", "test_brier", "test_mean_conf",
    "temperature", "test_ece_ts", "test_nll_ts", "test_ece_adaptive", "val_ece",
    "flip_rate", "occlusion_acc", "corruption_acc", "corruption_ece",
    "train_images_per_s", "eval_images_per_s", "regularizer_ms_per_batch", "peak_mem_mb",
    "wall_s", "device", "torch_version", "timm_version", "git_commit", "started_at",
    # Additions beyond the shared contract: the rest of the cell's configuration and cost.
    "dataset", "val_size", "test_size", "data_seed", "momentum", "backbone_lr_scale",
    "warmup_epochs", "unfreeze_at", "train_eval_size", "robustness_size",
    "robustness_s", "num_gpus_visible",
]  # fmt: skip

EPOCHS_COLUMNS = [
    "run_id", "epoch", "lr", "train_loss_aug", "train_acc", "train_loss", "val_acc", "val_loss",
    "test_acc", "test_loss", "test_ece", "regularizer_prob", "regularizer_strength",
    "images_per_s", "wall_s",
]  # fmt: skip

CALIBRATION_COLUMNS = [
    "run_id", "split", "bin", "bin_lower", "bin_upper", "count", "mean_confidence", "accuracy",
]  # fmt: skip

ROBUSTNESS_COLUMNS = ["run_id", "corruption", "severity", "accuracy", "ece"]

# file name -> its columns; runs.csv is written last, so it doubles as the done-marker.
FILES = {
    "epochs.csv": EPOCHS_COLUMNS,
    "calibration.csv": CALIBRATION_COLUMNS,
    "robustness.csv": ROBUSTNESS_COLUMNS,
    "runs.csv": RUNS_COLUMNS,
}
