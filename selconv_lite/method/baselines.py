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

Whitening policy (the same for every baseline, R-MAC included)
--------------------------------------------------------------
The whitening is learned on the *training vectors*: the L2-normalised pooled vectors of the
held-out images, one per image (R-MAC: one per region, ``n_images x regions``). A whitening to
``m`` dimensions (``m = n_components``, or the number of channels ``K`` when ``None``) is
*supported* when

    ``n_train_vectors > m``  and  the centred training vectors have numerical rank ``>= m``

(``n`` centred vectors span at most ``n - 1`` dimensions; beyond that the eigenvalues are 0 and
the whitening weights ``ev^-1/2`` infinite). ``whiten`` chooses what happens:

* ``"auto"`` (default): whiten when supported; otherwise keep the L2-normalised pooled vectors
  (``K``-D; R-MAC: the L2-normalised sum of the L2-normalised regional vectors) and emit a
  :class:`WhiteningFallbackWarning` that gives the numbers (training vectors, supported and
  requested dimensions, output dimension);
* ``True``: whiten; when not supported, ``fit`` raises a ``ValueError`` with the same numbers;
* ``False``: never whiten (L2-normalised pooled vectors, ``K``-D).

The output dimension never changes silently: it is ``m`` when whitened, ``K`` otherwise, and
the fitted estimator reports it (``output_dim_``), together with ``whitened_``,
``n_train_images_``, ``n_train_vectors_`` and ``input_dim_``. For example 44 held-out images
with 512-channel maps support at most a 43-D whitening: MAC / GeM / CroW / SPoC warn and give
512-D L2-normalised vectors under ``"auto"`` and raise under ``True``, whereas R-MAC (20 regions
per image at ``L = 3`` on a 3:4 grid such as 12 x 16: 880 training vectors) is whitened to 512-D. The paper's
Table 6 baselines are whitened on a held-out set of thousands of images, where the rule holds.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.utils.validation import check_is_fitted, validate_data

from .base import as_images
from .linalg import centred_scatter, eigh_descending, symmetrize, whitening_matrix
from .masks import check_fmap
from ..core.utils import l2_normalize

__all__ = [
    "spoc_pool", "mac_pool", "gem_pool", "crow_pool", "rmac_regions", "rmac_region_vectors",
    "PCAWhitening", "WhiteningFallbackWarning", "SPoC", "MAC", "RMAC", "CroW", "GeM", "BASELINES",
    "TABLE6_BASELINES", "baseline_name", "make_baseline",
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
    """CroW: cross-dimensional weighting and pooling ``(K,)``.

    Raises
    ------
    ValueError
        If the map has a negative activation: the spatial weights ``(s / ||s||_a)^(1/b)`` are
        defined for non-negative (post-ReLU) maps only.
    """
    fmap = check_fmap(fmap)
    if fmap.min() < 0:
        raise ValueError(f"Negative values in data passed to CroW (smallest {fmap.min():.3g}): its "
                         "spatial weights need non-negative (post-ReLU) feature maps")
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
    eigenvalues); shrinkage_ : float (the coefficient used); n_supported_ : int (the number of
    components the held-out vectors support: ``min(n - 1, numerical rank)``).
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
            return float(ledoit_wolf_shrinkage(Xc, assume_centered=True))
        a = float(a)
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {a}")
        return a

    def fit(self, X, y=None):
        """Learn the mean and the (shrunk) PCA-whitening of the held-out vectors.

        Parameters
        ----------
        X : array-like ``(n, K)``
            Held-out vectors (rows), at least 2, finite.
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Fewer than 2 vectors, NaN/inf, no variance, or a bad ``n_components`` / ``shrinkage``.
        """
        X = validate_data(self, X, dtype=np.float64, order="C")
        n, K = X.shape
        if n < 2:
            raise ValueError(f"whitening needs at least 2 held-out vectors, got n_samples = {n}")
        mean, S = centred_scatter(X)
        cov = S / n
        ev, V = eigh_descending(symmetrize(cov))
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
        a = self._shrinkage(X - mean)
        ev_s = (1.0 - a) * ev[:m] + a * float(np.trace(cov)) / K
        self.mean_ = mean
        self.n_supported_ = supported
        self.eigval_ = ev[:m]
        self.shrinkage_ = a
        self.components_ = whitening_matrix(ev_s, V[:, :m])
        return self

    def transform(self, X):
        """``(X - mean_) @ components_.T`` ``(n, m)`` in float64.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            Input not 2-D, not finite or not of the fitted width.
        """
        check_is_fitted(self)
        return self._whiten(validate_data(self, X, dtype=np.float64, order="C", reset=False))

    def _whiten(self, X):
        """``(X - mean_) @ components_.T`` of rows already checked (float64, of the fitted width)."""
        return (X - self.mean_) @ self.components_.T


