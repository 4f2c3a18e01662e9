"""Checkers for the exercises of notebooks 06 (full evaluation) and 07 (fine-tuned backbones).

Same contract as :mod:`selconv_lite.teaching.checkers`: call a checker with *your* function; it runs it and
the reference on fixed, seeded inputs and prints PASS / FAIL with what differs; it returns a
:class:`~selconv_lite.teaching.checkers.CheckResult` (truthy on success).

==========================================  =================================================  ============
checker                                     your function                                      paper
==========================================  =================================================  ============
:func:`check_average_precision`             ``f(ranked (nb,), ok, junk) -> AP``                Sec. 5.1
:func:`check_query_expansion`               ``f(qvecs (nq, D), dbvecs (nb, D), k) -> (nq, D)``  Table 6 (+QE)
:func:`check_best_per_column`               ``f(table (r, c)) -> bool (r, c)``                 Table 3
:func:`check_gem`                           ``f(fmap (H, W, K), p) -> (K,)``                   Sec. 5.3 / Table 6
:func:`check_contrastive_loss`              ``f(a (n, D), b (n, D), y (n,), margin) -> float``  Sec. 5.3 (siaMAC)
==========================================  =================================================  ============
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..experiments.full_eval import best_per_column
from .checkers import CheckFailure, CheckResult, call_student, compare_output, relu_map, run_cases

__all__ = [
    "check_average_precision",
    "check_query_expansion",
    "check_best_per_column",
    "check_gem",
    "check_contrastive_loss",
]


# --------------------------------------------------------------------------------------------
# notebook 06: evaluation
# --------------------------------------------------------------------------------------------
def _ap_reference(ranked, ok, junk) -> float:
    from ..data.evaluation import compute_map

    m, _ = compute_map(np.asarray(ranked)[:, None], [{"ok": np.asarray(ok), "junk": np.asarray(junk)}])
    return m


def check_average_precision(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(ranked, ok, junk) -> float``: the average precision of one query (Sec. 5.1).

    ``ranked`` lists database indices (0-based), most similar first; ``ok`` are the positives,
    ``junk`` the images removed from the ranking. AP as the authors' ``compute_map.m``: junk
    removed, trapezoidal rule over the recall steps, positives never retrieved count as missed.
    """

    def cases():
        rng = np.random.default_rng(6)
        fixed = [
            ("perfect ranking", np.arange(10), np.array([0, 1, 2]), np.array([], int)),
            ("positives last", np.arange(10), np.array([8, 9]), np.array([], int)),
            ("junk before a positive", np.array([5, 3, 7, 1, 0, 2, 4, 6]), np.array([7, 4]), np.array([3])),
        ]
        for case, ranked, ok, junk in fixed:
            ref = _ap_reference(ranked, ok, junk)
            compare_output(np.float64(call_student(fn, ranked.copy(), ok.copy(), junk.copy(), case=case)), ref, case,
                     rtol=1e-9, atol=1e-9, what="AP")
            yield case
        for t in range(6):
            nb = int(rng.integers(20, 60))
            ranked = rng.permutation(nb)
            perm = rng.permutation(nb)
            ok, junk = perm[:int(rng.integers(1, 8))], perm[10:10 + int(rng.integers(0, 5))]
            if t == 5:  # truncated ranking: some positives never retrieved
                ranked = ranked[:nb // 2]
            case = f"random case {t} (nb={nb}, {len(ok)} positives, {len(junk)} junk" + (", truncated)" if t == 5 else ")")
            ref = _ap_reference(ranked, ok, junk)
            compare_output(np.float64(call_student(fn, ranked.copy(), ok.copy(), junk.copy(), case=case)), ref, case,
                     rtol=1e-9, atol=1e-9, what="AP")
            yield case

    return run_cases("average precision", cases(), verbose)


def check_query_expansion(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(qvecs, dbvecs, k) -> expanded queries``: average query expansion (Chum et al.
    2007): each query is replaced by the mean of itself and its ``k`` nearest database vectors
    (by inner product, ties: lower index first), then L2-normalised."""
    from ..data.evaluation import average_query_expansion

    def cases():
        rng = np.random.default_rng(60)
        for nq, nb, D, k in [(1, 5, 3, 1), (3, 20, 8, 5), (4, 30, 16, 3), (2, 10, 4, 10)]:
            q = rng.standard_normal((nq, D))
            db = rng.standard_normal((nb, D))
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            db /= np.linalg.norm(db, axis=1, keepdims=True)
            case = f"{nq} queries, {nb} database vectors, D={D}, k={k}"
            ref = average_query_expansion(q, db, k=k)
            compare_output(call_student(fn, q.copy(), db.copy(), k, case=case), ref, case, rtol=1e-6, atol=1e-8,
                     what="expanded queries")
            yield case

    return run_cases("average query expansion", cases(), verbose)


def check_best_per_column(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(table) -> bool mask``: mark the best (largest) value of every column, as the
    bold entries of Table 3; ties are all marked, NaN (missing) entries never."""

    def cases():
        rng = np.random.default_rng(3)
        tabs = [("Table 3 (Oxford5k)", np.array([[67.8, 65.1, 65.5, 59.5], [72.2, 71.8, 72.0, 69.6],
                                                  [75.8, 75.7, 75.3, 73.4], [75.2, 74.7, 74.4, 73.8]])),
                ("a tie", np.array([[1.0, 2.0], [1.0, 0.5]])),
                ("a missing value", np.array([[np.nan, 2.0], [0.3, np.nan], [0.2, 1.0]])),
                ("random 6x4", np.round(rng.random((6, 4)), 3))]
        for case, t in tabs:
            compare_output(np.asarray(call_student(fn, t.copy(), case=case)), best_per_column(t), case,
                     what="mask")
            yield case

    return run_cases("best per column", cases(), verbose)


# --------------------------------------------------------------------------------------------
# notebook 07: fine-tuning
# --------------------------------------------------------------------------------------------
def check_gem(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(fmap, p) -> (K,)``: generalised-mean (GeM) pooling of an ``(H, W, K)`` map,
    ``(mean_{h,w} f^p)^(1/p)`` per channel (clamp the map at 1e-6 first so that ``p`` can be
    fractional). ``p = 1`` is average pooling, ``p -> inf`` tends to MAC."""
    from ..method.baselines import gem_pool

    def cases():
        rng = np.random.default_rng(7)
        for shape, p in [((3, 4, 5), 1.0), ((7, 9, 16), 3.0), ((5, 5, 8), 2.5), ((2, 3, 4), 20.0)]:
            x = relu_map(rng, shape).astype(np.float64)
            case = f"map {shape}, p={p}"
            compare_output(call_student(fn, x.copy(), p, case=case), gem_pool(x, p), case, rtol=1e-5, atol=1e-6,
                     what="GeM vector")
            yield case

    return run_cases("GeM pooling", cases(), verbose)


def check_contrastive_loss(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(a, b, y, margin) -> float``: the mean contrastive loss of pairs (rows of ``a`` and
    ``b``) with labels ``y`` (1 = matching, 0 = non-matching):
    ``0.5 y d^2 + 0.5 (1 - y) max(0, margin - d)^2`` with ``d = ||a - b||``."""
    import torch

    from ..experiments.finetune import contrastive_loss

    def cases():
        rng = np.random.default_rng(8)
        for n, D, margin in [(2, 2, 1.0), (6, 8, 0.7), (10, 32, 0.85), (5, 4, 2.0)]:
            a = rng.standard_normal((n, D))
            b = rng.standard_normal((n, D))
            a /= np.linalg.norm(a, axis=1, keepdims=True)
            b /= np.linalg.norm(b, axis=1, keepdims=True)
            y = (np.arange(n) % 2 == 0).astype(np.float64)
            case = f"{n} pairs, D={D}, margin={margin}"
            ref = float(contrastive_loss(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(y), margin))
            out = call_student(fn, a.copy(), b.copy(), y.copy(), margin, case=case)
            try:
                out = float(out.item() if hasattr(out, "item") else out)
            except Exception as exc:
                raise CheckFailure(f"{case}: your function should return one number, got {type(out).__name__} ({exc})") from None
            compare_output(np.float64(out), ref, case, rtol=1e-6, atol=1e-9, what="loss")
            yield case

    return run_cases("contrastive loss", cases(), verbose)
