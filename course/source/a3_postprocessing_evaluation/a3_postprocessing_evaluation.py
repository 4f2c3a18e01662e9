# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Assignment 3: post-processing, evaluation and the contrastive loss
#
# Paper Sec. 4.4, 5.1 and 5.3 (notebooks 05, 06 and 07 of the series). Points: 15 (13 autograded,
# 2 by hand). Image vectors are ROWS: `V` is `(n, D)`.
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
import torch

# %% nbgrader={"grade": false, "grade_id": "setup_common", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: run this cell first. It is restored as is when your work is graded. The helpers
# of the tests (the grading guard, comparisons, the mAP of the course queries) are in course_tools.py.
import warnings

import numpy as np

from course_tools import call_student, check_close, course_data, reference_unavailable, show_map

warnings.simplefilter("ignore", UserWarning)
DATA, GND, mean_ap = course_data("course_data.npz")


# %% nbgrader={"grade": false, "grade_id": "setup_a3", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: aggregated T-emb vectors (MAX mask, d=32, 8 centroids, democratic pooling, L2)
# of the course images, before the post-processing of Sec. 4.4.
import torch

from selconv_lite.data import evaluation as ref_eval
from selconv_lite.experiments import finetune as ref_finetune
from selconv_lite.method import postprocess as ref_post

TRAIN_V, QUERY_V, DB_V = (DATA[f"{p}_vectors"].astype(np.float64) for p in ("train", "query", "db"))
TRAIN_LABELS = DATA["train_labels"]
print(f"vectors of dimension {TRAIN_V.shape[1]}: {len(TRAIN_V)} training, {len(QUERY_V)} query, {len(DB_V)} database")

OFF_POWER = ("selconv_lite.method.postprocess:power_law",)
OFF_POST = ("selconv_lite.method.postprocess:power_law", "selconv_lite.method.postprocess:l2_normalize",
            "selconv_lite.method.postprocess:truncate", "selconv_lite.core.utils:l2_normalize",
            "selconv_lite.method.postprocess:RotationNormalization.fit",
            "selconv_lite.method.postprocess:RotationNormalization.transform")
OFF_AP = tuple(f"selconv_lite.data.evaluation:{f}" for f in
               ("compute_map", "compute_ap", "_adjusted_positions", "compute_map_and_precision", "evaluate"))
OFF_LOSS = ("selconv_lite.experiments.finetune:contrastive_loss",)


def ref_learn_rotation(V):
    rn = ref_post.RotationNormalization().fit(V)
    return rn.mean_, rn.rotation_


def ref_postprocess(V, mean, P, n_truncate, alpha=0.5):
    return ref_post.l2_normalize(ref_post.power_law(((V - mean) @ P)[:, n_truncate:], alpha))


def ref_ap(ranked, ok, junk):
    gnd = [{"ok": np.asarray(ok, int), "junk": np.asarray(junk, int)}]
    n_database = int(max([len(ranked) - 1, *np.ravel(ranked), *gnd[0]["ok"], *gnd[0]["junk"]])) + 1
    try:  # a truncated ranking: the database is larger than the list
        return ref_eval.compute_map(np.asarray(ranked)[:, None], gnd, n_database=n_database)[0]
    except TypeError:
        return ref_eval.compute_map(np.asarray(ranked)[:, None], gnd)[0]


# %% [markdown]
# ## Task 5.1: power-law normalisation (2 points)
#
# `PN(x) = sign(x) |x|^alpha` element-wise (Sec. 4.4). `alpha = 0` gives `sign(x)` with `0 -> 0`;
# negative entries keep their sign.

