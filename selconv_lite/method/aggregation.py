"""Aggregation of embedded local features into one vector (Sec. 4.3).

``X`` holds one embedded local feature per ROW ``(n, D)``. Sum (psi_s), average (psi_a),
max and democratic (psi_d) pooling. Democratic pooling reproduces the authors'
``qdemocratic.m`` + ``sinkhornm.m`` ('sinkhorn' branch, the only one in their code): the Gram
matrix clipped at 0, 10 Sinkhorn-Knopp iterations with exponent 0.5. It is written by hand
(no library has this variant) and vectorised: each iteration is an ``O(n^2)`` scaling.
"""
from __future__ import annotations

import numpy as np

__all__ = ["AGGREGATIONS", "sum_pooling", "average_pooling", "max_pooling", "democratic_pooling",
           "democratic_weights", "aggregate", "aggregation_name"]

AGGREGATIONS = ("sum", "average", "max", "democratic")
_AGGREGATION_ALIASES = {"s": "sum", "avg": "average", "mean": "average", "a": "average",
                        "d": "democratic"}


def aggregation_name(method) -> str:
    """The name in :data:`AGGREGATIONS` of ``method`` (any case; the short aliases ``s``,
    ``avg``/``mean``/``a`` and ``d`` accepted). Raises ``ValueError`` for anything else."""
    m = str(method).lower()
    m = _AGGREGATION_ALIASES.get(m, m)
    if m not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {method!r}; choose one of {AGGREGATIONS}")
    return m


def _check(X):
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"embedded local features must be (n, D), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("cannot aggregate an empty set of local features")
    return X


def sum_pooling(X):
    """psi_s: ``sum_i phi(x_i)`` ``(D,)``."""
    return _check(X).sum(axis=0)


def average_pooling(X):
    """psi_a: ``mean_i phi(x_i)`` ``(D,)`` (VLFeat's Fisher vector is this average)."""
    return _check(X).mean(axis=0)


def max_pooling(X):
    """Element-wise max over the local features ``(D,)`` (for completeness, Sec. 4.3)."""
    return _check(X).max(axis=0)


def democratic_weights(X, n_iter=10, reg=0.5, gram=None):
    """Democratic weights ``lambda`` ``(n,)`` of Jegou & Zisserman, as the authors' ``sinkhornm``.

    ``G = X X'`` clipped at 0; ``lambda = 1``; ``n_iter`` times: ``delta = 1 / (colsum G)^reg``,
    ``G = diag(delta) G diag(delta)``, ``lambda = lambda * delta``.

    A local feature whose clipped Gram column sums to 0 (a zero embedded vector) gets weight 0
    (the authors' code would divide by 0 and produce NaN).

    Parameters
    ----------
    X : ndarray ``(n, D)``
    n_iter : int, default 10
    reg : float, default 0.5
    gram : ndarray ``(n, n)`` or None
        A precomputed ``X X'`` (saves the product when the caller has it).
    """
    X = _check(X)
    G = X @ X.T if gram is None else np.array(gram, copy=True)
    np.maximum(G, 0, out=G)
    # sinkhornm scales G in place: G_t = diag(lam) G diag(lam), so colsum(G_t) = lam * (G lam).
    # Each iteration is one matrix-vector product instead of two n x n scalings and a sum.
    lam = np.ones(G.shape[0], dtype=G.dtype)
    zero = None
    for _ in range(int(n_iter)):
        s = lam * (G @ lam)
        if zero is None:
            zero = s <= 0  # a zero column stays zero: its weight is 0, not 1/0
        if zero.any():
            s[zero] = 1
        delta = 1.0 / np.sqrt(s) if reg == 0.5 else s ** (-reg)
        if zero.any():
            delta[zero] = 0
        lam *= delta
    return lam


def democratic_pooling(X, n_iter=10, reg=0.5):
    """psi_d: democratic aggregation ``y = sum_i lambda_i phi(x_i)``.

    Returns
    -------
    y : ndarray ``(D,)``
    weights : ndarray ``(n,)``
        The weights ``lambda``; with them every local feature contributes equally to the
        similarity: ``lambda_i phi_i . y`` is (close to) the same for every ``i``.
    """
    X = _check(X)
    lam = democratic_weights(X, n_iter=n_iter, reg=reg)
    return lam @ X, lam


def aggregate(X, method="democratic"):
    """Aggregate ``X`` ``(n, D)`` with ``method`` in :data:`AGGREGATIONS` -> ``(D,)``."""
    m = aggregation_name(method)
    if m == "sum":
        return sum_pooling(X)
    if m == "average":
        return average_pooling(X)
    if m == "max":
        return max_pooling(X)
    return democratic_pooling(X)[0]
