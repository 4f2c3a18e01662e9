"""selconv_lite.scale.distractors: derived distractors come only from photos relevant to no
query, are labelled, seeded and recorded; synthetic vectors are unit vectors."""
import csv

import numpy as np
import pytest

from selconv_lite.data.datasets import load_dataset
from selconv_lite.scale.distractors import (LABEL, distractor_sources, make_derived_distractors,
                                            synthetic_vectors)


def test_derived_distractors(tmp_path):
    ds = load_dataset("default")
    src = distractor_sources(ds)
    relevant = {ds.images[int(i)] for g in ds.gnd for k in ("ok", "junk", "easy", "hard")
                for i in g.get(k, [])}
    assert src and not relevant & set(src) and not set(ds.queries) & set(src)
    paths = make_derived_distractors(ds, tmp_path, 5, seed=1, max_dim=64)
    assert [p.split("/")[-1] for p in paths] == [f"{LABEL}_{i:06d}.jpg" for i in range(5)]
    rows = list(csv.DictReader(open(tmp_path / "DERIVED_DISTRACTORS.csv")))
    assert [r["label"] for r in rows] == [LABEL] * 5
    assert [r["source"] for r in rows] == [s.split("/")[-1] for s in src[:5]]
    again = make_derived_distractors(ds, tmp_path / "b", 5, seed=1, max_dim=64)
    assert all(open(a, "rb").read() == open(b, "rb").read() for a, b in zip(paths, again))
    with pytest.raises(ValueError, match="n must be >= 0"):
        make_derived_distractors(ds, tmp_path, -1)


def test_synthetic_vectors():
    x = synthetic_vectors(1000, 16, seed=3, chunk=300)
    assert x.shape == (1000, 16) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(x, synthetic_vectors(1000, 16, seed=3, chunk=300))
    with pytest.raises(ValueError, match="dim >= 1"):
        synthetic_vectors(5, 0)
