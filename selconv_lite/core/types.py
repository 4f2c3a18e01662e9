"""Small shared data types.

Conventions used throughout the package:

* a feature map is a float32 array ``(H, W, K)`` (rows = image y, columns = image x);
* local features are rows ``(n, K)`` float32;
* a mask is a boolean ``(H, W)`` array;
* SIFT keypoints are ``(n, 2)`` float32 arrays of ``(x, y)`` in the pixels of the image the
  network saw, 0-based as OpenCV returns them (the centre of the top-left pixel is (0, 0)).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ImageFeatures"]


@dataclass
class ImageFeatures:
    """Everything the online stage needs from one image.

    Attributes
    ----------
    fmap : np.ndarray
        ``(H, W, K)`` float32 feature map of one layer.
    image_hw : tuple of int
        ``(height, width)`` of the image the network saw (after crop and resize).
    keypoints : np.ndarray
        ``(n, 2)`` float32 SIFT keypoint coordinates ``(x, y)``, 0-based (OpenCV), in the
        pixels of that image. May be empty ``(0, 2)``.
    name : str
        An identifier (usually the image file name), used in error messages.
    """

    fmap: np.ndarray
    image_hw: tuple
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    name: str = ""
