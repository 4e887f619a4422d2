"""Regularizer costs, in one run: this package's targets, or a table beside timm and torchvision.

    python benchmarks/regularizer_table.py --targets [--device cpu|cuda] [--all] [--rounds N]
                                           [--steps N] [--out FILE.md] [--threads N]
    python benchmarks/regularizer_table.py [--device cpu|cuda] [--out FILE.md] [--repeats N]
                                           [--warmup N] [--threads N] [--train-repeats N]
                                           [--in-step] [--step-model NAME] [--step-size PX]

`--targets` checks the targets (docs/regularizers.md): a call dispatches the same number of
tensor operations at B=64 and B=512, and costs at most 1% of a training step inside the loop.
The steps are cpu-quick's on the CPU (tf_efficientnet_lite0, 32 px, batch 128) and ResNet-50 at
224 px, batch 256 on a GPU, each frozen and unfrozen, random init; the sweeps' arms (`--all`:
every name and mode). The step is the loop's own, imported (bench.train.train_step on a cell
from bench.train.set_up, synthetic images: `RealStep`), with the call in its regularizer slot.
Blocks of training steps with and without the call alternate; the call is also timed inside
them by the step's own timer (see `in_step_costs`), and a short real cell of the same setup
gives the loop's own record of it (runs.csv's regularizer_ms_per_batch), side by side.

The comparison table (information, not a target): per-call time at batch 256 and 3x32x32 /
3x224x224 (median of repeats, taken in warm blocks that take turns; CUDA events and synchronize
on a GPU), the ratio to timm's version of the same operation, and the number of tensor
operations one call dispatches at B=64 and B=512 (counted with TorchDispatchMode; a per-sample
Python loop shows up as a count that grows with B).

Ours are called as the training loop calls them: in place (`reg.inplace = True`, as timm's
`Mixup` and `RandomErasing` always are) and without the per-call label-range check (the loop
checks labels once). Rows marked "(default call)" show the library's default instead: a new
output tensor and the label check. In-place versions get their own copy of the batch and are
called on it again and again; torchvision's return new tensors.

On CUDA (or with --in-step) the comparison table also times the loop's training step
(ResNet-50 from timm, random init, bf16 autocast and channels_last on CUDA, 224 px, batch 256,
crop/flip, resize and normalize included) and gives each
regularizer's cost as a percentage of it, twice: "isolated", one call timed alone after a sync
(which counts the host's kernel launches in full), and "in step", blocks of training steps with
and without the call, one sync per block, as in training, where the host queues the call's
small kernels while the GPU still runs the previous step.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

import regularizers  # noqa: E402

NUM_CLASSES = 10
BATCH = 256
SIZES = (32, 224)


@dataclass(frozen=True)
class Impl:
    name: str  # row label
    baseline: str | None  # name of the timm row doing the same operation (for the ratio)
    make: Callable[[torch.device], Callable]  # device -> fn(images, labels) -> anything
    inplace: bool = True  # modifies its input: timed on its own copy of the batch


def _ours(name: str, loop_call: bool = True, **params) -> Callable:
    def make(device):
        reg = regularizers.build(name, NUM_CLASSES, **params)
        reg.inplace, reg.check_label_range = loop_call, not loop_call
        generator = torch.Generator(device=device).manual_seed(0)
        return lambda images, labels: reg(images, labels, generator=generator)

    make.regularizer = (name, params)  # what a cell's configuration names (loop_ms)
    return make


def _timm_mixup(**params) -> Callable:
    def make(device):
        from timm.data.mixup import Mixup

        np.random.seed(0)
        return Mixup(label_smoothing=0.0, num_classes=NUM_CLASSES, **params)

    return make


def _timm_erasing(device):
    from timm.data.random_erasing import RandomErasing

    erase = RandomErasing(probability=0.5, mode="const", device=device)
    return lambda images, labels: erase(images)


def _torchvision(cls_name: str) -> Callable:
    def make(device):
        from torchvision.transforms import v2

        return getattr(v2, cls_name)(alpha=1.0, num_classes=NUM_CLASSES)

    return make


def _default_call(baseline: str, name: str, **params) -> Impl:
    """The row of the library's default call of `name`: a new output tensor, label check on."""
    label = " ".join(["ours", name, *params.values()]) + " (default call)"
    return Impl(label, baseline, _ours(name, loop_call=False, **params), inplace=False)


