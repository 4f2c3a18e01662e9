"""Receptive fields of the VGG16 trunk's layers (paper Sec. 3.1 and Sec. 3.2.1).

Each local conv. feature (one position of the ``W x H`` grid, Sec. 3.1) "sees" a square region of
the input image: its receptive field. The paper quotes 212 x 212 pixels for pool5 of VGG16
(Sec. 3.2.1) -- that is why SIFT-style burstiness is expected to be weaker for conv. features.

The standard recursion over the layers (kernel ``k``, stride ``s``, padding ``p``) is::

    size_out   = size_in + (k - 1) * jump_in
    jump_out   = jump_in * s
    centre_out = centre_in + ((k - 1) / 2 - p) * jump_in

with ``size = 1``, ``jump = 1``, ``centre = 0`` (the centre of pixel 0) for the input. VGG16 has
3x3 convolutions with padding 1 (size grows, centre stays) and 2x2 max-pools with stride 2. As
in :mod:`selconv_lite.features.backbone`, every layer other than pool5 is followed by a 2x2/2 max-pool
(Sec. 5.2.4), so ``conv5_3`` has the same receptive field as ``pool5``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .backbone import CONV_NAMES, LAYERS

__all__ = ["ReceptiveField", "receptive_field", "receptive_box", "vgg16_ops"]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer: side ``size`` (pixels), ``stride`` between neighbouring
    features (pixels) and ``offset``: centre of feature ``(0, 0)`` in 0-based pixel coordinates;
    feature ``(y, x)`` is centred at ``(offset + stride * y, offset + stride * x)``."""

    size: int
    stride: int
    offset: float


def vgg16_ops(layer: str = "pool5") -> list[tuple[str, int, int, int]]:
    """The ``(name, kernel, stride, padding)`` operations of VGG16 up to ``layer`` (inclusive of
    the 2x2/2 max-pool that follows every non-pool5 layer in this package)."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")
    last = "conv5_3" if layer == "pool5" else layer
    ops: list[tuple[str, int, int, int]] = []
    for name in CONV_NAMES:
        block = name.split("_")[0]
        ops.append((name, 3, 1, 1))
        block_last = {"conv1": "conv1_2", "conv2": "conv2_2"}.get(block, f"{block}_3")
        if name == last:
            ops.append(("pool5" if layer == "pool5" else f"maxpool_after_{layer}", 2, 2, 0))
            break
        if name == block_last:
            ops.append((f"pool{block[-1]}", 2, 2, 0))
    return ops


def receptive_field(layer: str = "pool5") -> ReceptiveField:
    """Receptive field of ``layer`` of the VGG16 trunk, e.g. ``receptive_field("pool5")`` is
    ``ReceptiveField(size=212, stride=32, offset=15.5)`` -- the paper's 212 x 212 (Sec. 3.2.1)."""
    size, jump, centre = 1, 1, 0.0
    for _, k, s, p in vgg16_ops(layer):
        size += (k - 1) * jump
        centre += ((k - 1) / 2 - p) * jump
        jump *= s
    return ReceptiveField(size, jump, centre)


def receptive_box(y: int, x: int, layer: str = "pool5", image_hw=None) -> tuple[float, float, float, float]:
    """Pixel box ``(x1, y1, x2, y2)`` covered by the feature at grid position ``(y, x)``;
    clipped to the image when ``image_hw = (H, W)`` is given (zero padding covers the rest)."""
    rf = receptive_field(layer)
    cy, cx = rf.offset + rf.stride * y, rf.offset + rf.stride * x
    half = (rf.size - 1) / 2
    box = [cx - half, cy - half, cx + half, cy + half]
    if image_hw is not None:
        H, W = image_hw
        box = [max(box[0], 0), max(box[1], 0), min(box[2], W - 1), min(box[3], H - 1)]
    return tuple(float(v) for v in box)
