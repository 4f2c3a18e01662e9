"""Retrieval datasets behind one interface (paper Sec. 5.1).

Every dataset -- the embedded default set in ``data/default``, the paper's benchmarks
(Oxford5k, Paris6k, Holidays, Oxford105k / Paris106k, R-Oxford / R-Paris), Copydays, UKBench
and a bring-your-own folder -- loads into a :class:`RetrievalDataset`:

* ``images``: database image paths; ``queries``: query image paths;
* ``query_boxes``: ``(x1, y1, x2, y2)`` crop box of each query in its image's pixels, or None;
* ``gnd``: one dict per query with 0-based int64 arrays ``"ok"`` and ``"junk"`` (and
  ``"easy"`` / ``"hard"`` for revisited ground truth) indexing ``images``;
* ``train_images``: the held-out learning set of Sec. 5.1 (Paris6k for Oxford, Oxford5k for
  Paris, 5000 random Flickr100k images for Holidays; the default set has its own disjoint
  training split).

Ground-truth readers for the formats in the wild:

* :func:`read_gnd_pickle` -- the revisitop / cnnimageretrieval ``gnd_*.pkl`` format
  (``imlist``, ``qimlist``, ``gnd[i]`` with ``ok``/``junk`` or ``easy``/``hard``/``junk`` and
  ``bbx``); this is also the bring-your-own format (see ``docs/datasets.md``);
* :func:`read_gnd_mat` -- the authors' MATLAB ``gnd_*.mat`` (1-based ``qidx``/``ok``/``junk``);
* :func:`read_oxford_paris_gt` -- the official text files ``<name>_query.txt`` (``<image>
  x1 y1 x2 y2``; Oxford names carry an ``oxc1_`` prefix that the files do not) and
  ``_good.txt`` / ``_ok.txt`` / ``_junk.txt``;
* :func:`holidays_gnd`, :func:`copydays_gnd`, :func:`ukbench_gnd` -- ground truth from file names.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "RetrievalDataset",
    "GroundTruthError",
    "DatasetNotFoundError",
    "DATASETS",
    "list_datasets",
    "load_dataset",
    "load_folder",
    "default_data_root",
    "default_dataset_dir",
    "read_gnd_pickle",
    "write_gnd_pickle",
    "read_gnd_mat",
    "read_oxford_paris_gt",
    "holidays_gnd",
    "copydays_gnd",
    "ukbench_gnd",
    "validate_gnd",
    "sample_flickr_train",
]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
OXFORD_QUERY_PREFIX = "oxc1_"


class GroundTruthError(ValueError):
    """A ground-truth file is malformed or inconsistent with the images."""


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not where they should be."""


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


# --------------------------------------------------------------------------------------
# ground truth: normalisation and validation
# --------------------------------------------------------------------------------------
def _int_array(x, where: str) -> np.ndarray:
    a = np.asarray(x if x is not None else [], dtype=object).ravel()
    try:
        out = np.asarray([int(v) for v in a], dtype=np.int64)
    except (TypeError, ValueError):
        raise GroundTruthError(f"{where}: expected a list of integer image indices, got {x!r:.80}")
    for v, o in zip(a, out):
        if float(v) != float(o):
            raise GroundTruthError(f"{where}: index {v!r} is not an integer")
    return out


def _box(b, where: str):
    if b is None:
        return None
    arr = np.asarray(b, dtype=np.float64).ravel()
    if arr.size == 0:
        return None
    if arr.size != 4 or not np.all(np.isfinite(arr)):
        raise GroundTruthError(f"{where}: a crop box must be 4 numbers (x1, y1, x2, y2), got {b!r}")
    x1, y1, x2, y2 = (float(v) for v in arr)
    if x2 <= x1 or y2 <= y1:
        raise GroundTruthError(
            f"{where}: crop box {tuple(arr)} is not (x1, y1, x2, y2) with x2 > x1 and y2 > y1 "
            "(is it x, y, w, h?)")
    return (x1, y1, x2, y2)


