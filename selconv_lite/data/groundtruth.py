"""Ground truth of retrieval datasets: the formats in the wild, their validation, and a safe
pickle reader (paper Sec. 5.1).

Canonical form: a dict with ``imlist`` (database image names), ``qimlist`` (query image names)
and ``gnd``, one dict per query with 0-based int64 arrays ``"ok"`` and ``"junk"`` (and
``"easy"`` / ``"hard"`` for revisited ground truth) indexing ``imlist``, and ``"bbx"``, the
query's crop box ``(x1, y1, x2, y2)`` or None.

Readers:

* :func:`read_gnd_pickle` -- the revisitop / cnnimageretrieval ``gnd_*.pkl`` format
  (``imlist``, ``qimlist``, ``gnd[i]`` with ``ok``/``junk`` or ``easy``/``hard``/``junk`` and
  ``bbx``); this is also the bring-your-own format (see ``docs/datasets.md``). Pickles are read
  with :class:`RestrictedUnpickler`, which builds only builtin containers and scalars and numpy
  arrays: a pickle that would import or call anything else is refused (``docs/reliability.md``);
* :func:`read_gnd_mat` -- the authors' MATLAB ``gnd_*.mat`` (1-based ``qidx``/``ok``/``junk``);
* :func:`read_oxford_paris_gt` -- the official text files ``<name>_query.txt`` (``<image>
  x1 y1 x2 y2``; Oxford names carry an ``oxc1_`` prefix that the files do not) and
  ``_good.txt`` / ``_ok.txt`` / ``_junk.txt``;
* :func:`holidays_gnd`, :func:`copydays_gnd`, :func:`ukbench_gnd` -- ground truth from file names.

:func:`validate_gnd` checks a ground truth (canonical dict, or a bare ``gnd`` list against a
database size) and is run by every reader, by
:class:`~selconv_lite.data.retrieval.RetrievalDataset` and by the evaluation functions.
"""
from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "GroundTruthError",
    "DatasetNotFoundError",
    "UnsafePickleError",
    "RestrictedUnpickler",
    "IMAGE_EXTS",
    "read_gnd_pickle",
    "write_gnd_pickle",
    "read_gnd_mat",
    "read_oxford_paris_gt",
    "holidays_gnd",
    "copydays_gnd",
    "ukbench_gnd",
    "validate_gnd",
    "validate_gnd_indices",
    "restricted_loads",
    "SAFE_PICKLE_GLOBALS",
]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
OXFORD_QUERY_PREFIX = "oxc1_"


class GroundTruthError(ValueError):
    """A ground-truth file is malformed or inconsistent with the images."""


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not where they should be."""


class UnsafePickleError(GroundTruthError):
    """A pickle asks for something other than builtin containers/scalars and numpy arrays."""


# --------------------------------------------------------------------------------------
# the restricted unpickler
# --------------------------------------------------------------------------------------
#: The only globals a ground-truth pickle may name: what numpy needs to rebuild an array or a
#: scalar (protocol 2 pickles encode array bytes with ``_codecs.encode``) and the builtin
#: containers that have no opcode of their own. Nothing here can run code or touch files.
SAFE_PICKLE_GLOBALS = frozenset({
    *((mod, name) for mod in ("builtins", "__builtin__")  # protocol < 3 says __builtin__
      for name in ("set", "frozenset", "complex", "slice", "range", "bytearray", "bytes")),
    ("collections", "OrderedDict"), ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
})


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that builds only builtin containers/scalars and numpy arrays.

    Any other global a pickle names (a class whose ``__reduce__`` calls ``exec``, ``os.system``,
    ...) raises :class:`UnsafePickleError` *before* it is imported or called, so loading a
    ground-truth file from the internet cannot run code. ``persistent_load`` is refused too.

    Parameters
    ----------
    file : binary file object
    source : str
        Name of the file, used in the messages.
    """

    def __init__(self, file, source: str = "<pickle>", **kwargs):
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module, name):
        if (module, name) in SAFE_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.source}: refusing to load {module}.{name} -- a ground-truth pickle may only "
            "hold lists, dicts, tuples, strings, numbers and numpy arrays; this file would "
            "import or call other code (do not trust it)")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: refusing a persistent id in a ground-truth pickle")


