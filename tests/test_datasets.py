"""Tests of selconv_lite.data.datasets: ground-truth readers on official-format fixtures, the
bring-your-own loader and its errors, benchmark loaders on hand-placed files, the default set."""
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selconv_lite.data import datasets as ds
from selconv_lite.data import groundtruth as gtf
from selconv_lite.data import loaders
from selconv_lite.data import evaluation as ev

from _scripts import load_script

FIX = Path(__file__).parent / "fixtures"


def _img(path, size=(24, 16), color=(120, 30, 200)):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


# ----------------------------------------------------------------------------- readers
def test_read_gnd_mat_oxford():
    gt = gtf.read_gnd_mat(FIX / "gnd_oxford5k.mat")
    assert len(gt["imlist"]) == 5063 and len(gt["gnd"]) == 55
    assert gt["qimlist"][0] == "all_souls_000013"
    assert gt["imlist"][gt["qidx"][0]] == "all_souls_000013"
    # the box is two corners (x1, y1, x2, y2): 512 px wide, not 648.5
    assert gt["gnd"][0]["bbx"] == pytest.approx((136.5, 34.1, 648.5, 955.7))
    # indices are 0-based: the .mat's first ok index is 31
    assert gt["gnd"][0]["ok"][0] == 30 and gt["gnd"][0]["ok"].dtype == np.int64
    assert len(gt["gnd"][0]["ok"]) == 78 and len(gt["gnd"][0]["junk"]) == 33


def test_paris_text_ground_truth_equals_authors_mat():
    mat = gtf.read_gnd_mat(FIX / "gnd_paris6k.mat")
    txt = gtf.read_oxford_paris_gt(FIX / "paris_120310_gt.zip", imlist=mat["imlist"])
    assert txt["qimlist"] == mat["qimlist"]
    assert txt["qnames"][0] == "defense_1"
    for a, b in zip(txt["gnd"], mat["gnd"]):
        assert set(a["ok"]) == set(b["ok"])
        assert set(a["junk"]) == set(b["junk"])
        assert a["bbx"] == pytest.approx(b["bbx"])


def test_oxford_text_prefix_and_corners():
    mat = gtf.read_gnd_mat(FIX / "gnd_oxford5k.mat")
    txt = gtf.read_oxford_paris_gt(FIX / "oxford_gt", imlist=mat["imlist"])
    assert txt["qnames"] == ["all_souls_1", "all_souls_2", "ashmolean_1"]
    # the oxc1_ prefix is gone and names match the image files
    assert txt["qimlist"] == ["all_souls_000013", "all_souls_000026", "ashmolean_000058"]
    for t, m in zip(txt["gnd"], [mat["gnd"][0], mat["gnd"][1], mat["gnd"][5]]):
        assert set(t["ok"]) == set(m["ok"]) and set(t["junk"]) == set(m["junk"])
        assert t["bbx"] == pytest.approx(m["bbx"])
    x1, y1, x2, y2 = txt["gnd"][2]["bbx"]
    assert (x2 - x1, y2 - y1) == pytest.approx((699.8, 221.8))


def test_oxford_text_without_imlist_and_unknown_names(tmp_path):
    txt = gtf.read_oxford_paris_gt(FIX / "oxford_gt")
    assert txt["imlist"] == sorted(txt["imlist"])
    assert "all_souls_000013" in txt["imlist"]
    with pytest.raises(gtf.GroundTruthError, match="not in the database"):
        gtf.read_oxford_paris_gt(FIX / "oxford_gt", imlist=["all_souls_000013"])
    dropped = gtf.read_oxford_paris_gt(FIX / "oxford_gt", imlist=txt["imlist"][:400], unknown="drop")
    assert all(g["ok"].max() < 400 for g in dropped["gnd"])


def test_text_query_file_malformed(tmp_path):
    for kind in ("good", "ok", "junk"):
        (tmp_path / f"q_1_{kind}.txt").write_text("a\n")
    (tmp_path / "q_1_query.txt").write_text("oxc1_a 1 2 3\n")
    with pytest.raises(gtf.GroundTruthError, match="x1 y1 x2 y2"):
        gtf.read_oxford_paris_gt(tmp_path)
    (tmp_path / "q_1_query.txt").write_text("oxc1_a 10 10 5 20\n")
    with pytest.raises(gtf.GroundTruthError, match="x, y, w, h"):
        gtf.read_oxford_paris_gt(tmp_path)


