"""Tests of selconv_lite.data.evaluation against the authors' MATLAB code (tests/golden/h_eval.mat)."""
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from selconv_lite.data import evaluation as ev

GOLDEN = Path(__file__).parent / "golden" / "h_eval.mat"


@pytest.fixture(scope="module")
def h():
    return sio.loadmat(GOLDEN)


def _gnd(struct):
    """Matlab gnd struct array (1-based) -> list of dicts (0-based)."""
    out = []
    for i in range(struct.shape[0]):
        out.append({
            "ok": np.asarray(struct["ok"][i, 0], dtype=np.int64).ravel() - 1,
            "junk": np.asarray(struct["junk"][i, 0], dtype=np.int64).ravel() - 1,
        })
    return out


def test_compute_map_equals_golden(h):
    ranks = h["ranks"].astype(np.int64) - 1
    m, aps = ev.compute_map(ranks, _gnd(h["gnd"]))
    np.testing.assert_allclose(aps, h["aps"].ravel(), rtol=0, atol=1e-14)
    assert m == pytest.approx(h["map"].item(), abs=1e-14)


def test_compute_map_truncated_ranks_equals_golden(h):
    ranks = h["ranks_top6"].astype(np.int64) - 1
    assert ranks.shape[0] == 6
    m, aps = ev.compute_map(ranks, _gnd(h["gnd"]))
    np.testing.assert_allclose(aps, h["aps_top6"].ravel(), rtol=0, atol=1e-14)
    assert m == pytest.approx(h["map_top6"].item(), abs=1e-14)


def test_rank_by_inner_product_ties_equal_yael_nn(h):
    xdb, qv = h["xdb"], h["qv"]  # (D, nb), (D, nq)
    ranks = ev.rank_by_inner_product(qv.T, xdb.T)
    np.testing.assert_array_equal(ranks, h["ranks_ties"].astype(np.int64) - 1)
    m, aps = ev.compute_map(ranks, _gnd(h["gnd_ties"]))
    np.testing.assert_allclose(aps, h["aps_ties"].ravel(), atol=1e-14)
    assert m == pytest.approx(h["map_ties"].item(), abs=1e-14)


def test_rank_by_inner_product_float32_ties_and_truncation():
    db = np.array([[1, 0], [0, 1], [1, 0], [0.5, 0.5]], np.float32)
    q = np.array([[1, 0]], np.float32)
    r = ev.rank_by_inner_product(q, db)
    assert r.shape == (4, 1) and r.dtype == np.int64
    assert r[:, 0].tolist() == [0, 2, 3, 1]
    assert ev.rank_by_inner_product(q, db, k=2)[:, 0].tolist() == [0, 2]


def test_rank_dimension_mismatch_is_clear():
    with pytest.raises(ValueError, match="dimension"):
        ev.rank_by_inner_product(np.zeros((2, 3)), np.zeros((4, 5)))


def test_compute_map_rejects_transposed_ranks(h):
    ranks = h["ranks"].astype(np.int64) - 1
    with pytest.raises(ValueError, match="transpose"):
        ev.compute_map(ranks.T, _gnd(h["gnd"]))


def test_ukbench_score_equals_ukb_recall(h):
    xu = h["xu"]
    ranks = ev.rank_by_inner_product(xu.T, xu.T, k=4)
    np.testing.assert_array_equal(ranks, h["ranks_ukb"].astype(np.int64) - 1)
    assert ev.ukbench_score(ranks) == pytest.approx(h["recall_ukb"].item(), abs=1e-14)


