"""The conda environment.yml and requirements.txt must describe the same environment."""
from pathlib import Path



ROOT = Path(__file__).resolve().parents[1]


def _requirements():
    out = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def _environment_pip():
    import yaml  # a dependency of papermill
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, "environment.yml must have exactly one pip: section"
    return env, pip[0]["pip"]


def test_environment_yml_matches_requirements():
    env, pip = _environment_pip()
    assert sorted(pip) == sorted(_requirements()), (
        "environment.yml's pip list and requirements.txt differ; update both together")
    assert "python=3.11" in env["dependencies"]


def test_torch_pins_are_installable_offline():
    # The reference machine installs exactly these from local files (see README).
    reqs = _requirements()
    assert "torch==2.14.1" in reqs and "torchvision==0.29.1" in reqs
