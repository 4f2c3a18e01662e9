"""Feature maps for the experiments: a dataset's held-out / query / database splits through the
shared feature cache (paper Sec. 5.1: queries cropped by their boxes), lazily for large
benchmarks, and SIFT descriptors in the same form (Fig. 3's SIFT baseline).

* :func:`split_features` -- the maps of several layers from ONE pass through the cache;
* :class:`LazyMaps` and :func:`transform_chunked` -- maps loaded on access, encoded in chunks;
* :func:`sift_features` -- (Root)SIFT descriptors as one-column "maps".
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["LazyMaps", "split_features", "transform_chunked", "sift_features"]


class LazyMaps(Sequence):
    """A read-only list of feature maps that loads each one from the feature cache on access.

    For the real benchmarks (thousands of 1024-px images), where the maps of a split do not fit
    in memory; :func:`fit_evaluate_model` encodes such a list chunk by chunk.
    """

    def __init__(self, cache, paths, crops, layer):
        self.cache, self.paths, self.layer = cache, list(paths), layer
        self.crops = list(crops) if crops is not None else [None] * len(self.paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return LazyMaps(self.cache, self.paths[i], self.crops[i], self.layer)
        return self.cache.load(self.paths[i], self.crops[i], self.layer)

    def __repr__(self):
        return f"LazyMaps({len(self)} images, layer={self.layer!r})"


def split_features(ds, layers=("pool5",), max_dim: int | None = None, cache_dir=None,
                   weights="caffe-onnx", splits=("train", "queries", "db"), progress: bool = True,
                   dtype: str = "float32", lazy: bool | None = None, max_train_images: int | None = None,
                   seed: int = 0, extra_layers=()) -> dict:
    """Feature maps of a dataset's splits for several layers, through the shared feature cache.

    All ``layers`` come from one forward pass per image (an image is only pushed through the
    network if one of its entries is missing). Queries are cropped with their boxes (Sec. 5.1).

    Parameters
    ----------
    extra_layers : sequence of str, default ()
        Layers also computed and cached in that forward pass (see
        :class:`~selconv_lite.features.cache.FeatureCache`), so that a later call asking for
        them does not run the trunk again (the notebook series passes
        :func:`selconv_lite.teaching.settings.series_extra_layers`).
    lazy : bool, optional
        Return :class:`LazyMaps` (loaded on access) instead of lists; default: lazy when the
        dataset has more than 2000 images in all.
    max_train_images : int, optional
        Use a seeded random subset of at most this many held-out images (memory: fitting holds
        the held-out maps in memory, about 1.5 MB per 1024-px pool5 map). Default: all.

    Returns
    -------
    dict
        ``{layer: {"train": [...], "queries": [...], "db": [...]}}`` of ImageFeatures.
    """
    from ..features.cache import FeatureCache

    if isinstance(layers, str):
        layers = (layers,)
    max_dim = max_dim or ds.default_max_dim
    cache = FeatureCache(cache_dir, weights=weights, layers=tuple(layers), max_dim=max_dim, dtype=dtype,
                         extra_layers=extra_layers)
    train = list(ds.train_images)
    if max_train_images is not None and len(train) > int(max_train_images):
        keep = np.sort(np.random.RandomState(seed).choice(len(train), int(max_train_images), replace=False))
        train = [train[i] for i in keep]
    lists = {"train": (train, None), "queries": (list(ds.queries), list(ds.query_boxes)),
             "db": (list(ds.images), None)}
    for s in splits:
        if s not in lists:
            raise ValueError(f"unknown split {s!r}; choose from {list(lists)}")
    paths = [p for s in splits for p in lists[s][0]]
    crops = [c for s in splits for c in (lists[s][1] or [None] * len(lists[s][0]))]
    if lazy is None:
        lazy = len(paths) > 2000
    cache.extract_all(paths, crops, progress=progress)
    out = {}
    for layer in layers:
        out[layer] = {}
        for s in splits:
            p, c = lists[s]
            lm = LazyMaps(cache, p, c, layer)
            out[layer][s] = lm if (lazy and s != "train") else list(lm)
    return out


def transform_chunked(model, images, chunk: int = 256) -> np.ndarray:
    """``model.transform`` of a (possibly lazy) list of maps, ``chunk`` images at a time."""
    if not isinstance(images, LazyMaps):
        return model.transform(images)
    parts = [model.transform(list(images[s:s + chunk])) for s in range(0, len(images), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def sift_features(paths, max_dim: int, crops=None, root: bool = True) -> list:
    """SIFT descriptors of each image as :class:`~selconv_lite.core.types.ImageFeatures` whose "map"
    is ``(n, 1, 128)`` -- so the same pipeline (with ``mask="none"``) embeds and aggregates
    them: the ``SIFT + phi_Delta + psi_d`` baseline of Fig. 3. ``root=True`` applies RootSIFT
    (L1 normalisation then square root). Images with no keypoint get one zero descriptor."""
    import cv2

    from ..features.extraction import crop_image, load_image, resize_max_dim
    from ..core.types import ImageFeatures

    sift = cv2.SIFT_create()
    crops = [None] * len(paths) if crops is None else list(crops)
    out = []
    for p, c in zip(paths, crops):
        img = load_image(p)
        if c is not None:
            img = crop_image(img, c)
        gray = np.asarray(resize_max_dim(img, max_dim).convert("L"))
        kps, desc = sift.detectAndCompute(gray, None)
        if desc is None or len(desc) == 0:
            desc = np.zeros((1, 128), np.float32)
        desc = desc.astype(np.float32)
        if root:
            desc = np.sqrt(desc / np.maximum(desc.sum(axis=1, keepdims=True), 1e-12))
        out.append(ImageFeatures(fmap=desc[:, None, :], image_hw=gray.shape, name=str(p)))
    return out
