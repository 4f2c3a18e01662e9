"""Write the nbgrader source notebooks ``source/<a>/<a>.ipynb`` from their jupytext scripts.

Each assignment's source is a pair, like the tutorials: ``source/<a>/<a>.py`` (jupytext percent
script, the file to edit and review; ``source/jupytext.toml``) and ``source/<a>/<a>.ipynb`` (what
nbgrader reads). Every cell of the script carries its nbgrader metadata in its ``# %%`` line:

* answer cells (``solution``): the solution sits between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` and is replaced by ``raise NotImplementedError()`` in the release;
* test cells (``grade``, ``locked``, ``points``): the lines between ``### BEGIN HIDDEN TESTS``
  and ``### END HIDDEN TESTS`` are removed from the release and from the feedback;
* manually graded markdown answers (``solution`` and ``grade``): the student writes in the
  answer cell; the model answer and the rubric sit in the locked question cell just above it,
  between ``<!-- ### BEGIN HIDDEN TESTS -->`` and ``<!-- ### END HIDDEN TESTS -->`` markers, so
  the release and the feedback drop them and the formgrader shows them next to each answer;
* provided code (``locked``): the ``prelude`` (what answers may use at grading), the setup cells
  (``setup_common`` is the same in every assignment, ``tests/test_course.py`` checks it), the
  retrieval demos (``demo_*``).

This script rewrites each ``.ipynb`` from its ``.py`` (cell ids = grade ids, kernelspec,
validation); ``--check`` only reports notebooks that differ from their script. Usage (from the
repository root)::

    .venv/bin/python course/build_course.py [--check]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
ASSIGNMENTS = sorted(p.name for p in (HERE / "source").iterdir() if p.is_dir())


def build_notebook(script: Path) -> nbformat.NotebookNode:
    """The source notebook of a jupytext ``script`` (markdown and code cells with nbgrader metadata)."""
    nb = jupytext.read(script)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "nbgrader"}
        cell["id"] = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report notebooks out of date")
    args = ap.parse_args(argv)
    stale = []
    for name in ASSIGNMENTS:
        script, out = HERE / "source" / name / f"{name}.py", HERE / "source" / name / f"{name}.ipynb"
        nb = build_notebook(script)
        if args.check:
            committed = nbformat.read(out, as_version=4)
            if [(c.cell_type, c.source, c.metadata) for c in committed.cells] != \
                    [(c.cell_type, c.source, c.metadata) for c in nb.cells]:
                stale.append(out)
            continue
        nbformat.write(nb, out)
        points = sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells)
        print(f"{out.relative_to(HERE)}: {len(nb.cells)} cells, {points:g} points")
    for out in stale:
        print(f"{out.relative_to(HERE)} differs from its script: run course/build_course.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
