"""Write notebooks/NN_*.ipynb (without outputs) from the sources in this folder.

Usage: python notebooks/src/make_notebooks.py [01 02 ...]   (default: all)
Then execute each in place with papermill (see docs/notebooks.md) and commit with outputs.
"""
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from nbgen import write  # noqa: E402

SOURCES = ["nb01_features", "nb02_masks", "nb03_embeddings", "nb04_aggregation", "nb05_postprocessing",
           "nb06_full_evaluation", "nb07_finetuned_backbones"]

if __name__ == "__main__":
    want = sys.argv[1:]
    for modname in SOURCES:
        if want and not any(modname[2:].startswith(w) for w in want):
            continue
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError:
            print(f"skip {modname} (no source yet)")
            continue
        out = HERE.parent / f"{mod.NAME}.ipynb"
        write(out, mod.cells())
        print(f"wrote {out.relative_to(HERE.parent.parent)}")
