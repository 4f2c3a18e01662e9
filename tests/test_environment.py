"""pyproject.toml, requirements.txt and environment.yml describe one environment.

pyproject.toml is the source (runtime dependencies and extras); scripts/sync_requirements.py
writes the other two from it. These tests fail when either file drifts from pyproject.toml, and
check the three against each other by parsing each file on its own.
"""
import copy
import re
import shutil
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load_sync():
    return load_script("scripts/sync_requirements.py")


sync = _load_sync()
PYPROJECT = sync.load_pyproject(ROOT)


def _pyproject_requirements():
    """{canonical name: Requirement} of the runtime dependencies and every extra."""
    project = PYPROJECT["project"]
    own = canonicalize_name(project["name"])
    out = {}
    for line in [*project["dependencies"],
                 *(x for extra in project["optional-dependencies"].values() for x in extra)]:
        req = Requirement(line)
        if canonicalize_name(req.name) != own:
            out[canonicalize_name(req.name)] = req
    return out


def _requirements_txt():
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            assert canonicalize_name(req.name) not in out, f"requirements.txt: {req.name} twice"
            out[canonicalize_name(req.name)] = req
    return out


def _environment_yml():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for d in env["dependencies"]:
        if isinstance(d, dict):
            assert set(d) == {"pip"}, f"environment.yml: unexpected section {d}"
            pip += d["pip"]
        else:
            conda.append(d)
    return env, conda, pip


def test_generated_files_are_up_to_date():
    for name, text in sync.rendered(ROOT).items():
        assert (ROOT / name).read_text() == text, (
            f"{name} differs from what pyproject.toml gives: run "
            "`python scripts/sync_requirements.py` (and do not edit it by hand)")


def test_requirements_txt_is_pyproject_with_pins():
    """Same packages as pyproject.toml; each line is pyproject's range or an exact release
    inside it."""
    declared, listed = _pyproject_requirements(), _requirements_txt()
    assert set(listed) == set(declared), (
        f"only in pyproject.toml: {sorted(set(declared) - set(listed))}; "
        f"only in requirements.txt: {sorted(set(listed) - set(declared))}")
    pins = PYPROJECT["tool"]["selconv_lite"]["pins"]
    for name, req in listed.items():
        want = declared[name].specifier
        if req.specifier == want:
            assert name not in pins, f"requirements.txt: {name} should be pinned to {pins[name]}"
            continue
        (spec,) = list(req.specifier)
        assert spec.operator == "==", f"requirements.txt: {req} is neither {want} nor a pin"
        assert want.contains(spec.version), f"requirements.txt: {req} is outside {want}"
        assert pins.get(name) == spec.version


def test_environment_yml_matches_requirements():
    env, conda, pip = _environment_yml()
    assert env["channels"] == ["conda-forge"]
    assert f"python={PYPROJECT['project']['requires-python'].lstrip('>=')}" in conda
    assert "pip" in conda
    declared = _pyproject_requirements()
    # conda-forge side: every package except the pip-only ones, with pyproject's range
    conda_specs = {}
    for entry in conda:
        m = re.fullmatch(r"([A-Za-z0-9._-]+)(.*)", entry)
        if m[1] not in ("python", "pip"):
            conda_specs[m[1]] = m[2]
    expected = {}
    for name, req in declared.items():
        if name in sync.PIP_ONLY:
            continue
        target = sync.CONDA_FORGE[name]
        conda_name, spec = target if isinstance(target, tuple) else (target, None)
        expected[conda_name] = spec
        if spec is None:
            assert SpecifierSet(conda_specs.get(conda_name, "")) == req.specifier, (
                f"environment.yml: {conda_name}{conda_specs.get(conda_name)} is not "
                f"pyproject's {req}")
    assert set(conda_specs) == set(expected), (
        f"environment.yml's conda packages differ: missing {sorted(set(expected) - set(conda_specs))}, "
        f"extra {sorted(set(conda_specs) - set(expected))}")
    # pip side: exactly the pip-only packages, as pyproject declares them
    pip_reqs = {canonicalize_name(Requirement(x).name): Requirement(x) for x in pip}
    assert set(pip_reqs) == {n for n in declared if n in sync.PIP_ONLY}
    for name, req in pip_reqs.items():
        assert req.specifier == declared[name].specifier


def test_torch_pins_are_installable_offline():
    # The reference machine installs exactly these from local files (see README).
    reqs = _requirements_txt()
    assert str(reqs["torch"].specifier) == "==2.14.1"
    assert str(reqs["torchvision"].specifier) == "==0.29.1"


def test_check_mode_reports_drift(tmp_path, capsys):
    for name in ("pyproject.toml", "requirements.txt", "environment.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    assert sync.main(["--check", "--root", str(tmp_path)]) == 0
    text = (tmp_path / "requirements.txt").read_text()
    (tmp_path / "requirements.txt").write_text(text.replace("scikit-learn>=1.6", "scikit-learn>=1.4"))
    capsys.readouterr()
    assert sync.main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "-scikit-learn>=1.4" in out and "+scikit-learn>=1.6" in out
    # without --check the file is rewritten and then up to date
    assert sync.main(["--root", str(tmp_path)]) == 0
    assert (tmp_path / "requirements.txt").read_text() == text


def _modified(edit):
    p = copy.deepcopy(PYPROJECT)
    edit(p)
    return p


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["tool"]["selconv_lite"]["pins"].update(torch="1.13.1"), "outside the declared range"),
    (lambda p: p["tool"]["selconv_lite"]["pins"].update(nosuchpkg="1.0"), "no dependency list has"),
    (lambda p: p["project"]["dependencies"].append("nosuchpkg>=1"), "no conda-forge name"),
    (lambda p: p["project"]["optional-dependencies"].update(docs=["pdoc>=15"]), "not in GROUPS"),
    (lambda p: p["project"]["optional-dependencies"].update(all=["selconv_lite[tests]"]),
     "expected"),
])
def test_generator_rejects_inconsistent_pyproject(edit, message):
    p = _modified(edit)
    with pytest.raises(ValueError, match=message):
        sync.render_requirements(p)
        sync.render_environment(p)


def test_python_version_is_the_tested_minimum():
    assert sync.python_version(PYPROJECT) == "3.11"
    with pytest.raises(ValueError, match="requires-python"):
        sync.python_version(_modified(lambda p: p["project"].update({"requires-python": "~=3.11"})))
