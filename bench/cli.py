"""`regbench` command line: one subcommand per job, each owned by the module that does it.

    regbench regularizers            list the registered regularizers, their parameters, defaults
    regbench run ...                 train one cell, append its rows to a results folder
    regbench sweep run|status ...    run / inspect a sweep file (TOML)
    regbench report RESULTS_DIR      CSVs -> figures, tables, claims, HTML (no torch needed)
    regbench predict MODEL IMAGE...  classify your own images with a saved model

Each subcommand's module parses its own arguments (`main(argv) -> int`), and is imported only
when called, so `regbench report` never imports torch.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "regularizers": ("regularizers.cli", "list the registered regularizers with parameters"),
    "run": ("bench.run_cli", "train one cell and append its rows to a results folder"),
    "sweep": ("bench.sweep", "run a sweep file, or show its status"),
    "report": ("bench.report.cli", "turn a results folder into figures, tables and claims"),
    "predict": ("bench.predict", "classify image files with a saved model"),
}


def usage() -> str:
    lines = ["usage: regbench SUBCOMMAND [options]   (regbench SUBCOMMAND --help for more)", ""]
    lines += [f"  {name:<14}{text}" for name, (_, text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"regbench: unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
