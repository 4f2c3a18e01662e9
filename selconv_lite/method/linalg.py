"""The linear algebra of the method, in one place: centred covariance, descending
eigen-decomposition, PCA (covariance or Gram path), eigenvalue clamping, whitening and the
completion of a PCA to a full rotation.

Every estimator that learns a projection uses these functions:

* :class:`~selconv_lite.method.embeddings.PCAL2` (Sec. 4.1, the authors' ``main.m``):
  :func:`centred_covariance`, :func:`eigh_descending`, :func:`sign_by_largest`;
* :class:`~selconv_lite.method.embeddings.TriangulationEmbedding` and
  :class:`~selconv_lite.method.embeddings.FFAEmbedding` (Sec. 4.2, ``triemb_learn.m`` /
  ``projection_learn_batch.m``): :func:`centred_covariance` (chunked, over the embedded
  vectors), :func:`eigh_descending`, :func:`clamp_smallest`, :func:`whitening_matrix`;
* :class:`~selconv_lite.method.postprocess.RotationNormalization` (Sec. 4.4, ``learn_rn.m`` and
  ``yael_pca.m``): :func:`pca` (covariance path when ``n > D``, Gram path otherwise) and
  :func:`complete_rotation`;
* :class:`~selconv_lite.method.baselines.PCAWhitening` (Table 6 baselines):
  :func:`centred_scatter`, :func:`symmetrize`, :func:`eigh_descending`,
  :func:`whitening_matrix`.

The operations and their order are those of the authors' code (e.g. the covariance is
symmetrised as ``(C + C') / (2 n)``), so that the estimators reproduce the golden files to the
last digits; fitting is in float64. Eigenvector signs are implementation defined (see
:func:`selconv_lite.core.utils.align_signs` to compare with stored eigenvectors).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from ..core.utils import l2_normalize

__all__ = [
    "centred_scatter",
    "symmetrize",
    "centred_covariance",
    "eigh_descending",
    "pca",
    "clamp_smallest",
    "whitening_matrix",
    "complete_rotation",
    "sign_by_largest",
]


def _blocks(X, chunk, rows, transform):
    """``transform(X[rows][s:s + chunk])`` for consecutive ``s`` (the whole set when ``chunk`` is
    None), so that a large training set (or its embedding) is never held in memory at once."""
    n = X.shape[0] if rows is None else rows.shape[0]
    step = n if chunk is None else max(1, int(chunk))
    for s in range(0, n, step):
        B = X[s:s + step] if rows is None else X[rows[s:s + step]]
        yield B if transform is None else transform(B)


def centred_scatter(X, chunk=None, rows=None, transform=None):
    """Mean and scatter matrix of the rows of ``X``, in float64, in two chunked passes.

    ``mean = sum_i z_i / n`` and ``S = sum_i (z_i - mean)(z_i - mean)'`` with ``z_i`` the rows of
    ``transform(X[rows])`` (``X[rows]`` without ``transform``, all rows without ``rows``).

    Parameters
    ----------
    X : ndarray ``(N, K)``
    chunk : int or None, default None
        Rows per block (memory ``O(chunk * D + D^2)``); ``None``: one block.
    rows : ndarray of int or None, default None
        The rows of ``X`` to use (e.g. a seeded sample), in this order.
    transform : callable or None, default None
        Applied to each block ``(b, K)`` -> ``(b, D)`` (e.g. an embedding).

    Returns
    -------
    mean : ndarray ``(D,)``
    S : ndarray ``(D, D)``
        Not divided by ``n`` and not symmetrised (see :func:`symmetrize`).
    """
    n = X.shape[0] if rows is None else rows.shape[0]
    if n < 1:
        raise ValueError("the mean and covariance need at least one row, got 0")
    mean = None
    for B in _blocks(X, chunk, rows, transform):
        s = B.sum(axis=0, dtype=np.float64)
        if mean is None:
            mean = np.zeros(s.shape[0])
        mean += s
    mean /= n
    S = np.zeros((mean.shape[0], mean.shape[0]))
    for B in _blocks(X, chunk, rows, transform):
        Z = B.astype(np.float64, copy=False) - mean
        S += Z.T @ Z
    return mean, S


def symmetrize(S, scale=1):
    """``(S + S') / (2 scale)``: the authors' symmetrised (and scaled) covariance."""
    return (S + S.T) / (2 * scale)


def centred_covariance(X, scale=None, chunk=None, rows=None, transform=None):
    """Mean and symmetrised covariance ``(S + S') / (2 scale)`` of the rows (:func:`centred_scatter`).

    Parameters
    ----------
    X, chunk, rows, transform : see :func:`centred_scatter`.
    scale : float or None, default None
        The divisor: ``None`` is the number of rows ``n`` (the biased covariance of ``main.m``
        and ``yael_pca.m``); ``n - 1`` in ``projection_learn_batch.m`` (F-FAemb); ``1`` in
        ``triemb_learn.m`` (T-emb, the scatter matrix itself).

    Returns
    -------
    mean : ndarray ``(D,)``
    cov : ndarray ``(D, D)``
    """
    mean, S = centred_scatter(X, chunk, rows, transform)
    if scale is None:
        scale = X.shape[0] if rows is None else rows.shape[0]
    return mean, symmetrize(S, scale)


def eigh_descending(S, n_top=None):
    """Eigen-decomposition of a symmetric matrix, eigenvalues in DEcreasing order.

    The authors call MATLAB ``eig`` and reverse its (increasing) order.

    Parameters
    ----------
    S : ndarray ``(D, D)``, symmetric
    n_top : int or None, default None
        Compute only the ``n_top`` largest eigenpairs (``scipy.linalg.eigh`` with
        ``subset_by_index``); ``None`` or ``>= D``: all of them (``numpy.linalg.eigh``).

    Returns
    -------
    w : ndarray ``(m,)``
        Eigenvalues, decreasing.
    V : ndarray ``(D, m)``
        Eigenvectors in the columns (signs implementation defined).
    """
    D = S.shape[0]
    if n_top is not None and int(n_top) < D:
        w, V = scipy.linalg.eigh(S, subset_by_index=[D - int(n_top), D - 1])
    else:
        w, V = np.linalg.eigh(S)
    return w[::-1].copy(), V[:, ::-1].copy()


def pca(X, n_components=None, rank_tol=1e-10):
    """PCA of the rows of ``X`` as the authors' ``yael_pca``: covariance path when ``n > D``,
    Gram path otherwise.

    * covariance path: eigen-decomposition of ``(Xc'Xc + (Xc'Xc)') / (2 n)`` (its top
      ``n_components`` eigenpairs only when fewer than ``D``);
    * Gram path (``n <= D``): eigen-decomposition of the ``(n, n)`` Gram matrix
      ``G = (Xc Xc' + (Xc Xc')') / 2``; the eigenvectors are ``L2(Xc' u)`` and the eigenvalues
      are divided by ``n`` (the covariance scale; ``yael_pca`` returns them ``n`` times
      larger). Eigenvalues ``<= rank_tol * largest`` are dropped: the centred Gram has rank at
      most ``n - 1`` and its last eigenvector is rounding noise.

    Parameters
    ----------
    X : ndarray ``(n, D)`` float64
    n_components : int or None, default None
        Components kept (``None``: ``D``).
    rank_tol : float, default 1e-10
        The Gram path's rank threshold, relative to the largest eigenvalue.

    Returns
    -------
    mean : ndarray ``(D,)``
    eigval : ndarray ``(m,)``
        Decreasing, covariance scale on both paths.
    eigvec : ndarray ``(D, m)``
        Orthonormal columns.
    """
    n, D = X.shape
    m = min(int(n_components), D) if n_components else D
    if n > D:
        mean, cov = centred_covariance(X)
        w, V = eigh_descending(cov, n_top=m)
        return mean, w, V
    mean = X.mean(axis=0)
    Xc = X - mean
    w, U = eigh_descending(symmetrize(Xc @ Xc.T))
    keep = w > rank_tol * max(w[0], 0)
    keep[min(m, n):] = False
    w, U = w[keep], U[:, keep]
    V = np.ascontiguousarray(l2_normalize((Xc.T @ U).T, copy=False).T)
    return mean, w / n, V


def clamp_smallest(eigval, n_clamp):
    """The ``n_clamp`` smallest eigenvalues raised to the next one (a copy):
    ``eigval(end-n_clamp:end) = eigval(end-n_clamp)`` in the authors' ``main.m`` (32 for T-emb,
    128 for F-FAemb). ``eigval`` is in decreasing order; ``n_clamp <= 0`` changes nothing."""
    ev = np.array(eigval, dtype=np.float64)
    if n_clamp > 0:
        j = max(ev.shape[0] - 1 - int(n_clamp), 0)
        ev[j:] = ev[j]
    return ev


def whitening_matrix(eigval, eigvec):
    """The whitening ``P = diag(eigval^-1/2) V'`` ``(m, D)`` from eigenvalues ``(m,)`` (positive)
    and eigenvectors ``V`` ``(D, m)``: ``P (x - mean)`` has unit variance along each component."""
    return eigvec.T / np.sqrt(eigval)[:, None]


def complete_rotation(V, D=None):
    """``Q`` of ``qr([V, eye(D, D - m)])``: an orthogonal ``(D, D)`` matrix whose first ``m``
    columns are ``+-V`` (the authors' ``learn_rn.m``: the PCA completed to a full rotation).

    Parameters
    ----------
    V : ndarray ``(D, m)``
        Orthonormal columns.
    D : int or None
        Dimension (``V.shape[0]`` when None).
    """
    D = V.shape[0] if D is None else int(D)
    m = V.shape[1]
    A = np.zeros((D, D))
    A[:, :m] = V
    A[np.arange(D - m), m + np.arange(D - m)] = 1.0
    Q, _ = np.linalg.qr(A)
    return Q


def sign_by_largest(V):
    """``V`` ``(D, m)`` with each column's sign chosen so that its entry of largest magnitude is
    positive (a deterministic sign for eigenvectors, whose sign is implementation defined)."""
    flip = np.sign(V[np.abs(V).argmax(axis=0), np.arange(V.shape[1])])
    flip[flip == 0] = 1
    return V * flip
