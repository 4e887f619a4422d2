"""Side-by-side training throughput, measured in one run (ratios, since these machines are noisy).

    python benchmarks/train_throughput.py [--device cpu|cuda] [--backbone NAME] [--image-size N]
        [--batch-size B] [--train-size N] [--out FILE.md] [--gpu-extras]

(a) our full training loop (bench.train.train_cell: sample, crop/flip, resize, normalize,
    regularize, forward/backward/step) vs the same model's bare forward+backward+step on
    pre-made tensors: target >= 0.9;
(b) the frozen protocol vs the unfrozen one, per image: target >= 3x;
(c) the input pipeline alone (no model) vs the conventional one: torchvision CIFAR10 + DataLoader
    + PIL transforms + timm Mixup in elem mode: target >= 5x at 32 px;
(d) our full loop vs the conventional loop (that pipeline feeding the same model): target >= 1x
    on the CPU, >= 1.5x on a GPU.
With --gpu-extras (CUDA): bf16 autocast / torch.compile on vs off in our loop, and training img/s
of resnet50 and tf_efficientnet_lite0 at 224 px, unfrozen, batch 256 (bare step, synthetic
tensors).
Data: the CIFAR-10 folder bench.data finds (or --data-dir); weights: random init (throughput
does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import time
import warnings

import timm
import torch
import torch.nn.functional as F

import regularizers
from bench import data
from bench.config import RunConfig
from bench.train import soft_cross_entropy, train_cell


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ours_loop(args, device, protocol="unfrozen", compile_model=False, epochs=2) -> float:
    """Training img/s of train_cell's loop in its last epoch (the first warms up; eval excluded)."""
    cfg = RunConfig(
        sweep="bench", data_dir=args.data_dir, backbone=args.backbone, pretrained="none",
        protocol=protocol, regularizer="mixup",
        regularizer_params={"mode": "elem", "alpha": 1.0}, epochs=epochs,
        batch_size=args.batch_size, image_size=args.image_size, train_size=args.train_size,
        val_size=1000, test_size=1000, train_eval_size=500, robustness_size=200,
        device=device.type, compile=compile_model, warmup_epochs=0.0,
    )  # fmt: skip
    result = train_cell(cfg, progress=False)
    if result.row["status"] != "ok":
        raise RuntimeError(result.row["error"])
    return float(result.epochs[-1]["images_per_s"])


def bare_loop(args, device, steps: int, backbone: str | None = None, size: int | None = None,
              batch: int | None = None, autocast: bool = True) -> float:  # fmt: skip
    """Forward+backward+SGD step on pre-made normalized tensors: the model's own cost."""
    size = size or args.image_size
    batch = batch or args.batch_size
    model = timm.create_model(backbone or args.backbone, num_classes=10).to(device)
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    targets = F.one_hot(torch.randint(0, 10, (batch,), device=device), 10).float()

    def step() -> None:
        with torch.autocast(
            device.type, torch.bfloat16, enabled=autocast and device.type == "cuda"
        ):
            loss = soft_cross_entropy(model(x), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def conventional_loader(args, device):
    """torchvision CIFAR10 + PIL transforms + DataLoader (the usual recipe)."""
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision import transforms as T

    class CIFAR10NoChecksum(datasets.CIFAR10):
        # The offline copy's md5 differs from the official release; skip only that check.
        def _check_integrity(self) -> bool:
            return True

    steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]
    if args.image_size != 32:
        steps.append(T.Resize(args.image_size, interpolation=T.InterpolationMode.BILINEAR))
    steps += [T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    root = str(data.resolve_data_dir(args.data_dir))
    dataset = CIFAR10NoChecksum(root, train=True, download=False, transform=T.Compose(steps))
    return DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
        drop_last=True, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
    )  # fmt: skip


