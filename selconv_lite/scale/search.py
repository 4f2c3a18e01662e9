"""Inner-product search at scale: numpy (default), exact FAISS and compressed FAISS indexes.

The paper compares final vectors by inner product (Sec. 5.1, ``yael_nn`` in the authors'
code); :func:`selconv_lite.data.evaluation.rank_by_inner_product` is the reference ranking.
This module gives the same ranks with FAISS for large databases, and compressed (product
quantised) indexes for the memory side of Table 6's 105k/106k columns and the 1M-distractor
protocol.

Backends (one argument, ``backend=``):

``"numpy"`` (default)
    :func:`~selconv_lite.data.evaluation.rank_by_inner_product`: a float64 product and a stable
    sort. Right for the embedded set and for Oxford5k/Paris6k.
``"faiss-flat"``
    Exact: a FAISS ``IndexFlatIP`` (float32, multi-threaded BLAS) returns candidates, and the
    candidates are re-scored in float64 and sorted like the numpy backend. The number of
    candidates grows until the float32 error bound proves that no vector outside them can
    enter the top ``k`` (see :class:`SearchIndex`), so the ranks **equal** those of
    ``rank_by_inner_product`` on the same vectors.
``"faiss-pq"``
    Compressed, exhaustive: OPQ rotation + product quantiser (``OPQ{m},PQ{m}x{nbits}``), codes of
    ``m * nbits / 8`` bytes per image, asymmetric distances.
``"faiss-ivfpq"``
    Compressed, non-exhaustive: OPQ + inverted file with ``nlist`` lists + PQ codes
    (``nprobe`` lists visited per query); each image costs its code plus an 8-byte id.

Ties
----
Exact backends rank by decreasing float64 inner product; equal scores keep the lower
database index first (a stable sort, like ``yael_nn``). The compressed backends apply the same
rule to their approximate scores.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..data.evaluation import rank_by_inner_product

__all__ = ["BACKENDS", "SearchIndex", "build_index", "search", "index_bytes_per_image",
           "SmallTrainingSetWarning"]

BACKENDS = ("numpy", "faiss-flat", "faiss-pq", "faiss-ivfpq")

_EPS32 = 2.0 ** -24  # unit round-off of float32

#: FAISS's k-means asks for this many training points per centroid
_POINTS_PER_CENTROID = 39


class SmallTrainingSetWarning(UserWarning):
    """A compressed index learns its codebooks from fewer than 39 training vectors per
    centroid (FAISS's recommendation): the codes are coarser than with a larger training set."""


def _faiss():
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - faiss-cpu is in requirements.txt
        raise ImportError("the FAISS backends need the faiss-cpu package (pip install faiss-cpu)") from e
    return faiss


def _as_2d(name, x):
    """``x`` as ``(n, D)`` numbers (one vector becomes one row); NaN/inf are refused."""
    x = np.asarray(x)
    bad = None
    if x.ndim not in (1, 2):
        bad = f"{name} must be a 2-D array (n, D), got shape {x.shape}"
    elif not np.issubdtype(x.dtype, np.number):
        bad = f"{name} must be numeric, got dtype {x.dtype}"
    elif x.size and not np.isfinite(x).all():
        bad = f"{name} contains NaN or infinite values"
    if bad:
        raise ValueError(bad)
    return np.atleast_2d(x)


class SearchIndex:
    """A database of vectors ready for inner-product search with one backend.

    Parameters
    ----------
    dbvecs : array_like ``(nb, D)``
        Database vectors (e.g. the final vectors of Sec. 4, float32).
    backend : {"numpy", "faiss-flat", "faiss-pq", "faiss-ivfpq"}
    m : int, default 64
        PQ sub-quantisers (compressed backends); ``D`` must be a multiple of ``m``.
    nbits : int, default 8
        Bits per sub-quantiser code; the codebooks have ``2**nbits`` centroids.
    nlist : int, default 1024
        Inverted lists (``"faiss-ivfpq"``; reduced to ``nb // 39`` for small trainings sets).
    nprobe : int, default 16
        Lists visited per query (``"faiss-ivfpq"``).
    opq : bool, default True
        Learn an OPQ rotation before the PQ (compressed backends).
    train : array_like, optional
        Training vectors for the compressed backends (default: the database itself, a seeded
        sample of at most ``max_train`` rows).
    max_train : int, default 100000
    seed : int, default 0
        Seed of the sampling and of every FAISS k-means.
    threads : int, optional
        If given, ``faiss.omp_set_num_threads(threads)`` (process-wide). FAISS's OpenMP threads
        spin while waiting: on a machine whose cores are busy with other work, 1 thread is
        often faster than one per core.

    Notes
    -----
    Exactness of ``"faiss-flat"``: FAISS scores in float32. The float32 inner product of
    float32-rounded vectors differs from the exact one by at most
    ``tol = (D + 4) 2^-24 |q| |x|`` (standard dot-product error bound plus the rounding of
    the inputs; twice that is used). The index asks for ``k' > k`` candidates and accepts them
    when ``s'_(k') + 2 tol < s'_(k)`` (float32 scores): then every vector left out has a true
    score strictly below the ``k`` best candidates, so the true top ``k`` (ties included) is
    among the candidates; otherwise ``k'`` doubles. The candidates are re-scored in float64.
    """

    def __init__(self, dbvecs, backend="numpy", m=64, nbits=8, nlist=1024, nprobe=16, opq=True,
                 train=None, max_train=100_000, seed=0, threads=None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown search backend {backend!r}; choose one of {BACKENDS}")
        db = _as_2d("dbvecs", dbvecs)
        if db.shape[0] == 0:
            raise ValueError("dbvecs is empty: the database needs at least one vector")
        self.backend = backend
        self.nb, self.dim = db.shape
        self.seed = int(seed)
        self.nprobe = int(nprobe)
        self._db = None
        self._index = None
        if backend == "numpy":
            self._db = db
            return
        faiss = _faiss()
        if threads is not None:
            faiss.omp_set_num_threads(int(threads))
        x32 = np.ascontiguousarray(db, dtype=np.float32)
        if backend == "faiss-flat":
            self._index = faiss.IndexFlatIP(self.dim)
            self._index.add(x32)
            # the float64 re-scoring reads the caller's vectors when they are not float32, else the
            # index's own float32 storage (no second copy of the database)
            self._db = db if db.dtype != np.float32 else faiss.rev_swig_ptr(
                self._index.get_xb(), self.nb * self.dim).reshape(self.nb, self.dim)
            # largest norm, in blocks (no float64 copy of the database); +0.1 % covers the
            # float32 rounding of the norms themselves
            self._norm_max = 1.001 * float(np.sqrt(max(
                float(np.einsum("ij,ij->i", self._db[a:a + 65536], self._db[a:a + 65536]).max())
                for a in range(0, self.nb, 65536))))
            return
        self._build_compressed(faiss, x32, train, int(m), int(nbits), int(nlist), bool(opq),
                               int(max_train))

    # ---------------------------------------------------------------- compressed indexes
    def _build_compressed(self, faiss, x32, train, m, nbits, nlist, opq, max_train):
        D = self.dim
        if m < 1 or D % m:
            raise ValueError(f"m={m} sub-quantisers must divide the dimension D={D}")
        if not 1 <= nbits <= 16:
            raise ValueError(f"nbits must be in 1..16, got {nbits}")
        t = x32 if train is None else np.ascontiguousarray(_as_2d("train", train), dtype=np.float32)
        if t.shape[1] != D:
            raise ValueError(f"train has dimension {t.shape[1]}, the database {D}")
        rng = np.random.default_rng(self.seed)
        if t.shape[0] > max_train:
            t = t[np.sort(rng.choice(t.shape[0], max_train, replace=False))]
        n_codes = 2 ** nbits
        if t.shape[0] < n_codes:
            raise ValueError(f"a {backend_name(self.backend)} index with nbits={nbits} learns "
                             f"{n_codes} centroids per sub-quantiser but has only {t.shape[0]} "
                             f"training vectors; lower nbits (2**nbits <= {t.shape[0]}) or give more "
                             "training vectors (train=)")
        if opq and t.shape[0] < D:
            # FAISS's OPQ training corrupts memory (and kills the process) with fewer than D
            # training vectors: refuse before calling it
            raise ValueError(f"an OPQ rotation of dimension D={D} needs at least {D} training "
                             f"vectors, got {t.shape[0]}; pass opq=False or more training "
                             "vectors (train=)")
        if t.shape[0] < _POINTS_PER_CENTROID * n_codes:
            warnings.warn(f"{backend_name(self.backend)} codebooks of {n_codes} centroids learned "
                          f"from {t.shape[0]} training vectors (FAISS recommends at least "
                          f"{_POINTS_PER_CENTROID * n_codes})", SmallTrainingSetWarning,
                          stacklevel=4)
        pre = f"OPQ{m}," if opq else ""
        if self.backend == "faiss-ivfpq":
            nlist = max(1, min(nlist, t.shape[0] // 39))
            key = f"{pre}IVF{nlist},PQ{m}x{nbits}np"
        else:
            key = f"{pre}PQ{m}x{nbits}np"  # np: no polysemous training (slow, unused here)
        index = faiss.index_factory(D, key, faiss.METRIC_INNER_PRODUCT)
        self._seed_everything(faiss, index)
        index.train(t)
        # add in chunks: FAISS encodes up to 262144 vectors at once through a distance table of
        # n * 2**nbits * m floats (17 GB for m=64 at that n); 8192 keeps it near 0.5 GB
        for a in range(0, self.nb, 8192):
            index.add(x32[a:a + 8192])
        self.factory = key
        self.nlist = nlist if self.backend == "faiss-ivfpq" else None
        self._index = index

    def _seed_everything(self, faiss, index):
        """Fix the seed of the PQ codebooks' and the coarse quantiser's k-means (FAISS's OPQ
        training uses its own fixed seed)."""
        seed = self.seed
        inner = index
        if isinstance(index, faiss.IndexPreTransform):
            inner = faiss.downcast_index(index.index)
            for i in range(index.chain.size()):
                vt = faiss.downcast_VectorTransform(index.chain.at(i))
                if isinstance(vt, faiss.OPQMatrix):
                    # OPQ's own PQ: same settings as the index's (kept alive with the index)
                    self._opq_pq = faiss.ProductQuantizer(vt.d_out, vt.M, inner.pq.nbits)
                    self._opq_pq.cp.seed = seed
                    self._opq_pq.cp.min_points_per_centroid = 1
                    vt.pq = self._opq_pq
        if hasattr(inner, "pq"):
            inner.pq.cp.seed = seed
            # one Python warning (SmallTrainingSetWarning) instead of one line per sub-quantiser
            inner.pq.cp.min_points_per_centroid = 1
        if hasattr(inner, "cp"):
            inner.cp.seed = seed
        self._inner = inner

    # ---------------------------------------------------------------- properties
    @property
    def bytes_per_image(self) -> float:
        """Memory of one database image in the index (codes, plus ids for inverted lists)."""
        return index_bytes_per_image(self)

    def __repr__(self):
        extra = f", factory={self.factory!r}" if hasattr(self, "factory") else ""
        return (f"SearchIndex(backend={self.backend!r}, nb={self.nb}, D={self.dim}, "
                f"bytes_per_image={self.bytes_per_image:g}{extra})")

    # ---------------------------------------------------------------- search
    def search(self, qvecs, k=None) -> np.ndarray:
        """Ranks of the database for each query, in the layout of ``rank_by_inner_product``.

        Parameters
        ----------
        qvecs : array_like ``(nq, D)`` (or one ``(D,)`` vector)
        k : int, optional
            Keep the first ``k`` ranks (default: all ``nb``).

        Returns
        -------
        ranks : ndarray int64 ``(k, nq)``
            ``ranks[r, i]`` is the database index at position ``r`` for query ``i``.
        """
        q = _as_2d("qvecs", qvecs)
        if q.shape[1] != self.dim:
            raise ValueError(f"qvecs has dimension {q.shape[1]} but the database has dimension "
                             f"{self.dim}")
        if k is not None:
            if int(k) != k or k < 1:
                raise ValueError(f"k must be a positive integer, got {k!r}")
            k = min(int(k), self.nb)
        kk = self.nb if k is None else k
        if self.backend == "numpy":
            return rank_by_inner_product(q, self._db, k=k)
        if q.shape[0] == 0:
            return np.zeros((kk, 0), np.int64)
        q32 = np.ascontiguousarray(q, dtype=np.float32)
        if self.backend == "faiss-flat":
            return self._exact(q, q32, kk)
        if self.backend == "faiss-ivfpq":
            self._index_params().nprobe = min(self.nprobe, self.nlist)
        S, idx = self._index.search(q32, kk)
        idx = idx.astype(np.int64)
        # FAISS fills with -1 when an IVF probe finds fewer than k vectors: the rest follow in
        # index order after the found ones (they were not scored)
        out = np.empty_like(idx)
        for i in range(idx.shape[0]):
            found = idx[i] >= 0
            c, s = idx[i][found], S[i][found]
            ordered = c[np.lexsort((c, -s.astype(np.float64)))]
            if ordered.size < kk:
                rest = np.setdiff1d(np.arange(self.nb), ordered, assume_unique=False)[:kk - ordered.size]
                ordered = np.concatenate([ordered, rest])
            out[i] = ordered
        return np.ascontiguousarray(out.T)

    def _index_params(self):
        faiss = _faiss()
        return faiss.extract_index_ivf(self._index)

    def _exact(self, q, q32, k):
        nb, D = self.nb, self.dim
        qn = np.sqrt(np.einsum("ij,ij->i", q, q, dtype=np.float64))
        tol = 2.0 * (D + 4) * _EPS32 * qn * self._norm_max  # per query, see the class notes
        kk = nb if k >= nb else min(nb, max(2 * k, k + 16))
        todo = np.arange(q.shape[0])
        out = np.empty((q.shape[0], k), np.int64)
        while todo.size:
            S, I = self._index.search(q32[todo], kk)
            if kk >= nb:
                ok = np.ones(todo.size, bool)
            else:
                ok = S[:, kk - 1].astype(np.float64) + 2 * tol[todo] < S[:, k - 1]
            for j in np.flatnonzero(ok):
                i = todo[j]
                cand = np.sort(I[j])
                s = self._db[cand].astype(np.float64) @ q[i].astype(np.float64)
                out[i] = cand[np.lexsort((cand, -s))][:k]
            todo = todo[~ok]
            kk = min(nb, 2 * kk)
        return np.ascontiguousarray(out.T)


def backend_name(backend):
    return {"faiss-pq": "PQ", "faiss-ivfpq": "IVF-PQ"}.get(backend, backend)


def index_bytes_per_image(index: SearchIndex) -> float:
    """Bytes one database image occupies in ``index``.

    numpy and FAISS flat: ``4 D`` (float32 vector; the numpy backend holds whatever dtype it was
    given, ``itemsize * D``); PQ: ``m * nbits / 8``; IVF-PQ: that plus an 8-byte id.
    """
    if index.backend == "numpy":
        return float(index._db.dtype.itemsize * index.dim)
    if index.backend == "faiss-flat":
        return 4.0 * index.dim
    code = float(index._index.sa_code_size()) if index.backend == "faiss-pq" else float(
        index._index_params().code_size)
    if index.backend == "faiss-ivfpq":
        return code + 8.0
    return code


def build_index(dbvecs, backend="numpy", **options) -> SearchIndex:
    """A :class:`SearchIndex` of ``dbvecs`` (``options``: ``m``, ``nbits``, ``nlist``, ``nprobe``,
    ``opq``, ``train``, ``max_train``, ``seed``, ``threads``)."""
    return SearchIndex(dbvecs, backend=backend, **options)


def search(qvecs, dbvecs, k=None, backend="numpy", **options) -> np.ndarray:
    """Rank ``dbvecs`` by decreasing inner product with each query (Sec. 5.1).

    With ``backend="numpy"`` (default) or ``"faiss-flat"`` the ranks equal
    :func:`selconv_lite.data.evaluation.rank_by_inner_product` ``(qvecs, dbvecs, k)``; the
    compressed backends (``"faiss-pq"``, ``"faiss-ivfpq"``) approximate them. Returns int64
    ranks ``(k or nb, nq)``. See :class:`SearchIndex` for ``options``.
    """
    return build_index(dbvecs, backend=backend, **options).search(qvecs, k=k)
