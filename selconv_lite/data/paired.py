"""Paired statistics of two retrieval methods from their per-query average precisions.

Two methods scored on the same queries give two vectors of per-query APs (``aps`` of
:func:`selconv_lite.data.evaluation.compute_map`, ``res[p]["aps"]`` of the revisited protocol).
Their mAPs differ by the mean of the per-query differences ``d_i = AP_A(q_i) - AP_B(q_i)``; on a
few dozen queries one query can move that mean by several points, so a difference of mAPs is a
finding only with its uncertainty. :func:`paired_difference` reports, with a fixed seed:

* the difference of mAPs, ``mean(d)``;
* its bootstrap confidence interval (95 % by default): :func:`scipy.stats.bootstrap` of the
  mean of ``d`` over queries resampled with replacement (bias-corrected and accelerated, BCa,
  by default; ``"percentile"`` and ``"basic"`` on request);
* a paired permutation test of "no difference": :func:`scipy.stats.permutation_test` with
  ``permutation_type="samples"`` on the differences, which flips the sign of ``d_i`` (swaps A's
  and B's AP within each query); exact over all ``2**n`` flips when ``2**n <= n_resamples``,
  else randomised;
* a sign test: :func:`scipy.stats.binomtest` of the queries where A wins against those where B
  wins (ties dropped);
* the wins, ties and losses of A.

The result reads as a verdict, e.g.::

    A - B = +0.031 mAP, 95% CI [+0.012, +0.050], p = 0.004 (permutation, 55 queries): A better

and says "no detectable difference" when the interval covers 0 (or, for very few queries, when
the permutation test cannot reject at the same level although the interval excludes 0).
:func:`compare_evaluations` compares two results of
:meth:`~selconv_lite.data.retrieval.RetrievalDataset.evaluate` protocol by protocol.

The paper (Hoang et al., ACM MM 2017, Sec. 5) reports single mAPs on Oxford5k (55 queries),
Paris6k (55) and Holidays (500) without intervals; these statistics are this project's
addition, to tell on a small set which of its differences are measurable.
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = ["PairedComparison", "paired_difference", "compare_evaluations",
           "BOOTSTRAP_METHODS", "DEFAULT_RESAMPLES"]

#: Confidence-interval methods of :func:`scipy.stats.bootstrap` accepted by :func:`paired_difference`.
BOOTSTRAP_METHODS = ("BCa", "percentile", "basic")
#: Bootstrap resamples and permutation-test resamples (scipy's default).
DEFAULT_RESAMPLES = 9999
#: |AP_A - AP_B| at or below this counts as a tie (the same ranking gives bitwise equal APs).
TIE_TOLERANCE = 1e-12
#: Slack on the [0, 1] range of an AP (rounding of the trapezoidal sum).
_AP_SLACK = 1e-9


def _rng_keyword() -> str:
    """scipy >= 1.15 takes ``rng``; older versions ``random_state`` (both accept a Generator)."""
    return "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


_RNG = _rng_keyword()


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


@dataclass(frozen=True)
class PairedComparison:
    """Paired comparison of method A with method B on the same queries.

    Attributes
    ----------
    name_a, name_b : str
        The methods' names, as printed.
    metric : str
        What the per-query numbers average to (``"mAP"``, ``"Medium mAP"``, ...).
    n : int
        Number of queries compared.
    mean_a, mean_b : float
        The two mAPs.
    difference : float
        ``mean_a - mean_b``.
    ci_low, ci_high : float
        Bootstrap confidence interval of ``difference``.
    confidence : float
        Its level (0.95 for 95 %).
    ci_method : str
        Bootstrap interval method (:data:`BOOTSTRAP_METHODS`).
    p_value : float
        Two-sided p-value of the paired permutation test (sign flips of the differences).
    permutation_exact : bool
        True when the test enumerated all ``2**n`` sign flips.
    sign_p_value : float
        Two-sided p-value of the sign test on wins against losses (1.0 when all are ties).
    wins, ties, losses : int
        Queries where A's AP is above, equal to (within 1e-12), below B's.
    n_resamples : int
        Bootstrap and (randomised) permutation resamples.
    random_state : int
        The seed of both.
    """

    name_a: str
    name_b: str
    metric: str
    n: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    ci_method: str
    p_value: float
    permutation_exact: bool
    sign_p_value: float
    wins: int
    ties: int
    losses: int
    n_resamples: int
    random_state: int

    @property
    def covers_zero(self) -> bool:
        """Whether the confidence interval contains 0."""
        return self.ci_low <= 0.0 <= self.ci_high

    @property
    def detectable(self) -> bool:
        """A difference is called detectable when the interval excludes 0 **and** the
        permutation test rejects "no difference" at the same level (``p < 1 - confidence``).

        With a few dozen queries the two agree; the second condition only guards very small
        query sets, where every bootstrap resample of identical differences excludes 0 although
        the ``2**n`` sign flips cannot reach a small p-value (e.g. two queries: p >= 0.5).
        """
        return (not self.covers_zero) and self.p_value < 1.0 - self.confidence

    @property
    def verdict(self) -> str:
        """``"<A> better"``, ``"<B> better"`` or ``"no detectable difference"``."""
        if not self.detectable:
            if self.covers_zero:
                return "no detectable difference"
            return (f"no detectable difference (the interval excludes 0 but the permutation test "
                    f"gives {_p_text(self.p_value)} on {self.n} queries)")
        return f"{self.name_a if self.difference > 0 else self.name_b} better"

    def __str__(self) -> str:
        pct = f"{100 * self.confidence:g}%"
        p = _p_text(self.p_value)
        test = "exact permutation" if self.permutation_exact else "permutation"
        return (f"{self.name_a} - {self.name_b} = {self.difference:+.3f} {self.metric}, "
                f"{pct} CI [{self.ci_low:+.3f}, {self.ci_high:+.3f}], {p} ({test}, {self.n} "
                f"queries): {self.verdict}")

    def describe(self) -> str:
        """:meth:`__str__` followed by the two mAPs, the wins / ties / losses and the sign test."""
        return (f"{self}\n  {self.metric}: {self.name_a} {self.mean_a:.3f}, {self.name_b} "
                f"{self.mean_b:.3f}; per query {self.name_a} wins {self.wins}, ties {self.ties}, "
                f"loses {self.losses} (sign test {_p_text(self.sign_p_value)})")

    def to_dict(self) -> dict:
        """The fields and the verdict as a JSON-ready dict (e.g. for a notebook's record)."""
        return {**asdict(self), "detectable": self.detectable, "verdict": self.verdict}


def _check_aps(x, name: str) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 1-D array of per-query APs (numbers), "
                        f"got {type(x).__name__}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-query APs, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty: no query to compare")
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} has {int(bad.sum())} non-finite AP(s) (first at query {i}: {a[i]}); "
                         "a query without positives has AP NaN in the revisited protocol -- drop it "
                         "from both methods (compare_evaluations does)")
    out = (a < -_AP_SLACK) | (a > 1.0 + _AP_SLACK)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"{name} has {int(out.sum())} value(s) outside [0, 1] (first at query {i}: "
                         f"{a[i]}); pass per-query APs, not percentages or scores")
    return a


