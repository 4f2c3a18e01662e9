"""Base class of the method's scikit-learn transformers on rows of floats, and the reading of
the images given to the estimators that take feature maps (pipeline, baselines).

:class:`FloatTransformer` is the base of PCA+L2 and the embeddings
(:mod:`selconv_lite.method.embeddings`) and of the rotation normalisation
(:mod:`selconv_lite.method.postprocess`): fitting is in float64, ``transform`` computes in the
precision of its input (float64 or float32), and :meth:`FloatTransformer.astype` gives a copy
whose learned arrays are already cast, so that a float32 online stage does not cast them again
for every image.
"""
from __future__ import annotations

import copy

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..core.types import ImageFeatures

__all__ = ["FLOATS", "FloatTransformer", "as_dtype", "as_images"]

#: The precisions ``transform`` computes in (anything else is converted to float64).
FLOATS = (np.float64, np.float32)


def as_dtype(a, dtype):
    """A learned array in the precision of the computation (no copy when it already is)."""
    return np.asarray(a).astype(dtype, copy=False)


class FloatTransformer(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer whose ``transform`` keeps float32 input in float32 (fitting
    is in float64); :meth:`astype` casts the learned arrays once for a float32 online stage.

    Subclasses list their learned arrays in ``_learned`` and validate the input of
    ``transform`` with :meth:`_validate_transform_input`.
    """

    #: Learned arrays that :meth:`astype` casts.
    _learned = ()
    #: Of those, the ones used transposed (``X @ A.T``): cast to Fortran order, so that ``A.T``
    #: is C-contiguous (BLAS multiplies by it ~20% faster than by a transposed C array).
    _used_transposed = ("components_", "projection_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate_transform_input(self, X):
        """``X`` for ``transform``: ``NotFittedError`` before ``fit``; 2-D, non-empty, finite, of
        the fitted width; float64 or float32 kept (the precision of the computation).

        A float ndarray that already is all that is returned as is after one cheap check (a
        finite sum means no NaN/inf), because scikit-learn's ``validate_data`` costs about a
        millisecond per call, as much as embedding one image's local features; anything else
        goes through ``validate_data`` (conversions, scikit-learn's error messages).
        """
        check_is_fitted(self)
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype in FLOATS and X.shape[0] > 0
                and X.shape[1] == self.n_features_in_ and not hasattr(self, "feature_names_in_")
                and np.isfinite(X.sum())):
            return X
        return validate_data(self, X, reset=False, dtype=FLOATS)

    def astype(self, dtype):
        """A copy whose learned arrays are in ``dtype`` (``transform`` then runs in ``dtype``
        on inputs of that precision without casting them again).

        Parameters
        ----------
        dtype : numpy dtype or str
            ``float32`` or ``float64``.

        Returns
        -------
        FloatTransformer
            A shallow copy of this fitted estimator with its ``_learned`` arrays cast.
        """
        check_is_fitted(self)
        out = copy.copy(self)
        for attr in self._learned:
            if hasattr(self, attr):
                order = "F" if attr in self._used_transposed else "C"
                setattr(out, attr, np.asarray(getattr(self, attr), dtype=dtype, order=order))
        return out


def as_images(est, images, reset):
    """The images given to an estimator that takes feature maps, as a list of
    :class:`~selconv_lite.core.types.ImageFeatures`.

    Parameters
    ----------
    est : estimator
        Its ``n_features_in_`` is set (``reset``) or checked from a 2-D array.
    images : ImageFeatures, ``(H, W, K)`` map, iterable of those, ``(n, H, W, K)`` or ``(n, K)`` array
        A 2-D array ``(n, K)`` (or a list of ``n`` rows) is ``n`` feature maps of a single
        location (``1 x 1 x K``, one local feature each), checked as scikit-learn checks its
        inputs (2-D, finite, non-empty; of the fitted width unless ``reset``).
    reset : bool
        True in ``fit``, False in ``transform``.

    Returns
    -------
    list of ImageFeatures
        Raw maps get the name ``"map i"``, rows ``"row i"`` (for error messages).
    """
    if hasattr(images, "fmap"):
        return [images]
    if isinstance(images, (list, tuple)):
        if not images or hasattr(images[0], "fmap") or np.ndim(images[0]) >= 3:
            return [_image(im, i) for i, im in enumerate(images)]
    elif not (hasattr(images, "__array__") or hasattr(images, "shape") or issparse(images)):
        return [_image(im, i) for i, im in enumerate(images)]  # any other iterable of images
    if not issparse(images):
        a = np.asarray(images)
        if a.ndim in (3, 4):
            return [_image(m, i) for i, m in enumerate(a[None] if a.ndim == 3 else a)]
    X = validate_data(est, images, reset=reset, dtype=FLOATS)
    return [ImageFeatures(x[None, None, :], (1, 1), name=f"row {i}") for i, x in enumerate(X)]


def _image(im, i):
    """``im`` itself if it is an ImageFeatures, else the raw map wrapped in one."""
    if hasattr(im, "fmap"):
        return im
    fmap = np.asarray(im)
    return ImageFeatures(fmap, tuple(fmap.shape[:2]), name=f"map {i}")
