"""The manual-grading flow of the course in the real formgrader (docs/teaching.md, "Grade the
written questions").

A throwaway copy of the course is set up as an instructor would (docs/teaching.md, "Instructor's
flow"): ``nbgrader generate_assignment`` of assignment 1, one honest submission of the simulated
class (``correct``: every code answer right, a written answer to the question), autograded with
``bash grade.sh`` (its code in the sandbox), which leaves the written answer waiting for a
grader. Then JupyterLab is started on that folder (hermetic config/runtime/settings folders, a
token, a free localhost port; nbgrader's formgrader server extension, enabled in the
environment, reads the course's ``nbgrader_config.py`` from the server's working folder) and
Debian's headless Chromium, driven with Selenium + chromedriver, does what a grader does:

1. *Nbgrader > Formgrader* in JupyterLab's menu opens the formgrader (an iframe in the main area);
2. *Manual Grading* > the assignment > its notebook > the student's submission;
3. the submission page shows the question with the model answer and the rubric (the grader's
   part of the locked question cell: removed from the release and the feedback, restored from
   the gradebook at autograding), the student's written answer and a score box ``/ 2``;
4. a score typed into the box is saved by the page (the server's reply clears the box's
   "needs manual grade" mark), and is still there after a reload.

Then nbgrader's gradebook holds that manual score, the grade no longer needs manual grading, the
notebook's total is the autograded scores plus it, ``grade.sh --feedback`` no longer refuses, and
the feedback shows the score without the rubric.

Skipped when chromium / chromedriver / selenium are missing, or when the sandbox cannot run (not
root, no bubblewrap), unless ``SELCONV_REQUIRE_BROWSER=1`` (CI sets it), in which case their
absence is a failure; as root without bubblewrap it fails, like tests/test_course.py.
"""
from __future__ import annotations

import html
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from .test_explorer_browser import REQUIRED, _need_browser, browser, jupyterlab  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
COURSE = REPO / "course"
ASSIGNMENT = "a1_features_masks"  # its notebook has the same name
QUESTION, ANSWER = "question_masks", "think_masks"  # the locked question cell, the written answer's grade
STUDENT = "correct"  # the honest student of course/simulated_class.py
SCORE = 1.5  # what the grader types, out of 2
TOKEN = "selconv-formgrader-test"


