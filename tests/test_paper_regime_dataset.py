"""The paper-regime set's generator (scripts/make_paper_regime_dataset.py, issue 22).

Runs :func:`plan` only: no photo source is needed, and the rules of
docs/dataset_paper_regime.md (counts, label rule, train/test disjointness, no upsampling given
the recorded source sizes) are checked on the plan.
"""
import json

import numpy as np
import pytest

from selconv_lite.data.datasets import load_default
from selconv_lite.data.groundtruth import write_gnd_pickle

from _scripts import load_script



@pytest.fixture(scope="module")
def gen():
    return load_script("scripts/make_paper_regime_dataset.py")


@pytest.fixture(scope="module")
def rows(gen):
    return gen.plan()


def test_plan_is_deterministic(gen, rows):
    again = gen.plan()
    assert json.dumps(again, sort_keys=True) == json.dumps(rows, sort_keys=True)


def test_counts(gen, rows):
    db = [r for r in rows if r["role"] == "db"]
    train = [r for r in rows if r["role"] == "train"]
    assert len(db) == 226 and len(train) == 60
    assert len(gen.TEST_OBJECTS) >= 12
    assert sum(r["is_query"] for r in db) == 5 * len(gen.TEST_OBJECTS) >= 55
    for name in gen.TEST_OBJECTS:
        mine = [r for r in db if r["object"] == name]
        assert len(mine) == 12
        assert sum(r["relation"] in ("easy", "hard") for r in mine) >= 8, name
        assert sum(r["is_query"] for r in mine) == 5
    # every test scene carries several test objects and appears alone (distractors)
    for s in gen.TEST_SCENES:
        objs = {r["object"] for r in db if r["scene"] == s and r["kind"] == "object"}
        assert len(objs) >= 3, s
        assert any(r["kind"] == "scene" and r["scene"] == s for r in db)
    # objects from about a tenth to most of the frame; real second views are used
    sc = [r["obj_scale"] for r in db if r["kind"] == "object"]
    assert min(sc) < 0.12 and max(sc) > 0.6
    assert sum(r["view"] == "second" for r in db) == 8


def test_train_disjoint_from_test_in_objects_and_scenes(gen, rows):
    def photos(role):
        return {p for r in rows if r["role"] == role for p in gen.photos_in(r)}

    assert not photos("train") & photos("db")
    assert not {r["object"] for r in rows if r["role"] == "train"} & set(gen.TEST_OBJECTS)


def test_disjointness_is_enforced(gen, monkeypatch):
    monkeypatch.setattr(gen, "TRAIN_SCENES", gen.TRAIN_SCENES + ["picos"])
    with pytest.raises(AssertionError, match="picos"):
        gen.plan()


def test_label_rule(gen, rows):
    L = gen.label
    assert L(0.39, 0.5, 0.0, 0.0, None) == "junk" and L(1.0, 0.11, 0.0, 0.0, None) == "junk"
    assert L(0.80, 0.25, 0.10, 1.0, None) == "easy"
    assert L(0.79, 0.5, 0.0, 0.0, None) == "hard" and L(1.0, 0.24, 0.0, 0.0, None) == "hard"
    assert L(1.0, 0.5, 0.11, 0.0, None) == "hard" and L(1.0, 0.5, 0.0, 1.1, None) == "hard"
    assert L(1.0, 0.5, 0.0, 0.0, "viewpoint") == "hard"
    assert L(1.0, 0.5, 0.0, 0.0, "illumination") == "easy"
    for r in rows:
        if r["kind"] == "object":
            assert r["relation"] == L(r["visible"], r["obj_scale"], r["tilt"], r["blur"],
                                      r["view_kind"]), r["file"]
        if r["is_query"]:
            assert r["occluder"] is None and r["view"] == "primary" and r["visible"] == 1.0


def test_geometry_helpers(gen):
    src = np.array([[0, 0], [100, 0], [100, 50], [0, 50]], float)
    H = gen.homography(src, src * 0.5 + 7)
    assert gen.max_local_scale(H, 100, 50) == pytest.approx(0.5)
    assert gen.visible_fraction(H, 100, 50, 2, None) == 1.0
    assert gen.visible_fraction(H, 100, 50, 2, [0, 0, 100, 100]) == 0.0
    assert gen.visible_fraction(H, 100, 50, 2, [0, 0, 32, 100]) == pytest.approx(0.5, abs=0.02)


def test_nothing_is_upsampled_given_source_sizes(gen, rows):
    for r in rows:
        W, H = gen.SOURCES[r["scene"]]["size"]
        x0, y0, x1, y1 = r["scene_region"]
        assert (x1 - x0) * W >= gen.OUT_W and (y1 - y0) * H >= gen.OUT_H, r["file"]
        if r["quad"] is not None:
            w, h = gen.SOURCES[r["object_source"]]["size"]
            a, b, c, d = r["object_region"]
            rw, rh = (c - a) * w, (d - b) * h
            Hm = gen.homography([[0, 0], [rw, 0], [rw, rh], [0, rh]], r["quad"])
            assert gen.max_local_scale(Hm, rw, rh, n=9) <= 1.0, r["file"]
            q = np.array(r["quad"])
            assert q.min() >= 0 and q[:, 0].max() <= gen.OUT_W and q[:, 1].max() <= gen.OUT_H
        if r["occluder"]:
            o = r["occluder"]
            w, h = gen.SOURCES[o["source"]]["size"]
            a, b, c, d = o["region"]
            bx = o["box"]
            assert (c - a) * w >= bx[2] - bx[0] + 1 and (d - b) * h >= bx[3] - bx[1] + 1


def test_gnd_loads_with_the_default_loader(gen, rows, tmp_path):
    from PIL import Image

    (tmp_path / "jpg").mkdir()
    for i, r in enumerate(rows):   # distinct bytes: the loader refuses identical train/db files
        Image.new("RGB", (gen.OUT_W, gen.OUT_H), (i % 16 * 16, i // 16 * 12, 128)).save(
            tmp_path / "jpg" / r["file"], "JPEG", quality=75)
    gt = gen.build_gnd(rows)
    write_gnd_pickle(tmp_path / "gnd_default.pkl", gt["imlist"], gt["qimlist"], gt["gnd"],
                     trainlist=gt["trainlist"])
    ds = load_default(root=tmp_path)
    assert len(ds.images) == 226 and len(ds.queries) == 70 and len(ds.train_images) == 60
    assert ds.protocol == "revisited"
    db = [r for r in rows if r["role"] == "db"]
    for qname, g in zip(ds.qimlist, ds.gnd):
        qi = ds.imlist.index(qname)
        assert qi in g["junk"] and qi not in g["easy"] and qi not in g["hard"]
        obj = db[qi]["object"]
        assert {db[i]["object"] for i in np.r_[g["easy"], g["hard"], g["junk"]]} == {obj}
        assert len(g["easy"]) + len(g["hard"]) >= 7
