"""The nbgrader course in course/: the instructor's flow end to end with nbgrader's own commands.

A copy of the course in a temporary folder is released (``nbgrader generate_assignment``), the
release is checked to hold no solution, hidden test or rubric, a simulated class of four
submissions (course/simulated_class.py: correct, typical mistakes, library calls, unanswered) is
autograded (``nbgrader autograde``) into the SQLite gradebook, the written answers are graded by
hand through nbgrader's gradebook API, and the feedback is generated
(``nbgrader generate_feedback``).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader")

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
ASSIGNMENTS = sorted(p.name for p in (COURSE / "source").iterdir() if p.is_dir())


def _load(name):
    spec = importlib.util.spec_from_file_location(f"course_{name}", COURSE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(COURSE))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(COURSE))
    return module


simulated = _load("simulated_class")
build = _load("build_course")


def _nbgrader(course_dir, *args):
    env = dict(os.environ)
    # nbgrader runs alembic (the gradebook migrations) by name: it lives next to this Python
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"
    res = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
    return res


def _grade_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course released, the simulated class autograded, hand-graded and given feedback."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(COURSE / "nbgrader_config.py", root)
    shutil.copytree(COURSE / "source", root / "source")
    for name in ASSIGNMENTS:
        _nbgrader(root, "generate_assignment", name, "--force")
    simulated.write_submissions(root)
    for name in ASSIGNMENTS:
        _nbgrader(root, "autograde", name, "--force")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        # the instructor grades the written answers: full marks for the correct student, half for the other
        for name in ASSIGNMENTS:
            for student, share in (("correct", 1.0), ("mistakes", 0.5)):
                sub = gb.find_submission_notebook(name, name, student)
                for grade in sub.grades:
                    if grade.needs_manual_grade:
                        grade.manual_score = share * grade.max_score
        gb.db.commit()
    for name in ASSIGNMENTS:
        _nbgrader(root, "generate_feedback", name, "--force")
    return root


def _scores(root):
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for name in ASSIGNMENTS:
            for student in simulated.STUDENTS:
                sub = gb.find_submission_notebook(name, name, student)
                out[name, student] = {g.name: (g.score, g.max_score, g.cell_type) for g in sub.grades}
    return out


def test_source_notebooks_are_up_to_date_with_their_cells():
    cells = _load("course_cells").ASSIGNMENTS
    assert sorted(cells) == ASSIGNMENTS
    for name in ASSIGNMENTS:
        committed = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
        built = build.build_notebook(cells[name])
        assert [c.source for c in committed.cells] == [c.source for c in built.cells], (
            f"course/source/{name}/{name}.ipynb is stale: run course/build_course.py")
        assert [c.metadata for c in committed.cells] == [c.metadata for c in built.cells]
        assert (COURSE / "source" / name / "course_data.npz").stat().st_size < 2_000_000


def test_course_data_files_are_consistent():
    import numpy as np

    data = {name: np.load(COURSE / "source" / name / "course_data.npz") for name in ASSIGNMENTS}
    a1, a2, a3 = (data[n] for n in ASSIGNMENTS)
    for z in data.values():
        nq, nb = int(z["n_queries"]), len(z["db_names"])
        assert nq >= 4
        for j in range(nq):
            ok, junk = z[f"gnd_ok_{j}"], z[f"gnd_junk_{j}"]
            assert ok.size and ok.min() >= 0 and ok.max() < nb and not set(ok) & set(junk)
    for prefix in ("query", "db", "train"):
        shapes = a1[f"{prefix}_shapes"]
        assert (shapes[:, 2] == 512).all() and a1[f"{prefix}_maps"].size == np.prod(shapes, axis=1).sum()
        assert a1[f"{prefix}_kp"].shape == (a1[f"{prefix}_kp_counts"].sum(), 2)
        # the MAX mask keeps at most one location per channel and at least one per image
        counts = a2[f"{prefix}_counts"]
        assert (counts >= 1).all() and (counts <= np.prod(shapes[:, :2], axis=1)).all()
        assert a2[f"{prefix}_local"].shape == (counts.sum(), 512)
        v = a3[f"{prefix}_vectors"]
        assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)  # aggregated, then L2
    assert len(a3["train_labels"]) == len(a3["train_vectors"])


def test_every_task_is_graded_with_visible_and_hidden_tests():
    for name in ASSIGNMENTS:
        nb = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
        tests = [c for c in _grade_cells(nb) if c.cell_type == "code"]
        manual = [c for c in _grade_cells(nb) if c.cell_type == "markdown"]
        assert len(tests) >= 4 and manual, f"{name}: expected autograded tests and a written question"
        for cell in tests:
            meta = cell.metadata["nbgrader"]
            assert meta["locked"] and meta["points"] > 0, meta
            src = cell.source
            visible = src.split("### BEGIN HIDDEN TESTS")[0]
            assert "### BEGIN HIDDEN TESTS" in src and "### END HIDDEN TESTS" in src, meta["grade_id"]
            assert "call_student(" in visible, f"{meta['grade_id']}: the visible part must test something"
        for cell in manual:
            assert "Rubric" in cell.source and "### BEGIN SOLUTION" in cell.source


def _outside_regions(source):
    """The lines of a source cell outside its solution and hidden-test regions."""
    keep, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line or "### BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "### END SOLUTION" in line or "### END HIDDEN TESTS" in line:
            inside = False
        elif not inside:
            keep.append(line)
    return "\n".join(keep)


def test_release_holds_no_solution_no_hidden_test_no_rubric(course):
    for name in ASSIGNMENTS:
        release = course / "release" / name
        assert (release / "course_data.npz").is_file()
        text = (release / f"{name}.ipynb").read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                       "Rubric", "Model answer"):
            assert marker not in text, f"{name}: the release contains {marker!r}"
        source = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
        released = nbformat.read(release / f"{name}.ipynb", as_version=4)
        released_code = "\n".join(c.source for c in released.cells)
        public = "\n".join(_outside_regions(c.source) for c in source.cells)
        n_checked = 0
        for cell in source.cells:
            for begin, end in (("### BEGIN SOLUTION", "### END SOLUTION"),
                               ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")):
                if begin not in cell.source:
                    continue
                region = cell.source.split(begin)[1].split(end)[0]
                for line in region.splitlines():
                    line = line.strip()
                    if len(line) >= 25 and not line.startswith("#") and line not in public:
                        n_checked += 1
                        assert line not in released_code, f"{name}: the release leaks {line!r}"
        assert n_checked > 20
        answers = [c for c in released.cells if c.metadata.get("nbgrader", {}).get("solution")
                   and c.cell_type == "code"]
        assert answers and all("raise NotImplementedError()" in c.source for c in answers)


def test_autograded_scores_of_the_simulated_class(course):
    scores = _scores(course)
    for name in ASSIGNMENTS:
        auto = {s: {k: v for k, v in scores[name, s].items() if v[2] == "code"} for s in simulated.STUDENTS}
        full = sum(m for _, m, _ in auto["correct"].values())
        assert full > 0
        assert sum(sc for sc, _, _ in auto["correct"].values()) == full, f"{name}: {auto['correct']}"
        passed = {k for k, (sc, m, _) in auto["mistakes"].items() if sc == m}
        assert passed == simulated.MISTAKES_PASS[name], f"{name}: mistakes student passes {sorted(passed)}"
        for student in ("library", "unanswered"):
            assert all(sc == 0 for sc, _, _ in auto[student].values()), f"{name}, {student}: {auto[student]}"
        total = {s: sum(sc for sc, _, _ in scores[name, s].values()) for s in simulated.STUDENTS}
        maximum = sum(m for _, m, _ in scores[name, "correct"].values())
        assert total["correct"] == maximum
        assert all(total[s] < maximum for s in ("mistakes", "library", "unanswered"))
        assert total["library"] == total["unanswered"] == 0


def _errors(course, student, name):
    nb = nbformat.read(course / "autograded" / student / name / f"{name}.ipynb", as_version=4)
    out = {}
    for cell in _grade_cells(nb):
        for o in cell.get("outputs", []):
            if o.output_type == "error":
                out[cell.metadata["nbgrader"]["grade_id"]] = f"{o.ename}: {o.evalue}"
    return out


def test_typical_mistakes_fail_with_a_message_that_says_what_is_wrong(course):
    for name in ASSIGNMENTS:
        errors = _errors(course, "mistakes", name)
        for grade_id, words in simulated.EXPECTED_MESSAGES[name].items():
            assert grade_id in errors, f"{name}: {grade_id} should fail for the typical mistake"
            assert words in errors[grade_id], f"{name}, {grade_id}: {errors[grade_id]!r} lacks {words!r}"
        library = _errors(course, "library", name)
        for grade_id, message in library.items():
            assert "calls the package's implementation" in message, (name, grade_id, message)
        unanswered = _errors(course, "unanswered", name)
        assert all("not implemented yet" in m for m in unanswered.values()), unanswered


def test_feedback_is_generated_for_every_submission(course):
    for name in ASSIGNMENTS:
        for student in simulated.STUDENTS:
            html = course / "feedback" / student / name / f"{name}.html"
            assert html.is_file(), html
            assert "Score:" in html.read_text() or "score" in html.read_text().lower()


def test_the_grading_guard_switches_the_reference_off_and_back_on(monkeypatch):
    """The guard of the notebooks' first cell, run on its own."""
    import numpy as np

    from selconv_lite.method import masks
    from selconv_lite.method.embeddings import PCAL2
    from selconv_lite.method.masks import max_mask as imported_early

    monkeypatch.chdir(COURSE / "source" / "a1_features_masks")
    cells = _load("course_cells")
    ns = {}
    exec(cells.SETUP_COMMON, ns)
    fmap = np.zeros((2, 3, 4), np.float32)
    fmap[1, 2, 0] = 1.0
    before = masks.max_mask(fmap)
    X = np.random.default_rng(0).standard_normal((20, 5))
    pca = PCAL2(2).fit(X)
    with ns["reference_unavailable"]("selconv_lite.method.masks:max_mask",
                                     "selconv_lite.method.embeddings:PCAL2.transform",
                                     "selconv_lite.method.masks:no_such_function"):
        with pytest.raises(RuntimeError, match="switched off while your code is graded"):
            imported_early(fmap)  # a name bound before the guard is switched off too
        with pytest.raises(RuntimeError, match="switched off"):
            pca.transform(X)
        with pytest.raises(AssertionError, match="calls the package's implementation"):
            ns["call_student"](lambda f: masks.max_mask(f), fmap, case="guard")
    assert np.array_equal(masks.max_mask(fmap), before)
    assert pca.transform(X).shape == (20, 2)