def test_holidays_names_rule_equals_authors_gnd():
    mat = gtf.read_gnd_mat(FIX / "gnd_holidays.mat")
    gt = gtf.holidays_gnd(mat["imlist"])
    assert len(gt["gnd"]) == 500 == len(mat["gnd"])
    np.testing.assert_array_equal(gt["qidx"], mat["qidx"])
    for a, b in zip(gt["gnd"], mat["gnd"]):
        np.testing.assert_array_equal(np.sort(a["ok"]), np.sort(b["ok"]))
        np.testing.assert_array_equal(a["junk"], b["junk"])


def test_ukbench_and_copydays_gnd():
    gt = gtf.ukbench_gnd(12)
    assert gt["gnd"][5]["ok"].tolist() == [4, 5, 6, 7]
    with pytest.raises(gtf.GroundTruthError, match="multiple"):
        gtf.ukbench_gnd(10)
    cd = gtf.copydays_gnd(["200000.jpg", "200100.jpg"], ["crops/10/200100.jpg", "strong/200003.jpg"])
    assert [g["ok"].tolist() for g in cd["gnd"]] == [[1], [0]]
    with pytest.raises(gtf.GroundTruthError, match="no original"):
        gtf.copydays_gnd(["200000.jpg"], ["strong/201003.jpg"])


def test_revisited_pickle_roundtrip_and_protocols(tmp_path):
    p = tmp_path / "gnd_r.pkl"
    gnd = [{"easy": [0, 2], "hard": [3], "junk": [1], "bbx": [1, 2, 10, 12]},
           {"easy": [], "hard": [4], "junk": [], "bbx": None}]
    gtf.write_gnd_pickle(p, [f"im{i}" for i in range(5)], ["qa", "qb"], gnd)
    with open(p, "rb") as f:
        raw = pickle.load(f)
    assert raw["gnd"][0]["easy"] == [0, 2] and raw["gnd"][0]["bbx"] == [1.0, 2.0, 10.0, 12.0]
    gt = gtf.read_gnd_pickle(p)
    assert gt["gnd"][0]["ok"].tolist() == [0, 2, 3]  # Medium = easy + hard
    assert gt["gnd"][1]["bbx"] is None
    ranks = np.array([[3, 0, 1, 2, 4], [4, 0, 1, 2, 3]]).T
    res = ev.evaluate_revisited(ranks, gt["gnd"])
    assert res["hard"]["mAP"] == pytest.approx(1.0)
    assert np.isnan(res["easy"]["aps"][1])  # query b has no easy positive: skipped


# ----------------------------------------------------------------------- bring your own
def _byo(tmp_path, gnd=None, imlist=None, qimlist=None, trainlist=None, make=True):
    imgs = tmp_path / "images"
    imlist = imlist or ["a", "b", "c", "d"]
    qimlist = qimlist or ["q1", "q2"]
    if make:
        for n in imlist + qimlist:
            _img(imgs / f"{n}.jpg", size=(40, 30))
    gnd = gnd if gnd is not None else [{"ok": [0, 1], "junk": [2], "bbx": [0, 0, 20, 10]},
                                       {"ok": [3], "junk": []}]
    p = tmp_path / "gnd.pkl"
    with open(p, "wb") as f:
        pickle.dump({"imlist": imlist, "qimlist": qimlist, "gnd": gnd,
                     **({"trainlist": trainlist} if trainlist else {})}, f)
    return imgs, p


def test_byo_folder_loads(tmp_path):
    imgs, p = _byo(tmp_path)
    tr = tmp_path / "train"
    _img(tr / "t1.png"); _img(tr / "sub" / "t2.jpg")
    d = loaders.load_folder(imgs, p, train_dir=tr)
    assert d.images == [str(imgs / f"{n}.jpg") for n in "abcd"]
    assert d.queries[0].endswith("q1.jpg") and d.query_boxes == [(0.0, 0.0, 20.0, 10.0), None]
    assert len(d.train_images) == 2 and d.protocol == "map"
    assert d.gnd[0]["ok"].tolist() == [0, 1]
    assert "4 database images" in repr(d) and "positives per query" in d.summary()
    # evaluate: perfect vectors
    db = np.eye(4)
    q = np.array([[1, 1, 0, 0], [0, 0, 0, 1.0]])
    res = d.evaluate(q, db)
    assert res["mAP"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="database vectors"):
        d.evaluate(q, db[:3, :3])


