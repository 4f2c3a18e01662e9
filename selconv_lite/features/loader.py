"""An input pipeline for a GPU: decoding and resizing in worker processes, equal-size batches.

:func:`iter_batches` feeds a :class:`~selconv_lite.features.extraction.FeatureExtractor`'s trunk
through a :class:`torch.utils.data.DataLoader`:

* ``num_workers`` worker processes each load, crop and resize their share of the images
  (exactly :meth:`FeatureExtractor.prepare`, so the network sees the same pixels) and detect
  SIFT keypoints only when asked (``sift=True``; the SIFT mask is the only consumer);
* each prepared image comes to this process in pinned memory (on CUDA) and is copied to the
  device at once with ``non_blocking=True`` (the copy overlaps the running forward pass);
  there it waits in a bucket of its resized shape, and a bucket becomes one batch when it
  holds ``batch_size`` images (when ``max_pending`` images wait, the fullest bucket goes
  early; the rest at the end). Every batch is thus one forward pass of equal-size images
  without padding (padding would change the maps near the border), and cuDNN sees few shapes.

Batches arrive in no fixed order; each carries the indices of its images. A bad image arrives
as an error at its index, raised when it is reached (``on_error="raise"``) or reported.
:func:`iter_features` gives numpy maps, the same as ``extract`` (bit-identical with
``batch_size=1``; batches of several images within float32 rounding, as ``forward_batch``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..core.types import ImageFeatures
from .extraction import (EmptyFeatureMapError, FeatureExtractor, ImageError, detect_sift,
                         image_inputs, image_name)

__all__ = ["LoadedBatch", "iter_batches", "iter_features"]

_ERRORS = {"ImageError": ImageError, "EmptyFeatureMapError": EmptyFeatureMapError}


@dataclass
class LoadedBatch:
    """One batch of equal-size images on the device.

    Attributes
    ----------
    index : ndarray ``(B,)`` of int
        Positions of the images in the input list.
    x : tensor ``(B, 3, H, W)``
        float32 RGB 0-255 on the device (the trunk's input), channels-last strides.
    image_hw : list of (int, int)
    keypoints : list of ``(n, 2)`` float32 arrays (empty unless ``sift=True``)
    names : list of str
    errors : dict
        ``{index: exception}`` of the images that failed (only with ``on_error="skip"``; such a
        batch may hold no image).
    """

    index: np.ndarray
    x: torch.Tensor | None
    image_hw: list
    keypoints: list
    names: list
    errors: dict = field(default_factory=dict)


class _Prepared(IterableDataset):
    """Worker side: prepare this worker's share of the images (every ``num_workers``-th)."""

    def __init__(self, fx, images, crops, names, sift):
        self.fx, self.images, self.crops, self.names, self.sift = fx, images, crops, names, sift

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (0, 1) if info is None else (info.id, info.num_workers)
        for i in range(wid, len(self.images), nw):
            try:
                rgb = self.fx.prepare(self.images[i], self.crops[i], self.names[i])
                kps = detect_sift(rgb) if self.sift else np.zeros((0, 2), np.float32)
            except ImageError as e:
                yield {"index": i, "rgb": None, "keypoints": None, "error": (type(e).__name__, str(e))}
                continue
            yield {"index": i, "rgb": torch.from_numpy(rgb), "keypoints": kps, "error": None}


def _check_int(name, v, lo):
    if isinstance(v, bool) or int(v) != v or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def iter_batches(extractor: FeatureExtractor, images, crops=None, names=None, batch_size=32,
                 num_workers=2, sift=False, max_pending=None, on_error="raise",
                 prefetch_factor=2):
    """Yield batches (:class:`LoadedBatch`) of equal-size prepared images on the extractor's device.

    Parameters
    ----------
    extractor : FeatureExtractor
        Its ``prepare`` settings (``max_dim``, ``crop_scale``, layers) and device are used; its
        ``sift`` flag is not (keypoints only with ``sift=True``).
    images : sequence of str or Path
    crops, names : sequences, optional
        One per image, as in :meth:`FeatureExtractor.extract_many`.
    batch_size : int
        Most images per batch.
    num_workers : int
        Worker processes (0: everything in this process).
    sift : bool
        Detect SIFT keypoints (for the SIFT mask).
    max_pending : int, optional
        Most prepared images held back in buckets (default ``4 * batch_size``); bounds the
        device memory they take when sizes vary a lot.
    on_error : {"raise", "skip"}
        ``"raise"``: the error of a bad image is raised when its batch arrives; ``"skip"``:
        reported in :attr:`LoadedBatch.errors`.
    prefetch_factor : int
        Batches each worker prepares ahead.
    """
    images, crops, names = image_inputs(images, crops, names)
    n = len(images)
    batch_size = _check_int("batch_size", batch_size, 1)
    num_workers = _check_int("num_workers", num_workers, 0)
    max_pending = 4 * batch_size if max_pending is None else _check_int("max_pending", max_pending, 1)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    names = [image_name(im, nm) for im, nm in zip(images, names)]
    images = [str(im) if not hasattr(im, "mode") else im for im in images]
    prep = copy.copy(extractor)
    prep._trunk = None  # the workers only prepare images: no weights travel to them
    dev = extractor.device
    ds = _Prepared(prep, images, crops, names, bool(sift))
    kw = dict(prefetch_factor=int(prefetch_factor)) if num_workers else {}
    loader = DataLoader(ds, batch_size=None, num_workers=min(num_workers, max(n, 1)),
                        pin_memory=dev.type == "cuda", **kw)
    buckets: dict = {}  # (H, W) -> [(index, uint8 (H, W, 3) tensor on the device, keypoints)]
    pending = 0

    def emit(shape):
        nonlocal pending
        items = buckets.pop(shape)
        pending -= len(items)
        idx, rgbs, kps = zip(*items)
        x = torch.stack(rgbs).permute(0, 3, 1, 2).float()
        return LoadedBatch(np.array(idx), x, [shape] * len(idx), list(kps),
                           [names[i] for i in idx])

    for item in loader:
        i = int(item["index"])
        if item["error"] is not None:
            cls, msg = item["error"]
            err = _ERRORS.get(cls, ImageError)(msg)
            if on_error == "raise":
                raise err
            yield LoadedBatch(np.array([i]), None, [], [], [names[i]], {i: err})
            continue
        rgb = item["rgb"]
        shape = (int(rgb.shape[0]), int(rgb.shape[1]))
        kps = item["keypoints"]  # the DataLoader turned the numpy array into a tensor
        kps = kps.numpy() if torch.is_tensor(kps) else np.asarray(kps, np.float32)
        buckets.setdefault(shape, []).append((i, rgb.to(dev, non_blocking=True), kps))
        pending += 1
        if len(buckets[shape]) >= batch_size:
            yield emit(shape)
        elif pending > max_pending:
            yield emit(max(buckets, key=lambda s: len(buckets[s])))
    while buckets:
        yield emit(max(buckets, key=lambda s: len(buckets[s])))


def iter_features(extractor: FeatureExtractor, images, crops=None, names=None, batch_size=32,
                  num_workers=2, sift=None, **kwargs):
    """Yield ``(index, {layer: ImageFeatures})`` for every image (in no fixed order) through
    :func:`iter_batches` and the extractor's trunk (in its precision); numpy float32 maps as
    :meth:`FeatureExtractor.extract` gives them. ``sift`` defaults to ``extractor.sift``."""
    sift = extractor.sift if sift is None else sift
    for b in iter_batches(extractor, images, crops, names, batch_size, num_workers, sift, **kwargs):
        if b.x is None:
            continue
        with torch.inference_mode():
            out = extractor.run_trunk(b.x)
            maps = {k: v.permute(0, 2, 3, 1).float().contiguous().cpu().numpy() for k, v in out.items()}
        for j, i in enumerate(b.index):
            yield int(i), {layer: ImageFeatures(fmap=maps[layer][j].copy(), image_hw=b.image_hw[j],
                                                keypoints=b.keypoints[j], name=b.names[j])
                           for layer in extractor.layers}
