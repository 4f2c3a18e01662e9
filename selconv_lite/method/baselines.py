"""Baselines of Table 6 on the SAME feature maps: SPoC, MAC, R-MAC, CroW and GeM (p = 3).

Each baseline pools a feature map ``(H, W, K)`` into one (R-MAC: several regional) K-dim
vector(s), L2-normalises, applies a PCA-whitening learned on a held-out set, L2-normalises
again (R-MAC: sums the whitened regional vectors and L2-normalises the sum). The poolings
follow the original papers; they are written here in numpy from the published descriptions
(no code copied):

* SPoC [Babenko & Lempitsky 2015]: sum pooling with a Gaussian centre prior,
  ``sigma`` = 1/3 of the distance from the centre to the closest border.
* MAC [Radenovic et al. 2016 / Tolias et al. 2016]: the max of every channel.
* R-MAC [Tolias et al. 2016]: MAC of square regions at ``L = 3`` scales. At scale ``l`` the
  side is ``floor(2 min(H, W) / (l + 1))``; ``l + m - 1`` regions are placed uniformly along
  the longer side (``l`` along the shorter), ``m`` chosen in ``1..6`` so that consecutive
  regions of the first scale overlap by the fraction closest to 40 %.
* CroW [Kalantidis et al. 2016]: spatial weights ``S = (s / ||s||_a)^(1/b)`` from the channel
  sum ``s`` (``a = b = 2``), channel weights ``log(sum_h Q_h / Q_k)`` from the fraction ``Q_k``
  of non-zero activations of channel ``k``.
* GeM [Radenovic et al. 2018]: ``(mean x^p)^(1/p)`` with ``p = 3`` (activations clamped at
  ``1e-6``).

The whitening (:class:`PCAWhitening`) is PCA-whitening ``diag(ev^-1/2) V' (x - mean)`` learned on
the held-out vectors, made well behaved when the held-out set is small relative to the dimension
(the embedded default set: ~110 held-out images for 512-D vectors):

* at most ``n - 1`` components for ``n`` held-out vectors (beyond that the centred covariance has
  no spectrum; the directions would be arbitrary and their ``ev^-1/2`` infinite);
* the eigenvalues are shrunk towards their mean, ``ev' = (1 - a) ev + a mean(ev)``, with the
  Ledoit-Wolf coefficient ``a`` (Ledoit & Wolf, "A well-conditioned estimator for large-dimensional
  covariance matrices", J. Multivariate Analysis 2004) by default. With few vectors the sample
  eigenvalues are biased - the large ones too large, the small ones too small (towards 0) - and
  plain whitening, which divides by ``sqrt(ev)``, gives the largest weights to the noisiest
  directions. The Ledoit-Wolf coefficient tends to 0 as ``n`` grows, so on the paper's held-out
  sets (thousands of images, or R-MAC's regions) the result is essentially the plain
  PCA-whitening that the reference implementations learn (e.g. cirtorch's / the revisitop
  ``pcawhitenlearn``: eigen-decomposition of the covariance, ``P = diag(ev^-1/2) V'``, no
  regularisation). ``shrinkage=0`` gives exactly that.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .masks import check_fmap
from ..core.utils import as_float, check_finite, eigh_descending, l2_normalize_rows

__all__ = [
    "spoc_pool", "mac_pool", "gem_pool", "crow_pool", "rmac_regions", "rmac_region_vectors",
    "PCAWhitening", "SPoC", "MAC", "RMAC", "CroW", "GeM", "BASELINES",
]


# ----------------------------------------------------------------------------------------------
# poolings of one feature map
# ----------------------------------------------------------------------------------------------
def spoc_pool(fmap):
    """SPoC: ``sum_{h,w} alpha(h, w) f(h, w)`` with the Gaussian centre prior ``(K,)``."""
    fmap = check_fmap(fmap)
    H, W, _ = fmap.shape
    sigma = min(H, W) / 2.0 / 3.0
    y = np.arange(H) + 0.5 - H / 2.0
    x = np.arange(W) + 0.5 - W / 2.0
    a = np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))
    return np.tensordot(a.astype(fmap.dtype), fmap, axes=([0, 1], [0, 1]))


def mac_pool(fmap):
    """MAC: the max of every channel ``(K,)``."""
    fmap = check_fmap(fmap)
    return fmap.max(axis=(0, 1))


def gem_pool(fmap, p=3.0, eps=1e-6):
    """GeM: ``(mean_{h,w} max(f, eps)^p)^(1/p)`` ``(K,)``; ``p = 1`` is average pooling."""
    fmap = check_fmap(fmap)
    if p <= 0:
        raise ValueError(f"GeM p must be positive, got {p}")
    x = np.maximum(fmap, eps)
    return np.mean(x ** p, axis=(0, 1)) ** (1.0 / p)


def crow_pool(fmap, a=2.0, b=2.0):
    """CroW: cross-dimensional weighting and pooling ``(K,)``."""
    fmap = check_fmap(fmap)
    H, W, K = fmap.shape
    s = fmap.sum(axis=2)
    z = np.sum(s ** a) ** (1.0 / a)
    S = (s / z) ** (1.0 / b) if z > 0 else np.zeros_like(s)
    Q = np.count_nonzero(fmap.reshape(H * W, K), axis=0) / float(H * W)
    tot = Q.sum()
    omega = np.zeros(K, dtype=np.float64)
    nz = Q > 0
    omega[nz] = np.log(tot / Q[nz])
    v = np.tensordot(S.astype(fmap.dtype), fmap, axes=([0, 1], [0, 1]))
    return v * omega.astype(v.dtype)


def rmac_regions(H, W, L=3, overlap=0.4):
    """Square R-MAC regions of an ``H x W`` grid ``(R, 4)`` int: ``(y0, x0, side, side)``.

    See the module docstring for the sampling rule (Tolias et al. 2016).
    """
    H, W = int(H), int(W)
    if H < 1 or W < 1:
        raise ValueError(f"grid must be non-empty, got {H}x{W}")
    w = min(H, W)
    steps = np.arange(2, 8)
    b = (max(H, W) - w) / (steps - 1)
    extra = int(np.argmin(np.abs((w * w - w * b) / (w * w) - overlap))) + 1
    Wd = extra if W > H else 0
    Hd = extra if H > W else 0
    out = []
    for l in range(1, int(L) + 1):
        side = int(np.floor(2 * w / (l + 1)))
        if side < 1:
            break
        half = int(np.floor(side / 2 - 1))

        def starts(n_extra, size):
            n = l + n_extra
            step = (size - side) / (n - 1) if n > 1 else 0.0
            c = np.floor(half + np.arange(n) * step) - half
            return np.unique(np.clip(c.astype(int), 0, size - side))

        for y0 in starts(Hd, H):
            for x0 in starts(Wd, W):
                out.append((y0, x0, side, side))
    return np.array(out, dtype=int).reshape(-1, 4)


def rmac_region_vectors(fmap, L=3):
    """MAC of every R-MAC region ``(R, K)`` (not normalised)."""
    fmap = check_fmap(fmap)
    H, W, _ = fmap.shape
    regs = rmac_regions(H, W, L)
    return np.stack([fmap[y:y + h, x:x + w].max(axis=(0, 1)) for y, x, h, w in regs])


# ----------------------------------------------------------------------------------------------
# whitening
# ----------------------------------------------------------------------------------------------
class PCAWhitening(TransformerMixin, BaseEstimator):
    """PCA-whitening learned on held-out vectors (rows): ``diag(ev'^-1/2) V' (x - mean)``.

    ``V``, ``ev``: eigenvectors / eigenvalues of the (biased, ``1/n``) covariance of the held-out
    vectors; ``ev'``: the eigenvalues shrunk towards their mean (see ``shrinkage``).

    Parameters
    ----------
    n_components : int or None
        Output dimension. ``None``: as many as the held-out set supports, i.e. the input
        dimension ``K`` capped at ``n - 1`` for ``n`` held-out vectors (and at the numerical rank).
        An explicit value above that is capped too, with a warning: beyond ``n - 1`` the centred
        covariance has no spectrum, the directions are arbitrary and their weights infinite.
    shrinkage : "auto", float in [0, 1] or None, default "auto"
        Eigenvalue regularisation ``ev' = (1 - a) ev + a mean(ev)`` (the mean over all ``K``
        eigenvalues, i.e. ``trace / K``), which is shrinking the covariance towards a scaled
        identity (its eigenvectors do not change). ``"auto"``: the Ledoit-Wolf coefficient
        (Ledoit & Wolf 2004; ``sklearn.covariance.ledoit_wolf_shrinkage``), which is large when
        ``n`` is small relative to ``K`` and tends to 0 as ``n`` grows. Reason: with few held-out
        vectors the small sample eigenvalues are strongly under-estimated, and whitening
        (dividing by ``sqrt(ev)``) would give the largest weights to these noisiest
        directions. ``0`` or ``None``: plain PCA-whitening, as cirtorch / revisitop's
        ``pcawhitenlearn``.
    rank_tol : float, default 1e-10
        Components with eigenvalue below ``rank_tol * largest`` are dropped as well.

    Attributes
    ----------
    mean_ : ``(K,)``; components_ : ``(m, K)`` (whitening rows); eigval_ : ``(m,)`` (the sample
    eigenvalues); shrinkage_ : float (the coefficient used).
    """

    def __init__(self, n_components=None, shrinkage="auto", rank_tol=1e-10):
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.rank_tol = rank_tol

    def _shrinkage(self, Xc):
        a = self.shrinkage
        if a is None:
            return 0.0
        if isinstance(a, str):
            if a != "auto":
                raise ValueError(f"shrinkage must be 'auto', a float in [0, 1] or None, got {a!r}")
            from sklearn.covariance import ledoit_wolf_shrinkage

            return float(ledoit_wolf_shrinkage(Xc, assume_centered=True))
        a = float(a)
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {a}")
        return a

    def fit(self, X, y=None):
        X = as_float(X)
        check_finite(X, "held-out vectors")
        n, K = X.shape
        if n < 2:
            raise ValueError(f"whitening needs at least 2 held-out vectors, got {n}")
        mean = X.mean(axis=0)
        Xc = X - mean
        cov = Xc.T @ Xc / n
        ev, V = eigh_descending((cov + cov.T) / 2)
        ev = np.maximum(ev, 0.0)
        supported = min(n - 1, int(np.sum(ev > self.rank_tol * max(ev[0], 0))))
        if supported < 1:
            raise ValueError("whitening: the held-out vectors have no variance")
        if self.n_components is None:
            m = min(K, supported)
        else:
            m = int(self.n_components)
            if m < 1:
                raise ValueError(f"n_components must be >= 1, got {m}")
            if m > supported:
                warnings.warn(f"whitening: {m} components requested but the {n} held-out vectors "
                              f"span only {supported}; keeping {supported}", stacklevel=2)
                m = supported
        a = self._shrinkage(Xc)
        ev_s = (1.0 - a) * ev[:m] + a * float(np.trace(cov)) / K
        self.mean_ = mean
        self.eigval_ = ev[:m]
        self.shrinkage_ = a
        self.components_ = V[:, :m].T / np.sqrt(ev_s)[:, None]
        return self

    def transform(self, X):
        if not hasattr(self, "components_"):
            raise RuntimeError("PCAWhitening is not fitted yet: call fit() first")
        X = as_float(X)
        return (X - self.mean_) @ self.components_.T


# ----------------------------------------------------------------------------------------------
# the baselines
# ----------------------------------------------------------------------------------------------
class _GlobalBaseline(BaseEstimator):
    """pool -> L2 -> whitening (learned on the held-out set) -> L2 [-> sum -> L2].

    Every baseline takes ``n_components`` (capped at what the held-out set supports, see
    :class:`PCAWhitening`) and ``shrinkage`` (the whitening's eigenvalue shrinkage, default
    Ledoit-Wolf ``"auto"``; ``0`` = plain PCA-whitening).
    """

    shrinkage = "auto"

    def _pool(self, fmap):  # (r, K) rows
        raise NotImplementedError

    def _rows(self, im):
        fmap = getattr(im, "fmap", im)
        name = getattr(im, "name", "") or ""
        check_fmap(fmap, name)
        return l2_normalize_rows(np.atleast_2d(self._pool(fmap)).astype(np.float64), copy=False)

    def fit(self, images, y=None):
        """Learn the whitening on held-out images (ImageFeatures or raw ``(H, W, K)`` maps)."""
        rows = np.concatenate([self._rows(im) for im in images])
        self.whitening_ = PCAWhitening(n_components=self.n_components,
                                       shrinkage=self.shrinkage).fit(rows)
        self.output_dim_ = self.whitening_.components_.shape[0]
        return self

    def transform(self, images):
        """Final vectors ``(n, D)`` float32."""
        if not hasattr(self, "whitening_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(held_out) first")
        if hasattr(images, "fmap") or (isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]
        out = np.empty((len(images), self.output_dim_), dtype=np.float32)
        for i, im in enumerate(images):
            out[i] = self.encode(im)
        return out

    def encode(self, image):
        """The final vector ``(D,)`` of one image (float64)."""
        w = l2_normalize_rows(self.whitening_.transform(self._rows(image)), copy=False)
        return l2_normalize_rows(w.sum(axis=0)[None, :], copy=False)[0]


class SPoC(_GlobalBaseline):
    """SPoC (Table 6, 256-D): centre-prior sum pooling + PCA-whitening to ``n_components``."""

    def __init__(self, n_components=256, shrinkage="auto"):
        self.n_components = n_components
        self.shrinkage = shrinkage

    def _pool(self, fmap):
        return spoc_pool(fmap)


class MAC(_GlobalBaseline):
    """MAC (Table 6, 512-D): channel max + whitening."""

    def __init__(self, n_components=None, shrinkage="auto"):
        self.n_components = n_components
        self.shrinkage = shrinkage

    def _pool(self, fmap):
        return mac_pool(fmap)


class RMAC(_GlobalBaseline):
    """R-MAC (Table 6, 512-D): regional MACs at ``L`` scales, each L2 + whitened + L2, summed."""

    def __init__(self, L=3, n_components=None, shrinkage="auto"):
        self.L = L
        self.n_components = n_components
        self.shrinkage = shrinkage

    def _pool(self, fmap):
        return rmac_region_vectors(fmap, self.L)


class CroW(_GlobalBaseline):
    """CroW (Table 6, 512-D): cross-dimensional weighting + whitening."""

    def __init__(self, n_components=None, a=2.0, b=2.0, shrinkage="auto"):
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.a = a
        self.b = b

    def _pool(self, fmap):
        return crow_pool(fmap, self.a, self.b)


class GeM(_GlobalBaseline):
    """GeM (p = 3) + whitening."""

    def __init__(self, p=3.0, n_components=None, shrinkage="auto"):
        self.p = p
        self.n_components = n_components
        self.shrinkage = shrinkage

    def _pool(self, fmap):
        return gem_pool(fmap, self.p)


BASELINES = {"spoc": SPoC, "mac": MAC, "rmac": RMAC, "crow": CroW, "gem": GeM}
