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


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(ipynb, caplog):
    """papermill parses the parameters cell when a run passes parameters (e.g. the series'
    ``--max-dim``); a line it cannot parse (an ``=`` in a comment) is logged as a warning on
    every such run, and the parameter is missing from ``papermill --help-notebook``."""
    import logging

    import nbformat
    from papermill.translators import PythonTranslator

    nb = nbformat.read(str(ipynb), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{ipynb.name}: one cell tagged 'parameters' expected, found {len(cells)}"
    src = cells[0].source
    names = [ln.split("=", 1)[0].strip() for ln in src.splitlines()
             if ln.strip() and not ln.startswith(("#", " ")) and "=" in ln]
    with caplog.at_level(logging.WARNING, logger="papermill"):
        parsed = [p.name for p in PythonTranslator.inspect({"source": src})]
    assert parsed == names, f"{ipynb.name}: papermill did not read {sorted(set(names) - set(parsed))}"
    assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()]
