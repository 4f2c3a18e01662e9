"""Checks of the notebooks' text and outputs (selconv_lite.teaching.nbcheck): measured numbers
typed in markdown, widget state, figure widths, exercises with a visible check and a collapsed
solution -- on synthetic notebooks -- and, on the committed notebooks, no saved widget state, no
measured number typed in markdown, no figure wider than the limit and an Exercises section with
a visible check and a collapsed solution (issue 23)."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from selconv_lite.teaching import nbcheck as nc

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# --------------------------------------------------------------------------------------------
# no measured number typed in markdown
# --------------------------------------------------------------------------------------------
def _flagged(md: str) -> list[tuple[str, str]]:
    return [(f.text, f.kind) for f in nc.markdown_findings(md, "nb", 3)]


@pytest.mark.parametrize("md, expected", [
    ("On this set T-emb + demo reaches 0.765 with the MAX mask.", [("0.765", "decimal")]),
    ("At 1024 px the MAX mask keeps 27.7 % of the cells.", [("27.7", "percentage")]),
    ("It keeps 30% of them.", [("30", "percentage")]),
    ("The series took 29.3 min cold and 96 s warm.", [("29.3", "time"), ("96", "time")]),
    ("The extractor upsamples 129 of the 161 database images.",
     [("129", "count 'N of M'"), ("161", "integer >= 100")]),
    ("MAX beats no mask in 5 of the 6 rows.", [("5", "count 'N of M'")]),
    ("The index takes 64 bytes per image, 16 GB in all.", [("64", "size"), ("16", "size")]),
    ("Training conv5_3 only is 2x faster.", [("2", "ratio")]),
    ("The held-out split has 6392 images and 10 000 local features.",
     [("6392", "integer >= 100"), ("10 000", "integer >= 100")]),
    ("A score of mAP = 0.71 here.", [("0.71", "decimal")]),
    ("The gain is −0.017 mAP.", [("0.017", "decimal")]),
    # a section reference alone does not mark a measured value as the paper's
    ("It keeps 27.7% here (§5.2).", [("27.7", "percentage")]),
    # the paper reference marks its own clause only
    ("The paper keeps about 30 % (Fig. 2a); here it keeps 27.7 %.", [("27.7", "percentage")]),
    # code spans are skipped, the prose around them is not
    ("`rec.add('x', 0.5)` prints 0.731.", [("0.731", "decimal")]),
])
def test_measured_numbers_are_flagged(md, expected):
    assert _flagged(md) == expected


@pytest.mark.parametrize("md", [
    "The paper's MAX mask with T-emb reaches 0.765 on Oxford5k (Table 3).",
    "About 75%, 50% and 30% of the locations are kept (paper, Fig. 2a).",
    "Fine-tuning adds 12.0 points (Table 6, Oxford5k, 512-D).",
    "The paper's value is 212 px (paper §3.2.1).",
    "<!-- paper -->\n| mask | Oxford5k |\n|---|---|\n| MAX | 0.765 |\n| SUM | 0.745 |",
    "§5.2.1 and Sec. 4.3 explain it; see Section 3.1, Table 3, Figs. 3-6 and Eqs. 1-3.",
    "## 4.2 Post-processing\n\n1. first step\n2. second step",
    "Jégou & Zisserman, CVPR 2014; Chum et al. 2007.",
    "The conv5_3 and pool5 layers of VGG16; the R1M distractors; notebook 06 §4b.",
    "With $D = 1024$, $K = 512$ and d=256 the vectors are 512-D or 4224-dimensional.",
    "Images are fed at 1024 px; the grid is 32 × 24 = 768 cells; a 3 × 3 neighbourhood.",
    "Images at 512, 724 and 1024 px.",
    "With exponent 0.5 and margin 0.7 the loss; $\\alpha = 0.5$; $D \\approx 512$.",
    "Run `python -m selconv_lite.teaching.sweep 04 -p D 1024 2048` and `x = 0.765`.",
    "```python\nprint(0.765)\n```",
    "Ten iterations, 3 clusters and 24 queries, 2 CPU cores.",
    "See [the 2017 paper](https://example.org/paper-0.765.pdf).",
    "A CPU i7-6700, Python 3.11 and version 2.7 of papermill.",
])
def test_allowed_numbers_are_not_flagged(md):
    assert _flagged(md) == []


def test_findings_name_cell_and_line():
    found = nc.markdown_findings("# Title\n\nSome text.\nIt took 12.5 s.", "06_x.ipynb", 7)
    assert len(found) == 1
    f = found[0]
    assert (f.notebook, f.cell, f.line, f.text) == ("06_x.ipynb", 7, 4, "12.5")
    assert str(f).startswith("06_x.ipynb cell 7 line 4: '12.5' (time)")


def _save(nb, path: Path) -> Path:
    nbformat.write(nb, str(path))
    return path


def test_check_markdown_command(tmp_path, capsys):
    nb = new_notebook(cells=[new_markdown_cell("mAP 0.765 here."), new_code_cell("print(0.765)"),
                             new_markdown_cell("Fine (Table 3): 0.765.")])
    _save(nb, tmp_path / "01_a.ipynb")
    _save(new_notebook(cells=[new_markdown_cell("Nothing measured.")]), tmp_path / "02_b.ipynb")
    assert nc.main(["check-markdown", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "01_a.ipynb cell 0 line 1: '0.765' (decimal)" in out
    assert "01_a.ipynb: 1" in out and "02_b.ipynb: 0" in out and "total: 1" in out
    assert nc.main(["check-markdown", str(tmp_path / "02_b.ipynb")]) == 0
    assert nc.main(["check-markdown", str(tmp_path / "missing")]) == 2
    assert "no notebook or folder" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# hygiene
# --------------------------------------------------------------------------------------------
def _png(width: int, height: int = 20) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


WIDGET_STATE = {"application/vnd.jupyter.widget-state+json": {
    "state": {"abc": {"model_name": "FloatProgressModel", "state": {"max": 512}}},
    "version_major": 2, "version_minor": 0}}


def test_widget_state_is_found_and_stripped(tmp_path):
    nb = new_notebook(cells=[new_markdown_cell("# x"), new_code_cell(
        "1", outputs=[new_output("stream", name="stdout", text="100%|####| 512/512\n")])])
    nb.metadata["widgets"] = WIDGET_STATE
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = _save(nb, tmp_path / "01_a.ipynb")
    found = nc.hygiene_findings(path)
    assert [(f.text, f.kind) for f in found] == [("metadata.widgets", "widget state saved (1 models)")]
    assert nc.strip_widget_state(path) is True
    after = nbformat.read(str(path), as_version=4)
    assert "widgets" not in after.metadata and after.metadata.kernelspec.name == "python3"
    assert after.cells == nb.cells                      # cells and outputs untouched
    assert nc.hygiene_findings(path) == [] and nc.strip_widget_state(path) is False


def test_widget_views_are_flagged_and_not_stripped(tmp_path):
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb = new_notebook(cells=[new_code_cell("w", outputs=[new_output(
        "display_data", data={nc.WIDGET_VIEW: view, "text/plain": "FloatProgress(...)"})])])
    nb.metadata["widgets"] = WIDGET_STATE
    path = _save(nb, tmp_path / "01_a.ipynb")
    assert {f.kind for f in nc.hygiene_findings(path)} == {"widget state saved (1 models)",
                                                         "widget view in an output"}
    with pytest.raises(ValueError, match=r"01_a.ipynb: cells \[0\] display widgets"):
        nc.strip_widget_state(path)


def test_figures_wider_than_the_limit_are_flagged(tmp_path):
    outs = [new_output("display_data", data={"image/png": _png(w)}) for w in (1200, 1850)]
    outs.append(new_output("display_data", data={"image/png": _png(2400)},
                           metadata={"image/png": {"width": 1000}}))   # shown at 1000 px
    outs.append(new_output("execute_result", data={"image/png": _png(1300)},
                           metadata={"image/png": {"width": 1300}}, execution_count=1))
    path = _save(new_notebook(cells=[new_code_cell("fig", outputs=outs)]), tmp_path / "06_a.ipynb")
    assert nc.figure_widths(nbformat.read(str(path), as_version=4)) == [
        (0, 0, 1200, 1200), (0, 1, 1850, 1850), (0, 2, 2400, 1000), (0, 3, 1300, 1300)]
    found = nc.hygiene_findings(path)
    assert [f.text for f in found] == ["output 1: 1850 px wide", "output 3: 1300 px wide"]
    assert [f.text for f in nc.hygiene_findings(path, max_width=1500)] == ["output 1: 1850 px wide"]
    assert nc.hygiene_findings(path, figures=False) == []
    assert nc.image_size(_png(37, 11)) == (37, 11)
    assert nc.main(["check-hygiene", str(path), "--only", "widgets"]) == 0
    assert nc.main(["check-hygiene", str(path)]) == 1


def test_series_in_place_writer_strips_widget_state(tmp_path):
    """The series runner's in-place writer (scripts/execute_notebooks.sh) drops widget state."""
    from selconv_lite.teaching.series import strip_execution_metadata

    nb = new_notebook(cells=[new_code_cell("1")])
    nb.metadata["widgets"] = WIDGET_STATE
    nb.metadata["papermill"] = {"input_path": "x"}
    path = _save(nb, tmp_path / "01_a.ipynb")
    strip_execution_metadata(path)
    assert nc.hygiene_findings(path) == []


