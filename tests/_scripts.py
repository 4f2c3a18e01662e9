"""Load a repository script (``scripts/``, ``benchmarks/``, ``course/``) as a module, for the
tests of its functions: the scripts are not part of the package, so they are not importable."""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_script(relpath: str, name: str | None = None):
    """The module defined by ``REPO / relpath`` (e.g. ``"scripts/sync_requirements.py"``)."""
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
