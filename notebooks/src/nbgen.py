"""Tiny helpers to write the tutorial notebooks from Python sources (notebooks/src/*.py).

Run ``python notebooks/src/make_notebooks.py [NN ...]`` to (re)write the notebooks without
outputs, then execute them with papermill in place (see docs/notebooks.md) and commit them with
their outputs.
"""
import nbformat as nbf

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def md(text):
    return nbf.v4.new_markdown_cell(text.strip("\n"))


def code(src, *tags):
    c = nbf.v4.new_code_cell(src.strip("\n"))
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def write(path, cells):
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = cells
    for i, c in enumerate(nb.cells):  # stable cell ids -> small diffs
        c["id"] = f"c{i:02d}"
    nbf.validate(nb)
    nbf.write(nb, path)
