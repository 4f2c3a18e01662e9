"""The Table 3 driver of notebooks 04-06 (selconv_lite.experiments.tables): one implementation
serves the small tables of notebook 04 and the full evaluation's ``run_table3``."""
from __future__ import annotations

import numpy as np

from selconv_lite.experiments import tables
from selconv_lite.experiments.scoring import fit_evaluate, mean_ap
from selconv_lite.experiments.tables import FRAMEWORKS, table3
from test_full_eval import _synthetic_dataset


def test_table3_is_the_full_evaluation_table3():
    ds, feats = _synthetic_dataset(n_train=30)
    small = table3(ds, feats, ("none",), tables.TABLE3_CONFIGS[1024])
    full = tables.run_table3(ds, feats, D=1024, masks=("none",))
    assert list(small) == [label for label, _, _ in FRAMEWORKS] == full.rows
    np.testing.assert_array_equal([[small[r]["none"]] for r in full.rows], full.values)
    # the T-emb row is the plain fit + evaluate of the same pipeline
    d, k = tables.TABLE3_CONFIGS[1024]["temb"]
    pipe, m = fit_evaluate(ds, feats, mask="none", embedding="temb", d=d, n_centroids=k)
    assert m == small["T-emb + demo"]["none"]
    q, db = pipe.transform(feats["queries"]), pipe.transform(feats["db"])
    assert mean_ap(ds, q, db) == m == ds.evaluate(q, db)["mAP"]
