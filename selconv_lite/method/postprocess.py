"""Post-processing (Sec. 4.4): power-law, L2, rotation normalisation, truncation.

Vectors are ROWS: a set of image vectors is ``(n, D)``. These reproduce the authors'
``vecpostproc.m``, ``learn_rn.m`` (with ``yael_pca.m``) and the per-image lines of ``main.m``
(golden file g).

The ``l2`` step is :func:`selconv_lite.core.utils.l2_normalize` (the same function, importable
from here with the other steps of Sec. 4.4); the PCA and its completion to a rotation are
:func:`selconv_lite.method.linalg.pca` and :func:`selconv_lite.method.linalg.complete_rotation`.
"""
from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

from .base import FloatTransformer, as_dtype
from .linalg import complete_rotation, pca
from ..core.utils import l2_normalize

__all__ = ["power_law", "l2_normalize", "RotationNormalization", "truncate"]


def power_law(x, alpha=0.5):
    """Power-law normalisation ``PN(x) = sign(x) |x|^alpha`` (Sec. 4.4, [28]).

    ``alpha = 0`` gives ``sign(x)`` with ``0 -> 0`` (as MATLAB's ``sign(v).*abs(v).^0``).
    The paper fixes ``alpha = 0.5``.
    """
    x = np.asarray(x)
    if not 0 <= alpha <= 1:
        raise ValueError(f"power-law alpha must be in [0, 1], got {alpha}")
    if alpha == 1:
        return x.copy()
    if alpha == 0:
        return np.sign(x)
    return np.sign(x) * np.abs(x) ** alpha


def truncate(x, n):
    """Drop the first ``n`` components (Sec. 5.2.1: 128 for T-emb, ``d(d+1)`` for F-FAemb)."""
    x = np.asarray(x)
    n = int(n)
    if n < 0 or n >= x.shape[-1]:
        raise ValueError(f"cannot truncate {n} of {x.shape[-1]} components")
    return x[..., n:]


class RotationNormalization(FloatTransformer):
    """Rotation normalisation (Sec. 4.4): the authors' ``learn_rn`` and its per-image use.

    ``fit`` learns a PCA of the (L2-normalised) aggregated training vectors with
    ``min(n_components, D)`` components as ``yael_pca`` does (covariance ``Xc'Xc/n`` when
    ``n > D``, Gram matrix otherwise), then completes the eigenvectors to a full rotation:
    ``P = Q`` of ``qr([eigvec, eye(D, D - m)])``. ``transform`` is ``(v - Xm) @ P``, i.e.
    ``P' (v - Xm)`` per image, without its first ``truncate`` components.

    Parameters
    ----------
    n_components : int, default 1024
        PCA components learned before the completion (``dpca = 1024`` in ``learn_rn.m``).
    rank_tol : float, default 1e-10
        On the Gram path, components with eigenvalue ``<= rank_tol * largest`` are dropped
        before the completion: with ``n <= D`` the centred Gram has rank ``n - 1`` and its last
        eigenvector is rounding noise (the authors keep it; see golden README, file g).
    truncate : int, default 0
        Components dropped after the rotation (Sec. 5.2.1: 128 for T-emb, ``d(d+1)`` for
        F-FAemb): ``transform`` returns ``(v - Xm) @ P[:, truncate:]`` (see :func:`truncate`).

    Attributes
    ----------
    mean_ : ``(D,)`` (``Xm``); eigvec_ : ``(D, m)``; eigval_ : ``(m,)`` (covariance scale on both
    paths; ``yael_pca``'s Gram-path eigenvalues are ``n`` times larger); rotation_ : ``(D, D)``
    (``P``, orthogonal); n_features_in_ : ``D``.
    """

    _learned = ("mean_", "rotation_")

    def __init__(self, n_components=1024, rank_tol=1e-10, truncate=0):
        self.n_components = n_components
        self.rank_tol = rank_tol
        self.truncate = truncate

    def fit(self, X, y=None):
        """Learn ``Xm``, the PCA (:func:`~selconv_lite.method.linalg.pca`, as ``yael_pca``) and
        the rotation ``P`` (:func:`~selconv_lite.method.linalg.complete_rotation`).

        Parameters
        ----------
        X : array-like ``(n, D)``
            The L2-normalised aggregated training vectors (at least 2).
        y : ignored

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        n, D = X.shape
        if not 0 <= int(self.truncate) < D:
            raise ValueError(f"truncate={self.truncate} must be in [0, {D}) for {D}-dim vectors")
        mean, w, V = pca(X, self.n_components, self.rank_tol)  # yael_pca.m
        self.mean_ = mean
        self.eigvec_ = V
        self.eigval_ = w
        self.rotation_ = complete_rotation(V, D)
        return self

    @classmethod
    def from_params(cls, mean, rotation=None, eigvec=None):
        """A fitted instance from ``Xm`` and either the rotation ``P`` or the eigenvectors."""
        est = cls()
        est.mean_ = np.asarray(mean, dtype=np.float64).ravel()
        D = est.mean_.shape[0]
        if rotation is None:
            if eigvec is None:
                raise ValueError("give rotation or eigvec")
            est.eigvec_ = np.asarray(eigvec, dtype=np.float64)
            rotation = complete_rotation(est.eigvec_, D)
        est.rotation_ = np.asarray(rotation, dtype=np.float64)
        est.n_features_in_ = D
        return est

    def transform(self, X):
        """``(X - Xm) @ P[:, truncate:]`` ``(n, D - truncate)``: row ``i`` is ``P' (x_i - Xm)``
        without its first ``truncate`` components, in the precision of ``X`` (float64/float32)."""
        X = self._validate_transform_input(X)
        P = self.rotation_[:, int(self.truncate):]
        return (X - as_dtype(self.mean_, X.dtype)) @ as_dtype(P, X.dtype)