# %% nbgrader={"grade": false, "grade_id": "power_law", "locked": false, "schema_version": 3, "solution": true, "task": false}
def power_law(x, alpha=0.5):
    """sign(x) * |x| ** alpha, element-wise."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.abs(x) ** alpha
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_power_law", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
def _check_pw(x, alpha, case):
    got = np.asarray(call_student(power_law, x.copy(), alpha, off=OFF_POWER, case=case), dtype=np.float64)
    want = ref_post.power_law(x, alpha)
    if got.shape == want.shape and np.all(np.isfinite(got)) and np.allclose(got, np.abs(want)) and (x < 0).any():
        raise AssertionError(f"{case}: negative entries must stay negative: sign(x) * |x|^alpha")
    check_close(got, want, case, "vector")


_rng = np.random.default_rng(51)
_x = _rng.standard_normal((3, 7))
_x[0, :2] = 0.0
_check_pw(_x, 0.5, "alpha=0.5, with zeros and negative entries")
### BEGIN HIDDEN TESTS
_check_pw(_x, 0.0, "alpha=0 (sign, 0 -> 0)")
_check_pw(_x, 1.0, "alpha=1")
_check_pw(_x[1], 0.2, "a 1-D vector, alpha=0.2")
_check_pw(np.zeros((2, 4)), 0.5, "all zeros")
### END HIDDEN TESTS
print("power_law: tests passed")


# %% [markdown]
# ## Task 5.2: rotation normalisation and truncation (5 points)
#
# `learn_rotation(V)` learns, on the held-out training vectors `V` `(n, D)`, their mean `(D,)`
# and an orthogonal `(D, D)` matrix `P` whose first columns are the principal directions of the
# centred vectors by decreasing eigenvalue (signs are free; the columns beyond the rank of the
# data complete `P` to a rotation). `postprocess(V, mean, P, n_truncate, alpha)` then computes,
# for every row, `P^T (v - mean)`, drops the FIRST `n_truncate` components, applies the
# power law, and L2-normalises (a zero row stays zero).

# %% nbgrader={"grade": false, "grade_id": "rotation", "locked": false, "schema_version": 3, "solution": true, "task": false}
def learn_rotation(V):
    """Mean (D,) and rotation P (D, D) of the training vectors V (n, D)."""
    ### BEGIN SOLUTION
    V = np.asarray(V, dtype=np.float64)
    mean = V.mean(axis=0)
    Vc = V - mean
    _, U = np.linalg.eigh(Vc.T @ Vc / len(V))
    return mean, U[:, ::-1]
    ### END SOLUTION


def postprocess(V, mean, P, n_truncate, alpha=0.5):
    """Rotate, truncate, power-law and L2-normalise the rows of V -> (n, D - n_truncate)."""
    ### BEGIN SOLUTION
    Y = ((np.asarray(V, dtype=np.float64) - mean) @ P)[:, n_truncate:]
    Y = np.sign(Y) * np.abs(Y) ** alpha
    norms = np.linalg.norm(Y, axis=1, keepdims=True)
    return Y / np.where(norms == 0, 1, norms)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_learn_rotation", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
def _check_rot(V, case):
    mean, P = call_student(learn_rotation, V.copy(), off=OFF_POST, case=case)
    P = np.asarray(P, dtype=np.float64)
    ref_mean, _ = ref_learn_rotation(V)
    D = V.shape[1]
    check_close(mean, ref_mean, case, "mean", rtol=1e-6, atol=1e-9)
    assert P.shape == (D, D), f"{case}: P must be (D, D) = {(D, D)}, got {P.shape}"
    assert np.allclose(P.T @ P, np.eye(D), atol=1e-6), f"{case}: P is not orthogonal (P^T P != I)"
    rn = ref_post.RotationNormalization().fit(V)
    r = rn.eigvec_.shape[1] - 1  # leave out the smallest kept eigenvalue (possibly tied with the null space)
    overlap = np.abs(np.sum(P[:, :r] * rn.eigvec_[:, :r], axis=0))
    assert np.allclose(overlap, 1, atol=1e-5), (
        f"{case}: the first columns of P must be the principal directions of the centred vectors, by "
        "decreasing eigenvalue (up to sign)")


_rng = np.random.default_rng(52)
_check_rot(_rng.standard_normal((100, 12)) * np.linspace(2, 0.5, 12), "100 vectors of dimension 12")
### BEGIN HIDDEN TESTS
_check_rot(_rng.standard_normal((25, 40)) * np.linspace(2, 0.5, 40) + 3.0, "25 vectors of dimension 40 (n < D)")
_check_rot(TRAIN_V, "the course training vectors")
### END HIDDEN TESTS
print("learn_rotation: tests passed")


# %% nbgrader={"grade": true, "grade_id": "test_postprocess", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
def _check_post(V, t, alpha, case):
    mean, P = ref_learn_rotation(TRAIN_V)
    got = np.asarray(call_student(postprocess, V.copy(), mean, P, t, alpha, off=OFF_POST, case=case))
    want = ref_postprocess(V, mean, P, t, alpha)
    if got.shape == want.shape and np.all(np.isfinite(got)) and t > 0:
        drop_last = ref_post.l2_normalize(ref_post.power_law(((V - mean) @ P)[:, :P.shape[1] - t], alpha))
        assert not np.allclose(got, drop_last), f"{case}: drop the FIRST n_truncate components, not the last"
    check_close(got, want, case, "vectors", rtol=1e-6, atol=1e-9)


_check_post(QUERY_V, 16, 0.5, "course queries, truncate 16, alpha 0.5")
### BEGIN HIDDEN TESTS
_check_post(DB_V[:5], 0, 0.5, "no truncation")
_check_post(DB_V, 64, 0.2, "truncate 64, alpha 0.2")
_check_post(DB_V[:3], 8, 1.0, "alpha 1")
_V = DB_V[:4].copy()
_V[1] = TRAIN_V.mean(axis=0)  # rotates to zero: must stay zero
_check_post(_V, 4, 0.5, "a vector equal to the training mean")
### END HIDDEN TESTS
print("postprocess: tests passed")


# %% [markdown]
# ## Retrieval with your post-processing
#
# The training vectors are fewer than their dimension (the counts are printed above), so only the
# first `n - 1` directions of `P` are learned; the remaining columns are an arbitrary orthogonal
# completion, and they survive the truncation. So that a correct `learn_rotation` gives exactly
# the package's mAP, the provided cell keeps the learned columns of your `P` and completes them as
# the package does (the QR factor of `[eigvec, I]`, as the authors' `learn_rn.m`); the signs of
# the columns are free and change no mAP.

# %% nbgrader={"grade": false, "grade_id": "demo_postprocess", "locked": true, "schema_version": 3, "solution": false, "task": false}
from selconv_lite.method.linalg import complete_rotation

N_LEARNED = ref_post.RotationNormalization().fit(TRAIN_V).eigvec_.shape[1]  # directions the data determine
print(f"{len(TRAIN_V)} training vectors of dimension {TRAIN_V.shape[1]}: {N_LEARNED} directions learned")


def map_post(learn, post, n_truncate, alpha=0.5):
    mean, P = learn(TRAIN_V)
    P = complete_rotation(np.asarray(P, dtype=np.float64)[:, :N_LEARNED], TRAIN_V.shape[1])
    return mean_ap(post(QUERY_V, mean, P, n_truncate, alpha), post(DB_V, mean, P, n_truncate, alpha))


show_map("aggregated vectors, no post-processing", lambda: mean_ap(QUERY_V, DB_V))
for _t in (0, 16, 64):
    show_map(f"package post-processing, truncate {_t}", lambda: map_post(ref_learn_rotation, ref_postprocess, _t))
    show_map(f"your post-processing, truncate {_t}", lambda: map_post(learn_rotation, postprocess, _t))


# %% [markdown]
# ## Task 6: average precision as `compute_map.m` (3 points)
#
# `ranked` lists database indices, most similar first (it may be truncated); `ok` are the
# positives, `junk` images that are ignored. As the authors' code:
#
# 1. the 0-based positions of the positives in `ranked`, each lowered by the number of junk
#    images ranked before it (junk is removed from the list);
# 2. for the `k`-th positive found (`k = 1, 2, ...`) at adjusted position `r_k`: the precision
#    just before it, `(k - 1) / r_k` (1 if `r_k = 0`), and just after it, `k / (r_k + 1)`;
# 3. `AP = sum_k (before_k + after_k) / (2 * len(ok))`: positives never retrieved add nothing but
#    still count in `len(ok)`; a query without positives has AP 0.

# %% nbgrader={"grade": false, "grade_id": "average_precision", "locked": false, "schema_version": 3, "solution": true, "task": false}
def average_precision(ranked, ok, junk):
    """AP of one query, as the authors' compute_map.m (trapezoid rule, junk removed)."""
    ### BEGIN SOLUTION
    ranked, ok, junk = np.asarray(ranked), np.asarray(ok), np.asarray(junk)
    if ok.size == 0:
        return 0.0
    pos = np.flatnonzero(np.isin(ranked, ok))
    jpos = np.flatnonzero(np.isin(ranked, junk))
    pos = pos - np.searchsorted(jpos, pos)
    ap = 0.0
    for k, r in enumerate(pos):  # k positives found before this one
        before = 1.0 if r == 0 else k / r
        after = (k + 1) / (r + 1)
        ap += (before + after) / (2 * ok.size)
    return float(ap)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_average_precision", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
