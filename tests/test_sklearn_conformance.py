"""Every estimator of the method follows the scikit-learn estimator contract.

``parametrize_with_checks`` runs scikit-learn's own checks (fit/transform on plain arrays,
``NotFittedError`` before ``fit``, input validation, NaN/inf and 1-D input refused, ``n_features_in_``,
``get_params``/``set_params``/``clone`` round-trips, pickling, float32 kept in float32,
idempotent seeded fits, ...). The estimators are built small (2 codewords, 2 PCA components)
because the checks fit on 10-30 samples of 1-10 features.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from selconv_lite.method.embeddings import (EMBEDDINGS, PCAL2, VLAD, FFAEmbedding, FisherVector,
                                            TriangulationEmbedding)
from selconv_lite.method.postprocess import RotationNormalization

ESTIMATORS = [
    PCAL2(d=2),
    VLAD(n_centroids=2),
    TriangulationEmbedding(n_centroids=2),
    FisherVector(n_centroids=2),
    FFAEmbedding(n_centroids=2),
    RotationNormalization(),
]

#: Checks that cannot apply, by estimator class, with the reason.
NOT_APPLICABLE = {
    "PCAL2": {
        "check_fit2d_1feature": "PCA to d=2 components cannot be learned from 1 feature; fit "
                                "raises a ValueError naming d and the feature dimension K",
    },
}


def expected_failed_checks(estimator):
    return NOT_APPLICABLE.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_every_registered_embedding_is_checked():
    checked = {type(e) for e in ESTIMATORS}
    assert set(EMBEDDINGS.values()) <= checked


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


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
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