def conventional_pipeline(args, device, steps: int, model=None) -> float:
    """img/s of the conventional pipeline (+ the model's step when a model is given)."""
    from timm.data import Mixup

    mixup = Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, mode="elem", num_classes=10)
    loader = conventional_loader(args, device)
    optimizer = None
    if model is not None:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    done, start = 0, None
    for index, (images, labels) in enumerate(loader):
        if index == 2:  # warm-up batches (worker start) excluded
            sync(device)
            start, done = time.perf_counter(), 0
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        images, targets = mixup(images, labels)
        if model is not None:
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                loss = soft_cross_entropy(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        done += len(images)
        if index >= steps + 2:
            break
    sync(device)
    return done / (time.perf_counter() - start)


def ours_pipeline(args, device, steps: int) -> float:
    """img/s of our input pipeline alone: in-memory uint8 -> crop/flip -> resize/normalize ->
    MixUp elem (the same work as the conventional pipeline, no model)."""
    raw = data.load_cifar10(args.data_dir)
    train_x = torch.from_numpy(raw["train_x"]).to(device)
    train_y = torch.from_numpy(raw["train_y"]).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    mean = torch.full((3,), 0.5, device=device)
    reg = regularizers.build("mixup", num_classes=10, mode="elem", alpha=1.0)
    order = torch.randperm(len(train_y), device=device, generator=generator)

    def one(index: int) -> None:
        idx = order[index * args.batch_size : (index + 1) * args.batch_size]
        x = data.random_crop_flip(train_x[idx], generator)
        x = data.to_model_input(x, args.image_size, mean, mean, device.type == "cuda")
        reg(x, train_y[idx], generator=generator)

    for index in range(2):
        one(index)
    sync(device)
    start = time.perf_counter()
    for index in range(steps):
        one(index + 2)
    sync(device)
    return steps * args.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=1280)
    parser.add_argument("--steps", type=int, default=10, help="timed steps for bare loops")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--gpu-extras", action="store_true")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*checksum differs.*")
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU, {torch.get_num_threads()} threads")  # fmt: skip
    rows = []

    def add(what: str, ours: float, theirs: float, unit: str, target: str) -> None:
        rows.append((what, ours, theirs, ours / theirs, unit, target))
        print(f"{what}: {ours:.1f} vs {theirs:.1f} {unit} -> {ours / theirs:.2f}x", flush=True)

    ours_unfrozen = ours_loop(args, device, "unfrozen")
    add("(a) full loop vs bare fwd+bwd (unfrozen)", ours_unfrozen,
        bare_loop(args, device, args.steps), "img/s", ">= 0.9")  # fmt: skip
    add("(b) frozen vs unfrozen (our loop)", ours_loop(args, device, "frozen"), ours_unfrozen,
        "img/s", ">= 3")  # fmt: skip
    add("(c) input pipeline: ours vs DataLoader+PIL+timm Mixup elem",
        ours_pipeline(args, device, 30), conventional_pipeline(args, device, 30),
        "img/s", ">= 5 at 32 px")  # fmt: skip
    conventional_model = timm.create_model(args.backbone, num_classes=10).to(device)
    add("(d) full loop: ours vs conventional", ours_unfrozen,
        conventional_pipeline(args, device, args.steps, conventional_model), "img/s",
        ">= 1 (CPU), >= 1.5 (GPU)")  # fmt: skip
    if args.gpu_extras and device.type == "cuda":
        compiled = ours_loop(args, device, "unfrozen", compile_model=True)
        add("compile on vs off (our loop, bf16)", compiled, ours_unfrozen, "img/s", "> 1")
        add("bf16 autocast on vs off (bare step)", bare_loop(args, device, args.steps),
            bare_loop(args, device, args.steps, autocast=False), "img/s", "> 1")  # fmt: skip
        for backbone in ("resnet50", "tf_efficientnet_lite0"):
            rate = bare_loop(args, device, 20, backbone=backbone, size=224, batch=256)
            rows.append((f"{backbone} @224, batch 256, bf16, unfrozen", rate, float("nan"),
                         float("nan"), "img/s", "timm RTX 3090 ref: 1,200 / 2,100"))  # fmt: skip
            print(f"{backbone} 224: {rate:.0f} img/s", flush=True)
    lines = [
        f"Device: {name}; backbone {args.backbone}, {args.image_size} px, batch "
        f"{args.batch_size}; torch {torch.__version__}, timm {timm.__version__}",
        "",
        "| comparison | ours | baseline | ratio | unit | target |",
        "|---|---:|---:|---:|---|---|",
    ]
    for what, ours, theirs, ratio, unit, target in rows:
        lines.append(f"| {what} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f} | {unit} | {target} |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(table + "\n")


if __name__ == "__main__":
    main()