def paired_difference(ap_a, ap_b, confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES,
                      random_state: int = 0, method: str = "BCa", name_a: str = "A",
                      name_b: str = "B", metric: str = "mAP") -> PairedComparison:
    """Paired difference of two methods' mAPs with a bootstrap interval and paired tests.

    Parameters
    ----------
    ap_a, ap_b : array_like of float, shape (n,)
        Per-query APs of methods A and B, in the same query order, each in [0, 1].
    confidence : float, default 0.95
        Level of the bootstrap confidence interval; the permutation test's level for
        :attr:`PairedComparison.detectable` is ``1 - confidence``.
    n_resamples : int, default 9999
        Bootstrap resamples, and permutation-test resamples when ``2**n`` exceeds it (otherwise
        all ``2**n`` sign flips are enumerated).
    random_state : int, default 0
        Seed of both resamplings (``numpy.random.default_rng(random_state)`` for each), so the
        same input always gives the same interval and p-value.
    method : {"BCa", "percentile", "basic"}, default "BCa"
        Bootstrap interval (:func:`scipy.stats.bootstrap`).
    name_a, name_b : str
        Names used when printing.
    metric : str, default "mAP"
        What the mean of the per-query numbers is called when printing.

    Returns
    -------
    PairedComparison
        ``str()`` of it is the one-line verdict.

    Raises
    ------
    ValueError
        Different lengths, an empty or non-1-D input, NaN or infinite APs, APs outside [0, 1],
        fewer than 2 queries, a confidence outside (0, 1), ``n_resamples < 1``, an unknown
        ``method``.
    """
    a = _check_aps(ap_a, "ap_a")
    b = _check_aps(ap_b, "ap_b")
    if a.size != b.size:
        raise ValueError(f"ap_a has {a.size} queries but ap_b has {b.size}: the paired comparison "
                         "needs both methods' APs on the same queries, in the same order")
    if a.size < 2:
        raise ValueError(f"only {a.size} query: a paired interval needs at least 2")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f"method must be one of {BOOTSTRAP_METHODS}, got {method!r}")
    n_resamples, confidence = int(n_resamples), float(confidence)
    d = a - b
    if np.ptp(d) == 0.0:
        # every resample has the same mean: scipy's BCa would divide by zero (NaN interval)
        low = high = float(d[0])
    else:
        ci = stats.bootstrap((d,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                             method=method, vectorized=True, axis=-1,
                             **{_RNG: np.random.default_rng(random_state)}).confidence_interval
        low, high = float(ci.low), float(ci.high)
    # one sample of differences with permutation_type="samples" flips their signs: the same
    # test as swapping A and B within each query (scipy's docs), three times faster
    perm = stats.permutation_test((d,), np.mean, permutation_type="samples",
                                  vectorized=True, n_resamples=n_resamples, axis=-1,
                                  alternative="two-sided",
                                  **{_RNG: np.random.default_rng(random_state)})
    wins = int(np.sum(d > TIE_TOLERANCE))
    losses = int(np.sum(d < -TIE_TOLERANCE))
    sign_p = (float(stats.binomtest(wins, wins + losses, 0.5).pvalue)
              if wins + losses else 1.0)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    return PairedComparison(
        name_a=str(name_a), name_b=str(name_b), metric=str(metric), n=int(a.size),
        mean_a=mean_a, mean_b=mean_b, difference=mean_a - mean_b, ci_low=low, ci_high=high,
        confidence=confidence, ci_method=method, p_value=float(perm.pvalue),
        permutation_exact=bool(2 ** a.size <= n_resamples), sign_p_value=sign_p, wins=wins,
        ties=int(a.size) - wins - losses, losses=losses, n_resamples=n_resamples,
        random_state=int(random_state))


_PROTOCOL_NAMES = {"mAP": "mAP", "easy": "Easy mAP", "medium": "Medium mAP", "hard": "Hard mAP"}


def _per_query(res: Mapping, key: str):
    if key == "mAP":
        return res.get("aps")
    sub = res.get(key)
    return sub.get("aps") if isinstance(sub, Mapping) else None


def compare_evaluations(res_a: Mapping, res_b: Mapping, name_a: str = "A", name_b: str = "B",
                        protocols: Sequence[str] | None = None,
                        **kwargs) -> dict[str, PairedComparison]:
    """Compare two results of :meth:`RetrievalDataset.evaluate` (or
    :func:`selconv_lite.data.evaluation.evaluate`) protocol by protocol.

    Parameters
    ----------
    res_a, res_b : dict
        The two evaluation results on the same queries: the classic per-query APs ``"aps"``
        (key ``"mAP"`` here) and, for revisited ground truth, ``res["easy"|"medium"|"hard"]["aps"]``.
    name_a, name_b : str
        The methods' names, as printed.
    protocols : sequence of {"mAP", "easy", "medium", "hard"}, optional
        Which to compare; default: every one that both results carry.
    **kwargs
        ``confidence``, ``n_resamples``, ``random_state``, ``method`` of :func:`paired_difference`.

    Returns
    -------
    dict
        ``{protocol: PairedComparison}``. Queries without a positive under a revisited protocol
        (AP NaN in both results: the same ground truth skips them) are left out of that protocol,
        as they are left out of its mAP.

    Raises
    ------
    ValueError
        A requested protocol missing from a result, no protocol in common, different numbers of
        queries, or a query skipped (NaN) in one result but scored in the other (not the same
        ground truth).
    """
    known = tuple(_PROTOCOL_NAMES)
    if protocols is None:
        protocols = [p for p in known if _per_query(res_a, p) is not None
                     and _per_query(res_b, p) is not None]
        if not protocols:
            raise ValueError("res_a and res_b carry no per-query APs in common (expected 'aps' or "
                             "'easy' / 'medium' / 'hard' with 'aps', as RetrievalDataset.evaluate "
                             "returns)")
    out = {}
    for p in protocols:
        if p not in _PROTOCOL_NAMES:
            raise ValueError(f"unknown protocol {p!r}; choose from {known}")
        per = {}
        for which, res in (("res_a", res_a), ("res_b", res_b)):
            v = _per_query(res, p)
            if v is None:
                raise ValueError(f"{which} has no per-query APs for protocol {p!r} "
                                 f"(keys: {sorted(res)})")
            per[which] = np.asarray(v, dtype=np.float64).ravel()
        a, b = per["res_a"], per["res_b"]
        if a.size != b.size:
            raise ValueError(f"protocol {p!r}: res_a has {a.size} queries but res_b has {b.size}; "
                             "compare results on the same query set")
        na, nb = np.isnan(a), np.isnan(b)
        if (na != nb).any():
            i = int(np.flatnonzero(na != nb)[0])
            raise ValueError(f"protocol {p!r}: query {i} is skipped (AP NaN) in "
                             f"{'res_a' if na[i] else 'res_b'} but scored in the other: the two "
                             "results do not come from the same ground truth")
        keep = ~na
        out[p] = paired_difference(a[keep], b[keep], name_a=name_a, name_b=name_b,
                                   metric=_PROTOCOL_NAMES[p], **kwargs)
    return out
