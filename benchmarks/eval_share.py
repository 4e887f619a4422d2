"""How much of a cell's wall time is not training: one real cell per setting, side by side.

    python benchmarks/eval_share.py [--sweep sweeps/cpu-quick.toml] [--protocols frozen ...]
        [--regularizer none] [--data-dir DIR] [--out FILE.md]

For each protocol, trains the sweep's seed-0 cell of that protocol and arm twice: with the
settings cpu-quick had before issue 13 (BEFORE: 3 epochs = 45 steps, every epoch evaluated,
clean-train and robustness subsets of 1,000) and with the sweep file's own settings. Prints
one Markdown table: wall time, pure training time (train_s), per-epoch evaluation (eval_s),
the robustness pass (robustness_s), the rest (set-up, final metrics) and the ratio wall_s /
train_s, whose target is <= 1.3 (docs/benchmarks.md). Also the convergence record, since a
cheaper evaluation must not hide an unconverged cell. Data: the CIFAR-10 folder bench.data
finds (or --data-dir); weights as the sweep says (pretrained = "auto").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.config import RunConfig
from bench.sweep import load_sweep
from bench.train import train_cell

# cpu-quick's evaluation and budget settings before issue 13 (results/cpu-quick was run so).
BEFORE = {"train_steps": 0, "epochs": 3, "eval_every": 1, "train_eval_size": 1000,
          "robustness_size": 1000}  # fmt: skip
TARGET = 1.3  # a preset cell's wall time at most this times its pure training time
HEADER = ("| protocol | setting | steps | evaluations | wall s | train s | eval s | "
          "robustness s | other s | wall / train | val gain last 20% (pp) |")  # fmt: skip


def pick_cell(sweep_path: Path, protocol: str, regularizer: str) -> RunConfig:
    """The sweep's first seed-0 cell with this protocol and regularizer."""
    for cfg in load_sweep(sweep_path).cells:
        if cfg.seed == 0 and cfg.protocol == protocol and cfg.regularizer == regularizer:
            return cfg
    raise SystemExit(f"{sweep_path}: no seed-0 cell with protocol={protocol} {regularizer}")


def measure(cfg: RunConfig) -> dict[str, float]:
    result = train_cell(cfg, progress=False)
    row = result.row
    if row["status"] != "ok":
        raise SystemExit(f"cell failed: {row['error']}")
    other = row["wall_s"] - row["train_s"] - row["eval_s"] - row["robustness_s"]
    gain = row["val_gain_last20"]
    return {**{k: row[k] for k in ("wall_s", "train_s", "eval_s", "robustness_s", "steps_run")},
            "evaluations": len(result.epochs), "other_s": other,
            "ratio": row["wall_s"] / row["train_s"],
            "gain_pp": float("nan") if gain is None else 100 * gain}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, default=Path("sweeps/cpu-quick.toml"))
    parser.add_argument("--protocols", nargs="+", default=["frozen", "unfrozen"])
    parser.add_argument("--regularizer", default="none")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    lines = [HEADER, "|---" * 11 + "|"]
    for protocol in args.protocols:
        after = pick_cell(args.sweep, protocol, args.regularizer)
        if args.data_dir:
            after = after.replace(data_dir=args.data_dir)
        for name, cfg in (("before", after.replace(**BEFORE)), ("sweep file", after)):
            m = measure(cfg)
            lines.append(
                f"| {protocol} | {name} | {m['steps_run']} | {m['evaluations']} | "
                f"{m['wall_s']:.1f} | {m['train_s']:.1f} | {m['eval_s']:.1f} | "
                f"{m['robustness_s']:.1f} | {m['other_s']:.1f} | {m['ratio']:.2f} | "
                f"{m['gain_pp']:.2f} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + f"\n\nTarget: wall / train <= {TARGET}.\n"
    print("\n" + text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
