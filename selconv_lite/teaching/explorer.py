"""An interactive mask explorer (image x mask x layer) for notebook 02 (paper Sec. 3.2, Fig. 1).

In a Jupyter front end with ipywidgets, :meth:`MaskExplorer.show` displays three dropdowns
(image, mask, layer), a line of text with the number of features kept, and the image with the
selected local features highlighted; changing any dropdown redraws the figure. Without a front
end (papermill, nbval, a terminal) it displays one static figure instead: every mask (columns)
on every layer (rows) for the first image. See
:func:`selconv_lite.teaching.notebook_utils.has_widget_frontend`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..viz.figures import MASK_LABELS, mask_panel, network_view
from ..method.masks import MASKS, compute_mask, kept_percentage
from .notebook_utils import show_figure, use_widgets

__all__ = ["MaskExplorer", "EXPLORER_CSS_CLASS"]

#: CSS class of the explorer's outer widget (the browser test looks for it).
EXPLORER_CSS_CLASS = "selconv-mask-explorer"


class MaskExplorer:
    """Look at SIFT / SUM / MAX masks over real images and several layers.

    Parameters
    ----------
    images : sequence of paths
    layers : layers to offer (each is extracted once and cached, see :mod:`selconv_lite.features.cache`)
    masks : mask names (:data:`selconv_lite.method.masks.MASKS`)
    max_dim : image size the network sees
    cache_dir : feature cache folder (None: the shared default)
    weights : VGG16 weights (see :func:`selconv_lite.features.backbone.load_vgg16_trunk`)
    """

    def __init__(self, images: Sequence, layers: Sequence[str] = ("pool5", "conv5_1", "conv4_3"),
                 masks: Sequence[str] = ("max", "sum", "sift", "none"), max_dim: int = 512,
                 cache_dir=None, weights: str = "caffe-onnx"):
        from ..features.cache import FeatureCache

        if not images:
            raise ValueError("MaskExplorer needs at least one image")
        bad = [m for m in masks if m not in MASKS]
        if bad:
            raise ValueError(f"unknown mask(s) {bad}; choose from {MASKS}")
        self.images = [str(p) for p in images]
        self.layers = tuple(layers)
        self.masks = tuple(masks)
        self.max_dim = max_dim
        self.cache = FeatureCache(cache_dir, weights=weights, layers=self.layers, max_dim=max_dim)
        self._rgb: dict[int, np.ndarray] = {}

    def names(self) -> list[str]:
        return [Path(p).name for p in self.images]

    def prepare(self, progress: bool = False):
        """Extract (or find in the cache) every image's features for every layer."""
        return self.cache.extract_all(self.images, progress=progress)

    def rgb(self, i: int) -> np.ndarray:
        if i not in self._rgb:
            self._rgb[i] = network_view(self.images[i], self.max_dim)
        return self._rgb[i]

    def mask(self, i: int, mask: str, layer: str) -> np.ndarray:
        """The ``mask`` of image ``i`` on ``layer``."""
        return compute_mask(mask, self.cache.load(self.images[i], layer=layer))

    def describe(self, i: int, mask: str, layer: str) -> str:
        m = self.mask(i, mask, layer)
        return (f"{MASK_LABELS[mask]} on {layer} of {self.names()[i]}: {int(m.sum())} of {m.size} "
                f"local features kept ({kept_percentage(m):.0f}%), grid {m.shape[1]}x{m.shape[0]}")

    def figure(self, i: int = 0, mask: str = "max", layer: str = "pool5") -> Figure:
        """One image with one mask on one layer."""
        f = self.cache.load(self.images[i], layer=layer)
        m = compute_mask(mask, f)
        rgb = self.rgb(i)
        fig = Figure(figsize=(5, 5 * rgb.shape[0] / rgb.shape[1] + 0.4), layout="constrained")
        ax = fig.subplots()
        mask_panel(ax, rgb, m, keypoints=f.keypoints if mask == "sift" else None,
                   title=f"{MASK_LABELS[mask]}, {layer}: {kept_percentage(m):.0f}% kept")
        return fig

    def static_figure(self, i: int = 0) -> Figure:
        """All masks (columns) x all layers (rows) for image ``i``: the fallback without widgets."""
        rgb = self.rgb(i)
        nr, nc = len(self.layers), len(self.masks)
        fig = Figure(figsize=(2.6 * nc, 2.6 * nr * rgb.shape[0] / rgb.shape[1] + 0.5),
                     layout="constrained")
        axes = fig.subplots(nr, nc, squeeze=False)
        for r, layer in enumerate(self.layers):
            for c, mask in enumerate(self.masks):
                m = self.mask(i, mask, layer)
                mask_panel(axes[r, c], rgb, m, title=f"{MASK_LABELS[mask]}, {layer}: "
                                                     f"{kept_percentage(m):.0f}%")
        return fig

    def widget(self, image: int = 0, mask: str = "max", layer: str = "pool5"):
        """The ipywidgets explorer (needs a Jupyter front end to be seen)."""
        import ipywidgets as W

        img_dd = W.Dropdown(options=[(n, i) for i, n in enumerate(self.names())], value=image,
                            description="image")
        mask_dd = W.Dropdown(options=[(MASK_LABELS[m], m) for m in self.masks], value=mask,
                             description="mask")
        layer_dd = W.Dropdown(options=list(self.layers), value=layer, description="layer")
        for dd, cls in ((img_dd, "image"), (mask_dd, "mask"), (layer_dd, "layer")):
            dd.add_class(f"selconv-{cls}")
        label = W.HTML()
        label.add_class("selconv-label")
        out = W.Output()
        out.add_class("selconv-figure")

        def update(*_):
            i, m, lay = img_dd.value, mask_dd.value, layer_dd.value
            label.value = self.describe(i, m, lay)
            fig = self.figure(i, m, lay)
            with out:
                out.clear_output(wait=True)
                show_figure(fig)

        for dd in (img_dd, mask_dd, layer_dd):
            dd.observe(update, names="value")
        update()
        box = W.VBox([W.HBox([img_dd, mask_dd, layer_dd]), label, out])
        box.add_class(EXPLORER_CSS_CLASS)
        return box

    def show(self, interactive="auto"):
        """Display the widget explorer, or the static figure when no widget front end is attached
        (``interactive``: True / False / "auto")."""
        from IPython.display import display

        if use_widgets(interactive):
            display(self.widget())
            return None
        print(self.describe(0, self.masks[0], self.layers[0]))
        show_figure(self.static_figure(0))
        return None