def test_byo_trainlist_in_pickle_and_overlap(tmp_path):
    imgs, p = _byo(tmp_path, imlist=["a", "b", "c", "d"], trainlist=["t"])
    _img(imgs / "t.jpg")
    assert loaders.load_folder(imgs, p).train_images == [str(imgs / "t.jpg")]
    imgs, p = _byo(tmp_path, trainlist=["a"])
    with pytest.raises(gtf.GroundTruthError, match="held out"):
        loaders.load_folder(imgs, p)


def test_byo_missing_image(tmp_path):
    imgs, p = _byo(tmp_path)
    os.remove(imgs / "c.jpg")
    with pytest.raises(gtf.GroundTruthError, match=r"missing from .*'c'"):
        loaders.load_folder(imgs, p)


def test_byo_index_out_of_range_with_one_based_hint(tmp_path):
    imgs, p = _byo(tmp_path, gnd=[{"ok": [1, 4], "junk": []}, {"ok": [2], "junk": []}])
    with pytest.raises(gtf.GroundTruthError, match=r"index 4.*1-based"):
        loaders.load_folder(imgs, p)
    imgs, p = _byo(tmp_path, gnd=[{"ok": [0], "junk": [-1]}, {"ok": [2], "junk": []}])
    with pytest.raises(gtf.GroundTruthError, match=r"gnd\[0\]\['junk'\].*index -1"):
        loaders.load_folder(imgs, p)


def test_byo_query_without_positives(tmp_path):
    imgs, p = _byo(tmp_path, gnd=[{"ok": [0], "junk": []}, {"ok": [], "junk": [1]}])
    with pytest.raises(gtf.GroundTruthError, match=r"query 1 \('q2'\) has no positive"):
        loaders.load_folder(imgs, p)
    assert len(loaders.load_folder(imgs, p, allow_empty_positives=True).gnd) == 2


def test_byo_bad_structure_and_boxes(tmp_path):
    imgs, p = _byo(tmp_path, gnd=[{"ok": [0], "junk": []}])
    with pytest.raises(gtf.GroundTruthError, match="'qimlist' has 2 queries but 'gnd' has 1"):
        loaders.load_folder(imgs, p)
    imgs, p = _byo(tmp_path, gnd=[{"junk": []}, {"ok": [1]}])
    with pytest.raises(gtf.GroundTruthError, match="neither 'ok' nor"):
        loaders.load_folder(imgs, p)
    imgs, p = _byo(tmp_path, gnd=[{"ok": [0], "bbx": [0, 0, 500, 10]}, {"ok": [1]}])
    with pytest.raises(gtf.GroundTruthError, match="outside the image"):
        loaders.load_folder(imgs, p)
    imgs, p = _byo(tmp_path, gnd=[{"ok": [0], "bbx": [10, 5, 4, 4]}, {"ok": [1]}])
    with pytest.raises(gtf.GroundTruthError, match="x, y, w, h"):
        loaders.load_folder(imgs, p)
    imgs, p = _byo(tmp_path, gnd=[{"ok": [0.5]}, {"ok": [1]}])
    with pytest.raises(gtf.GroundTruthError, match="not an integer"):
        loaders.load_folder(imgs, p)
    imgs, p = _byo(tmp_path, imlist=["a", "a", "b"])
    with pytest.raises(gtf.GroundTruthError, match="listed twice"):
        loaders.load_folder(imgs, p)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(gtf.GroundTruthError, match="junk.pkl.*pickle"):
        gtf.read_gnd_pickle(tmp_path / "junk.pkl")
    with pytest.raises(gtf.DatasetNotFoundError, match="not found"):
        gtf.read_gnd_pickle(tmp_path / "nope.pkl")
    with pytest.raises(gtf.DatasetNotFoundError, match="image folder"):
        loaders.load_folder(tmp_path / "nope", p)


