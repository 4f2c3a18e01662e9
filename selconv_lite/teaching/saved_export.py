"""Saved functions of the tutorial notebooks (the d2l ``#@save`` pattern).

A notebook derives a step of the paper (Hoang et al., ACM MM 2017) from scratch in a code cell;
when a later notebook needs that step again, the cell is **tagged** ``save`` and its definitions
are exported into one module, :mod:`selconv_lite.teaching.saved`, which the later notebooks
import (``from selconv_lite.teaching.saved import my_max_mask``) instead of re-deriving the step
or calling the package for it. One command regenerates that module::

    python -m selconv_lite.teaching.saved_export            # write selconv_lite/teaching/saved.py
    python -m selconv_lite.teaching.saved_export --check    # exit 1 when it is out of date

It reads the jupytext sources ``notebooks/NN_*.py`` (the ``.ipynb`` when a notebook has no
script) in notebook order, and within a notebook in cell order. In the percent scripts a saved
cell starts with ``# %% tags=["save"]`` (``tags=["nbval-ignore-output", "save"]`` with other
tags); in the ``.ipynb`` the tag is in the cell's ``metadata.tags``.

Why the module lives in the package (``selconv_lite/teaching/saved.py``) and not next to the
notebooks (a ``notebooks/d2l``-style file): the notebooks run from several working folders --
papermill and nbval start the kernel in ``notebooks/``, the series and sweep runners execute
copies into output folders, a reader may open a notebook from anywhere -- and an installed
package is importable from all of them without touching ``sys.path``. Being inside the package
also puts the readers' code under the layer rules (``tests/test_layers.py``): ``teaching`` is
the top layer, so a saved function may use any public name of the package and no private one.

Rules, each enforced with an error naming the notebook and the cell (:class:`SavedCellError`):

* a saved cell holds only imports, ``def``, ``class``, constant assignments (``EPS = 1e-300``,
  ``LAYERS_USED = ("conv5_3", "pool5")``: literals, names and attributes, arithmetic; no call)
  and docstrings. Any other top-level statement (a call, a loop, a check, ``print``) has side
  effects and is refused: keep the check in the next, untagged cell;
* a name is saved once; saving it again is an error unless the later definition is marked as an
  intended redefinition with the comment ``#@redefine`` on its ``def`` / ``class`` /
  assignment line (the later definition wins, as it would in the notebook);
* a saved function may only use names the module defines (saved definitions, collected imports,
  builtins): a notebook variable it would read as a global (``mu``, ``db``) is an error;
* imports are collected at the top of the module, each once; one name imported from two places
  is an error.

The generated module starts with a header saying that it is generated, by which command, and from
which cells (notebook file and cell number, counted from 0 with markdown cells, as jupytext and
``tests/test_notebook_sources.py`` count them). ``tests/test_saved_functions.py`` regenerates it
in memory and fails when the committed file differs.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import symtable
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .nbcheck import notebook_paths, read_notebook

__all__ = ["SAVE_TAG", "REDEFINE_MARK", "COMMAND", "SavedCellError", "SavedCell", "notebook_files",
           "parse_saved_cell", "collect_saved_cells", "render_module", "default_paths", "generate",
           "candidates", "main"]

SAVE_TAG = "save"
REDEFINE_MARK = "#@redefine"
COMMAND = "python -m selconv_lite.teaching.saved_export"


class SavedCellError(ValueError):
    """A cell tagged ``save`` breaks a rule of the export (the message names notebook and cell)."""


@dataclass
class SavedCell:
    """One cell tagged ``save``: where it is, its statements and the names it defines."""

    notebook: str  # file name, e.g. "02_masks.py"
    index: int  # cell number counted from 0, markdown cells included
    source: str
    imports: list[ast.stmt] = field(default_factory=list)
    body: list[tuple[ast.stmt, str]] = field(default_factory=list)  # (node, its source text)
    defined: list[str] = field(default_factory=list)
    redefined: set[str] = field(default_factory=set)

    @property
    def where(self) -> str:
        return f"{self.notebook} cell {self.index}"


def notebook_files(folder: str | Path) -> list[Path]:
    """The notebooks ``NN_*.py`` of ``folder`` in order (``NN_*.ipynb`` where no script exists)."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"no notebook folder {folder}")
    return notebook_paths([folder], (".py", ".ipynb"))


def _read_cells(path: Path):
    try:
        return read_notebook(path).cells
    except Exception as e:  # jupytext / nbformat raise many kinds on a malformed file
        raise SavedCellError(f"{path.name}: cannot be read as a notebook ({e})") from None