def test_ukbench_perfect_and_partial_score():
    # 2 groups of 4; every query retrieves its own group in the top 4
    perfect = np.stack([np.arange(4) + 4 * (i // 4) for i in range(8)], axis=1)
    assert ev.ukbench_score(perfect) == 4.0
    # swap one member of query 0's list for a member of the other group
    partial = perfect.copy()
    partial[3, 0] = 5
    assert ev.ukbench_score(partial) == pytest.approx((3 + 4 * 7) / 8)


def test_ap_hand_computed():
    # positives at 0-based positions 0 and 2 of 2 positives: (1+1)/2/2 + (1/2+2/3)/2/2
    ranks = np.array([[5, 1, 7, 3]]).T
    m, aps = ev.compute_map(ranks, [{"ok": np.array([5, 7]), "junk": np.array([], int)}])
    assert aps[0] == pytest.approx(0.5 + (0.5 + 2 / 3) / 4)
    # a junk at position 1 moves the second positive to position 1 -> AP 1
    m, aps = ev.compute_map(ranks, [{"ok": np.array([5, 7]), "junk": np.array([1])}])
    assert aps[0] == pytest.approx(1.0)


def test_revisited_protocols_and_precision():
    # database ranking for one query: e=easy, h=hard, j=junk, n=negative
    #   pos: 0:h 1:n 2:e 3:j 4:e 5:n
    ranks = np.array([[10, 11, 12, 13, 14, 15]]).T
    g = [{"easy": np.array([12, 14]), "hard": np.array([10]), "junk": np.array([13])}]
    res = ev.evaluate_revisited(ranks, g, kappas=(1, 5, 10))
    # easy: hard(10) becomes junk -> easy at adjusted positions 1 and 2
    ap_easy = ev.compute_ap(np.array([1, 2]), 2)
    assert res["easy"]["mAP"] == pytest.approx(ap_easy)
    # medium: positives 10, 12, 14 at positions 0, 2, 3 (junk 13 before 14)
    assert res["medium"]["mAP"] == pytest.approx(ev.compute_ap(np.array([0, 2, 3]), 3))
    # hard: only 10 at position 0
    assert res["hard"]["mAP"] == pytest.approx(1.0)
    assert res["hard"]["mP@1"] == 1.0
    # medium P@5: 1-based positions 1,3,4 -> kq = min(4, 5) = 4 -> 3/4
    assert res["medium"]["mP@5"] == pytest.approx(0.75)
    assert res["medium"]["mP@1"] == 1.0
    assert res["easy"]["mP@1"] == 0.0


def test_revisited_skips_queries_without_positives():
    ranks = np.array([[0, 1, 2], [0, 1, 2]]).T
    g = [{"easy": np.array([0]), "hard": np.array([], int), "junk": np.array([], int)},
         {"easy": np.array([1]), "hard": np.array([2]), "junk": np.array([], int)}]
    res = ev.evaluate_revisited(ranks, g)
    assert np.isnan(res["hard"]["aps"][0])
    assert res["hard"]["mAP"] == pytest.approx(ev.compute_ap(np.array([1]), 1))  # easy 1 is junk here


def test_revisited_needs_easy_hard():
    with pytest.raises(KeyError, match="easy"):
        ev.revisited_gnd([{"ok": np.array([0])}], "easy")
    with pytest.raises(ValueError, match="protocol"):
        ev.revisited_gnd([{"easy": [0], "hard": [], "junk": []}], "medium-rare")


def test_average_query_expansion():
    rng = np.random.default_rng(0)
    db = rng.normal(size=(20, 8))
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    q = db[[3, 7]] + 0.01
    qe = ev.average_query_expansion(q, db, k=5)
    ranks = ev.rank_by_inner_product(q, db)
    expected = (q + db[ranks[:5].T].sum(axis=1)) / 6
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(qe, expected, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(qe, axis=1), 1.0)
    np.testing.assert_array_equal(ev.average_query_expansion(q, db, k=0), q)


def test_evaluate_classic_and_revisited():
    db = np.eye(4)
    q = np.array([[1.0, 0.1, 0, 0]])
    res = ev.evaluate(q, db, [{"ok": np.array([0]), "junk": np.array([], int)}])
    assert res["mAP"] == 1.0 and res["ranks"][:, 0].tolist() == [0, 1, 2, 3]
    res = ev.evaluate(q, db, [{"ok": np.array([0, 1]), "junk": np.array([], int),
                               "easy": np.array([0]), "hard": np.array([1])}])
    assert res["hard"]["mAP"] == pytest.approx(1.0)
    assert res["mAP"] == 1.0


# ------------------------------------------------------------------------------ plotting
def test_plot_query_results_marks_correct_junk_wrong(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from PIL import Image

    from selconv_lite.data.retrieval import RetrievalDataset
    from selconv_lite.viz.ranked_lists import label_results, plot_query_results

    paths = []
    for i in range(5):
        p = tmp_path / f"im{i}.jpg"
        Image.new("RGB", (40, 30), (50 * i, 20, 20)).save(p)
        paths.append(str(p))
    gnd = [{"ok": np.array([1, 3]), "junk": np.array([2])}]
    d = RetrievalDataset("toy", paths[1:], [paths[0]], [(2, 2, 30, 20)],
                         [{"ok": np.array([0, 2]), "junk": np.array([1])}])
    assert label_results([1, 2, 0, 3], gnd[0]) == ["correct", "junk", "wrong", "correct"]
    ranks = np.array([[1, 0, 3, 2]]).T
    fig = plot_query_results(d, ranks, 0, k=3, sims=np.array([[0.9, 0.8, 0.7, 0.1]]))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "query"
    assert titles[1].startswith("#1 junk") and titles[2].startswith("#2 correct")
    assert titles[3].startswith("#3 wrong")
    assert "AP" in fig._suptitle.get_text()
    fig.savefig(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0
    with pytest.raises(IndexError):
        plot_query_results(d, ranks, 3)