# --------------------------------------------------------- benchmarks from placed files
def _oxford_root(tmp_path):
    """A hand-placed miniature oxford5k/paris6k/flickr100k tree with the official text gt."""
    root = tmp_path / "data"
    txt = gtf.read_oxford_paris_gt(FIX / "oxford_gt")
    gtdir = root / "oxford5k" / "gt"
    gtdir.mkdir(parents=True)
    for f in (FIX / "oxford_gt").iterdir():
        (gtdir / f.name).write_bytes(f.read_bytes())
    for n in txt["imlist"]:
        _img(root / "oxford5k" / "jpg" / f"{n}.jpg", size=(8, 8))
    for i in range(3):
        _img(root / "paris6k" / "jpg" / "paris" / "eiffel" / f"paris_eiffel_{i:06d}.jpg", (8, 8))
    for i in range(7):
        _img(root / "flickr100k" / f"{i // 4}" / f"img{i}.jpg", (8, 8))
    return root, txt


def test_load_oxford_from_hand_placed_files(tmp_path):
    root, txt = _oxford_root(tmp_path)
    d = ds.load_dataset("oxford5k", root=root)
    assert len(d.images) == len(txt["imlist"]) and len(d.queries) == 3
    assert Path(d.queries[0]).name == "all_souls_000013.jpg"
    assert d.query_boxes[0] == pytest.approx((136.5, 34.1, 648.5, 955.7))
    assert d.train_name == "paris6k" and len(d.train_images) == 3
    assert d.default_max_dim == 1024
    d105 = ds.load_dataset("Oxford105k", root=root)
    assert len(d105.images) == len(d.images) + 7
    assert d105.gnd[0]["ok"].tolist() == d.gnd[0]["ok"].tolist()
    # Paris: the held-out set is Oxford
    with pytest.raises(gtf.DatasetNotFoundError, match="no ground truth"):
        ds.load_dataset("paris6k", root=root)


def test_load_revisited_from_hand_placed_files(tmp_path):
    root, txt = _oxford_root(tmp_path)
    gnd = [{"easy": g["ok"][:3], "hard": g["ok"][3:5], "junk": g["junk"], "bbx": g["bbx"]}
           for g in txt["gnd"]]
    gtf.write_gnd_pickle(root / "roxford5k" / "gnd_roxford5k.pkl", txt["imlist"], txt["qimlist"], gnd)
    d = ds.load_dataset("R-Oxford5k", root=root)
    assert d.protocol == "revisited" and d.has_revisited
    assert d.gnd[0]["ok"].tolist() == list(txt["gnd"][0]["ok"][:5])
    assert d.train_name == "paris6k"


def test_missing_dataset_message_says_what_to_do(tmp_path):
    with pytest.raises(gtf.DatasetNotFoundError, match=r"download_dataset\('oxford5k'.*by hand"):
        ds.load_dataset("oxford5k", root=tmp_path)
    with pytest.raises(KeyError, match="unknown dataset"):
        ds.load_dataset("imagenet", root=tmp_path)


def test_holidays_rotated_and_flickr_train(tmp_path):
    root = tmp_path
    for sub in ("jpg", "rotated"):
        for n in ("100000", "100001", "100100", "100101", "100102"):
            _img(root / "holidays" / sub / f"{n}.jpg", (8, 8))
    for i in range(30):
        _img(root / "flickr100k" / f"{i:03d}.jpg", (8, 8))
    d = ds.load_dataset("holidays", root=root, n_train=5)
    assert [Path(q).name for q in d.queries] == ["100000.jpg", "100100.jpg"]
    assert d.gnd[1]["ok"].tolist() == [3, 4] and d.gnd[1]["junk"].tolist() == [2]
    t1 = d.train_images
    assert len(t1) == 5 and t1 == ds.load_dataset("holidays", root=root, n_train=5).train_images
    assert t1 != ds.load_dataset("holidays", root=root, n_train=5, train_seed=1).train_images
    r = ds.load_dataset("holidays_rotated", root=root, n_train=5)
    assert "rotated" in r.images[0] and r.gnd[1]["ok"].tolist() == [3, 4]
    with pytest.raises(gtf.DatasetNotFoundError, match="only 30"):
        loaders.sample_flickr_train(root, n=100)


