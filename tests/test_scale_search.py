"""selconv_lite.scale.search: FAISS ranks equal rank_by_inner_product (ties included); the
compressed indexes are seeded, report their bytes per image and find near-duplicates."""
import warnings

import numpy as np
import pytest

from selconv_lite.data.evaluation import rank_by_inner_product
from selconv_lite.scale.search import BACKENDS, SmallTrainingSetWarning, build_index, search



def _unit(rng, n, d, dtype=np.float32):
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("k", [None, 1, 7, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_faiss_flat_equals_rank_by_inner_product(k, dtype):
    rng = np.random.default_rng(0)
    db, q = _unit(rng, 2000, 64, dtype), _unit(rng, 9, 64, dtype)
    want = rank_by_inner_product(q, db, k)
    for backend in ("numpy", "faiss-flat"):
        got = search(q, db, k, backend=backend, threads=1)
        assert got.dtype == np.int64 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_exact_ties_keep_the_lower_database_index_first():
    # small integers: every inner product is exact in float32 and float64, so ties are real
    rng = np.random.default_rng(1)
    db = rng.integers(-2, 3, size=(400, 6)).astype(np.float32)
    db[[5, 2, 9]] = db[300]  # four identical vectors
    q = rng.integers(-2, 3, size=(6, 6)).astype(np.float32)
    q[0] = db[300]
    for k in (None, 3, 40):
        np.testing.assert_array_equal(search(q, db, k, backend="faiss-flat", threads=1),
                                      rank_by_inner_product(q, db, k))
    full = search(q[:1], db, backend="faiss-flat", threads=1)[:, 0]
    pos = [int(np.flatnonzero(full == i)[0]) for i in (2, 5, 9, 300)]
    assert pos == list(range(pos[0], pos[0] + 4)), pos  # the tied group, by database index


def test_float32_near_ties_are_resolved_in_float64():
    # rows that differ by less than float32 resolution: FAISS's float32 scores tie, the
    # float64 re-scoring must order them like the numpy backend
    rng = np.random.default_rng(2)
    base = _unit(rng, 1, 32, np.float64)[0]
    db = np.tile(base, (50, 1)) + 1e-12 * rng.standard_normal((50, 32))
    db = np.vstack([_unit(rng, 500, 32, np.float64), db])
    q = base[None, :]
    want = rank_by_inner_product(q, db, 20)
    got = search(q, db, 20, backend="faiss-flat", threads=1)
    np.testing.assert_array_equal(got, want)


def _near_duplicates(rng, n=1500, d=32, nq=40, noise=0.05):
    db = _unit(rng, n, d)
    src = rng.choice(n, nq, replace=False)
    q = db[src] + noise * rng.standard_normal((nq, d)).astype(np.float32) / np.sqrt(d)
    return db, q, src


@pytest.mark.parametrize("backend,opts,bpi", [
    ("faiss-pq", dict(m=8, nbits=8, opq=False), 8.0),
    ("faiss-pq", dict(m=8, nbits=4, opq=True), 4.0),
    ("faiss-ivfpq", dict(m=8, nbits=8, opq=False, nlist=16, nprobe=4), 16.0),
])
def test_compressed_indexes(backend, opts, bpi):
    rng = np.random.default_rng(3)
    db, q, src = _near_duplicates(rng)
    ix = build_index(db, backend=backend, threads=1, seed=0, **opts)
    assert ix.bytes_per_image == bpi
    r = ix.search(q, 10)
    assert r.shape == (10, len(q))
    # every column is a permutation prefix (no duplicates, valid indices)
    assert all(len(set(col)) == 10 for col in r.T) and r.min() >= 0 and r.max() < len(db)
    # a quantiser that works finds the near-duplicate source among its first 10 answers
    assert np.mean(np.any(r == src[None, :], axis=0)) >= 0.9
    # seeded: the same build gives the same ranks
    again = build_index(db, backend=backend, threads=1, seed=0, **opts).search(q, 10)
    np.testing.assert_array_equal(r, again)


def test_numpy_flat_bytes_per_image():
    db = np.zeros((5, 16), np.float32)
    db[:, 0] = 1
    assert build_index(db, "numpy").bytes_per_image == 64.0
    assert build_index(db, "faiss-flat", threads=1).bytes_per_image == 64.0


def test_bad_input():
    rng = np.random.default_rng(4)
    db, q = _unit(rng, 300, 16), _unit(rng, 2, 16)
    with pytest.raises(ValueError, match="unknown search backend 'annoy'"):
        search(q, db, backend="annoy")
    assert set(BACKENDS) == {"numpy", "faiss-flat", "faiss-pq", "faiss-ivfpq"}
    with pytest.raises(ValueError, match="dimension 8 but the database has dimension 16"):
        build_index(db, "faiss-flat", threads=1).search(q[:, :8])
    bad = db.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="dbvecs contains NaN"):
        build_index(bad, "faiss-flat")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        search(q, db, 0, backend="faiss-flat", threads=1)
    with pytest.raises(ValueError, match="m=5 sub-quantisers must divide the dimension D=16"):
        build_index(db, "faiss-pq", m=5, threads=1)
    with pytest.raises(ValueError, match="512 centroids .* only 300 training vectors"):
        build_index(db, "faiss-pq", m=4, nbits=9, threads=1)
    with pytest.raises(ValueError, match="empty"):
        build_index(np.zeros((0, 16), np.float32), "faiss-flat")


def test_opq_needs_as_many_training_vectors_as_dimensions():
    # FAISS's OPQ training corrupts memory below D training vectors: refused with a message
    rng = np.random.default_rng(5)
    db = _unit(rng, 300, 64)
    with pytest.raises(ValueError, match="OPQ rotation of dimension D=64 needs at least 64 training vectors, got 63"):
        build_index(db, "faiss-pq", m=8, nbits=4, opq=True, train=db[:63], threads=1)
    ix = build_index(db, "faiss-pq", m=8, nbits=4, opq=True, train=db[:64], threads=1)
    assert ix.search(db[:3], 5).shape == (5, 3)


@pytest.mark.parametrize("opq", [False, True])
def test_small_training_set_warns_once_in_python(opq, capfd):
    rng = np.random.default_rng(6)
    db = _unit(rng, 300, 32)
    with pytest.warns(SmallTrainingSetWarning, match="256 centroids learned from 300 training vectors") as rec:
        build_index(db, "faiss-pq", m=8, nbits=8, opq=opq, threads=1)
    assert len([w for w in rec if w.category is SmallTrainingSetWarning]) == 1
    assert "WARNING clustering" not in capfd.readouterr().err   # no line per sub-quantiser from FAISS
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallTrainingSetWarning)
        build_index(db, "faiss-pq", m=8, nbits=2, opq=False, threads=1)  # 4 x 39 <= 300: no warning