MIX, CUT = {"mixup_alpha": 1.0, "cutmix_alpha": 0.0}, {"mixup_alpha": 0.0, "cutmix_alpha": 1.0}
IMPLS = [
    Impl("ours none", None, _ours("none")),
    Impl("ours random_erasing", "timm RandomErasing", _ours("random_erasing")),
    _default_call("timm RandomErasing", "random_erasing"),
    Impl("timm RandomErasing", None, _timm_erasing),
    Impl("ours mixup batch", "timm Mixup mixup batch", _ours("mixup", mode="batch")),
    _default_call("timm Mixup mixup batch", "mixup", mode="batch"),
    Impl("timm Mixup mixup batch", None, _timm_mixup(mode="batch", **MIX)),
    Impl("torchvision MixUp", "timm Mixup mixup batch", _torchvision("MixUp"), inplace=False),
    Impl("ours mixup elem", "timm Mixup mixup elem", _ours("mixup", mode="elem")),
    Impl("timm Mixup mixup elem", None, _timm_mixup(mode="elem", **MIX)),
    Impl("ours cutmix batch", "timm Mixup cutmix batch", _ours("cutmix", mode="batch")),
    Impl("timm Mixup cutmix batch", None, _timm_mixup(mode="batch", **CUT)),
    Impl("torchvision CutMix", "timm Mixup cutmix batch", _torchvision("CutMix"), inplace=False),
    Impl("ours cutmix elem", "timm Mixup cutmix elem", _ours("cutmix", mode="elem")),
    _default_call("timm Mixup cutmix elem", "cutmix", mode="elem"),
    Impl("timm Mixup cutmix elem", None, _timm_mixup(mode="elem", **CUT)),
    Impl("ours mixup_cutmix batch", "timm Mixup switch batch", _ours("mixup_cutmix")),
    Impl(
        "timm Mixup switch batch",
        None,
        _timm_mixup(mode="batch", mixup_alpha=1.0, cutmix_alpha=1.0),
    ),
    Impl("ours mixup_cutmix elem", "timm Mixup switch elem", _ours("mixup_cutmix", mode="elem")),
    Impl(
        "timm Mixup switch elem", None, _timm_mixup(mode="elem", mixup_alpha=1.0, cutmix_alpha=1.0)
    ),
]


