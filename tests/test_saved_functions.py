"""Saved functions of the notebooks (selconv_lite.teaching.saved_export): the committed module
is the export of the notebooks' cells tagged ``save``, and the export keeps notebook order,
refuses side effects, duplicate names and notebook variables, and detects a stale module."""
from __future__ import annotations

import textwrap
from pathlib import Path

import jupytext
import pytest

from selconv_lite.teaching import saved_export as se

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "selconv_lite" / "teaching" / "saved.py"


def test_committed_module_is_the_export_of_the_notebooks():
    assert COMMITTED.read_text() == se.generate(ROOT / "notebooks"), (
        f"{COMMITTED.relative_to(ROOT)} is out of date with the notebooks' cells tagged "
        f"'save': run `{se.COMMAND}` and commit the result")


def test_committed_module_says_it_is_generated():
    head = COMMITTED.read_text()[:600]
    assert "generated, do not edit" in head and se.COMMAND in head


def _write(folder: Path, name: str, cells: list[tuple[str, str]]) -> Path:
    """A jupytext percent script: cells given as (tags or "md", source)."""
    parts = ["# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n#     name: python3\n# ---"]
    for tags, src in cells:
        src = textwrap.dedent(src).strip("\n")
        if tags == "md":
            parts.append("# %% [markdown]\n" + "\n".join(f"# {ln}" for ln in src.splitlines()))
        else:
            head = "# %%" + (f" tags={tags}" if tags else "")
            parts.append(f"{head}\n{src}")
    path = folder / name
    path.write_text("\n\n".join(parts) + "\n")
    return path


SAVE = '["save"]'


def _export(folder: Path) -> str:
    return se.generate(folder)


def test_export_in_notebook_order_with_imports_collected(tmp_path):
    _write(tmp_path, "02_second.py", [
        ("md", "## later notebook"),
        (SAVE, """
            import numpy as np


            def double_then_sum(x):
                return np.sum(times_two(x))
            """),
    ])
    _write(tmp_path, "01_first.py", [
        ("md", "## first"),
        ("", "x = 3\nprint(x)"),                      # untagged: never exported
        ('["nbval-ignore-output", "save"]', """
            import numpy as np
            from math import sqrt
            SCALE = 2.0 * 1
            '''a string statement: no effect'''


            def times_two(x):
                return SCALE * np.asarray(x)


            class Box:
                side = 3

                def area(self):
                    return sqrt(self.side ** 4)
            """),
        (SAVE, "def last_of_first():\n    return Box().area()"),
    ])
    text = _export(tmp_path)
    # order: notebook 01 (its cells in order), then 02; the header names the cells
    pos = [text.index(f"def {n}") for n in ("times_two", "last_of_first", "double_then_sum")]
    assert pos == sorted(pos)
    assert "``01_first.py cell 2``: SCALE, times_two, Box" in text
    assert "``01_first.py cell 3``: last_of_first" in text
    assert "``02_second.py cell 1``: double_then_sum" in text
    assert text.index("``01_first.py cell 2``") < text.index("``02_second.py cell 1``")
    assert "print(x)" not in text and "a string statement" not in text
    # imports once, at the top, before every definition
    assert text.count("import numpy as np") == 1
    assert text.index("from math import sqrt") < text.index("SCALE = ")
    ns: dict = {}
    exec(compile(text, "saved.py", "exec"), ns)
    assert ns["double_then_sum"]([1, 2]) == 6.0 and ns["last_of_first"]() == 9.0
    assert ns["__all__"] == ["SCALE", "times_two", "Box", "last_of_first", "double_then_sum"]


def test_tag_is_read_from_ipynb_too(tmp_path):
    """A notebook without a script is read from its .ipynb (tag in the cell metadata); jupytext
    writes that tag back as ``# %% tags=["save"]`` in the project's percent format."""
    src = _write(tmp_path, "01_nb.py", [(SAVE, "def f(a):\n    return a + 1")])
    nb = jupytext.read(src)
    src.unlink()
    jupytext.write(nb, tmp_path / "01_nb.ipynb")
    assert "def f(a)" in _export(tmp_path)
    assert '# %% tags=["save"]' in jupytext.writes(nb, "py:percent")


@pytest.mark.parametrize("stmt, what", [
    ("print('hello')", "a call"),
    ("for i in range(3):\n    pass", "For"),
    ("X = np.zeros(3)", "Assign"),
    ("CONFIG.value = 3", "Assign"),
    ("assert f(1) == 2", "Assert"),
    ("if True:\n    Y = 1", "If"),
])
def test_side_effects_are_refused_naming_notebook_and_cell(tmp_path, stmt, what):
    _write(tmp_path, "03_nb.py", [("md", "text"), ("", "a = 1"), (SAVE, f"import numpy as np\n\n\n"
                                                                 f"def f(a):\n    return a + 1\n\n\n{stmt}")])
    with pytest.raises(se.SavedCellError) as e:
        _export(tmp_path)
    msg = str(e.value)
    assert "03_nb.py cell 2" in msg and what in msg and "side effects" in msg, msg
    assert stmt.splitlines()[0] in msg