def restricted_loads(data: bytes, source: str = "<pickle>"):
    """:func:`pickle.loads` through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), source).load()


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


def validate_gnd_indices(gnd: Sequence[dict], n_images: int | None, source: str = "gnd",
                         qnames: Sequence[str] | None = None) -> None:
    """Check that every index of a ``gnd`` list is a 0-based integer in ``[0, n_images)``.

    Used by :func:`validate_gnd`, by :class:`~selconv_lite.data.retrieval.RetrievalDataset` and
    by the evaluation functions (:mod:`selconv_lite.data.evaluation`), so that 1-based
    (MATLAB) or out-of-range indices are an error instead of a silently lower mAP.

    Parameters
    ----------
    gnd : sequence of dict
        One dict per query with integer arrays ``"ok"`` and optionally ``"junk"``, ``"easy"``,
        ``"hard"``.
    n_images : int or None
        Number of database images; None checks only integrality and ``>= 0``.
    source : str
        Used in the messages.
    qnames : sequence of str, optional
        Query names, used in the messages.

    Raises
    ------
    GroundTruthError
        Naming the query, the key and the bad index (with a hint when it looks 1-based).
    """
    for i, g in enumerate(gnd):
        if not isinstance(g, dict):
            raise GroundTruthError(f"{source}: gnd[{i}] must be a dict with 'ok' (and 'junk'), "
                                   f"got {type(g).__name__}")
        q = f" (query {qnames[i]!r})" if qnames is not None else ""
        for key in ("ok", "junk", "easy", "hard"):
            if key not in g or g[key] is None:
                continue
            a = np.asarray(g[key]).ravel()
            if a.size == 0:
                continue
            if not np.issubdtype(a.dtype, np.integer):
                if (a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a))):
                    a = a.astype(np.int64)
                else:
                    raise GroundTruthError(f"{source}: gnd[{i}]['{key}']{q} must hold integer "
                                           f"image indices, got {a[:5]!r}")
            lo, hi = int(a.min()), int(a.max())
            if lo < 0 or (n_images is not None and hi >= n_images):
                bad = lo if lo < 0 else hi
                one_based = n_images is not None and hi == n_images and lo >= 1
                rng = f"0..{n_images - 1}" if n_images is not None else ">= 0"
                raise GroundTruthError(
                    f"{source}: gnd[{i}]['{key}']{q} contains index {bad}, out of range for the "
                    f"{n_images if n_images is not None else '?'} database images (indices are "
                    f"0-based: {rng})"
                    + ("; the indices look 1-based (MATLAB) -- subtract 1" if one_based else ""))


def validate_gnd(gt, source: str = "gnd", allow_empty_positives: bool = False,
                 n_images: int | None = None) -> None:
    """Check a ground truth for consistency; raise :class:`GroundTruthError`.

    Checks: unique database names; every index in ``ok`` / ``junk`` / ``easy`` / ``hard`` an
    integer within ``[0, len(imlist))`` (with a hint when the indices look 1-based); every
    query has at least one positive (unless ``allow_empty_positives``); crop boxes are
    (x1, y1, x2, y2).

    Parameters
    ----------
    gt : dict or sequence of dict
        Output of :func:`read_gnd_pickle` and friends, or a bare ``gnd`` list (then give
        ``n_images``).
    source : str
        Name of the file, used in the messages.
    allow_empty_positives : bool, default False
        Accept queries without positives (the revisited Hard protocol has a few).
    n_images : int, optional
        Database size for a bare ``gnd`` list (default: ``len(gt["imlist"])``).
    """
    if isinstance(gt, dict):
        imlist = gt["imlist"]
        gnd, qnames = gt["gnd"], gt.get("qimlist")
        n = len(imlist) if n_images is None else int(n_images)
        if len(imlist) == 0:
            raise GroundTruthError(f"{source}: 'imlist' is empty")
        seen = {}
        for i, name in enumerate(imlist):
            if name in seen:
                raise GroundTruthError(
                    f"{source}: database image {name!r} is listed twice (imlist[{seen[name]}] and "
                    f"imlist[{i}])")
            seen[name] = i
    else:
        gnd, qnames, n = list(gt), None, n_images
    validate_gnd_indices(gnd, n, source, qnames)
    if allow_empty_positives:
        return
    for i, g in enumerate(gnd):
        ok = g.get("ok")
        if ok is None and "easy" in g:
            ok = np.concatenate([np.ravel(g["easy"]), np.ravel(g.get("hard", []))])
        if ok is None or np.size(ok) == 0:
            qn = f" ({qnames[i]!r})" if qnames is not None else ""
            raise GroundTruthError(
                f"{source}: query {i}{qn} has no positive image "
                "('ok', or 'easy' + 'hard', is empty); remove the query or add its positives")


def read_gnd_pickle(path, validate: bool = True, allow_empty_positives: bool = False) -> dict:
    """Read a ground-truth pickle in the revisitop / cnnimageretrieval format.

    The pickle holds a dict::

        {"imlist":  [database image names],        # relative to the image folder,
         "qimlist": [query image names],           # with or without extension
         "gnd": [ {"ok": [...], "junk": [...], "bbx": [x1, y1, x2, y2] or None}, ...],
         "trainlist": [...]}                       # optional (selconv_lite extension)

    or, revisited, ``gnd[i] = {"easy": [...], "hard": [...], "junk": [...], "bbx": ...}``.
    Indices are 0-based into ``imlist``. ``bbx`` is the query crop box (x1, y1, x2, y2) in the
    pixels of the displayed image (EXIF orientation applied).

    The file is read with :class:`RestrictedUnpickler`: only builtin containers/scalars and
    numpy arrays are built, anything else raises :class:`UnsafePickleError` naming the file.

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
            raw = RestrictedUnpickler(f, str(path)).load()
    except UnsafePickleError:
        raise
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
