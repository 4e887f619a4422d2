"""Why the staged protocol collapses at the unfreeze: validation accuracy at step resolution
around the switch, under one change at a time (measured, not a unit test).

    python benchmarks/staged_collapse.py [--data-dir DIR] [--seeds 0 1] [--regularizer none]

At cpu-quick's settings (32 px, train 2000, val 1000, 3 epochs of 15 steps, batch 128, staged
with unfreeze_at 0.5, lr 0.05, backbone_lr_scale 0.1, SGD + Nesterov momentum 0.9, warmup 0.5
epoch, the ImageNet-pretrained tf_efficientnet_lite0 from `pretrained = "auto"`), the frozen
phase is trained once per seed through bench.train.train_step; the model, optimizer and
generator are then snapshotted at the switch and every variant continues from that snapshot
with the very same batches and augmentation draws, changing one thing:

- `baseline`: what the staged protocol did (model.train(): BatchNorm normalizes with batch
  statistics and updates its running statistics; backbone at lr * 0.1 on the cosine schedule);
- `bn_eval`: the backbone's BatchNorm layers stay in eval mode (running statistics, no update);
  the weights train as in baseline;
- `bn_train_stats_kept`: BatchNorm in train mode (batch statistics in the training forward) but
  its running statistics are not updated (momentum 0), so evaluation sees the old statistics;
- `bn_train_lr0`: BatchNorm in train mode, backbone learning rate 0 (only the statistics move);
- `momentum_reset`: baseline with the optimizer state cleared at the switch;
- `backbone_lr_x0.1`: baseline with a 10x lower backbone learning rate.
The table gives validation accuracy (1000 images) at the end of epoch 1, at the switch, 1, 2, 4
and 8 steps after it, at the end of epoch 2 (the epoch of the switch; with --full also every
epoch end after it), and the learning rates at the switch; the count of backbone momentum
buffers at the switch is printed below it.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import time

import torch
from torch import nn

from bench import backbones, data
from bench.config import RunConfig
from bench.train import set_up, train_step, training_batches

VARIANTS = (
    "baseline",
    "bn_eval",
    "bn_train_stats_kept",
    "bn_train_lr0",
    "momentum_reset",
    "backbone_lr_x0.1",
)
AFTER = (1, 2, 4, 8)  # steps after the switch at which val accuracy is also measured


def cpu_quick_cell(data_dir: str, seed: int, regularizer: str) -> RunConfig:
    params = {"alpha": 1.0} if regularizer in ("mixup", "cutmix") else {}
    return RunConfig(
        sweep="staged-collapse", data_dir=data_dir, backbone="tf_efficientnet_lite0",
        pretrained="auto", protocol="staged", regularizer=regularizer,
        regularizer_params=params, epochs=3, batch_size=128, lr=0.05, backbone_lr_scale=0.1,
        warmup_epochs=0.5, unfreeze_at=0.5, image_size=32, train_size=2000, val_size=1000,
        test_size=100, train_eval_size=100, robustness_size=100, seed=seed, device="cpu",
    )  # fmt: skip


def batchnorms(model: nn.Module) -> list[nn.Module]:
    """The backbone's BatchNorm layers (timm's BatchNormAct2d included)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def apply_variant_mode(model: nn.Module, variant: str) -> None:
    """Train mode after the switch, with the variant's BatchNorm change (named explicitly: the
    fixed code's default for staged is bn="frozen", which is the `bn_eval` variant)."""
    backbones.set_train_mode(model, True, "frozen" if variant == "bn_eval" else "train")


def val_acc(cell, variant: str | None) -> float:
    acc = float((cell.evaluate(cell.splits.val_x).argmax(1) == cell.splits.val_y).float().mean())
    if variant is None:
        backbones.set_train_mode(cell.model, False)
    else:
        apply_variant_mode(cell.model, variant)
    return acc


