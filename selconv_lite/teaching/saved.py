"""Functions the tutorial notebooks derive and save (cells tagged ``save``).

GENERATED from the cells of notebooks/NN_*.py tagged ``save`` by

    python -m selconv_lite.teaching.saved_export

generated, do not edit: edit the notebook cell and run the command again (the rules are
in :mod:`selconv_lite.teaching.saved_export`).

Source cells, in order (cell numbers count from 0, markdown cells included):

* (no cell is tagged yet)
"""


__all__ = []
