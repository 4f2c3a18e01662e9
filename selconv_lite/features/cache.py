"""On-disk store of extracted conv. feature maps, so a dataset is pushed through VGG16 once.

The offline stage of the paper (Sec. 3.1 features, Sec. 5.1 resizing and query cropping) is by
far the most expensive; every later experiment (masks, embeddings, aggregation, Tables 2-6)
reuses the same maps. :class:`FeatureCache` stores one entry per (image, crop, layer):

* **keyed by everything that changes the result**: the image *content* (SHA-1 of the file's
  bytes, so a moved or copied dataset still hits and an edited file misses), the crop box, and
  -- in the name of the store's sub-folder -- the weights identity, the layer, ``max_dim``, the
  storage dtype and the format version;
* **crash-safe**: each entry is written to a temporary file and atomically renamed, so an
  interrupted extraction leaves only complete entries and simply resumes on the next call;
* **self-healing**: an entry that cannot be read back (corrupt, truncated, wrong shape) is
  re-extracted with a warning;
* **memory-bounded**: images are processed one at a time and written straight away;
  :meth:`FeatureCache.iter` yields maps lazily;
* ``dtype="float16"`` halves the disk use (maps are returned as float32 either way);
* **one forward pass per image for several layer sets**: each layer is its own entry, and a
  cache opened with ``extra_layers`` computes those layers too, in the same forward pass, the
  first time an image must be extracted. The notebook series opens its caches with its own
  layers (:mod:`selconv_lite.teaching.settings`), so a later request for ``conv4_3`` (notebooks
  06, 07) is a hit whichever notebook ran first. A layer's
  values do not depend on the other layers computed with it (the trunk runs the same modules
  on the same input and stops after the deepest layer asked for);
* **never stale**: the content hash of a file is memoised per cache object only while the
  file's identity is unchanged -- device, inode, size, ``mtime_ns`` *and* ``ctime_ns``. Tools
  that copy a file keeping its size and mtime (``cp -p``, ``rsync -t``) either write in place,
  which sets a new ``ctime`` (the kernel sets it on every write; user space cannot set it back),
  or rename a new file into place, which gives a new inode; either way the file is hashed
  again. Hashing the content on every access would be safe too but reads every image twice;
* **writes fail loudly**: a store that cannot be written (read-only folder, full disk) raises
  :class:`CacheWriteError` naming the folder, also with ``on_error="skip"`` (which skips bad
  *images* only);
* **tidy**: temporary files left by a killed writer (``.tmp-*.npz``) are removed when a cache
  is opened, once older than :data:`STALE_TMP_SECONDS` or when the process named in them on
  this host has died.

Location: ``root`` if given, else the environment variable ``SELCONV_CACHE``, else ``cache/``
in the repository root (:func:`selconv_lite.core.files.repo_root`). See :func:`default_cache_dir`.

Layout::

    <root>/features-v1/<weights_id>/<layer>_max<max_dim>_<dtype>/<k[:2]>/<k>.npz
"""
from __future__ import annotations

import json
import os
import socket
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.files import atomic_write, file_digest, repo_root
from .backbone import LAYERS, weights_identity
from ..core.utils import round_half_away
from .extraction import EmptyFeatureMapError, FeatureExtractor, ImageError, image_name
from ..core.types import ImageFeatures

__all__ = [
    "FeatureCache",
    "ExtractionSummary",
    "ExtractionError",
    "CorruptEntryWarning",
    "CacheWriteError",
    "STALE_TMP_SECONDS",
    "default_cache_dir",
    "CACHE_ENV",
    "extract_features",
]

FORMAT_VERSION = 1
#: Environment variable overriding the default feature-cache folder (:func:`default_cache_dir`).
CACHE_ENV = "SELCONV_CACHE"

class ExtractionError(RuntimeError):
    """Some images of a list could not be extracted (``on_error="raise"``)."""


class CacheWriteError(RuntimeError):
    """The store cannot be written (read-only folder, full disk, ...); never a per-image failure."""


#: zlib level of compressed entries. Level 1 writes the four series layers of a 1024-px image
#: (11 MB of float32) about 3.5x faster than ``np.savez_compressed``'s level 6 (0.11 s vs
#: 0.38 s measured on a loaded 2-core machine) for files about 10 % larger; the values are the same.
COMPRESS_LEVEL = 1


