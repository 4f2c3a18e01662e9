"""Baselines of Table 6 (SPoC, MAC, R-MAC, CroW, GeM) on feature maps: poolings, region
sampling, held-out whitening, bad inputs."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from selconv_lite.method.baselines import (BASELINES, MAC, RMAC, PCAWhitening, SPoC, crow_pool, gem_pool,
                                    mac_pool, rmac_region_vectors, rmac_regions, spoc_pool)
from selconv_lite.core.types import ImageFeatures
from selconv_lite.core.utils import l2_normalize_rows


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _maps(n, H=12, W=16, K=32, seed=0):
    rng = np.random.default_rng(seed)
    return [ImageFeatures(np.maximum(rng.standard_normal((H, W, K)), 0).astype(np.float32),
                          (H * 16, W * 16), name=f"m{i}") for i in range(n)]


def test_rmac_regions_pool5_of_1024x768():
    r = rmac_regions(24, 32, L=3)
    # L = 3 on a 4:3 grid: 2 + 6 + 12 regions of sides 24, 16, 12
    assert len(r) == 20
    np.testing.assert_array_equal(np.unique(r[:, 2]), [12, 16, 24])
    assert [np.sum(r[:, 2] == s) for s in (24, 16, 12)] == [2, 6, 12]
    assert (r[:, 2] == r[:, 3]).all()  # square
    assert (r[:, 0] >= 0).all() and (r[:, 1] >= 0).all()
    assert (r[:, 0] + r[:, 2] <= 24).all() and (r[:, 1] + r[:, 3] <= 32).all()
    # the first scale covers the whole width with the two extreme positions
    big = r[r[:, 2] == 24]
    np.testing.assert_array_equal(np.sort(big[:, 1]), [0, 8])
    # a portrait grid gives the transposed regions
    rt = rmac_regions(32, 24, L=3)
    np.testing.assert_array_equal(np.sort(rt[:, [1, 0, 3, 2]], axis=0), np.sort(r, axis=0))


@pytest.mark.parametrize("H,W", [(7, 9), (10, 10), (3, 20), (1, 1), (5, 40)])
def test_rmac_regions_inside_any_grid(H, W):
    r = rmac_regions(H, W)
    assert len(r) >= 1
    assert (r[:, 0] + r[:, 2] <= H).all() and (r[:, 1] + r[:, 3] <= W).all()
    assert (r[:, 2] >= 1).all()


def test_poolings():
    rng = np.random.default_rng(0)
    F = np.maximum(rng.standard_normal((6, 8, 5)), 0) + 1e-3
    np.testing.assert_allclose(mac_pool(F), F.max(axis=(0, 1)))
    np.testing.assert_allclose(gem_pool(F, p=1), F.mean(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(gem_pool(F, p=3), np.mean(F ** 3, axis=(0, 1)) ** (1 / 3))
    assert np.all(gem_pool(F, p=50) <= mac_pool(F) + 1e-12)
    assert np.allclose(gem_pool(F, p=200), mac_pool(F), rtol=0.05)
    # SPoC on a constant map: every channel gets the same weighted sum; the prior peaks centrally
    s = spoc_pool(np.ones((6, 8, 3)))
    assert np.allclose(s, s[0]) and 0 < s[0] < 48
    Fc = np.zeros((6, 8, 1))
    Fc[3, 4] = 1
    Fe = np.zeros((6, 8, 1))
    Fe[0, 0] = 1
    assert spoc_pool(Fc)[0] > spoc_pool(Fe)[0]
    # R-MAC region vectors are the maxima over their windows
    V = rmac_region_vectors(F)
    reg = rmac_regions(6, 8)
    y, x, h, w = reg[-1]
    np.testing.assert_allclose(V[-1], F[y:y + h, x:x + w].max(axis=(0, 1)))


def test_crow_weights():
    F = np.zeros((4, 4, 3))
    F[:, :, 0] = 1.0  # dense channel -> small idf-like weight
    F[1, 1, 1] = 1.0  # sparse channel -> large weight
    v = crow_pool(F)  # channel 2 is all zero -> weight 0
    assert v[2] == 0 and v[1] > 0 and v[0] > 0
    Q = np.array([1.0, 1 / 16])
    omega = np.log(Q.sum() / Q)
    s = F.sum(axis=2)
    S = np.sqrt(s / np.sqrt((s ** 2).sum()))
    np.testing.assert_allclose(v[:2], [omega[0] * S.sum(), omega[1] * S[1, 1]])
    assert np.all(crow_pool(np.zeros((3, 3, 4))) == 0)


def test_whitening_whitens_the_held_out_set():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6))
    w = PCAWhitening(shrinkage=0).fit(X)  # plain PCA-whitening (cirtorch's pcawhitenlearn)
    Y = w.transform(X)
    np.testing.assert_allclose(np.cov(Y.T, bias=True), np.eye(6), atol=1e-10)
    assert w.shrinkage_ == 0.0 and PCAWhitening(shrinkage=None).fit(X).shrinkage_ == 0.0
    # an explicit dimension above what 5 vectors span is capped at n - 1 = 4, with a warning
    with pytest.warns(UserWarning, match="span only 4"):
        w = PCAWhitening(n_components=6).fit(X[:5])
    assert w.components_.shape == (4, 6)
    assert PCAWhitening().fit(X[:5]).components_.shape == (4, 6)  # None: capped silently
    with pytest.raises(ValueError, match="at least 2"):
        PCAWhitening().fit(X[:1])
    for bad in (-0.1, 1.5, "ledoit"):
        with pytest.raises(ValueError, match="shrinkage"):
            PCAWhitening(shrinkage=bad).fit(X)


def test_whitening_small_held_out_set_is_regularised():
    """n << K: at most n - 1 components, Ledoit-Wolf shrinkage bounds the weights of the
    (under-estimated) small eigenvalues; with many vectors it vanishes (plain whitening)."""
    rng = np.random.default_rng(0)
    K, n = 128, 20
    A = rng.standard_normal((K, K)) * np.geomspace(1, 0.01, K)[None, :]  # decaying spectrum
    X = rng.standard_normal((n, K)) @ A.T
    plain = PCAWhitening(shrinkage=0).fit(X)
    auto = PCAWhitening().fit(X)
    assert plain.components_.shape == auto.components_.shape == (n - 1, K)
    assert 0 < auto.shrinkage_ <= 1
    # same directions, eigenvalues pulled towards their mean: a better conditioned whitening
    scale_p = np.linalg.norm(plain.components_, axis=1)
    scale_a = np.linalg.norm(auto.components_, axis=1)
    assert scale_a.max() / scale_a.min() < scale_p.max() / scale_p.min()
    mu = np.trace(np.cov(X.T, bias=True)) / K
    np.testing.assert_allclose(scale_a ** -2, (1 - auto.shrinkage_) * auto.eigval_
                               + auto.shrinkage_ * mu, rtol=1e-8)
    cos = np.abs(np.sum(l2_normalize_rows(plain.components_) * l2_normalize_rows(auto.components_),
                        axis=1))
    np.testing.assert_allclose(cos, 1, atol=1e-8)
    # a fixed coefficient; and a large held-out set needs (almost) no shrinkage
    assert PCAWhitening(shrinkage=0.5).fit(X).shrinkage_ == 0.5
    big = rng.standard_normal((20000, 8)) @ rng.standard_normal((8, 8))
    assert PCAWhitening().fit(big).shrinkage_ < 0.01
    # the baselines pass it on
    held_out = _maps(8, seed=4)
    m = MAC().fit(held_out)
    assert m.whitening_.components_.shape[0] == 7 and m.whitening_.shrinkage_ > 0
    assert MAC(shrinkage=0).fit(held_out).whitening_.shrinkage_ == 0


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_fit_transform(name):
    held_out, test = _maps(60, seed=1), _maps(4, seed=2)
    kw = {"n_components": 16} if name == "spoc" else {}
    est = BASELINES[name](**kw).fit(held_out)
    X = est.transform(test)
    assert X.shape == (4, 16 if name == "spoc" else 32) and X.dtype == np.float32
    assert np.isfinite(X).all()
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    # raw maps are accepted too
    np.testing.assert_allclose(est.transform([m.fmap for m in test]), X)


def test_rmac_whitening_is_learned_on_regions():
    held_out = _maps(10, seed=3)
    r = RMAC().fit(held_out)
    # the whitening sees every region of the 10 held-out maps, not one vector per map
    n_reg = len(rmac_regions(12, 16))
    assert r.whitening_.components_.shape[0] == min(32, 10 * n_reg - 1)


def test_baselines_bad_inputs():
    est = MAC().fit(_maps(40))
    F = _maps(1)[0].fmap.copy()
    F[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="'bad'.*NaN|NaN.*'bad'"):
        est.transform([ImageFeatures(F, (16, 16), name="bad")])
    with pytest.raises(RuntimeError, match="not fitted"):
        SPoC().transform(_maps(1))
    with pytest.raises(ValueError, match="p must be positive"):
        gem_pool(np.ones((2, 2, 2)), p=0)
    v = est.transform([ImageFeatures(np.zeros((12, 16, 32), np.float32), (1, 1), name="zero")])
    assert np.isfinite(v).all()
