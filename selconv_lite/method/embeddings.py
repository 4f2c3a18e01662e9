"""Pre-processing (Sec. 4.1) and embeddings of each local feature (Sec. 4.2, Eqs. 4-7).

All estimators follow the scikit-learn conventions: hyper-parameters in ``__init__``, learned
state in attributes ending in ``_``, ``fit`` returns ``self`` and ``transform`` does not
change the estimator. Local features are ROWS: ``X`` is ``(n, dim)``.

* :class:`PCAL2` -- PCA to ``d`` then L2 of every local feature (Sec. 4.1; the authors'
  ``main.m`` / first line of ``embedding.m``).
* :class:`VLAD` -- Eq. 5, one block per visual word, the residual in the nearest one only.
* :class:`FisherVector` -- Eq. 4, diagonal GMM, layout ``[u_1..u_k, v_1..v_k]`` of VLFeat.
* :class:`TriangulationEmbedding` -- Eq. 6 (T-emb, phi_Delta), with the mean removal and the
  whitening of the authors' ``triemb_learn.m`` (the 32 smallest eigenvalues are raised to the
  33rd smallest: ``eigval(end-32:end) = eigval(end-32)``).
* :class:`FFAEmbedding` -- Eq. 7 (F-FAemb), closed-form coefficients
  (``learn_coeff_one_sample.m``), upper-triangle layout, whitening of
  ``projection_learn_batch.m`` with the 128 smallest eigenvalues raised to the 129th.

Codebooks are learned with scikit-learn (``KMeans`` / ``GaussianMixture``) under a seed, or
given explicitly (``centroids=``, ``anchors=``, ``means=/covariances=/priors=``). The embeddings
themselves are written by hand in vectorised numpy because they must reproduce the authors'
MATLAB/C code to the last digit (golden files b, c, e, f); no library implements these exact
layouts and normalisations. Learning statistics (covariances) are accumulated in chunks, so
fitting on a million local features stays within a few GB; the covariances, eigen-decompositions,
clamping and whitening are those of :mod:`selconv_lite.method.linalg`. T-emb and F-FAemb share
the normalised residuals ``(x - c_j)/||x - c_j||`` (:func:`normalized_residuals`) and the
learned mean removal and whitening (their base class).

Eigenvector signs are implementation defined. Every estimator that learns a projection can be
built from stored parameters with ``from_params`` (used to compare with MATLAB output).

The four embeddings share the base :class:`Embedding` and are registered by name in
:data:`EMBEDDINGS` (``"fv"``, ``"vlad"``, ``"temb"``, ``"ffaemb"``); each class knows its output
dimension (:meth:`Embedding.output_dim`), the components dropped after the rotation by default
(:meth:`Embedding.default_truncate`) and the codebook size reaching a final dimension
(:meth:`Embedding.n_centroids_for`). ``|C|`` is ``n_centroids`` in every one (codebook size,
number of anchors or of Gaussians).

Fitting is done in float64. ``transform`` computes in the precision of its input (float64 or
float32); :meth:`Embedding.astype` gives a copy whose learned arrays are already cast, so that a
float32 online stage does not cast them again for every image (both from
:class:`selconv_lite.method.base.FloatTransformer`).
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import validate_data

from .base import FLOATS, FloatTransformer, as_dtype
from .linalg import (centred_covariance, clamp_smallest, eigh_descending, sign_by_largest,
                     whitening_matrix)
from ..core.utils import l2_normalize, sample_indices

__all__ = [
    "EMBEDDINGS",
    "Embedding",
    "embedding_class",
    "PCAL2",
    "VLAD",
    "FisherVector",
    "TriangulationEmbedding",
    "FFAEmbedding",
    "normalized_residuals",
    "triangulation_residuals",
    "ffa_coefficients",
    "ffa_raw_embedding",
    "fisher_posteriors",
    "nearest_centroid",
    "make_embedding",
]

_CHUNK = 4096


def _fit_input(est, X, min_samples=1, keep_float=False):
    """Training local features ``(n, dim)`` checked by scikit-learn (2-D, finite, at least
    ``min_samples`` rows); sets ``n_features_in_``. float64 unless ``keep_float``."""
    return validate_data(est, X, dtype=FLOATS if keep_float else np.float64,
                         ensure_min_samples=min_samples)


def _transform_input(est, X):
    """Local features for a fitted ``est`` (:meth:`FloatTransformer._validate_transform_input`)."""
    return est._validate_transform_input(X)


class Embedding(FloatTransformer):
    """Base of the embeddings of a local feature (Sec. 4.2): what the framework needs to know
    about each one without fitting it.

    Subclasses set :attr:`name` (their key in :data:`EMBEDDINGS`) and :meth:`block_dim`.
    """

    #: Key in :data:`EMBEDDINGS`.
    name = ""
    #: The parameter holding an explicit codebook (skips the k-means / GMM).
    codebook_param = "centroids"
    #: Whether ``fit`` learns a whitening of the embedded vectors (needs at least as many
    #: training local features as embedded dimensions).
    whitened = False

    @classmethod
    def block_dim(cls, d):
        """Components per codeword for local features of dimension ``d``."""
        raise NotImplementedError

    @classmethod
    def output_dim(cls, d, n_centroids):
        """Dimension of the embedded (and aggregated) vector before truncation:
        ``|C| * block_dim(d)`` (Table 2: ``2 d |C|`` for FV, ``d |C|`` for VLAD and T-emb,
        ``|C| d (d+1) / 2`` for F-FAemb)."""
        return int(n_centroids) * cls.block_dim(int(d))

    @classmethod
    def default_truncate(cls, d):
        """Components dropped after the rotation by default (Sec. 5.2.1): none."""
        return 0

    @classmethod
    def n_centroids_for(cls, D, d):
        """``|C|`` giving the final dimension ``D`` with local features of dimension ``d``:
        ``output_dim(d, |C|) - default_truncate(d) = D``.

        Raises
        ------
        ValueError
            If ``D`` cannot be reached with this ``d`` (the division is not exact).
        """
        D, d = int(D), int(d)
        if D <= 0 or d <= 0:
            raise ValueError(f"D and d must be positive, got D={D}, d={d}")
        num, den = D + cls.default_truncate(d), cls.block_dim(d)
        if num % den:
            raise ValueError(f"D={D} is not reachable with d={d} for {cls.name}: D = |C| * {den} - "
                             f"{cls.default_truncate(d)} needs {num} to be a multiple of {den}")
        return num // den


def _fit_kmeans(X, k, random_state, max_samples, n_init, max_iter, what="centroids"):
    n = X.shape[0]
    if n < k:
        raise ValueError(f"k-means for {k} {what} needs at least {k} training local features, "
                         f"got n_samples = {n}")
    Xs = X[sample_indices(n, max_samples, random_state)]
    km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=random_state)
    km.fit(Xs)
    return np.ascontiguousarray(km.cluster_centers_, dtype=np.float64)


def _codebook(est, X, given, k, what="centroids"):
    """The codebook of ``est``: ``given`` (checked against the dimension of ``X``) or k-means
    on ``X`` with the estimator's k-means settings."""
    if given is not None:
        C = np.atleast_2d(np.asarray(given, dtype=np.float64))
        if C.shape[1] != X.shape[1]:
            raise ValueError(f"{what} have dimension {C.shape[1]}, local features {X.shape[1]}")
        return C
    return _fit_kmeans(X, int(k), est.random_state, est.codebook_max_samples, est.kmeans_n_init,
                       est.kmeans_max_iter, what=what)