# ----------------------------------------------------------------------------------------------
# the baselines
# ----------------------------------------------------------------------------------------------
class WhiteningFallbackWarning(UserWarning):
    """A baseline with ``whiten="auto"`` kept L2-normalised pooled vectors because the held-out
    set does not support the requested whitening (the message gives the numbers)."""


_WHITEN_PARAMS = """shrinkage : "auto", float in [0, 1] or None, default "auto"
        Eigenvalue shrinkage of the whitening (:class:`PCAWhitening`; ``0``: plain
        PCA-whitening as the reference implementations).
    whiten : "auto", True or False, default "auto"
        The whitening policy of every baseline (module docstring): the whitening to
        ``m = n_components`` dimensions (``K`` when None) is learned when
        ``n_train_vectors > m`` and the training vectors have numerical rank ``>= m``
        (``n_train_vectors``: see ``n_train_vectors_``). Otherwise ``"auto"`` keeps the
        ``K``-D L2-normalised pooled vectors with a :class:`WhiteningFallbackWarning` that says
        why, and ``True`` raises ``ValueError``. ``False``: ``K``-D L2-normalised pooled vectors.

    Attributes
    ----------
    whitened_ : bool
        Whether the PCA-whitening was learned and is applied.
    output_dim_ : int
        Dimension of :meth:`transform`'s vectors (``n_components`` or ``K`` when whitened,
        ``K`` otherwise).
    input_dim_ : int
        ``K``, the number of channels of the training maps.
    n_train_images_, n_train_vectors_ : int
        Held-out images and the training vectors pooled from them (the whitening's samples).
    whitening_ : PCAWhitening or None
        The learned whitening (None when not whitened).
    """


def _with_whitening_params(cls):
    """Completes a baseline's docstring with the shared parameters and attributes."""
    cls.__doc__ = cls.__doc__.replace("<whitening parameters>", _WHITEN_PARAMS.rstrip())
    return cls


def _check_whiten(whiten, owner):
    if isinstance(whiten, (bool, np.bool_)):
        return bool(whiten)
    if isinstance(whiten, str) and whiten == "auto":
        return "auto"
    raise ValueError(f"{owner}: whiten must be 'auto', True or False, got {whiten!r}")