def test_magics_and_empty_cells_are_refused(tmp_path):
    _write(tmp_path, "01_nb.py", [(SAVE, "%timeit 1 + 1")])
    with pytest.raises(se.SavedCellError, match="01_nb.py cell 0.*not plain Python"):
        _export(tmp_path)
    _write(tmp_path, "01_nb.py", [(SAVE, "# only a comment")])
    with pytest.raises(se.SavedCellError, match="defines nothing"):
        _export(tmp_path)


def test_duplicate_name_is_an_error_unless_marked(tmp_path):
    _write(tmp_path, "01_a.py", [(SAVE, "def mask(x):\n    return x > 0")])
    _write(tmp_path, "02_b.py", [("md", "again"), (SAVE, "def mask(x):\n    return x >= 0")])
    with pytest.raises(se.SavedCellError) as e:
        _export(tmp_path)
    assert "02_b.py cell 1 saves 'mask' again (01_a.py cell 0 saved it first)" in str(e.value)
    assert se.REDEFINE_MARK in str(e.value)
    # within one cell as well
    _write(tmp_path, "02_b.py", [(SAVE, "K = 1\nK = 2")])
    with pytest.raises(se.SavedCellError, match="'K' again"):
        _export(tmp_path)
    # an intended redefinition: allowed, and the later definition wins
    _write(tmp_path, "02_b.py", [(SAVE, f"def mask(x):  {se.REDEFINE_MARK} faster\n    return x >= 0")])
    ns: dict = {}
    exec(_export(tmp_path), ns)
    assert ns["mask"](0) is True and ns["__all__"] == ["mask"]


def test_notebook_variables_and_import_clashes_are_refused(tmp_path):
    _write(tmp_path, "01_a.py", [("", "mu = 3"), (SAVE, "def centre(x):\n    return x - mu")])
    with pytest.raises(se.SavedCellError, match=r"01_a.py cell 1: centre uses mu, not defined"):
        _export(tmp_path)
    _write(tmp_path, "01_a.py", [(SAVE, "OFFSET = mu + 1")])
    with pytest.raises(se.SavedCellError, match="a saved constant uses mu"):
        _export(tmp_path)
    _write(tmp_path, "01_a.py", [(SAVE, "import numpy as np"), (SAVE, "import math as np")])
    with pytest.raises(se.SavedCellError, match="01_a.py cell 1.*binds 'np' to math.*01_a.py cell 0"):
        _export(tmp_path)
    _write(tmp_path, "01_a.py", [(SAVE, "from math import *")])
    with pytest.raises(se.SavedCellError, match="star import"):
        _export(tmp_path)


def test_check_detects_a_stale_module(tmp_path, capsys):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    out = tmp_path / "saved.py"
    args = ["--notebooks", str(nbs), "--out", str(out)]
    _write(nbs, "01_a.py", [(SAVE, "def f(x):\n    return x + 1")])
    assert se.main(args + ["--check"]) == 1                # no module yet
    assert se.main(args) == 0 and "def f(x)" in out.read_text()
    assert se.main(args + ["--check"]) == 0
    _write(nbs, "01_a.py", [(SAVE, "def f(x):\n    return x + 2")])   # the cell was edited
    assert se.main(args + ["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    _write(nbs, "01_a.py", [("", "def f(x):\n    return x + 2")])     # the tag was removed
    assert se.main(args + ["--check"]) == 1
    assert se.main(args) == 0 and "def f" not in out.read_text()
    _write(nbs, "01_a.py", [(SAVE, "print(1)")])                      # a broken cell: exit 2
    assert se.main(args) == 2 and "01_a.py cell 0" in capsys.readouterr().err


def test_candidates_say_why_a_cell_cannot_be_saved(tmp_path):
    _write(tmp_path, "01_a.py", [("", "def f(x):\n    return x\n\n\nassert f(1) == 1"),
                                 ("", "def g(x):\n    return x")])
    rows = se.candidates(se.notebook_files(tmp_path))
    assert [(w, d) for w, d, _ in rows] == [("01_a.py cell 0", ["f"]), ("01_a.py cell 1", ["g"])]
    assert "Assert" in rows[0][2] and rows[1][2] == ""


def _saved_imports(path: Path) -> set[str]:
    """Names a notebook imports from selconv_lite.teaching.saved (any code cell)."""
    import ast
    names = set()
    for c in jupytext.read(path).cells:
        if c.cell_type != "code":
            continue
        try:
            tree = ast.parse(c.source)
        except SyntaxError:                 # IPython magics: not an import of saved
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "selconv_lite.teaching.saved":
                names.update(a.name for a in node.names)
    return names


def test_later_notebooks_use_the_saved_functions_of_earlier_ones():
    """Issue 23: the saved module is imported by at least four notebooks, and each notebook
    imports only names saved by an EARLIER notebook (never its own or a later one's)."""
    paths = se.notebook_files(ROOT / "notebooks")
    saved_by = {}
    for cell in se.collect_saved_cells(paths):
        for name in cell.defined:
            saved_by.setdefault(name, cell.notebook)
    users = {}
    for order, path in enumerate(paths):
        names = _saved_imports(path)
        if not names:
            continue
        users[path.name] = names
        for name in names:
            assert name in saved_by, f"{path.name} imports {name!r}, which no notebook saves"
            origin = [p.name for p in paths].index(saved_by[name])
            assert origin < order, (f"{path.name} imports {name!r}, saved by {saved_by[name]}, "
                                    "which is not an earlier notebook")
    assert len(users) >= 4, f"only {sorted(users)} import the saved functions"
