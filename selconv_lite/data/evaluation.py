"""Retrieval evaluation: ranking, mAP, the revisited protocol, UKBench score, query expansion.

Everything here follows the authors' MATLAB evaluation code (``compute_map.m``,
``yael_nn.m``, ``ukb_recall.m``) exactly, translated to 0-based indices:

* ``ranks`` is an integer array ``(nb, nq)``: column ``i`` lists database indices (0-based)
  from the most to the least similar for query ``i``. It may be truncated to its first
  ``k < nb`` rows; positives that do not appear in it count as missed.
* ``gnd`` is a list (one entry per query) of dicts with 0-based integer arrays ``"ok"`` and
  ``"junk"`` (and, for the revisited protocol, ``"easy"``, ``"hard"``, ``"junk"``).

Impossible input is refused with a ``ValueError`` rather than scored: a rank column that
repeats a database index (not a permutation; this also catches ranks passed transposed when
``nq == nb``), negative or non-integer ranks, gnd indices outside the database (1-based MATLAB
indices, :class:`~selconv_lite.data.groundtruth.GroundTruthError`), non-finite vectors, and an
empty query set.

Paper Sec. 5.1: "the retrieval performance is reported as mean average precision (mAP) ...
the junk images ... are removed from the ranking."
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..core.utils import check_finite
from .groundtruth import GroundTruthError, validate_gnd_indices

__all__ = [
    "rank_by_inner_product",
    "compute_ap",
    "compute_map",
    "compute_map_and_precision",
    "revisited_gnd",
    "evaluate_revisited",
    "ukbench_score",
    "average_query_expansion",
    "evaluate",
]


# --------------------------------------------------------------------------------------
# ranking
# --------------------------------------------------------------------------------------
def _as_2d(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, D), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {x.dtype}")
    return x


def rank_by_inner_product(qvecs, dbvecs, k: int | None = None) -> np.ndarray:
    """Rank database vectors by decreasing inner product with each query.

    Equivalent to the authors' ``[ranks, ~] = yael_nn(x, -q, nb, 16)`` (``.m`` version): an
    ascending, *stable* sort of the negated similarities, so exact ties keep the lower
    database index first.

    Parameters
    ----------
    qvecs : array_like, shape (nq, D)
        Query vectors, one per row (a single 1-D vector is accepted).
    dbvecs : array_like, shape (nb, D)
        Database vectors, one per row.
    k : int, optional
        Keep only the first ``k`` ranks (a truncated rank list). Default: all ``nb``.

    Returns
    -------
    ranks : np.ndarray of int64, shape (k or nb, nq)
        ``ranks[r, i]`` is the 0-based database index at 0-based position ``r`` for query ``i``.
    """
    q = _as_2d("qvecs", qvecs).astype(np.float64, copy=False)
    db = _as_2d("dbvecs", dbvecs).astype(np.float64, copy=False)
    if q.shape[0] == 0:
        raise ValueError(_NO_QUERY)
    if db.shape[0] == 0:
        raise ValueError("dbvecs is empty: there is no database vector to rank")
    check_finite(q, "qvecs")
    check_finite(db, "dbvecs")
    if q.shape[1] != db.shape[1]:
        raise ValueError(
            f"qvecs has dimension {q.shape[1]} but dbvecs has dimension {db.shape[1]}"
        )
    sim = q @ db.T  # (nq, nb)
    order = np.argsort(-sim, axis=1, kind="stable")
    if k is not None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        order = order[:, :k]
    return np.ascontiguousarray(order.T.astype(np.int64))


# --------------------------------------------------------------------------------------
# AP / mAP
# --------------------------------------------------------------------------------------
def compute_ap(pos, n_positives: int) -> float:
    """Average precision from the (junk-adjusted) 0-based positions of the found positives.

    The authors' ``score_ap_from_ranks1``: the trapezoidal rule between the precision just
    before and just after each positive,
    ``AP = sum_j ((j-1)/r_j  [1 if r_j = 0] + j/(r_j+1)) / (2 n)`` for the sorted 0-based
    positions ``r_j`` (``j = 1..#found``), ``n`` = number of positives.

    Parameters
    ----------
    pos : array_like of int
        Sorted 0-based positions of the positives that were found.
    n_positives : int
        Number of positives of the query (missed ones included).

    Returns
    -------
    float
        The AP; 0.0 when ``n_positives`` is 0 (the loop of the ``.m`` code does not run).
    """
    pos = np.asarray(pos, dtype=np.float64)
    if n_positives <= 0 or pos.size == 0:
        return 0.0
    j = np.arange(pos.size, dtype=np.float64)  # ntp = 0 .. n-1
    prec0 = np.where(pos == 0, 1.0, j / np.where(pos == 0, 1.0, pos))
    prec1 = (j + 1.0) / (pos + 1.0)
    recall_step = 1.0 / n_positives
    return float(np.sum((prec0 + prec1) * recall_step / 2.0))


_NO_QUERY = "no queries: the query set (gnd / qvecs) is empty, there is nothing to evaluate"

#: Above this many cells (nq x largest index) the permutation check sorts instead of scattering.
_SCATTER_LIMIT = 50_000_000


def _check_ranks(ranks, nq: int) -> tuple[np.ndarray, int | None, int]:
    """Validate ``ranks`` (k, nq); return it as int64, the database size when implied, and
    the largest index in it.

    Every column must list distinct non-negative database indices (a permutation of the
    database, or its first ``k`` entries). When every column is a permutation of ``0..k-1``
    the ranks are complete and the database has ``k`` images; that size is returned (None
    otherwise) so that gnd indices can be checked against it.
    """
    if nq == 0:
        raise ValueError(_NO_QUERY)
    ranks = np.asarray(ranks)
    if ranks.ndim == 1:
        ranks = ranks[:, None]
    if ranks.ndim != 2:
        raise ValueError(f"ranks must be a 2-D array (nb, nq), got shape {ranks.shape}")
    if not np.issubdtype(ranks.dtype, np.integer):
        if np.issubdtype(ranks.dtype, np.floating) and np.all(np.mod(ranks, 1) == 0):
            ranks = ranks.astype(np.int64)
        else:
            raise TypeError(f"ranks must hold integer indices, got dtype {ranks.dtype}")
    if ranks.shape[1] != nq:
        raise ValueError(
            f"ranks has {ranks.shape[1]} columns (queries) but gnd has {nq} entries; "
            "ranks must be (nb, nq) -- did you pass its transpose?"
        )
    k = ranks.shape[0]
    if k == 0:
        raise ValueError("ranks is empty (0 rows): nothing was ranked")
    lo, hi = int(ranks.min()), int(ranks.max())
    if lo < 0:
        raise ValueError(f"ranks contains the negative database index {lo}; ranks hold 0-based "
                         "indices")
    if nq * (hi + 1) <= _SCATTER_LIMIT:
        seen = np.zeros(nq * (hi + 1), dtype=bool)
        seen[ranks + np.arange(0, nq * (hi + 1), hi + 1)[None, :]] = True
        dup_cols = (np.empty(0, np.int64) if np.count_nonzero(seen) == ranks.size else
                    np.flatnonzero(seen.reshape(nq, hi + 1).sum(axis=1) != k))
    else:
        srt = np.sort(ranks, axis=0)
        dup_cols = np.flatnonzero((srt[1:] == srt[:-1]).any(axis=0))
    if dup_cols.size:
        i = int(dup_cols[0])
        vals, counts = np.unique(ranks[:, i], return_counts=True)
        raise ValueError(
            f"ranks column {i} lists database index {int(vals[counts > 1][0])} more than once: "
            f"each column must be a permutation of the database indices (or its first k rows); "
            f"{dup_cols.size} of {nq} columns are not"
            + (" -- ranks has as many rows as columns: did you pass its transpose?"
               if k == nq else ""))
    return ranks.astype(np.int64, copy=False), (k if hi == k - 1 else None), hi


def _check_gnd(gnd, nb_implied: int | None, n_database: int | None) -> None:
    if n_database is not None or nb_implied is None:
        validate_gnd_indices(gnd, n_database, "gnd")
        return
    try:
        validate_gnd_indices(gnd, nb_implied, "gnd")
    except GroundTruthError as e:
        raise GroundTruthError(
            f"{e} (the database size {nb_implied} is implied by ranks, whose columns are all "
            f"permutations of 0..{nb_implied - 1}; if ranks is truncated, pass n_database=)") from None


class _Flags:
    """Two reusable boolean tables over the database indices: membership of a query's
    positives and junk is one gather per rank column instead of a sort (``np.isin``)."""

    def __init__(self, hi: int, gnd):
        top = hi
        for g in gnd:
            for key in ("ok", "junk"):
                a = g.get(key)
                if a is not None and np.size(a):
                    top = max(top, int(np.max(a)))
        self.ok = np.zeros(top + 1, dtype=bool)
        self.junk = np.zeros(top + 1, dtype=bool)

    def adjusted_positions(self, col: np.ndarray, ok, junk) -> np.ndarray:
        """0-based positions of positives in ``col``, each lowered by the junk ranked before it."""
        ok = np.asarray(ok, dtype=np.int64).ravel()
        junk = np.asarray(junk, dtype=np.int64).ravel() if junk is not None else np.empty(0, np.int64)
        self.ok[ok] = True
        self.junk[junk] = True
        pos = np.flatnonzero(self.ok[col])  # sorted
        jpos = np.flatnonzero(self.junk[col]) if junk.size else junk
        self.ok[ok] = False
        self.junk[junk] = False
        if jpos.size:
            # number of junk positions strictly before each positive (as the .m while loop)
            pos = pos - np.searchsorted(jpos, pos, side="left")
        return pos


def compute_map(ranks, gnd: Sequence[dict], n_database: int | None = None) -> tuple[float, np.ndarray]:
    """Mean average precision, exactly as the authors' ``compute_map.m``.

    Junk images are removed from the ranking (each positive's position is lowered by the
    number of junk images ranked before it), AP uses the trapezoidal rule
    (:func:`compute_ap`), positives absent from a truncated ``ranks`` add nothing but still
    count, and a query without positives gets AP 0 and still counts in the mean (as in the
    ``.m`` code; the revisited protocol, :func:`compute_map_and_precision`, skips it instead).

    Parameters
    ----------
    ranks : array_like of int, shape (nb or k, nq)
        0-based database indices, most similar first (see :func:`rank_by_inner_product`).
    gnd : sequence of dict
        One dict per query with 0-based integer arrays ``"ok"`` and optionally ``"junk"``.
    n_database : int, optional
        Number of database images, to check the gnd indices against when ``ranks`` is
        truncated (complete ranks imply it).

    Returns
    -------
    mAP : float
    aps : np.ndarray of float64, shape (nq,)

    Raises
    ------
    ValueError
        No query, a rank column that is not a permutation (or its head), negative ranks, gnd
        indices out of range (:class:`~selconv_lite.data.groundtruth.GroundTruthError`).
    """
    gnd = list(gnd)
    ranks, nb, hi = _check_ranks(ranks, len(gnd))
    _check_gnd(gnd, nb, n_database)
    flags = _Flags(hi, gnd)
    aps = np.zeros(len(gnd), dtype=np.float64)
    for i, g in enumerate(gnd):
        if "ok" not in g:
            raise KeyError(f"gnd[{i}] has no 'ok' entry (keys: {sorted(g)})")
        ok = np.asarray(g["ok"]).ravel()
        pos = flags.adjusted_positions(ranks[:, i], ok, g.get("junk"))
        aps[i] = compute_ap(pos, ok.size)
    return float(aps.mean()), aps


def compute_map_and_precision(ranks, gnd: Sequence[dict], kappas: Iterable[int] = (1, 5, 10),
                              n_database: int | None = None):
    """mAP and mP@k as the revisitop code (Radenovic et al., CVPR 2018) computes them.

    Identical to :func:`compute_map` except that a query with no positive is skipped
    (AP = NaN, excluded from the mean), and it also returns the precision at each ``k``
    in ``kappas``. As in revisitop, precision at ``k`` uses the junk-adjusted positions and
    ``k_q = min(max position of a found positive (1-based), k)``:
    ``P@k = #{positives at 1-based position <= k_q} / k_q``. A query whose positives are all
    outside a truncated rank list gets P@k = 0.

    Parameters
    ----------
    ranks : array_like of int, shape (nb or k, nq)
    gnd : sequence of dict with ``"ok"`` and ``"junk"``
    kappas : iterable of int
    n_database : int, optional
        As in :func:`compute_map`.

    Returns
    -------
    mAP : float
    aps : np.ndarray, shape (nq,)   (NaN for skipped queries)
    mpr : np.ndarray, shape (len(kappas),)
    prs : np.ndarray, shape (nq, len(kappas))   (NaN for skipped queries)
    """
    gnd = list(gnd)
    kappas = [int(k) for k in kappas]
    ranks, nb, hi = _check_ranks(ranks, len(gnd))
    _check_gnd(gnd, nb, n_database)
    flags = _Flags(hi, gnd)
    nq = len(gnd)
    aps = np.full(nq, np.nan)
    prs = np.full((nq, len(kappas)), np.nan)
    for i, g in enumerate(gnd):
        ok = np.asarray(g["ok"]).ravel()
        if ok.size == 0:
            continue
        pos = flags.adjusted_positions(ranks[:, i], ok, g.get("junk"))
        aps[i] = compute_ap(pos, ok.size)
        pos1 = pos + 1
        for j, k in enumerate(kappas):
            if pos1.size == 0:
                prs[i, j] = 0.0
                continue
            kq = min(int(pos1.max()), k)
            prs[i, j] = np.sum(pos1 <= kq) / kq
    valid = ~np.isnan(aps)
    if not valid.any():
        return float("nan"), aps, np.full(len(kappas), np.nan), prs
    return float(aps[valid].mean()), aps, prs[valid].mean(axis=0), prs


def revisited_gnd(gnd: Sequence[dict], protocol: str) -> list[dict]:
    """Turn revisited ground truth (``easy``/``hard``/``junk``) into ``ok``/``junk`` per protocol.

    * ``"easy"``: ok = easy; junk = junk + hard
    * ``"medium"``: ok = easy + hard; junk = junk
    * ``"hard"``: ok = hard; junk = junk + easy

    Parameters
    ----------
    gnd : sequence of dict with ``"easy"``, ``"hard"``, ``"junk"``
    protocol : {"easy", "medium", "hard"}

    Returns
    -------
    list of dict with ``"ok"`` and ``"junk"``
    """
    protocol = protocol.lower()
    if not len(gnd):
        raise ValueError(_NO_QUERY)
    out = []
    for i, g in enumerate(gnd):
        missing = [k for k in ("easy", "hard", "junk") if k not in g]
        if missing:
            raise KeyError(
                f"gnd[{i}] lacks {missing}: the revisited protocol needs 'easy', 'hard' and "
                "'junk' (R-Oxford / R-Paris ground truth)"
            )
        e = np.asarray(g["easy"], np.int64).ravel()
        h = np.asarray(g["hard"], np.int64).ravel()
        j = np.asarray(g["junk"], np.int64).ravel()
        if protocol == "easy":
            out.append({"ok": e, "junk": np.concatenate([j, h])})
        elif protocol == "medium":
            out.append({"ok": np.concatenate([e, h]), "junk": j})
        elif protocol == "hard":
            out.append({"ok": h, "junk": np.concatenate([j, e])})
        else:
            raise ValueError(f"protocol must be 'easy', 'medium' or 'hard', got {protocol!r}")
    return out


def evaluate_revisited(ranks, gnd: Sequence[dict], kappas: Iterable[int] = (1, 5, 10),
                       n_database: int | None = None) -> dict:
    """The revisited Oxford/Paris protocol: mAP and mP@k for Easy, Medium and Hard.

    Parameters
    ----------
    ranks : array_like of int, shape (nb, nq)
    gnd : sequence of dict with ``"easy"``, ``"hard"``, ``"junk"``
    kappas : iterable of int, default (1, 5, 10)
    n_database : int, optional
        As in :func:`compute_map`.

    Returns
    -------
    dict
        ``{"easy": {"mAP": float, "mP@1": float, ...,  "aps": array}, "medium": ..., "hard": ...}``
    """
    kappas = list(kappas)
    res = {}
    for p in ("easy", "medium", "hard"):
        m, aps, mpr, _ = compute_map_and_precision(ranks, revisited_gnd(gnd, p), kappas,
                                                   n_database)
        d = {"mAP": m, "aps": aps}
        for k, v in zip(kappas, mpr):
            d[f"mP@{k}"] = float(v)
        res[p] = d
    return res


# --------------------------------------------------------------------------------------
# UKBench
# --------------------------------------------------------------------------------------
def ukbench_score(ranks, group_size: int = 4, k: int | None = None) -> float:
    """UKBench N-S score, as the authors' ``ukb_recall.m``.

    Images are in groups of ``group_size`` consecutive indices (query ``i``'s group is
    ``group_size * (i // group_size) ... + group_size - 1``); the score is the mean number of
    group members among the first ``k`` (default ``group_size``) ranks. The best score is 4.

    Parameters
    ----------
    ranks : array_like of int, shape (>= k, nq)
        Queries are the database images themselves (query ``i`` = image ``i``).
    group_size : int, default 4
    k : int, optional
        Rank cut-off; default ``group_size``. The authors pass ranks already cut to 4.

    Returns
    -------
    float
    """
    ranks = np.asarray(ranks)
    if ranks.ndim != 2:
        raise ValueError(f"ranks must be 2-D (nb, nq), got shape {ranks.shape}")
    ranks, _, _ = _check_ranks(ranks, ranks.shape[1])
    k = group_size if k is None else k
    top = ranks[:k].astype(np.int64)
    q = np.arange(ranks.shape[1])
    group_of_q = q // group_size
    hits = (top // group_size) == group_of_q[None, :]
    return float(hits.sum(axis=0).mean())


# --------------------------------------------------------------------------------------
# query expansion
# --------------------------------------------------------------------------------------
def average_query_expansion(qvecs, dbvecs, k: int = 5, ranks=None, normalize: bool = True):
    """Average query expansion (AQE, Chum et al. 2007).

    Each query is replaced by the mean of itself and its top-``k`` database vectors, then
    L2-normalised; rank again with :func:`rank_by_inner_product`.

    Parameters
    ----------
    qvecs : array_like, shape (nq, D)
    dbvecs : array_like, shape (nb, D)
    k : int, default 5
        Number of top database vectors to average with the query (0 returns the queries).
    ranks : array_like of int, shape (>= k, nq), optional
        Initial ranking; computed by inner product when omitted.
    normalize : bool, default True
        L2-normalise the expanded queries.

    Returns
    -------
    np.ndarray, shape (nq, D)
        The expanded queries (float64 unless the inputs are float32).
    """
    q = _as_2d("qvecs", qvecs)
    db = _as_2d("dbvecs", dbvecs)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if k == 0:
        return q.copy()
    k = min(k, db.shape[0])
    if ranks is None:
        ranks = rank_by_inner_product(q, db, k=k)
    ranks = np.asarray(ranks)
    if ranks.shape[0] < k or ranks.shape[1] != q.shape[0]:
        raise ValueError(f"ranks must be (>= {k}, {q.shape[0]}), got {ranks.shape}")
    dtype = np.result_type(q.dtype, db.dtype, np.float32)
    top = db[ranks[:k].T]  # (nq, k, D)
    out = (q.astype(dtype) + top.sum(axis=1, dtype=dtype)) / (k + 1)
    if normalize:
        n = np.linalg.norm(out, axis=1, keepdims=True)
        out = out / np.where(n > 0, n, 1)
    return out.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------
# convenience
# --------------------------------------------------------------------------------------
def evaluate(qvecs, dbvecs, gnd: Sequence[dict], qe_k: int = 0, kappas=(1, 5, 10)) -> dict:
    """Rank by inner product (optionally with AQE) and score a query set.

    The classic ``ok``/``junk`` mAP of :func:`compute_map`, plus the revisited protocol when
    the gnd has ``"easy"``/``"hard"``.

    Parameters
    ----------
    qvecs, dbvecs : array_like, (nq, D) and (nb, D)
    gnd : sequence of dict
    qe_k : int, default 0
        Average query expansion with this many neighbours (0 = none).
    kappas : iterable of int

    Returns
    -------
    dict
        ``{"mAP", "aps", "ranks"}`` from the ``ok``/``junk`` ground truth; when the gnd also
        has ``"easy"``/``"hard"``, the keys ``"easy"``, ``"medium"``, ``"hard"`` of
        :func:`evaluate_revisited` as well.
    """
    gnd = list(gnd)
    if not gnd:
        raise ValueError(_NO_QUERY)
    nb = _as_2d("dbvecs", dbvecs).shape[0]
    validate_gnd_indices(gnd, nb, "gnd")
    if qe_k:
        qvecs = average_query_expansion(qvecs, dbvecs, k=qe_k)
    ranks = rank_by_inner_product(qvecs, dbvecs)
    res = {}
    if "easy" in gnd[0] and "hard" in gnd[0]:
        res.update(evaluate_revisited(ranks, gnd, kappas, n_database=nb))
    if "ok" in gnd[0]:
        m, aps = compute_map(ranks, gnd, n_database=nb)
        res.update({"mAP": m, "aps": aps})
    elif "easy" not in gnd[0]:
        raise ValueError("gnd[0] has neither 'ok' nor 'easy'/'hard': nothing to score "
                         f"(keys: {sorted(gnd[0])})")
    res["ranks"] = ranks
    return res