def make_batch(b: int, size: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(b, 3, size, size, generator=g).to(device)
    return images, torch.randint(0, NUM_CLASSES, (b,), generator=g).to(device)


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while active."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.total += 1
        return func(*args, **(kwargs or {}))


def count_ops(impl: Impl, b: int, device, size: int = 32) -> int:
    """Tensor operations one call dispatches on a [b, 3, size, size] batch (after a warm call)."""
    fn = impl.make(device)
    images, labels = make_batch(b, size, device)
    fn(images.clone(), labels)
    with OpCounter() as ops:
        fn(images, labels)
    return ops.total


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable, images, labels, device) -> float:
    """Milliseconds of one call, measured with CUDA events on a GPU, perf_counter on a CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        _sync(device)
        start.record()
        fn(images, labels)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    begin = time.perf_counter()
    fn(images, labels)
    return (time.perf_counter() - begin) * 1e3


def time_all(impls: list[Impl], size: int, device, repeats: int, warmup: int) -> dict[str, float]:
    """Median ms per call of each impl. The impls take turns in blocks (a few untimed warm-up
    calls, then timed calls), over up to three rounds, so drift hits all alike while each
    block still runs warm (allocator and caches as in a training loop)."""
    images, labels = make_batch(BATCH, size, device)
    fns = {impl.name: impl.make(device) for impl in impls}
    inputs = {impl.name: images.clone() if impl.inplace else images for impl in impls}
    times: dict[str, list[float]] = {name: [] for name in fns}
    rounds = min(3, repeats)
    for r in range(rounds):
        for name, fn in fns.items():
            for _ in range(warmup):
                fn(inputs[name], labels)
            for _ in range(repeats // rounds + (r < repeats % rounds)):
                times[name].append(time_call(fn, inputs[name], labels, device))
    return {name: statistics.median(values) for name, values in times.items()}


@dataclass(frozen=True)
class StepSetup:
    """The training step the regularizers are costed against."""

    model: str = "resnet50"
    size: int = 224
    batch: int = BATCH
    protocol: str = "unfrozen"  # or "frozen": only the classifier trains, as bench.train does


# The in-step targets' steps: cpu-quick's cells on the CPU (sweeps/cpu-quick.toml), and a
# ResNet-50 at 224 px on a GPU; random init (a step costs the same with any weights).
TARGET_SETUPS = {
    "cpu": [StepSetup("tf_efficientnet_lite0", 32, 128, p) for p in ("frozen", "unfrozen")],
    "cuda": [StepSetup("resnet50", 224, 256, p) for p in ("frozen", "unfrozen")],
}
TARGET_PERCENT = 1.0  # a regularizer's in-step cost, at most this share of a training step


def step_config(device, setup: StepSetup, regularizer: str = "none", params=None, steps=0):
    """The RunConfig of a cell whose training step is `setup`'s: synthetic images (a step costs
    the same on any images), random init, the loop's precision and memory format for the
    device ("auto": bf16 autocast and channels_last on CUDA). `steps`: a step budget, for a
    short real run (`loop_ms`); 0: one pass over 2 * batch images."""
    from bench.config import RunConfig

    return RunConfig(
        sweep="bench", dataset="synthetic", backbone=setup.model, pretrained="none",
        protocol=setup.protocol, regularizer=regularizer, regularizer_params=params or {},
        epochs=1, train_steps=steps, batch_size=setup.batch, lr=0.01, warmup_epochs=0.0,
        image_size=setup.size, train_size=2 * setup.batch, val_size=100, test_size=100,
        train_eval_size=100, robustness_size=100, device=device.type,
    )  # fmt: skip


class CallSlot:
    """What the real step calls as its regularizer (cell.reg): an impl's call fn(images,
    labels), as the loop calls its regularizer, or no call (fn None: the batch's one-hot
    targets, made once)."""

    current_prob = current_strength = 0.0

    def __init__(self, fn: Callable | None, targets: torch.Tensor) -> None:
        self.fn, self.targets = fn, targets

    def set_progress(self, progress: float, on: bool = True) -> None:
        pass

    def __call__(self, images, labels, generator=None):
        if self.fn is None:
            return images, self.targets
        result = self.fn(images, labels)
        # timm's RandomErasing returns the images only (its batch, changed in place)
        return result if isinstance(result, tuple) else (images, self.targets)


class RealStep:
    """bench.train.train_step, the loop's own step, on a real cell (bench.train.set_up) of a
    step setup: each call is one step (crop/flip, resize, normalize, the regularizer slot,
    forward, backward, optimizer step) on the first `batch` training images; with `fn`, the
    slot runs fn and the step's own regularizer timer is returned (the timer the loop reads
    for runs.csv's regularizer_ms_per_batch), else None. Frozen: only the classifier trains."""

    def __init__(self, device, setup: StepSetup) -> None:
        from bench.train import set_up

        self.cell, _ = set_up(step_config(device, setup), device)
        self.batch = torch.arange(setup.batch, device=device)
        labels = self.cell.splits.train_y[self.batch]
        self.one_hot = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
        self.model = self.cell.model
        self.steps = 0

    def __call__(self, fn: Callable | None = None):
        from bench.train import train_step

        self.cell.reg = CallSlot(fn, self.one_hot)
        # step 0 sets the backbone's phase; later steps stay before the plan's unfreeze step
        _, timer = train_step(self.cell, min(self.steps, 1), self.batch, timed=fn is not None)
        self.steps += 1
        return timer


