"""From an image file to local deep conv. features and SIFT keypoints (paper Sec. 3.1, 3.2.1, 5.1).

For one image this module

1. loads it with PIL, honouring the EXIF orientation and converting grayscale, bilevel,
   palette, RGBA/LA (composited on white), CMYK and 16-bit images to 8-bit RGB;
2. optionally crops it to a box ``(x1, y1, x2, y2)`` in the pixels of the image as displayed,
   i.e. after its EXIF orientation -- the one frame in which boxes are defined, checked by
   :func:`selconv_lite.data.loaders.load_folder` and cropped here (the Oxford/Paris query
   protocol, Sec. 5.1: "we use the cropped query images based on provided bounding boxes");
3. resizes it so that ``max(W, H) == max_dim`` keeping the aspect ratio (Sec. 5.1: "All images
   are resized so that the maximum dimension is 1024 while preserving aspect ratios"). A cropped
   query is, by default, resized by the factor that brings its *full* image to ``max_dim``, so
   that query and database objects appear at the same scale -- what the authors' extraction
   script does (``ratio`` from the full image, then ``crop_qim``, then ``imresize(I, ratio)``);
   ``crop_scale="crop"`` resizes the crop itself to ``max_dim`` instead;
4. runs the VGG16 trunk (:mod:`selconv_lite.features.backbone`) and returns each requested layer as a
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

from .backbone import (LAYERS, check_precision, default_device, feature_map_hw, layer_stride,
                       load_vgg16_trunk, precision_context)
from ..core.types import ImageFeatures
from ..core.utils import round_half_away

__all__ = [
    "ImageError",
    "EmptyFeatureMapError",
    "image_name",
    "load_image",
    "crop_image",
    "crop_box_pixels",
    "resize_max_dim",
    "resize_to",
    "resized_hw",
    "scaled_hw",
    "detect_sift",
    "image_inputs",
    "FeatureExtractor",
]

#: Resampling filter for the resize (antialiased bicubic, like MATLAB's imresize default).
RESAMPLE = Image.Resampling.BICUBIC


class ImageError(ValueError):
    """An image cannot be read, decoded or used; the message names the file."""


class EmptyFeatureMapError(ImageError):
    """The image is too small/thin for the requested layer: its feature map would be empty."""


def image_name(image, name=None) -> str:
    """The name used in messages for ``image``: ``name`` if given, else its path or PIL filename."""
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
    name = image_name(image, name)
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


def crop_box_pixels(crop, size, name="<image>") -> tuple[int, int, int, int]:
    """Pixel box ``(left, top, right, bottom)`` (right/bottom exclusive) of ``crop`` in a ``size = (W, H)`` image.

    ``crop = (x1, y1, x2, y2)`` follows the Oxford/Paris ground truth and the ``crop_qim.m``
    used by the authors' code (from Tolias et al.'s R-MAC code)::

        bbx = uint32(max(bbx + 1, 1));
        im  = im(bbx(2):min(bbx(4), H), bbx(1):min(bbx(3), W), :);

    i.e. 0-based coordinates, rounded half away from zero, **x2 and y2 inclusive**, clipped to
    the image.

    Raises
    ------
    ImageError
        If the box is malformed or does not overlap the image.
    """
    try:
        x1, y1, x2, y2 = (float(v) for v in crop)
        if not all(np.isfinite((x1, y1, x2, y2))):
            raise ValueError("non-finite")
    except Exception as e:
        raise ImageError(f"{name}: crop must be (x1, y1, x2, y2) in pixels, got {crop!r}") from e
    W, H = size
    x1, y1, x2, y2 = (int(v) for v in round_half_away([x1, y1, x2, y2]))
    left, top = max(x1, 0), max(y1, 0)
    right, bottom = min(x2 + 1, W), min(y2 + 1, H)
    if right <= left or bottom <= top:
        raise ImageError(
            f"{name}: crop box {tuple(crop)} is empty or lies outside the {W}x{H} image "
            "(expected x1 <= x2, y1 <= y2 in pixels)"
        )
    return left, top, right, bottom


def crop_image(img: Image.Image, crop, name="<image>") -> Image.Image:
    """Crop ``img`` to ``crop = (x1, y1, x2, y2)`` (see :func:`crop_box_pixels`: x2, y2 inclusive)."""
    return img.crop(crop_box_pixels(crop, img.size, name))


def scaled_hw(hw, scale: float) -> tuple[int, int]:
    """Size after resizing by ``scale``, as MATLAB's ``imresize(I, scale)``: ``ceil(scale * size)``.

    (A relative tolerance of 1e-9 keeps ``max_dim / L * L`` from rounding up past ``max_dim``.)
    """
    return tuple(max(1, int(np.ceil(scale * int(v) * (1 - 1e-9)))) for v in hw)


def resized_hw(hw, max_dim) -> tuple[int, int]:
    """``(H, W)`` after resizing so that ``max(H, W) == max_dim`` keeping the aspect ratio.

    The scale is ``max_dim / max(H, W)`` and the sides are ``ceil(scale * side)`` as in the
    authors' ``I = imresize(I, max_img_dim / max(size(I, 1), size(I, 2)))``. ``max_dim=None``
    keeps the size.
    """
    H, W = int(hw[0]), int(hw[1])
    if max_dim is None:
        return H, W
    return scaled_hw((H, W), max_dim / max(H, W))


def resize_to(img: Image.Image, hw) -> Image.Image:
    """Resize to ``hw = (H, W)`` with antialiased bicubic (like MATLAB's ``imresize`` default)."""
    H, W = int(hw[0]), int(hw[1])
    if (H, W) == (img.height, img.width):
        return img
    return img.resize((W, H), RESAMPLE)


def resize_max_dim(img: Image.Image, max_dim) -> Image.Image:
    """Resize so that ``max(W, H) == max_dim`` keeping aspect (up or down; paper Sec. 5.1)."""
    return resize_to(img, resized_hw((img.height, img.width), max_dim))


#: SIFT detector settings of the authors' code: ``vl_sift(I, 'PeakThresh', 4, 'edgethresh', 10)``
#: on the 0-255 grayscale image, VLFeat's default first octave 0 (no upsampling).
SIFT_PEAK_THRESH = 4.0
SIFT_EDGE_THRESH = 10.0
_SIFT_LAYERS = 3
_SIFT_CACHE: dict = {}


def detect_sift(rgb: np.ndarray, peak_thresh: float = SIFT_PEAK_THRESH,
                edge_thresh: float = SIFT_EDGE_THRESH, upsample: bool = False) -> np.ndarray:
    """SIFT keypoint locations of an RGB uint8 image, ``(n, 2)`` float32 ``(x, y)``, 0-based.

    OpenCV's SIFT detector, set up to mimic the authors' VLFeat call
    ``vl_sift(single(rgb2gray(I)), 'PeakThresh', 4, 'edgethresh', 10)``:

    * VLFeat keeps an extremum if ``|DoG| >= peak_thresh`` on the 0-255 image; OpenCV keeps it if
      ``|DoG| * nOctaveLayers >= contrastThreshold`` on the 0-1 image, so
      ``contrastThreshold = peak_thresh * 3 / 255`` (0.047; OpenCV's default is 0.04);
    * ``edgeThreshold = edge_thresh`` (same definition in both);
    * VLFeat starts at octave 0 while OpenCV always doubles the image first (octave -1); keypoints
      from octave -1 are dropped unless ``upsample=True``.

    The two implementations still differ in details (initial blur, interpolation), so the
    keypoints are close to, not identical with, VLFeat's. Duplicates (OpenCV repeats a keypoint
    for each dominant orientation) are kept once. Coordinates are 0-based (OpenCV); VLFeat's
    are 1-based, see :mod:`selconv_lite.method.masks`.
    """
    import cv2

    key = (float(peak_thresh), float(edge_thresh))
    sift = _SIFT_CACHE.get(key)
    if sift is None:
        sift = _SIFT_CACHE[key] = cv2.SIFT_create(
            nOctaveLayers=_SIFT_LAYERS, contrastThreshold=peak_thresh * _SIFT_LAYERS / 255.0,
            edgeThreshold=edge_thresh)
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    kps = sift.detect(gray, None)
    if not upsample:
        kps = [kp for kp in kps if (kp.octave & 255) < 128]  # octave -1 is stored as 255
    if not kps:
        return np.zeros((0, 2), np.float32)
    xy = np.array([kp.pt for kp in kps], dtype=np.float32)
    _, first = np.unique(xy, axis=0, return_index=True)
    return xy[np.sort(first)]


def image_inputs(images, crops=None, names=None) -> tuple[list, list, list]:
    """``images``, ``crops`` and ``names`` as three lists of one length (``None`` -> ``None``
    per image).

    Raises
    ------
    ValueError
        If ``crops`` or ``names`` has another length than ``images``.
    """
    images = list(images)
    n = len(images)
    crops = [None] * n if crops is None else list(crops)
    names = [None] * n if names is None else list(names)
    if len(crops) != n or len(names) != n:
        raise ValueError(f"{n} images but {len(crops)} crops and {len(names)} names")
    return images, crops, names


# ----------------------------------------------------------------------------------------------
# the extractor
# ----------------------------------------------------------------------------------------------
class FeatureExtractor:
    """Extract local conv. features (and SIFT keypoints) of single images.

    Parameters
    ----------
    weights : {"caffe-onnx", "torchvision"} or path
        VGG16 weights, see :func:`selconv_lite.features.backbone.load_vgg16_trunk`.
    layers : str or sequence of str
        Any of :data:`selconv_lite.features.backbone.LAYERS`; all come from one forward pass.
    max_dim : int or None
        Resize so that ``max(W, H) == max_dim`` (1024 in the paper); None keeps the size.
    device : str or torch.device, optional
        Default CUDA when available, else CPU.
    sift : bool
        Detect SIFT keypoints (default True, settings of :func:`detect_sift`); when False
        ``keypoints`` is empty.
    crop_scale : {"image", "crop"}
        How a cropped image is resized: ``"image"`` (default, the authors' code) scales the crop
        by ``max_dim / max(W, H)`` of the full image; ``"crop"`` makes the crop's longer side
        ``max_dim``.
    convention : {"caffe", "torchvision"}, optional
        Input normalisation of a local state dict that does not record it.
    num_threads : int, optional
        If given, ``torch.set_num_threads(num_threads)`` (process-wide). By default PyTorch
        uses one thread per physical core, which is right for a dedicated machine.
    precision : {"float32", "tf32", "bf16", "fp16"}
        Arithmetic of the forward pass (:func:`selconv_lite.features.backbone.precision_context`).
        ``"float32"`` (default) is the paper's arithmetic and, on a CPU, bit-identical to the
        package without this option; ``"bf16"`` (CPU or CUDA) and ``"tf32"`` / ``"fp16"``
        (CUDA only; a clear ``ValueError`` elsewhere) trade accuracy for GPU speed -- their
        effect on the maps and on mAP is measured by ``benchmarks/bench_gpu.py``
        (docs/features.md). The maps are returned as float32 in every mode.
    cudnn_benchmark : bool
        Let cuDNN pick its fastest algorithm once per input shape (CUDA only).

    Examples
    --------
    >>> fx = FeatureExtractor(layers=("pool5",), max_dim=1024)       # doctest: +SKIP
    >>> f = fx.extract("all_souls_000013.jpg", crop=(136.5, 34.1, 648.5, 955.7))["pool5"]
    >>> f.fmap.shape, f.image_hw, f.keypoints.shape                   # doctest: +SKIP
    """

    def __init__(self, weights="caffe-onnx", layers=("pool5",), max_dim=1024, device=None,
                 sift=True, convention=None, num_threads=None, crop_scale="image",
                 precision="float32", cudnn_benchmark=False):
        if isinstance(layers, str):
            layers = (layers,)
        layers = tuple(dict.fromkeys(layers))
        if not layers:
            raise ValueError("layers must name at least one layer")
        for layer in layers:
            layer_stride(layer)  # validates
        if max_dim is not None and (int(max_dim) != max_dim or max_dim < 1):
            raise ValueError(f"max_dim must be a positive integer or None, got {max_dim!r}")
        if crop_scale not in ("image", "crop"):
            raise ValueError(f"crop_scale must be 'image' or 'crop', got {crop_scale!r}")
        self.crop_scale = crop_scale
        self.weights = weights
        self.layers = layers
        self.max_dim = None if max_dim is None else int(max_dim)
        self.device = default_device(device)
        self.sift = bool(sift)
        self.convention = convention
        self.precision = check_precision(precision, self.device)
        self.cudnn_benchmark = bool(cudnn_benchmark)
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
        """Identity of the weights (see :func:`selconv_lite.features.backbone.weights_identity`)."""
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
        name = image_name(image, name)
        img = load_image(image, name)
        full_hw = (img.height, img.width)
        if crop is not None:
            img = crop_image(img, crop, name)
        hw = (img.height, img.width)
        if crop is not None and self.crop_scale == "image" and self.max_dim is not None:
            hw = scaled_hw(hw, self.max_dim / max(full_hw))
        else:
            hw = resized_hw(hw, self.max_dim)
        img = resize_to(img, hw)
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

    def run_trunk(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The trunk on a float ``(N, 3, H, W)`` RGB 0-255 tensor on the device, in this
        extractor's precision, under ``inference_mode``: ``{layer: (N, K, h, w) tensor}``
        (bfloat16/float16 tensors in those precisions)."""
        with torch.inference_mode(), precision_context(self.precision, self.device,
                                                       self.cudnn_benchmark):
            return self.trunk(x, self.layers)

    def forward(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """Run the trunk on a prepared image; ``{layer: (h, w, K) float32 array}``."""
        x = self.to_tensor(rgb)
        with torch.inference_mode():
            out = self.run_trunk(x)
            return {k: v[0].permute(1, 2, 0).float().contiguous().cpu().numpy() for k, v in out.items()}

    def forward_batch(self, rgbs) -> list[dict[str, np.ndarray]]:
        """Run the trunk once on several prepared images **of the same size**.

        Returns one ``{layer: (h, w, K) float32 array}`` per image, equal to :meth:`forward` of
        each image (a convolution treats the images of a batch independently; the maps are
        copied out of the batch so that each owns its memory).

        Raises
        ------
        ValueError
            If the images differ in size.
        """
        rgbs = list(rgbs)
        if not rgbs:
            return []
        shapes = {tuple(r.shape) for r in rgbs}
        if len(shapes) != 1:
            raise ValueError(f"forward_batch needs images of one size, got {sorted(shapes)}")
        if len(rgbs) == 1:
            return [self.forward(rgbs[0])]
        t = torch.from_numpy(np.stack(rgbs)).to(self.device)
        x = t.permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            out = self.run_trunk(x)
            maps = {k: v.permute(0, 2, 3, 1).float().contiguous().cpu().numpy() for k, v in out.items()}
        return [{k: m[i].copy() for k, m in maps.items()} for i in range(len(rgbs))]

    def _prepare_with_keypoints(self, image, crop, name):
        rgb = self.prepare(image, crop, name)
        kps = detect_sift(rgb) if self.sift else np.zeros((0, 2), np.float32)
        return rgb, kps

    def extract_many(self, images, crops=None, names=None, batch_size=1, prefetch=2,
                     progress=False):
        """Features of several images, in order; image preparation overlaps the network.

        Yields exactly what ``[self.extract(im, crop, name) for ...]`` returns, one dict per
        image and in the same order, but

        * decoding, cropping, resizing and SIFT detection of the next ``prefetch`` images run
          in a background thread while the trunk works on the current one (PIL's resize and
          OpenCV's SIFT release the GIL), so on a machine with a spare core their cost
          (about 5 % of an image at max_dim 1024) leaves the critical path;
        * up to ``batch_size`` *consecutive, already prepared images of equal size* go through
          the trunk in one batch (:meth:`forward_batch`). On a GPU this keeps the device busy; on a CPU the
          convolutions already fill the cores and batching gains nothing measurable, hence
          the default 1.

        Parameters
        ----------
        images : iterable of str, Path or PIL.Image.Image
        crops : sequence of (x1, y1, x2, y2) or None, optional
            One per image (None for no crop), as in :meth:`extract`.
        names : sequence of str, optional
            One per image (default: the paths).
        batch_size : int
            Most images per forward pass (>= 1).
        prefetch : int
            Images prepared ahead (>= 0; 0 prepares in the calling thread, no overlap).
        progress : bool
            Show a tqdm bar with ETA (never when env ``SELCONV_HEADLESS`` is set).

        Raises
        ------
        ImageError, EmptyFeatureMapError
            When the bad image is reached (the features of the images before it were yielded).
        """
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor

        from tqdm.auto import tqdm

        images, crops, names = image_inputs(images, crops, names)
        n = len(images)
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(prefetch, bool) or int(prefetch) != prefetch or prefetch < 0:
            raise ValueError(f"prefetch must be a non-negative integer, got {prefetch!r}")
        names = [image_name(im, nm) for im, nm in zip(images, names)]
        _ = self.trunk  # load the weights before the worker thread starts
        ahead = int(prefetch)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="selconv-prepare") if ahead else None
        pending: deque = deque()  # (index, Future of (rgb, keypoints))
        nxt = 0

        def submit(i) -> Future:
            if pool is not None:
                return pool.submit(self._prepare_with_keypoints, images[i], crops[i], names[i])
            fut: Future = Future()  # prepared lazily, in this thread, by result()
            fut.set_result(None)
            return fut

        def result(i, fut):
            r = fut.result()
            return self._prepare_with_keypoints(images[i], crops[i], names[i]) if r is None else r

        def fill():
            nonlocal nxt
            while nxt < n and len(pending) < max(ahead, 1):
                pending.append((nxt, submit(nxt)))
                nxt += 1

        bar = tqdm(total=n, desc=f"features ({', '.join(self.layers)}, max_dim={self.max_dim})",
                   unit="img", dynamic_ncols=True,
                   disable=not progress or os.environ.get("SELCONV_HEADLESS", "") not in ("", "0"))
        try:
            fill()
            while pending:
                i, fut = pending.popleft()
                batch = [(i, result(i, fut))]
                fill()
                # batch the following images only if they are already prepared and of equal size
                while len(batch) < batch_size and pending and (pool is None or pending[0][1].done()):
                    j, fut = pending[0]
                    done: Future = Future()
                    try:
                        prep = result(j, fut)
                    except Exception as e:  # raised when image j is reached, after the batch
                        done.set_exception(e)
                        pending[0] = (j, done)
                        break
                    if prep[0].shape != batch[0][1][0].shape:
                        done.set_result(prep)
                        pending[0] = (j, done)
                        break
                    pending.popleft()
                    batch.append((j, prep))
                    fill()
                maps = self.forward_batch([rgb for _, (rgb, _) in batch])
                for (j, (rgb, kps)), m in zip(batch, maps):
                    hw = (int(rgb.shape[0]), int(rgb.shape[1]))
                    bar.update(1)
                    yield {layer: ImageFeatures(fmap=m[layer], image_hw=hw, keypoints=kps, name=names[j])
                           for layer in self.layers}
        finally:
            bar.close()
            if pool is not None:
                for _, fut in pending:
                    fut.cancel()
                pool.shutdown(wait=True)

    def extract(self, image, crop=None, name=None) -> dict[str, ImageFeatures]:
        """Features of one image.

        Parameters
        ----------
        image : str, Path or PIL.Image.Image
        crop : (x1, y1, x2, y2), optional
            Box in the pixels of the image as displayed (EXIF orientation applied, the frame of
            the ground-truth boxes; x2, y2 inclusive as in the Oxford/Paris protocol, see
            :func:`crop_box_pixels`), applied before resizing.
        name : str, optional
            Identifier stored in the result and used in error messages (default: the path).

        Returns
        -------
        dict
            ``{layer: ImageFeatures(fmap (h, w, K) float32, image_hw, keypoints, name)}``; the
            keypoints (same for every layer) are in the pixels of the resized image ``image_hw``.
        """
        name = image_name(image, name)
        rgb = self.prepare(image, crop, name)
        maps = self.forward(rgb)
        kps = detect_sift(rgb) if self.sift else np.zeros((0, 2), np.float32)
        hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        return {layer: ImageFeatures(fmap=maps[layer], image_hw=hw, keypoints=kps, name=name)
                for layer in self.layers}

    def __repr__(self):
        return (f"FeatureExtractor(weights={self.weights!r}, layers={self.layers!r}, "
                f"max_dim={self.max_dim!r}, device={str(self.device)!r}, sift={self.sift}, "
                f"crop_scale={self.crop_scale!r}"
                + ("" if self.precision == "float32" else f", precision={self.precision!r}")
                + (", cudnn_benchmark=True" if self.cudnn_benchmark else "") + ")")


__all__ += ["LAYERS"]