def _learn_whitening(est, embed, X, chunk, scale, what):
    """Mean and clamped whitening of the embedded training features (the authors'
    ``triemb_learn.m`` / ``projection_learn_batch.m``), with :mod:`~selconv_lite.method.linalg`:
    the covariance of ``embed(X)`` (two chunked passes, so memory stays ``O(D^2)``) divided by
    ``scale``, its eigen-decomposition, the ``est.eig_clamp`` smallest eigenvalues raised to the
    next one and ``P = diag(ev^-1/2) V'``. Sets ``mean_``, ``eigvec_``, ``eigval_raw_``,
    ``eigval_`` and ``projection_`` on ``est``.

    Raises
    ------
    ValueError
        If a clamped eigenvalue is not positive (too few training local features).
    """
    mean, cov = centred_covariance(X, scale, chunk=chunk, transform=embed)
    eigval, eigvec = eigh_descending(cov)
    ev = clamp_smallest(eigval, est.eig_clamp)
    if not np.all(ev > 0):
        raise ValueError(f"{what}: the whitening eigenvalues are not all positive (smallest kept "
                         f"{ev.min():.3g}); there are too few (or too similar) training local "
                         f"features for a {ev.shape[0]}-dim covariance. Use more training images "
                         "or a smaller d / codebook")
    est.eigval_, est.projection_ = ev, whitening_matrix(ev, eigvec)
    est.mean_, est.eigvec_, est.eigval_raw_ = mean, eigvec, eigval


