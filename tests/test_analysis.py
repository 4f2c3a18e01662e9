"""Fig. 2a's kept percentage: one function (method.masks.kept_percentage) and its average over
images (experiments.analysis.kept_percentages)."""
from __future__ import annotations

import numpy as np
import pytest

from selconv_lite.core.types import ImageFeatures
from selconv_lite.experiments.analysis import kept_percentages
from selconv_lite.method.masks import compute_mask, kept_percentage


def test_kept_percentage_of_a_mask():
    m = np.zeros((4, 5), bool)
    m[0, :3] = True
    assert kept_percentage(m) == 15.0
    assert kept_percentage(np.ones((2, 2), bool)) == 100.0 and kept_percentage(np.zeros((3, 1))) == 0.0


def test_kept_percentages_average_over_images():
    rng = np.random.RandomState(0)
    ims = [ImageFeatures(rng.rand(h, 6, 8).astype(np.float32), (32 * h, 192), name=f"i{h}") for h in (3, 5)]
    got = kept_percentages(ims, ("max", "none"))
    assert got["none"] == 100.0
    want = np.mean([100.0 * compute_mask("max", f).mean() for f in ims])
    assert got["max"] == pytest.approx(want, abs=1e-12) and 0 < got["max"] < 100
    with pytest.raises(ValueError, match="at least one image"):
        kept_percentages([], ("max",))
