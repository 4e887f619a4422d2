"""`regbench sweep check SWEEP.toml` (and `regbench sweep run --preflight`): the printing side of
bench.preflight. One line per probed cell shape (peak memory against the device's, measured speed
against the cost model), the sweep's estimated time, the disk, then go (exit 0) or no-go (exit 2)
with every problem and its fix on stderr.
"""

from __future__ import annotations

import sys

from bench.cli import format_seconds, printable
from bench.preflight import CheckReport, Probe, check_sweep


def probe_line(probe: Probe) -> str:
    memory = (f"{probe.peak_mb:.0f}/{probe.total_mb:.0f} MiB" if probe.peak_mb is not None
              else "-")  # fmt: skip
    ratio = probe.speed_ratio
    speed = (f"{probe.images_per_s:.0f} train images/s, {ratio:.2f}x the cost model's time"
             if ratio is not None else "-")  # fmt: skip
    weights = probe.weights or "-"
    text = (f"  {probe.shape.label()}: {probe.cells} cells, peak {memory}, speed {speed}, "
            f"weights {weights}, est. {format_seconds(probe.estimated_s)}")  # fmt: skip
    if probe.error:
        text += f"  [{probe.error.splitlines()[0]}]"
    return printable(text)


def print_report(report: CheckReport) -> None:
    """The report on stdout; the verdict and the problems (one line each) on stderr."""
    print(f"sweep check {report.sweep}: {report.cells} cells to run in {report.results}, "
          f"{len(report.probes)} distinct cell shapes probed on this machine")  # fmt: skip
    device = next((p.device for p in report.probes if p.device), report.device)
    print(f"shapes (backbone, image size, batch, protocol, precision) on {device}:")
    for probe in report.probes:
        print(probe_line(probe))
    measured = any(p.speed_ratio is not None for p in report.probes)
    print(f"estimated time: {format_seconds(report.model_s)} by the cost model"
          + (f", {format_seconds(report.estimated_s)} at the measured speeds" if measured
             else ""))  # fmt: skip
    free = "unknown" if report.free_bytes is None else f"{report.free_bytes / 2**30:.1f} GiB"
    print(f"disk: results need about {report.output_bytes / 2**20:.1f} MiB, {free} free")
    print(f"checked in {report.seconds:.1f}s")
    if report.go:
        print(f"go: sweep {report.sweep} should run here")
        return
    print(f"no-go: {len(report.problems)} problem(s):", file=sys.stderr)
    for problem in report.problems:
        print(f"  problem: {printable(' '.join(str(problem).split()))}", file=sys.stderr)


def check(sweep, results, *, probe_steps: int, keep_best_model: bool = False) -> int:
    """Run the check and print it; 0 go, 2 no-go."""

    def progress(index: int, count: int, probe: Probe) -> None:
        print(f"probed {index + 1}/{count}: {probe.shape.label()} ({probe.seconds:.1f}s)",
              file=sys.stderr, flush=True)  # fmt: skip

    report = check_sweep(
        sweep, results, probe_steps=probe_steps, keep_best_model=keep_best_model,
        on_probe=progress,
    )  # fmt: skip
    print_report(report)
    return 0 if report.go else 2