@pytest.mark.parametrize("ipynb", COMMITTED, ids=lambda p: p.stem)
def test_committed_notebooks_hold_no_widget_state(ipynb):
    found = nc.hygiene_findings(ipynb, figures=False)
    assert not found, (f"{found}: run `python -m selconv_lite.teaching.nbcheck strip-widgets "
                       f"notebooks/` before committing")


@pytest.mark.parametrize("ipynb", COMMITTED, ids=lambda p: p.stem)
def test_committed_notebooks_type_no_measured_number_in_markdown(ipynb):
    """Issue 22/23: a measured number is printed by code, never typed in markdown (the text cannot
    drift from the outputs when the data or the code change)."""
    found = nc.notebook_markdown_findings(ipynb)
    assert not found, "\n".join(str(f) for f in found)


@pytest.mark.parametrize("ipynb", COMMITTED, ids=lambda p: p.stem)
def test_committed_notebooks_figures_fit_the_page(ipynb):
    found = nc.hygiene_findings(ipynb, widgets=False)
    assert not found, "\n".join(str(f) for f in found)


@pytest.mark.parametrize("ipynb", COMMITTED, ids=lambda p: p.stem)
def test_committed_notebooks_have_checked_exercises_with_solutions(ipynb):
    """Issue 23: every notebook's exercises come with a visible check and a collapsed solution."""
    found = nc.exercise_findings(ipynb)
    assert not found, "\n".join(str(f) for f in found)


