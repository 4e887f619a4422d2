"""`regbench` command line: one subcommand per job, each owned by the module that does it.

    regbench regularizers            list the registered regularizers, their parameters, defaults
    regbench run ...                 train one cell, append its rows to a results folder
    regbench sweep run|status|check  run / inspect / preflight a sweep file (TOML)
    regbench report RESULTS_DIR...   CSVs -> figures, tables, claims, HTML (no torch needed)
    regbench compare REF NEW         does a rerun reproduce a results folder? (exit 0/1/2)
    regbench predict MODEL IMAGE...  classify your own images with a saved model

Every command line lives in this package, one module per subcommand (`main(argv) -> int`): it
parses the arguments, calls the library, prints and picks the exit code. A subcommand's module is
imported only when called, so `regbench report` never imports torch.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import unicodedata

SUBCOMMANDS = {
    "regularizers": ("bench.cli.regularizers", "list the registered regularizers with parameters"),
    "run": ("bench.cli.run", "train one cell and append its rows to a results folder"),
    "sweep": ("bench.cli.sweep", "run a sweep file, or show its status"),
    "report": ("bench.cli.report", "turn a results folder into figures, tables and claims"),
    "compare": ("bench.cli.compare", "compare two results folders of one sweep, cell by cell"),
    "predict": ("bench.cli.predict", "classify image files with a saved model"),
}


SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` safe to print as one line of a terminal: control and format characters (newlines,
    escape sequences, bidi overrides), line separators, lone surrogates (undecodable bytes of a
    file name) and backslashes are written as Python-style escapes."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char in SHORT_ESCAPES:
            out.append(SHORT_ESCAPES[char])
        elif category in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            code = ord(char)
            if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogateescape of byte code - 0xDC00
                out.append(f"\\x{code - 0xDC00:02x}")
            else:
                out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def format_seconds(seconds: float) -> str:
    """A duration for a terminal line: `4m05s`, `2h07m`."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def version() -> str:
    """The installed package's version (pyproject.toml), or a note when it is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("regbench")
    except PackageNotFoundError:
        return "(not installed: pip install -e . in the checkout)"


def usage() -> str:
    lines = [
        "usage: regbench SUBCOMMAND [options]   (regbench SUBCOMMAND --help for more)",
        "       regbench --version",
        "",
    ]
    lines += [f"  {name:<14}{text}" for name, (_, text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


@contextlib.contextmanager
def library_messages():
    """While a command runs, the library's INFO messages (e.g. bench.data's download notice) go
    to stderr, prefixed `regbench:`; the library itself only logs."""
    logger = logging.getLogger("bench")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("regbench: %(message)s"))
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"regbench {version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"regbench: unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    with library_messages():
        return int(module.main(rest) or 0)
