"""Selection masks of Sec. 3.2: SIFT (Eq. 1), MAX (Eq. 2) and SUM (Eq. 3).

A feature map is a float ``(H, W, K)`` array (rows = image y); a mask is a boolean ``(H, W)``
array; :func:`apply_mask` returns the selected local features as rows ``(n, K)``.

Every function reproduces the authors' MATLAB ``utils/apply_mask.m`` exactly (golden files
a1/a2), including its conventions:

* the selected locations are listed in COLUMN-major order (``h`` fastest, then ``w``),
  because MATLAB's logical indexing walks arrays that way;
* MAX mask ties: the first maximum in column-major order (smallest ``w``, then smallest ``h``);
  an all-zero or constant channel selects ``(0, 0)``;
* SUM mask: ``sum >= median`` (MATLAB ``prctile(., 50)`` is the median); ties are kept;
* SIFT mask: MATLAB ``round`` (half away from zero) of ``x / (W_I / W)``, on VLFeat's 1-based
  frame coordinates, and a 3x3 neighbourhood (``radius=1``) around each cell.

These are written by hand with numpy (no loop over channels or keypoints beyond the
``2r+1`` neighbourhood offsets) because no library offers these exact tie-breaking rules.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core.utils import check_finite, round_half_away

__all__ = [
    "MASKS",
    "SiftMaskFallbackWarning",
    "EmptyMaskError",
    "max_mask",
    "sum_mask",
    "sift_mask",
    "apply_mask",
    "mask_name",
    "compute_mask",
    "mask_locations",
    "check_fmap",
    "kept_percentage",
]

MASKS = ("max", "sum", "sift", "none")


class SiftMaskFallbackWarning(UserWarning):
    """An image had no SIFT keypoint in the grid: the SIFT mask keeps every location (Sec. 5.1)."""


class EmptyMaskError(ValueError):
    """A mask kept no location, so there is no local feature to embed."""


def check_fmap(fmap, name=""):
    """Validate a feature map: a non-empty, finite ``(H, W, K)`` array (returned as an array).

    Raises
    ------
    ValueError
        If ``fmap`` is not 3-D, has an empty axis or contains NaN/inf (the message names the
        image ``name``).
    """
    fmap = np.asarray(fmap)
    if fmap.ndim != 3:
        raise ValueError(f"feature map{_of(name)} must be (H, W, K), got shape {fmap.shape}")
    if fmap.shape[0] == 0 or fmap.shape[1] == 0 or fmap.shape[2] == 0:
        raise ValueError(f"feature map{_of(name)} is empty, shape {fmap.shape}")
    check_finite(fmap, "feature map", name)
    return fmap


def _of(name):
    return f" of image {name!r}" if name else ""


def max_mask(fmap, name=""):
    """MAX mask, Eq. 2: the location of the maximum of every channel.

    Parameters
    ----------
    fmap : array ``(H, W, K)``
        Feature map.
    name : str, optional
        Image name used in error messages.

    Returns
    -------
    mask : bool array ``(H, W)``
        At most ``K`` locations (channels that peak at the same location share it).

    Notes
    -----
    Ties go to the first maximum in COLUMN-major order, as MATLAB's
    ``[v1, p1] = max(F); [~, p2] = max(v1)`` in the authors' ``create_max_mask``: the
    smallest column ``w``, then the smallest row ``h``. ``np.argmax`` on the row-major map
    would break ties differently, so the map is flattened column-major first. An all-zero
    channel selects ``(0, 0)``.
    """
    fmap = check_fmap(fmap, name)
    H, W, K = fmap.shape
    flat = fmap.reshape(H * W, K)  # row-major rows r = h * W + w (a view)
    top = flat.max(axis=0)
    # column-major rank of every row: w * H + h; keep the smallest among the maxima
    cm = (np.arange(W, dtype=np.int32)[None, :] * H + np.arange(H, dtype=np.int32)[:, None]).ravel()
    first = np.where(flat == top, cm[:, None], H * W).min(axis=0)
    mask_t = np.zeros(W * H, dtype=bool)
    mask_t[first] = True
    return mask_t.reshape(W, H).T.copy()


def sum_mask(fmap, name=""):
    """SUM mask, Eq. 3: locations whose channel sum is ``>=`` the median of all sums.

    Parameters
    ----------
    fmap : array ``(H, W, K)``
    name : str, optional
        Image name used in error messages.

    Returns
    -------
    mask : bool array ``(H, W)``
        At least half of the locations (ties at the median are kept, as in the authors'
        ``mask(:) >= prctile(mask(:), 50)``). The sums are accumulated in float64.
    """
    fmap = check_fmap(fmap, name)
    s = fmap.sum(axis=2, dtype=np.float64)
    return s >= np.median(s)


def sift_mask(keypoints_xy, image_hw, grid_hw, radius=1, one_based=False, name=""):
    """SIFT mask, Eq. 1: the grid cells under SIFT keypoints.

    Parameters
    ----------
    keypoints_xy : array ``(n, 2)``
        Keypoint coordinates ``(x, y)`` in the pixels of the image the network saw. By default
        0-based as OpenCV returns them (centre of the top-left pixel = (0, 0)); they are
        shifted by +1 to VLFeat's 1-based frames before the authors' mapping.
    image_hw : (int, int)
        ``(H_I, W_I)``, size of the image the network saw.
    grid_hw : (int, int)
        ``(H, W)``, size of the feature map.
    radius : int, default 1
        Half-size of the marked neighbourhood: 1 = the authors' code (3x3 cells),
        0 = the paper's Eq. 1 (the single cell).
    one_based : bool, default False
        ``True`` if the keypoints are already VLFeat 1-based frames (as in the golden data).
    name : str, optional
        Image name used in the fallback warning.

    Returns
    -------
    mask : bool array ``(H, W)``

    Notes
    -----
    ``x -> round(x / (W_I / W))`` and ``y -> round(y / (H_I / H))`` with MATLAB ``round``
    (half away from zero), giving 1-based cells; rows ``max(1, y-r) .. min(H, y+r)`` and
    columns ``max(1, x-r) .. min(W, x+r)`` are marked. For ``radius=0`` the cell is clamped
    to ``1 .. H`` / ``1 .. W`` (Eq. 1 assumes a cell in the grid; MATLAB would fail on a
    0 index). Keypoints whose neighbourhood lies outside the grid are ignored.

    If no keypoint marks any cell, the paper's fallback applies (Sec. 5.1: "in the rare case
    of an image with no SIFT feature, the SIFT-mask is ignored"): every location is kept and
    a :class:`SiftMaskFallbackWarning` is issued.
    """
    Hf, Wf = int(grid_hw[0]), int(grid_hw[1])
    Hi, Wi = float(image_hw[0]), float(image_hw[1])
    if Hf <= 0 or Wf <= 0 or Hi <= 0 or Wi <= 0:
        raise ValueError(f"sift_mask{_of(name)}: sizes must be positive, got image_hw={image_hw}, "
                         f"grid_hw={grid_hw}")
    r = int(radius)
    if r < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    kp = np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2)
    kp = kp[np.isfinite(kp).all(axis=1)]
    if not one_based:
        kp = kp + 1.0
    x = round_half_away(kp[:, 0] / (Wi / Wf)).astype(np.int64)  # 1-based column
    y = round_half_away(kp[:, 1] / (Hi / Hf)).astype(np.int64)  # 1-based row
    if r == 0:
        x = np.clip(x, 1, Wf)
        y = np.clip(y, 1, Hf)
    rlo, rhi = np.maximum(1, y - r), np.minimum(Hf, y + r)
    clo, chi = np.maximum(1, x - r), np.minimum(Wf, x + r)
    ok = (rlo <= rhi) & (clo <= chi)
    mask = np.zeros((Hf, Wf), dtype=bool)
    if ok.any():
        y, x = y[ok], x[ok]
        rlo, rhi, clo, chi = rlo[ok], rhi[ok], clo[ok], chi[ok]
        offs = np.arange(-r, r + 1)
        rows = np.clip(y[:, None] + offs[None, :], rlo[:, None], rhi[:, None]) - 1  # (n, 2r+1)
        cols = np.clip(x[:, None] + offs[None, :], clo[:, None], chi[:, None]) - 1
        mask[rows[:, :, None], cols[:, None, :]] = True
        return mask
    warnings.warn(f"SIFT mask{_of(name)}: no keypoint falls in the {Hf}x{Wf} grid; "
                  "falling back to all local features (paper Sec. 5.1)",
                  SiftMaskFallbackWarning, stacklevel=2)
    mask[:] = True
    return mask


def apply_mask(fmap, mask=None, name=""):
    """Select the local features of ``fmap`` under ``mask``.

    Parameters
    ----------
    fmap : array ``(H, W, K)``
    mask : bool array ``(H, W)`` or None
        ``None`` keeps every location ("no mask").
    name : str, optional
        Image name used in error messages.

    Returns
    -------
    X : array ``(n, K)``, same dtype as ``fmap``
        One local feature per row, in COLUMN-major location order (``h`` fastest), the order
        of the authors' ``apply_mask.m`` (``X.T`` equals its ``K x n`` output).

    Raises
    ------
    EmptyMaskError
        If the mask keeps no location.
    """
    fmap = np.asarray(fmap)
    if fmap.ndim != 3:
        raise ValueError(f"feature map{_of(name)} must be (H, W, K), got shape {fmap.shape}")
    H, W, K = fmap.shape
    ft = fmap.transpose(1, 0, 2)  # (W, H, K): row-major walk of ft == column-major of fmap
    if mask is None:
        return ft.reshape(W * H, K).copy()
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (H, W):
        raise ValueError(f"mask{_of(name)} has shape {mask.shape}, feature map grid is {(H, W)}")
    w, h = np.nonzero(mask.T)  # column-major order of the locations
    if w.size == 0:
        raise EmptyMaskError(f"the mask{_of(name)} keeps no location: no local feature to embed")
    return fmap.reshape(H * W, K)[h * W + w]  # gather whole contiguous rows


def mask_locations(mask):
    """The selected ``(h, w)`` locations of ``mask`` (0-based), in column-major order."""
    w, h = np.nonzero(np.asarray(mask, dtype=bool).T)
    return np.stack([h, w], axis=1)


def mask_name(method) -> str:
    """The name in :data:`MASKS` of ``method`` (any case; the authors' ``"sum50"`` is ``"sum"``,
    ``"all"`` is ``"none"``). Raises ``ValueError`` for anything else."""
    m = str(method).lower()
    m = {"sum50": "sum", "all": "none"}.get(m, m)
    if m not in MASKS:
        raise ValueError(f"unknown mask {method!r}; choose one of {MASKS}")
    return m


def compute_mask(method, features, radius=1):
    """The mask ``method`` (``"max"``, ``"sum"``, ``"sift"`` or ``"none"``) of one image.

    Parameters
    ----------
    method : str
        One of :data:`MASKS` (``"sum50"``, the authors' name, is accepted for ``"sum"``).
    features : selconv_lite.core.types.ImageFeatures
        ``fmap``, ``image_hw``, ``keypoints`` (0-based OpenCV) and ``name``.
    radius : int, default 1
        SIFT neighbourhood (see :func:`sift_mask`).

    Returns
    -------
    mask : bool array ``(H, W)``
    """
    name = getattr(features, "name", "") or ""
    fmap = check_fmap(features.fmap, name)
    H, W, _ = fmap.shape
    m = mask_name(method)
    if m == "max":
        return max_mask(fmap, name)
    if m == "sum":
        return sum_mask(fmap, name)
    if m == "sift":
        kp = features.keypoints if features.keypoints is not None else np.zeros((0, 2))
        return sift_mask(kp, features.image_hw, (H, W), radius=radius, name=name)
    return np.ones((H, W), dtype=bool)


def kept_percentage(mask) -> float:
    """Percentage of the ``W x H`` locations a boolean mask keeps (Fig. 2a); the experiments'
    averages (:func:`selconv_lite.experiments.analysis.kept_percentages`), the figures' labels
    and the explorer all read it from here."""
    mask = np.asarray(mask, dtype=bool)
    return 100.0 * float(mask.mean())
