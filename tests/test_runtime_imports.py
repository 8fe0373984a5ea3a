"""The runtime's imports: no stylecam module imports torch or the trainer, and no import circle
among the stylecam modules, counting imports inside functions and importlib.import_module calls."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[1] / "stylecam"
FORBIDDEN = ("torch", "torchvision", "trainer")   # top-level names the runtime must never import


def module_name(path: Path, root: Path = RUNTIME) -> str:
    """stylecam/study.py -> "stylecam.study"; stylecam/__init__.py -> "stylecam"."""
    parts = (root.name, *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[str, tuple[str, ...]]]:
    """Every import in ``source`` as (module, names taken from it), wherever the statement stands (top
    level, functions, branches), relative imports resolved: ``import a.b`` -> ("a.b", ()),
    ``from a import b, c`` -> ("a", ("b", "c")), ``importlib.import_module("x")`` / ``__import__("x")``
    with a literal name -> ("x", ())."""
    found: list[tuple[str, tuple[str, ...]]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.append((base, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__"):
                found.append((node.args[0].value, ()))
    return found


def import_graph(root: Path = RUNTIME) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(edges between the package's own modules, every module name each module imports).

    ``from pkg import mod`` is an edge to pkg.mod; ``from pkg import name`` (not a module) one to pkg."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    edges: dict[str, set[str]] = {}
    everything: dict[str, set[str]] = {}
    for module, path in files.items():
        found = imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
        everything[module] = {base for base, _ in found}
        targets = set()
        for base, names in found:
            targets |= {f"{base}.{n}" if f"{base}.{n}" in files else base for n in names} if names else {base}
        edges[module] = {t for t in targets if t in files and t != module}
    return edges, everything


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None when the graph has none."""
    state: dict[str, str] = {}     # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_runtime_module_imports_torch_or_the_trainer():
    _, everything = import_graph()
    assert len(everything) > 20, sorted(everything)   # every stylecam module was read
    offending = sorted(f"{module} imports {name}" for module, names in everything.items() for name in names
                       if name.split(".")[0] in FORBIDDEN)
    assert offending == []


def test_no_import_circle_among_runtime_modules():
    edges, _ = import_graph()
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checks_see_imports_inside_functions_and_circles(tmp_path):
    """The walker itself: a function-level import, a relative import and importlib count."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("__version__ = 1\n")
    (package / "a.py").write_text("def f():\n    from pkg import b\n    import torch.nn\n")
    (package / "b.py").write_text("from . import c\nfrom pkg import __version__\n")
    (package / "c.py").write_text("import importlib\n\ndef g():\n    return importlib.import_module('pkg.a')\n")
    edges, everything = import_graph(package)
    assert edges == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg", "pkg.c"}, "pkg.c": {"pkg.a"}}
    assert "torch.nn" in everything["pkg.a"]
    assert find_cycle(edges) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert find_cycle({"x": {"y"}, "y": set()}) is None


BLOCKED_IMPORT = """
import importlib, pkgutil, sys
for name in {forbidden!r}:
    sys.modules[name] = None          # `import torch` -> ImportError
import stylecam
names = sorted(m.name for m in pkgutil.walk_packages(stylecam.__path__, "stylecam.") if m.name != "stylecam.__main__")
for name in names:
    importlib.import_module(name)
stylecam.Stylizer                      # the lazy attribute imports the pipeline
print(len(names))
"""


def test_every_runtime_module_imports_with_torch_and_the_trainer_blocked():
    proc = subprocess.run([sys.executable, "-c", BLOCKED_IMPORT.format(forbidden=FORBIDDEN)],
                          capture_output=True, text=True, timeout=120, cwd=RUNTIME.parent)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) >= 20


@pytest.mark.parametrize("source, expected", [
    ("import torch", [("torch", ())]),
    ("from trainer.export_vgg import export_vgg", [("trainer.export_vgg", ("export_vgg",))]),
    ("def f():\n    if True:\n        import torchvision.models as m", [("torchvision.models", ())]),
    ("from .. import x, y", [("stylecam", ("x", "y"))]),
    ("from .sibling import z", [("stylecam.sub.sibling", ("z",))]),
])
def test_imports_of(source, expected):
    assert imports_of(source, "stylecam.sub.mod") == expected