def _write_npz(fh, level, **arrays) -> None:
    """Write ``arrays`` to the open binary file ``fh`` as an ``.npz`` archive that
    :func:`numpy.load` reads, zlib-compressed at ``level`` (None: stored uncompressed)."""
    kw = ({"compression": zipfile.ZIP_STORED} if level is None
          else {"compression": zipfile.ZIP_DEFLATED, "compresslevel": int(level)})
    with zipfile.ZipFile(fh, "w", allowZip64=True, **kw) as z:
        for key, a in arrays.items():
            with z.open(f"{key}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(a), allow_pickle=False)


#: Age after which a temporary entry file is taken as left over by a killed writer.
STALE_TMP_SECONDS = 3600.0


class CorruptEntryWarning(UserWarning):
    """A cache entry could not be read back and is being re-extracted."""


def default_cache_dir() -> Path:
    """``$SELCONV_CACHE`` if set, else ``<repository root>/cache``
    (:func:`selconv_lite.core.files.repo_root`: the checkout holding the current folder, else
    the one this package was imported from, else the current folder)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return repo_root() / "cache"


@dataclass
class ExtractionSummary:
    """What :meth:`FeatureCache.extract_all` did."""

    n_images: int = 0
    n_extracted: int = 0
    n_cached: int = 0
    failures: list = field(default_factory=list)  # [(path, message)]

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self):
        s = (f"{self.n_images} images: {self.n_extracted} extracted, {self.n_cached} already cached, "
             f"{len(self.failures)} failed")
        if self.failures:
            s += ":\n" + "\n".join(f"  {p}: {m}" for p, m in self.failures)
        return s


def _crop_key(crop, crop_scale, name) -> str:
    if crop is None:
        return "full"
    # the extractor rounds boxes to whole pixels, so equal rounded boxes give equal results
    try:
        box = "_".join(str(int(v)) for v in round_half_away([float(v) for v in crop]))
    except (TypeError, ValueError) as e:
        raise ImageError(f"{name}: crop must be (x1, y1, x2, y2) in pixels, got {crop!r}") from e
    return f"crop{box}_{crop_scale}"


class FeatureCache:
    """A feature store for one configuration (weights, layers, ``max_dim``, dtype).

    Parameters
    ----------
    root : str or Path, optional
        Store location; default :func:`default_cache_dir`.
    weights : {"caffe-onnx", "torchvision"} or path
        VGG16 weights (see :func:`selconv_lite.features.backbone.load_vgg16_trunk`).
    layers : str or sequence of str
        Layers to extract (all from one forward pass), from :data:`~selconv_lite.features.backbone.LAYERS`.
        An image is a hit when the entries of all of them are present.
    extra_layers : sequence of str
        Layers computed in the *same* forward pass whenever an image must be extracted, and
        stored where their entry is missing (default none). A later cache asking for one of
        them is then a hit instead of a second pass through the trunk (e.g. the notebook
        series' :func:`selconv_lite.teaching.settings.series_layers`). They are not needed for
        a hit; where a layer of them would be empty for an image (a side below its stride) only ``layers`` are stored.
    max_dim : int or None
        Resize so that ``max(W, H) == max_dim`` (paper Sec. 5.1: 1024).
    dtype : {"float32", "float16"}
        Storage type of the maps; ``float16`` halves the disk use. Loaded maps are float32.
    device : str or torch.device, optional
        Default CUDA when available, else CPU. The trunk is loaded only if something must be
        extracted.
    compress : bool or int
        Store entries zlib-compressed (post-ReLU maps are sparse, so this saves much disk).
        ``True`` (default) uses :data:`COMPRESS_LEVEL` 1, an int 0-9 another zlib level
        (``np.savez_compressed`` uses 6), ``False`` stores the arrays uncompressed. The level
        changes the time and the file size, never the values (zlib is lossless).
    convention : {"caffe", "torchvision"}, optional
        Input normalisation of a local state dict that does not record it.
    crop_scale : {"image", "crop"}
        How cropped queries are resized (see :class:`~selconv_lite.features.extraction.FeatureExtractor`).

    Examples
    --------
    >>> cache = FeatureCache(layers=("pool5",), max_dim=1024)            # doctest: +SKIP
    >>> cache.extract_all(image_paths)                                   # doctest: +SKIP
    >>> for f in cache.iter(image_paths):                                # doctest: +SKIP
    ...     vec = f.fmap.sum(axis=(0, 1))
    """

    def __init__(self, root=None, weights="caffe-onnx", layers=("pool5",), max_dim=1024,
                 dtype="float32", device=None, compress=True, convention=None, crop_scale="image",
                 extra_layers=()):
        if isinstance(layers, str):
            layers = (layers,)
        if isinstance(extra_layers, str):
            extra_layers = (extra_layers,)
        self.layers = tuple(dict.fromkeys(layers))
        if not self.layers:
            raise ValueError("layers must name at least one layer")
        self.extra_layers = tuple(v for v in dict.fromkeys(extra_layers or ()) if v not in self.layers)
        for layer in self.layers + self.extra_layers:
            if layer not in LAYERS:
                raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")
        #: Every layer one extraction computes: ``layers`` then ``extra_layers``.
        self.all_layers = self.layers + self.extra_layers
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.weights = weights
        self.max_dim = None if max_dim is None else int(max_dim)
        self.dtype = dtype
        self.device = device
        if isinstance(compress, bool):
            self.compress = COMPRESS_LEVEL if compress else None
        elif isinstance(compress, int) and 0 <= compress <= 9:
            self.compress = int(compress)
        else:
            raise ValueError(f"compress must be True, False or a zlib level 0-9, got {compress!r}")
        self.convention = convention
        if crop_scale not in ("image", "crop"):
            raise ValueError(f"crop_scale must be 'image' or 'crop', got {crop_scale!r}")
        self.crop_scale = crop_scale
        self.weights_id = weights_identity(weights, convention)
        self._extractor = None
        self._extractor_own = None
        self._digests: dict = {}
        self.n_stale_removed = self._remove_stale_tmp()

    # ------------------------------------------------------------------ paths and keys
    @property
    def extractor(self) -> FeatureExtractor:
        """The :class:`~selconv_lite.features.extraction.FeatureExtractor` of :attr:`all_layers`
        (created on first use)."""
        if self._extractor is None:
            self._extractor = self._make_extractor(self.all_layers)
        return self._extractor

    def _make_extractor(self, layers) -> FeatureExtractor:
        return FeatureExtractor(self.weights, layers, self.max_dim, self.device, sift=True,
                                convention=self.convention, crop_scale=self.crop_scale)

    def layer_dir(self, layer: str) -> Path:
        """The folder holding ``layer``'s entries for this configuration."""
        md = "orig" if self.max_dim is None else str(self.max_dim)
        return self.root / f"features-v{FORMAT_VERSION}" / self.weights_id / f"{layer}_max{md}_{self.dtype}"

    def _digest(self, path) -> str:
        p = Path(path)
        try:
            st = p.stat()
        except OSError as e:
            raise ImageError(f"{path}: no such image file") from e
        k = (str(p.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        d = self._digests.get(k)
        if d is None:
            d = self._digests[k] = file_digest(p, "sha1")
        return d

    def entry_path(self, path, crop=None, layer="pool5") -> Path:
        """Where the entry of ``(path, crop, layer)`` lives (it may not exist)."""
        key = f"{self._digest(path)}_{_crop_key(crop, self.crop_scale, image_name(path))}"
        return self.layer_dir(layer) / key[:2] / f"{key}.npz"

    # ------------------------------------------------------------------ reading/writing entries
    def _tmp_prefix(self) -> str:
        return f".tmp-{socket.gethostname().replace('-', '_')}-{os.getpid()}-"

    def _remove_stale_tmp(self, max_age: float | None = None) -> int:
        """Delete the ``.tmp-*.npz`` files of this configuration left by killed writers.

        A file goes if it is older than ``max_age`` seconds (default
        :data:`STALE_TMP_SECONDS`) or if it names a process of this host that no longer runs.
        Returns the number of files removed.
        """
        max_age = STALE_TMP_SECONDS if max_age is None else max_age
        host = socket.gethostname().replace("-", "_")
        now, n = time.time(), 0
        for layer in self.all_layers:
            d = self.layer_dir(layer)
            if not d.is_dir():
                continue
            for tmp in d.glob("*/.tmp-*.npz"):
                try:
                    age = now - tmp.stat().st_mtime
                except OSError:
                    continue
                parts = tmp.name.split("-")
                dead = (len(parts) >= 4 and parts[1] == host and parts[2].isdigit()
                        and not _pid_alive(int(parts[2])))
                if age > max_age or dead:
                    try:
                        tmp.unlink()
                        n += 1
                    except OSError:
                        pass
        return n

    def _write(self, dest: Path, f: ImageFeatures) -> None:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheWriteError(f"cannot write to the feature cache {self.root} "
                                  f"({e.strerror or e}); make it writable or pass another "
                                  "cache folder (root=..., env SELCONV_CACHE)") from None
        try:
            with atomic_write(dest, prefix=self._tmp_prefix(), suffix=".npz") as fh:
                _write_npz(fh, self.compress, fmap=f.fmap.astype(self.dtype, copy=False),
                           image_hw=np.asarray(f.image_hw, np.int64),
                           keypoints=np.asarray(f.keypoints, np.float32).reshape(-1, 2))
        except OSError as e:
            raise CacheWriteError(f"cannot write the cache entry {dest} ({e.strerror or e}); "
                                  "is the disk full or the folder read-only?") from e

    def _read(self, entry: Path, name: str) -> ImageFeatures:
        with np.load(entry, allow_pickle=False) as z:
            fmap = np.asarray(z["fmap"], dtype=np.float32)
            hw = tuple(int(v) for v in z["image_hw"])
            kps = np.asarray(z["keypoints"], dtype=np.float32).reshape(-1, 2)
        if fmap.ndim != 3 or len(hw) != 2 or not np.all(np.isfinite(fmap)):
            raise ValueError("malformed entry")
        return ImageFeatures(fmap=fmap, image_hw=hw, keypoints=kps, name=name)

    @staticmethod
    def _valid(entry: Path) -> bool:
        """Cheap integrity check (zip structure and CRCs) of an existing entry."""
        try:
            with zipfile.ZipFile(entry) as z:
                names = set(z.namelist())
                return {"fmap.npy", "image_hw.npy", "keypoints.npy"} <= names and z.testzip() is None
        except Exception:
            return False

    def _extract_and_store(self, path, crop, name, rewrite=()) -> dict[str, ImageFeatures]:
        """One forward pass for :attr:`all_layers`; writes the entries of ``layers`` and of the
        extra layers whose entry is missing or invalid (and those of ``rewrite``)."""
        try:
            feats = self.extractor.extract(path, crop=crop, name=name)
        except EmptyFeatureMapError:
            if not self.extra_layers:
                raise
            # an extra layer of a larger stride is empty for this image: the asked-for ones only
            if self._extractor_own is None:
                self._extractor_own = self._make_extractor(self.layers)
            feats = self._extractor_own.extract(path, crop=crop, name=name)
        for layer, f in feats.items():
            entry = self.entry_path(path, crop, layer)
            if layer in self.layers or layer in rewrite or not self._valid(entry):
                self._write(entry, f)
        return feats

    # ------------------------------------------------------------------ public API
    def contains(self, path, crop=None, layer=None) -> bool:
        """True if a (structurally valid) entry exists for ``path``/``crop`` (all layers by default)."""
        layers = self.layers if layer is None else (layer,)
        try:
            return all(self._valid(self.entry_path(path, crop, lay)) for lay in layers)
        except ImageError:
            return False

    def extract_all(self, paths, crops=None, on_error="raise", progress=True) -> ExtractionSummary:
        """Make sure every image of ``paths`` (with its crop) is in the store.

        Already-stored entries are skipped (so an interrupted run resumes), a corrupt one is
        re-extracted with a warning. One image is held in memory at a time.

        Parameters
        ----------
        paths : sequence of str or Path
        crops : sequence of (x1, y1, x2, y2) or None, optional
            One per path (None for no crop), in the pixels of the image as displayed (EXIF
            orientation applied).
        on_error : {"raise", "skip"}
            ``"raise"`` (default): stop at the first bad image with an error naming it.
            ``"skip"``: go on, then warn once listing every failure (also in the summary).
        progress : bool
            Show a tqdm progress bar (never when env ``SELCONV_HEADLESS`` is set, as in
            papermill/series/sweep runs).

        Returns
        -------
        ExtractionSummary
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        paths = list(paths)
        crops = [None] * len(paths) if crops is None else list(crops)
        if len(crops) != len(paths):
            raise ValueError(f"{len(paths)} paths but {len(crops)} crops")
        from tqdm.auto import tqdm

        summary = ExtractionSummary(n_images=len(paths))
        bar = tqdm(total=len(paths), desc=f"features ({', '.join(self.all_layers)}, max_dim={self.max_dim})",
                   unit="img", dynamic_ncols=True,
                   # headless runs (papermill, series, sweep) would save a frozen bar in outputs
                   disable=not progress or os.environ.get("SELCONV_HEADLESS", "") not in ("", "0"))
        try:
            for path, crop in zip(paths, crops):
                name = image_name(path)
                try:
                    entries = [self.entry_path(path, crop, layer) for layer in self.layers]
                    existing = [e for e in entries if e.exists()]
                    if len(existing) == len(entries) and all(self._valid(e) for e in entries):
                        summary.n_cached += 1
                    else:
                        bad = [e for e in existing if not self._valid(e)]
                        if bad:
                            warnings.warn(f"{name}: corrupt cache entry {bad[0]}; re-extracting",
                                          CorruptEntryWarning, stacklevel=2)
                        self._extract_and_store(path, crop, name)
                        summary.n_extracted += 1
                except (ImageError, OSError) as e:
                    if on_error == "raise":
                        raise
                    summary.failures.append((str(path), str(e)))
                bar.update(1)
        finally:
            bar.close()
        if summary.failures:
            warnings.warn(
                f"{len(summary.failures)} of {len(paths)} images could not be extracted and were skipped:\n"
                + "\n".join(f"  {p}: {m}" for p, m in summary.failures), stacklevel=2)
        return summary

    def load(self, path, crop=None, layer="pool5") -> ImageFeatures:
        """The features of one image (extracted and stored first if missing or corrupt).

        ``layer`` is one of :attr:`layers` or of ``extra_layers``."""
        if layer not in self.all_layers:
            raise ValueError(f"layer {layer!r} is not in this cache's layers {self.all_layers}")
        name = image_name(path)
        entry = self.entry_path(path, crop, layer)
        if entry.exists():
            try:
                return self._read(entry, name)
            except Exception as e:
                warnings.warn(f"{name}: corrupt cache entry {entry} ({type(e).__name__}: {e}); "
                              "re-extracting", CorruptEntryWarning, stacklevel=2)
        feats = self._extract_and_store(path, crop, name, rewrite=(layer,))
        if layer not in feats:
            raise EmptyFeatureMapError(f"{name}: the {layer} map of this image is empty at "
                                       f"max_dim={self.max_dim}")
        return feats[layer]

    def iter(self, paths, crops=None, layer="pool5"):
        """Yield :class:`~selconv_lite.core.types.ImageFeatures` of each image lazily (bounded memory)."""
        paths = list(paths)
        crops = [None] * len(paths) if crops is None else list(crops)
        if len(crops) != len(paths):
            raise ValueError(f"{len(paths)} paths but {len(crops)} crops")
        for path, crop in zip(paths, crops):
            yield self.load(path, crop, layer)

    def describe(self) -> dict:
        """The configuration as a JSON-able dict."""
        return {"format": FORMAT_VERSION, "weights": self.weights_id, "layers": list(self.layers),
                "extra_layers": list(self.extra_layers), "compress": self.compress,
                "max_dim": self.max_dim, "dtype": self.dtype, "crop_scale": self.crop_scale,
                "root": str(self.root)}

    def __repr__(self):
        return "FeatureCache(" + json.dumps(self.describe()) + ")"


def extract_features(paths, crops=None, layer="pool5", max_dim=1024, cache_dir=None,
                     weights="caffe-onnx", dtype="float32", device=None, on_error="raise",
                     progress=True, crop_scale="image") -> list[ImageFeatures]:
    """Extract (or load from the cache) the ``layer`` features of every image of ``paths``.

    A convenience around :class:`FeatureCache`; it returns all maps in a list, which is fine for
    a few thousand pool5 maps. For larger sets use ``FeatureCache.extract_all`` and ``.iter``.
    With ``on_error="skip"`` the failed images are left out of the list (and reported).
    """
    cache = FeatureCache(cache_dir, weights=weights, layers=(layer,), max_dim=max_dim,
                         dtype=dtype, device=device, crop_scale=crop_scale)
    paths = list(paths)
    crops = [None] * len(paths) if crops is None else list(crops)
    summary = cache.extract_all(paths, crops, on_error=on_error, progress=progress)
    failed = {p for p, _ in summary.failures}
    return [cache.load(p, c, layer) for p, c in zip(paths, crops) if str(p) not in failed]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True
