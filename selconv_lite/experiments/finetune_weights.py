"""Published fine-tuned VGG16 trunks for the framework (paper Sec. 5.3, "Taking advantages of
fine-tuned VGG network", Table 6 bottom half): downloads and weight conversions.

Every trunk ends as a state-dict file that :func:`selconv_lite.features.backbone.load_vgg16_trunk`
accepts as ``weights=<path>`` (a :class:`~selconv_lite.features.backbone.VGG16Trunk` state dict
that carries its own input normalisation buffers ``mean`` / ``std``, RGB 0-255 input). The
offline alternative, fine-tuning conv5 here, is :mod:`selconv_lite.experiments.finetune`.

Online (needs internet once)
    :func:`fetch_finetuned_trunk` downloads and converts published fine-tuned VGG16 trunks:

    * ``"cirtorch-vgg16-gem"``: the GeM VGG16 fine-tuned on SfM-120k by Radenovic, Tolias and
      Chum ("Fine-tuning CNN image retrieval with no human annotation", TPAMI 2018), a PyTorch
      checkpoint of the cirtorch toolbox (``{"state_dict": ..., "meta": ...}``; the conv trunk is
      ``features.0`` ... ``features.28`` in torchvision's numbering, the input is RGB in [0, 1]
      normalised by ``meta["mean"]`` / ``meta["std"]``);
    * ``"siamac-vgg16"``: the siamese-MAC VGG16 of Radenovic et al. (ECCV 2016), "siaMAC" in the
      paper's Table 6, as the MatConvNet DagNN ``.mat`` file the authors link from their
      reproducibility repository (filters stored ``(kh, kw, in, out)``, RGB input minus the
      *scalar* mean of ``meta.normalization.averageImage``, as the authors' ``mac.m`` does).

    :func:`convert_cirtorch_checkpoint` and :func:`convert_matconvnet_vgg16` do the conversions
    on files a user downloaded by hand. Without internet a download fails at once with a
    :class:`~selconv_lite.data.transfer.OfflineError` that says where to put the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..features.backbone import CONV_NAMES, WeightsError
from ..core.files import atomic_write
from ..data.transfer import OfflineError, download_file

__all__ = [
    "FINETUNED_TRUNKS",
    "TV_CONV_INDEX",
    "VGG16_CHANNELS",
    "default_weights_dir",
    "fetch_finetuned_trunk",
    "convert_cirtorch_checkpoint",
    "convert_matconvnet_vgg16",
    "trunk_state_dict_from_convs",
    "save_trunk",
]

#: Index of each conv layer inside ``VGG16Trunk.features`` (= torchvision's ``vgg16().features``).
TV_CONV_INDEX = dict(zip(CONV_NAMES, (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)))
#: (in, out) channels of the 13 conv layers of VGG16 (configuration D).
VGG16_CHANNELS = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                   (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512))

#: Published fine-tuned VGG16 trunks that :func:`fetch_finetuned_trunk` can download.
FINETUNED_TRUNKS = {
    "cirtorch-vgg16-gem": {
        "url": ("http://cmp.felk.cvut.cz/cnnimageretrieval/data/networks/retrieval-SfM-120k/"
                "retrievalSfM120k-vgg16-gem-b4dcdc6.pth"),
        "format": "cirtorch",
        # torch.hub naming convention: the suffix of the file name is a prefix of its SHA-256
        "sha256_prefix": "b4dcdc6",
        "reference": ("F. Radenovic, G. Tolias, O. Chum. Fine-tuning CNN image retrieval with no "
                      "human annotation. TPAMI 2018 (cirtorch, VGG16 + GeM, SfM-120k)."),
    },
    "siamac-vgg16": {
        "url": "https://www.dropbox.com/s/hq81glcxd2ei6qe/siaMAC_vgg.mat?dl=1",
        "filename": "siaMAC_vgg.mat",
        "format": "matconvnet",
        "sha256_prefix": None,
        "reference": ("F. Radenovic, G. Tolias, O. Chum. CNN image retrieval learns from BoW: "
                      "unsupervised fine-tuning with hard examples. ECCV 2016 (siaMAC, the "
                      "'siaMAC' trunk of the paper's Table 6; file linked by Hoang et al.)."),
    },
}


# ----------------------------------------------------------------------------------------------
# downloads (the transfer itself is selconv_lite.data.transfer.download_file: resume, tqdm, checksum, offline errors)
# ----------------------------------------------------------------------------------------------
def default_weights_dir() -> Path:
    """Where downloaded and converted trunks are kept: ``<feature cache dir>/weights``."""
    from ..features.cache import default_cache_dir

    return Path(default_cache_dir()) / "weights"


# ----------------------------------------------------------------------------------------------
# conversions
# ----------------------------------------------------------------------------------------------
def trunk_state_dict_from_convs(convs: Sequence[tuple], mean_rgb, std_rgb) -> dict:
    """A :class:`~selconv_lite.features.backbone.VGG16Trunk` state dict from 13 conv layers.

    Parameters
    ----------
    convs : sequence of 13 (kernel, bias)
        Kernels in PyTorch layout ``(out, in, 3, 3)`` expecting **RGB** input for conv1_1.
    mean_rgb, std_rgb : sequence of 3 floats
        Input normalisation on the 0-255 scale: the trunk computes ``(x - mean) / std``.

    Returns
    -------
    dict
        ``{"features.0.weight": ..., ..., "mean": (1, 3, 1, 1), "std": (1, 3, 1, 1)}``.

    Raises
    ------
    WeightsError
        If the layers are not VGG16's (count or shapes).
    """
    if len(convs) != 13:
        raise WeightsError(f"VGG16 has 13 conv layers, got {len(convs)}")
    sd = {}
    for name, (cin, cout), (w, b) in zip(CONV_NAMES, VGG16_CHANNELS, convs):
        w = torch.as_tensor(np.asarray(w, dtype=np.float32))
        b = torch.as_tensor(np.asarray(b, dtype=np.float32)).reshape(-1)
        if tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            raise WeightsError(f"{name}: kernel {tuple(w.shape)} / bias {tuple(b.shape)} do not fit "
                               f"VGG16's ({cout}, {cin}, 3, 3) / ({cout},)")
        i = TV_CONV_INDEX[name]
        sd[f"features.{i}.weight"] = w.contiguous().clone()
        sd[f"features.{i}.bias"] = b.contiguous().clone()
    sd["mean"] = torch.tensor([float(v) for v in mean_rgb], dtype=torch.float32).view(1, 3, 1, 1)
    sd["std"] = torch.tensor([float(v) for v in std_rgb], dtype=torch.float32).view(1, 3, 1, 1)
    return sd


def _default_out(src: Path, suffix: str) -> Path:
    return src.with_name(src.stem + suffix)


def convert_cirtorch_checkpoint(src, dst=None, trusted: bool = False) -> Path:
    """Convert a cirtorch VGG16 checkpoint into a trunk state dict for ``load_vgg16_trunk``.

    The checkpoint is ``{"state_dict": {"features.0.weight", ..., "features.28.bias",
    "pool.p", ...}, "meta": {"architecture": "vgg16", "mean": [...], "std": [...], ...}}``;
    its input is RGB in [0, 1] normalised by ``meta["mean"]`` / ``meta["std"]``, i.e. on the
    0-255 scale ``(x - 255 mean) / (255 std)``. Only the conv trunk is kept (pooling and
    whitening are the framework's business).

    Parameters
    ----------
    src : str or Path
        The ``.pth`` checkpoint.
    dst : str or Path, optional
        Output file; default ``<src stem>-trunk.pt`` next to ``src``.
    trusted : bool
        The file was verified (checksum of the published file). Only then may a checkpoint that
        holds more than tensors and plain containers be unpickled in full.

    Returns
    -------
    Path
        The converted state dict.

    Raises
    ------
    WeightsError
        Not a cirtorch VGG16 checkpoint, or one that cannot be read safely.
    """
    src = Path(src)
    if not src.is_file():
        raise WeightsError(f"{src}: no such checkpoint file")
    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:
        if not trusted:
            raise WeightsError(
                f"{src} cannot be read with torch.load(weights_only=True) ({type(e).__name__}: {e}). "
                "If you trust the file (e.g. it is the published checkpoint), call "
                "convert_cirtorch_checkpoint(path, trusted=True).") from e
        state = torch.load(src, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "state_dict" not in state:
        raise WeightsError(f"{src} is not a cirtorch checkpoint (no 'state_dict' entry)")
    meta = state.get("meta") or {}
    arch = meta.get("architecture", "vgg16")
    if arch != "vgg16":
        raise WeightsError(f"{src}: architecture {arch!r}, only 'vgg16' trunks fit this package")
    sd = {k[7:] if k.startswith("module.") else k: v for k, v in state["state_dict"].items()}
    convs = []
    for name in CONV_NAMES:
        i = TV_CONV_INDEX[name]
        try:
            convs.append((sd[f"features.{i}.weight"].float().numpy(), sd[f"features.{i}.bias"].float().numpy()))
        except KeyError as e:
            raise WeightsError(f"{src}: missing {e.args[0]} ({name}); not a VGG16 cirtorch network") from e
    mean = meta.get("mean", [0.485, 0.456, 0.406])
    std = meta.get("std", [0.229, 0.224, 0.225])
    out = trunk_state_dict_from_convs(convs, [255.0 * m for m in mean], [255.0 * s for s in std])
    dst = Path(dst) if dst is not None else _default_out(src, "-trunk.pt")
    save_trunk(out, dst)
    return dst


def _mat_get(obj, name):
    """Field ``name`` of a scipy ``mat_struct`` or a dict (None when missing)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _as_list(x):
    if x is None:
        return []
    if isinstance(x, np.ndarray):
        return list(x.reshape(-1)) if x.dtype == object else [x]
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _mat_convs(net, src) -> list[tuple[np.ndarray, np.ndarray]]:
    """The conv layers of a MatConvNet network (DagNN or SimpleNN), in order, deduplicated
    (a siamese DagNN shares each filter between its two branches)."""
    layers = _as_list(_mat_get(net, "layers"))
    params = _as_list(_mat_get(net, "params"))
    convs, seen = [], set()
    if params:  # DagNN: layers name their params, values in net.params
        values = {str(_mat_get(p, "name")): _mat_get(p, "value") for p in params}
        for layer in layers:
            if str(_mat_get(layer, "type")) != "dagnn.Conv":
                continue
            pnames = [str(n) for n in _as_list(_mat_get(layer, "params"))]
            if not pnames or pnames[0] in seen:
                continue
            seen.add(pnames[0])
            if len(pnames) < 2 or pnames[0] not in values or pnames[1] not in values:
                raise WeightsError(f"{src}: conv layer {_mat_get(layer, 'name')} lacks its filter or bias")
            convs.append((np.asarray(values[pnames[0]]), np.asarray(values[pnames[1]])))
    else:  # SimpleNN: layers{i}.weights = {filters, biases}
        for layer in layers:
            if str(_mat_get(layer, "type")) != "conv":
                continue
            w = _as_list(_mat_get(layer, "weights"))
            if len(w) < 2:
                raise WeightsError(f"{src}: conv layer {_mat_get(layer, 'name')} lacks its filter or bias")
            convs.append((np.asarray(w[0]), np.asarray(w[1])))
    return convs


def convert_matconvnet_vgg16(src, dst=None, mean_mode: str = "scalar") -> Path:
    """Convert a MatConvNet VGG16 (DagNN, e.g. siaMAC, or SimpleNN) ``.mat`` into a trunk state dict.

    MatConvNet stores filters as ``(kh, kw, in, out)`` single arrays (rows = image y) and feeds
    RGB images minus ``meta.normalization.averageImage``; its ``vl_nnconv`` is a correlation, as
    PyTorch's ``conv2d``. The conversion transposes each filter to ``(out, in, kh, kw)`` and keeps
    the first 13 3x3 conv layers (fully-connected layers stored as convs are dropped).

    Parameters
    ----------
    src : str or Path
        The ``.mat`` file (MATLAB v5/v7; v7.3 (HDF5) files must be re-saved with ``-v7``).
    dst : str or Path, optional
        Output file; default ``<src stem>-trunk.pt`` next to ``src``.
    mean_mode : {"scalar", "channel"}
        ``"scalar"`` (default): subtract the mean of the whole ``averageImage`` from every
        channel, as the authors' ``mac.m`` does for siaMAC; ``"channel"``: per-channel mean.

    Returns
    -------
    Path

    Raises
    ------
    WeightsError
        Unreadable file, not a VGG16, no ``averageImage``.
    """
    import scipy.io

    src = Path(src)
    if not src.is_file():
        raise WeightsError(f"{src}: no such .mat file")
    if mean_mode not in ("scalar", "channel"):
        raise ValueError(f"mean_mode must be 'scalar' or 'channel', not {mean_mode!r}")
    with open(src, "rb") as f:
        head = f.read(128)
    if b"MATLAB 7.3" in head or head[:8] == b"\x89HDF\r\n\x1a\n":
        raise WeightsError(f"{src} is a MATLAB v7.3 (HDF5) file, which scipy cannot read. Re-save "
                           "it in MATLAB with  net = load(file); save(out, '-struct', 'net', '-v7')")
    try:
        data = scipy.io.loadmat(str(src), squeeze_me=True, struct_as_record=False)
    except Exception as e:
        raise WeightsError(f"Cannot read {src} as a MATLAB file ({type(e).__name__}: {e})") from e
    net = data["net"] if "net" in data else data
    raw = [(w, b) for w, b in _mat_convs(net, src) if w.ndim == 4 and w.shape[:2] == (3, 3)]
    if len(raw) < 13:
        raise WeightsError(f"{src}: found {len(raw)} 3x3 conv layers; a VGG16 trunk has 13")
    convs = [(np.transpose(w, (3, 2, 0, 1)), b) for w, b in raw[:13]]
    meta = _mat_get(net, "meta")
    norm = _mat_get(meta, "normalization") if meta is not None else None
    avg = _mat_get(norm, "averageImage") if norm is not None else None
    if avg is None:
        raise WeightsError(f"{src}: no meta.normalization.averageImage; cannot know the input mean")
    avg = np.asarray(avg, dtype=np.float64)
    if mean_mode == "scalar":
        mean = [float(avg.mean())] * 3
    else:
        mean = [float(v) for v in avg.reshape(-1, 3).mean(axis=0)] if avg.size != 3 else [float(v) for v in avg.reshape(3)]
    out = trunk_state_dict_from_convs(convs, mean, (1.0, 1.0, 1.0))
    dst = Path(dst) if dst is not None else _default_out(src, "-trunk.pt")
    save_trunk(out, dst)
    return dst


def save_trunk(trunk_or_state, path) -> Path:
    """Save a :class:`VGG16Trunk` (or its state dict) atomically as a ``.pt`` state dict."""
    sd = trunk_or_state.state_dict() if isinstance(trunk_or_state, nn.Module) else trunk_or_state
    sd = {k: v.detach().cpu().contiguous() for k, v in sd.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        torch.save(sd, fh)
    return path


def fetch_finetuned_trunk(name: str = "cirtorch-vgg16-gem", weights_dir=None, progress: bool = True) -> Path:
    """Download (once) and convert a published fine-tuned VGG16; returns the state-dict path.

    Use the result as ``weights=`` anywhere (``FeatureCache``, ``extract_features``,
    ``load_vgg16_trunk``). Needs internet on the first call; later calls reuse the converted file.

    Parameters
    ----------
    name : str
        A key of :data:`FINETUNED_TRUNKS`: ``"cirtorch-vgg16-gem"`` or ``"siamac-vgg16"``.
    weights_dir : str or Path, optional
        Where to keep the files; default :func:`default_weights_dir`.

    Raises
    ------
    selconv_lite.data.transfer.DownloadError
        No internet (an ``OfflineError``: the message says where to place a hand-downloaded
        file), or the file's SHA-256 does not start with the published prefix
        (a ``ChecksumError``).
    """
    if name not in FINETUNED_TRUNKS:
        raise ValueError(f"unknown fine-tuned trunk {name!r}; choose one of {', '.join(FINETUNED_TRUNKS)}")
    info = FINETUNED_TRUNKS[name]
    wdir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    fname = info.get("filename") or info["url"].rsplit("/", 1)[-1].split("?")[0]
    raw = wdir / fname
    out = wdir / f"{name}-trunk.pt"
    if out.is_file():
        return out
    try:
        download_file(info["url"], raw, sha256=info.get("sha256_prefix"), progress=progress, timeout=30.0)
    except OfflineError as e:
        raise OfflineError(f"Downloading {info['url']} needs internet access. {e} (You may also pass "
                           "the file's path to the convert_* function.)") from e
    if info["format"] == "cirtorch":
        return convert_cirtorch_checkpoint(raw, out, trusted=bool(info.get("sha256_prefix")))
    return convert_matconvnet_vgg16(raw, out, mean_mode="scalar")
