"""The import rules of DEVELOPERS.md, read from the source (ast): no import circle among the
modules of bench/ and regularizers/ (function-local imports included), and nothing under
bench/report imports torch or timm, directly or through what it imports at import time."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "regularizers")
TRAINING = ("torch", "timm", "torchvision")  # what the report must never import


def modules(root: Path = REPO) -> dict[str, Path]:
    """Dotted name -> file of every module of PACKAGES (a package: its __init__.py)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _deferred(node: ast.AST) -> bool:
    """A function body (runs when called) or an `if TYPE_CHECKING:` block (never runs)."""
    if isinstance(node, ast.If):
        test = node.test
        return isinstance(test, ast.Name | ast.Attribute) and (
            getattr(test, "id", None) == "TYPE_CHECKING"
            or getattr(test, "attr", None) == "TYPE_CHECKING"
        )
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)


def _import_nodes(tree: ast.AST, local: bool):
    """Every import statement of `tree`; without `local`, only those run when the module is
    imported (not in a function body nor under `if TYPE_CHECKING:`)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if local or not _deferred(node):
            stack.extend(ast.iter_child_nodes(node))


def imported(name: str, path: Path, known: set[str], local: bool = True) -> set[str]:
    """The modules `name` imports (ours by dotted name, others by their top-level package):
    `from bench.report import arms` is bench.report.arms, a relative import is resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path)), local):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]  # fmt: skip
        for target in targets:
            out.add(target if target in known or target.startswith(PACKAGES) else target.split(".")[0])  # fmt: skip
    out.discard(name)
    return {t for t in out if t in known or not t.startswith(PACKAGES)}


def graph(root: Path = REPO, local: bool = True) -> dict[str, set[str]]:
    """Module -> the modules of PACKAGES and outside packages it imports. Without `local` (what
    runs when a module is imported), a module also runs its package's __init__.py."""
    found = modules(root)
    edges = {name: imported(name, path, set(found), local) for name, path in found.items()}
    if not local:
        for name, targets in edges.items():
            parent = name.rpartition(".")[0]
            if parent in found:
                targets.add(parent)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `edges` (strongly connected components of more than one module,
    or a module importing itself), each as a sorted list (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in edges), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    found.append(sorted(component))
    return found


def reached(edges: dict[str, set[str]], starts) -> set[str]:
    """Every module reachable from `starts` through `edges` (outside modules included)."""
    seen, todo = set(), list(starts)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(edges.get(name, ()))
    return seen


def report_imports(root: Path = REPO) -> set[str]:
    """What importing and running bench/report can import: its modules' own imports (function-
    local ones too), and through them every module's import-time imports."""
    at_import, everything = graph(root, local=False), graph(root)
    report = [name for name in everything if name.startswith("bench.report")]
    starts = set().union(*(everything[name] for name in report)) | set(report)
    return reached(at_import, starts)


def test_no_import_circle_in_bench_or_regularizers():
    found = cycles(graph())
    assert found == [], f"import circle(s): {found}"


def test_arms_and_scopes_are_the_ground_floor():
    """bench.arms (what sweep, search, runner and report exchange) imports nothing of ours, so
    every layer can use it without an import circle or torch."""
    assert {m for m in graph()["bench.arms"] if m.startswith(PACKAGES)} == set()
    users = [name for name, targets in graph().items() if "bench.arms" in targets]
    assert {"bench.sweep", "bench.search", "bench.runner", "bench.report.search_csv",
            "bench.report.style", "bench.report.arms"} <= set(users)  # fmt: skip


def test_the_report_imports_no_torch():
    """bench/report's own imports (function-local ones too) and, through them, every module's
    import-time imports: none is torch, timm or torchvision (a function-local import outside
    the report, such as bench.config's of the regularizers, runs only when called; the report's
    run without torch is tested in tests/report/test_report_build.py)."""
    loaded = report_imports()
    assert not loaded & set(TRAINING), sorted(loaded & set(TRAINING))
    assert {"bench.report.load", "bench.schema", "pandas"} <= loaded  # the walk found them


# --- the checks themselves can fail -------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    "files, expected",
    [
        # a function-local import closes the circle (search.py <-> sweep.py before issue 25)
        ({"bench/__init__.py": "", "bench/a.py": "from bench.b import x\n",
          "bench/b.py": "def f():\n    from bench.a import y\n"}, [["bench.a", "bench.b"]]),
        # `from package import module` is the module; relative imports resolve
        ({"bench/__init__.py": "", "bench/r/__init__.py": "from .load import f\n",
          "bench/r/load.py": "from bench.r import arms\n", "bench/r/arms.py": "from . import load\n"},
         [["bench.r.arms", "bench.r.load"]]),
        ({"bench/__init__.py": "", "bench/a.py": "import bench.b\n", "bench/b.py": "import os\n",
          "regularizers/__init__.py": "from bench import a\n"}, []),
    ],
)  # fmt: skip
def test_circles_are_found_in_function_local_and_relative_imports(tmp_path, files, expected):
    assert cycles(graph(write(tmp_path, files))) == expected


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"bench/helper.py": "import torch.nn\n"}, {"torch"}),  # behind an import-time import
        ({"bench/helper.py": "def f():\n    import timm\n"}, set()),  # runs only when called
        ({"bench/helper.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    import torch\n"}, set()),  # never runs
        # the report's own function-local import counts; a package __init__ runs on import
        ({"bench/report/figures.py": "def draw():\n    import torchvision\n"}, {"torchvision"}),
        ({"bench/__init__.py": "import timm\n"}, {"timm"}),
    ],
)  # fmt: skip
def test_torch_the_report_would_import_is_found(tmp_path, files, expected):
    base = {"bench/__init__.py": "", "bench/report/__init__.py": "", "bench/helper.py": "",
            "bench/report/load.py": "from bench import helper\n"}  # fmt: skip
    assert report_imports(write(tmp_path, {**base, **files})) & set(TRAINING) == expected
