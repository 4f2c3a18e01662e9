"""Post-processing (Sec. 4.4) against learn_rn.m / yael_pca.m / vecpostproc.m / main.m (golden g)."""

import numpy as np
import pytest
import scipy.io as sio
from sklearn.exceptions import NotFittedError

from selconv_lite.method.postprocess import RotationNormalization, l2_normalize, power_law, truncate
from selconv_lite.core.utils import align_signs
from _golden import GOLDEN, _one_blas_thread, rel  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def g():
    return sio.loadmat(GOLDEN / "g_learn_rn_postproc.mat")


def test_learn_rn_covariance_path(g):
    rn = RotationNormalization().fit(g["vecs_train"].T)  # n = 100 > D = 40
    assert rel(rn.mean_, g["Xm"].ravel()) <= 1e-12
    assert rel(rn.mean_, g["pca_Xm"].ravel()) <= 1e-12
    assert rel(rn.eigval_, g["pca_eigval"].ravel()) <= 1e-9
    assert rel(align_signs(rn.eigvec_, g["pca_eigvec"]), g["pca_eigvec"]) <= 1e-9
    assert rel(align_signs(rn.rotation_, g["P"]), g["P"]) <= 1e-9


def test_learn_rn_qr_completion_with_stored_eigvec(g):
    rn = RotationNormalization.from_params(g["Xm"], eigvec=g["pca_eigvec"])
    assert rel(rn.rotation_, g["P"]) <= 1e-12  # same Householder QR as Octave's qr


def test_learn_rn_gram_path(g):
    X = g["vecs_train_gram"].T  # n = 25 <= D = 40
    rn = RotationNormalization().fit(X)
    assert rel(rn.mean_, g["Xm_gram"].ravel()) <= 1e-12
    # the centred Gram has rank 24: the 25th eigenvector is noise and is dropped here
    assert rn.eigvec_.shape == (40, 24)
    assert rel(rn.eigval_ * 25, g["pca_eigval_gram"].ravel()[:24]) <= 1e-9  # yael: Gram scale
    ref = g["pca_eigvec_gram"][:, :24]  # single precision in the authors' code
    assert rel(align_signs(rn.eigvec_, ref), ref) <= 1e-5
    assert rel(align_signs(rn.rotation_[:, :24], g["P_gram"][:, :24]), g["P_gram"][:, :24]) <= 1e-5


@pytest.mark.parametrize("n,D,m", [(100, 40, 1024), (25, 40, 1024), (60, 50, 10), (8, 30, 1024)])
def test_rotation_is_orthogonal(n, D, m):
    rng = np.random.default_rng(n + D)
    X = l2_normalize(rng.standard_normal((n, D)) + 0.2)
    rn = RotationNormalization(n_components=m).fit(X)
    P = rn.rotation_
    np.testing.assert_allclose(P.T @ P, np.eye(D), atol=1e-10)
    np.testing.assert_allclose(P @ P.T, np.eye(D), atol=1e-10)
    k = rn.eigvec_.shape[1]
    assert k == min(m, D, n - 1) if n <= D else k == min(m, D)
    np.testing.assert_allclose(np.abs(np.sum(P[:, :k] * rn.eigvec_, axis=0)), 1, atol=1e-10)
    # a rotation preserves the distances between vectors
    Y = rn.transform(X)
    np.testing.assert_allclose(np.linalg.norm(Y[0] - Y[1]), np.linalg.norm(X[0] - X[1]), rtol=1e-10)


def test_vecpostproc(g):
    out = l2_normalize(g["vp_in"].T)
    assert rel(out, g["vp_out"].T) <= 1e-12
    assert np.all(out[3] == 0)  # the zero column stays zero (no NaN)
    assert rel(l2_normalize(power_law(g["vp_in"].T, 0.5)), g["vp_out_a05"].T) <= 1e-12


def test_per_image_postprocessing_of_main_m(g):
    rn = RotationNormalization.from_params(g["Xm"], rotation=g["P"])
    t = int(g["truncate"][0, 0])
    vb = rn.transform(g["vecs_base_in"].T)
    qv = rn.transform(g["qvecs_in"].T)
    assert rel(vb, g["vecs_base_full"].T) <= 1e-12
    assert rel(qv, g["qvecs_full"].T) <= 1e-12
    vb, qv = truncate(vb, t), truncate(qv, t)
    assert rel(vb, g["vecs_base"].T) <= 1e-12
    assert rel(qv, g["qvecs"].T) <= 1e-12
    for i, pw in enumerate(g["pws"].ravel()):
        assert rel(l2_normalize(power_law(vb, pw)), g["x_pw"][:, :, i].T) <= 1e-12
        assert rel(l2_normalize(power_law(qv, pw)), g["q_pw"][:, :, i].T) <= 1e-12


def test_power_law_and_l2_edge_cases():
    x = np.array([-4.0, 0.0, 9.0])
    np.testing.assert_array_equal(power_law(x, 0.5), [-2, 0, 3])
    np.testing.assert_array_equal(power_law(x, 0), [-1, 0, 1])  # sign, 0 -> 0
    np.testing.assert_array_equal(power_law(x, 1), x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        power_law(x, 1.5)
    np.testing.assert_array_equal(l2_normalize(np.zeros(5)), np.zeros(5))
    np.testing.assert_allclose(l2_normalize(np.array([3.0, 4.0])), [0.6, 0.8])
    with pytest.raises(ValueError, match="truncate"):
        truncate(np.ones((2, 4)), 4)
    np.testing.assert_array_equal(truncate(np.arange(6.0), 2), [2, 3, 4, 5])


def test_rotation_bad_inputs():
    with pytest.raises(ValueError, match="1 sample.*minimum of 2"):
        RotationNormalization().fit(np.ones((1, 5)))
    with pytest.raises(ValueError, match="NaN"):
        RotationNormalization().fit(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(NotFittedError, match="not fitted"):
        RotationNormalization().transform(np.ones((1, 5)))
