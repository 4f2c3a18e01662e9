"""PCA+L2 (Sec. 4.1) and the embeddings of Sec. 4.2 against the authors' code (golden b, c, e, f).

Tolerances: float64 paths (``*_f64``) <= 1e-9 relative, the authors' mixed-precision outputs
<= 1e-5 relative. Eigenvectors are compared up to sign; where an output depends on the sign,
the stored projection is fed with ``from_params`` (golden README).
"""
import tracemalloc

import numpy as np
import pytest
import scipy.io as sio
from sklearn.exceptions import NotFittedError

from selconv_lite.method.embeddings import (PCAL2, VLAD, FFAEmbedding, FisherVector,
                                     TriangulationEmbedding, ffa_coefficients, make_embedding,
                                     triangulation_residuals)
from selconv_lite.method.postprocess import l2_normalize
from selconv_lite.core.utils import align_signs
from _golden import GOLDEN, _one_blas_thread, rel  # noqa: F401 (autouse fixture)


F64 = 1e-9
AUTH = 1e-5


def load(name):
    return sio.loadmat(GOLDEN / f"{name}.mat")


@pytest.fixture(scope="module")
def b():
    return load("b_pca_preproc")


@pytest.fixture(scope="module")
def c():
    return load("c_triemb")


@pytest.fixture(scope="module")
def e():
    return load("e_faemb")


@pytest.fixture(scope="module")
def f():
    return load("f_vlad_fv")


# ------------------------------------------------------------------------------------- PCA
def test_pca_fit_equals_main_m(b):
    p = PCAL2(d=int(b["d"][0, 0])).fit(b["vtrain_raw"].T)
    assert rel(p.mean_, b["desc_mean"].ravel()) <= F64
    assert rel(p.covariance_, b["Xcov"]) <= F64
    assert rel(p.explained_variance_, np.diag(b["S"])[:16]) <= F64
    assert rel(align_signs(p.components_.T, b["Ud"]), b["Ud"]) <= F64
    v = p.transform(b["vtrain_raw"].T)
    assert rel(align_signs(v, b["vtrain"].T), b["vtrain"].T) <= F64
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-12)


def test_pca_transform_with_stored_projection(b):
    p = PCAL2.from_params(b["desc_mean"], b["Ud"].T)
    assert rel(p.transform(b["x_raw"].T), b["xe"].T) <= F64


def test_pca_sign_convention_is_deterministic(b):
    comp = PCAL2(d=16).fit(b["vtrain_raw"].T).components_
    big = comp[np.arange(16), np.abs(comp).argmax(axis=1)]
    assert (big > 0).all()


def test_pca_float32_input_and_sample():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 12)) @ rng.standard_normal((12, 12))
    p64 = PCAL2(d=4).fit(X)
    p32 = PCAL2(d=4).fit(X.astype(np.float32))
    assert rel(align_signs(p32.components_.T, p64.components_.T), p64.components_.T) < 1e-5
    ps = PCAL2(d=4, max_samples=500, random_state=3).fit(X)
    ps2 = PCAL2(d=4, max_samples=500, random_state=3).fit(X)
    np.testing.assert_array_equal(ps.components_, ps2.components_)  # seeded
    assert not np.allclose(ps.mean_, p64.mean_, atol=1e-12)  # it is a sample


def test_pca_on_a_million_local_features_stays_small():
    """Fitting never materialises more than a chunk in float64 (plus the K x K covariance)."""
    rng = np.random.default_rng(0)
    X = rng.random((1_000_000, 32), dtype=np.float32)
    tracemalloc.start()
    PCAL2(d=8).fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2 ** 20, peak  # input is 128 MB; a float64 copy would be 256 MB