def _is_constant_expr(node: ast.AST) -> bool:
    """Literals, names, attributes, containers and arithmetic of those: no call, no subscript
    of a call, nothing that runs code of its own."""
    if isinstance(node, (ast.Constant, ast.Name)):
        return True
    if isinstance(node, ast.Attribute):
        return _is_constant_expr(node.value)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_constant_expr(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_constant_expr(k) and _is_constant_expr(v)
                   for k, v in zip(node.keys, node.values))
    if isinstance(node, ast.UnaryOp):
        return _is_constant_expr(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant_expr(node.left) and _is_constant_expr(node.right)
    return False


def _target_names(target: ast.AST) -> list[str] | None:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names = [_target_names(e) for e in target.elts]
        return None if any(n is None for n in names) else [x for n in names for x in n]
    return None  # attribute / subscript targets modify another object: a side effect


def _describe(node: ast.stmt) -> str:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return "a call"
    return f"a top-level {type(node).__name__} statement"


def parse_saved_cell(notebook: str, index: int, source: str) -> SavedCell:
    """Split a saved cell into imports and definitions; :class:`SavedCellError` on a statement
    with side effects or a cell that is not plain Python."""
    cell = SavedCell(notebook, index, source)
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise SavedCellError(f"{cell.where} (tagged {SAVE_TAG!r}) is not plain Python: {e.msg} at "
                             f"line {e.lineno} (IPython magics and shell escapes cannot be saved)"
                             ) from None
    lines = source.splitlines()
    for node in tree.body:
        text = ast.get_source_segment(source, node, padded=False)
        head = lines[node.lineno - 1] if node.lineno <= len(lines) else ""
        names: list[str] | None
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                raise SavedCellError(f"{cell.where}: `{text}` -- a star import cannot be saved "
                                     "(name what you import)")
            cell.imports.append(node)
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            continue  # a docstring-like string: no effect, not exported
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.decorator_list:
                text = "\n".join(lines[node.decorator_list[0].lineno - 1:node.end_lineno])
            names = [node.name]
            head = lines[node.lineno - 1]
        elif isinstance(node, ast.Assign) and _is_constant_expr(node.value):
            found = [_target_names(t) for t in node.targets]
            names = None if any(n is None for n in found) else [x for n in found for x in n]
        elif isinstance(node, ast.AnnAssign) and node.value is not None \
                and _is_constant_expr(node.value):
            names = _target_names(node.target)
        else:
            names = None
        if not names:
            first = (text or "").splitlines()[0] if text else type(node).__name__
            raise SavedCellError(
                f"{cell.where} (tagged {SAVE_TAG!r}), line {node.lineno}: `{first.strip()}` is "
                f"{_describe(node)}, which has side effects when the module is imported; a saved "
                "cell may hold only imports, def, class and constant assignments -- move the "
                "rest to the next, untagged cell")
        cell.body.append((node, text))
        cell.defined += names
        if REDEFINE_MARK in head:
            cell.redefined.update(names)
    if not cell.body and not cell.imports:
        raise SavedCellError(f"{cell.where} is tagged {SAVE_TAG!r} but defines nothing")
    return cell


def collect_saved_cells(paths: Sequence[str | Path]) -> list[SavedCell]:
    """The saved cells of ``paths`` (notebooks, in the given order), parsed and checked."""
    cells = []
    for path in map(Path, paths):
        for i, c in enumerate(_read_cells(path)):
            if c.cell_type == "code" and SAVE_TAG in (c.metadata.get("tags") or []):
                cells.append(parse_saved_cell(path.name, i, c.source))
    return cells


def _import_bindings(node: ast.stmt) -> list[tuple[str, str]]:
    """(bound name, what it is bound to) of an import statement."""
    out = []
    for a in node.names:
        if isinstance(node, ast.Import):
            bound = a.asname or a.name.split(".")[0]
            out.append((bound, a.name if a.asname else a.name.split(".")[0]))
        else:
            mod = "." * node.level + (node.module or "")
            out.append((a.asname or a.name, f"{mod}:{a.name}"))
    return out


def _undefined_globals(text: str, known: set[str]) -> dict[str, set[str]]:
    """{function or class: global names it uses that ``known`` and builtins lack}."""
    table = symtable.symtable(text, "<saved>", "exec")
    missing: dict[str, set[str]] = {}

    def walk(t, owner):
        module = t.get_type() == "module"
        for s in t.get_symbols():
            name = s.get_name()
            unbound = (not (s.is_assigned() or s.is_imported())) if module else s.is_global()
            if s.is_referenced() and unbound and name not in known and not hasattr(builtins, name):
                missing.setdefault(owner, set()).add(name)
        for child in t.get_children():
            walk(child, owner if t.get_type() != "module" else child.get_name())

    walk(table, "<module>")
    return missing


def render_module(cells: Sequence[SavedCell], notebooks_label: str = "notebooks/") -> str:
    """The text of the generated module; :class:`SavedCellError` on a duplicate name, an import
    clash or a function that reads a notebook variable."""
    owner: dict[str, str] = {}
    bound: dict[str, tuple[str, str]] = {}
    import_lines: list[str] = []
    for cell in cells:
        for node in cell.imports:
            for name, target in _import_bindings(node):
                if name in bound and bound[name][0] != target:
                    raise SavedCellError(
                        f"{cell.where}: `{ast.unparse(node)}` binds {name!r} to {target}, but "
                        f"{bound[name][1]} bound it to {bound[name][0]}")
                bound.setdefault(name, (target, cell.where))
            line = ast.unparse(node)
            if line not in import_lines:
                import_lines.append(line)
        for name in cell.defined:
            if name in bound:
                raise SavedCellError(f"{cell.where} defines {name!r}, which {bound[name][1]} "
                                     "imports: rename one of them")
            if name in owner and name not in cell.redefined:
                raise SavedCellError(
                    f"{cell.where} saves {name!r} again ({owner[name]} saved it first); rename "
                    f"it, or mark the new definition as intended with `{REDEFINE_MARK}` on its "
                    "def/class line")
            owner[name] = cell.where
    exported = list(dict.fromkeys(n for c in cells for n in c.defined))
    sources = "\n".join(f"* ``{c.where}``: {', '.join(c.defined) or '(imports only)'}"
                        for c in cells) or "* (no cell is tagged yet)"
    doc = (f'"""Functions the tutorial notebooks derive and save (cells tagged ``{SAVE_TAG}``).\n\n'
           f"GENERATED from the cells of {notebooks_label}NN_*.py tagged ``{SAVE_TAG}`` by\n\n"
           f"    {COMMAND}\n\ngenerated, do not edit: edit the notebook cell and run the command "
           "again (the rules are\nin :mod:`selconv_lite.teaching.saved_export`).\n\n"
           "Source cells, in order (cell numbers count from 0, markdown cells included):\n\n"
           f"{sources}\n\"\"\"\n")
    parts = [doc]
    if import_lines:
        parts += ["", *import_lines]
    parts += ["", f"__all__ = {exported!r}"]
    for cell in cells:
        if not cell.body:
            continue
        parts += ["", "", f"# ---- {cell.where} " + "-" * max(4, 80 - len(cell.where) - 8)]
        previous_def = False
        for j, (node, text) in enumerate(cell.body):
            is_def = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            if j and (is_def or previous_def):
                parts += ["", ""]
            parts.append(text)
            previous_def = is_def
    text = "\n".join(parts).rstrip() + "\n"
    missing = _undefined_globals(text, set(bound) | set(owner) | {"__all__"})
    if missing:
        raise SavedCellError("; ".join(
            (f"{owner[f]}: {f} uses " if f in owner else "a saved constant uses ")
            + f"{', '.join(sorted(v))}, not defined by a saved cell or an import (a notebook "
            "variable?): pass it as an argument or save its definition"
            for f, v in sorted(missing.items())))
    return text


def default_paths() -> tuple[Path, Path]:
    """(``notebooks/`` of the checkout, ``selconv_lite/teaching/saved.py``)."""
    from .series import default_notebooks_dir

    return default_notebooks_dir(), Path(__file__).with_name("saved.py")


def generate(notebooks: str | Path | None = None) -> str:
    """The module text generated from the notebooks of ``notebooks`` (default: the checkout's)."""
    folder = Path(notebooks) if notebooks is not None else default_paths()[0]
    return render_module(collect_saved_cells(notebook_files(folder)))


def candidates(paths: Sequence[str | Path]) -> list[tuple[str, list[str], str]]:
    """For every code cell of ``paths`` that defines a function or class: (``"<notebook> cell
    <n>"``, the names it defines, ``""`` when it could be tagged ``save`` as it is, otherwise why
    not). Shows which cells need their checks moved to a cell of their own before saving."""
    rows = []
    for path in map(Path, paths):
        for i, c in enumerate(_read_cells(path)):
            if c.cell_type != "code":
                continue
            try:
                tree = ast.parse(c.source)
            except SyntaxError:
                continue
            defs = [n.name for n in tree.body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
            if not defs:
                continue
            try:
                render_module([parse_saved_cell(path.name, i, c.source)])
                why = ""
            except SavedCellError as e:
                why = str(e)
            rows.append((f"{path.name} cell {i}", defs, why))
    return rows


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=COMMAND, description="Export the notebook cells tagged 'save' into one module.")
    ap.add_argument("--notebooks", help="notebook folder (default: notebooks/ of the checkout)")
    ap.add_argument("--out", help="module to write (default: selconv_lite/teaching/saved.py)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 when the module differs from the notebooks")
    ap.add_argument("--candidates", action="store_true",
                    help="write nothing; list the code cells defining functions and whether each "
                         "could be tagged 'save' as it is")
    args = ap.parse_args(list(argv) if argv is not None else None)
    nb_default, out_default = default_paths() if not (args.notebooks and args.out) else (None, None)
    folder = Path(args.notebooks) if args.notebooks else nb_default
    out = Path(args.out) if args.out else out_default
    if args.candidates:
        for where, defs, why in candidates(notebook_files(folder)):
            print(f"{where}: {', '.join(defs)}: " + ("can be saved" if not why else
                                                     f"cannot be saved as it is -- {why}"))
        return 0
    try:
        text = generate(folder)
    except (SavedCellError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    current = out.read_text() if out.exists() else None
    n = text.count("\n# ---- ")
    if args.check:
        if current != text:
            print(f"{out} is out of date with the saved cells of {folder}: run {COMMAND}",
                  file=sys.stderr)
            return 1
        print(f"{out} is up to date ({n} saved cell(s))")
        return 0
    if current != text:
        out.write_text(text)
    print(f"{'wrote' if current != text else 'unchanged:'} {out} ({n} saved cell(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
