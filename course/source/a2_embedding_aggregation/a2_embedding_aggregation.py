# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Assignment 2: PCA + L2, triangulation embedding and democratic aggregation
#
# Paper Sec. 4.1-4.3 (notebooks 03 and 04 of the series). Points: 13 (11 autograded, 2 by hand).
# Local features are ROWS: `X` is `(n, K)`.
#
# **How this assignment is graded.** Write your code in place of `raise NotImplementedError()`.
# The cells after each task test your function; the visible tests are part of the grade, and more
# (hidden) tests with other shapes, ties, zero channels and edge values run when your notebook is
# graded, so test your function beyond the visible cases. You may use numpy, scipy, scikit-learn
# and torch. **At grading time your answer cells run on their own**: in a fresh Python, as another
# user, after the *prelude* cell only (it holds everything your answers may use), without
# selconv_lite, the other provided cells, the files of the course or a network; the tests run in
# the grader's own process and only see the values your functions return. A function that hands
# back the library's answer (or needs anything but the prelude) scores nothing; a function that
# runs far longer than the reference solution is stopped and its test fails. After each task a
# provided cell plugs **your** function into the retrieval pipeline and prints the mAP it gives on
# a few queries of the embedded dataset, so a wrong answer visibly changes retrieval.
# Run the whole notebook (Kernel > Restart & Run All) before you submit.

# %% nbgrader={"grade": false, "grade_id": "prelude", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: everything your answers may use. At grading time your answer cells run after
# this cell only, in a fresh Python without selconv_lite (see "How this assignment is graded").
import numpy as np

# %% nbgrader={"grade": false, "grade_id": "setup_common", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: run this cell first. It is restored as is when your work is graded. The helpers
# of the tests (the grading guard, comparisons, the mAP of the course queries) are in course_tools.py.
import warnings

import numpy as np

from course_tools import call_student, check_close, course_data, reference_unavailable, show_map

warnings.simplefilter("ignore", UserWarning)
DATA, GND, mean_ap = course_data("course_data.npz")


# %% nbgrader={"grade": false, "grade_id": "setup_a2", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: the local features the MAX mask keeps (pool5, 512-D) for every course image.
from sklearn.cluster import KMeans

from selconv_lite.method import aggregation as ref_agg
from selconv_lite.method import embeddings as ref_emb
from selconv_lite.method.postprocess import l2_normalize

OFF_PCA = ("selconv_lite.method.embeddings:PCAL2.fit", "selconv_lite.method.embeddings:PCAL2.transform",
           "selconv_lite.core.utils:l2_normalize")
OFF_TEMB = ("selconv_lite.method.embeddings:triangulation_residuals",
            "selconv_lite.method.embeddings:TriangulationEmbedding.residuals",
            "selconv_lite.method.embeddings:TriangulationEmbedding.transform",
            "selconv_lite.core.utils:l2_normalize")
OFF_DEMOCRATIC = ("selconv_lite.method.aggregation:democratic_weights",
                  "selconv_lite.method.aggregation:democratic_pooling")


def _split(prefix):
    X = DATA[f"{prefix}_local"].astype(np.float32)
    return np.split(X, np.cumsum(DATA[f"{prefix}_counts"])[:-1])


TRAIN, QUERY, DB = _split("train"), _split("query"), _split("db")
print(f"{sum(map(len, TRAIN))} training local features from {len(TRAIN)} images; "
      f"{len(QUERY)} queries, {len(DB)} database images")


def ref_pca_fit(X, d):
    p = ref_emb.PCAL2(d).fit(X)
    return p.mean_, p.components_


def ref_pca_l2(X, mean, components):
    return ref_emb.PCAL2.from_params(mean, components).transform(X)


def _spectrum(rng, n, K):
    """Features with clearly separated variances along random orthogonal directions."""
    Q = np.linalg.qr(rng.standard_normal((K, K)))[0]
    return (rng.standard_normal((n, K)) * np.linspace(3.0, 0.5, K)) @ Q.T + rng.standard_normal(K)


def check_components(mean, comps, X, d, case):
    ref_mean, ref_comps = ref_pca_fit(X, d)
    comps = np.asarray(comps)
    if comps.shape == ref_comps.shape[::-1] and comps.shape[0] != comps.shape[1]:
        raise AssertionError(f"{case}: components must be ROWS, shape (d, K) = {ref_comps.shape}; you return {comps.shape}")
    assert comps.shape == ref_comps.shape, f"{case}: components have shape {comps.shape}, expected {ref_comps.shape}"
    check_close(mean, ref_mean, case, "mean", rtol=1e-5, atol=1e-6)
    gram = comps @ comps.T
    assert np.allclose(gram, np.eye(d), atol=1e-5), f"{case}: your components are not orthonormal rows"
    overlap = np.abs(comps @ ref_comps.T)
    assert np.allclose(overlap, np.eye(d), atol=1e-4), (
        f"{case}: your components are not the top-{d} eigenvectors of the covariance of the CENTRED "
        "features, in order of decreasing eigenvalue (up to sign)")