def train_step_ms(device, repeats: int, setup: StepSetup) -> float:
    """Median ms of one training step (the real one, no regularizer call) timed alone."""
    step = RealStep(device, setup)
    for _ in range(3):
        step()
    return statistics.median(
        time_call(lambda *_: step(), None, None, device) for _ in range(repeats)
    )


@dataclass(frozen=True)
class LoopTiming:
    """The loop's own timing of a regularizer in a real cell (`loop_ms`)."""

    row_ms: float  # runs.csv's regularizer_ms_per_batch: the mean over the timed steps
    timed_ms: tuple[float, ...]  # each timed call, in order, by the step's own timer

    @property
    def first_ms(self) -> float:
        """The first call (a fresh regularizer: lazy set-up, cold caches)."""
        return self.timed_ms[0]

    @property
    def later_ms(self) -> float:
        """The median of the calls after the first."""
        return statistics.median(self.timed_ms[1:])

    @property
    def calls(self) -> str:
        return f"{self.row_ms:.3f} ({self.first_ms:.1f}; {self.later_ms:.3f})"


def loop_ms(device, setup: StepSetup, impl: Impl, steps: int) -> LoopTiming | None:
    """The loop's own timing of an impl of ours, in a real cell (bench.train.train_cell) of the
    setup with that regularizer and a budget of `steps` steps: the row's
    regularizer_ms_per_batch, and from the very timers it averages (the step's, collected
    on the way) the first call and the median of the later ones. None for others' impls, which
    the loop cannot run."""
    from bench import train

    ours = getattr(impl.make, "regularizer", None)
    if ours is None or "default call" in impl.name:
        return None
    name, params = ours
    timers = []
    real_step = train.train_step

    def step(*args, **kwargs):
        loss, timer = real_step(*args, **kwargs)
        if timer is not None:
            timers.append(timer)
        return loss, timer

    train.train_step = step  # fit calls the module's train_step: collect its timers
    try:
        cfg = step_config(device, setup, name, params, steps=max(2, steps))
        row = train.train_cell(cfg, progress=False).row
    finally:
        train.train_step = real_step
    if row["status"] != "ok":
        raise RuntimeError(f"{impl.name}: {row['error']}")
    return LoopTiming(row["regularizer_ms_per_batch"], tuple(1e3 * t.seconds() for t in timers))


@dataclass(frozen=True)
class InStep:
    """One impl's cost inside training steps (see `in_step_costs`)."""

    step_ms: float  # median ms of a step in the blocks without the call
    call_ms: float  # median ms of the call, by the step's own timer in the blocks with it
    block_percents: list[float]  # per round: % by which the blocks with the call took longer

    @property
    def call_percent(self) -> float:
        return 100 * self.call_ms / self.step_ms

    @property
    def block_percent(self) -> float:
        return statistics.median(self.block_percents)


