"""The nbgrader course in course/: the instructor's flow end to end with nbgrader's own commands.

A copy of the course in a temporary folder is released (``nbgrader generate_assignment``), the
release is checked to hold no solution, hidden test or rubric, a simulated class
(course/simulated_class.py: correct, typical mistakes, library calls, unanswered, and a dozen
cheats) is autograded (``nbgrader autograde``, each submission's code in the sandbox of
course/grading.py) into the SQLite gradebook, the written answers are graded by hand through
the gradebook API, and the feedback is generated (``nbgrader generate_feedback``). The
autograding needs root and bubblewrap (scripts/setup_course.sh): as root without it the tests
fail, otherwise they are skipped.
"""
from __future__ import annotations

import html
import importlib.util
import os
import re
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
grading = _load("grading")
gradebook_tools = _load("gradebook_tools")
COURSE_FILES = ("nbgrader_config.py", "grading.py", "sandbox_worker.py", "grade.sh", "gradebook_tools.py",
                "course_tools.py")


def _grade_sh(course_dir, *args, check=True):
    """``bash grade.sh ARGS`` in the copy of the course, with this Python."""
    env = dict(os.environ, SELCONV_PYTHON=sys.executable)
    res = subprocess.run(["bash", str(course_dir / "grade.sh"), *args], cwd=course_dir, env=env,
                         capture_output=True, text=True, timeout=1800)
    if check:
        assert res.returncode == 0, f"grade.sh {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
    return res


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
    problem = grading.sandbox_problem()
    if problem and os.geteuid() == 0:
        pytest.fail(f"{problem} (scripts/setup_course.sh installs it; run_tests.sh calls it)")
    if problem:
        pytest.skip(problem)
    root = tmp_path_factory.mktemp("course")
    for name in COURSE_FILES:
        shutil.copy(COURSE / name, root)
    shutil.copytree(COURSE / "source", root / "source")
    for name in ASSIGNMENTS:
        _nbgrader(root, "generate_assignment", name, "--force")
    simulated.write_submissions(root)
    _grade_sh(root, *ASSIGNMENTS)  # autograde, each submission's code in the sandbox
    refused = _grade_sh(root, "--feedback", ASSIGNMENTS[0], check=False)
    assert refused.returncode == 1 and "not graded yet" in refused.stderr, refused.stderr
    assert "correct / a1_features_masks / think_masks needs hand-grading" in refused.stdout
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert gradebook_tools.needing_manual_grade(gb, ASSIGNMENTS[0])
        # the instructor grades the written answers: full marks for the correct student, half for the other
        for name in ASSIGNMENTS:
            for student, share in (("correct", 1.0), ("mistakes", 0.5)):
                sub = gb.find_submission_notebook(name, name, student)
                for grade in sub.grades:
                    if grade.needs_manual_grade:
                        gradebook_tools.set_manual_score(gb, name, name, student, grade.name,
                                                         share * grade.max_score)
        # a deleted test cell scores 0 and is flagged for the instructor, who confirms the 0
        a1 = ASSIGNMENTS[0]
        assert (("cheat_delete_test", a1, "test_max_mask") in gradebook_tools.needing_manual_grade(gb, a1))
        gradebook_tools.set_manual_score(gb, a1, a1, "cheat_delete_test", "test_max_mask", 0)
        assert not any(gradebook_tools.needing_manual_grade(gb, name) for name in ASSIGNMENTS)
    _grade_sh(root, "--feedback", *ASSIGNMENTS)
    return root


def _students(name):
    """The students who handed in ``name``: the four honest ones and the cheats on it."""
    return simulated.STUDENTS + tuple(s for s, (a, _, _) in simulated.CHEATS.items() if a == name)


