"""`regbench run`: train one cell and append its rows to a results folder.

Every option maps onto a RunConfig field; regularizer parameters come as repeated
`--reg-param NAME=VALUE` (VALUE parsed as JSON when it can be: numbers, lists, true/false).
The configuration, data, backbone and weights are all checked before training starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.config import DEVICES, OPTIMIZERS, PROTOCOLS, RunConfig


def parse_reg_params(pairs: list[str]) -> dict[str, object]:
    """['alpha=1.0', 'mode=elem'] -> {'alpha': 1.0, 'mode': 'elem'}."""
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--reg-param {pair!r}: expected NAME=VALUE, e.g. alpha=1.0")
        try:
            params[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            params[name.strip()] = text
    return params


def build_parser() -> argparse.ArgumentParser:
    defaults = RunConfig()
    parser = argparse.ArgumentParser(
        prog="regbench run", description="Train one cell and append its rows to RESULTS_DIR."
    )
    add = parser.add_argument
    add("--data-dir", default="", help="folder holding cifar-10-batches-py (default: "
        "$REGBENCH_DATA, ../shared/data/cifar10, ./data/cifar10; downloaded if missing)")  # fmt: skip
    add("--dataset", default=defaults.dataset, choices=["cifar10", "synthetic"],
        help="synthetic is for tests only")  # fmt: skip
    add("--backbone", default=defaults.backbone, help="any timm model name")
    add("--pretrained", default=defaults.pretrained, help="auto | none | PATH to weights")
    add("--protocol", default=defaults.protocol, choices=PROTOCOLS)
    add("--regularizer", default=defaults.regularizer, help="see `regbench regularizers`")
    add("--reg-param", action="append", default=[], metavar="NAME=VALUE",
        help="a regularizer parameter, repeatable (e.g. alpha=1.0, mode=elem)")  # fmt: skip
    add("--schedule", default=None, help="constant | linear | staged (a regularizer parameter)")
    add("--epochs", type=int, default=defaults.epochs)
    add("--batch-size", type=int, default=defaults.batch_size)
    add("--optimizer", default=defaults.optimizer, choices=OPTIMIZERS)
    add("--lr", type=float, default=defaults.lr)
    add("--backbone-lr-scale", type=float, default=defaults.backbone_lr_scale)
    add("--weight-decay", type=float, default=defaults.weight_decay)
    add("--label-smoothing", type=float, default=defaults.label_smoothing)
    add("--unfreeze-at", type=float, default=defaults.unfreeze_at,
        help="staged protocol: fraction of training spent frozen")  # fmt: skip
    add("--image-size", type=int, default=defaults.image_size)
    add("--train-size", type=int, default=defaults.train_size, help="0 = all")
    add("--val-size", type=int, default=defaults.val_size)
    add("--test-size", type=int, default=defaults.test_size, help="0 = the whole test set")
    add("--seed", type=int, default=defaults.seed)
    add("--data-seed", type=int, default=defaults.data_seed)
    add("--device", default=defaults.device, choices=DEVICES)
    add("--compile", action="store_true", help="torch.compile the model (CUDA only)")
    add("--save-logits", action="store_true", help="keep final test logits (float16) as .npz")
    add("--results-dir", default="results/adhoc", help="folder of runs.csv etc.")
    add("--save-model", default=None, metavar="PATH",
        help="save the trained model (PATH.safetensors + PATH.json) for `regbench predict`")  # fmt: skip
    add("--no-progress", action="store_true", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    params = parse_reg_params(args.reg_param)
    if args.schedule is not None:
        params["schedule"] = args.schedule
    return RunConfig(
        sweep=Path(args.results_dir).name, dataset=args.dataset, data_dir=args.data_dir,
        backbone=args.backbone, pretrained=args.pretrained, protocol=args.protocol,
        regularizer=args.regularizer, regularizer_params=params, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        backbone_lr_scale=args.backbone_lr_scale, weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing, unfreeze_at=args.unfreeze_at,
        image_size=args.image_size, train_size=args.train_size, val_size=args.val_size,
        test_size=args.test_size, seed=args.seed, data_seed=args.data_seed, device=args.device,
        compile=args.compile, save_logits=args.save_logits,
    )  # fmt: skip


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from bench import train
    from bench.results import LockError, ResultsDir

    try:
        cfg = config_from_args(args)
        train.preflight(cfg)
        if args.save_model:
            save_to = Path(args.save_model)
            if not save_to.parent.exists():
                raise ValueError(f"--save-model: folder {save_to.parent} does not exist")
        results = ResultsDir(Path(args.results_dir))
        with results.lock():
            result = train.train_cell(
                cfg, progress=not args.no_progress, keep_model=bool(args.save_model)
            )
            results.write(result)
    except (ValueError, FileNotFoundError, LockError) as error:
        print(f"regbench run: error: {error}", file=sys.stderr)
        return 2
    row = result.row
    if row["status"] != "ok":
        print(f"regbench run: cell {row['run_id']} failed: {row['error']}", file=sys.stderr)
        return 1
    print(
        f"{row['run_id']}  {cfg.regularizer}/{cfg.protocol}  train_acc={row['train_acc']:.4f}  "
        f"test_acc={row['test_acc']:.4f}  gap={row['gap']:+.4f}  test_ece={row['test_ece']:.4f}  "
        f"{row['train_images_per_s']:.0f} img/s  -> {args.results_dir}/runs.csv"
    )
    if args.save_model:
        from bench.model_io import save_model

        paths = save_model(result.model, cfg, row, args.save_model)
        print(f"saved model: {', '.join(str(p) for p in paths)}")
    return 0