# %% [markdown]
# ## Task 3.1: PCA to `d` dimensions, then L2 (4 points)
#
# `pca_fit(X, d)` returns the mean `(K,)` of the training features and the top-`d` principal
# directions as ROWS `(d, K)`, by decreasing eigenvalue of the covariance of the centred features
# (the sign of each direction is free). `pca_l2(X, mean, components)` projects the centred
# features and L2-normalises every row; a row that projects to zero must stay zero (no NaN).

# %% nbgrader={"grade": false, "grade_id": "pca_l2", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pca_fit(X, d):
    """Mean (K,) and top-d principal directions (d, K) of the rows of X."""
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    Xc = X - mean
    _, V = np.linalg.eigh(Xc.T @ Xc / len(X))
    return mean, V[:, ::-1][:, :d].T
    ### END SOLUTION


def pca_l2(X, mean, components):
    """L2-normalised PCA projections (n, d) of the rows of X."""
    ### BEGIN SOLUTION
    Y = (np.asarray(X, dtype=np.float64) - mean) @ np.asarray(components).T
    norms = np.linalg.norm(Y, axis=1, keepdims=True)
    return Y / np.where(norms == 0, 1, norms)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_pca_fit", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
_rng = np.random.default_rng(31)
_X = _spectrum(_rng, 300, 12)
_mean, _comps = call_student(pca_fit, _X.copy(), 4, off=OFF_PCA, case="300 features of dimension 12, d=4")
check_components(_mean, _comps, _X, 4, "300 features of dimension 12, d=4")
### BEGIN HIDDEN TESTS
_X = _spectrum(_rng, 50, 20) + 10.0  # far from the origin: centring matters
_mean, _comps = call_student(pca_fit, _X.copy(), 8, off=OFF_PCA, case="features far from the origin, d=8")
check_components(_mean, _comps, _X, 8, "features far from the origin, d=8")
_X = _spectrum(_rng, 40, 6).astype(np.float32)
_mean, _comps = call_student(pca_fit, _X.copy(), 6, off=OFF_PCA, case="float32 features, d=K=6")
check_components(_mean, _comps, _X, 6, "float32 features, d=K=6")
### END HIDDEN TESTS
print("pca_fit: tests passed")

# %% nbgrader={"grade": true, "grade_id": "test_pca_l2", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
_rng = np.random.default_rng(32)
_X = _spectrum(_rng, 30, 10)
_m, _c = ref_pca_fit(_X, 5)
_Xq = _X[:6].copy()
_Xq[2] = _m  # a feature equal to the mean projects to zero
check_close(call_student(pca_l2, _Xq.copy(), _m, _c, off=OFF_PCA, case="6 features, one equal to the mean"),
            ref_pca_l2(_Xq, _m, _c), "6 features, one equal to the mean", "projection")
### BEGIN HIDDEN TESTS
_X = _spectrum(_rng, 200, 16).astype(np.float32)
_m, _c = ref_pca_fit(_X, 3)
check_close(call_student(pca_l2, _X.copy(), _m, _c, off=OFF_PCA, case="200 float32 features, d=3"),
            ref_pca_l2(_X, _m, _c), "200 float32 features, d=3", "projection", rtol=1e-4, atol=1e-6)
_one = _X[:1].copy()
check_close(call_student(pca_l2, _one, _m, _c, off=OFF_PCA, case="a single feature"),
            ref_pca_l2(_one, _m, _c), "a single feature", "projection", rtol=1e-4, atol=1e-6)
_m1, _c1 = ref_pca_fit(_X, 1)
check_close(call_student(pca_l2, _X[:5].copy(), _m1, _c1, off=OFF_PCA, case="d=1"),
            ref_pca_l2(_X[:5], _m1, _c1), "d=1", "projection", rtol=1e-4, atol=1e-6)
### END HIDDEN TESTS
print("pca_l2: tests passed")


# %% [markdown]
# ## Task 3.2: triangulation embedding, Eq. 6 (3 points)
#
# For every feature `x` (row of `X`, `(n, d)`) and centroid `c_j` (row of `C`, `(k, d)`), the
# block `(x - c_j) / ||x - c_j||`. Row `i` of the result is the concatenation of the `k` blocks in
# centroid order: `(n, k*d)`. A feature equal to a centroid gives a zero block (no NaN). The
# centring and whitening that follow are provided below.

