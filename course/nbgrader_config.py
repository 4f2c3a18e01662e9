"""nbgrader configuration of the selconv_lite course (run nbgrader from this folder).

Layout: ``source/<assignment>/`` (instructor notebooks with solutions and hidden tests, and their
jupytext scripts; ``build_course.py``), ``release/`` (student versions, made by ``nbgrader generate_assignment``),
``submitted/<student>/<assignment>/``, ``autograded/``, ``feedback/`` and the SQLite gradebook
``gradebook.db``. ``nbgrader autograde`` runs each submission's code in a sandbox
(``grading.py``; root and bubblewrap needed, ``grade.sh`` checks them). See docs/teaching.md.
"""
import os
import sys

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, GetGrades,
                                    IgnorePattern, LimitOutput, SaveAutoGrades)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grading import SandboxExecute  # noqa: E402

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "selconv_lite"
# source/<a>/<a>.py is the jupytext script of the source notebook (solutions, hidden tests): never
# copy it into a release, a student's autograded folder or the feedback (assignments are named
# a<digit>_...); course_tools.py, the tests' helpers, goes with every release
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "a[0-9]*_*.py"]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# autograde: nbgrader's Execute step replaced by the sandbox (the student's code as the user nobody,
# the tests in the grader; grading.py); the rest of nbgrader's steps as they are
c.Autograde.autograde_preprocessors = [SandboxExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
# time limits: a test cell of the reference solution takes well under 3 s on a loaded 2-core machine
c.SandboxExecute.cell_timeout = 30.0
c.SandboxExecute.submission_timeout = 300.0
c.SandboxExecute.load_timeout = 120.0
# feedback without the hidden tests (the autograded notebooks keep them for the instructor)
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
c.ClearHiddenTests.enforce_metadata = False
# nbgrader zip_collect: an LMS download named <anything>_<student>_attempt_<timestamp>_<file>
c.ZipCollectApp.collector_plugin = "nbgrader.plugins.zipcollect.FileNameCollectorPlugin"
c.FileNameCollectorPlugin.named_regexp = (
    r".*_(?P<student_id>[A-Za-z0-9.\-]+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>[^/]+\.(ipynb|npz))")
c.FileNameCollectorPlugin.valid_ext = [".ipynb"]
