"""The package is organised in layers; a module may import only from a lower layer or from its
own subpackage, and never a private name of another module; and the module-level import graph
has no cycle, inside a subpackage included.

Layers, lowest first: ``core`` < ``features``, ``method``, ``data`` < ``experiments``, ``viz``,
``scale`` < ``teaching``. Subpackages of the same rank are independent of each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "selconv_lite"
RANK = {"core": 0, "features": 1, "method": 1, "data": 1, "experiments": 2, "viz": 2, "scale": 2,
        "teaching": 3}


def _modules():
    return sorted(p for p in PKG.rglob("*.py") if p.parent != PKG)


def _imports(path: Path, pkg: Path = PKG):
    """Yield ``(lineno, subpackage, module, names)`` of every import of selconv_lite in ``path``."""
    rel = path.relative_to(pkg).with_suffix("").parts  # e.g. ("method", "masks")
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-1])[: len(rel) - node.level]
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "selconv_lite":
                parts = node.module.split(".")[1:]
            else:
                continue
            names = [a.name for a in node.names]
            if len(parts) == 1:  # "from . import x" / "from selconv_lite.sub import x"
                for n in names:
                    yield node.lineno, parts[0], n, []
            elif parts:
                yield node.lineno, parts[0], parts[1], names
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "selconv_lite" and len(parts) > 1:
                    yield node.lineno, parts[1], parts[2] if len(parts) > 2 else None, []


def test_every_module_lives_in_a_known_layer():
    subs = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert subs <= set(RANK), f"subpackages without a layer rank: {sorted(subs - set(RANK))}"
    flat = sorted(p.name for p in PKG.glob("*.py") if p.name != "__init__.py")
    assert not flat, f"modules outside the layer subpackages: {flat}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_only_downward_and_public(path):
    own = path.relative_to(PKG).parts[0]
    bad = []
    for lineno, sub, mod, names in _imports(path):
        if sub not in RANK:
            continue
        if sub != own and RANK[sub] >= RANK[own]:
            bad.append(f"{path.name}:{lineno} imports {sub}.{mod} ({sub} is not below {own})")
        if sub != own or mod != path.stem:
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{path.name}:{lineno} imports the private name {sub}.{mod}.{n}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The AST reader must catch an upward and a private import (guards the test above)."""
    fake = PKG / "method" / "_layer_probe_tmp.py"
    fake.write_text("from ..teaching.series import execute\nfrom .masks import _check_fmap\n")
    try:
        found = list(_imports(fake))
    finally:
        fake.unlink()
    assert ("teaching", "series", ) == found[0][1:3]
    assert found[1][3] == ["_check_fmap"]


# ----------------------------------------------------------------------------------------------
# cycles of the module-level import graph
# ----------------------------------------------------------------------------------------------
def _graph(pkg: Path = PKG) -> dict[str, set[str]]:
    """``{module: {modules it imports}}`` over every module of the package, as dotted names
    relative to the package (``"data.datasets"``). Imports inside functions count too (a
    deferred import hides a cycle rather than removing it); a subpackage's ``__init__`` is the
    node ``"<sub>"``."""
    mods = {}
    for p in sorted(pkg.rglob("*.py")):
        rel = p.relative_to(pkg).with_suffix("").parts
        mods[".".join(rel[:-1] if rel[-1] == "__init__" else rel)] = p
    graph = {}
    for name, path in mods.items():
        deps = set()
        for _, sub, mod, _names in _imports(path, pkg):
            for cand in (f"{sub}.{mod}" if mod else None, sub):
                if cand in mods and cand != name:
                    deps.add(cand)
                    break
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a cycle."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_modules():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles between modules: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_sees_a_cycle_inside_a_subpackage(tmp_path):
    """A synthetic package whose data.a and data.b import each other (one of them inside a
    function) is reported; removing one import removes the cycle."""
    pkg = tmp_path / "selconv_lite"
    (pkg / "core").mkdir(parents=True)
    (pkg / "data").mkdir()
    for sub in ("", "core", "data"):
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "core" / "files.py").write_text("")
    (pkg / "data" / "a.py").write_text("from ..core.files import x\nfrom .b import load\n")
    (pkg / "data" / "b.py").write_text("def load():\n    from .a import thing\n")
    (pkg / "data" / "c.py").write_text("from selconv_lite.data import a\n")
    assert _cycles(_graph(pkg)) == [["data.a", "data.b"]]
    (pkg / "data" / "b.py").write_text("def load():\n    return 1\n")
    assert _cycles(_graph(pkg)) == []


# ----------------------------------------------------------------------------------------------
# the public API of each module
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [p for p in _modules() if p.name != "__init__.py"],
                         ids=lambda p: str(p.relative_to(PKG)))
def test_every_module_declares_its_public_names(path):
    """``__all__`` in every module, naming only public names the module defines or imports."""
    import importlib

    name = "selconv_lite." + ".".join(path.relative_to(PKG).with_suffix("").parts)
    mod = importlib.import_module(name)
    assert isinstance(getattr(mod, "__all__", None), list), f"{name} has no __all__ list"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    private = [n for n in mod.__all__ if n.startswith("_")]
    dup = sorted({n for n in mod.__all__ if mod.__all__.count(n) > 1})
    assert not missing and not private and not dup, f"{name}.__all__: missing {missing}, private {private}, twice {dup}"
