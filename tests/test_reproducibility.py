"""What keeps the notebooks' outputs the same on any machine: location-independent paths in
outputs and warnings, a fixed thread count, and nbval sanitising measured floats but not
integers or words (notebooks/nbval_sanitize.cfg)."""
import io
import re
import warnings
from pathlib import Path

import pytest
import torch
from nbval.plugin import get_sanitize_patterns

from selconv_lite.teaching import notebook_utils as nu

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def moved(tmp_path, monkeypatch):
    """Dataset, cache and output folders somewhere else than in the repository."""
    dirs = {name: tmp_path / name for name in ("data", "cache", "out")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("SELCONV_DEFAULT_DATA", str(dirs["data"]))
    monkeypatch.setenv("SELCONV_CACHE", str(dirs["cache"]))
    monkeypatch.setenv("SELCONV_OUTPUT", str(dirs["out"]))
    monkeypatch.chdir(tmp_path)
    return dirs


def test_display_path_labels_moved_folders(moved, tmp_path):
    assert nu.display_path(moved["data"] / "jpg" / "a.jpg") == "data/default/jpg/a.jpg"
    assert nu.display_path(moved["cache"] / "ft" / "trunk.pt") == "cache/ft/trunk.pt"
    assert nu.display_path(moved["out"] / "01_features.json") == "outputs/01_features.json"
    assert nu.display_path(REPO / "README.md") == "README.md"
    assert nu.display_path("/nonexistent-root/x/y.txt") == "<...>/y.txt"


def test_display_path_same_in_repository(monkeypatch):
    for var in ("SELCONV_DEFAULT_DATA", "SELCONV_CACHE", "SELCONV_OUTPUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(REPO)
    assert nu.display_path(REPO / "data" / "default" / "jpg" / "a.jpg") == "data/default/jpg/a.jpg"
    assert nu.display_path(REPO / "outputs" / "x.json") == "outputs/x.json"


def test_tidy_warnings_replace_machine_paths(moved, monkeypatch):
    buf = io.StringIO()
    old = warnings.showwarning
    try:
        nu.tidy_warnings()
        warnings.showwarning(UserWarning(f"image '{moved['data'] / 'jpg' / 'b.jpg'}' is empty"),
                             UserWarning, "/somewhere/file.py", 12, file=buf)
    finally:
        warnings.showwarning = old
    assert buf.getvalue() == "UserWarning: image 'data/default/jpg/b.jpg' is empty\n"


def test_thread_environment():
    env = nu.thread_environment(3)
    assert env["SELCONV_THREADS"] == env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "3"
    assert env["MKL_NUM_THREADS"] == "3"
    for bad in (0, "two", -1):
        with pytest.raises(ValueError, match="SELCONV_THREADS"):
            nu.thread_environment(bad)


def test_thread_environment_default(monkeypatch):
    monkeypatch.delenv("SELCONV_THREADS", raising=False)
    assert nu.thread_environment()["OMP_NUM_THREADS"] == str(nu.DEFAULT_THREADS)
    monkeypatch.setenv("SELCONV_THREADS", "1")
    assert nu.thread_environment()["OMP_NUM_THREADS"] == "1"


def test_seed_everything_fixes_threads_and_describes_it(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("SELCONV_THREADS", "1")
    try:
        line = nu.seed_everything(7)
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
        assert line == "seed 7; 1 threads; deterministic torch algorithms"
        a = torch.rand(3)
        nu.seed_everything(7)
        assert torch.equal(a, torch.rand(3))
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(False)


def _sanitizers():
    """The file's rules as nbval reads them, in order."""
    text = (REPO / "notebooks" / "nbval_sanitize.cfg").read_text()
    return [(re.compile(rx), rep) for rx, rep in get_sanitize_patterns(text)]


def _sanitize(text):
    for rx, rep in _sanitizers():
        text = rx.sub(rep, text)
    return text


def test_sanitizer_removes_measured_floats_only():
    a = "Table 3 (mAP)  max 0.757 0.750  sum 0.745; kept 31.25% of 144 features, grid 16 x 9"
    b = "Table 3 (mAP)  max 0.758 0.752  sum 0.744; kept 31.40% of 144 features, grid 16 x 9"
    assert _sanitize(a) == _sanitize(b)
    assert "144 features, grid 16 x 9" in _sanitize(a) and "Table 3 (mAP)" in _sanitize(a)
    assert _sanitize("kept 31.25% of 144") != _sanitize("kept 31.25% of 145")  # counts compare
    assert _sanitize("best: T-emb + demo") != _sanitize("best: F-FAemb + demo")  # words compare
    assert _sanitize("conv5_3, pool5, fig2a") == "conv5_3, pool5, fig2a"


def test_sanitizer_has_no_path_rules():
    assert _sanitize("/work/main/data/default/jpg/a.jpg") == "/work/main/data/default/jpg/a.jpg"