# ----------------------------------------------------------------------------------------------
# Sec. 4.1: PCA + L2
# ----------------------------------------------------------------------------------------------
class PCAL2(FloatTransformer):
    """PCA of the local features to ``d`` dimensions, then L2 normalisation (Sec. 4.1).

    ``x -> L2(M_PCA (x - mean))``, as the authors' ``main.m``: ``Xcov = (Xc Xc' + (Xc Xc')')/(2N)``,
    ``[U, S] = svd(Xcov)``, ``Ud = U(:, 1:d)``, and ``yael_vecs_normalize(Ud' (x - mean))``.

    Parameters
    ----------
    d : int
        Number of principal components kept (Table 2 / Table 4 "PCA d").
    max_samples : int or None, default None
        Fit on a seeded uniform sample of at most this many local features (``None`` = all,
        as the authors). The covariance is accumulated in chunks either way.
    random_state : int, default 0
        Seed of the sample.

    Attributes
    ----------
    mean_ : ndarray ``(K,)``
    covariance_ : ndarray ``(K, K)``
        The symmetrised covariance ``Xcov`` (divided by ``n``).
    components_ : ndarray ``(d, K)``
        Rows are ``Ud'``: the top-``d`` eigenvectors, sign fixed so that the entry of largest
        magnitude of each is positive (MATLAB's signs are implementation defined).
    explained_variance_ : ndarray ``(d,)``
    n_features_in_ : int
    """

    _learned = ("mean_", "components_")

    def __init__(self, d=64, max_samples=None, random_state=0):
        self.d = d
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X, y=None):
        """Learn the mean and the top-``d`` eigenvectors of the covariance of ``X``
        (:func:`~selconv_lite.method.linalg.centred_covariance`, chunked).

        Parameters
        ----------
        X : array-like ``(n, K)``
            Training local features, float64 or float32 (accumulated in float64).
        y : ignored

        Returns
        -------
        self
        """
        X = _fit_input(self, X, min_samples=2, keep_float=True)
        n, K = X.shape
        d = int(self.d)
        if d < 1 or d > K:
            raise ValueError(f"PCA d={d} must be between 1 and the feature dimension K={K} "
                             f"(n_features = {K})")
        idx = sample_indices(n, self.max_samples, self.random_state)
        n = idx.shape[0]
        if n < d:
            raise ValueError(f"PCA to d={d} needs at least d={d} training local features, got {n}")
        # chunks of 65536 rows converted to float64: memory O(chunk * K + K^2)
        mean, cov = centred_covariance(X, chunk=65536, rows=idx)  # main.m: (C + C') / (2 n)
        w, V = eigh_descending(cov)
        self.mean_ = mean
        self.covariance_ = cov
        self.components_ = np.ascontiguousarray(sign_by_largest(V[:, :d]).T)
        self.explained_variance_ = w[:d]
        return self

    @classmethod
    def from_params(cls, mean, components):
        """A fitted instance from a given mean ``(K,)`` and projection ``(d, K)`` (rows = ``Ud'``)."""
        components = np.atleast_2d(np.asarray(components, dtype=np.float64))
        est = cls(d=components.shape[0])
        est.mean_ = np.asarray(mean, dtype=np.float64).ravel()
        est.components_ = np.ascontiguousarray(components)
        est.n_features_in_ = components.shape[1]
        return est

    def transform(self, X):
        """``L2((X - mean_) @ components_.T)`` row by row; a zero row stays zero."""
        X = _transform_input(self, X)
        return l2_normalize((X - as_dtype(self.mean_, X.dtype)) @ as_dtype(self.components_, X.dtype).T,
                            copy=False)


# ----------------------------------------------------------------------------------------------
# Eqs. 6-7: the whitened embeddings (T-emb, F-FAemb)
# ----------------------------------------------------------------------------------------------
def normalized_residuals(X, centroids):
    """The normalised residuals ``r_ij = (x_i - c_j)/||x_i - c_j||`` ``(n, k, d)`` of T-emb
    (Eq. 6) and F-FAemb (Eq. 7), in the precision of ``X``.

    A residual of norm 0 (a feature equal to a centroid) stays a zero vector instead of the NaN
    of the authors' code.

    Parameters
    ----------
    X : ndarray ``(n, d)``
    centroids : ndarray ``(k, d)``
        Codebook (T-emb) or anchors (F-FAemb).

    Returns
    -------
    R : ndarray ``(n, k, d)``
    """
    X = np.asarray(X)
    C = np.asarray(centroids, dtype=X.dtype)
    R = X[:, None, :] - C[None, :, :]
    nr = np.sqrt(np.einsum("ijk,ijk->ij", R, R))
    nr[nr == 0] = 1
    R /= nr[:, :, None]
    return R


def triangulation_residuals(X, centroids):
    """Normalised residuals of Eq. 6: block ``j`` of row ``i`` is ``(x_i - c_j)/||x_i - c_j||``.

    Parameters
    ----------
    X : ndarray ``(n, d)``
    centroids : ndarray ``(k, d)``

    Returns
    -------
    R : ndarray ``(n, k*d)``, block-major (``k`` blocks of ``d``), as ``triemb_res.m``
        (:func:`normalized_residuals` laid out row by row).
    """
    X = np.asarray(X)
    return normalized_residuals(X, centroids).reshape(X.shape[0], -1)


