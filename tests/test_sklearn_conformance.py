"""Every estimator of the method follows the scikit-learn estimator contract.

``parametrize_with_checks`` runs scikit-learn's own checks (fit/transform on plain arrays,
``NotFittedError`` before ``fit``, input validation, NaN/inf and 1-D input refused, ``n_features_in_``,
``get_params``/``set_params``/``clone`` round-trips, pickling, float32 kept in float32,
idempotent seeded fits, ...). The estimators are built small (2 codewords, 2 PCA components)
because the checks fit on 10-30 samples of 1-10 features.

The Table 6 baselines and the full pipeline take feature maps; scikit-learn's checks give them
2-D arrays ``(n, K)``, which they read as ``n`` maps of a single location (their documented 2-D
input), so the whole estimator runs (baselines: pooling, L2, held-out whitening, L2; pipeline:
mask, PCA+L2, embedding, aggregation, rotation normalisation, power-law, L2). SPoC is checked
with ``n_components=None`` (its default is the paper's 256, more than the checks' 1-10
channels), the pipeline with ``d = |C| = 2`` and no truncation.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from selconv_lite.core.types import ImageFeatures
from selconv_lite.method.base import FloatTransformer
from selconv_lite.method.baselines import BASELINES, MAC, RMAC, CroW, GeM, PCAWhitening, SPoC
from selconv_lite.method.embeddings import (EMBEDDINGS, PCAL2, VLAD, FFAEmbedding, FisherVector,
                                            TriangulationEmbedding)
from selconv_lite.method.pipeline import SelectiveConvPipeline
from selconv_lite.method.postprocess import RotationNormalization

ESTIMATORS = [
    PCAL2(d=2),
    VLAD(n_centroids=2),
    TriangulationEmbedding(n_centroids=2),
    FisherVector(n_centroids=2),
    FFAEmbedding(n_centroids=2),
    RotationNormalization(),
    PCAWhitening(),
]

#: The baselines (input: feature maps, or 2-D arrays read as single-location maps).
BASELINE_ESTIMATORS = [SPoC(n_components=None), MAC(), RMAC(), CroW(), GeM()]

#: The full pipeline (the same 2-D input), T-emb + democratic and VLAD + sum pooling in float64.
PIPELINES = [SelectiveConvPipeline(d=2, n_centroids=2, truncate=0),
             SelectiveConvPipeline(mask="sum", embedding="vlad", aggregation="sum", d=2, n_centroids=2,
                                   dtype="float64")]

#: Checks that cannot apply, by estimator class, with the reason (none at present: every
#: estimator passes every check).
NOT_APPLICABLE: dict = {}


def expected_failed_checks(estimator):
    return NOT_APPLICABLE.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS + BASELINE_ESTIMATORS + PIPELINES,
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_every_registered_embedding_and_baseline_is_checked():
    checked = {type(e) for e in ESTIMATORS + BASELINE_ESTIMATORS}
    assert set(EMBEDDINGS.values()) <= checked
    assert set(BASELINES.values()) <= checked


def _maps(n, K=4, seed=0):
    rng = np.random.default_rng(seed)
    return [ImageFeatures(np.maximum(rng.standard_normal((3 + i % 2, 4, K)), 0), (48, 64), name=f"m{i}")
            for i in range(n)]


@pytest.mark.parametrize("est", BASELINE_ESTIMATORS, ids=lambda e: type(e).__name__)
def test_baseline_inputs(est):
    """The input forms of a baseline agree: a list of maps, a 4-D array of equal-sized maps,
    one map; a 2-D array is single-location maps; unfitted and bad inputs are refused."""
    maps = _maps(30)
    with pytest.raises(NotFittedError, match=type(est).__name__):
        clone(est).transform(maps)
    fitted = clone(est).fit(maps)
    same = [m for m in maps if m.fmap.shape[0] == 3]
    Y = fitted.transform(same)
    np.testing.assert_array_equal(fitted.transform(np.stack([m.fmap for m in same])), Y)
    np.testing.assert_array_equal(fitted.transform(same[0].fmap), Y[:1])
    assert fitted.n_features_in_ == fitted.input_dim_ == 4
    # (n, K) rows = maps of one location
    rows = np.maximum(np.random.default_rng(1).standard_normal((30, 4)), 0) + 0.1
    by_rows = clone(est).fit(rows)
    np.testing.assert_allclose(by_rows.transform(rows[:5]),
                               clone(est).fit(list(rows[:, None, None, :])).transform(rows[:5, None, None, :]))
    with pytest.raises(ValueError, match="Reshape your data"):
        fitted.transform(rows[0])
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(np.where(np.eye(5, 4) > 0, np.nan, rows[:5]))
    with pytest.raises(ValueError, match="expecting 4 features"):
        fitted.transform(rows[:5, :3])


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_unfitted_transform_and_1d_input_are_refused(est):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4))
    with pytest.raises(NotFittedError, match=type(est).__name__):
        clone(est).transform(X)
    fitted = clone(est).fit(X)
    with pytest.raises(ValueError, match="Expected a 2-dimensional container|2D array"):
        fitted.transform(X[0])
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(np.where(np.eye(40, 4) > 0, np.nan, X))


@pytest.mark.parametrize("est", [e for e in ESTIMATORS if isinstance(e, FloatTransformer)],
                         ids=lambda e: type(e).__name__)
def test_float32_in_float32_out_and_astype(est):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 4))
    fitted = clone(est).fit(X)
    y64 = fitted.transform(X)
    y32 = fitted.transform(X.astype(np.float32))
    fast = fitted.astype(np.float32)
    assert y64.dtype == np.float64 and y32.dtype == np.float32
    # F-FAemb's coefficients are computed in float64 from the (cast) anchors
    np.testing.assert_allclose(fast.transform(X.astype(np.float32)), y32, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y32, y64, rtol=1e-3, atol=1e-4)
    # the original keeps its float64 parameters
    np.testing.assert_array_equal(fitted.transform(X), y64)


def test_pipeline_2d_input_is_single_location_maps():
    """The pipeline's 2-D input is ``n`` maps of one location: the same vectors as the
    equivalent ImageFeatures; bad arrays get scikit-learn's messages."""
    rng = np.random.default_rng(3)
    X = np.maximum(rng.standard_normal((40, 6)), 0) + 0.05
    maps = [ImageFeatures(x[None, None, :], (1, 1), name=f"im{i}") for i, x in enumerate(X)]
    est = SelectiveConvPipeline(d=3, n_centroids=2, truncate=0, dtype="float64")
    with pytest.raises(NotFittedError, match="SelectiveConvPipeline"):
        clone(est).transform(X)
    a = clone(est).fit(X)
    b = clone(est).fit(maps)
    np.testing.assert_array_equal(a.transform(X[:7]), b.transform(maps[:7]))
    assert a.n_features_in_ == b.n_features_in_ == 6
    with pytest.raises(ValueError, match="Reshape your data"):
        a.transform(X[0])
    with pytest.raises(ValueError, match="expecting 6 features"):
        a.transform(X[:3, :4])
    with pytest.raises(ValueError, match="NaN"):
        a.transform(np.where(np.eye(3, 6) > 0, np.nan, X[:3]))
