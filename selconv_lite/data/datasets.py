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

The ground-truth formats live in :mod:`selconv_lite.data.groundtruth`, the dataset object in
:mod:`selconv_lite.data.retrieval`, the loaders of the benchmarks and of bring-your-own folders
in :mod:`selconv_lite.data.loaders`; this module holds the registry of names
(:data:`DATASETS`, the one name rule :func:`dataset_key`), the embedded default set and
:func:`load_dataset`.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable


from .groundtruth import DatasetNotFoundError
from .loaders import (default_data_root, default_dataset_dir, load_copydays, load_folder,
                      load_holidays, load_oxford_paris, load_ukbench)
from .retrieval import RetrievalDataset

__all__ = [
    "DATASETS",
    "DATASET_ALIASES",
    "list_datasets",
    "dataset_key",
    "load_dataset",
    "load_default",
]


#: Image size (``max(W_I, H_I)``) of the embedded default set: the paper's 1024 px (Sec. 5.1),
#: at which pool5 maps have about 32 x 24 cells, more than the K = 512 channels, so the MAX mask
#: is selective (Fig. 2a). ``max_dim=512`` runs four times fewer cells, faster, in the regime
#: where the masks keep most cells (notebook 06, section 4b, shows both).
DEFAULT_MAX_DIM = 1024


def load_default(root=None) -> RetrievalDataset:
    """The embedded default set (``data/default``, or the folder ``root``): real photos with
    their own held-out split, fed at :data:`DEFAULT_MAX_DIM` (1024 px, the paper's size) by
    default (``ds.default_max_dim``; a caller may extract at another size)."""
    d = Path(root) if root is not None else default_dataset_dir()
    gnd = d / "gnd_default.pkl"
    if not gnd.is_file():
        raise DatasetNotFoundError(
            f"the embedded default dataset is missing ({gnd} not found). It ships in the "
            "repository's data/default folder; regenerate it with scripts/make_paper_regime_dataset.py "
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
                   "rparis": "rparis6k", "flickr": "flickr100k", "oxford100k": "flickr100k",
                   "r1m": "revisitop1m"}


def dataset_key(name: str, choices, what: str = "dataset") -> str:
    """The key of ``choices`` that ``name`` spells, ignoring case, ``-``, ``_`` and spaces.

    The one dataset-name rule: :func:`load_dataset`,
    :func:`selconv_lite.data.download.download_dataset`, the distractor sets and the paper's
    published numbers (:mod:`selconv_lite.experiments.published`) all resolve names with it,
    so ``"R-Oxford5k"``, ``"roxford5k"``, ``"Holidays-Rotated"`` and ``"R1M"`` work everywhere
    (:data:`DATASET_ALIASES` adds other spellings).

    Parameters
    ----------
    name : str
    choices : iterable of str
        The accepted keys.
    what : str, default "dataset"
        What a key names, for the error message (e.g. ``"distractor set"``).

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
        raise KeyError(f"unknown {what} {name!r}; choose from {', '.join(choices)}")
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
        Copydays); a keyword the dataset's loader does not take raises ``TypeError``.

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
    accepted = sorted(set(inspect.signature(loader).parameters) - {"name", "root"} - set(kw))
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"load_dataset({canonical!r}) got unexpected keyword argument(s) "
                        f"{', '.join(unknown)}; it accepts {', '.join(accepted) or 'none'}")
    if canonical == "default":
        return loader(root=root, **kwargs)
    root = Path(root) if root is not None else default_data_root()
    return loader(canonical, root, **{**kw, **kwargs})
