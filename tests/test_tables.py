"""The Table 3 driver of notebooks 04-06 (selconv_lite.experiments.tables): one implementation
serves the small tables of notebook 04 and the full evaluation's ``run_table3``; every table keeps
the per-query APs of its mAPs, for paired intervals between any two entries."""
from __future__ import annotations

import time

import numpy as np

from selconv_lite.data.retrieval import RetrievalDataset
from selconv_lite.experiments import report, tables
from selconv_lite.experiments.scoring import fit_evaluate, fit_evaluate_model, mean_ap, score
from selconv_lite.experiments.tables import FRAMEWORKS, table3
from selconv_lite.method.baselines import make_baseline
from selconv_lite.method.pipeline import SelectiveConvPipeline
from test_full_eval import _synthetic_dataset


def test_table3_is_the_full_evaluation_table3():
    ds, feats = _synthetic_dataset(n_train=30)
    small = table3(ds, feats, ("none",), tables.TABLE3_CONFIGS[1024])
    full = tables.run_table3(ds, feats, D=1024, masks=("none",))
    assert list(small) == [label for label, _, _ in FRAMEWORKS] == full.rows
    np.testing.assert_array_equal([[small[r]["none"]] for r in full.rows], full.values)
    # the T-emb row is the plain fit + evaluate of the same pipeline
    d, k = tables.TABLE3_CONFIGS[1024]["temb"]
    pipe, m = fit_evaluate(ds, feats, mask="none", embedding="temb", d=d, n_centroids=k)
    assert m == small["T-emb + demo"]["none"]
    q, db = pipe.transform(feats["queries"]), pipe.transform(feats["db"])
    assert mean_ap(ds, q, db) == m == ds.evaluate(q, db)["mAP"]
    # the per-query APs of every cell, the same in both, averaging to the cell's mAP
    assert isinstance(small, report.MAPDict) and list(small.aps) == full.rows == list(full.aps)
    for i, r in enumerate(full.rows):
        a_small, a_full = small.aps[r]["none"], full.aps[r]["none"]
        assert a_small.shape == (len(ds.queries),)
        np.testing.assert_array_equal(a_small, a_full)
        assert abs(a_full.mean() - full.values[i, 0]) <= 1e-12
    np.testing.assert_array_equal(small.aps["T-emb + demo"]["none"], ds.evaluate(q, db)["aps"])


def _revisited(ds):
    """``ds`` with Easy / Hard ground truth as well: the first positive of each query is easy, the
    others hard; the last query has no hard positive (AP NaN under Hard)."""
    gnd = []
    for g in ds.gnd:
        ok = np.asarray(g["ok"])
        gnd.append({**g, "easy": ok[:1], "hard": ok[1:]})
    gnd[-1]["hard"] = np.array([], int)
    gnd[-1]["ok"] = gnd[-1]["easy"]
    return RetrievalDataset(ds.name, ds.images, ds.queries, ds.query_boxes, gnd, train_images=ds.train_images)


def test_score_returns_per_query_aps_whose_mean_is_the_map():
    ds, feats = _synthetic_dataset()
    rds = _revisited(ds)
    rng = np.random.default_rng(0)
    q, db = rng.normal(size=(len(ds.queries), 8)), rng.normal(size=(len(ds.images), 8))
    s = score(rds, q, db)
    assert s["aps"].shape == (len(ds.queries),) and abs(s["aps"].mean() - s["mAP"]) <= 1e-12
    for p in ("easy", "medium", "hard"):
        assert s[f"{p}_aps"].shape == (len(ds.queries),)
        assert abs(np.nanmean(s[f"{p}_aps"]) - s[p]) <= 1e-12
    assert np.isnan(s["hard_aps"][-1]) and not np.isnan(s["hard_aps"][:-1]).any()
    # the classic protocol only: no revisited keys
    assert set(score(ds, q, db)) == {"mAP", "aps", "ranks"}
    # fit_evaluate_model carries them through, with and without query expansion
    r = fit_evaluate_model(make_baseline("MAC", False), rds, feats, qe_k=2)
    for suffix in ("", "_qe"):
        key = "mAP" if not suffix else "mAP_qe"
        assert abs(r[f"aps{suffix}"].mean() - r[key]) <= 1e-12
        for p in ("easy", "medium", "hard"):
            assert abs(np.nanmean(r[f"{p}_aps{suffix}"]) - r[f"{p}{suffix}"]) <= 1e-12
    assert not np.array_equal(r["aps"], r["aps_qe"]) or r["mAP"] == r["mAP_qe"]


def test_every_table_keeps_the_per_query_aps_of_its_maps():
    ds, feats = _synthetic_dataset(n_train=30)
    n = len(ds.queries)
    t5 = tables.run_image_size(ds, {362: feats, 512: feats}, masks=("max", "none"), D=512)
    assert list(t5.aps) == t5.rows and all(list(t5.aps[r]) == t5.cols for r in t5.rows)
    for i, r in enumerate(t5.rows):
        for j, c in enumerate(t5.cols):
            assert t5.aps[r][c].shape == (n,) and abs(t5.aps[r][c].mean() - t5.values[i, j]) <= 1e-12
    # the same maps at two "sizes": identical cells, and the paired line says so
    line = report.paired_line(t5.aps["362"]["M_MAX"], t5.aps["512"]["M_MAX"], "362 px", "512 px")
    assert line.startswith("362 px - 512 px = +0.000 mAP") and line.endswith(": no detectable difference")
    lay = tables.run_layers(ds, {"pool5": feats, "again": feats}, D=512)
    assert isinstance(lay, report.MAPDict) and list(lay.aps) == ["pool5", "again"]
    np.testing.assert_array_equal(lay.aps["pool5"], t5.aps["362"]["M_MAX"])
    assert all(abs(lay.aps[k].mean() - lay[k]) <= 1e-12 for k in lay)
    rows = tables.run_table6(ds, feats, ours=[(512, "none")], baselines=("MAC",), qe_k=2)
    for r in rows:
        assert abs(r["aps"].mean() - r["mAP"]) <= 1e-12 and abs(r["aps_qe"].mean() - r["mAP_qe"]) <= 1e-12
    pipe = SelectiveConvPipeline.from_preset(D=512, mask="max", random_state=0).fit(feats["train"])
    q, db = (tables.explained_vectors(pipe, feats[k]) for k in ("queries", "db"))
    sweep = tables.alpha_sweep(ds, q, db, [0.3, 1.0])
    assert isinstance(sweep, report.MAPList) and len(sweep.aps) == 2
    assert all(abs(a.mean() - m) <= 1e-12 for a, m in zip(sweep.aps, sweep))
    # a table built from numbers only has no per-query APs, and compares as before
    t = report.ResultTable("T", ["a"], ["x"], [[0.5]])
    assert t.aps == {} and t == report.ResultTable("T", ["a"], ["x"], [[0.5]], aps={"a": {"x": np.ones(3)}})


def test_paired_line_on_70_queries_takes_well_under_a_second():
    rng = np.random.default_rng(2)
    a = rng.beta(2, 2, 70)
    b = np.clip(a - 0.04 + rng.normal(0, 0.03, 70), 0, 1)
    report.paired_line(a, b)  # warm-up (scipy's first call)
    t0 = time.perf_counter()
    line = report.paired_line(a, b, "M_MAX", "none")
    assert time.perf_counter() - t0 < 1.0
    assert line.endswith(": M_MAX better") and "(permutation, 70 queries)" in line