def _check_ap(ranked, ok, junk, case):
    ranked, ok, junk = np.asarray(ranked), np.asarray(ok, int), np.asarray(junk, int)
    got = call_student(average_precision, ranked.copy(), ok.copy(), junk.copy(), off=OFF_AP, case=case)
    got = float(got)
    want = ref_ap(ranked, ok, junk)
    if abs(got - want) > 1e-9 and len(junk) and abs(got - ref_ap(ranked, ok, [])) < 1e-9:
        raise AssertionError(f"{case}: you count junk images as negatives; remove them from the ranking "
                             "(lower each positive's position by the junk ranked before it)")
    assert abs(got - want) <= 1e-9, f"{case}: AP {got:.6f}, expected {want:.6f}"


_check_ap(np.arange(10), [0, 1, 2], [], "perfect ranking")
_check_ap([5, 3, 7, 1, 0, 2, 4, 6], [7, 4], [3], "a junk image before a positive")
### BEGIN HIDDEN TESTS
_check_ap(np.arange(10), [8, 9], [], "positives last")
_check_ap([4, 0, 1, 2, 3, 5], [0, 1], [4], "junk ranked first")
_check_ap(np.arange(6), [1, 3, 14], [13], "a truncated ranking (a positive never retrieved)")
_check_ap(np.arange(5), [], [], "no positive")
_check_ap([2, 9, 4, 7, 1, 0, 3, 8, 6, 5], [9, 1, 5], [4, 7, 3], "junk interleaved with positives")
_rng = np.random.default_rng(6)
for _t in range(4):
    _perm = _rng.permutation(40)
    _check_ap(_rng.permutation(40), _perm[:5], _perm[10:13], f"random ranking {_t}")
