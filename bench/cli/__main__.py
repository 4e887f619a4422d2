"""`python -m bench.cli ...`: the same as `regbench ...`."""

import sys

from bench.cli import main

sys.exit(main())
