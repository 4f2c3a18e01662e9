"""Paired statistics of two methods' per-query APs (selconv_lite.data.paired): the interval and
the tests equal scipy's for the same seed and an independent enumeration, the interval covers the
true difference at about its nominal rate, the verdicts, and the refusal of bad input."""
from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from scipy import stats

from selconv_lite.data.evaluation import evaluate
from selconv_lite.data.paired import (BOOTSTRAP_METHODS, PairedComparison, compare_evaluations,
                                      paired_difference)
from selconv_lite.experiments.report import paired_line


def _aps(n, shift=0.0, noise=0.05, seed=1):
    """Per-query APs of two correlated methods: B = A - shift + noise, both clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    a = rng.beta(2, 2, n)
    b = np.clip(a - shift + rng.normal(0, noise, n), 0, 1)
    return a, b


def _scipy_rng(seed):
    """scipy's seed keyword (``rng`` from scipy 1.15, ``random_state`` before) with a Generator."""
    import inspect
    kw = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"
    return {kw: np.random.default_rng(seed)}


# ---- equal to scipy ------------------------------------------------------------------------
@pytest.mark.parametrize("method", BOOTSTRAP_METHODS)
def test_interval_equals_scipy_paired_bootstrap(method):
    a, b = _aps(55, shift=0.02, seed=3)
    r = paired_difference(a, b, method=method, n_resamples=4999, random_state=7)
    # scipy's own paired two-sample form (resamples queries jointly), same seed
    ref = stats.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis),
                          paired=True, vectorized=True, n_resamples=4999, method=method,
                          confidence_level=0.95, **_scipy_rng(7)).confidence_interval
    assert r.ci_low == pytest.approx(ref.low, abs=1e-12)
    assert r.ci_high == pytest.approx(ref.high, abs=1e-12)
    assert r.ci_low < r.difference < r.ci_high
    assert r.difference == pytest.approx(a.mean() - b.mean(), abs=1e-15)


def test_permutation_p_equals_scipy_randomised():
    a, b = _aps(40, shift=0.01, noise=0.06, seed=5)
    r = paired_difference(a, b, n_resamples=2999, random_state=11)
    # the two-sample form of the same test: A's and B's AP swapped within each query
    ref = stats.permutation_test((a, b), lambda x, y, axis=-1: (x - y).mean(axis=axis),
                                 permutation_type="samples", vectorized=True, n_resamples=2999,
                                 **_scipy_rng(11))
    assert not r.permutation_exact
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert 1 / 3000 <= r.p_value <= 1


def test_permutation_p_equals_exhaustive_sign_flips():
    """For 2**n <= n_resamples the test enumerates every sign flip: equal to a count by hand."""
    a, b = _aps(10, shift=0.02, noise=0.05, seed=2)
    d = a - b
    r = paired_difference(a, b, n_resamples=9999)
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    null = (signs * d).mean(axis=1)
    obs, tol = d.mean(), 1e-12
    p = min(1.0, 2 * min(np.mean(null >= obs - tol), np.mean(null <= obs + tol)))
    assert r.permutation_exact
    assert r.p_value == pytest.approx(p, abs=1e-12)


def test_sign_test_counts_and_binomial_p():
    a = np.array([0.9, 0.8, 0.7, 0.5, 0.5, 0.6, 0.4, 0.9, 0.3, 0.2])
    b = np.array([0.8, 0.7, 0.6, 0.5, 0.5, 0.7, 0.3, 0.8, 0.2, 0.1])
    r = paired_difference(a, b)
    assert (r.wins, r.ties, r.losses) == (7, 2, 1)
    # two-sided binomial p of 1 loss in 8 non-tied queries, by hand
    tail = sum(math.comb(8, k) for k in (0, 1)) / 2 ** 8
    assert r.sign_p_value == pytest.approx(2 * tail, abs=1e-12)
    assert r.sign_p_value == pytest.approx(stats.binomtest(7, 8).pvalue, abs=1e-12)


# ---- behaviour -----------------------------------------------------------------------------
def test_interval_covers_the_true_difference_at_about_the_nominal_rate():
    """Simulated query sets with a known mean difference: the 95 % interval covers it in about
    95 % of them (BCa on 30 queries, 300 sets: binomial sd 1.3 points), and the permutation test
    rejects a true null in about 5 %."""
    rng = np.random.default_rng(2024)
    n, reps = 30, 300
    # AP_B = AP_A * V with V ~ Beta(8, 2) independent of AP_A ~ Beta(4, 2):
    # E[AP_A - AP_B] = E[AP_A] (1 - E[V]) = 2/3 * 0.2
    true = 2 / 3 * 0.2
    hits = 0
    for _ in range(reps):
        a = rng.beta(4, 2, n)
        b = a * rng.beta(8, 2, n)
        r = paired_difference(a, b, n_resamples=1999, random_state=int(rng.integers(1 << 30)))
        hits += r.ci_low <= true <= r.ci_high
    assert 0.90 <= hits / reps <= 0.985, f"coverage {hits / reps:.3f}"
    rejections = 0
    for _ in range(reps):
        base = rng.beta(2, 2, n)  # A and B exchangeable within each query: no difference
        a, b = (np.clip(base + rng.normal(0, 0.05, n), 0, 1) for _ in range(2))
        r = paired_difference(a, b, n_resamples=999, random_state=int(rng.integers(1 << 30)))
        rejections += r.p_value < 0.05
    assert rejections / reps <= 0.09, f"false rejections {rejections / reps:.3f}"


