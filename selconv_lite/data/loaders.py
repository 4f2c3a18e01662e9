"""Loaders of the official benchmarks and of bring-your-own folders (paper Sec. 5.1).

* :func:`load_folder` -- a folder of images plus a revisitop-format ground-truth pickle (the
  bring-your-own format, ``docs/datasets.md``): every name must resolve to exactly one file
  (a basename found in two sub-folders is an error, not the first one met), no file may enter
  the database twice under two spellings, crop boxes are checked in the displayed
  (EXIF-applied) frame, and the held-out training set may not share any image -- same path,
  hard link or identical bytes -- with the database or the queries;
* :func:`load_oxford_paris`, :func:`load_holidays`, :func:`load_copydays`,
  :func:`load_ukbench` -- the benchmarks in the layout :mod:`selconv_lite.data.download`
  writes under :func:`default_data_root`;
* :func:`sample_flickr_train` -- the held-out set of Holidays / Copydays / UKBench.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from ..core.files import file_digest, repo_root
from .groundtruth import (IMAGE_EXTS, DatasetNotFoundError, GroundTruthError, copydays_gnd,
                          holidays_gnd, read_gnd_mat, read_gnd_pickle, read_oxford_paris_gt,
                          ukbench_gnd)
from .retrieval import RetrievalDataset

__all__ = [
    "load_folder",
    "load_oxford_paris",
    "load_holidays",
    "load_copydays",
    "load_ukbench",
    "sample_flickr_train",
    "default_data_root",
    "default_dataset_dir",
    "displayed_size",
    "find_leaks",
    "ImageIndex",
    "COPYDAYS_ATTACKS",
]


# --------------------------------------------------------------------------------------
# file resolution
# --------------------------------------------------------------------------------------
class ImageIndex:
    """Find image files by name under a folder, recursively.

    A name may be the path relative to the folder or the file's basename, each with or without
    its extension. A name that fits two different files (``a/x.jpg`` and ``b/x.jpg`` for
    ``x.jpg``; ``x.jpg`` and ``x.png`` for ``x``) is ambiguous: :meth:`resolve` refuses it
    instead of taking whichever file the walk meets first.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"image folder not found: {self.root}")
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        self.ambiguous: dict[int, dict[str, set]] = {id(self.by_name): {}, id(self.by_stem): {}}
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.lower().endswith(IMAGE_EXTS):
                    p = Path(dirpath) / fn
                    rel = p.relative_to(self.root).as_posix()
                    for table, key in ((self.by_name, rel), (self.by_name, fn),
                                       (self.by_stem, os.path.splitext(rel)[0]),
                                       (self.by_stem, os.path.splitext(fn)[0])):
                        self._add(table, key, p)

    def _add(self, table, key, p):
        old = table.setdefault(key, p)
        if old != p:
            self.ambiguous[id(table)].setdefault(key, {old}).add(p)

    def __len__(self):
        return len({p for p in self.by_name.values()})

    def find(self, name: str) -> Path | None:
        """The one file ``name`` designates, or None; raises when it designates several."""
        for table in (self.by_name, self.by_stem):
            if name in table:
                clash = self.ambiguous[id(table)].get(name)
                if clash:
                    hits = sorted(p.relative_to(self.root).as_posix() for p in clash)
                    raise GroundTruthError(
                        f"the name {name!r} is ambiguous in {self.root}: it fits {len(hits)} files "
                        f"({', '.join(hits[:4])}); use the path relative to the folder, with "
                        "its extension")
                return table[name]
        return None

    def resolve(self, names: Iterable[str], source: str, what: str = "image") -> list[str]:
        """Paths of ``names``; every name must designate exactly one file, and no file twice."""
        out, missing, first = [], [], {}
        for n in names:
            try:
                p = self.find(n)
            except GroundTruthError as e:
                raise GroundTruthError(f"{source}: {what} {e}") from None
            if p is None:
                missing.append(n)
                continue
            key = os.path.realpath(p)
            if key in first and first[key] != n:
                raise GroundTruthError(
                    f"{source}: the {what}s {first[key]!r} and {n!r} are the same file {p}; "
                    "list each image once")
            first.setdefault(key, n)
            out.append(str(p))
        if missing:
            raise GroundTruthError(
                f"{source}: {len(missing)} {what}(s) listed in the ground truth are missing from "
                f"{self.root} (first: {missing[0]!r}; tried the name with and without the "
                f"extensions {', '.join(IMAGE_EXTS[:4])}, ...)")
        return out

    def all_paths(self) -> list[str]:
        return sorted({str(p) for p in self.by_name.values()})


#: EXIF orientations that swap width and height (transpose, rotate 90/270, transverse).
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


