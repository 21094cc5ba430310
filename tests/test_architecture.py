"""The layers of the code point one way (ARCHITECTURE.md): the kernel imports nothing of ours,
`conflation`, `exports` and `maps` use the kernel (maps also the review file of `exports`),
and only `pipeline` — the CLI, the runner and the readers — imports them all. No module of ours
is imported inside a function: a heavy library (GeoPandas, SciPy, Folium, PyMuPDF) may be,
to keep it off the start-up path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "conflation", "exports", "maps")
KERNEL = "pipeline.kernel"

# Modules of ours that bring a heavy library with them: a function may import them, to keep that
# library off the start-up path of commands that do not need it.
HEAVY = {
    "pipeline.sources": "GeoPandas", "pipeline.download": "requests",
    "pipeline.overpass": "requests", "maps.publish": "Folium", "pipeline.pdf": "PyMuPDF",
}

# What each layer may import, besides itself.
ALLOWED: dict[str, tuple[str, ...]] = {
    KERNEL: (),
    "conflation": (KERNEL,),
    "exports": (KERNEL,),
    "maps": (KERNEL, "exports.review"),
    "pipeline": (KERNEL, "conflation", "exports", "maps"),
}


def _layer(module: str) -> str:
    if module == KERNEL or module.startswith(KERNEL + "."):
        return KERNEL
    return module.split(".")[0]


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _imports(tree: ast.AST) -> list[tuple[str, ast.stmt]]:
    result: list[tuple[str, ast.stmt]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            result += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            result.append((node.module, node))
    return result


def _inside_function(tree: ast.AST) -> set[int]:
    """The ids of import statements that sit in a function body."""
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner.update(id(n) for n in ast.walk(node) if isinstance(n, (ast.Import,
                                                                          ast.ImportFrom)))
    return inner


MODULES = _modules()


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down_and_sit_at_the_top(module: str, path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    layer = _layer(module)
    inner = _inside_function(tree)
    upward, hidden = [], []
    for name, node in _imports(tree):
        if not _ours(name):
            continue
        target = _layer(name)
        allowed = target == layer or any(name == a or name.startswith(a + ".") or target == a
                                         for a in ALLOWED[layer])
        if not allowed:
            upward.append(f"line {node.lineno}: {name}")
        heavy = any(name == h or name.startswith(h + ".") for h in HEAVY)
        if id(node) in inner and not heavy:
            hidden.append(f"line {node.lineno}: {name}")
    assert not upward, f"{module} ({layer}) imports upward: {upward}"
    assert not hidden, f"{module} imports modules of ours inside functions: {hidden}"


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The check above can fail: an exports module importing the runner is caught."""
    tree = ast.parse("from pipeline.stages import run_all\nimport conflation.matching\n")
    names = [name for name, _ in _imports(tree)]
    layer = "exports"
    caught = [n for n in names if not any(n == a or n.startswith(a + ".")
                                          for a in ALLOWED[layer]) and _layer(n) != layer]
    assert caught == ["pipeline.stages", "conflation.matching"]
