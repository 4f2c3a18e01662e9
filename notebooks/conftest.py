"""pytest configuration for ``pytest --nbval notebooks/``.

nbval executes the notebooks without a widget front end, exactly like papermill did when their
committed outputs were produced, so tell them (selconv_lite.teaching.notebook_utils.has_widget_frontend)
to draw static figures instead of ipywidgets explorers. The kernels inherit this environment.
"""
import os

os.environ.setdefault("SELCONV_HEADLESS", "1")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