def _normalise_gnd(raw: dict, source: str) -> dict:
    """Bring a revisitop-like dict to the canonical form (0-based int64 arrays, tuples)."""
    if not isinstance(raw, dict):
        raise GroundTruthError(f"{source}: expected a dict with 'imlist', 'qimlist', 'gnd', "
                               f"got {type(raw).__name__}")
    for key in ("imlist", "gnd"):
        if key not in raw:
            raise GroundTruthError(f"{source}: missing key {key!r} (keys: {sorted(raw)})")
    imlist = [str(n) for n in raw["imlist"]]
    gnd_in = list(raw["gnd"])
    qimlist = [str(n) for n in raw["qimlist"]] if "qimlist" in raw else None
    if qimlist is None:
        if "qidx" in raw:
            qidx = _int_array(raw["qidx"], f"{source}: qidx")
            qimlist = [imlist[i] for i in qidx]
        else:
            raise GroundTruthError(f"{source}: missing key 'qimlist'")
    if len(qimlist) != len(gnd_in):
        raise GroundTruthError(
            f"{source}: 'qimlist' has {len(qimlist)} queries but 'gnd' has {len(gnd_in)} entries")
    gnd = []
    for i, g in enumerate(gnd_in):
        where = f"{source}: gnd[{i}] (query {qimlist[i]!r})"
        if not isinstance(g, dict):
            raise GroundTruthError(f"{where}: expected a dict, got {type(g).__name__}")
        out = {}
        if "easy" in g or "hard" in g:
            out["easy"] = _int_array(g.get("easy"), where + "['easy']")
            out["hard"] = _int_array(g.get("hard"), where + "['hard']")
        if "ok" in g:
            out["ok"] = _int_array(g["ok"], where + "['ok']")
        elif "easy" in out:
            out["ok"] = np.concatenate([out["easy"], out["hard"]])
        else:
            raise GroundTruthError(f"{where}: has neither 'ok' nor 'easy'/'hard' (keys: {sorted(g)})")
        out["junk"] = _int_array(g.get("junk"), where + "['junk']")
        out["bbx"] = _box(g.get("bbx"), where + "['bbx']")
        gnd.append(out)
    res = {"imlist": imlist, "qimlist": qimlist, "gnd": gnd}
    if raw.get("trainlist") is not None:
        res["trainlist"] = [str(n) for n in raw["trainlist"]]
    return res


def validate_gnd(gt: dict, source: str = "gnd", allow_empty_positives: bool = False) -> None:
    """Check a canonical ground-truth dict for consistency; raise :class:`GroundTruthError`.

    Checks: unique database names; every index in ``ok`` / ``junk`` / ``easy`` / ``hard``
    within ``[0, len(imlist))`` (with a hint when the indices look 1-based); every query has at
    least one positive (unless ``allow_empty_positives``); crop boxes are (x1, y1, x2, y2).

    Parameters
    ----------
    gt : dict
        Output of :func:`read_gnd_pickle` and friends.
    source : str
        Name of the file, used in the messages.
    allow_empty_positives : bool, default False
        Accept queries without positives (the revisited Hard protocol has a few).
    """
    imlist = gt["imlist"]
    n = len(imlist)
    if n == 0:
        raise GroundTruthError(f"{source}: 'imlist' is empty")
    seen = {}
    for i, name in enumerate(imlist):
        if name in seen:
            raise GroundTruthError(
                f"{source}: database image {name!r} is listed twice (imlist[{seen[name]}] and "
                f"imlist[{i}])")
        seen[name] = i
    one_based_hint = False
    for i, g in enumerate(gt["gnd"]):
        qn = gt["qimlist"][i]
        for key in ("ok", "junk", "easy", "hard"):
            if key not in g:
                continue
            a = g[key]
            if a.size and (a.min() < 0 or a.max() >= n):
                bad = int(a[(a < 0) | (a >= n)][0])
                if a.max() == n and a.min() >= 1:
                    one_based_hint = True
                raise GroundTruthError(
                    f"{source}: gnd[{i}]['{key}'] (query {qn!r}) contains index {bad}, out of range "
                    f"for the {n} database images (indices are 0-based: 0..{n - 1})"
                    + ("; the indices look 1-based (MATLAB) -- subtract 1" if one_based_hint else ""))
        if not allow_empty_positives and len(g["ok"]) == 0:
            raise GroundTruthError(
                f"{source}: query {i} ({qn!r}) has no positive image "
                "('ok', or 'easy' + 'hard', is empty); remove the query or add its positives")