def _scores(root):
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for name in ASSIGNMENTS:
            for student in _students(name):
                sub = gb.find_submission_notebook(name, name, student)
                out[name, student] = {g.name: (g.score, g.max_score, g.cell_type) for g in sub.grades}
    return out


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_source_notebooks_are_built_from_their_scripts():
    sources = {}
    for name in ASSIGNMENTS:
        committed = nbformat.read(COURSE / "source" / name / f"{name}.ipynb", as_version=4)
        built = build.build_notebook(COURSE / "source" / name / f"{name}.py")
        assert [c.source for c in committed.cells] == [c.source for c in built.cells], (
            f"course/source/{name}/{name}.ipynb differs from its script: run course/build_course.py")
        assert [c.metadata for c in committed.cells] == [c.metadata for c in built.cells]
        sources[name] = committed
    # the cells every assignment shares are the same everywhere
    first = sources[ASSIGNMENTS[0]]
    intro = first.cells[0].source[first.cells[0].source.index("**How this assignment is graded.**"):]
    for nb in sources.values():
        assert _cell(nb, "setup_common").source == _cell(first, "setup_common").source
        assert nb.cells[0].source.endswith(intro)
        assert _cell(nb, "prelude").source.startswith(_cell(first, "prelude").source.split("import numpy")[0])


def test_every_switched_off_reference_names_a_function_of_the_package():
    """The guard lists name package functions ("module:function" or "module:Class.method");
    a name that no longer exists after a refactoring would be skipped silently, so each must
    resolve to a plain function."""
    import importlib

    pattern = re.compile(r'"(selconv_lite(?:\.\w+)+):([\w.]+)"')
    found = 0
    for name in ASSIGNMENTS:
        text = (COURSE / "source" / name / f"{name}.py").read_text()
        for module, attr in pattern.findall(text):
            obj = importlib.import_module(module)
            for part in attr.split("."):
                assert hasattr(obj, part), f"{name}: {module}:{attr} does not exist in the package"
                obj = getattr(obj, part)
            obj = getattr(obj, "__func__", obj)
            assert hasattr(obj, "__code__") or hasattr(getattr(obj, "__wrapped__", None), "__code__"), (
                f"{name}: {module}:{attr} is not a function")
            found += 1
    assert found >= 5, f"only {found} switched-off names found in the assignment sources"


def test_course_data_files_are_consistent():
    import numpy as np

    files = [COURSE / "source" / name / "course_data.npz" for name in ASSIGNMENTS]
    assert sum(f.stat().st_size for f in files) < 8_000_000  # course/make_data.py: about 8 MB at most
    data = {name: np.load(f) for name, f in zip(ASSIGNMENTS, files)}
    a1, a2, a3 = (data[n] for n in ASSIGNMENTS)
    for z in data.values():
        nq, nb = int(z["n_queries"]), len(z["db_names"])
        assert nq >= 4 and int(z["max_dim"]) == 1024  # the paper's regime (Sec. 5.1)
        for j in range(nq):
            ok, junk = z[f"gnd_ok_{j}"], z[f"gnd_junk_{j}"]
            assert ok.size and ok.min() >= 0 and ok.max() < nb and not set(ok) & set(junk)
        assert len(z["query_names"]) == nq and len(z["train_names"]) == len(z["train_labels"])
    assert (a1["db_shapes"] == (24, 32, 512)).all()  # 1024 x 768 images: pool5 grids of 32 x 24
    for prefix in ("query", "db", "train"):
        counts = a2[f"{prefix}_counts"]
        n = len(a2[f"{prefix}_counts"])
        if prefix != "train":  # assignment 1 uses no training image
            shapes = a1[f"{prefix}_shapes"]
            assert len(shapes) == n and (shapes[:, 2] == 512).all()
            assert a1[f"{prefix}_maps"].size == np.prod(shapes, axis=1).sum()
            assert a1[f"{prefix}_kp"].shape == (a1[f"{prefix}_kp_counts"].sum(), 2)
            # the MAX mask keeps at most one location per channel and per location, at least one per image
            assert (counts <= np.minimum(np.prod(shapes[:, :2], axis=1), 512)).all()
        assert (counts >= 1).all() and a2[f"{prefix}_local"].shape == (counts.sum(), 512)
        v = a3[f"{prefix}_vectors"]
        assert len(v) == (len(a3["train_names"]) if prefix == "train" else n)  # a3: every held-out image
        assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)  # aggregated, then L2
    labels = a3["train_labels"]  # the object of each training image, -1 for a scene-only image
    assert len(labels) == len(a3["train_vectors"]) and (np.bincount(labels[labels >= 0]) >= 2).all()
    # a1 stores each map channel by channel (K, H, W); a2's rows are the MAX mask of the same map
    from selconv_lite.method.masks import apply_mask, max_mask

    H, W, K = a1["db_shapes"][0]
    fmap = a1["db_maps"][:H * W * K].astype(np.float32).reshape(K, H, W).transpose(1, 2, 0)
    local = a2["db_local"][:a2["db_counts"][0]].astype(np.float32)
    assert np.array_equal(apply_mask(fmap, max_mask(fmap)), local)


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
            # the answer cell is the student's (a solution region only); the model answer and the
            # rubric live in the locked question cell just above it, inside its hidden region
            assert "### BEGIN SOLUTION" in cell.source, cell.metadata["nbgrader"]["grade_id"]
            question = nb.cells[nb.cells.index(cell) - 1]
            assert question.metadata.get("nbgrader", {}).get("locked"), "the question cell must be locked"
            hidden = question.source.split("### BEGIN HIDDEN TESTS", 1)
            assert len(hidden) == 2 and "### END HIDDEN TESTS" in hidden[1], cell.metadata["nbgrader"]
            assert "Rubric" in hidden[1] and "Model answer" in hidden[1]
            assert "Rubric" not in hidden[0] and "Model answer" not in hidden[0]


