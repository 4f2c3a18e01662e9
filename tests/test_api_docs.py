"""The API reference (pdoc, numpy docstrings) builds without a warning and has a page for every
subpackage and module of the layered layout."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

pdoc = pytest.importorskip("pdoc")
import pdoc.render  # noqa: E402

PKG = Path(__file__).resolve().parents[1] / "selconv_lite"


def test_api_reference_builds_without_warnings(tmp_path):
    pdoc.render.configure(docformat="numpy", math=True, show_source=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc("selconv_lite", output_directory=tmp_path)
    from_pdoc = [f"{w.category.__name__}: {w.message}" for w in caught
                 if "pdoc" in w.filename or issubclass(w.category, RuntimeWarning)]
    assert not from_pdoc, "\n".join(from_pdoc)
    subpackages = sorted(p.name for p in PKG.iterdir() if (p / "__init__.py").is_file())
    assert subpackages, "no subpackage found"
    for sub in subpackages:
        assert (tmp_path / "selconv_lite" / f"{sub}.html").is_file(), f"no API page for {sub}"
        for mod in sorted((PKG / sub).glob("[!_]*.py")):
            page = tmp_path / "selconv_lite" / sub / f"{mod.stem}.html"
            assert page.is_file(), f"no API page for selconv_lite.{sub}.{mod.stem}"
    # the numpy sections are rendered (a Parameters heading of a documented estimator)
    html = (tmp_path / "selconv_lite" / "method" / "embeddings.html").read_text()
    assert "TriangulationEmbedding" in html and "Parameters" in html


def test_api_overview_lists_every_module_of_its_subpackage():
    """docs/api.md's table of layers names each module in its subpackage's row (the real layout)."""
    text = (PKG.parent / "docs" / "api.md").read_text()
    rows = {line.split("|")[2].strip().strip("`"): line for line in text.splitlines()
            if line.startswith("| ") and "`selconv_lite." in line}
    subpackages = sorted(p.name for p in PKG.iterdir() if (p / "__init__.py").is_file())
    assert sorted(r.split(".")[-1] for r in rows) == subpackages
    missing = [f"{sub}.{mod.stem}" for sub in subpackages for mod in sorted((PKG / sub).glob("[!_]*.py"))
               if f"`{mod.stem}`" not in rows[f"selconv_lite.{sub}"]]
    assert not missing, f"docs/api.md does not name: {missing}"
