"""Hand-grading helpers on nbgrader's gradebook, for scripts and ``grade.sh``.

* :func:`set_manual_score`: the score of a written answer, as the formgrader saves it (the grade
  no longer needs manual grading);
* :func:`needing_manual_grade`: the grades of an assignment still waiting for the instructor;
  ``grade.sh --feedback`` refuses to write feedback while there are any (the feedback would show
  0 for an answer nobody graded yet) unless ``--force`` is given.

Usage (from the course folder)::

    python gradebook_tools.py pending a1_features_masks   # lists what still needs hand-grading
"""
from __future__ import annotations

import sys


def set_manual_score(gb, assignment: str, notebook: str, student: str, grade_id: str, score: float):
    """Give ``score`` points to the grade ``grade_id`` of ``student``'s ``notebook`` and mark it graded."""
    grade = gb.find_grade(grade_id, notebook, assignment, student)
    if not 0 <= score <= grade.max_score:
        raise ValueError(f"score {score} of {grade_id} ({student}) is outside 0..{grade.max_score}")
    grade.manual_score = score
    grade.needs_manual_grade = False
    gb.db.commit()
    return grade


def needing_manual_grade(gb, assignment: str) -> list[tuple[str, str, str]]:
    """``(student, notebook, grade_id)`` of every grade of ``assignment`` that waits for hand-grading."""
    out = []
    for sub in gb.find_assignment(assignment).submissions:
        for nb in sub.notebooks:
            out += [(sub.student.id, nb.name, g.name) for g in nb.grades if g.needs_manual_grade]
    return sorted(out)


def main(argv=None) -> int:
    from nbgrader.api import Gradebook

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "pending":
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    with Gradebook("sqlite:///gradebook.db") as gb:
        pending = needing_manual_grade(gb, args[1])
    for student, notebook, grade_id in pending:
        print(f"{args[1]}: {student} / {notebook} / {grade_id} needs hand-grading")
    return 1 if pending else 0


if __name__ == "__main__":
    sys.exit(main())
