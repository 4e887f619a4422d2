"""Results CSVs -> figures, tables, claim verdicts, index.html and report.md; never imports torch.

from bench.report import build_report
build_report("results/cpu-quick", "reports/cpu-quick")   # -> Path of index.html
"""

from bench.report.build import build_report
from bench.report.errors import ReportInputError

__all__ = ["ReportInputError", "build_report"]
