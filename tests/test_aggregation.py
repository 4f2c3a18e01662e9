"""Aggregation (Sec. 4.3): democratic pooling against qdemocratic.m/sinkhornm.m (golden d, c, e)
and its defining property; sum / average / max pooling."""

import numpy as np
import pytest
import scipy.io as sio

from selconv_lite.method.aggregation import (aggregate, average_pooling, democratic_pooling,
                                      democratic_weights, max_pooling, sum_pooling)
from selconv_lite.method.postprocess import l2_normalize
from _golden import GOLDEN, _one_blas_thread, rel  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def d():
    return sio.loadmat(GOLDEN / "d_democratic.mat")


def test_democratic_equals_qdemocratic(d):
    X = d["x"].T  # 25 local features of dim 16 (rows)
    G = X @ X.T
    assert rel(G, d["G"]) <= 1e-12
    assert rel(np.maximum(G, 0), d["Gclip"]) <= 1e-12
    assert (d["G"] < 0).sum() == 230  # the clipping is exercised
    y, lam = democratic_pooling(X, n_iter=int(d["nbiter"][0, 0]), reg=float(d["reg"][0, 0]))
    assert rel(y, d["y_f64"].ravel()) <= 1e-9
    assert rel(lam, d["alpha_f64"].ravel()) <= 1e-9
    assert rel(lam, d["lambda_f64"].ravel()) <= 1e-9
    # the authors' single-precision lambda
    assert rel(y, d["y"].ravel()) <= 1e-5
    assert rel(lam, d["alpha"].ravel()) <= 1e-5
    # the balanced kernel diag(lam) G+ diag(lam)
    assert rel(lam[:, None] * np.maximum(G, 0) * lam[None, :], d["kn_f64"]) <= 1e-9


def test_democratic_on_temb_and_faemb_cases():
    c = sio.loadmat(GOLDEN / "c_triemb.mat")
    y, lam = democratic_pooling(c["Xe_map_n_f64"].T)
    assert rel(y, c["y_sink_f64"].ravel()) <= 1e-9
    assert rel(lam, c["alpha_sink_f64"].ravel()) <= 1e-9
    assert rel(y, c["y_tembsink_f64"].ravel()) <= 1e-9
    y32, lam32 = democratic_pooling(c["Xe_map_n"].T.astype(np.float64))
    assert rel(y32, c["y_sink"].ravel()) <= 1e-5
    assert rel(lam32, c["alpha_sink"].ravel()) <= 1e-5
    e = sio.loadmat(GOLDEN / "e_faemb.mat")
    y, lam = democratic_pooling(e["Z_f64"].T)
    assert rel(y, e["y_step_f64"].ravel()) <= 1e-9
    assert rel(y, e["y_faemb_f64"].ravel()) <= 1e-9
    assert rel(lam, e["alpha_f64"].ravel()) <= 1e-9


def test_democratic_weights_equalise_contributions():
    """psi_d: every local feature contributes (almost) equally to the similarity y.y, where
    sum pooling lets a burst dominate."""
    rng = np.random.default_rng(0)
    base = l2_normalize(rng.standard_normal((30, 64)) + 0.3)
    X = np.vstack([base, np.repeat(base[:1], 20, axis=0)])  # a burst of 21 copies of feature 0
    G = np.maximum(X @ X.T, 0)

    def contributions(w):
        return w * (G @ w)  # phi_i . y restricted to the clipped kernel, times lambda_i

    c_sum = contributions(np.ones(len(X)))
    lam = democratic_weights(X)
    c_dem = contributions(lam)
    spread = lambda v: (v.max() - v.min()) / v.mean()
    assert spread(c_dem) < 1e-3
    assert spread(c_sum) > 0.5
    # the burst's share of the similarity is its share of the features (21/50), where sum
    # pooling lets it dominate
    burst = [0] + list(range(30, 50))
    share = lambda v: v[burst].sum() / v.sum()
    assert share(c_dem) == pytest.approx(21 / 50, abs=1e-3)
    assert share(c_sum) > 0.7


def test_democratic_degenerate_inputs():
    y, lam = democratic_pooling(np.array([[0.6, 0.8]]))  # a single feature
    np.testing.assert_allclose(lam, [1.0])
    np.testing.assert_allclose(y, [0.6, 0.8])
    X = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])  # a zero embedded vector
    y, lam = democratic_pooling(X)
    assert np.isfinite(y).all() and np.isfinite(lam).all()
    assert lam[1] == 0
    with pytest.raises(ValueError, match="empty"):
        democratic_pooling(np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"\(n, D\)"):
        democratic_pooling(np.zeros(4))


def test_sum_average_max():
    X = np.array([[1.0, -2.0, 3.0], [3.0, 4.0, -1.0]])
    np.testing.assert_array_equal(sum_pooling(X), [4, 2, 2])
    np.testing.assert_array_equal(average_pooling(X), [2, 1, 1])
    np.testing.assert_array_equal(max_pooling(X), [3, 4, 3])
    np.testing.assert_array_equal(aggregate(X, "sum"), sum_pooling(X))
    np.testing.assert_array_equal(aggregate(X, "average"), average_pooling(X))
    np.testing.assert_array_equal(aggregate(X, "max"), max_pooling(X))
    np.testing.assert_array_equal(aggregate(X, "democratic"), democratic_pooling(X)[0])
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(X, "median")
    with pytest.raises(ValueError, match="empty"):
        sum_pooling(np.zeros((0, 3)))
