"""Write the nbgrader source notebooks of the course (``source/<assignment>/<assignment>.ipynb``).

The notebooks are generated from the cell lists in :mod:`course_cells` so that the cells shared by
every assignment (the grading guard, the result display) have one source. Each cell carries
nbgrader's metadata:

* ``answer``: an autograded answer cell; the solution sits between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` and is replaced by ``raise NotImplementedError()`` in the release;
* ``tests``: a locked autograder test cell worth ``points``; the lines between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are removed from the release and
  restored at grading time;
* ``manual``: a manually graded markdown answer (model answer and rubric inside the solution
  region, so students never see them);
* ``locked``: provided code students run but cannot change (restored at grading time).

Usage (from the repository root)::

    .venv/bin/python course/build_course.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from course_cells import ASSIGNMENTS  # noqa: E402


def _meta(kind: str, grade_id: str, points: float = 0) -> dict:
    """nbgrader cell metadata (schema 3) of a cell of ``kind``."""
    flags = {
        "answer": dict(solution=True, grade=False, locked=False),
        "tests": dict(solution=False, grade=True, locked=True),
        "manual": dict(solution=True, grade=True, locked=False),
        "locked": dict(solution=False, grade=False, locked=True),
    }[kind]
    meta = {"grade_id": grade_id, "schema_version": 3, "task": False, **flags}
    if flags["grade"]:
        meta["points"] = points
    return {"nbgrader": meta}


def build_notebook(cells) -> nbformat.NotebookNode:
    """A notebook from ``(kind, grade_id, points, source)`` tuples; kind ``md`` is plain markdown."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, grade_id, points, source) in enumerate(cells):
        source = source.strip("\n")
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(source)
        elif kind == "manual":
            cell = nbformat.v4.new_markdown_cell(source, metadata=_meta(kind, grade_id, points))
        else:
            cell = nbformat.v4.new_code_cell(source, metadata=_meta(kind, grade_id, points))
        cell["id"] = grade_id or f"cell-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def main() -> None:
    for name, cells in ASSIGNMENTS.items():
        out = HERE / "source" / name / f"{name}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(build_notebook(cells), out)
        points = sum(p for kind, _, p, _ in cells if kind in ("tests", "manual"))
        print(f"{out.relative_to(HERE)}: {len(cells)} cells, {points:g} points")


if __name__ == "__main__":
    main()
