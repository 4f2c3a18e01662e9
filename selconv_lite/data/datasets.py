"""Retrieval datasets behind one interface (paper Sec. 5.1).

Every dataset -- the embedded default set in ``data/default``, the paper's benchmarks
(Oxford5k, Paris6k, Holidays, Oxford105k / Paris106k, R-Oxford / R-Paris), Copydays, UKBench
and a bring-your-own folder -- loads into a :class:`RetrievalDataset`:

* ``images``: database image paths; ``queries``: query image paths;
* ``query_boxes``: ``(x1, y1, x2, y2)`` crop box of each query in the pixels of its image as
  displayed (EXIF orientation applied), or None;
* ``gnd``: one dict per query with 0-based int64 arrays ``"ok"`` and ``"junk"`` (and
  ``"easy"`` / ``"hard"`` for revisited ground truth) indexing ``images`` (checked when the
  dataset is built);
* ``train_images``: the held-out learning set of Sec. 5.1 (Paris6k for Oxford, Oxford5k for
  Paris, 5000 random Flickr100k images for Holidays; the default set has its own disjoint
  training split).

The ground-truth formats live in :mod:`selconv_lite.data.groundtruth`, the loaders of the
benchmarks and of bring-your-own folders in :mod:`selconv_lite.data.loaders`; this module holds
the dataset object, the default set and :func:`load_dataset`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .groundtruth import DatasetNotFoundError, GroundTruthError, validate_gnd_indices
from .loaders import (default_data_root, default_dataset_dir, load_copydays, load_folder,
                      load_holidays, load_oxford_paris, load_ukbench)

__all__ = [
    "RetrievalDataset",
    "DATASETS",
    "DATASET_ALIASES",
    "list_datasets",
    "dataset_key",
    "load_dataset",
    "load_default",
]


# --------------------------------------------------------------------------------------
# the dataset object
# --------------------------------------------------------------------------------------
class RetrievalDataset:
    """A query set, a database and its ground truth, plus a held-out training set.

    Parameters
    ----------
    name : str
    images : list of str
        Database image paths.
    queries : list of str
        Query image paths (for Oxford/Paris these are database images, cropped by the box).
    query_boxes : list of tuple or None
        ``(x1, y1, x2, y2)`` in the pixels of the query image (not ``x, y, w, h``), or None.
    gnd : list of dict
        0-based ``"ok"`` / ``"junk"`` (and optionally ``"easy"`` / ``"hard"``) int64 arrays.
    train_images : list of str or callable, optional
        The held-out learning set, or a function returning it (resolved on first access, so
        that evaluating with an already fitted model does not need the training set).
    default_max_dim : int, default 1024
        The image size (long side) the paper uses for this dataset.
    protocol : {"map", "revisited", "ukbench"}
    imlist, qimlist : list of str, optional
        The names of the database / query images as in the ground-truth file.
    train_name : str, optional
        Name of the held-out set (e.g. ``"paris6k"``).
    info : dict, optional
        Free-form description (source, licence, ...).
    """

    def __init__(self, name, images, queries, query_boxes, gnd, train_images=None,
                 default_max_dim=1024, protocol="map", imlist=None, qimlist=None,
                 train_name=None, info=None):
        self.name = name
        self.images = [str(p) for p in images]
        self.queries = [str(p) for p in queries]
        self.query_boxes = list(query_boxes)
        self.gnd = list(gnd)
        self._train = train_images if train_images is not None else []
        self.default_max_dim = int(default_max_dim)
        self.protocol = protocol
        self.imlist = list(imlist) if imlist is not None else [Path(p).stem for p in self.images]
        self.qimlist = list(qimlist) if qimlist is not None else [Path(p).stem for p in self.queries]
        self.train_name = train_name
        self.info = dict(info or {})
        if len(self.queries) != len(self.gnd) or len(self.query_boxes) != len(self.gnd):
            raise GroundTruthError(
                f"dataset {name!r}: {len(self.queries)} queries, {len(self.query_boxes)} boxes "
                f"and {len(self.gnd)} gnd entries -- they must match"
            )
        validate_gnd_indices(self.gnd, len(self.images), f"dataset {name!r}",
                             self.qimlist if len(self.qimlist) == len(self.gnd) else None)

    # -- held-out set ------------------------------------------------------------------
    @property
    def train_images(self) -> list:
        """Held-out learning set (list of paths), resolved on first access."""
        if callable(self._train):
            self._train = [str(p) for p in self._train()]
        return self._train

    @train_images.setter
    def train_images(self, value):
        self._train = value

    # -- convenience -------------------------------------------------------------------
    @property
    def has_revisited(self) -> bool:
        """True when the ground truth has ``easy``/``hard`` lists (R-Oxford / R-Paris style)."""
        return bool(self.gnd) and all("easy" in g and "hard" in g for g in self.gnd)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        ntrain = "lazy" if callable(self._train) else len(self._train)
        return (f"RetrievalDataset({self.name!r}: {len(self.images)} database images, "
                f"{len(self.queries)} queries, train={ntrain}, protocol={self.protocol!r})")

    def summary(self) -> str:
        """A short human-readable description."""
        n_ok = [len(g["ok"]) for g in self.gnd]
        n_junk = [len(g.get("junk", ())) for g in self.gnd]
        n_box = sum(b is not None for b in self.query_boxes)
        lines = [
            repr(self),
            f"  positives per query: min {min(n_ok, default=0)}, mean "
            f"{np.mean(n_ok) if n_ok else 0:.1f}, max {max(n_ok, default=0)}; "
            f"junk per query: mean {np.mean(n_junk) if n_junk else 0:.1f}",
            f"  queries with a crop box: {n_box}/{len(self.queries)}; default max_dim "
            f"{self.default_max_dim}; held-out set: {self.train_name or 'own training split'}",
        ]
        return "\n".join(lines)

    def evaluate(self, qvecs, dbvecs, qe_k: int = 0, kappas=(1, 5, 10)) -> dict:
        """Rank by inner product and score with this dataset's protocol.

        Parameters
        ----------
        qvecs : array_like, shape (nq, D)
            One vector per query, in ``self.queries`` order.
        dbvecs : array_like, shape (nb, D)
            One vector per database image, in ``self.images`` order.
        qe_k : int, default 0
            Average query expansion with ``qe_k`` neighbours (0 = off).
        kappas : iterable of int
            Cut-offs of mP@k for the revisited protocol.

        Returns
        -------
        dict
            ``"mAP"``, ``"aps"``, ``"ranks"`` (and ``"easy"``/``"medium"``/``"hard"`` for
            revisited ground truth, ``"N-S"`` for UKBench).
        """
        from . import evaluation as ev
        qvecs = np.asarray(qvecs)
        dbvecs = np.asarray(dbvecs)
        if qvecs.shape[0] != len(self.queries):
            raise ValueError(f"{self.name}: got {qvecs.shape[0]} query vectors for "
                             f"{len(self.queries)} queries")
        if dbvecs.shape[0] != len(self.images):
            raise ValueError(f"{self.name}: got {dbvecs.shape[0]} database vectors for "
                             f"{len(self.images)} images")
        res = ev.evaluate(qvecs, dbvecs, self.gnd, qe_k=qe_k, kappas=kappas)
        if self.protocol == "ukbench":
            res["N-S"] = ev.ukbench_score(res["ranks"], group_size=4)
        return res


#: Image size (``max(W_I, H_I)``) of the embedded default set: the paper's 1024 px (Sec. 5.1),
#: at which pool5 maps have about 32 x 24 cells, more than the K = 512 channels, so the MAX mask
#: is selective (Fig. 2a). ``max_dim=512`` runs four times fewer cells, faster, in the regime
#: where the masks keep most cells (notebook 06, section 4b, shows both).
DEFAULT_MAX_DIM = 1024


def load_default(root=None, **_) -> RetrievalDataset:
    """The embedded default set (``data/default``): real photos with their own held-out split,
    fed at :data:`DEFAULT_MAX_DIM` (1024 px, the paper's size) unless a caller passes ``max_dim``."""
    d = Path(root) if root is not None else default_dataset_dir()
    gnd = d / "gnd_default.pkl"
    if not gnd.is_file():
        raise DatasetNotFoundError(
            f"the embedded default dataset is missing ({gnd} not found). It ships in the "
            "repository's data/default folder; regenerate it with scripts/make_default_dataset.py "
            "or set SELCONV_DEFAULT_DATA")
    ds = load_folder(d / "jpg", gnd, name="default", default_max_dim=DEFAULT_MAX_DIM)
    ds.info.update({"description": "embedded real-photo set (see data/default/LICENSES.md)"})
    return ds


#: name -> (loader, keyword arguments)
DATASETS: dict[str, tuple[Callable, dict]] = {
    "default": (load_default, {}),
    "oxford5k": (load_oxford_paris, {"base": "oxford5k", "train_base": "paris6k"}),
    "paris6k": (load_oxford_paris, {"base": "paris6k", "train_base": "oxford5k"}),
    "oxford105k": (load_oxford_paris, {"base": "oxford5k", "train_base": "paris6k", "distractors": True}),
    "paris106k": (load_oxford_paris, {"base": "paris6k", "train_base": "oxford5k", "distractors": True}),
    "roxford5k": (load_oxford_paris, {"base": "oxford5k", "train_base": "paris6k", "revisited": True}),
    "rparis6k": (load_oxford_paris, {"base": "paris6k", "train_base": "oxford5k", "revisited": True}),
    "roxford105k": (load_oxford_paris, {"base": "oxford5k", "train_base": "paris6k", "revisited": True,
                                    "distractors": True}),
    "rparis106k": (load_oxford_paris, {"base": "paris6k", "train_base": "oxford5k", "revisited": True,
                                   "distractors": True}),
    "holidays": (load_holidays, {"rotated": False}),
    "holidays_rotated": (load_holidays, {"rotated": True}),
    "copydays": (load_copydays, {}),
    "ukbench": (load_ukbench, {}),
}


#: other spellings accepted for a name, besides case, ``-``, ``_`` and spaces
DATASET_ALIASES = {"oxford": "oxford5k", "paris": "paris6k", "roxford": "roxford5k",
                   "rparis": "rparis6k", "flickr": "flickr100k"}


def dataset_key(name: str, choices) -> str:
    """The key of ``choices`` that ``name`` spells, ignoring case, ``-``, ``_`` and spaces.

    One rule for :func:`load_dataset` and :func:`selconv_lite.data.download.download_dataset`,
    so ``"R-Oxford5k"``, ``"roxford5k"`` and ``"Holidays-Rotated"`` work in both.

    Raises
    ------
    KeyError
        ``name`` matches none of ``choices`` (the message lists them).
    """
    def norm(n):
        return str(n).lower().replace("-", "").replace("_", "").replace(" ", "")

    choices = list(choices)
    table = {norm(k): k for k in choices}
    key = norm(name)
    key = norm(DATASET_ALIASES.get(key, key))
    if key not in table:
        raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(choices)}")
    return table[key]


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return list(DATASETS)


def load_dataset(name: str = "default", root=None, **kwargs) -> RetrievalDataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : str, default "default"
        One of :func:`list_datasets`, spelled as :func:`dataset_key` accepts (case, ``-``,
        ``_`` and spaces ignored, e.g. ``"R-Oxford5k"``).
    root : str or Path, optional
        For "default": the dataset folder (default ``data/default``). For the benchmarks:
        the data root holding ``oxford5k/``, ``paris6k/``, ``holidays/``, ... (default: env
        ``SELCONV_DATA`` or ``<repo>/datasets``).
    **kwargs
        Passed to the loader (e.g. ``train_seed``, ``n_train`` for Holidays, ``attacks`` for
        Copydays).

    Returns
    -------
    RetrievalDataset

    Raises
    ------
    DatasetNotFoundError
        The files are missing; the message says how to download or place them.
    """
    canonical = dataset_key(name, DATASETS)
    loader, kw = DATASETS[canonical]
    if canonical == "default":
        return loader(root=root, **kwargs)
    root = Path(root) if root is not None else default_data_root()
    return loader(canonical, root, **{**kw, **kwargs})
