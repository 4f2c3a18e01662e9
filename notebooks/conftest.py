"""pytest configuration for ``pytest --nbval notebooks/``.

nbval executes the notebooks without a widget front end, exactly like papermill does for the
series runner, so tell them (selconv_lite.teaching.notebook_utils.has_widget_frontend) to draw
static figures instead of ipywidgets explorers. The kernels inherit this environment, which
also fixes their thread count (torch, OpenMP, BLAS) to the one the committed outputs were made
with (env SELCONV_THREADS, default 2; see notebook_utils.thread_environment) and, when
``SELCONV_OUTPUT`` is set (run_tests.sh points it at a fresh folder), where the notebooks write
the JSON records that tests/notebook_records compares with notebooks/reference.
"""
import os

from selconv_lite.teaching.notebook_utils import thread_environment

os.environ.setdefault("SELCONV_HEADLESS", "1")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
os.environ.update(thread_environment())