def test_visible_tests_catch_the_typical_mistakes_their_cases_name():
    """The visible part of each test cell fails for the simulated class's typical mistake (a case
    "with ties" catches the row-major argmax, "tied sums" the ``>``, ...), except where that
    student's answer is right (MISTAKES_PASS) and for the SIFT mask, whose visible cases are real
    keypoints: its rounding mistake shows at exact half-way points only, a hidden case."""
    wrong = _load("wrong_answers")
    for name in ASSIGNMENTS:
        failures = wrong.visible_failures(name, simulated.MISTAKES[name])
        assert failures and set(failures) >= set(simulated.EXPECTED_MESSAGES[name])
        for test, message in failures.items():
            if test in simulated.MISTAKES_PASS[name] or test == "test_sift_mask":
                continue
            assert message and simulated.EXPECTED_MESSAGES[name][test] in message, (name, test, message)


def test_a_wrong_mask_visibly_changes_the_retrieval_demo():
    """On the course data (1024 px), the MAX mask's demo mAP differs from every location's and from
    typical wrong MAX masks by a visible margin, and a wrong SIFT mask changes it too."""
    wrong = _load("wrong_answers")
    right, changed = wrong.demo_changes("a1_features_masks")

    def value(text):
        return float(text.split("=")[1])

    mine = value(right["your MAX mask"])
    assert right["your MAX mask"] == right["package MAX mask"]
    assert mine - value(right["no mask (every location)"]) >= 0.05
    for label, lines in changed.items():
        if label.startswith("MAX:"):
            assert abs(value(lines["your MAX mask"]) - mine) >= 0.05, (label, lines)
        elif label.startswith("SIFT:"):
            assert abs(value(lines["your SIFT mask"]) - value(right["your SIFT mask"])) >= 0.02, (label, lines)


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
        assert sorted(p.name for p in release.iterdir()) == sorted(["course_data.npz", "course_tools.py",
                                                                   f"{name}.ipynb"])
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


def test_every_cheat_scores_zero_on_what_it_games_and_changes_no_other_grade(course):
    """Each cheat hands in the solution for every other task: those score full marks (so a cheat
    broke neither its own grading nor, graded before or after it, anyone else's), the gamed task
    0; the honest students' scores are checked in the test above, in the same gradebook."""
    scores = _scores(course)
    assert len(simulated.CHEATS) >= 14
    for student, (name, _, gamed) in simulated.CHEATS.items():
        auto = {k: (sc, m) for k, (sc, m, kind) in scores[name, student].items() if kind == "code"}
        assert gamed and gamed <= set(auto), (student, sorted(auto))
        for test, (sc, m) in auto.items():
            if test in gamed:
                assert sc == 0, f"{student} scores {sc} on {test}, which it games"
            elif student != "cheat_builtins":  # its patched builtins break its own other answers
                assert sc == m, f"{student}: {test} scores {sc} of {m}: the cheat broke the grading of honest work"
        manual = [sc for sc, _, kind in scores[name, student].values() if kind != "code"]
        assert manual and all(not sc for sc in manual)  # nobody graded its written answer (nor did it)