def read_gnd_pickle(path, validate: bool = True, allow_empty_positives: bool = False) -> dict:
    """Read a ground-truth pickle in the revisitop / cnnimageretrieval format.

    The pickle holds a dict::

        {"imlist":  [database image names],        # relative to the image folder,
         "qimlist": [query image names],           # with or without extension
         "gnd": [ {"ok": [...], "junk": [...], "bbx": [x1, y1, x2, y2] or None}, ...],
         "trainlist": [...]}                       # optional (selconv_lite extension)

    or, revisited, ``gnd[i] = {"easy": [...], "hard": [...], "junk": [...], "bbx": ...}``.
    Indices are 0-based into ``imlist``. ``bbx`` is the query crop box (x1, y1, x2, y2).

    Parameters
    ----------
    path : str or Path
    validate : bool, default True
        Run :func:`validate_gnd`.
    allow_empty_positives : bool, default False

    Returns
    -------
    dict
        ``imlist``, ``qimlist``, ``gnd`` (list of dicts with int64 arrays ``ok``, ``junk`` [,
        ``easy``, ``hard``] and ``bbx`` tuple or None), and ``trainlist`` when present.
        For revisited ground truth ``ok`` = ``easy`` + ``hard`` (the Medium protocol).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"ground-truth pickle not found: {path}")
    try:
        with open(path, "rb") as f:
            raw = pickle.load(f)
    except Exception as e:  # noqa: BLE001 -- any unpickling failure is a bad file
        raise GroundTruthError(f"{path}: cannot read it as a pickle ({type(e).__name__}: {e})") from e
    gt = _normalise_gnd(raw, str(path))
    if validate:
        validate_gnd(gt, str(path), allow_empty_positives)
    return gt


def write_gnd_pickle(path, imlist, qimlist, gnd, trainlist=None) -> None:
    """Write ground truth in the revisitop pickle format (see :func:`read_gnd_pickle`).

    ``gnd`` entries may hold numpy arrays; they are stored as plain lists of int, and
    ``bbx`` as a list of 4 floats or None, so that the file does not depend on numpy.
    """
    out_gnd = []
    for g in gnd:
        d = {}
        for k in ("easy", "hard", "ok", "junk"):
            if k in g and g[k] is not None:
                d[k] = [int(v) for v in np.asarray(g[k]).ravel()]
        b = g.get("bbx")
        d["bbx"] = None if b is None else [float(v) for v in b]
        out_gnd.append(d)
    obj = {"imlist": list(map(str, imlist)), "qimlist": list(map(str, qimlist)), "gnd": out_gnd}
    if trainlist is not None:
        obj["trainlist"] = list(map(str, trainlist))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


def _mat_str(x) -> str:
    a = np.asarray(x)
    while a.dtype == object and a.size == 1:
        a = np.asarray(a.ravel()[0])
    return str(a.ravel()[0]) if a.size else ""


def read_gnd_mat(path, validate: bool = True) -> dict:
    """Read the authors' MATLAB ground truth (``gnd_oxford5k.mat``, ``gnd_paris6k.mat``, ...).

    The ``.mat`` holds ``imlist`` (cell of names), ``qidx`` (1-based query indices into
    ``imlist``) and a struct array ``gnd`` with 1-based ``ok``, ``junk`` and, for Oxford/Paris,
    ``bbx`` (x1, y1, x2, y2). Indices are converted to 0-based.

    Parameters
    ----------
    path : str or Path
    validate : bool, default True

    Returns
    -------
    dict
        As :func:`read_gnd_pickle`; queries are database images (``qimlist[i] =
        imlist[qidx[i]]``) and ``qidx`` (0-based) is included.
    """
    import scipy.io as sio

    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"ground-truth .mat not found: {path}")
    try:
        m = sio.loadmat(path)
    except Exception as e:  # noqa: BLE001
        raise GroundTruthError(f"{path}: cannot read it as a MATLAB file ({e})") from e
    for key in ("imlist", "gnd", "qidx"):
        if key not in m:
            raise GroundTruthError(f"{path}: missing variable {key!r}")
    imlist = [_mat_str(x) for x in np.asarray(m["imlist"]).ravel()]
    qidx = _int_array(np.asarray(m["qidx"]).ravel(), f"{path}: qidx") - 1
    st = np.asarray(m["gnd"]).ravel()
    names = st.dtype.names or ()
    gnd = []
    for i in range(st.size):
        g = {"ok": np.asarray(st[i]["ok"]).ravel() - 1,
             "junk": (np.asarray(st[i]["junk"]).ravel() - 1) if "junk" in names else []}
        if "bbx" in names:
            g["bbx"] = np.asarray(st[i]["bbx"]).ravel()
        gnd.append(g)
    if qidx.size and (qidx.min() < 0 or qidx.max() >= len(imlist)):
        raise GroundTruthError(f"{path}: qidx out of range 1..{len(imlist)}")
    gt = _normalise_gnd({"imlist": imlist, "qimlist": [imlist[i] for i in qidx], "gnd": gnd},
                        str(path))
    gt["qidx"] = qidx
    if validate:
        validate_gnd(gt, str(path))
    return gt


def _read_lines(read, name) -> list[str]:
    return [ln.strip() for ln in read(name).splitlines() if ln.strip()]


def read_oxford_paris_gt(gt_path, imlist: Sequence[str] | None = None,
                         unknown: str = "error") -> dict:
    """Read the official Oxford5k / Paris6k text ground truth.

    For each query ``<q>`` (e.g. ``all_souls_1``): ``<q>_query.txt`` holds one line
    ``<image> x1 y1 x2 y2`` -- the crop box as two corners, NOT ``x, y, w, h`` -- where Oxford
    image names carry an ``oxc1_`` prefix absent from the file names (it is removed here);
    ``<q>_good.txt`` and ``<q>_ok.txt`` list the positives; ``<q>_junk.txt`` the junk images.
    Queries are ordered by sorted file name, as in the authors' and revisitop's ground truth.

    Parameters
    ----------
    gt_path : str or Path
        A folder holding the text files (searched recursively) or a ``.zip``/``.tgz`` of them.
    imlist : sequence of str, optional
        Database image names (without extension). Default: every name mentioned in the
        ground truth, sorted (then the indices refer to that list).
    unknown : {"error", "drop"}
        What to do with a listed image that is not in ``imlist``.

    Returns
    -------
    dict
        As :func:`read_gnd_pickle`; ``qimlist`` holds the image names (prefix removed) and
        ``qnames`` the query names (``all_souls_1``, ...).
    """
    gt_path = Path(gt_path)
    files: dict[str, str] = {}
    if gt_path.is_dir():
        for p in sorted(gt_path.rglob("*.txt")):
            files[p.name] = p.read_text()
    elif gt_path.is_file() and gt_path.suffix == ".zip":
        with zipfile.ZipFile(gt_path) as z:
            for n in z.namelist():
                if n.endswith(".txt"):
                    files[Path(n).name] = z.read(n).decode("utf-8", "replace")
    elif gt_path.is_file() and (gt_path.name.endswith((".tgz", ".tar.gz", ".tar"))):
        import tarfile

        with tarfile.open(gt_path) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith(".txt"):
                    files[Path(m.name).name] = t.extractfile(m).read().decode("utf-8", "replace")
    else:
        raise DatasetNotFoundError(f"Oxford/Paris ground truth not found: {gt_path} "
                                   "(expected a folder of *_query.txt files or a .zip/.tgz)")
    qfiles = sorted(n for n in files if n.endswith("_query.txt"))
    if not qfiles:
        raise GroundTruthError(f"{gt_path}: no '<name>_query.txt' file found")

    def strip(n: str) -> str:
        n = n.strip()
        if n.startswith(OXFORD_QUERY_PREFIX):
            n = n[len(OXFORD_QUERY_PREFIX):]
        return os.path.splitext(n)[0] if n.lower().endswith(IMAGE_EXTS) else n

    queries = []
    for qf in qfiles:
        qname = qf[: -len("_query.txt")]
        parts = files[qf].split()
        if len(parts) != 5:
            raise GroundTruthError(
                f"{gt_path}/{qf}: expected '<image> x1 y1 x2 y2', got {files[qf].strip()!r}")
        try:
            box = [float(v) for v in parts[1:]]
        except ValueError:
            raise GroundTruthError(f"{gt_path}/{qf}: the box {parts[1:]} is not numeric")
        lists = {}
        for kind in ("good", "ok", "junk"):
            fn = f"{qname}_{kind}.txt"
            if fn not in files:
                raise GroundTruthError(f"{gt_path}: {fn} is missing (query {qname})")
            lists[kind] = [strip(n) for n in _read_lines(files.get, fn)]
        queries.append((qname, strip(parts[0]), box, lists))

    if imlist is None:
        names = set()
        for _, qim, _, lists in queries:
            names.add(qim)
            for v in lists.values():
                names.update(v)
        imlist = sorted(names)
    imlist = [strip(n) for n in imlist]
    index = {n: i for i, n in enumerate(imlist)}

    def to_idx(names_, where):
        out = []
        for n in names_:
            if n in index:
                out.append(index[n])
            elif unknown == "error":
                raise GroundTruthError(f"{where}: image {n!r} is not in the database image list")
        return out

    gnd = []
    for qname, qim, box, lists in queries:
        where = f"{gt_path}: query {qname}"
        gnd.append({"ok": to_idx(lists["good"] + lists["ok"], where),
                    "junk": to_idx(lists["junk"], where), "bbx": box})
    gt = _normalise_gnd({"imlist": imlist, "qimlist": [q[1] for q in queries], "gnd": gnd},
                        str(gt_path))
    gt["qnames"] = [q[0] for q in queries]
    validate_gnd(gt, str(gt_path))
    return gt


def holidays_gnd(imlist: Sequence[str]) -> dict:
    """INRIA Holidays ground truth from the file names.

    Images are named ``NNNNNN.jpg``; the first four digits name the group and the group's
    first image (``...00``) is the query. As in the authors' ``gnd_holidays.mat``, queries are
    database images; positives are the other group members and the query itself is junk.

    Parameters
    ----------
    imlist : sequence of str
        Image names (with or without extension), in database order.

    Returns
    -------
    dict
        As :func:`read_gnd_pickle`, plus ``qidx``.
    """
    stems = [Path(n).stem for n in imlist]
    bad = [s for s in stems if not re.fullmatch(r"\d{6}", s)]
    if bad:
        raise GroundTruthError(f"Holidays images must be named NNNNNN.jpg; got e.g. {bad[0]!r}")
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(stems):
        groups.setdefault(s[:4], []).append(i)
    qidx, gnd = [], []
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda i: stems[i])
        q = members[0]
        qidx.append(q)
        gnd.append({"ok": members[1:], "junk": [q]})
    gt = _normalise_gnd({"imlist": stems, "qimlist": [stems[i] for i in qidx], "gnd": gnd},
                        "holidays")
    gt["qidx"] = np.asarray(qidx, np.int64)
    validate_gnd(gt, "holidays")
    return gt


def copydays_gnd(originals: Sequence[str], attacked: Sequence[str]) -> dict:
    """Copydays ground truth: each attacked copy's positive is its original.

    Copydays names images like Holidays (``NNNNNN.jpg``, the first four digits name the
    original). The database is the originals; the queries are the attacked copies.

    Parameters
    ----------
    originals : sequence of str
        Original image names (database order).
    attacked : sequence of str
        Attacked image names (query order).

    Returns
    -------
    dict
    """
    ostems = [Path(n).stem for n in originals]
    by_group: dict[str, int] = {}
    for i, s in enumerate(ostems):
        by_group.setdefault(s[:4], i)
    gnd, qim = [], []
    for a in attacked:
        s = Path(a).stem
        if s[:4] not in by_group:
            raise GroundTruthError(f"Copydays: attacked image {a!r} has no original with the "
                                   f"same first four digits ({s[:4]})")
        gnd.append({"ok": [by_group[s[:4]]], "junk": []})
        qim.append(str(a))
    return _normalise_gnd({"imlist": ostems, "qimlist": qim, "gnd": gnd}, "copydays")


def ukbench_gnd(n_images: int = 10200, group_size: int = 4) -> dict:
    """UKBench ground truth: ``n_images`` images in consecutive groups of ``group_size``.

    Every image is a query and a database image; its positives are the members of its group,
    itself included (the N-S score counts them in the top 4).
    """
    if n_images % group_size:
        raise GroundTruthError(f"UKBench: {n_images} images is not a multiple of {group_size}")
    names = [f"ukbench{i:05d}" for i in range(n_images)]
    gnd = [{"ok": list(range(group_size * (i // group_size), group_size * (i // group_size + 1))),
            "junk": []} for i in range(n_images)]
    return _normalise_gnd({"imlist": names, "qimlist": names, "gnd": gnd}, "ukbench")


# --------------------------------------------------------------------------------------
# file resolution
# --------------------------------------------------------------------------------------
class _ImageIndex:
    """Find image files by name (with or without extension) under a folder, recursively."""

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"image folder not found: {self.root}")
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        for dirpath, _, filenames in os.walk(self.root):
            for fn in filenames:
                if fn.lower().endswith(IMAGE_EXTS):
                    p = Path(dirpath) / fn
                    rel = p.relative_to(self.root).as_posix()
                    self.by_name.setdefault(rel, p)
                    self.by_name.setdefault(fn, p)
                    self.by_stem.setdefault(os.path.splitext(rel)[0], p)
                    self.by_stem.setdefault(os.path.splitext(fn)[0], p)

    def __len__(self):
        return len({p for p in self.by_name.values()})

    def find(self, name: str) -> Path | None:
        return self.by_name.get(name) or self.by_stem.get(name)

    def resolve(self, names: Iterable[str], source: str, what: str = "image") -> list[str]:
        out, missing = [], []
        for n in names:
            p = self.find(n)
            if p is None:
                missing.append(n)
            else:
                out.append(str(p))
        if missing:
            raise GroundTruthError(
                f"{source}: {len(missing)} {what}(s) listed in the ground truth are missing from "
                f"{self.root} (first: {missing[0]!r}; tried the name with and without the "
                f"extensions {', '.join(IMAGE_EXTS[:4])}, ...)")
        return out

    def all_paths(self) -> list[str]:
        return sorted({str(p) for p in self.by_name.values()})


def _check_boxes_in_images(paths, boxes, source):
    from PIL import Image

    for p, b in zip(paths, boxes):
        if b is None:
            continue
        with Image.open(p) as im:
            w, h = im.size
        x1, y1, x2, y2 = b
        tol = 2.0
        if x1 < -tol or y1 < -tol or x2 > w + tol or y2 > h + tol:
            raise GroundTruthError(
                f"{source}: crop box {b} of query {Path(p).name} lies outside the image "
                f"({w} x {h}); boxes are (x1, y1, x2, y2) in the image's pixels")


# --------------------------------------------------------------------------------------
# bring your own / default
# --------------------------------------------------------------------------------------
def load_folder(image_dir, gnd_path, train_dir=None, name: str | None = None,
                query_dir=None, default_max_dim: int = 1024,
                allow_empty_positives: bool = False, check_boxes: bool = True) -> RetrievalDataset:
    """Load a bring-your-own dataset: a folder of images plus a revisitop-format gnd pickle.

    Parameters
    ----------
    image_dir : str or Path
        Folder holding the database images (searched recursively; names in the pickle may
        omit the extension and may be relative paths).
    gnd_path : str or Path
        The ground-truth pickle (format: :func:`read_gnd_pickle`, ``docs/datasets.md``).
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
        Check that every crop box lies inside its query image (opens the query images).

    Returns
    -------
    RetrievalDataset

    Raises
    ------
    GroundTruthError
        Missing image, index out of range, query without positives, malformed box, ...
    DatasetNotFoundError
        ``image_dir`` or ``gnd_path`` does not exist.
    """
    image_dir = Path(image_dir)
    idx = _ImageIndex(image_dir)
    gt = read_gnd_pickle(gnd_path, allow_empty_positives=allow_empty_positives)
    qidx = idx if query_dir is None else _ImageIndex(Path(query_dir))
    src = str(gnd_path)
    images = idx.resolve(gt["imlist"], src, "database image")
    queries = qidx.resolve(gt["qimlist"], src, "query image")
    boxes = [g["bbx"] for g in gt["gnd"]]
    if check_boxes:
        _check_boxes_in_images(queries, boxes, src)
    if train_dir is not None:
        train = _ImageIndex(Path(train_dir)).all_paths()
        if not train:
            raise DatasetNotFoundError(f"no image in the training folder {train_dir}")
    elif "trainlist" in gt:
        train = idx.resolve(gt["trainlist"], src, "training image")
    else:
        train = []
    overlap = set(map(os.path.realpath, train)) & set(map(os.path.realpath, images + queries))
    if overlap:
        raise GroundTruthError(
            f"{src}: {len(overlap)} training image(s) are also database or query images (e.g. "
            f"{sorted(overlap)[0]}); the learning set must be held out")
    return RetrievalDataset(
        name or image_dir.name, images, queries, boxes, gt["gnd"], train_images=train,
        default_max_dim=default_max_dim,
        protocol="revisited" if gt["gnd"] and "easy" in gt["gnd"][0] else "map",
        imlist=gt["imlist"], qimlist=gt["qimlist"], info={"gnd_path": src})


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_dataset_dir() -> Path:
    """Folder of the embedded default dataset: env ``SELCONV_DEFAULT_DATA`` or ``<repo>/data/default``."""
    env = os.environ.get("SELCONV_DEFAULT_DATA")
    return Path(env) if env else _repo_root() / "data" / "default"


def default_data_root() -> Path:
    """Root of the downloaded benchmarks: env ``SELCONV_DATA`` or ``<repo>/datasets``."""
    env = os.environ.get("SELCONV_DATA")
    return Path(env) if env else _repo_root() / "datasets"


def _load_default(root=None, **_) -> RetrievalDataset:
    d = Path(root) if root is not None else default_dataset_dir()
    gnd = d / "gnd_default.pkl"
    if not gnd.is_file():
        raise DatasetNotFoundError(
            f"the embedded default dataset is missing ({gnd} not found). It ships in the "
            "repository's data/default folder; regenerate it with scripts/make_default_dataset.py "
            "or set SELCONV_DEFAULT_DATA")
    ds = load_folder(d / "jpg", gnd, name="default", default_max_dim=512)
    ds.info.update({"description": "embedded real-photo set (see data/default/LICENSES.md)"})
    return ds


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
        idx = _ImageIndex(_need_dir(d / "jpg", name, root))
        imlist = sorted({os.path.splitext(Path(p).name)[0] for p in idx.all_paths()})
        return read_oxford_paris_gt(gtdir, imlist=imlist, unknown="drop")
    raise DatasetNotFoundError(
        f"{name}: no ground truth in {d} (looked for gnd_{base}.pkl, gnd_{base}.mat, gt/). "
        + _hint(name, root))


def _image_names(gt_imlist, idx: _ImageIndex, source):
    return idx.resolve(gt_imlist, source, "image")


def _oxford_paris(name: str, root: Path, base: str, train_base: str, revisited: bool = False,
                  distractors: bool = False, **_) -> RetrievalDataset:
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
    idx = _ImageIndex(_need_dir(imgdir, name, root))
    images = _image_names(gt["imlist"], idx, f"{name} ({imgdir})")
    queries = _image_names(gt["qimlist"], idx, f"{name} ({imgdir})")
    if distractors:
        fl = _ImageIndex(_need_dir(root / "flickr100k", "flickr100k", root)).all_paths()
        images = images + fl
    train_dir = root / train_base / "jpg"

    def train():
        return _ImageIndex(_need_dir(train_dir, train_base, root)).all_paths()

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
    paths = _ImageIndex(_need_dir(root / "flickr100k", "flickr100k", root)).all_paths()
    rel = sorted(Path(p).relative_to(root / "flickr100k").as_posix() for p in paths)
    if len(rel) < n:
        raise DatasetNotFoundError(f"flickr100k: only {len(rel)} images in {root / 'flickr100k'}, "
                                   f"need {n}")
    pick = np.sort(np.random.default_rng(seed).choice(len(rel), size=n, replace=False))
    return [str(root / "flickr100k" / rel[i]) for i in pick]


def _holidays(name: str, root: Path, rotated: bool = False, train_seed: int = 0,
              n_train: int = 5000, **_) -> RetrievalDataset:
    sub = "rotated" if rotated else "jpg"
    imgdir = _need_dir(root / "holidays" / sub, name, root)
    idx = _ImageIndex(imgdir)
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


def _copydays(name: str, root: Path, attacks=COPYDAYS_ATTACKS, train_seed: int = 0,
              n_train: int = 5000, **_) -> RetrievalDataset:
    base = _need_dir(root / "copydays", name, root)
    orig = _ImageIndex(_need_dir(base / "original", name, root)).all_paths()
    qpaths = []
    for a in attacks:
        if a not in COPYDAYS_ATTACKS:
            raise ValueError(f"Copydays attack must be one of {COPYDAYS_ATTACKS}, got {a!r}")
        qpaths += _ImageIndex(_need_dir(base / a, name, root)).all_paths()
    gt = copydays_gnd(orig, qpaths)
    return RetrievalDataset(
        name, orig, qpaths, [None] * len(qpaths), gt["gnd"],
        train_images=lambda: sample_flickr_train(root, n_train, train_seed),
        default_max_dim=1024, imlist=gt["imlist"], qimlist=gt["qimlist"],
        train_name=f"flickr100k (random {n_train}, seed {train_seed})", info={"attacks": list(attacks)})


def _ukbench(name: str, root: Path, train_seed: int = 0, n_train: int = 5000, **_) -> RetrievalDataset:
    d = _need_dir(root / "ukbench", name, root)
    idx = _ImageIndex(d)
    paths = sorted(idx.all_paths(), key=lambda p: Path(p).name)
    paths = [p for p in paths if re.fullmatch(r"ukbench\d{5}", Path(p).stem)]
    gt = ukbench_gnd(len(paths))
    images = idx.resolve(gt["imlist"], name, "image")
    return RetrievalDataset(
        name, images, images, [None] * len(images), gt["gnd"],
        train_images=lambda: sample_flickr_train(root, n_train, train_seed),
        default_max_dim=1024, protocol="ukbench", imlist=gt["imlist"], qimlist=gt["qimlist"],
        train_name=f"flickr100k (random {n_train}, seed {train_seed})")


#: name -> (loader, keyword arguments)
DATASETS: dict[str, tuple[Callable, dict]] = {
    "default": (_load_default, {}),
    "oxford5k": (_oxford_paris, {"base": "oxford5k", "train_base": "paris6k"}),
    "paris6k": (_oxford_paris, {"base": "paris6k", "train_base": "oxford5k"}),
    "oxford105k": (_oxford_paris, {"base": "oxford5k", "train_base": "paris6k", "distractors": True}),
    "paris106k": (_oxford_paris, {"base": "paris6k", "train_base": "oxford5k", "distractors": True}),
    "roxford5k": (_oxford_paris, {"base": "oxford5k", "train_base": "paris6k", "revisited": True}),
    "rparis6k": (_oxford_paris, {"base": "paris6k", "train_base": "oxford5k", "revisited": True}),
    "roxford105k": (_oxford_paris, {"base": "oxford5k", "train_base": "paris6k", "revisited": True,
                                    "distractors": True}),
    "rparis106k": (_oxford_paris, {"base": "paris6k", "train_base": "oxford5k", "revisited": True,
                                   "distractors": True}),
    "holidays": (_holidays, {"rotated": False}),
    "holidays_rotated": (_holidays, {"rotated": True}),
    "copydays": (_copydays, {}),
    "ukbench": (_ukbench, {}),
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return list(DATASETS)


def load_dataset(name: str = "default", root=None, **kwargs) -> RetrievalDataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : str, default "default"
        One of :func:`list_datasets` (case-insensitive; ``-`` and ``_`` ignored, e.g.
        ``"R-Oxford5k"``).
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
    key = name.lower().replace("-", "").replace("_", "")
    table = {k.replace("_", ""): k for k in DATASETS}
    if key not in table:
        raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    canonical = table[key]
    loader, kw = DATASETS[canonical]
    if canonical == "default":
        return loader(root=root, **kwargs)
    root = Path(root) if root is not None else default_data_root()
    return loader(canonical, root, **{**kw, **kwargs})
