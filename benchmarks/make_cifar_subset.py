"""Write a stratified uint8 subset of CIFAR-10 in the official pickle layout (for GPU runs whose
working tree must stay small): python benchmarks/make_cifar_subset.py OUT_ROOT [--train N]
[--test N]. OUT_ROOT/cifar-10-batches-py then loads like the real release (with the checksum
warning)."""

from __future__ import annotations

import argparse
import pickle
import shutil
from pathlib import Path

import torch

from bench import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_root")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--train", type=int, default=8000)
    parser.add_argument("--test", type=int, default=4000)
    args = parser.parse_args()
    raw = data.load_cifar10(args.data_dir)
    out = Path(args.out_root) / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    train = data.stratified_take(torch.from_numpy(raw["train_y"]), [args.train], seed=123)[0]
    test = data.stratified_take(torch.from_numpy(raw["test_y"]), [args.test], seed=123)[0]
    parts = [(f"data_batch_{i + 1}", train[i::5].numpy(), "train") for i in range(5)]
    for name, index, split in [*parts, ("test_batch", test.numpy(), "test")]:
        entry = {
            "batch_label": f"regbench subset {name}",
            "labels": raw[f"{split}_y"][index].tolist(),
            "data": raw[f"{split}_x"][index].reshape(len(index), -1),
            "filenames": [f"{split}_{i}.png" for i in index],
        }
        with open(out / name, "wb") as handle:
            pickle.dump(entry, handle)
    source = data.resolve_data_dir(args.data_dir) / "cifar-10-batches-py" / "batches.meta"
    shutil.copy(source, out / "batches.meta")
    print(f"wrote {len(train)} train and {len(test)} test images to {out}")


if __name__ == "__main__":
    main()