def test_cheats_fail_with_the_reason(course):
    reasons = {"cheat_sleep": "did not finish within the time limit",
               "cheat_kill": "stopped the Python process",
               "cheat_exit": "raised SystemExit",
               "cheat_numpy": "you keep",
               "cheat_ipython": "you keep"}
    for student in ("cheat_exec_source", "cheat_reload", "cheat_code_copy", "cheat_guard_lists",
                    "cheat_read_source", "cheat_gradebook"):
        reasons.setdefault(student, "is not defined when your answer cells run on their own")
    reasons["cheat_gradebook"] = "you keep"
    for student, words in reasons.items():
        name, _, gamed = simulated.CHEATS[student]
        errors = _errors(course, student, name)
        for test in gamed:
            assert words in errors.get(test, ""), (student, test, errors.get(test))


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
        assert library
        for grade_id, message in library.items():
            assert "selconv_lite is not available when your work is graded" in message, (name, grade_id, message)
        unanswered = _errors(course, "unanswered", name)
        assert all("not implemented yet" in m for m in unanswered.values()), unanswered


def _hidden_test_lines(source_nb):
    lines = []
    for cell in _grade_cells(source_nb):
        if "### BEGIN HIDDEN TESTS" in cell.source:
            region = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            lines += [ln.strip() for ln in region.splitlines() if len(ln.strip()) >= 25]
    return lines


def test_feedback_is_generated_for_every_submission_without_the_hidden_tests(course):
    for name in ASSIGNMENTS:
        source = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
        hidden = _hidden_test_lines(source)
        visible = [ln.strip() for c in _grade_cells(source) if c.cell_type == "code"
                   for ln in c.source.split("### BEGIN HIDDEN TESTS")[0].splitlines() if len(ln.strip()) >= 25]
        assert hidden and visible
        for student in _students(name):
            path = course / "feedback" / student / name / f"{name}.html"
            assert path.is_file(), path
            text = html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))
            assert "Score:" in text or "score" in text.lower()
            assert "HIDDEN TESTS" not in text, f"{path}: the feedback shows the hidden tests"
            leaked = [ln for ln in hidden if ln in text and ln not in visible]
            assert not leaked, f"{path}: the feedback shows hidden test lines {leaked[:2]}"
            assert any(ln in text for ln in visible), f"{path}: the feedback lacks the visible tests"
        # the instructor's autograded copy keeps them
        autograded = (course / "autograded" / "correct" / name / f"{name}.ipynb").read_text()
        assert "BEGIN HIDDEN TESTS" in autograded


def test_the_grading_guard_switches_the_reference_off_and_back_on(monkeypatch):
    """The guard of the notebooks' first cell, run on its own."""
    import numpy as np

    from selconv_lite.method import masks
    from selconv_lite.method.embeddings import PCAL2
    from selconv_lite.method.masks import max_mask as imported_early

    monkeypatch.chdir(COURSE / "source" / "a1_features_masks")
    ns = vars(_load("course_tools"))
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


def _require_sandbox():
    problem = grading.sandbox_problem()
    if problem and os.geteuid() == 0:
        pytest.fail(f"{problem} (scripts/setup_course.sh installs it; run_tests.sh calls it)")
    if problem:
        pytest.skip(problem)