class _GlobalBaseline(TransformerMixin, BaseEstimator):
    """pool -> L2 -> [whitening learned on the held-out set -> L2] [-> sum -> L2] (R-MAC).

    The whitening policy (module docstring) is implemented here once for every baseline.
    Subclasses define ``_pool(fmap)`` (rows ``(r, K)``) and ``_vectors`` (what a training
    vector is, for the messages).

    ``fit`` and ``transform`` take the images as :func:`~selconv_lite.method.base.as_images`
    reads them: a list (any iterable) of :class:`~selconv_lite.core.types.ImageFeatures` or of
    raw ``(H, W, K)`` maps (of any sizes), a 4-D array ``(n, H, W, K)`` of equal-sized maps, or
    a 2-D array ``(n, K)``: ``n`` maps of a single location, e.g. vectors that are already
    pooled. Every pooling of a single location is that vector (GeM: clamped at ``eps``; CroW:
    its channel weights), so the baseline then L2-normalises, whitens and L2-normalises them.
    ``transform`` also takes one image (ImageFeatures or a ``(H, W, K)`` map).

    ``n_features_in_`` is ``K``, the number of channels (as ``input_dim_``).
    """

    _vectors = "pooled vectors, one per image"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the final vectors are float32
        return tags

    def _pool(self, fmap):  # (r, K) rows
        raise NotImplementedError

    def _rows(self, im):
        fmap = getattr(im, "fmap", im)
        name = getattr(im, "name", "") or ""
        check_fmap(fmap, name)
        return l2_normalize(np.atleast_2d(self._pool(fmap)).astype(np.float64), copy=False)

    def _requested_dim(self, K):
        owner = type(self).__name__
        if self.n_components is None:
            return K
        m = int(self.n_components)
        if not 1 <= m <= K:
            raise ValueError(f"{owner}: n_components must be in 1..{K} (the {K} channels of the "
                             f"training maps) or None, got {self.n_components!r}")
        return m

    def _learn_whitening(self, rows, m):
        """``(PCAWhitening or None, supported dimensions)``: the whitening to ``m`` dimensions
        when the training vectors support it."""
        n = rows.shape[0]
        if not np.any(rows != rows[0]):
            return None, 0
        if n - 1 < m:  # too few vectors: how many dimensions they span, for the message
            sv = np.linalg.svd(rows - rows.mean(axis=0), compute_uv=False)
            return None, min(n - 1, int(np.sum(sv ** 2 > PCAWhitening().rank_tol * sv[0] ** 2)))
        with warnings.catch_warnings():  # a rank-deficient set: reported by the caller
            warnings.filterwarnings("ignore", message="whitening: .* span only", category=UserWarning)
            w = PCAWhitening(n_components=m, shrinkage=self.shrinkage).fit(rows)
        if w.components_.shape[0] < m:
            return None, w.n_supported_
        return w, w.n_supported_

    def fit(self, images, y=None):
        """Pool the held-out images and learn the whitening on them according to ``whiten``
        (module docstring).

        Parameters
        ----------
        images : list of ImageFeatures or ``(H, W, K)`` maps, ``(n, H, W, K)`` or ``(n, K)`` array
            The held-out set, read by :func:`~selconv_lite.method.base.as_images` (a 2-D array
            is ``n`` single-location maps, e.g. already pooled vectors: every pooling of one
            location is that vector, so the baseline only L2-normalises, whitens and
            L2-normalises them; GeM clamps at ``eps``, CroW weights the channels).
        y : ignored

        Returns
        -------
        self
        """
        owner = type(self).__name__
        whiten = _check_whiten(self.whiten, owner)
        per_image = [self._rows(im) for im in as_images(self, images, reset=True)]
        if not per_image:
            raise ValueError(f"{owner}.fit: the held-out set is empty")
        rows = np.concatenate(per_image)
        n, K = rows.shape
        m = self._requested_dim(K)
        self.n_train_images_, self.n_train_vectors_, self.input_dim_ = len(per_image), n, K
        self.n_features_in_ = K
        self.whitening_ = None
        if whiten is not False:
            self.whitening_, supported = self._learn_whitening(rows, m)
            if self.whitening_ is None:
                why = (f"a {m}-D whitening needs more than {m} training vectors of rank >= {m}, but the "
                       f"{len(per_image)} held-out images give {n} {self._vectors}, which span at most "
                       f"{supported} dimensions")
                if whiten is True:
                    raise ValueError(f"{owner}(whiten=True): {why}. Use more held-out images, a smaller "
                                     f"n_components, or whiten='auto' / False for L2-normalised {K}-D vectors")
                warnings.warn(f"{owner}(whiten='auto') keeps the L2-normalised pooled vectors ({K}-D) "
                              f"without PCA-whitening: {why}. Pass whiten=False to ask for this explicitly",
                              WhiteningFallbackWarning, stacklevel=2)
        self.whitened_ = self.whitening_ is not None
        self.output_dim_ = m if self.whitened_ else K
        return self

    def transform(self, images):
        """Final vectors ``(n, output_dim_)`` float32, L2-normalised.

        Parameters
        ----------
        images : one image or images as :meth:`fit` takes them

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            A map that is not ``(H, W, K)``, not finite, or of another depth ``K``.
        """
        check_is_fitted(self, "whitened_")
        images = as_images(self, images, reset=False)
        out = np.empty((len(images), self.output_dim_), dtype=np.float32)
        for i, im in enumerate(images):
            out[i] = self.encode(im)
        return out

    def encode(self, image):
        """The final vector ``(output_dim_,)`` of one image (ImageFeatures or ``(H, W, K)`` map),
        float64."""
        check_is_fitted(self, "whitened_")
        rows = self._rows(image)
        if rows.shape[1] != self.input_dim_:
            name = getattr(image, "name", "") or ""
            raise ValueError(f"{type(self).__name__}: feature map {name!r} has {rows.shape[1]} channels, "
                             f"the baseline was fitted on {self.input_dim_}")
        if self.whitened_:
            rows = l2_normalize(self.whitening_._whiten(rows), copy=False)
        return l2_normalize(rows.sum(axis=0)[None, :], copy=False)[0]


@_with_whitening_params
class SPoC(_GlobalBaseline):
    """SPoC (Table 6, 256-D): centre-prior sum pooling, L2, PCA-whitening to 256-D, L2.

    Parameters
    ----------
    n_components : int or None, default 256
        Output dimension when whitened (the paper's 256); ``None``: ``K``.
    <whitening parameters>
    """

    def __init__(self, n_components=256, shrinkage="auto", whiten="auto"):
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.whiten = whiten

    def _pool(self, fmap):
        return spoc_pool(fmap)


