"""The small analyses of the paper's Sec. 3.3 (Fig. 2) used by the notebooks.

* :func:`kept_percentages` -- Fig. 2a: the mean over a set of images of the percentage of
  local conv. features a mask keeps (:func:`selconv_lite.method.masks.kept_percentage`);
* :func:`pairwise_dot_products` -- Fig. 2b-d: the dot products of all pairs of L2-normalised
  local features of one image ("covariances" in the paper);
* :func:`fraction_in_band` -- Fig. 2e: the fraction of those dot products in ``[-0.15, 0.15]``;
* :func:`mask_statistics` -- Fig. 2a and 2e averaged over a set of images.

Paper, Sec. 3.3: "we first l2-normalize local conv. features, which are extracted from pool5
layer [...]. We then compute the dot products for all pairs of features." Pool5 features are
non-negative (after ReLU), so every dot product lies in ``[0, 1]``; the band of Fig. 2e is then
effectively ``[0, 0.15]``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..method.masks import apply_mask, compute_mask, kept_percentage
from ..core.utils import l2_normalize

__all__ = ["kept_percentages", "pairwise_dot_products", "fraction_in_band", "mask_statistics",
           "BAND"]

#: Half-width of the band of Fig. 2e.
BAND = 0.15


def kept_percentages(features: Iterable, masks: Sequence[str]) -> dict[str, float]:
    """Fig. 2a over a set of images: for each mask name, the mean over ``features``
    (:class:`~selconv_lite.core.types.ImageFeatures`) of :func:`kept_percentage` (the paper's
    "averaged percentage")."""
    features = list(features)
    if not features:
        raise ValueError("kept_percentages needs at least one image")
    return {m: float(np.mean([kept_percentage(compute_mask(m, f)) for f in features])) for m in masks}


def pairwise_dot_products(X) -> np.ndarray:
    """Dot products of all pairs ``i < j`` of the L2-normalised rows of ``X`` ``(n, K)`` (Fig. 2b-d).

    Rows of norm 0 (all-zero features, common in pool5) stay zero and so give 0 dot products,
    as in the paper's computation. Returns a 1-D float64 array of ``n (n - 1) / 2`` values.
    """
    X = l2_normalize(np.asarray(X, dtype=np.float64))
    G = X @ X.T
    iu = np.triu_indices(len(X), k=1)
    return G[iu]


def fraction_in_band(dots, band: float = BAND) -> float:
    """Fraction of ``dots`` with ``|value| <= band`` (Fig. 2e, ``band = 0.15``)."""
    dots = np.asarray(dots)
    if dots.size == 0:
        return float("nan")
    return float(np.mean(np.abs(dots) <= band))


def mask_statistics(features: Iterable, masks: Sequence[str] = ("sift", "sum", "max", "none"),
                    band: float = BAND) -> dict[str, dict[str, float]]:
    """Fig. 2a and 2e over a set of images.

    Parameters
    ----------
    features : iterable of :class:`~selconv_lite.core.types.ImageFeatures`
        One per image (e.g. pool5 of the dataset's database images).
    masks : mask names (:data:`selconv_lite.method.masks.MASKS`)
    band : half-width of the Fig. 2e band

    Returns
    -------
    dict
        ``{mask: {"kept_pct": mean % of features kept, "band_pct": mean % of pairwise dot
        products in [-band, band], "n_images": count}}``, averaged over the images (as the
        paper's "averaged percentage").
    """
    kept = {m: [] for m in masks}
    inband = {m: [] for m in masks}
    n = 0
    for f in features:
        n += 1
        for m in masks:
            mask = compute_mask(m, f)
            kept[m].append(kept_percentage(mask))
            X = apply_mask(f.fmap, mask)
            if len(X) > 1:
                inband[m].append(100.0 * fraction_in_band(pairwise_dot_products(X), band))
    if n == 0:
        raise ValueError("mask_statistics needs at least one image")
    return {m: {"kept_pct": float(np.mean(kept[m])),
                "band_pct": float(np.mean(inband[m])) if inband[m] else float("nan"),
                "n_images": n} for m in masks}
