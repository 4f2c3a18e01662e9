"""nbgrader configuration of the selconv_lite course (run nbgrader from this folder).

Layout: ``source/<assignment>/`` (instructor notebooks with solutions and hidden tests, built by
``build_course.py``), ``release/`` (student versions, made by ``nbgrader generate_assignment``),
``submitted/<student>/<assignment>/``, ``autograded/``, ``feedback/`` and the SQLite gradebook
``gradebook.db``. See docs/teaching.md.
"""
c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "selconv_lite"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# a notebook that runs longer than this (per cell) is interrupted and its tests score 0
c.Execute.timeout = 300
