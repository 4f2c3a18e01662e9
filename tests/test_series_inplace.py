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
