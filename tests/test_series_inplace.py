"""The series runner's re-execution mode (``--in-place --update-references``, behind
scripts/execute_notebooks.sh): notebooks are executed into themselves with a fixed thread
count, papermill's timestamps are stripped, and the regression references are rewritten from
the run's records; a failed run leaves references alone."""
import json

import nbformat

from selconv_lite.teaching import series
from selconv_lite.teaching.regression import compare_folder

CODE = """\
import os
from selconv_lite.teaching import notebook_utils as nu
print(nu.seed_everything(seed))
import torch
rec = nu.NotebookRecord("01_threads", output_dir, params=dict(seed=seed))
rec.headline("torch threads", torch.get_num_threads())
rec.add("env", {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
rec.add("fit_seconds", 1.5)
rec.save()
"""


def _notebook(folder, body=CODE, name="01_threads.ipynb"):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 3\noutput_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / name
    nbformat.write(nb, str(path))
    return path


def test_in_place_fixed_threads_and_references(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    (nbdir / "reference").mkdir(parents=True)
    (nbdir / "reference" / "tolerances.toml").write_text(
        '[tolerances]\n"*:*seconds*" = inf\n"*" = 0.0\n')
    path = _notebook(nbdir)
    out = tmp_path / "out"
    rc = series.main(["--in-place", "--update-references", "--threads", "1",
                      "--notebooks", str(nbdir), "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "1 thread(s) per kernel" in printed and "total time" in printed
    nb = nbformat.read(str(path), as_version=4)
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert text.strip() == "seed 3; 1 threads; deterministic torch algorithms\nwrote 1 headline numbers to outputs/01_threads.json"
    assert "papermill" not in nb.metadata
    assert all("execution" not in c.metadata and "papermill" not in c.metadata for c in nb.cells)
    assert not (out / "notebooks" / "01_threads.ipynb").exists()
    ref = json.loads((nbdir / "reference" / "01_threads.json").read_text())
    assert ref["values"] == {"params.seed": 3, "headline.torch threads": 1,
                             "results.env.OMP_NUM_THREADS": "1",
                             "results.env.OPENBLAS_NUM_THREADS": "1",
                             "results.env.MKL_NUM_THREADS": "1"}  # the timing is excluded
    assert compare_folder(out, nbdir / "reference") == []


def test_failed_run_keeps_notebook_and_references(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    (nbdir / "reference").mkdir(parents=True)
    (nbdir / "reference" / "tolerances.toml").write_text('[tolerances]\n"*" = 0.0\n')
    path = _notebook(nbdir, body="raise ValueError('broken on purpose')", name="01_broken.ipynb")
    before = path.read_bytes()
    rc = series.main(["--in-place", "--update-references", "--notebooks", str(nbdir),
                      "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 1
    assert "references NOT updated" in captured.err
    assert path.read_bytes() == before
    assert sorted(p.name for p in (nbdir / "reference").iterdir()) == ["tolerances.toml"]


MAXDIM_CODE = """\
import os
from selconv_lite.teaching import notebook_utils as nu
rec = nu.NotebookRecord("01_size", output_dir, params=dict(max_dim=max_dim))
rec.headline("max_dim seen", -1 if max_dim is None else max_dim)
rec.add("series_env", os.environ.get("SELCONV_SERIES_MAX_DIM"))
rec.save()
"""


def _size_notebook(folder):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("max_dim = None\noutput_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(MAXDIM_CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / "01_size.ipynb"))


def test_max_dim_reaches_every_notebook_and_is_recorded(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    _size_notebook(nbdir)
    out = tmp_path / "out"
    rc = series.main(["--notebooks", str(nbdir), "--out", str(out), "--max-dim", "1024",
                      "--cache-dir", str(tmp_path / "cache")])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "max_dim 1024 in every notebook" in printed
    rec = json.loads((out / "01_size.json").read_text())
    assert rec["headline"] == {"max_dim seen": 1024}
    assert rec["results"]["series_env"] == "1024"  # extra layers are cached at this size
    assert json.loads((out / "series.json").read_text())["max_dim"] == 1024
    runs = json.loads((out / "timings.json").read_text())["runs"]
    assert runs[-1]["max_dim"] == 1024 and runs[-1]["kind"] == "cold"
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "every notebook at max_dim 1024 (the paper's image size)" in page
    # the same folder, the notebooks' own default: a separate timing, not mixed with the 1024 run
    rc = series.main(["--notebooks", str(nbdir), "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    rec = json.loads((out / "01_size.json").read_text())
    assert rec["headline"] == {"max_dim seen": -1} and rec["results"]["series_env"] is None
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "every notebook at its default image size" in page
    runs = json.loads((out / "timings.json").read_text())["runs"]
    assert [r["max_dim"] for r in runs] == [1024, None]


def test_max_dim_refused_in_place_and_when_not_a_size(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    _size_notebook(nbdir)
    before = (nbdir / "01_size.ipynb").read_bytes()
    rc = series.main(["--notebooks", str(nbdir), "--out", str(tmp_path / "out"), "--in-place",
                      "--max-dim", "1024"])
    assert rc == 2
    assert "committed notebooks" in capsys.readouterr().err
    assert (nbdir / "01_size.ipynb").read_bytes() == before  # nothing executed
    for bad in (0, 16, -1024, 1024.5, True, "abc"):
        try:
            series.check_max_dim(bad)
        except ValueError as e:
            assert "max_dim" in str(e)
        else:
            raise AssertionError(f"accepted max_dim={bad!r}")
    assert series.check_max_dim(None) is None and series.check_max_dim(724) == 724
    assert series.check_max_dim("1024") == 1024