def test_identical_methods_give_zero_and_no_detectable_difference():
    a, _ = _aps(24)
    r = paired_difference(a, a.copy(), name_a="M_MAX", name_b="no mask")
    assert r.difference == 0.0 and r.ci_low == 0.0 and r.ci_high == 0.0
    assert r.p_value == 1.0 and r.sign_p_value == 1.0
    assert (r.wins, r.ties, r.losses) == (0, 24, 0)
    assert r.covers_zero and not r.detectable
    assert r.verdict == "no detectable difference"
    assert str(r).endswith(": no detectable difference")


def test_a_clear_shift_is_detected_in_both_directions():
    a, b = _aps(55, shift=0.05, noise=0.03)
    r = paired_difference(a, b, name_a="M_MAX", name_b="no mask")
    assert r.detectable and r.ci_low > 0 and r.p_value < 0.001
    assert r.verdict == "M_MAX better"
    rev = paired_difference(b, a, name_a="no mask", name_b="M_MAX")
    assert rev.detectable and rev.ci_high < 0 and rev.verdict == "M_MAX better"
    assert rev.difference == pytest.approx(-r.difference, abs=1e-15)
    assert (rev.wins, rev.losses) == (r.losses, r.wins)


def test_small_noisy_difference_is_not_detected():
    a, b = _aps(24, shift=0.002, noise=0.08, seed=4)
    r = paired_difference(a, b)
    assert r.covers_zero and r.verdict == "no detectable difference"


def test_interval_excluding_zero_on_too_few_queries_is_not_called_a_difference():
    """Two queries improved by the same amount: every bootstrap resample excludes 0, but the four
    sign flips cannot give p < 0.05; the verdict says so rather than calling a winner."""
    r = paired_difference([0.6, 0.8], [0.5, 0.7])
    assert not r.covers_zero and r.permutation_exact and r.p_value == 0.5
    assert not r.detectable
    assert r.verdict.startswith("no detectable difference (the interval excludes 0")


def test_printed_verdict_format():
    a, b = _aps(55, shift=0.03, noise=0.04)
    line = str(paired_difference(a, b, name_a="A", name_b="B"))
    assert re.fullmatch(r"A - B = \+0\.\d{3} mAP, 95% CI \[\+0\.\d{3}, \+0\.\d{3}\], "
                        r"p (<|=) 0\.\d{3} \(permutation, 55 queries\): A better", line), line
    r = paired_difference(a, b, confidence=0.9, metric="Medium mAP")
    assert "90% CI" in str(r) and "Medium mAP" in str(r)
    text = r.describe()
    assert f"wins {r.wins}, ties {r.ties}, loses {r.losses}" in text and "sign test" in text
    d = r.to_dict()
    assert d["verdict"] == r.verdict and d["detectable"] is True and d["n"] == 55


def test_fixed_seed_is_deterministic():
    a, b = _aps(30, shift=0.01, noise=0.05)
    r1 = paired_difference(a, b, random_state=3)
    r2 = paired_difference(a.copy(), b.copy(), random_state=3)
    assert r1 == r2
    r3 = paired_difference(a, b, random_state=4)
    assert (r3.ci_low, r3.ci_high) != (r1.ci_low, r1.ci_high)  # the seed is used
    assert r3.difference == r1.difference


