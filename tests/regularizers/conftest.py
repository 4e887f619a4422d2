"""Make `import regularizers` find the package, not this test folder.

pytest (prepend import mode, no __init__.py files) puts tests/ on sys.path, where the folder
tests/regularizers/ is a namespace package named `regularizers`; the editable install's finder
runs after the path finder, so without the repository root on sys.path that empty namespace
shadows the real package (its __init__ never runs). Putting the root on sys.path lets the
path finder see the real package, which beats a namespace portion wherever it sits.
(`pythonpath = ["."]` in pyproject's pytest options would do the same for every test folder.)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.append(ROOT)