class _WhitenedEmbedding(Embedding):
    """Base of the embeddings followed by a learned mean removal and clamped whitening
    (T-emb, F-FAemb): ``phi(x) = P_emb (psi(x) - Xmean)``.

    Subclasses define :meth:`_embed` (``psi`` of float64 training features for a codebook),
    :meth:`_centred` (``psi(X) - Xmean`` for a fitted estimator), ``_label`` (for messages),
    :meth:`_chunk` and :meth:`_scale` (the divisor of the authors' covariance).
    """

    whitened = True
    _label = ""

    def _embed(self, X, codebook):
        raise NotImplementedError

    def _centred(self, X):
        raise NotImplementedError

    @classmethod
    def _chunk(cls, D):
        """Training features embedded at once when learning the whitening (memory ``O(chunk D)``)."""
        return _CHUNK

    @classmethod
    def _scale(cls, n):
        """The divisor of the scatter matrix (1: ``triemb_learn.m``)."""
        return 1.0

    def fit(self, X, y=None):
        """Learn the codebook (or take the given one), then ``Xmean`` and ``P_emb`` on the
        embedded training features (a seeded sample of at most ``max_samples``).

        Parameters
        ----------
        X : array-like ``(n, d)``
            Training local features (at least 2).
        y : ignored

        Returns
        -------
        self
        """
        X = _fit_input(self, X, min_samples=2)
        n, d = X.shape
        what = self.codebook_param
        C = _codebook(self, X, getattr(self, what), self.n_centroids, what=what)
        X = X[sample_indices(n, self.max_samples, self.random_state)]
        n = X.shape[0]
        if n < 2:
            raise ValueError(f"{self._label} whitening needs at least 2 training local features, "
                             f"got n_samples = {n} (max_samples={self.max_samples})")
        D = self.output_dim(d, C.shape[0])
        _learn_whitening(self, lambda Xs: self._embed(Xs, C), X, self._chunk(D), self._scale(n),
                         self._label)
        setattr(self, what + "_", C)
        self.embed_dim_ = D
        return self

    @classmethod
    def _from_learned(cls, codebook, mean, projection, **params):
        """A fitted instance from a codebook ``(k, d)``, ``Xmean`` and ``P_emb``."""
        C = np.atleast_2d(np.asarray(codebook, dtype=np.float64))
        est = cls(n_centroids=C.shape[0], **{cls.codebook_param: C}, **params)
        setattr(est, cls.codebook_param + "_", C)
        est.mean_ = np.asarray(mean, dtype=np.float64).ravel()
        est.projection_ = np.asarray(projection, dtype=np.float64)
        est.n_features_in_ = C.shape[1]
        est.embed_dim_ = cls.output_dim(C.shape[1], C.shape[0])
        return est

    def transform(self, X):
        """``(psi(X) - Xmean) @ P_emb.T`` ``(n, D)``: one embedded vector per local feature, in
        the precision of ``X`` (float64 or float32)."""
        Z = self._centred(X)
        return Z @ as_dtype(self.projection_, Z.dtype).T


class TriangulationEmbedding(_WhitenedEmbedding):
    """Triangulation embedding phi_Delta (T-emb, Eq. 6) with the authors' mean removal and whitening.

    ``phi(x) = P_emb (R(x) - Xmean)`` with ``R`` from :func:`triangulation_residuals`,
    ``Xmean`` the mean of ``R`` on the training features, and ``P_emb = diag(ev^-1/2) V'``
    from the eigen-decomposition of ``covD = sum (R - Xmean)(R - Xmean)'`` (not divided by
    ``n``, as ``triemb_learn.m``) with the ``eig_clamp`` smallest eigenvalues raised to the
    next one (``main.m``: ``eigval(end-32:end) = eigval(end-32)``).

    Parameters
    ----------
    n_centroids : int
        Codebook size ``|C|`` (k-means, under ``random_state``), ignored if ``centroids`` given.
    centroids : ndarray ``(k, d)`` or None
        An explicit codebook (the golden tests use this).
    eig_clamp : int, default 32
        Number of smallest eigenvalues raised to the ``(eig_clamp+1)``-th smallest.
    codebook_max_samples : int or None, default 100000
        k-means is fitted on a seeded sample of at most this many local features.
    kmeans_n_init, kmeans_max_iter : int
        Passed to :class:`sklearn.cluster.KMeans` (the authors: ``redo 2``, ``niter 100``).
    max_samples : int or None, default None
        ``Xmean`` and ``covD`` are learned on a seeded sample of at most this many local
        features (``None`` = all, as the authors; the cost is ``n D^2``).
    random_state : int, default 0

    Attributes
    ----------
    centroids_ : ``(k, d)``; mean_ : ``(k*d,)``; eigvec_ : ``(D, D)`` columns, decreasing
    eigenvalues; eigval_raw_ : ``(D,)``; eigval_ : ``(D,)`` clamped; projection_ : ``(D, D)``
    (``P_emb``); n_features_in_ : ``d``; embed_dim_ : ``D = k*d``.
    """

    name = "temb"
    _label = "T-emb"
    _learned = ("centroids_", "mean_", "projection_")

    def __init__(self, n_centroids=64, centroids=None, eig_clamp=32, codebook_max_samples=100_000,
                 kmeans_n_init=2, kmeans_max_iter=100, max_samples=None, random_state=0):
        self.max_samples = max_samples
        self.n_centroids = n_centroids
        self.centroids = centroids
        self.eig_clamp = eig_clamp
        self.codebook_max_samples = codebook_max_samples
        self.kmeans_n_init = kmeans_n_init
        self.kmeans_max_iter = kmeans_max_iter
        self.random_state = random_state

    @classmethod
    def block_dim(cls, d):
        return int(d)

    @classmethod
    def default_truncate(cls, d):
        """128 components dropped after the rotation (Sec. 5.2.1)."""
        return 128

    def _embed(self, X, codebook):
        return triangulation_residuals(X, codebook)

    @classmethod
    def from_params(cls, centroids, mean, projection):
        """A fitted instance from a codebook ``(k, d)``, ``Xmean`` ``(k*d,)`` and ``P_emb``."""
        return cls._from_learned(centroids, mean, projection)

    def residuals(self, X):
        """``R(X) - Xmean``: the output of the authors' ``triemb_res`` ``(n, k*d)``."""
        X = _transform_input(self, X)
        R = triangulation_residuals(X, self.centroids_)
        R -= as_dtype(self.mean_, X.dtype)
        return R

    _centred = residuals


