"""The dataset object of the paper's retrieval experiments (Sec. 5.1): a query set, a database,
its ground truth and a held-out training set, scored by its own protocol.

:mod:`selconv_lite.data.loaders` builds one per benchmark or bring-your-own folder,
:func:`selconv_lite.data.datasets.load_dataset` by name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .groundtruth import GroundTruthError, validate_gnd_indices

__all__ = ["RetrievalDataset"]


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