### END HIDDEN TESTS
print("average_precision: tests passed")


# %% nbgrader={"grade": false, "grade_id": "demo_ap", "locked": true, "schema_version": 3, "solution": false, "task": false}
def map_with_ap(ap, qvecs, dbvecs):
    ranks = ref_eval.rank_by_inner_product(qvecs, dbvecs)
    return float(np.mean([ap(ranks[:, i], g["ok"], g["junk"]) for i, g in enumerate(GND)]))


_mean, _P = ref_learn_rotation(TRAIN_V)
_q, _db = ref_postprocess(QUERY_V, _mean, _P, 16), ref_postprocess(DB_V, _mean, _P, 16)
show_map("package compute_map (final vectors)", lambda: mean_ap(_q, _db))
show_map("your average_precision (final vectors)", lambda: map_with_ap(average_precision, _q, _db))


# %% [markdown]
# ## Task 7: the contrastive loss (3 points)
#
# For descriptor pairs (rows of the torch tensors `a`, `b`, `(n, D)`) with labels `y` (1 =
# matching, 0 = non-matching), `d = ||a - b||` and the mean over the pairs of
# `0.5 * y * d^2 + 0.5 * (1 - y) * max(0, margin - d)^2` (Sec. 5.3, the siaMAC training of
# Radenovic et al.). Return a 0-dimensional torch tensor that autograd can differentiate.