@_with_whitening_params
class MAC(_GlobalBaseline):
    """MAC (Table 6, 512-D): channel max, L2, PCA-whitening, L2.

    Parameters
    ----------
    n_components : int or None, default None
        Output dimension when whitened; ``None``: ``K`` (512 for VGG16 pool5).
    <whitening parameters>
    """

    def __init__(self, n_components=None, shrinkage="auto", whiten="auto"):
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.whiten = whiten

    def _pool(self, fmap):
        return mac_pool(fmap)


@_with_whitening_params
class RMAC(_GlobalBaseline):
    """R-MAC (Table 6, 512-D): regional MACs at ``L`` scales, each L2, whitened and L2, summed, L2.

    The whitening is learned on the regional vectors of the held-out images (as Tolias et al.),
    so its training vectors are the regions: ``n_train_vectors_ = n_images x regions``.

    Parameters
    ----------
    L : int, default 3
        Number of region scales (:func:`rmac_regions`).
    n_components : int or None, default None
        Output dimension when whitened; ``None``: ``K`` (512 for VGG16 pool5).
    <whitening parameters>
    """

    _vectors = "regional vectors"

    def __init__(self, L=3, n_components=None, shrinkage="auto", whiten="auto"):
        self.L = L
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.whiten = whiten

    def _pool(self, fmap):
        return rmac_region_vectors(fmap, self.L)


@_with_whitening_params
class CroW(_GlobalBaseline):
    """CroW (Table 6, 512-D): cross-dimensional weighting and sum pooling, L2, PCA-whitening, L2.

    Parameters
    ----------
    n_components : int or None, default None
        Output dimension when whitened; ``None``: ``K`` (512 for VGG16 pool5).
    a, b : float, default 2
        Exponents of the spatial weights (:func:`crow_pool`).
    <whitening parameters>
    """

    def __init__(self, n_components=None, a=2.0, b=2.0, shrinkage="auto", whiten="auto"):
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.a = a
        self.b = b
        self.whiten = whiten

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # post-ReLU maps (crow_pool)
        return tags

    def _pool(self, fmap):
        return crow_pool(fmap, self.a, self.b)


@_with_whitening_params
class GeM(_GlobalBaseline):
    """GeM (Table 6 companion, 512-D): generalised mean pooling ``p``, L2, PCA-whitening, L2.

    Parameters
    ----------
    p : float, default 3
        GeM exponent (:func:`gem_pool`; 1: average pooling).
    n_components : int or None, default None
        Output dimension when whitened; ``None``: ``K`` (512 for VGG16 pool5).
    <whitening parameters>
    """

    def __init__(self, p=3.0, n_components=None, shrinkage="auto", whiten="auto"):
        self.p = p
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.whiten = whiten

    def _pool(self, fmap):
        return gem_pool(fmap, self.p)


# ----------------------------------------------------------------------------------------------
# the registry of Table 6's baselines
# ----------------------------------------------------------------------------------------------
#: The one registry of Table 6's baselines: the paper's name -> ``(class, dim, n_components)``,
#: ``dim`` the paper's output dimension and ``n_components`` the setting that gives it (SPoC is
#: whitened to 256-D; the others keep ``K``, 512 for VGG16 pool5).
TABLE6_BASELINES = {"SPoC": (SPoC, 256, 256), "MAC": (MAC, 512, None), "R-MAC": (RMAC, 512, None),
                    "CroW": (CroW, 512, None), "GeM": (GeM, 512, None)}


def _baseline_key(name) -> str:
    return str(name).lower().replace("-", "")


#: The same classes by lower-case name without ``-`` (``"spoc"``, ``"rmac"``, ...).
BASELINES = {_baseline_key(n): entry[0] for n, entry in TABLE6_BASELINES.items()}


def baseline_name(name) -> str:
    """The paper's name of baseline ``name``, case and ``-`` ignored (``"rmac"`` -> ``"R-MAC"``).

    Raises
    ------
    ValueError
        ``name`` is none of :data:`TABLE6_BASELINES` (the message lists them).
    """
    names = {_baseline_key(n): n for n in TABLE6_BASELINES}
    key = _baseline_key(name)
    if key not in names:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(sorted(names))}")
    return names[key]


def make_baseline(name, whiten="auto"):
    """The Table 6 baseline ``name`` (any spelling :func:`baseline_name` accepts) configured for
    the paper's output dimension, with the whitening policy ``whiten`` (``"auto"``, True or
    False, see the module's notes)."""
    cls, _, n_components = TABLE6_BASELINES[baseline_name(name)]
    return cls(n_components=n_components, whiten=whiten)
