"""From an image file to local deep conv. features and SIFT keypoints (paper Sec. 3.1, 3.2.1, 5.1).

For one image this module

1. loads it with PIL, honouring the EXIF orientation and converting grayscale, bilevel,
   palette, RGBA/LA (composited on white), CMYK and 16-bit images to 8-bit RGB;
2. optionally crops it to a box ``(x1, y1, x2, y2)`` in original-image pixels (the Oxford/Paris
   query protocol, Sec. 5.1: "we use the cropped query images based on provided bounding boxes");
3. resizes it so that ``max(W, H) == max_dim`` keeping the aspect ratio (Sec. 5.1: "All images
   are resized so that the maximum dimension is 1024 while preserving aspect ratios");
4. runs the VGG16 trunk (:mod:`selconv_lite.backbone`) and returns each requested layer as a
   float32 ``(H, W, K)`` map -- the set of ``H x W`` local features of ``K`` dimensions of Sec. 3.1;
5. detects SIFT keypoints (OpenCV's SIFT detector; the paper used VLFeat's) on that same resized
   image, since the SIFT mask (Eq. 1) maps keypoint coordinates onto the feature-map grid.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .backbone import LAYERS, default_device, feature_map_hw, layer_stride, load_vgg16_trunk
from .types import ImageFeatures

__all__ = [
    "ImageError",
    "EmptyFeatureMapError",
    "load_image",
    "crop_image",
    "resize_max_dim",
    "resized_hw",
    "detect_sift",
    "FeatureExtractor",
]

#: Resampling filter for the resize (antialiased bicubic, like MATLAB's imresize default).
RESAMPLE = Image.Resampling.BICUBIC


class ImageError(ValueError):
    """An image cannot be read, decoded or used; the message names the file."""


class EmptyFeatureMapError(ImageError):
    """The image is too small/thin for the requested layer: its feature map would be empty."""


def _name_of(image, name=None) -> str:
    if name is not None:
        return str(name)
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return getattr(image, "filename", "") or "<PIL image>"


# ----------------------------------------------------------------------------------------------
# loading and conversion
# ----------------------------------------------------------------------------------------------
def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    * 16-bit grayscale (``I;16*``, and ``I`` which is how PIL opens 16-bit PNG/TIFF) is scaled
      by 255/65535 -- PIL's own conversion would clip everything above 255 to white;
    * float ``F`` images are assumed to be in 0-255 and clipped;
    * images with transparency (RGBA, LA, PA, palette with a transparent colour) are composited
      on a white background (what a viewer shows), not cut to their raw RGB;
    * CMYK, YCbCr, LAB, HSV, bilevel, grayscale and palette images use PIL's conversion.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(img).astype(np.float64)
        a = np.clip(np.rint(a * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return Image.fromarray(a, mode="L").convert("RGB")
    if mode == "F":
        a = np.clip(np.rint(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return Image.fromarray(a, mode="L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(image, name=None) -> Image.Image:
    """Open ``image`` (a path or a PIL image) as an 8-bit RGB PIL image, EXIF orientation applied.

    Raises
    ------
    ImageError
        If the file does not exist, is not an image, or is truncated/corrupt (message names it).
    """
    name = _name_of(image, name)
    if isinstance(image, Image.Image):
        try:
            image.load()
            return _to_rgb(ImageOps.exif_transpose(image))
        except Exception as e:
            raise ImageError(f"{name}: cannot decode the image ({type(e).__name__}: {e})") from e
    path = Path(image)
    if not path.is_file():
        raise ImageError(f"{name}: no such image file" if not path.exists() else f"{name}: not a file")
    try:
        with Image.open(path) as f:
            f.load()
            return _to_rgb(ImageOps.exif_transpose(f))
    except Exception as e:
        raise ImageError(f"{name}: cannot read the image ({type(e).__name__}: {e})") from e


def crop_image(img: Image.Image, crop, name="<image>") -> Image.Image:
    """Crop ``img`` to ``crop = (x1, y1, x2, y2)`` in its pixel coordinates (x2, y2 exclusive).

    Coordinates may be fractional (Oxford/Paris boxes are); they are rounded to the nearest
    pixel and clipped to the image.

    Raises
    ------
    ImageError
        If the box is malformed or does not overlap the image.
    """
    try:
        x1, y1, x2, y2 = (float(v) for v in crop)
    except Exception as e:
        raise ImageError(f"{name}: crop must be (x1, y1, x2, y2), got {crop!r}") from e
    W, H = img.size
    box = [int(np.floor(v + 0.5)) for v in (x1, y1, x2, y2)]
    box = [min(max(box[0], 0), W), min(max(box[1], 0), H), min(max(box[2], 0), W), min(max(box[3], 0), H)]
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ImageError(
            f"{name}: crop box {tuple(crop)} is empty or lies outside the {W}x{H} image "
            "(expected x1 < x2, y1 < y2 in pixels)"
        )
    return img.crop(tuple(box))


def resized_hw(hw, max_dim) -> tuple[int, int]:
    """``(H, W)`` after resizing so that ``max(H, W) == max_dim`` keeping the aspect ratio.

    ``max_dim=None`` keeps the size. Sides are rounded to the nearest pixel, at least 1.
    """
    H, W = int(hw[0]), int(hw[1])
    if max_dim is None:
        return H, W
    s = max_dim / max(H, W)
    return max(1, int(round(H * s))), max(1, int(round(W * s)))


def resize_max_dim(img: Image.Image, max_dim) -> Image.Image:
    """Resize so that ``max(W, H) == max_dim`` keeping aspect (up or down; paper Sec. 5.1)."""
    H, W = resized_hw((img.height, img.width), max_dim)
    if (H, W) == (img.height, img.width):
        return img
    return img.resize((W, H), RESAMPLE)


_SIFT = None


def detect_sift(rgb: np.ndarray) -> np.ndarray:
    """SIFT keypoint locations of an RGB uint8 image, ``(n, 2)`` float32 ``(x, y)``, 0-based.

    OpenCV's SIFT detector with its default parameters on the grayscale image. Keypoints that
    OpenCV duplicates for several orientations are kept once. (The authors used VLFeat's
    ``vl_sift``; its frames are 1-based, see :mod:`selconv_lite.masks`.)
    """
    import cv2

    global _SIFT
    if _SIFT is None:
        _SIFT = cv2.SIFT_create()
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    kps = _SIFT.detect(gray, None)
    if not kps:
        return np.zeros((0, 2), np.float32)
    xy = np.array([kp.pt for kp in kps], dtype=np.float32)
    _, first = np.unique(xy, axis=0, return_index=True)
    return xy[np.sort(first)]


# ----------------------------------------------------------------------------------------------
# the extractor
# ----------------------------------------------------------------------------------------------
class FeatureExtractor:
    """Extract local conv. features (and SIFT keypoints) of single images.

    Parameters
    ----------
    weights : {"caffe-onnx", "torchvision"} or path
        VGG16 weights, see :func:`selconv_lite.backbone.load_vgg16_trunk`.
    layers : str or sequence of str
        Any of :data:`selconv_lite.backbone.LAYERS`; all come from one forward pass.
    max_dim : int or None
        Resize so that ``max(W, H) == max_dim`` (1024 in the paper); None keeps the size.
    device : str or torch.device, optional
        Default CUDA when available, else CPU.
    sift : bool
        Detect SIFT keypoints (default True); when False ``keypoints`` is empty.
    convention : {"caffe", "torchvision"}, optional
        Input normalisation of a local state dict that does not record it.
    num_threads : int, optional
        If given, ``torch.set_num_threads(num_threads)`` (process-wide). By default PyTorch
        uses one thread per physical core, which is right for a dedicated machine.

    Examples
    --------
    >>> fx = FeatureExtractor(layers=("pool5",), max_dim=1024)       # doctest: +SKIP
    >>> f = fx.extract("all_souls_000013.jpg", crop=(136.5, 34.1, 648.5, 955.7))["pool5"]
    >>> f.fmap.shape, f.image_hw, f.keypoints.shape                   # doctest: +SKIP
    """

    def __init__(self, weights="caffe-onnx", layers=("pool5",), max_dim=1024, device=None,
                 sift=True, convention=None, num_threads=None):
        if isinstance(layers, str):
            layers = (layers,)
        layers = tuple(dict.fromkeys(layers))
        if not layers:
            raise ValueError("layers must name at least one layer")
        for layer in layers:
            layer_stride(layer)  # validates
        if max_dim is not None and (int(max_dim) != max_dim or max_dim < 1):
            raise ValueError(f"max_dim must be a positive integer or None, got {max_dim!r}")
        self.weights = weights
        self.layers = layers
        self.max_dim = None if max_dim is None else int(max_dim)
        self.device = default_device(device)
        self.sift = bool(sift)
        self.convention = convention
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        self._trunk = None

    @property
    def trunk(self):
        """The VGG16 trunk (loaded on first use, shared per process)."""
        if self._trunk is None:
            self._trunk = load_vgg16_trunk(self.weights, self.device, self.convention)
        return self._trunk

    @property
    def weights_id(self) -> str:
        """Identity of the weights (see :func:`selconv_lite.backbone.weights_identity`)."""
        from .backbone import weights_identity

        return self._trunk.weights_id if self._trunk is not None else weights_identity(self.weights, self.convention)

    def prepare(self, image, crop=None, name=None) -> np.ndarray:
        """Load, crop and resize ``image``: the ``(H, W, 3)`` uint8 RGB array the network sees.

        Raises
        ------
        ImageError
            Unreadable image or bad crop box.
        EmptyFeatureMapError
            The resized image is too small for the deepest requested layer.
        """
        name = _name_of(image, name)
        img = load_image(image, name)
        if crop is not None:
            img = crop_image(img, crop, name)
        img = resize_max_dim(img, self.max_dim)
        rgb = np.array(img, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)
        self._check_not_empty(rgb.shape[:2], name)
        return rgb

    def _check_not_empty(self, hw, name):
        for layer in self.layers:
            h, w = feature_map_hw(hw, layer)
            if h == 0 or w == 0:
                s = layer_stride(layer)
                raise EmptyFeatureMapError(
                    f"{name}: the network would see a {hw[1]}x{hw[0]} (WxH) image (max_dim="
                    f"{self.max_dim}), whose {layer} feature map is empty ({h}x{w}); both sides "
                    f"must be at least {s} px. Use a larger max_dim, a larger crop, or drop this image."
                )

    def to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float32 0-255 tensor on the device."""
        t = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
        return t.permute(2, 0, 1).unsqueeze(0).float()

    def forward(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """Run the trunk on a prepared image; ``{layer: (h, w, K) float32 array}``."""
        x = self.to_tensor(rgb)
        with torch.inference_mode():
            out = self.trunk(x, self.layers)
            return {k: v[0].permute(1, 2, 0).float().contiguous().cpu().numpy() for k, v in out.items()}

    def extract(self, image, crop=None, name=None) -> dict[str, ImageFeatures]:
        """Features of one image.

        Parameters
        ----------
        image : str, Path or PIL.Image.Image
        crop : (x1, y1, x2, y2), optional
            Box in original-image pixels (after EXIF orientation), applied before resizing.
        name : str, optional
            Identifier stored in the result and used in error messages (default: the path).

        Returns
        -------
        dict
            ``{layer: ImageFeatures(fmap (h, w, K) float32, image_hw, keypoints, name)}``; the
            keypoints (same for every layer) are in the pixels of the resized image ``image_hw``.
        """
        name = _name_of(image, name)
        rgb = self.prepare(image, crop, name)
        maps = self.forward(rgb)
        kps = detect_sift(rgb) if self.sift else np.zeros((0, 2), np.float32)
        hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        return {layer: ImageFeatures(fmap=maps[layer], image_hw=hw, keypoints=kps, name=name)
                for layer in self.layers}

    def __repr__(self):
        return (f"FeatureExtractor(weights={self.weights!r}, layers={self.layers!r}, "
                f"max_dim={self.max_dim!r}, device={str(self.device)!r}, sift={self.sift})")


__all__ += ["LAYERS"]