def ffa_coefficients(X, anchors, mu=1e-2):
    """Closed-form F-FAemb coefficients ``gamma`` (the authors' ``learn_coeff_one_sample.m``).

    For each ``x``: ``a = sum_j ||x - b_j||_1^3``, ``M = B'B + a mu I``,
    ``lambda = (1' M^-1 B'x - 1) / (1' M^-1 1)``, ``gamma = M^-1 (B'x - lambda 1)``
    (so ``sum(gamma) = 1``). Vectorised over the features through one eigen-decomposition
    ``B'B = Q diag(s) Q'``: ``M^-1 = Q diag(1/(s + a mu)) Q'`` for every feature at once
    (the authors loop over features and call ``inv``).

    Parameters
    ----------
    X : ndarray ``(n, d)``
    anchors : ndarray ``(k, d)``
    mu : float

    Returns
    -------
    gamma : ndarray ``(n, k)``
    """
    X = np.asarray(X, dtype=np.float64)
    B = np.asarray(anchors, dtype=np.float64)
    k = B.shape[0]
    s, Q = np.linalg.eigh(B @ B.T)  # (k, k) Gram of the anchors
    L1 = np.abs(X[:, None, :] - B[None, :, :]).sum(axis=2)  # (n, k)
    a = (L1 ** 3).sum(axis=1)  # (n,)
    w = 1.0 / (s[None, :] + (a * mu)[:, None])  # (n, k) eigenvalues of M^-1
    u = Q.T @ np.ones(k)  # (k,)
    bq = (X @ B.T) @ Q  # Q' B'x, (n, k)
    num = (w * bq) @ u - 1.0
    den = (w * u[None, :] ** 2).sum(axis=1)
    lam = num / den
    return (w * (bq - lam[:, None] * u[None, :])) @ Q.T


def ffa_raw_embedding(X, anchors, gamma):
    """The F-FAemb vector of Eq. 7 before whitening (the authors' ``fa_embedding.c``).

    Block ``j`` is ``gamma_j * triu(r r')`` with ``r = (x - b_j)/||x - b_j||``
    (:func:`normalized_residuals`), the upper triangle listed row by row
    (``np.triu_indices(d)`` order), ``d(d+1)/2`` values per block.

    Returns
    -------
    phi : ndarray ``(n, k*d*(d+1)/2)``
    """
    X = np.asarray(X)
    n, d = X.shape
    R = normalized_residuals(X, anchors)
    iu, ju = np.triu_indices(d)
    phi = R[:, :, iu] * R[:, :, ju]
    phi *= np.asarray(gamma, dtype=X.dtype)[:, :, None]
    return phi.reshape(n, -1)


