"""Teaching figures of the notebooks (drawing only; the math lives in the method modules).

All functions build :class:`matplotlib.figure.Figure` objects directly (no pyplot state), so a
notebook shows a figure by leaving it as the cell's last expression or with ``display(fig)``.

* :func:`network_view` -- the image as the network sees it (resized, Sec. 5.1);
* :func:`feature_map_grid` -- feature maps ``F^(k)`` shown as images (Sec. 3.1);
* :func:`receptive_field_figure` -- the grid of local features and one receptive field;
* :func:`figure1` -- the paper's Fig. 1: image, SIFT keypoints, SIFT / SUM / MAX masks;
* :func:`mask_panel` -- one mask drawn over the image (used by the explorer);
* :func:`dot_product_histograms` -- the paper's Fig. 2b-d;
* :func:`bar_chart` -- Fig. 2a / 2e style bars;
* :func:`weights_on_image` -- democratic weights drawn at their feature's location (Sec. 4.3);
* :func:`curves` -- mAP-vs-parameter line plots (Fig. 3, Fig. 4).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..features.extraction import load_image, resize_max_dim
from ..method.masks import kept_percentage

__all__ = ["network_view", "feature_map_grid", "receptive_field_figure", "figure1", "mask_panel",
           "dot_product_histograms", "bar_chart", "weights_on_image", "curves", "MASK_COLORS"]

MASK_COLORS = {"none": "0.5", "sift": "tab:green", "sum": "tab:orange", "max": "tab:red"}
MASK_LABELS = {"none": "no mask", "sift": "SIFT mask", "sum": "SUM mask", "max": "MAX mask"}


def network_view(image, max_dim: int | None, crop=None) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 RGB image the network sees: loaded, cropped, resized so that
    ``max(H, W) == max_dim`` (the same steps as the feature extractor)."""
    from ..features.extraction import crop_image

    img = load_image(image)
    if crop is not None:
        img = crop_image(img, crop)
    return np.asarray(resize_max_dim(img, max_dim))


def _off(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def mask_panel(ax, rgb: np.ndarray, mask: np.ndarray, keypoints=None, title: str | None = None,
               dim: float = 0.7):
    """Draw ``rgb`` with the locations outside ``mask`` darkened (each grid cell covers
    ``W_I / W`` x ``H_I / H`` pixels, the mapping of Eq. 1) and optional keypoints."""
    H_I, W_I = rgb.shape[:2]
    ax.imshow(rgb, extent=(0, W_I, H_I, 0))
    if mask is not None:
        overlay = np.zeros(mask.shape + (4,))
        overlay[..., 3] = np.where(mask, 0.0, dim)
        ax.imshow(overlay, extent=(0, W_I, H_I, 0), interpolation="nearest")
    if keypoints is not None and len(keypoints):
        kp = np.asarray(keypoints)
        ax.scatter(kp[:, 0], kp[:, 1], s=2, c="yellow", linewidths=0)
    ax.set_xlim(0, W_I)
    ax.set_ylim(H_I, 0)
    _off(ax)
    if title:
        ax.set_title(title, fontsize=9)


def figure1(rows: Sequence[tuple[np.ndarray, object]], masks: Mapping[str, Sequence[np.ndarray]]) -> Figure:
    """The paper's Fig. 1: one row per image -- (a) the image, (b) its SIFT keypoints,
    (c) SIFT, (d) SUM and (e) MAX masks.

    ``rows`` is ``[(rgb, ImageFeatures), ...]``; ``masks[name][i]`` the mask of image ``i``.
    """
    n = len(rows)
    fig = Figure(figsize=(11, 2.3 * n), layout="constrained")
    axes = fig.subplots(n, 5, squeeze=False)
    cols = [("(a) image", None), ("(b) SIFT keypoints", None), ("(c) SIFT mask", "sift"),
            ("(d) SUM mask", "sum"), ("(e) MAX mask", "max")]
    for i, (rgb, f) in enumerate(rows):
        for j, (label, m) in enumerate(cols):
            ax = axes[i, j]
            if j == 0:
                mask_panel(ax, rgb, None)
            elif j == 1:
                mask_panel(ax, rgb, None, keypoints=f.keypoints)
            else:
                mk = masks[m][i]
                mask_panel(ax, rgb, mk)
                label = f"{label}: {kept_percentage(mk):.0f}% kept"
            if i == 0 or j >= 2:
                ax.set_title(label, fontsize=9)
    fig.suptitle("masks: kept locations shown as they are, removed locations darkened; "
                 "yellow dots: SIFT keypoints", fontsize=9)
    return fig


def feature_map_grid(fmap: np.ndarray, channels: Sequence[int], rgb: np.ndarray | None = None,
                     ncols: int = 4) -> Figure:
    """Feature maps ``F^(k)`` (one channel of the ``(H, W, K)`` tensor each) as images."""
    n = len(channels) + (rgb is not None)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(2.6 * ncols, 2.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    i = 0
    if rgb is not None:
        axes[0].imshow(rgb)
        axes[0].set_title(f"input {rgb.shape[1]}x{rgb.shape[0]}", fontsize=9)
        i = 1
    for k in channels:
        im = axes[i].imshow(fmap[:, :, k], cmap="magma", interpolation="nearest")
        axes[i].set_title(f"F^({k}), max {fmap[:, :, k].max():.0f}", fontsize=9)
        cb = fig.colorbar(im, ax=axes[i], shrink=0.8, label="activation")
        cb.ax.tick_params(labelsize=9)
        i += 1
    for ax in axes:
        _off(ax)
    for ax in axes[i:]:
        ax.set_visible(False)
    return fig


def receptive_field_figure(rgb: np.ndarray, grid_hw: tuple[int, int], cell: tuple[int, int],
                           box: tuple[float, float, float, float], title: str = "") -> Figure:
    """The ``W x H`` grid of local features over the image, one cell and its receptive field."""
    H_I, W_I = rgb.shape[:2]
    H, W = grid_hw
    fig = Figure(figsize=(5, 5 * H_I / W_I + 0.4), layout="constrained")
    ax = fig.subplots()
    ax.imshow(rgb, extent=(0, W_I, H_I, 0))
    sy, sx = H_I / H, W_I / W
    for y in range(H + 1):
        ax.axhline(y * sy, color="w", lw=0.4, alpha=0.6)
    for x in range(W + 1):
        ax.axvline(x * sx, color="w", lw=0.4, alpha=0.6)
    cy, cx = cell
    ax.add_patch(Rectangle((cx * sx, cy * sy), sx, sy, color="tab:red", alpha=0.8))
    x1, y1, x2, y2 = box
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="tab:red", lw=2, ls="--"))
    ax.set_xlim(0, W_I)
    ax.set_ylim(H_I, 0)
    _off(ax)
    ax.set_title(title, fontsize=9)
    return fig