def run_seed(args, seed: int) -> list[dict]:
    cfg = cpu_quick_cell(args.data_dir, seed, args.regularizer)
    cell, _ = set_up(cfg, torch.device("cpu"))
    plan = cell.plan
    switch = plan.unfreeze_step
    batches = training_batches(cell)
    frozen_curve = {}
    for step in range(switch):
        train_step(cell, step, next(batches))
        if step + 1 == plan.per_epoch or step + 1 == switch:
            frozen_curve[step + 1] = val_acc(cell, None)
    # the rest of the switch's pass (no draw from the generator until the next pass begins)
    rest = [next(batches) for _ in range(-switch % plan.per_epoch)]
    optimizer = cell.optimizer
    backbone_group = optimizer.param_groups[1]["params"]
    buffers = sum(1 for p in backbone_group if "momentum_buffer" in optimizer.state.get(p, {}))
    snapshot = {
        "model": copy.deepcopy(cell.model.state_dict()),
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "generator": cell.generator.get_state(),
        "base_lrs": list(cell.base_lrs),
    }
    rows = []
    print(f"seed {seed}: backbone momentum buffers at the switch: {buffers}", flush=True)
    for variant in args.variants:
        cell.model.load_state_dict(snapshot["model"])
        optimizer.load_state_dict(snapshot["optimizer"])
        cell.generator.set_state(snapshot["generator"])
        cell.base_lrs[:] = snapshot["base_lrs"]
        batches = itertools.chain(rest, training_batches(cell))
        # train_step unfreezes the backbone at the switch in the plan's BatchNorm mode: the
        # variant's (apply_variant_mode)
        cell.plan = dataclasses.replace(plan, bn="frozen" if variant == "bn_eval" else "train")
        momentum = {}
        if variant == "bn_train_stats_kept":
            for bn in batchnorms(cell.model):
                momentum[bn] = bn.momentum
                bn.momentum = 0.0
        if variant == "bn_train_lr0":
            cell.base_lrs[1] = 0.0
        if variant == "backbone_lr_x0.1":
            cell.base_lrs[1] *= 0.1
        if variant == "momentum_reset":
            optimizer.state.clear()
        curve = {}
        lrs = None
        end = plan.total_steps if args.full else 2 * plan.per_epoch
        start = time.perf_counter()
        for step in range(switch, end):
            train_step(cell, step, next(batches))
            if lrs is None:
                lrs = [group["lr"] for group in optimizer.param_groups]
            after = step + 1 - switch
            if after in AFTER or (step + 1) % plan.per_epoch == 0:
                curve[step + 1] = val_acc(cell, variant)
        for bn, value in momentum.items():
            bn.momentum = value
        rows.append(
            {"seed": seed, "variant": variant, "switch": switch, "per_epoch": plan.per_epoch,
             "frozen": frozen_curve, "curve": curve, "head_lr": lrs[0], "backbone_lr": lrs[1],
             "backbone_buffers": buffers, "seconds": time.perf_counter() - start}
        )  # fmt: skip
        print(f"done seed {seed} {variant}: {curve}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--regularizer", default="none")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--full", action="store_true", help="continue to the end of epoch 3")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data.resolve_data_dir(args.data_dir)
    results = [row for seed in args.seeds for row in run_seed(args, seed)]
    first = results[0]
    switch, per_epoch = first["switch"], first["per_epoch"]
    steps = sorted({s for r in results for s in r["curve"]})
    header = ["seed", "variant", f"ep1 (s{per_epoch})", f"switch (s{switch})"]
    header += [f"s{s}" + (f" ep{s // per_epoch}" if s % per_epoch == 0 else "") for s in steps]
    header += ["drop ep1->ep2 (pp)", "lr head/backbone at switch", "s"]
    print(f"switch at step {switch} of {first['per_epoch'] * 3}; val accuracy in %")
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for r in results:
        ep1, at = r["frozen"][per_epoch], r["frozen"][switch]
        cells = [str(r["seed"]), r["variant"], f"{100 * ep1:.1f}", f"{100 * at:.1f}"]
        cells += [f"{100 * r['curve'][s]:.1f}" for s in steps]
        cells.append(f"{100 * (r['curve'][2 * per_epoch] - ep1):+.1f}")
        cells.append(f"{r['head_lr']:.4f}/{r['backbone_lr']:.5f}")
        cells.append(f"{r['seconds']:.0f}")
        print("| " + " | ".join(cells) + " |")
    print(
        f"backbone momentum buffers at the switch: {sorted({r['backbone_buffers'] for r in results})}"
    )


if __name__ == "__main__":
    main()