def in_step_costs(
    impls: list[Impl], device, setup: StepSetup, rounds: int = 5, steps: int = 10
) -> dict[str, InStep]:
    """Each impl's cost inside the training loop's own step (bench.train.train_step, `RealStep`),
    measured two ways in one run.

    A block is `steps` real training steps (each on a new batch, as in the loop), with the
    impl's call in the step's regularizer slot or no call; there is one host sync per block.
    Blocks with and without the call alternate `rounds` times per impl; each round's ratio is
    taken against the block next to it, so drift cancels (but not the noise of other jobs on
    the machine). Inside the blocks with the call, the call is also timed by the step's own
    timer, the one the loop records in runs.csv (perf_counter on a CPU, where it runs
    synchronously; CUDA events on a GPU, which time its kernels but not the launches that
    overlap the previous step), read after the block's sync.
    """
    step = RealStep(device, setup)

    def block(fn) -> tuple[float, list]:
        _sync(device)
        begin = time.perf_counter()
        timers = [step(fn) for _ in range(steps)]
        _sync(device)
        return time.perf_counter() - begin, timers

    block(None)  # warm-up: allocator, cudnn autotuning
    costs = {}
    for impl in impls:
        fn = impl.make(device)
        block(fn)
        pairs, call_ms = [], []
        for _ in range(rounds):
            (with_call, timers), (plain, _) = block(fn), block(None)
            pairs.append((with_call, plain))
            call_ms += [1e3 * timer.seconds() for timer in timers]
        costs[impl.name] = InStep(
            step_ms=1e3 * statistics.median(plain for _, plain in pairs) / steps,
            call_ms=statistics.median(call_ms),
            block_percents=[100 * (with_call / plain - 1) for with_call, plain in pairs],
        )
    return costs


def in_step_percent(
    impls: list[Impl], device, setup: StepSetup, rounds: int = 5, steps: int = 10
) -> dict[str, float]:
    """Median percent by which each impl lengthens a training step (blocks with and without the
    call, see `in_step_costs`)."""
    costs = in_step_costs(impls, device, setup, rounds, steps)
    return {name: cost.block_percent for name, cost in costs.items()}


SWEEP_ARMS = ("ours none", "ours random_erasing", "ours mixup batch", "ours cutmix batch")


def target_impls(every: bool = False) -> list[Impl]:
    """Ours, called as the training loop calls them: the sweeps' arms, or every name and mode."""
    ours = [i for i in IMPLS if i.name.startswith("ours") and "default call" not in i.name]
    return ours if every else [i for i in ours if i.name in SWEEP_ARMS]


def targets_table(
    device, setups: list[StepSetup], rounds: int, steps: int, every: bool = False
) -> str:
    """The markdown table of this package's targets: ops per call constant in the batch size,
    and the in-step cost at most `TARGET_PERCENT` of a training step, per step setup. Beside
    the call's in-step time ("call ms": the step's own timer in the blocks, median) stands the
    loop's own record of it ("loop ms": regularizer_ms_per_batch of a real cell of the same
    setup, rounds x steps steps, `loop_ms`), with the first call and the median of the later
    ones of that cell (the row's mean counts the first call; the blocks warm up first). Both
    come from the same step and timer; on a CPU with more torch threads than free cores a small
    call can wait tens of ms for its threads, so compare the columns from a quiet machine."""
    impls = target_impls(every)
    head = ["step", "regularizer", "ops B=64", "ops B=512", "step ms", "call ms"]
    head.append("loop ms (first call; median of later)")
    head += ["call % of step", "blocks % longer (median)", "blocks % (min, max)", "target"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for setup in setups:
        costs = in_step_costs(impls, device, setup, rounds, steps)
        where = f"{setup.model} {setup.size} px B={setup.batch} {setup.protocol}"
        for impl in impls:
            cost, ops = (
                costs[impl.name],
                (count_ops(impl, 64, device), count_ops(impl, 512, device)),
            )
            # The CPU runs a call synchronously, so its timed share is the in-step cost; on a GPU
            # the launches overlap the previous step and the blocks' difference is the cost.
            share = cost.call_percent if device.type == "cpu" else cost.block_percent
            met = ops[0] == ops[1] and share <= TARGET_PERCENT
            loop = loop_ms(device, setup, impl, rounds * steps)
            cells = [where, impl.name, *map(str, ops), f"{cost.step_ms:.1f}", f"{cost.call_ms:.3f}"]
            cells.append("" if loop is None else loop.calls)
            cells += [f"{cost.call_percent:.2f}", f"{cost.block_percent:.2f}"]
            cells += [f"{min(cost.block_percents):.2f}, {max(cost.block_percents):.2f}"]
            cells.append("met" if met else "MISSED")
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], file=sys.stderr, flush=True)  # progress: a row at a time
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    info = f"{name}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    return (
        f"In-step cost: {rounds} rounds of {steps}-step blocks with and without the call ({info})."
        f" Target: ops B=64 == ops B=512 and the cost <= {TARGET_PERCENT}% of a step"
        f" ({'the timed call' if device.type == 'cpu' else 'the blocks difference'}).\n\n"
        + "\n".join(rows)
    )


