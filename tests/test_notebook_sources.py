"""Every tutorial notebook is a jupytext pair: ``notebooks/NN_name.py`` (percent script) and
``notebooks/NN_name.ipynb`` (the same cells, with committed outputs). An edit on one side that was
not synced to the other (``jupytext --sync``) fails here."""
from pathlib import Path

import jupytext
import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_notebook_has_a_script_and_vice_versa():
    scripts = {p.stem for p in NB_DIR.glob("[0-9][0-9]_*.py")}
    notebooks = {p.stem for p in NOTEBOOKS}
    assert NOTEBOOKS, "no tutorial notebooks found"
    assert scripts == notebooks, f"unpaired: {sorted(scripts ^ notebooks)}"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_in_sync(ipynb):
    script = ipynb.with_suffix(".py")
    a = _cells(jupytext.read(ipynb))
    b = _cells(jupytext.read(script))
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, (f"{ipynb.name} cell {i} differs from {script.name}; run "
                        f"`jupytext --sync {ipynb.relative_to(NB_DIR.parent)}`")
    assert len(a) == len(b), f"{ipynb.name}: {len(a)} cells, {script.name}: {len(b)} cells"


def test_sync_check_detects_an_edit(tmp_path):
    """The comparison above must see a one-character edit of a code cell."""
    nb = jupytext.read(NOTEBOOKS[0])
    edited = jupytext.reads(jupytext.writes(nb, "py:percent"), "py:percent")
    code = next(i for i, c in enumerate(edited.cells) if c.cell_type == "code")
    edited.cells[code].source += "\nx = 1"
    assert _cells(nb) != _cells(edited)