# %% nbgrader={"grade": false, "grade_id": "temb_residuals", "locked": false, "schema_version": 3, "solution": true, "task": false}
def temb_residuals(X, C):
    """Normalised residuals (n, k*d): block j of row i is (x_i - c_j) / ||x_i - c_j||."""
    ### BEGIN SOLUTION
    R = np.asarray(X, dtype=np.float64)[:, None, :] - np.asarray(C, dtype=np.float64)[None, :, :]
    norms = np.linalg.norm(R, axis=2, keepdims=True)
    return (R / np.where(norms == 0, 1, norms)).reshape(len(X), -1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_temb_residuals", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
def _check_temb(X, C, case):
    got = np.asarray(call_student(temb_residuals, X.copy(), C.copy(), off=OFF_TEMB, case=case))
    want = ref_emb.triangulation_residuals(np.asarray(X, np.float64), C)
    n, k, d = len(X), len(C), X.shape[1]
    if got.shape == want.shape and np.all(np.isfinite(got)) and not np.allclose(got, want, atol=1e-6):
        if np.allclose(got, want.reshape(n, k, d).transpose(0, 2, 1).reshape(n, -1), atol=1e-6):
            raise AssertionError(f"{case}: your values are right but interleaved: row i must be the k blocks "
                                 "[r_i1 (d values), r_i2 (d values), ...] one centroid after the other")
        norms = np.linalg.norm(got.reshape(n, k, d), axis=2)
        if not np.allclose(norms[norms > 0], 1, atol=1e-6):
            raise AssertionError(f"{case}: each block (x - c_j) must be divided by its own norm ||x - c_j||")
    check_close(got, want, case, "embedding", rtol=1e-6, atol=1e-8)


_rng = np.random.default_rng(33)
_check_temb(_rng.standard_normal((5, 4)), _rng.standard_normal((3, 4)), "5 features, d=4, 3 centroids")
### BEGIN HIDDEN TESTS
_C = _rng.standard_normal((4, 6))
_X = _rng.standard_normal((7, 6))
_X[3] = _C[2]
_check_temb(_X, _C, "a feature equal to a centroid")
_check_temb(_rng.standard_normal((1, 8)), _rng.standard_normal((5, 8)), "a single feature")
_check_temb(_rng.standard_normal((9, 1)), _rng.standard_normal((2, 1)), "d=1")
_check_temb(_rng.standard_normal((60, 32)).astype(np.float32), _rng.standard_normal((8, 32)), "60 float32 features")
### END HIDDEN TESTS
print("temb_residuals: tests passed")


# %% [markdown]
# ## Task 4: democratic aggregation weights (4 points)
#
# As the authors' `sinkhornm.m` (Sec. 4.3, ref. [21]), for the L2-normalised embedded features
# `E` `(n, D)`: Gram matrix `G = E E^T` with negative entries **clipped to 0**; weights
# `lambda = 1`; then `n_iter = 10` times: `delta = 1 / sqrt(column sums of G)`,
# `G <- diag(delta) G diag(delta)`, `lambda <- lambda * delta`. A zero feature (a zero column of
# `G`) gets weight 0, never NaN. Return `lambda` `(n,)`; the aggregated vector is `lambda @ E`.

# %% nbgrader={"grade": false, "grade_id": "democratic_weights", "locked": false, "schema_version": 3, "solution": true, "task": false}
def democratic_weights(E, n_iter=10):
    """Democratic weights (n,) of the rows of E (Sinkhorn, exponent 0.5, Gram clipped at 0)."""
    ### BEGIN SOLUTION
    E = np.asarray(E, dtype=np.float64)
    G = np.maximum(E @ E.T, 0)
    lam = np.ones(len(E))
    for _ in range(n_iter):
        s = G.sum(axis=0)
        delta = np.where(s > 0, 1 / np.sqrt(np.where(s > 0, s, 1)), 0.0)
        G = G * delta[None, :] * delta[:, None]
        lam = lam * delta
    return lam
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_democratic_weights", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
def _unit_rows(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def _check_dem(E, case, n_iter=None):
    args = (E.copy(),) if n_iter is None else (E.copy(), n_iter)
    got = np.asarray(call_student(democratic_weights, *args, off=OFF_DEMOCRATIC, case=case), dtype=np.float64)
    want = ref_agg.democratic_weights(E, n_iter=10 if n_iter is None else n_iter)
    if (got.shape == want.shape and np.all(np.isfinite(got)) and not np.allclose(got, want, rtol=1e-6)
            and (E @ E.T < 0).any()):
        pos = np.abs(E)  # the same features without negative inner products
        got_pos = call_student(democratic_weights, *((pos,) + args[1:]), off=OFF_DEMOCRATIC, case=case)
        if np.allclose(got_pos, ref_agg.democratic_weights(pos, n_iter=n_iter or 10), rtol=1e-6):
            raise AssertionError(f"{case}: your weights are right when every inner product is >= 0 but not here, "
                                 "where E E^T has negative entries: the authors clip them to 0 before the "
                                 "Sinkhorn iterations (G = max(E E^T, 0))")
    check_close(got, want, case, "weights", rtol=1e-6, atol=1e-12)


_rng = np.random.default_rng(34)
_check_dem(_unit_rows(np.abs(_rng.standard_normal((6, 8)))), "6 non-negative features (no clipping needed)")
_check_dem(_unit_rows(_rng.standard_normal((8, 5))), "8 features with negative inner products")
### BEGIN HIDDEN TESTS
_E = _unit_rows(_rng.standard_normal((40, 16)))
_E[:12] = _unit_rows(_E[0] + 0.05 * _rng.standard_normal((12, 16)))  # a burst of near-duplicates
_check_dem(_E, "a burst of 12 near-duplicates")
_E = _unit_rows(_rng.standard_normal((10, 6)))
_E[4] = 0.0
_check_dem(_E, "a zero feature")
_check_dem(_unit_rows(_rng.standard_normal((1, 4))), "a single feature")
_check_dem(_unit_rows(_rng.standard_normal((12, 7))), "n_iter=3", n_iter=3)
### END HIDDEN TESTS
print("democratic_weights: tests passed")


# %% [markdown]
# ## Retrieval with your functions
#
# The provided cell runs the paper's encoding (Sec. 4) on the course images: first with the
# package's functions, then with yours, then with sum pooling instead of democratic pooling.

# %% nbgrader={"grade": false, "grade_id": "demo_embedding", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: the paper's encoding with the functions you pass in. MAX-masked pool5 features ->
# PCA to d + L2 -> T-emb (k-means codebook; centring and whitening with the 33 smallest
# eigenvalues clamped, learned on the training images) -> democratic pooling -> L2 -> mAP.
def map_with(fit, project, residuals, weights, d=32, k=8):
    Xtr = np.concatenate(TRAIN)
    mean, comps = fit(Xtr, d)
    Ptr = project(Xtr, mean, comps)
    C = KMeans(k, n_init=1, random_state=0).fit(Ptr).cluster_centers_
    R = residuals(Ptr, C)
    mu = R.mean(axis=0)
    ev, V = np.linalg.eigh((R - mu).T @ (R - mu))
    W = V / np.sqrt(np.maximum(ev, ev[32]))

    def encode(images):
        out = []
        for X in images:
            E = l2_normalize((residuals(project(X, mean, comps), C) - mu) @ W)
            out.append(weights(E) @ E)
        return l2_normalize(np.stack(out))

    return mean_ap(encode(QUERY), encode(DB))


def sum_weights(E):
    return np.ones(len(E))

show_map("package PCA, T-emb and democratic", lambda: map_with(
    ref_pca_fit, ref_pca_l2, ref_emb.triangulation_residuals, ref_agg.democratic_weights))
show_map("your PCA, T-emb and democratic", lambda: map_with(pca_fit, pca_l2, temb_residuals, democratic_weights))
show_map("your PCA and T-emb, sum pooling", lambda: map_with(pca_fit, pca_l2, temb_residuals, sum_weights))

# %% [markdown] nbgrader={"grade": false, "grade_id": "question_democratic", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Question (2 points, graded by hand)
#
# Compare the last two lines above. What does democratic aggregation equalise, and why does that
# matter for features such as repeated windows or sky (burstiness)? What would go wrong with the
# Sinkhorn iterations if the negative Gram entries were not clipped to 0?
#
# <!-- ### BEGIN HIDDEN TESTS: for the grader only, not in the release nor in the feedback -->
# **For the grader.**
#
# *Model answer.* Democratic aggregation chooses weights so that every local feature contributes
# the same amount to the similarity of the aggregated vector with itself
# (lambda_i phi_i . sum_j lambda_j phi_j is constant). With sum pooling, a burst of near-identical
# features (windows, sky, texture) adds up and dominates the vector, so images match on their
# repetitive background; the democratic weights shrink the burst. Sinkhorn scaling needs a
# non-negative matrix: with negative entries a column sum can be zero or negative, the square root
# is undefined (NaN) or the weights blow up, and the iteration need not converge; clipping keeps
# only the positive interactions.
#
# **Rubric (2 points).** 1 point: equal contribution of each feature / down-weights bursts, tied to
# the numbers above. 1 point: Sinkhorn needs non-negative entries (zero or negative sums, NaN,
# no convergence). 0 points for restating the algorithm.
# <!-- ### END HIDDEN TESTS -->

# %% [markdown] nbgrader={"grade": true, "grade_id": "think_democratic", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# *Model answer and Rubric*: in the question cell above, in its part for the grader (the
# formgrader shows it next to each student's answer).
# ### END SOLUTION