def repeats_at(size: int, repeats: int) -> int:
    """Calls timed per impl: 10x more at 32 px, where a call takes a fraction of a millisecond
    and single calls jitter by tens of percent (and the extra calls cost little)."""
    return repeats * 10 if size <= 64 else repeats


def table(
    device, repeats: int, warmup: int, train_repeats: int, setup: StepSetup | None = None
) -> str:
    """The markdown table (with the training-step columns when `setup` is given)."""
    ms = {s: time_all(IMPLS, s, device, repeats_at(s, repeats), warmup) for s in SIZES}
    ops = {impl.name: (count_ops(impl, 64, device), count_ops(impl, 512, device)) for impl in IMPLS}
    sizes = [f"3x{s}x{s}" for s in SIZES]
    head = ["regularizer"] + [f"ms {s}" for s in sizes] + [f"x timm {s}" for s in sizes]
    head += ["ops B=64", "ops B=512"]
    if setup is not None:
        step = train_step_ms(device, train_repeats, setup)
        in_step = in_step_percent(IMPLS, device, setup)
        label = f"{setup.model} step at {setup.size} px ({step:.1f} ms)"
        head += [f"% of a {label}, isolated call", "% in step"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for impl in IMPLS:
        cells = [impl.name] + [f"{ms[s][impl.name]:.2f}" for s in SIZES]
        for s in SIZES:
            base = ms[s].get(impl.baseline) if impl.baseline else None
            cells.append(f"{ms[s][impl.name] / base:.2f}" if base else "")
        cells += [str(n) for n in ops[impl.name]]
        if setup is not None:
            isolated = ms.get(setup.size, {}).get(impl.name)
            cells.append(f"{100 * isolated / step:.2f}" if isolated is not None else "")
            cells.append(f"{in_step[impl.name]:.2f}")
        rows.append("| " + " | ".join(cells) + " |")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    info = f"{name}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    counts = " / ".join(f"{repeats_at(s, repeats)} at {s} px" for s in SIZES)
    return f"Batch {BATCH}, median of {counts} calls each ({info}).\n\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", help="also write the markdown table to this file")
    parser.add_argument(
        "--targets", action="store_true", help="the targets table (ops, in-step cost) instead"
    )
    parser.add_argument(
        "--all", action="store_true", help="--targets: every name and mode, not just the arms"
    )
    parser.add_argument("--rounds", type=int, default=4, help="--targets: block pairs per impl")
    parser.add_argument("--steps", type=int, default=3, help="--targets: training steps a block")
    parser.add_argument("--repeats", type=int, default=None, help="default 5 on cpu, 50 on cuda")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before each block")
    parser.add_argument("--train-repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--in-step", action="store_true", help="add the training-step columns (always on CUDA)"
    )
    parser.add_argument("--step-model", default="resnet50", help="timm model of the step")
    parser.add_argument("--step-size", type=int, default=224, help="image side of the step")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    device = torch.device(args.device)
    if args.targets:
        setups = TARGET_SETUPS[device.type]
        text = targets_table(device, setups, args.rounds, args.steps, args.all)
    else:
        repeats = args.repeats or (50 if device.type == "cuda" else 5)
        with_step = args.in_step or device.type == "cuda"
        setup = StepSetup(args.step_model, args.step_size) if with_step else None
        text = table(device, repeats, args.warmup, args.train_repeats, setup)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