def _course_helpers():
    """tests/test_course.py (its course files list and its nbgrader / grade.sh runners), loaded
    once nbgrader is known to be installed."""
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        if REQUIRED:
            pytest.fail("SELCONV_REQUIRE_BROWSER is set but nbgrader is not installed")
        pytest.skip("nbgrader is not installed")
    spec = importlib.util.spec_from_file_location("selconv_test_course", REPO / "tests" / "test_course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problem = module.grading.sandbox_problem()
    if problem:
        if REQUIRED or os.geteuid() == 0:
            pytest.fail(f"{problem} (scripts/setup_course.sh installs it; run_tests.sh calls it)")
        pytest.skip(problem)
    return module


@pytest.fixture
def graded_course(tmp_path):
    """A copy of the course with assignment 1 released, one submission autograded, its written
    answer waiting for the grader."""
    _need_browser()
    tc = _course_helpers()
    root = tmp_path / "course"
    root.mkdir()
    for name in tc.COURSE_FILES:
        shutil.copy(COURSE / name, root)
    shutil.copytree(COURSE / "source" / ASSIGNMENT, root / "source" / ASSIGNMENT)  # course_tools.py: a copy
    tc._nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    released = (root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    for marker in ("Rubric", "Model answer", "For the grader", "HIDDEN TESTS"):
        assert marker not in released, f"the release shows {marker!r}"
    tc.simulated.write_submissions(root, students=(STUDENT,))
    tc._grade_sh(root, ASSIGNMENT)
    # the locked question cell, stripped in the release, is restored from the gradebook with its
    # grader's part in the autograded copy that the formgrader shows
    import nbformat

    autograded = nbformat.read(root / "autograded" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    question = tc._cell(autograded, QUESTION)
    assert question.metadata["nbgrader"]["locked"] and "**Rubric (2 points).**" in question.source
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        pending = tc.gradebook_tools.needing_manual_grade(gb, ASSIGNMENT)
    assert pending == [(STUDENT, ASSIGNMENT, ANSWER)], pending
    return root, tc


@pytest.fixture
def formgrader_lab(graded_course, tmp_path):
    """JupyterLab serving the course folder, with nbgrader's formgrader."""
    root, tc = graded_course
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # alembic, by name
    (tmp_path / "cfg").mkdir()  # no nbgrader exchange outside the temporary folder
    (tmp_path / "cfg" / "nbgrader_config.py").write_text(f"c.Exchange.root = {str(tmp_path / 'exchange')!r}\n")
    (tmp_path / "exchange").mkdir()
    # the formgrader reads nbgrader_config.py from the server's working folder (root)
    with jupyterlab(root, tmp_path, TOKEN, env) as (url, log):
        yield url, root, tc, log


def _wait(driver, cond, timeout, what, log=None):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    try:  # an element can go stale while a page of the formgrader replaces another
        return WebDriverWait(driver, timeout, poll_frequency=0.3, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(lambda d: cond(d))
    except Exception as exc:
        try:
            page = driver.find_element("tag name", "body").text[:1500]
        except Exception:  # noqa: BLE001 (only for the message)
            page = "(no page text)"
        server = log.read_text()[-2000:] if log else ""
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; page:\n{page}\n"
                             f"server log:\n{server}") from exc


def _visible(driver, css, text=None):
    """The displayed elements matching ``css`` (and holding exactly ``text``, when given)."""
    return [e for e in driver.find_elements("css selector", css)
            if e.is_displayed() and (text is None or e.text.strip() == text)]


def _click_link(driver, text, log, timeout=60):
    link = _wait(driver, lambda d: _visible(d, "a", text), timeout, f"the link {text!r}", log)[0]
    link.click()


def _submission_row(driver, log):
    """The (only) row of the notebook's submissions list."""
    return _wait(driver, lambda d: [r for r in d.find_elements("css selector", "#main-table tr")
                                    if r.find_elements("css selector", "a[href*='/formgrader/submissions/']")],
                 60, "the submission's row", log)[0]


def test_formgrader_shows_the_rubric_and_saves_a_manual_score(formgrader_lab, browser):
    from nbgrader.api import Gradebook
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, root, tc, log = formgrader_lab

    # 1. JupyterLab: Nbgrader > Formgrader opens the formgrader in the main area
    browser.get(f"{base}/lab?token={TOKEN}&reset")
    menu = _wait(browser, lambda d: _visible(d, ".lm-MenuBar-itemLabel", "Nbgrader"), 120,
                 "JupyterLab's Nbgrader menu", log)[0]
    menu.click()
    _wait(browser, lambda d: _visible(d, ".lm-Menu-itemLabel", "Formgrader"), 30,
          "the Formgrader entry of the Nbgrader menu", log)[0].click()
    frame = _wait(browser, lambda d: [f for f in d.find_elements(By.CSS_SELECTOR, "#formgrader iframe")
                                      if "formgrader" in (f.get_attribute("src") or "")], 60,
                  "the formgrader's iframe", log)[0]
    browser.switch_to.frame(frame)

    # 2. Manual Grading > assignment > notebook > the student's submission
    _click_link(browser, "Manual Grading", log)
    _click_link(browser, ASSIGNMENT, log)  # the assignments of the gradebook
    _click_link(browser, ASSIGNMENT, log)  # its notebooks
    row = _submission_row(browser, log)
    assert row.find_element(By.CSS_SELECTOR, ".needs-manual-grade").get_attribute("data-search") == (
        "needs manual grade"), row.text
    assert row.find_element(By.CSS_SELECTOR, ".written-score").text == "0 / 2", row.text
    [link for link in row.find_elements(By.CSS_SELECTOR, "a[href*='/formgrader/submissions/']")
     if link.is_displayed()][0].click()

    # 3. the submission: question with the model answer and rubric, the student's answer, a score box
    score = _wait(browser, lambda d: d.find_elements(By.ID, ANSWER), 120, "the written answer's score box", log)[0]
    answer_cell = score.find_element(By.XPATH, "./ancestor::div[contains(@class, 'nbgrader_cell')]")
    assert "Student's answer" in answer_cell.text
    assert tc.simulated.MANUAL_ANSWER.split(";")[0] in answer_cell.text, answer_cell.text
    assert "/ 2" in answer_cell.text, answer_cell.text
    page = browser.find_element(By.ID, "notebook").text  # the notebook as rendered, cell after cell
    start = page.index("Question (2 points, graded by hand)")
    question = page[start:page.index(tc.simulated.MANUAL_ANSWER.split(";")[0], start)]
    for words in ("For the grader.", "Model answer.", "Rubric (2 points).",
                  "0 points for a restatement of the definitions."):
        assert words in question, f"the grader does not see {words!r} above the answer:\n{question}"
    _wait(browser, lambda d: "needs_manual_grade" in (score.get_attribute("class") or ""), 30,
          "the page to mark the answer as needing a grade", log)

    # 4. type the score and leave the box: its change event saves it, and the server's reply clears
    # the mark. (The page loads MathJax from a CDN: offline, formgrade.js stops at "MathJax is not
    # defined" before its keyboard shortcuts (Tab, Escape, Ctrl+.) are set up, but saving on
    # change works; online, wait until MathJax has typeset the page and moved the focus.)
    _wait(browser, lambda d: d.execute_script(
        "return document.readyState === 'complete' && (!window.MathJax || window.MathJax.loaded === true)"),
        60, "the submission page to finish loading", log)
    score.click()
    score.send_keys(Keys.CONTROL, "a")
    score.send_keys(str(SCORE))
    answer_cell.find_element(By.CSS_SELECTOR, ".panel-body").click()  # leave the box
    _wait(browser, lambda d: "needs_manual_grade" not in (score.get_attribute("class") or ""), 30,
          "the score to be saved", log)
    browser.execute_script("window.selconvOld = true; location.reload();")  # the formgrader's frame only
    score = _wait(browser, lambda d: not d.execute_script("return window.selconvOld === true") and [
        e for e in d.find_elements(By.ID, ANSWER) if e.get_attribute("value")], 60,
        "the saved score after reloading the page", log)[0]
    assert float(score.get_attribute("value")) == SCORE
    # back to the notebook's submissions (the breadcrumb's last link): graded, written score 1.5 / 2
    _wait(browser, lambda d: _visible(d, ".breadcrumb a", ASSIGNMENT), 30, "the breadcrumb", log)[-1].click()
    _wait(browser, lambda d: _submission_row(d, log).find_element(
        By.CSS_SELECTOR, ".written-score").text == f"{SCORE:g} / 2", 60, "the list to show the written score", log)
    row = _submission_row(browser, log)
    assert row.find_element(By.CSS_SELECTOR, ".needs-manual-grade").get_attribute("data-search") == "", row.text
    browser.switch_to.default_content()

    # the gradebook: the manual score, no longer pending, in the notebook's total
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        grade = gb.find_grade(ANSWER, ASSIGNMENT, ASSIGNMENT, STUDENT)
        assert grade.manual_score == SCORE and not grade.needs_manual_grade
        assert grade.score == SCORE and grade.max_score == 2
        sub = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, STUDENT)
        auto = [g for g in sub.grades if g.cell_type == "code"]
        assert auto and all(g.score == g.max_score for g in auto)  # the honest student's code is right
        assert sub.score == pytest.approx(sum(g.score for g in auto) + SCORE)
        assert sub.score == pytest.approx(sub.max_score - 2 + SCORE)
        assert not tc.gradebook_tools.needing_manual_grade(gb, ASSIGNMENT)

    # the feedback is no longer refused and shows the score, not the grader's part
    tc._grade_sh(root, "--feedback", ASSIGNMENT)
    feedback = (root / "feedback" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", " ", feedback))
    text = re.sub(r"\s+", " ", text)
    assert re.search(rf"Score: {SCORE} / 2\.0", text), text[text.find("think"):][:300]
    for marker in ("Rubric", "Model answer", "For the grader", "HIDDEN TESTS"):
        assert marker not in text, f"the feedback shows {marker!r}"