def displayed_size(path) -> tuple[int, int]:
    """``(W, H)`` of the image as displayed, i.e. after its EXIF orientation is applied.

    Crop boxes are defined in this frame -- the one the official datasets' boxes use and the
    one :func:`selconv_lite.features.extraction.load_image` returns -- so a box is checked
    (here) and cropped (by the extractor) in the same pixels. Only the header is read.
    """
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
        try:
            orientation = im.getexif().get(0x0112, 1)
        except Exception:  # noqa: BLE001 -- an unreadable EXIF block means no orientation
            orientation = 1
    return (h, w) if orientation in _SWAPPING_ORIENTATIONS else (w, h)


def _check_boxes_in_images(paths, boxes, source):
    for p, b in zip(paths, boxes):
        if b is None:
            continue
        try:
            w, h = displayed_size(p)
        except Exception as e:  # noqa: BLE001
            raise GroundTruthError(f"{source}: cannot read query image {p} to check its crop box "
                                   f"({type(e).__name__}: {e})") from e
        x1, y1, x2, y2 = b
        tol = 2.0
        if x1 < -tol or y1 < -tol or x2 > w + tol or y2 > h + tol:
            raise GroundTruthError(
                f"{source}: crop box {b} of query {Path(p).name} lies outside the image "
                f"({w} x {h} as displayed, EXIF orientation applied); boxes are (x1, y1, x2, y2) "
                "in the displayed image's pixels")


def find_leaks(train, others) -> list[tuple[str, str]]:
    """Pairs ``(train image, database/query image)`` that are the same picture on disk.

    Same file (path, symlink or hard link: same device and inode) or identical bytes (a
    copy): files are grouped by size and only same-size files are hashed
    (:func:`~selconv_lite.core.files.file_digest`), so the check costs little.
    """
    def stat(p):
        st = os.stat(p)
        return (st.st_dev, st.st_ino), st.st_size

    other_ids, other_sizes = {}, {}
    for p in others:
        ident, size = stat(p)
        other_ids.setdefault(ident, p)
        other_sizes.setdefault(size, []).append(p)
    leaks, digests = [], {}

    def digest(p):
        if p not in digests:
            digests[p] = file_digest(p)
        return digests[p]

    for t in train:
        ident, size = stat(t)
        if ident in other_ids:
            leaks.append((t, other_ids[ident]))
            continue
        for o in other_sizes.get(size, ()):
            if digest(t) == digest(o):
                leaks.append((t, o))
                break
    return leaks


# --------------------------------------------------------------------------------------
# bring your own
# --------------------------------------------------------------------------------------
def load_folder(image_dir, gnd_path, train_dir=None, name: str | None = None,
                query_dir=None, default_max_dim: int = 1024,
                allow_empty_positives: bool = False, check_boxes: bool = True):
    """Load a bring-your-own dataset: a folder of images plus a revisitop-format gnd pickle.

    Parameters
    ----------
    image_dir : str or Path
        Folder holding the database images (searched recursively; names in the pickle may
        omit the extension and may be relative paths; a name that fits two files is an error).
    gnd_path : str or Path
        The ground-truth pickle (format: :func:`~selconv_lite.data.groundtruth.read_gnd_pickle`,
        ``docs/datasets.md``), read without running any code in it.
    train_dir : str or Path, optional
        Folder of held-out training images (all images in it, sorted). When omitted, the
        pickle's optional ``trainlist`` (names resolved in ``image_dir``) is used; else empty.
    name : str, optional
        Default: the folder name.
    query_dir : str or Path, optional
        Folder of the query images; default ``image_dir``.
    default_max_dim : int, default 1024
    allow_empty_positives : bool, default False
    check_boxes : bool, default True
        Check that every crop box lies inside its query image as displayed (EXIF orientation
        applied; only the image headers are read).

    Returns
    -------
    RetrievalDataset

    Raises
    ------
    GroundTruthError
        Missing or ambiguous image, one file listed twice, index out of range, query without
        positives, malformed box, a training image that is also a database/query image.
    DatasetNotFoundError
        ``image_dir`` or ``gnd_path`` does not exist.
    """
    image_dir = Path(image_dir)
    idx = ImageIndex(image_dir)
    gt = read_gnd_pickle(gnd_path, allow_empty_positives=allow_empty_positives)
    qidx = idx if query_dir is None else ImageIndex(Path(query_dir))
    src = str(gnd_path)
    images = idx.resolve(gt["imlist"], src, "database image")
    queries = _resolve_queries(qidx, gt["qimlist"], src)
    boxes = [g["bbx"] for g in gt["gnd"]]
    if check_boxes:
        _check_boxes_in_images(queries, boxes, src)
    if train_dir is not None:
        train = ImageIndex(Path(train_dir)).all_paths()
        if not train:
            raise DatasetNotFoundError(f"no image in the training folder {train_dir}")
    elif "trainlist" in gt:
        train = idx.resolve(gt["trainlist"], src, "training image")
    else:
        train = []
    leaks = find_leaks(train, sorted(set(images + queries)))
    if leaks:
        t, o = leaks[0]
        raise GroundTruthError(
            f"{src}: {len(leaks)} training image(s) are also database or query images (e.g. "
            f"{t} is the same picture as {o}: same file, hard link or identical bytes); the "
            "learning set must be held out (paper Sec. 5.1)")
    return RetrievalDataset(
        name or image_dir.name, images, queries, boxes, gt["gnd"], train_images=train,
        default_max_dim=default_max_dim,
        protocol="revisited" if gt["gnd"] and "easy" in gt["gnd"][0] else "map",
        imlist=gt["imlist"], qimlist=gt["qimlist"], info={"gnd_path": src})