# %% nbgrader={"grade": false, "grade_id": "contrastive_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def contrastive_loss(a, b, y, margin=0.7):
    """Mean contrastive loss of the pairs (a_i, b_i) with labels y_i (torch tensors)."""
    ### BEGIN SOLUTION
    d = torch.sqrt(((a - b) ** 2).sum(dim=1))
    y = y.to(d.dtype)
    return (0.5 * y * d ** 2 + 0.5 * (1 - y) * torch.clamp(margin - d, min=0) ** 2).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_contrastive_loss", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
def _check_loss(a, b, y, margin, case):
    ta = torch.tensor(a, requires_grad=True)
    got, grads = call_student(contrastive_loss, ta, torch.tensor(b), torch.tensor(y), margin, off=OFF_LOSS,
                              case=case, backward=True)
    assert isinstance(got, torch.Tensor) and got.dim() == 0, (
        f"{case}: return a 0-dimensional torch tensor (the mean over the pairs), got {type(got).__name__} "
        f"{tuple(getattr(got, 'shape', ()))}")
    ra = torch.tensor(a, requires_grad=True)
    want = ref_finetune.contrastive_loss(ra, torch.tensor(b), torch.tensor(y), margin)
    d = np.linalg.norm(a - b, axis=1)
    hints = {"the loss uses d^2 for matching pairs and max(0, margin - d)^2 for non-matching ones, not d":
             np.mean(0.5 * y * d + 0.5 * (1 - y) * np.maximum(0, margin - d)),
             "take the MEAN over the pairs, not the sum":
             np.sum(0.5 * y * d ** 2 + 0.5 * (1 - y) * np.maximum(0, margin - d) ** 2),
             "non-matching pairs farther than the margin must cost 0: max(0, margin - d)":
             np.mean(0.5 * y * d ** 2 + 0.5 * (1 - y) * (margin - d) ** 2)}
    value = float(got.detach())
    if abs(value - float(want)) > 1e-6:
        for hint, wrong in hints.items():
            if abs(value - wrong) < 1e-6 and abs(wrong - float(want)) > 1e-6:
                raise AssertionError(f"{case}: loss {value:.6f}, expected {float(want):.6f}: {hint}")
        raise AssertionError(f"{case}: loss {value:.6f}, expected {float(want):.6f}")
    assert grads, f"{case}: your loss is detached from the graph (keep torch operations)"
    want.backward()
    check_close(np.asarray(grads[0]), ra.grad.numpy(), case, "gradient", rtol=1e-5, atol=1e-8)


_rng = np.random.default_rng(7)
_a, _b = _rng.standard_normal((6, 8)), _rng.standard_normal((6, 8))
_a /= np.linalg.norm(_a, axis=1, keepdims=True)
_b /= np.linalg.norm(_b, axis=1, keepdims=True)
_check_loss(_a, _b, np.array([1, 0, 1, 0, 1, 0.0]), 0.7, "6 pairs, margin 0.7")
### BEGIN HIDDEN TESTS
_check_loss(_a, _b, np.array([0, 0, 0, 0, 0, 0.0]), 0.3, "non-matching pairs beyond the margin")
_check_loss(_a, _b, np.array([1, 1, 1, 1, 1, 1.0]), 0.7, "only matching pairs")
_check_loss(_a[:1], _b[:1], np.array([0.0]), 2.0, "one pair, margin 2")
_c = _rng.standard_normal((10, 32))
_check_loss(_c, _c + 0.1 * _rng.standard_normal((10, 32)), (np.arange(10) % 3 == 0).astype(float), 1.0,
            "10 pairs of dimension 32")