class FFAEmbedding(_WhitenedEmbedding):
    """F-FAemb (Eq. 7) with the whitening of the authors' ``projection_learn_batch.m``.

    ``phi(x) = P_emb (psi(x) - Xmean)`` with ``psi`` from :func:`ffa_raw_embedding` and the
    coefficients of :func:`ffa_coefficients`; ``covD`` is divided by ``n - 1`` and the
    ``eig_clamp`` smallest eigenvalues are raised to the next one
    (``eigval(end-128:end) = eigval(end-128)`` in ``main.m``).

    Parameters
    ----------
    n_centroids : int
        Number of anchor points ``|C|`` (k-means under ``random_state``; the authors pick the
        best of 5 k-means runs by the FA objective, here scikit-learn keeps the best of
        ``kmeans_n_init`` runs by inertia).
    anchors : ndarray ``(k, d)`` or None
        Explicit anchors.
    mu : float, default 1e-2
        Regularisation of the coefficients (the authors' recommended value).
    eig_clamp : int, default 128
    codebook_max_samples, kmeans_n_init, kmeans_max_iter, max_samples, random_state : see
        :class:`TriangulationEmbedding`.

    Attributes
    ----------
    anchors_, mean_, eigvec_, eigval_raw_, eigval_, projection_, n_features_in_,
    embed_dim_ (``k d (d+1)/2``).
    """

    name = "ffaemb"
    _label = "F-FAemb"
    codebook_param = "anchors"
    _learned = ("anchors_", "mean_", "projection_")

    def __init__(self, n_centroids=10, anchors=None, mu=1e-2, eig_clamp=128,
                 codebook_max_samples=100_000, kmeans_n_init=5, kmeans_max_iter=100,
                 max_samples=None, random_state=0):
        self.max_samples = max_samples
        self.n_centroids = n_centroids
        self.anchors = anchors
        self.mu = mu
        self.eig_clamp = eig_clamp
        self.codebook_max_samples = codebook_max_samples
        self.kmeans_n_init = kmeans_n_init
        self.kmeans_max_iter = kmeans_max_iter
        self.random_state = random_state

    @classmethod
    def block_dim(cls, d):
        return int(d) * (int(d) + 1) // 2

    @classmethod
    def default_truncate(cls, d):
        """``d (d+1)`` components dropped after the rotation (Sec. 5.2.1)."""
        return int(d) * (int(d) + 1)

    @classmethod
    def _chunk(cls, D):
        return max(1, _CHUNK * 64 // max(D // 64, 1))

    @classmethod
    def _scale(cls, n):
        return float(n - 1)  # projection_learn_batch.m divides covD by (m - 1)

    def _embed(self, X, codebook):
        return ffa_raw_embedding(X, codebook, ffa_coefficients(X, codebook, self.mu))

    @classmethod
    def from_params(cls, anchors, mean, projection, mu=1e-2):
        """A fitted instance from anchors ``(k, d)``, ``Xmean`` and ``P_emb``."""
        return cls._from_learned(anchors, mean, projection, mu=mu)

    def coefficients(self, X):
        """The closed-form ``gamma`` ``(n, k)`` of every local feature (always float64)."""
        X = _transform_input(self, X)
        return ffa_coefficients(X, self.anchors_, self.mu)

    def raw_embedding(self, X):
        """``psi(X)`` before mean removal and whitening ``(n, D)`` (``fa_embedding.c``), in the
        precision of ``X`` (the coefficients are computed in float64, then cast)."""
        X = _transform_input(self, X)
        g = ffa_coefficients(X, self.anchors_, self.mu).astype(X.dtype)
        return ffa_raw_embedding(X, self.anchors_, g)

    def _centred(self, X):
        Z = self.raw_embedding(X)
        Z -= as_dtype(self.mean_, Z.dtype)
        return Z


# ----------------------------------------------------------------------------------------------
# Eq. 5: VLAD
# ----------------------------------------------------------------------------------------------
def nearest_centroid(X, centroids):
    """Index of the nearest centroid (squared L2) of every row; ties to the lower index."""
    X = np.asarray(X)
    C = np.asarray(centroids, dtype=X.dtype)
    d2 = (C * C).sum(axis=1)[None, :] - 2 * (X @ C.T)  # ||x||^2 is common to all centroids
    return np.argmin(d2, axis=1)


class VLAD(Embedding):
    """VLAD embedding of each local feature (Eq. 5), before aggregation.

    Block ``j`` of ``phi(x)`` is ``x - c_j`` if ``c_j`` is the nearest visual word, else 0.
    Sum-pooling these vectors gives the (unnormalised) VLAD of VLFeat's
    ``vl_vlad(..., 'unnormalized')`` used by the authors, layout ``[cell 1; ...; cell k]``.

    Parameters
    ----------
    n_centroids : int
    centroids : ndarray ``(k, d)`` or None
    codebook_max_samples, kmeans_n_init, kmeans_max_iter, random_state :
        see :class:`TriangulationEmbedding`.

    Attributes
    ----------
    centroids_ ``(k, d)``, n_features_in_, embed_dim_ (``k*d``).
    """

    name = "vlad"
    _learned = ("centroids_",)

    def __init__(self, n_centroids=64, centroids=None, codebook_max_samples=100_000,
                 kmeans_n_init=2, kmeans_max_iter=100, random_state=0):
        self.n_centroids = n_centroids
        self.centroids = centroids
        self.codebook_max_samples = codebook_max_samples
        self.kmeans_n_init = kmeans_n_init
        self.kmeans_max_iter = kmeans_max_iter
        self.random_state = random_state

    @classmethod
    def block_dim(cls, d):
        return int(d)

    def fit(self, X, y=None):
        X = _fit_input(self, X)
        C = _codebook(self, X, self.centroids, self.n_centroids)
        self.centroids_ = C
        self.embed_dim_ = C.size
        return self

    @classmethod
    def from_params(cls, centroids):
        """A fitted instance from a codebook ``(k, d)``."""
        C = np.atleast_2d(np.asarray(centroids, dtype=np.float64))
        return cls(n_centroids=C.shape[0], centroids=C).fit(C)

    def assign(self, X):
        """Nearest visual word of each local feature ``(n,)``."""
        X = _transform_input(self, X)
        return nearest_centroid(X, self.centroids_)

    def transform(self, X):
        """``phi(X)`` ``(n, k*d)``: the residual to the nearest visual word in its block."""
        X = _transform_input(self, X)
        return _vlad_embed(X, as_dtype(self.centroids_, X.dtype))


def _vlad_embed(X, C):
    n, d = X.shape
    k = C.shape[0]
    nn = nearest_centroid(X, C)
    out = np.zeros((n, k, d), dtype=X.dtype)
    out[np.arange(n), nn] = X - C[nn]
    return out.reshape(n, k * d)


# ----------------------------------------------------------------------------------------------
# Eq. 4: Fisher vector
# ----------------------------------------------------------------------------------------------
def fisher_posteriors(X, means, variances, priors):
    """GMM posteriors ``p_i(x)`` ``(n, k)`` for diagonal covariances, as VLFeat's ``vl_fisher``.

    ``log p_i = log w_i - 1/2 sum log var_i - 1/2 ||(x - mu_i)/sigma_i||^2`` (the constant
    ``d/2 log 2 pi`` cancels), normalised with the max-shift (log-sum-exp) trick.
    """
    X = np.asarray(X)
    mu = np.asarray(means, dtype=X.dtype)
    var = np.asarray(variances, dtype=X.dtype)
    w = np.asarray(priors, dtype=X.dtype).ravel()
    iv = 1.0 / var
    # Mahalanobis distance expanded: sum x^2/var - 2 x mu/var + mu^2/var
    maha = (X * X) @ iv.T - 2 * X @ (mu * iv).T + (mu * mu * iv).sum(axis=1)[None, :]
    logp = np.log(w)[None, :] - 0.5 * np.log(var).sum(axis=1)[None, :] - 0.5 * maha
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    p /= p.sum(axis=1, keepdims=True)
    return p


class FisherVector(Embedding):
    """Fisher vector of each local feature (Eq. 4), diagonal GMM, before aggregation.

    ``u_i = p_i(x) / sqrt(w_i) (x - mu_i)/sigma_i`` and
    ``v_i = p_i(x) / sqrt(2 w_i) [((x - mu_i)/sigma_i)^2 - 1]``, laid out
    ``[u_1..u_k, v_1..v_k]``. Average pooling of these vectors equals VLFeat's
    ``vl_fisher(x, means, covariances, priors)`` with default options (the authors' 'fv'),
    including VLFeat 0.9.21's rule that a posterior below ``1e-6`` counts as 0 (without
    renormalising the others; without it the result differs from ``vl_fisher`` by ~4e-7).

    Parameters
    ----------
    n_centroids : int
        Number of Gaussians ``|C|``.
    means, covariances, priors : ndarrays ``(k, d)``, ``(k, d)`` (diagonal VARIANCES), ``(k,)``
        An explicit GMM (all three or none).
    codebook_max_samples : int or None, default 100000
        The GMM is fitted on a seeded sample of at most this many local features.
    reg_covar : float, default 1e-6
        Passed to :class:`sklearn.mixture.GaussianMixture` (diagonal, seeded).
    max_iter : int, default 100
    posterior_threshold : float, default 1e-6
        Posteriors below this are set to 0 in the encoding (VLFeat 0.9.21).
    random_state : int, default 0

    Attributes
    ----------
    means_, covariances_, priors_, n_features_in_, embed_dim_ (``2 k d``), n_iter_ (EM
    iterations of the GMM, 0 when it is given).
    """

    name = "fv"
    codebook_param = "means"
    _learned = ("means_", "covariances_", "priors_")

    def __init__(self, n_centroids=64, means=None, covariances=None, priors=None,
                 codebook_max_samples=100_000, reg_covar=1e-6, max_iter=100,
                 posterior_threshold=1e-6, random_state=0):
        self.n_centroids = n_centroids
        self.posterior_threshold = posterior_threshold
        self.means = means
        self.covariances = covariances
        self.priors = priors
        self.codebook_max_samples = codebook_max_samples
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.random_state = random_state

    @classmethod
    def block_dim(cls, d):
        return 2 * int(d)

    def fit(self, X, y=None):
        X = _fit_input(self, X)
        given = [p is not None for p in (self.means, self.covariances, self.priors)]
        if any(given) and not all(given):
            raise ValueError("give all of means, covariances and priors, or none")
        if all(given):
            mu = np.atleast_2d(np.asarray(self.means, dtype=np.float64))
            var = np.atleast_2d(np.asarray(self.covariances, dtype=np.float64))
            w = np.asarray(self.priors, dtype=np.float64).ravel()
            if mu.shape != var.shape or mu.shape[0] != w.shape[0] or mu.shape[1] != X.shape[1]:
                raise ValueError(f"inconsistent GMM shapes: means {mu.shape}, covariances "
                                 f"{var.shape}, priors {w.shape}, local features {X.shape}")
            self.n_iter_ = 0
        else:
            k = int(self.n_centroids)
            n = X.shape[0]
            if n < k:
                raise ValueError(f"a GMM of {k} Gaussians needs at least {k} training local "
                                 f"features, got n_samples = {n}")
            Xs = X[sample_indices(n, self.codebook_max_samples, self.random_state)]
            gmm = GaussianMixture(n_components=k, covariance_type="diag", reg_covar=self.reg_covar,
                                  max_iter=self.max_iter, random_state=self.random_state)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning on tiny sets
                gmm.fit(Xs)
            mu, var, w = gmm.means_, gmm.covariances_, gmm.weights_
            self.n_iter_ = gmm.n_iter_
        if np.any(var <= 0) or np.any(w <= 0):
            raise ValueError("GMM variances and priors must be positive")
        self.means_ = np.ascontiguousarray(mu)
        self.covariances_ = np.ascontiguousarray(var)
        self.priors_ = w
        self.embed_dim_ = 2 * mu.size
        return self

    @classmethod
    def from_params(cls, means, covariances, priors):
        """A fitted instance from a diagonal GMM: means ``(k, d)``, variances ``(k, d)``,
        priors ``(k,)``."""
        mu = np.atleast_2d(np.asarray(means, dtype=np.float64))
        return cls(n_centroids=mu.shape[0], means=mu, covariances=covariances,
                   priors=priors).fit(mu)

    def posteriors(self, X):
        """GMM posteriors ``(n, k)`` of every local feature (:func:`fisher_posteriors`)."""
        X = _transform_input(self, X)
        return fisher_posteriors(X, self.means_, self.covariances_, self.priors_)

    def transform(self, X):
        """``phi(X)`` ``(n, 2 k d)``: the ``[u_1..u_k, v_1..v_k]`` vector of every local feature."""
        X = _transform_input(self, X)
        dt = X.dtype
        return _fv_embed(X, as_dtype(self.means_, dt), as_dtype(self.covariances_, dt), as_dtype(self.priors_, dt),
                         self.posterior_threshold)


def _fv_embed(X, mu, var, w, threshold=1e-6):
    n, d = X.shape
    k = mu.shape[0]
    p = fisher_posteriors(X, mu, var, w)  # (n, k)
    if threshold:
        p[p < threshold] = 0
    z = (X[:, None, :] - mu[None, :, :]) / np.sqrt(var)[None, :, :]  # (n, k, d)
    out = np.empty((n, 2, k, d), dtype=X.dtype)
    out[:, 0] = (p / np.sqrt(w)[None, :])[:, :, None] * z
    out[:, 1] = (p / np.sqrt(2 * w)[None, :])[:, :, None] * (z * z - 1)
    return out.reshape(n, 2 * k * d)


#: The registry: name -> embedding class (Sec. 4.2, Eqs. 4-7).
EMBEDDINGS = {cls.name: cls for cls in (FisherVector, VLAD, TriangulationEmbedding, FFAEmbedding)}


def embedding_class(embedding):
    """The embedding class of a name in :data:`EMBEDDINGS`, of an instance, or a class itself.

    Raises
    ------
    ValueError
        If ``embedding`` is none of these.
    """
    if isinstance(embedding, type) and issubclass(embedding, Embedding):
        return embedding
    if isinstance(embedding, Embedding):
        return type(embedding)
    cls = EMBEDDINGS.get(str(embedding).lower())
    if cls is None:
        raise ValueError(f"unknown embedding {embedding!r}; choose one of {tuple(EMBEDDINGS)} or "
                         "an instance of " + ", ".join(c.__name__ for c in EMBEDDINGS.values()))
    return cls


def make_embedding(name, d, n_centroids, random_state=0, **kwargs):
    """The embedding estimator called ``name`` (``"fv"``, ``"vlad"``, ``"temb"``, ``"ffaemb"``).

    ``n_centroids`` is ``|C|`` of Tables 2 and 4 (codebook size, GMM size or number of anchors);
    ``d`` is the dimension of the local features it will be fitted on (used to check that the
    embedding has at least one component).
    """
    cls = embedding_class(name)
    if cls.output_dim(d, n_centroids) <= 0:
        raise ValueError(f"{cls.name} with d={d}, |C|={n_centroids} has no component")
    return cls(n_centroids=n_centroids, random_state=random_state, **kwargs)