def _resolve_queries(idx: ImageIndex, names, source) -> list[str]:
    """Query paths: one query image may serve several queries (e.g. two boxes), so repeats
    are allowed, but every name must still designate exactly one file."""
    out = []
    for n in names:
        out += idx.resolve([n], source, "query image")
    return out


def default_dataset_dir() -> Path:
    """Folder of the embedded default dataset: env ``SELCONV_DEFAULT_DATA`` or ``<repo>/data/default``."""
    env = os.environ.get("SELCONV_DEFAULT_DATA")
    return Path(env) if env else repo_root() / "data" / "default"


def default_data_root() -> Path:
    """Root of the downloaded benchmarks: env ``SELCONV_DATA`` or ``<repo>/datasets``."""
    env = os.environ.get("SELCONV_DATA")
    return Path(env) if env else repo_root() / "datasets"


# --------------------------------------------------------------------------------------
# benchmarks
# --------------------------------------------------------------------------------------
def _hint(name: str, root: Path) -> str:
    return (f"Download it with selconv_lite.data.download.download_dataset({name!r}, root={str(root)!r}) "
            f"or place the files by hand as described by "
            f"selconv_lite.data.download.manual_instructions({name!r}) (docs/datasets.md).")


def _need_dir(p: Path, name: str, root: Path) -> Path:
    if not p.is_dir():
        raise DatasetNotFoundError(f"{name}: folder {p} not found. " + _hint(name, root))
    return p


def _oxpa_gt(name: str, root: Path, base: str) -> dict:
    """Ground truth of oxford5k / paris6k: pickle > authors' .mat > official text files."""
    d = root / base
    for cand in (d / f"gnd_{base}.pkl",):
        if cand.is_file():
            return read_gnd_pickle(cand)
    if (d / f"gnd_{base}.mat").is_file():
        return read_gnd_mat(d / f"gnd_{base}.mat")
    gtdir = d / "gt"
    if gtdir.is_dir():
        idx = ImageIndex(_need_dir(d / "jpg", name, root))
        imlist = sorted({os.path.splitext(Path(p).name)[0] for p in idx.all_paths()})
        return read_oxford_paris_gt(gtdir, imlist=imlist, unknown="drop")
    raise DatasetNotFoundError(
        f"{name}: no ground truth in {d} (looked for gnd_{base}.pkl, gnd_{base}.mat, gt/). "
        + _hint(name, root))


def _image_names(gt_imlist, idx: ImageIndex, source):
    return idx.resolve(gt_imlist, source, "image")


def load_oxford_paris(name: str, root: Path, base: str, train_base: str, revisited: bool = False,
                      distractors: bool = False):
    """Oxford5k / Paris6k (optionally revisited, optionally with the Flickr100k distractors).

    The held-out set is the other city (Sec. 5.1). See :func:`selconv_lite.data.datasets.load_dataset`.
    """
    if revisited:
        rname = "r" + base
        p = root / rname / f"gnd_{rname}.pkl"
        if not p.is_file():
            raise DatasetNotFoundError(f"{name}: {p} not found. " + _hint(name, root))
        gt = read_gnd_pickle(p, allow_empty_positives=True)
        imgdir = root / rname / "jpg" if (root / rname / "jpg").is_dir() else root / base / "jpg"
    else:
        gt = _oxpa_gt(name, root, base)
        imgdir = root / base / "jpg"
    idx = ImageIndex(_need_dir(imgdir, name, root))
    images = _image_names(gt["imlist"], idx, f"{name} ({imgdir})")
    queries = _resolve_queries(idx, gt["qimlist"], f"{name} ({imgdir})")
    if distractors:
        fl = ImageIndex(_need_dir(root / "flickr100k", "flickr100k", root)).all_paths()
        images = images + fl
    train_dir = root / train_base / "jpg"

    def train():
        return ImageIndex(_need_dir(train_dir, train_base, root)).all_paths()

    return RetrievalDataset(
        name, images, queries, [g["bbx"] for g in gt["gnd"]], gt["gnd"], train_images=train,
        default_max_dim=1024, protocol="revisited" if revisited else "map",
        imlist=gt["imlist"], qimlist=gt["qimlist"], train_name=train_base,
        info={"root": str(root)})