# --------------------------------------------------------------------------------------------
# exercises
# --------------------------------------------------------------------------------------------
DETAILS = "<details>\n<summary>Solution</summary>\n\n```python\ndef f(x):\n    return 2 * x\n```\n</details>"


def _exercise_nb(check=True, solution="details", extra_heading=False):
    cells = [new_markdown_cell("# Notebook\n\n## 1. Section"), new_code_cell("x = 1"),
             new_markdown_cell("## Exercise 1: doubling\n\nWrite `f`.")]
    if extra_heading:
        cells.append(new_markdown_cell("## 2. Next section"))
    cells.append(new_code_cell("def f(x):\n    return None  # your code"))
    if check:
        cells.append(new_code_cell("if f(1) is not None:\n    assert f(2) == 4\n    print('ok')"))
    if solution == "details":
        cells.append(new_markdown_cell(DETAILS))
    elif solution == "hidden":
        cells.append(new_code_cell("def f(x):\n    return 2 * x",
                                   metadata={"jupyter": {"source_hidden": True}}))
    elif solution == "open-details":
        cells.append(new_markdown_cell("<details><summary>Hint</summary>double it</details>"))
    return new_notebook(cells=cells)


@pytest.mark.parametrize("kw, missing", [
    (dict(), None),
    (dict(solution="hidden"), None),
    (dict(check=False), "lacks a visible check (assert)"),
    (dict(solution=None), "lacks a collapsed solution"),
    (dict(solution="open-details"), "lacks a collapsed solution"),     # a hint is not a solution
    (dict(extra_heading=True), "lacks a visible check (assert) and a collapsed solution"),
])
def test_exercise_convention(tmp_path, kw, missing):
    path = _save(_exercise_nb(**kw), tmp_path / "01_a.ipynb")
    found = nc.exercise_findings(path)
    if missing is None:
        assert found == []
        (ex,) = nc.exercises(nbformat.read(str(path), as_version=4), "01_a.ipynb")
        assert ex.title == "Exercise 1: doubling" and ex.check_cells and ex.solution_cells
    else:
        assert [(f.cell, f.kind) for f in found] == [(2, missing)]


def test_hidden_check_does_not_count_and_missing_exercises_are_listed(tmp_path, capsys):
    nb = _exercise_nb(solution="hidden")
    nb.cells[4].metadata["jupyter"] = {"source_hidden": True}           # the assert is hidden
    _save(nb, tmp_path / "01_a.ipynb")
    _save(new_notebook(cells=[new_markdown_cell("# No exercise here")]), tmp_path / "02_b.ipynb")
    _save(_exercise_nb(), tmp_path / "03_c.ipynb")
    assert nc.main(["check-exercises", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "01_a.ipynb cell 2: 'Exercise 1: doubling' (lacks a visible check (assert))" in out
    assert "02_b.ipynb: 'no exercise'" in out and "03_c.ipynb: 0" in out
    assert nc.main(["check-exercises", str(tmp_path / "03_c.ipynb")]) == 0