def test_pca_bad_inputs():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least d=8"):
        PCAL2(d=8).fit(rng.random((5, 16)))
    with pytest.raises(ValueError, match="between 1 and the feature dimension"):
        PCAL2(d=20).fit(rng.random((50, 16)))
    X = rng.random((50, 16))
    X[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PCAL2(d=4).fit(X)
    with pytest.raises(NotFittedError, match="not fitted"):
        PCAL2(d=4).transform(X)
    # a local feature equal to the mean maps to a zero vector, not NaN
    p = PCAL2(d=4).fit(rng.random((50, 16)))
    assert np.all(p.transform(p.mean_[None, :]) == 0)


# ------------------------------------------------------------------------------------- T-emb
def test_temb_learn_equals_triemb_learn_f64(c):
    t = TriangulationEmbedding(centroids=c["C"].T).fit(c["vtrain"].T)
    assert t.embed_dim_ == int(c["D"][0, 0]) == 64
    assert rel(t.mean_, c["Xmean_f64"].ravel()) <= F64
    assert rel(t.eigval_raw_, c["eigval_raw_f64"].ravel()) <= F64
    assert rel(t.eigval_, c["eigval_f64"].ravel()) <= F64
    assert rel(align_signs(t.eigvec_, c["eigvec_f64"]), c["eigvec_f64"]) <= F64
    assert rel(align_signs(t.projection_, c["Pemb_f64"], axis=1), c["Pemb_f64"]) <= F64
    # the authors' single-precision learning
    assert rel(t.mean_, c["Xmean"].ravel()) <= AUTH
    assert rel(t.eigval_, c["eigval"].ravel()) <= AUTH


def test_temb_clamp_is_main_m(c):
    t = TriangulationEmbedding(centroids=c["C"].T).fit(c["vtrain"].T)
    j = int(c["clamp_from"][0, 0]) - 1  # 1-based 32 -> eigval(32:64) = eigval(32)
    assert j == 64 - 33
    assert np.all(t.eigval_[j:] == t.eigval_raw_[j])
    np.testing.assert_array_equal(t.eigval_[:j], t.eigval_raw_[:j])


def test_temb_residuals_and_map(c):
    tf = TriangulationEmbedding.from_params(c["C"].T, c["Xmean_f64"], c["Pemb_f64"])
    xe = c["xe"].T
    assert rel(tf.residuals(xe), c["Y_res"].T) <= F64
    assert rel(tf.residuals(xe), c["Y_res_mex"].T) <= AUTH
    Xe = tf.transform(xe)
    assert rel(Xe, c["Xe_map_f64"].T) <= F64
    assert rel(l2_normalize(Xe), c["Xe_map_n_f64"].T) <= F64
    assert rel(Xe.sum(axis=0), c["y_temb_f64"].ravel()) <= F64  # the 'temb' (sum) path
    # alpha_mex = 1 / ||x - c_j||
    R = xe[:, None, :] - c["C"].T[None]
    assert rel(1 / np.linalg.norm(R, axis=2), c["alpha_mex"].T) <= AUTH


def test_temb_with_authors_params(c):
    ta = TriangulationEmbedding.from_params(c["C"].T, c["Xmean"], c["Pemb"])
    Xa = ta.transform(c["xe"].T)
    assert rel(Xa, c["Xe_map"].T) <= AUTH
    assert rel(l2_normalize(Xa), c["Xe_map_n"].T) <= AUTH
    assert rel(Xa.sum(axis=0), c["y_temb_f64_authparams"].ravel()) <= F64
    assert rel(Xa.sum(axis=0), c["y_temb"].ravel()) <= AUTH


def test_temb_from_pca_input(c):
    """x_raw -> PCA+L2 with the stored projection -> xe, as the first line of embedding.m."""
    p = PCAL2.from_params(c["desc_mean"], c["Ud"].T)
    assert rel(p.transform(c["x_raw"].T), c["xe"].T) <= F64


def test_triangulation_residual_blocks_are_unit_and_zero_safe():
    rng = np.random.default_rng(0)
    C = rng.standard_normal((5, 4))
    X = np.vstack([rng.standard_normal((10, 4)), C[2:3]])  # last row equals centroid 2
    R = triangulation_residuals(X, C).reshape(11, 5, 4)
    norms = np.linalg.norm(R, axis=2)
    np.testing.assert_allclose(norms[:10], 1, atol=1e-12)
    assert norms[10, 2] == 0 and np.isfinite(R).all()


def test_temb_kmeans_codebook_is_seeded_and_bad_inputs():
    rng = np.random.default_rng(0)
    X = l2_normalize(rng.standard_normal((400, 6)))
    t1 = TriangulationEmbedding(n_centroids=5, eig_clamp=4, random_state=1).fit(X)
    t2 = TriangulationEmbedding(n_centroids=5, eig_clamp=4, random_state=1).fit(X)
    np.testing.assert_array_equal(t1.centroids_, t2.centroids_)
    assert t1.transform(X[:7]).shape == (7, 30)
    with pytest.raises(ValueError, match="at least 5 training local features"):
        TriangulationEmbedding(n_centroids=5).fit(X[:3])
    with pytest.raises(ValueError, match="too few"):  # rank-deficient covariance
        TriangulationEmbedding(centroids=t1.centroids_, eig_clamp=0).fit(X[:4])
    with pytest.raises(ValueError, match="7 features.*expecting 6 features"):
        t1.transform(rng.standard_normal((3, 7)))


# ------------------------------------------------------------------------------------- F-FAemb
def test_ffa_coefficients_closed_form(e):
    B = e["B"].T
    mu = float(e["mu"][0, 0])
    g = ffa_coefficients(e["vtrain"].T, B, mu)
    assert rel(g, e["gama_train"].T) <= F64
    assert rel(ffa_coefficients(e["xe"].T, B, mu), e["gama_test"].T) <= F64
    np.testing.assert_allclose(g.sum(axis=1), 1, atol=1e-12)  # sum(gamma) = 1


def test_ffaemb_learn_equals_projection_learn_batch_f64(e):
    fa = FFAEmbedding(anchors=e["B"].T, mu=float(e["mu"][0, 0])).fit(e["vtrain"].T)
    assert fa.embed_dim_ == int(e["D"][0, 0]) == 144
    assert rel(fa.mean_, e["Xmean_f64"].ravel()) <= F64
    assert rel(fa.eigval_raw_, e["eigval_raw_f64"].ravel()) <= F64
    assert rel(fa.eigval_, e["eigval_f64"].ravel()) <= F64
    assert rel(align_signs(fa.eigvec_, e["eigvec_f64"]), e["eigvec_f64"]) <= F64
    assert rel(fa.mean_, e["Xmean"].ravel()) <= AUTH
    j = int(e["clamp_from"][0, 0]) - 1  # eigval(end-128:end) = eigval(end-128)
    assert j == 144 - 129 and np.all(fa.eigval_[j:] == fa.eigval_raw_[j])


def test_ffaemb_embedding_and_whitening(e):
    B = e["B"].T
    ff = FFAEmbedding.from_params(B, e["Xmean_f64"], e["Pemb_f64"], mu=float(e["mu"][0, 0]))
    xe = e["xe"].T
    assert rel(ff.raw_embedding(xe), e["phi_f64"].T) <= F64
    assert rel(ff.raw_embedding(xe), e["phi_mex"].T) <= AUTH
    assert rel(l2_normalize(ff.transform(xe)), e["Z_f64"].T) <= F64
    # upper-triangle layout: block j of x is gamma_j * triu(r r') row by row
    r = xe[0] - B[1]
    r /= np.linalg.norm(r)
    T = 8 * 9 // 2
    blk = ff.raw_embedding(xe[:1])[0, T:2 * T]
    iu = np.triu_indices(8)
    np.testing.assert_allclose(blk, ff.coefficients(xe[:1])[0, 1] * np.outer(r, r)[iu], atol=1e-14)


def test_ffaemb_bad_inputs():
    rng = np.random.default_rng(0)
    X = l2_normalize(rng.standard_normal((50, 3)))
    with pytest.raises(ValueError, match="at least 6 training local features"):
        FFAEmbedding(n_centroids=6).fit(X[:4])
    fa = FFAEmbedding(n_centroids=3, eig_clamp=2, kmeans_n_init=1).fit(X)
    assert fa.transform(X[:2]).shape == (2, 18) and np.isfinite(fa.transform(X)).all()


# ------------------------------------------------------------------------------------- VLAD / FV
def test_vlad_equals_vl_vlad(f):
    v = VLAD.from_params(f["C"].T)
    xe = f["xe"].T
    np.testing.assert_array_equal(v.assign(xe) + 1, f["nn"].ravel())
    E = v.transform(xe)
    assert E.shape == (40, 40)
    assert rel(E.sum(axis=0), f["y_vlad_ref"].ravel()) <= F64
    assert rel(E.sum(axis=0), f["y_vlad"].ravel()) <= AUTH
    assert np.count_nonzero(E.reshape(40, 5, 8).any(axis=2), axis=1).max() == 1  # one block each


def test_pca_of_vlad_case(f):
    p = PCAL2.from_params(f["desc_mean"], f["Ud"].T)
    assert rel(p.transform(f["x_raw"].T), f["xe"].T) <= F64


def test_fisher_vector_equals_vl_fisher(f):
    F = FisherVector.from_params(f["means"].T, f["covariances"].T, f["priors"].ravel())
    E = F.transform(f["xe"].T)
    assert E.shape == (40, 80)
    assert rel(E.mean(axis=0), f["y_fv"].ravel()) <= F64  # average pooling = vl_fisher
    assert rel(E.mean(axis=0), f["y_fv_single"].ravel()) <= AUTH
    P = F.posteriors(f["xe"].T)
    np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-12)


def test_fisher_vector_gmm_is_seeded_and_bad_inputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    a = FisherVector(n_centroids=3, random_state=2).fit(X)
    b = FisherVector(n_centroids=3, random_state=2).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.transform(X[:5]).shape == (5, 24)
    with pytest.raises(ValueError, match="at least 3"):
        FisherVector(n_centroids=3).fit(X[:2])
    with pytest.raises(ValueError, match="all of means"):
        FisherVector(means=np.zeros((2, 4))).fit(X)


def test_make_embedding_names():
    assert isinstance(make_embedding("temb", 8, 4), TriangulationEmbedding)
    assert isinstance(make_embedding("ffaemb", 8, 4), FFAEmbedding)
    assert isinstance(make_embedding("vlad", 8, 4), VLAD)
    assert isinstance(make_embedding("fv", 8, 4), FisherVector)
    with pytest.raises(ValueError, match="unknown embedding"):
        make_embedding("bow", 8, 4)