def sample_flickr_train(root=None, n: int = 5000, seed: int = 0) -> list[str]:
    """The held-out set for Holidays (Sec. 5.1): ``n`` random Flickr100k images.

    The paths are sorted, ``n`` of them drawn without replacement with
    ``numpy.random.default_rng(seed)``, and returned in sorted order, so the choice is fixed
    for a given copy of Flickr100k.
    """
    root = Path(root) if root is not None else default_data_root()
    paths = ImageIndex(_need_dir(root / "flickr100k", "flickr100k", root)).all_paths()
    rel = sorted(Path(p).relative_to(root / "flickr100k").as_posix() for p in paths)
    if len(rel) < n:
        raise DatasetNotFoundError(f"flickr100k: only {len(rel)} images in {root / 'flickr100k'}, "
                                   f"need {n}")
    pick = np.sort(np.random.default_rng(seed).choice(len(rel), size=n, replace=False))
    return [str(root / "flickr100k" / rel[i]) for i in pick]


def load_holidays(name: str, root: Path, rotated: bool = False, train_seed: int = 0,
                  n_train: int = 5000):
    """INRIA Holidays (or its rotated version); held-out set: random Flickr100k images."""
    sub = "rotated" if rotated else "jpg"
    imgdir = _need_dir(root / "holidays" / sub, name, root)
    idx = ImageIndex(imgdir)
    matp = root / "holidays" / "gnd_holidays.mat"
    if matp.is_file():
        gt = read_gnd_mat(matp)
    else:
        stems = sorted({os.path.splitext(Path(p).name)[0] for p in idx.all_paths()})
        gt = holidays_gnd(stems)
    images = idx.resolve(gt["imlist"], name, "image")
    queries = [images[i] for i in gt["qidx"]]
    return RetrievalDataset(
        name, images, queries, [None] * len(queries), gt["gnd"],
        train_images=lambda: sample_flickr_train(root, n_train, train_seed),
        default_max_dim=1024, imlist=gt["imlist"], qimlist=gt["qimlist"],
        train_name=f"flickr100k (random {n_train}, seed {train_seed})",
        info={"root": str(root)})


COPYDAYS_ATTACKS = ("crop", "jpeg", "strong")


def load_copydays(name: str, root: Path, attacks=COPYDAYS_ATTACKS, train_seed: int = 0,
                  n_train: int = 5000):
    """Copydays: originals as the database, the attacked copies as queries."""
    base = _need_dir(root / "copydays", name, root)
    orig = ImageIndex(_need_dir(base / "original", name, root)).all_paths()
    qpaths = []
    for a in attacks:
        if a not in COPYDAYS_ATTACKS:
            raise ValueError(f"Copydays attack must be one of {COPYDAYS_ATTACKS}, got {a!r}")
        qpaths += ImageIndex(_need_dir(base / a, name, root)).all_paths()
    gt = copydays_gnd(orig, qpaths)
    return RetrievalDataset(
        name, orig, qpaths, [None] * len(qpaths), gt["gnd"],
        train_images=lambda: sample_flickr_train(root, n_train, train_seed),
        default_max_dim=1024, imlist=gt["imlist"], qimlist=gt["qimlist"],
        train_name=f"flickr100k (random {n_train}, seed {train_seed})", info={"attacks": list(attacks)})


def load_ukbench(name: str, root: Path, train_seed: int = 0, n_train: int = 5000):
    """UKBench: every image is a query; groups of 4 (N-S score)."""
    d = _need_dir(root / "ukbench", name, root)
    idx = ImageIndex(d)
    paths = sorted(idx.all_paths(), key=lambda p: Path(p).name)
    paths = [p for p in paths if re.fullmatch(r"ukbench\d{5}", Path(p).stem)]
    gt = ukbench_gnd(len(paths))
    images = idx.resolve(gt["imlist"], name, "image")
    return RetrievalDataset(
        name, images, images, [None] * len(images), gt["gnd"],
        train_images=lambda: sample_flickr_train(root, n_train, train_seed),
        default_max_dim=1024, protocol="ukbench", imlist=gt["imlist"], qimlist=gt["qimlist"],
        train_name=f"flickr100k (random {n_train}, seed {train_seed})")