def dot_product_histograms(dots: Mapping[str, np.ndarray], band: float = 0.15,
                           bins: int = 50) -> Figure:
    """Fig. 2b-d: normalised histograms of pairwise dot products, each mask against no mask."""
    masked = [m for m in dots if m != "none"]
    fig = Figure(figsize=(3.6 * len(masked), 2.8), layout="constrained")
    axes = fig.subplots(1, len(masked), squeeze=False)[0]
    edges = np.linspace(0, 1, bins + 1)
    for ax, m, letter in zip(axes, masked, "bcd"):
        for name in ("none", m):
            if name not in dots:
                continue
            h, _ = np.histogram(dots[name], bins=edges)
            h = h / max(h.sum(), 1)
            ax.step(edges[:-1], h, where="post", color=MASK_COLORS[name], label=MASK_LABELS[name])
        ax.axvspan(-band, band, color="0.9", zorder=0)
        ax.set_xlim(0, 1)
        ax.set_xlabel("dot product of L2-normalised features")
        ax.set_title(f"Fig. 2{letter}: {MASK_LABELS[m]} vs no mask", fontsize=9)
        ax.legend(fontsize=9)
    axes[0].set_ylabel("fraction of pairs")
    return fig


def bar_chart(values: Mapping[str, float], ylabel: str, title: str, fmt: str = "{:.1f}") -> Figure:
    """Bars per mask (Fig. 2a, 2e)."""
    fig = Figure(figsize=(4, 2.8), layout="constrained")
    ax = fig.subplots()
    names = list(values)
    vals = [values[n] for n in names]
    bars = ax.bar([MASK_LABELS.get(n, n) for n in names], vals,
                  color=[MASK_COLORS.get(n, "tab:blue") for n in names])
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, v, fmt.format(v), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.set_ylim(0, max(vals) * 1.15 if vals and max(vals) > 0 else 1)
    return fig


def weights_on_image(rgb: np.ndarray, grid_hw: tuple[int, int], locations: np.ndarray,
                     weights_by_name: Mapping[str, np.ndarray]) -> Figure:
    """Aggregation weights drawn at their local feature's grid cell (democratic pooling, Sec. 4.3):
    disc area proportional to the weight's share of the total (one panel per weighting)."""
    H_I, W_I = rgb.shape[:2]
    H, W = grid_hw
    n = len(weights_by_name)
    fig = Figure(figsize=(4.2 * n, 4.2 * H_I / W_I + 0.5), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    cy = (locations[:, 0] + 0.5) * H_I / H
    cx = (locations[:, 1] + 0.5) * W_I / W
    for ax, (name, w) in zip(axes, weights_by_name.items()):
        w = np.asarray(w, dtype=float)
        share = w / w.sum() if w.sum() > 0 else w
        ax.imshow(rgb, extent=(0, W_I, H_I, 0), alpha=0.6)
        ax.scatter(cx, cy, s=share * 4000, c="tab:red", alpha=0.7, linewidths=0)
        ax.set_xlim(0, W_I)
        ax.set_ylim(H_I, 0)
        _off(ax)
        ax.set_title(f"{name}: max/min weight {w.max() / max(w.min(), 1e-12):.1f}", fontsize=9)
    return fig


def curves(x: Sequence, ys: Mapping[str, Sequence[float]], xlabel: str, ylabel: str = "mAP",
           title: str = "", colors: Mapping[str, str] | None = None, xlog: bool = False) -> Figure:
    """Line plots of a metric against one parameter, one line per setting (Fig. 3, Fig. 4)."""
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, y in ys.items():
        ax.plot(x, y, marker="o", ms=3, label=name, color=(colors or {}).get(name))
    if xlog:
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(x))
        ax.set_xticklabels([str(v) for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return fig
