"""Small numerical helpers shared by the method modules.

Everything here is plain numpy. The helpers are hand-written (rather than taken from
scikit-learn) because each reproduces one precise convention of the authors' MATLAB code,
e.g. MATLAB's ``round`` (half away from zero) or ``yael_vecs_normalize`` followed by
``replacenan`` (a zero vector stays zero instead of becoming NaN).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "round_half_away",
    "l2_normalize",
    "align_signs",
    "check_finite",
    "sample_indices",
    "as_float",
]


def round_half_away(x):
    """MATLAB's ``round``: to the nearest integer, halves away from zero.

    ``np.round`` rounds halves to even (``np.round(2.5) == 2``), MATLAB gives 3; the SIFT
    mask of the authors' code depends on it (golden files a1/a2).
    """
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def l2_normalize(X, copy=True):
    """L2 normalisation of a vector ``(D,)`` or of each row of ``(n, D)``; zero stays zero.

    The L2 steps of the method (Sec. 4.1 after PCA, Sec. 4.4 in the post-processing, the
    baselines). The authors' ``vecpostproc`` is ``replacenan(yael_vecs_normalize(x))``:
    dividing a zero vector by its zero norm gives NaN, which is then replaced by 0. Here the
    zero norm is replaced by 1 before the division, which gives the same result without the NaN.

    Parameters
    ----------
    X : array-like ``(D,)`` or ``(n, D)``
    copy : bool, default True
        ``False`` normalises the rows of a float ndarray in place (and returns it).

    Returns
    -------
    ndarray of the shape of ``X``
    """
    X = np.array(X, copy=copy)
    if X.ndim == 1:
        n = np.sqrt(np.dot(X, X))
        return X / n if n > 0 else X * 0
    n = np.sqrt(np.einsum("ij,ij->i", X, X))
    n[n == 0] = 1
    X /= n[:, None]
    return X


def align_signs(A, ref, axis=0):
    """Flip the signs of the columns (``axis=0``) or rows (``axis=1``) of ``A`` to match ``ref``.

    Each column of ``A`` is multiplied by ``sign(<a_j, ref_j>)`` (a zero product keeps the
    sign). Eigenvectors are only defined up to sign; this is how a re-implementation is
    compared with eigenvectors stored from MATLAB/Octave.
    """
    A = np.asarray(A)
    ref = np.asarray(ref)
    if axis == 1:
        return align_signs(A.T, ref.T, axis=0).T
    s = np.sign(np.einsum("ij,ij->j", A.astype(np.float64), ref.astype(np.float64)))
    s[s == 0] = 1
    return A * s[None, :]


def check_finite(arr, what, name=""):
    """Raise ``ValueError`` naming ``what`` (and the image ``name``) if ``arr`` has NaN/inf."""
    arr = np.asarray(arr)
    # one cheap reduction first: a NaN/inf anywhere makes the sum non-finite
    if arr.dtype.kind == "f" and not np.isfinite(arr.sum()) and not np.isfinite(arr).all():
        where = f" of image {name!r}" if name else ""
        bad = "NaN" if np.isnan(arr).any() else "infinite values"
        raise ValueError(f"{what}{where} contains {bad}; clean the input (the method cannot "
                         f"embed non-finite activations)")


def sample_indices(n, max_samples, random_state=0):
    """Sorted indices of a seeded uniform sample of ``min(n, max_samples)`` rows out of ``n``.

    ``max_samples=None`` keeps everything (the authors' behaviour). Sorting keeps the
    original row order, so a sample equal to the full set gives the identity.
    """
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=int(max_samples), replace=False))


def as_float(X, dtype=np.float64):
    """``np.asarray(X, dtype)`` as a 2-D C-contiguous array (a 1-D input becomes one row)."""
    X = np.asarray(X, dtype=dtype)
    if X.ndim == 1:
        X = X[None, :]
    return np.ascontiguousarray(X)