def test_the_sandbox_runs_student_code_as_nobody_without_the_course_or_the_package():
    import time

    _require_sandbox()
    probe = f'''
import os
import socket


def probe():
    try:
        import selconv_lite  # noqa: F401
        package = True
    except ImportError:
        package = False
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2).close()
        network = True
    except OSError:
        network = False
    seen = [os.path.exists(p) for p in ({str(COURSE)!r}, {str(ROOT / "selconv_lite")!r}, "/etc/passwd")]
    return os.getuid(), package, network, seen, np.arange(3, dtype=np.int16)


print("loaded")
'''
    with grading.Sandbox("import numpy as np", [("probe", probe), ("boom", "raise SystemExit(3)")]) as box:
        cells = {c["id"]: c for c in box.load()}
        assert cells["probe"]["stdout"] == "loaded\n" and cells["probe"]["error"] is None
        assert cells["boom"]["error"].startswith("SystemExit")
        ok, (uid, package, network, seen, arr) = box.call("probe", (), time.monotonic() + 60)
        assert ok and uid == grading.SANDBOX_UID and not package and not network and seen == [False] * 3
        assert arr.dtype == "int16" and arr.tolist() == [0, 1, 2]
        ok, (ename, _) = box.call("nothing_here", (), time.monotonic() + 60)
        assert not ok and ename == "NameError"


def test_values_cross_the_sandbox_boundary_as_data_only():
    import numpy as np

    worker = _load("sandbox_worker")
    value = (np.int64(3), [1.5, None, "s"], np.arange(6, dtype=np.float32).reshape(2, 3), np.bool_(True),
             np.zeros((0, 2)), float("nan"), np.array(2.0))
    back = worker.decode(worker.encode(value))
    assert type(back) is tuple and type(back[0]) is np.int64 and back[0] == 3 and back[1] == [1.5, None, "s"]
    assert back[2].dtype == np.float32 and np.array_equal(back[2], value[2]) and back[2].flags.writeable
    assert type(back[3]) is np.bool_ and back[3] and back[4].shape == (0, 2) and np.isnan(back[5]) and back[6].shape == ()
    for bad in (object(), np.array([object()]), {"a": 1}, {1, 2}):
        with pytest.raises(TypeError, match="cannot be sent back"):
            worker.encode(bad)
    for forged in ({"array": ["|O", [1], ""]}, {"array": ["<f8", [3], "AAAA"]}, {"pickle": "x"},
                   {"scalar": ["<U3", ""]}):
        with pytest.raises(ValueError):
            worker.decode(forged)


def test_zip_collect_files_an_lms_download_under_submitted(tmp_path):
    for name in COURSE_FILES:
        shutil.copy(COURSE / name, tmp_path)
    archive = tmp_path / "downloaded" / ASSIGNMENTS[0] / "archive"
    archive.mkdir(parents=True)
    for student, stamp in (("jdoe", "2026-01-30-15-00-00"), ("amy.smith", "2026-01-30-16-05-00")):
        (archive / f"{ASSIGNMENTS[0]}_{student}_attempt_{stamp}_{ASSIGNMENTS[0]}.ipynb").write_text(student)
    (archive / "readme.txt").write_text("not a submission")
    _nbgrader(tmp_path, "zip_collect", ASSIGNMENTS[0])
    got = sorted(p.relative_to(tmp_path / "submitted").as_posix() for p in (tmp_path / "submitted").rglob("*.ipynb"))
    assert got == [f"{s}/{ASSIGNMENTS[0]}/{ASSIGNMENTS[0]}.ipynb" for s in ("amy.smith", "jdoe")]
    assert (tmp_path / "submitted" / "jdoe" / ASSIGNMENTS[0] / f"{ASSIGNMENTS[0]}.ipynb").read_text() == "jdoe"


def test_without_root_or_bubblewrap_grading_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(grading.sys, "platform", "linux")
    monkeypatch.setattr(grading.os, "geteuid", lambda: 0)
    monkeypatch.setattr(grading.shutil, "which", lambda name: None)
    assert "bubblewrap" in grading.sandbox_problem() and "setup_course.sh" in grading.sandbox_problem()
    with pytest.raises(grading.SandboxUnavailable, match="bubblewrap"):
        grading.Sandbox("", [])
    monkeypatch.setattr(grading.os, "geteuid", lambda: 1000)
    assert "needs root" in grading.sandbox_problem()