### END HIDDEN TESTS
print("contrastive_loss: tests passed")


# %% [markdown]
# ## Training with your loss
#
# The provided cell learns a linear projection `W` (240 -> 128) of the post-processed vectors on
# the training images with your loss (two images of the same training object are a matching pair,
# any other pair a non-matching one; 50 full-batch Adam steps) and prints the mAP of the
# projected course vectors before and after training. The training images show 6 objects, none
# of them the course's (held-out learning, as Paris6k for Oxford5k): with so few of them, do not
# expect the training to raise the course mAP.

# %% nbgrader={"grade": false, "grade_id": "demo_finetune", "locked": true, "schema_version": 3, "solution": false, "task": false}
def map_after_training(loss_fn, dim=128, steps=50, margin=0.7, lr=1e-3):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    mean, P = ref_learn_rotation(TRAIN_V)
    X = torch.tensor(ref_postprocess(TRAIN_V, mean, P, 16))
    q, db = (torch.tensor(ref_postprocess(V, mean, P, 16)) for V in (QUERY_V, DB_V))
    # pairs: two images of the same training object match; any other pair (different objects,
    # or a scene-only image, label -1) does not
    i, j = np.triu_indices(len(X), k=1)
    same = (TRAIN_LABELS[i] == TRAIN_LABELS[j]) & (TRAIN_LABELS[i] >= 0)
    y = torch.tensor(same.astype(np.float64))
    W = torch.eye(X.shape[1], dim, dtype=torch.float64).requires_grad_(True)
    opt = torch.optim.Adam([W], lr=lr)

    def project(Z):
        return torch.nn.functional.normalize(Z @ W, dim=1)

    for _ in range(steps):
        opt.zero_grad()
        Z = project(X)
        loss = loss_fn(Z[i], Z[j], y, margin)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return mean_ap(project(q).numpy(), project(db).numpy())


show_map("projection before training", lambda: map_after_training(ref_finetune.contrastive_loss, steps=0))
show_map("trained with the package's loss", lambda: map_after_training(ref_finetune.contrastive_loss))
show_map("trained with your loss", lambda: map_after_training(contrastive_loss))

# %% [markdown] nbgrader={"grade": false, "grade_id": "question_postprocess", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Question (2 points, graded by hand)
#
# Why is the rotation learned on a held-out set of images rather than on the database that is
# searched, and why does dropping the first components (truncation) help (Sec. 4.4 and 5.2.1)?
#
# <!-- ### BEGIN HIDDEN TESTS: for the grader only, not in the release nor in the feedback -->
# **For the grader.**
#
# *Model answer.* Everything learned (PCA, codebook, whitening, rotation) must come from images
# other than the test set, otherwise the evaluation is optimistic (it tunes on the test data) and
# does not describe a system that must index images it has never seen; the paper uses Paris6k for
# Oxford5k and vice versa. After the rotation the first components carry the largest variance of
# the training vectors: directions shared by many images (co-occurrences, common background,
# the embedding's mean structure), which add similarity between unrelated images; dropping them
# (128 for T-emb) removes this bias, and the power law then reduces the remaining burstiness.
#
# **Rubric (2 points).** 1 point: held-out learning avoids fitting to the test set / reflects
# unseen data. 1 point: the first components are dominated by variance common to all images
# (co-occurrence/background) and hurt discrimination. 0 points for a restatement of the steps.
# <!-- ### END HIDDEN TESTS -->

# %% [markdown] nbgrader={"grade": true, "grade_id": "think_postprocess", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# *Model answer and Rubric*: in the question cell above, in its part for the grader (the
# formgrader shows it next to each student's answer).
# ### END SOLUTION