# ---- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, kwargs, match", [
    ([0.5, 0.6, 0.7], [0.5, 0.6], {}, r"ap_a has 3 queries but ap_b has 2"),
    ([], [], {}, r"ap_a is empty"),
    ([0.5, np.nan, 0.7], [0.5, 0.6, 0.7], {}, r"ap_a has 1 non-finite AP.*query 1"),
    ([0.5, 0.6, 0.7], [0.5, 0.6, np.inf], {}, r"ap_b has 1 non-finite"),
    ([50.0, 60.0, 70.0], [0.5, 0.6, 0.7], {}, r"ap_a has 3 value\(s\) outside \[0, 1\]"),
    ([0.5, 0.6, 0.7], [0.5, -0.1, 0.7], {}, r"ap_b has 1 value\(s\) outside \[0, 1\].*query 1"),
    ([[0.5, 0.6]], [[0.5, 0.6]], {}, r"ap_a must be a 1-D array"),
    ([0.5], [0.4], {}, r"only 1 query"),
    ([0.5, 0.6], [0.4, 0.3], {"confidence": 95}, r"confidence must be in \(0, 1\)"),
    ([0.5, 0.6], [0.4, 0.3], {"n_resamples": 0}, r"n_resamples must be a positive integer"),
    ([0.5, 0.6], [0.4, 0.3], {"method": "student"}, r"method must be one of"),
])
def test_bad_input_is_refused_with_a_clear_message(a, b, kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(a, b, **kwargs)


def test_non_numeric_input_is_refused():
    with pytest.raises(TypeError, match="ap_a must be a 1-D array of per-query APs"):
        paired_difference(["x", "y"], [0.5, 0.6])


# ---- two evaluation results ----------------------------------------------------------------
def _revisited_case():
    """6 queries on 12 database images; query 5 has no hard positive (skipped by Hard)."""
    rng = np.random.default_rng(0)
    db = rng.normal(size=(12, 16))
    gnd = [{"easy": np.array([2 * i % 12]), "hard": np.array([(2 * i + 1) % 12]),
            "junk": np.array([], np.int64)} for i in range(6)]
    gnd[5]["hard"] = np.array([], np.int64)
    for g in gnd:
        g["ok"] = np.concatenate([g["easy"], g["hard"]])
    good = db[[2 * i % 12 for i in range(6)]] + 0.3 * rng.normal(size=(6, 16))
    bad = rng.normal(size=(6, 16))
    return db, gnd, good, bad


def test_compare_evaluations_per_protocol():
    db, gnd, good, bad = _revisited_case()
    ra, rb = evaluate(good, db, gnd), evaluate(bad, db, gnd)
    out = compare_evaluations(ra, rb, name_a="good", name_b="random", n_resamples=999)
    assert list(out) == ["mAP", "easy", "medium", "hard"]
    assert all(isinstance(v, PairedComparison) for v in out.values())
    assert out["mAP"].n == out["easy"].n == out["medium"].n == 6
    assert out["hard"].n == 5  # the query without a hard positive is left out, as from the mAP
    for p in ("easy", "medium", "hard"):
        assert out[p].mean_a == pytest.approx(ra[p]["mAP"], abs=1e-12)
        assert out[p].mean_b == pytest.approx(rb[p]["mAP"], abs=1e-12)
    ref = paired_difference(ra["aps"], rb["aps"], name_a="good", name_b="random", n_resamples=999)
    assert out["mAP"] == ref
    assert out["medium"].metric == "Medium mAP" and "Medium mAP" in str(out["medium"])
    only = compare_evaluations(ra, rb, protocols=["hard"], n_resamples=999)
    assert list(only) == ["hard"] and only["hard"] == paired_difference(
        ra["hard"]["aps"][:5], rb["hard"]["aps"][:5], metric="Hard mAP", n_resamples=999)


def test_compare_evaluations_refuses_mismatched_results():
    db, gnd, good, bad = _revisited_case()
    ra, rb = evaluate(good, db, gnd), evaluate(bad, db, gnd)
    with pytest.raises(ValueError, match="res_a has 6 queries but res_b has 5"):
        compare_evaluations(ra, evaluate(bad[:5], db, gnd[:5]), protocols=["mAP"])
    other = [dict(g) for g in gnd]
    other[5] = {**other[5], "hard": np.array([3])}  # query 5 scored under Hard in B only
    with pytest.raises(ValueError, match="query 5 is skipped .AP NaN. in res_a"):
        compare_evaluations(ra, evaluate(bad, db, other), protocols=["hard"])
    with pytest.raises(ValueError, match="unknown protocol 'medum'"):
        compare_evaluations(ra, rb, protocols=["medum"])
    with pytest.raises(ValueError, match="res_b has no per-query APs for protocol 'easy'"):
        compare_evaluations(ra, {"aps": rb["aps"]}, protocols=["easy"])
    with pytest.raises(ValueError, match="no per-query APs in common"):
        compare_evaluations({"mAP": 0.5}, rb)


# ---- the one-line verdict of the experiment drivers ----------------------------------------
def test_paired_line_is_the_printed_paired_difference():
    a, b = _aps(55, shift=0.03, noise=0.04)
    assert paired_line(a, b, "M_MAX", "none") == str(paired_difference(a, b, name_a="M_MAX", name_b="none"))
    assert paired_line(a, a.copy(), "M_MAX", "none").endswith(": no detectable difference")
    assert paired_line(a, a.copy(), "M_MAX", "none").startswith("M_MAX - none = +0.000 mAP, 95% CI [+0.000, +0.000]")
    # a clear shift names the winner, whichever side it is on
    assert paired_line(a, b, "M_MAX", "none").endswith(": M_MAX better")
    assert paired_line(b, a, "none", "M_MAX").endswith(": M_MAX better")
    noisy = paired_line(*_aps(24, shift=0.002, noise=0.08, seed=4))
    assert noisy.endswith(": no detectable difference")


def test_paired_line_drops_queries_skipped_in_both_and_refuses_others():
    db, gnd, good, bad = _revisited_case()
    ra, rb = evaluate(good, db, gnd), evaluate(bad, db, gnd)
    line = paired_line(ra["hard"]["aps"], rb["hard"]["aps"], "good", "random", metric="Hard mAP", n_resamples=999)
    assert line == str(compare_evaluations(ra, rb, name_a="good", name_b="random", protocols=["hard"],
                                           n_resamples=999)["hard"])
    assert "(exact permutation, 5 queries)" in line
    with pytest.raises(ValueError, match="non-finite"):
        paired_line(ra["hard"]["aps"], rb["aps"])
    with pytest.raises(ValueError, match="ap_a has 6 queries but ap_b has 5"):
        paired_line(ra["aps"], rb["aps"][:5])


# ---- a paper's claim read through the paired interval (notebooks, landing page) --------------
def test_paired_claim_reads_the_papers_sign_through_the_interval():
    from selconv_lite.experiments.report import NO_APS, claim_text, count_claims, paired_claim

    a, b = _aps(70, shift=0.03, noise=0.04)
    line = paired_line(a, b, "M_MAX", "none")
    agree = paired_claim(a, b, "M_MAX", "none", paper_diff=+2.5)
    assert str(agree) == f"{line} -> agrees" and agree.agreement == "agrees" and agree.detectable
    assert paired_claim(a, b, "M_MAX", "none", paper_diff=-0.4).agreement == "disagrees"
    assert paired_claim(a, b, "M_MAX", "none", paper_diff=0.0).agreement == "disagrees"
    assert str(paired_claim(a, b, "M_MAX", "none")) == line  # no paper: the paired line alone
    same = paired_claim(a, a.copy(), "M_MAX", "none", paper_diff=2.5)
    assert same.agreement == "no detectable difference" and str(same) == str(paired_claim(a, a.copy(), "M_MAX", "none"))
    assert str(same).endswith(": no detectable difference")  # said once
    # the record entry: plain floats and strings, JSON-ready, printed again by claim_text
    e = agree.record()
    assert e["verdict"] == "M_MAX better" and e["agreement"] == "agrees" and e["n"] == 70
    assert all(isinstance(e[k], float) for k in ("difference", "ci_low", "ci_high", "p_value", "paper_diff"))
    assert e["ci_low"] < e["difference"] < e["ci_high"] and "a" not in e
    assert claim_text(e) == (f"M_MAX - none = {e['difference']:+.3f} mAP, 95% CI [{e['ci_low']:+.3f}, "
                             f"{e['ci_high']:+.3f}], p < 0.001 (70 queries): M_MAX better; paper: agrees")
    assert paired_claim(a, b, a="x (mAP)", b="y (mAP)").record()["a"] == "x (mAP)"
    # an old record without per-query APs: no verdict, said so
    old = paired_claim(None, b, "M_MAX", "none", paper_diff=1.0)
    assert old.verdict == NO_APS and old.agreement == NO_APS and old.difference is None
    assert "no per-query APs" in str(old) and old.record()["ci_low"] is None
    assert claim_text(old.record()) == "M_MAX vs none: no per-query APs, no verdict; paper: no per-query APs"
    # a notebook's log of them, by name, ready for its record
    from selconv_lite.experiments.report import PairedLog
    log = PairedLog()
    assert str(log.claim("mask", a, b, "M_MAX", "none", paper_diff=2.5)) == str(agree)
    assert log == {"mask": agree.record()}
    # counting many pairs by their intervals, not by a margin
    assert count_claims([agree, paired_claim(b, a), same, old]) == {
        "better": 1, "worse": 1, "no_difference": 1, "untested": 1, "n": 4}


def test_paired_claim_drops_queries_skipped_in_both():
    from selconv_lite.experiments.report import paired_claim

    db, gnd, good, bad = _revisited_case()
    ra, rb = evaluate(good, db, gnd), evaluate(bad, db, gnd)
    c = paired_claim(ra["hard"]["aps"], rb["hard"]["aps"], "good", "random", metric="Hard mAP", n_resamples=999)
    assert str(c) == paired_line(ra["hard"]["aps"], rb["hard"]["aps"], "good", "random", metric="Hard mAP",
                                 n_resamples=999)
