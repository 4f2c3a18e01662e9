"""Baselines of Table 6 (SPoC, MAC, R-MAC, CroW, GeM) on feature maps: poolings, region
sampling, held-out whitening and its policy on small held-out sets, bad inputs."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import warnings

from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from selconv_lite.method.baselines import (BASELINES, MAC, RMAC, PCAWhitening, SPoC, WhiteningFallbackWarning,
                                           crow_pool, gem_pool, mac_pool, rmac_region_vectors, rmac_regions,
                                           spoc_pool)
from selconv_lite.core.types import ImageFeatures
from selconv_lite.core.utils import l2_normalize


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
    cos = np.abs(np.sum(l2_normalize(plain.components_) * l2_normalize(auto.components_),
                        axis=1))
    np.testing.assert_allclose(cos, 1, atol=1e-8)
    # a fixed coefficient; and a large held-out set needs (almost) no shrinkage
    assert PCAWhitening(shrinkage=0.5).fit(X).shrinkage_ == 0.5
    big = rng.standard_normal((20000, 8)) @ rng.standard_normal((8, 8))
    assert PCAWhitening().fit(big).shrinkage_ < 0.01
    # the baselines pass it on (8 held-out images support a whitening to at most 7 dimensions)
    held_out = _maps(8, seed=4)
    m = MAC(n_components=7).fit(held_out)
    assert m.whitening_.components_.shape[0] == 7 and m.whitening_.shrinkage_ > 0
    assert MAC(n_components=7, shrinkage=0).fit(held_out).whitening_.shrinkage_ == 0


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_fit_transform(name):
    held_out, test = _maps(60, seed=1), _maps(4, seed=2)
    kw = {"n_components": 16} if name == "spoc" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 60 held-out images support the whitening: no warning
        est = BASELINES[name](**kw).fit(held_out)
    X = est.transform(test)
    assert X.shape == (4, 16 if name == "spoc" else 32) and X.dtype == np.float32
    assert est.whitened_ and est.output_dim_ == X.shape[1] and est.input_dim_ == 32
    assert est.n_train_images_ == 60
    assert est.n_train_vectors_ == (60 * len(rmac_regions(12, 16)) if name == "rmac" else 60)
    assert np.isfinite(X).all()
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    # raw maps are accepted too
    np.testing.assert_allclose(est.transform([m.fmap for m in test]), X)
    # whiten=True gives the same; whiten=False the K-D L2-normalised pooled vectors
    np.testing.assert_array_equal(BASELINES[name](whiten=True, **kw).fit(held_out).transform(test), X)
    plain = BASELINES[name](whiten=False, **kw).fit(held_out)
    assert not plain.whitened_ and plain.whitening_ is None and plain.output_dim_ == 32
    Y = plain.transform(test)
    assert Y.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), 1, atol=1e-5)
    # sklearn conventions: the policy is a parameter, cloning keeps it
    assert clone(plain).get_params()["whiten"] is False and not hasattr(clone(plain), "whitened_")


def test_whitened_path_is_pool_l2_pca_whitening_l2():
    """The whitened baselines are exactly: pool -> L2 -> PCAWhitening (held-out) -> L2
    (R-MAC: per region, then sum -> L2)."""
    held_out, test = _maps(50, seed=5), _maps(3, seed=6)
    rows = l2_normalize(np.stack([mac_pool(m.fmap) for m in held_out]).astype(np.float64))
    w = PCAWhitening(n_components=32).fit(rows)
    ref = l2_normalize(w.transform(l2_normalize(np.stack([mac_pool(m.fmap) for m in test]))))
    np.testing.assert_allclose(MAC().fit(held_out).transform(test), ref, atol=1e-6)
    regs = [l2_normalize(rmac_region_vectors(m.fmap).astype(np.float64)) for m in held_out[:5]]
    w = PCAWhitening(n_components=32).fit(np.concatenate(regs))
    ref = l2_normalize(np.stack([
        l2_normalize(w.transform(l2_normalize(rmac_region_vectors(m.fmap).astype(np.float64)))).sum(0)
        for m in test]))
    np.testing.assert_allclose(RMAC().fit(held_out[:5]).transform(test), ref, atol=1e-6)


def _l2_pooled(name, maps):
    """The documented unwhitened vectors: L2 of the pooled vector (R-MAC: L2 of the sum of the
    L2-normalised regional vectors)."""
    pool = {"spoc": spoc_pool, "mac": mac_pool, "gem": gem_pool, "crow": crow_pool,
            "rmac": rmac_region_vectors}[name]
    return l2_normalize(np.stack([
        l2_normalize(np.atleast_2d(pool(m.fmap)).astype(np.float64)).sum(0) for m in maps]))


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_small_held_out_set_follows_the_policy(name):
    """Fewer training vectors than dimensions: "auto" warns (with the numbers) and keeps the
    K-D L2-normalised pooled vectors, True refuses, False gives the same vectors silently."""
    # 5 images (R-MAC: 1 image = 20 regional vectors) for 32 channels
    held_out, test = (_maps(1, seed=7) if name == "rmac" else _maps(5, seed=7)), _maps(3, seed=8)
    n_vec = 20 if name == "rmac" else 5
    want = 16 if name == "spoc" else 32  # SPoC's default n_components is the paper's 256 > K
    kw = {"n_components": 16} if name == "spoc" else {}
    cls = BASELINES[name]
    with pytest.warns(WhiteningFallbackWarning) as rec:
        est = cls(**kw).fit(held_out)
    msg = str(rec[0].message)
    assert f"a {want}-D whitening needs more than {want} training vectors" in msg
    assert f"give {n_vec} " in msg and f"at most {n_vec - 1} dimensions" in msg and "(32-D)" in msg
    assert not est.whitened_ and est.whitening_ is None and est.output_dim_ == 32
    assert est.n_train_vectors_ == n_vec
    X = est.transform(test)
    assert X.shape == (3, 32)
    np.testing.assert_allclose(X, _l2_pooled(name, test), atol=1e-6)
    with pytest.raises(ValueError, match=rf"whiten=True.*at most {n_vec - 1} dimensions"):
        cls(whiten=True, **kw).fit(held_out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(cls(whiten=False, **kw).fit(held_out).transform(test), X)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_regression_44_images_of_512_channels_never_give_43_d(name):
    """44 held-out images, 512-channel maps: a whitening supports at most 43 dimensions. The
    baselines once returned 43-D vectors silently; now "auto" keeps 512-D (with a warning)
    except R-MAC, whose 44 x 20 = 880 regional vectors support a 512-D whitening."""
    held_out, test = _maps(44, H=4, W=5, K=512, seed=9), _maps(2, H=4, W=5, K=512, seed=10)
    cls = BASELINES[name]
    if name == "rmac":
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            est = cls().fit(held_out)
        assert est.whitened_ and est.n_train_vectors_ == 880
        assert est.output_dim_ == 512 and est.transform(test).shape == (2, 512)
        return
    with pytest.warns(WhiteningFallbackWarning, match="44 held-out images give 44 .* at most 43 dimensions"):
        est = cls().fit(held_out)
    assert not est.whitened_ and est.output_dim_ == 512 and est.transform(test).shape == (2, 512)
    with pytest.raises(ValueError, match="at most 43"):
        cls(whiten=True).fit(held_out)
    # asking for what the set supports is whitened
    est = cls(n_components=43, whiten=True).fit(held_out)
    assert est.whitened_ and est.transform(test).shape == (2, 43)


def test_rank_deficient_held_out_set():
    """More images than dimensions, but only 4 distinct ones: the vectors span 3 dimensions."""
    distinct = _maps(4, seed=11)
    held_out = distinct * 10
    with pytest.warns(WhiteningFallbackWarning, match="40 held-out images give 40 .* at most 3 dimensions"):
        est = MAC().fit(held_out)
    assert not est.whitened_ and est.output_dim_ == 32
    with pytest.raises(ValueError, match="at most 3 dimensions"):
        MAC(whiten=True).fit(held_out)
    assert MAC(n_components=3, whiten=True).fit(held_out).output_dim_ == 3
    with pytest.warns(WhiteningFallbackWarning, match="at most 0 dimensions"):
        MAC().fit(distinct[:1] * 6)  # no variance at all


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
    with pytest.raises(NotFittedError, match="not fitted"):
        SPoC().transform(_maps(1))
    with pytest.raises(ValueError, match="p must be positive"):
        gem_pool(np.ones((2, 2, 2)), p=0)
    v = est.transform([ImageFeatures(np.zeros((12, 16, 32), np.float32), (1, 1), name="zero")])
    assert np.isfinite(v).all()
    for bad in ("yes", None, 1):
        with pytest.raises(ValueError, match="whiten must be 'auto', True or False"):
            MAC(whiten=bad).fit(_maps(40))
    with pytest.raises(ValueError, match=r"n_components must be in 1\.\.32"):
        SPoC().fit(_maps(40))  # the paper's 256 > the 32 channels of these maps
    with pytest.raises(ValueError, match="held-out set is empty"):
        MAC().fit([])
    with pytest.raises(ValueError, match="'wide' has 48 channels.*fitted on 32"):
        est.transform([ImageFeatures(np.ones((12, 16, 48), np.float32), (1, 1), name="wide")])
    with pytest.raises(NotFittedError, match="not fitted"):
        MAC().encode(_maps(1)[0])