def test_a_keyword_typo_raises_instead_of_being_swallowed(tmp_path):
    """The loaders take explicit keywords: a misspelt one is a TypeError naming it, not ignored."""
    for i in range(3):
        _img(tmp_path / "flickr100k" / f"{i:03d}.jpg", (8, 8))
    _img(tmp_path / "holidays" / "jpg" / "100000.jpg", (8, 8))
    _img(tmp_path / "holidays" / "jpg" / "100001.jpg", (8, 8))
    assert len(ds.load_dataset("holidays", root=tmp_path, n_train=2).train_images) == 2
    with pytest.raises(TypeError, match=r"load_dataset\('holidays'\) got unexpected keyword argument\(s\) "
                                        r"n_trian; it accepts n_train, train_seed"):
        ds.load_dataset("holidays", root=tmp_path, n_trian=2)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) max_dim; it accepts none"):
        ds.load_dataset("default", max_dim=512)
    with pytest.raises(TypeError, match="train_seed"):
        ds.load_dataset("oxford5k", root=tmp_path, train_seed=1)
    with pytest.raises(TypeError):
        loaders.load_ukbench("ukbench", tmp_path, n_trian=2)


def test_copydays_and_ukbench_from_placed_files(tmp_path):
    for n in ("200000", "200100"):
        _img(tmp_path / "copydays" / "original" / f"{n}.jpg", (8, 8))
    _img(tmp_path / "copydays" / "crop" / "crops" / "10" / "200100.jpg", (8, 8))
    _img(tmp_path / "copydays" / "jpeg" / "jpegqual" / "3" / "200000.jpg", (8, 8))
    _img(tmp_path / "copydays" / "strong" / "200001.jpg", (8, 8))
    d = ds.load_dataset("copydays", root=tmp_path)
    assert len(d.images) == 2 and len(d.queries) == 3
    assert [g["ok"].tolist() for g in d.gnd] == [[1], [0], [0]]
    for i in range(8):
        _img(tmp_path / "ukbench" / "full" / f"ukbench{i:05d}.jpg", (8, 8))
    u = ds.load_dataset("ukbench", root=tmp_path)
    assert u.protocol == "ukbench" and len(u.queries) == 8
    vecs = np.repeat(np.eye(2), 4, axis=0) + 1e-3 * np.arange(8)[:, None]
    assert u.evaluate(vecs, vecs)["N-S"] == 4.0


# ----------------------------------------------------------------- embedded default set
# data/default is the paper-regime set (issue 22; rules in docs/dataset_paper_regime.md),
# generated by scripts/make_paper_regime_dataset.py. Its plan is tested without the photo
# sources in tests/test_paper_regime_dataset.py; here the committed files are checked.
REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO / "data" / "default"


@pytest.fixture(scope="module")
def _generator():
    return load_script("scripts/make_paper_regime_dataset.py")


