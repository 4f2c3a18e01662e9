"""The checkers of notebooks 06/07 accept correct implementations and reject wrong ones."""
import numpy as np
import torch

from selconv_lite.teaching import checkers_eval as ce
from selconv_lite.experiments.published import TABLE3, TABLE6, table3_value, table5_value, table6_value


def my_ap(ranked, ok, junk):
    """A student's AP: junk removed, trapezoidal rule."""
    ranked = [r for r in ranked if r not in set(junk)]
    ok = set(ok.tolist())
    ap, hits, prev_rec, prev_prec = 0.0, 0, 0.0, 1.0
    for i, r in enumerate(ranked):
        if r in ok:
            hits += 1
            rec, prec = hits / len(ok), hits / (i + 1)
            prec0 = (hits - 1) / i if i > 0 else 1.0
            ap += (rec - prev_rec) * (prec0 + prec) / 2
            prev_rec = rec
    return ap


def wrong_ap_keeps_junk(ranked, ok, junk):
    return my_ap(ranked, ok, np.array([], int))


def my_aqe(q, db, k):
    out = []
    for v in q:
        top = np.argsort(-(db @ v), kind="stable")[:k]
        e = v + db[top].sum(0)
        out.append(e / np.linalg.norm(e))
    return np.array(out)


def test_ap_checker():
    assert ce.check_average_precision(my_ap, verbose=False)
    res = ce.check_average_precision(wrong_ap_keeps_junk, verbose=False)
    assert not res and "junk before a positive" in res.message


def test_aqe_checker():
    assert ce.check_query_expansion(my_aqe, verbose=False)
    assert not ce.check_query_expansion(lambda q, db, k: q, verbose=False)


def test_best_per_column_checker():
    def mine(t):
        return np.nan_to_num(t, nan=-np.inf) == np.nanmax(t, axis=0)
    assert ce.check_best_per_column(mine, verbose=False)
    res = ce.check_best_per_column(lambda t: t == np.max(t, axis=1, keepdims=True), verbose=False)
    assert not res


def test_gem_and_contrastive_checkers():
    assert ce.check_gem(lambda f, p: (np.maximum(f, 1e-6) ** p).mean((0, 1)) ** (1 / p), verbose=False)
    res = ce.check_gem(lambda f, p: f.max((0, 1)), verbose=False)
    assert not res and "differs" in res.message

    def loss(a, b, y, m):
        d = np.linalg.norm(a - b, axis=1)
        return np.mean(0.5 * y * d ** 2 + 0.5 * (1 - y) * np.maximum(0, m - d) ** 2)

    assert ce.check_contrastive_loss(loss, verbose=False)
    assert not ce.check_contrastive_loss(lambda a, b, y, m: loss(a, b, 1 - y, m), verbose=False)
    res = ce.check_contrastive_loss(lambda a, b, y, m: 1 / 0, verbose=False)
    assert not res and "ZeroDivisionError" in res.message


def test_published_numbers_lookup():
    assert table3_value("oxford5k", "T-emb+demo", "max") == 75.8
    assert table3_value("Paris6k", "F-FAemb+demo", "sum") == 85.9
    assert table3_value("default", "T-emb+demo", "max") is None
    assert table5_value("oxford5k", 724, "sum") == 56.4
    assert table6_value("oxford105k", "M_MAX+T-emb+demo", 4096) == 71.4
    assert table6_value("holidays", "R-MAC", 512) is None
    assert table6_value("oxford5k", "siaMAC + M_MAX+T-emb+demo", 1024, finetuned=True) == 81.4
    # every Table 3 block has 6 frameworks x 4 masks, and its best value is T-emb or F-FAemb
    for ds, block in TABLE3.items():
        assert len(block) == 6 and all(len(v) == 4 for v in block.values())
        best = max(block, key=lambda fw: block[fw]["max"])
        assert best in ("T-emb+demo", "F-FAemb+demo")
    assert len(TABLE6) == 22