def _manifest():
    import csv
    with open(DEFAULT / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_default_dataset_loads_and_is_consistent():
    d = ds.load_dataset("default")
    assert d.name == "default" and d.default_max_dim == ds.DEFAULT_MAX_DIM == 1024 and d.protocol == "revisited"
    # issue 22: at least 11 objects x 5 queries (Oxford's 55), each object in >= 8 database images
    assert len(d.queries) == len(d.gnd) >= 55
    assert len(d.images) >= 200 and 50 <= len(d.train_images) <= 130
    # held-out: no training image is a database or query image
    assert not set(d.train_images) & set(d.images + d.queries)
    for g in d.gnd:
        assert len(g["easy"]) + len(g["hard"]) >= 7 and len(g["junk"]) >= 1  # the query itself is junk
    assert all(b is not None for b in d.query_boxes)
    # every image has the paper's long side: 1024 x 768, rendered from at least as many pixels
    for p in d.images + d.train_images:
        with Image.open(p) as im:
            assert im.size == (1024, 768), p.name
    size = sum(p.stat().st_size for p in (REPO / "data").rglob("*") if p.is_file())
    assert size <= 40e6  # the whole data/ folder


def test_default_dataset_gnd_regenerates_from_plan(_generator):
    """Regenerating the ground truth from the seeded plan (no photo source needed) gives the
    committed pickle, and the committed manifest lists the planned images."""
    rows = _generator.plan()
    assert [r["file"] for r in _manifest()] == [r["file"] for r in rows]
    regenerated = _generator.build_gnd(rows)
    with open(DEFAULT / "gnd_default.pkl", "rb") as f:
        stored = pickle.load(f)
    for k in ("imlist", "qimlist", "trainlist"):
        assert list(regenerated[k]) == list(stored[k]), k
    for a, b in zip(regenerated["gnd"], stored["gnd"]):
        for k in ("easy", "hard", "junk"):
            assert list(a[k]) == list(b[k])
        assert a["bbx"] == pytest.approx(b["bbx"])


def test_default_dataset_manifest_proves_nothing_is_upsampled():
    """Issue 22's 'done when': 0 images upsampled at max_dim 1024. The manifest's sizes are the
    files' sizes; the background crop and every pasted object are down-sampled or native."""
    rows = _manifest()
    files = {p.name for p in (DEFAULT / "jpg").glob("*.jpg")}
    assert files == {r["file"] for r in rows}
    for r in rows:
        with Image.open(DEFAULT / "jpg" / r["file"]) as im:
            assert im.size == (int(r["width"]), int(r["height"])) == (1024, 768), r["file"]
        assert float(r["scale_at_1024"]) == 1.0 and r["upsampled_at_1024"] == "no", r["file"]
        assert float(r["scene_resample"]) <= 1.0, r["file"]
        if r["object_resample"]:
            assert float(r["object_resample"]) <= 1.0, r["file"]


def test_default_dataset_licence_record_covers_every_image(_generator):
    rows = _manifest()
    text = (DEFAULT / "LICENSES.md").read_text()
    for r in rows:
        assert r["licences"] and r["photos"], r["file"]
        for photo in r["photos"].split():
            assert photo in _generator.SOURCES, (r["file"], photo)
    for key in {p for r in rows for p in r["photos"].split()}:
        src = _generator.SOURCES[key]
        assert src["author"] and src["licence"]
        assert src["author"] in text, key


def test_first_set_generator_size_summary_counts(tmp_path):
    """The printed summary counts native and upsampled images from the manifest columns."""
    gen = load_script("scripts/make_default_dataset.py")
    rows = [{"role": "db", "width": 1024, "height": 768, "scale_at_1024": 1.0},
            {"role": "db", "width": 512, "height": 300, "scale_at_1024": 2.0},
            {"role": "query", "width": 300, "height": 400, "scale_at_1024": 2.56},
            {"role": "train", "width": 700, "height": 1000, "scale_at_1024": 1.024}]
    text = gen.size_summary(rows)
    assert "all: 4 images, 1 native (long side 1024), 3 upsampled by the extractor at 1024" in text
    assert "db: 2 images, 1 native (long side 1024), 1 upsampled" in text
    assert "1 by x1-1.25, 0 by x1.25-1.5, 1 by x1.5-2, 1 by x2-3, 0 by > x3" in text
    assert "at max_dim 512: 2 downsized, 1 kept, 1 upsampled" in text
    assert gen.size_columns((1024, 700), (4000, 3000))["upsampled_at_1024"] == "no"
    assert gen.size_columns((500, 700), (500, 700))["upsampled_at_1024"] == "yes x1.46"


def test_default_dataset_images_regenerate_when_sources_installed(_generator):
    """With the Debian photo packages installed, re-rendering a few planned rows gives the committed
    images up to the JPEG encoding (SELCONV_PHOTO_ROOTS: extra roots, ':'-separated, for unpacked
    .deb folders)."""
    roots = [Path(p) for p in os.environ.get("SELCONV_PHOTO_ROOTS", "").split(":") if p] + [Path("/")]
    rows = _generator.plan()
    pick = [rows[0], rows[len(rows) // 2], rows[-1]]
    needed = {k for r in pick for k in _generator.photos_in(r)}
    if not all(any((root / _generator.SOURCES[k]["path"]).is_file() for root in roots) for k in needed):
        pytest.skip("photo sources not installed (see docs/dataset_paper_regime.md, 'Sources')")
    for r in pick:
        new = np.asarray(_generator.render_row(r, lambda k: _generator.load_photo(k, roots)), dtype=np.float64)
        with Image.open(DEFAULT / "jpg" / r["file"]) as im:
            old = np.asarray(im.convert("RGB"), dtype=np.float64)
        assert new.shape == old.shape
        assert np.abs(new - old).mean() < 3.0, r["file"]  # only the JPEG encoding differs
