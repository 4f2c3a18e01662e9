"""Tests of the full-evaluation drivers of notebooks 06/07 (selconv_lite.experiments.tables, .report,
.splits, .scoring, finetune.training_groups) on small synthetic data and a few real photos; they never
touch the network beyond the offline VGG16."""
from __future__ import annotations

import numpy as np
import pytest

from selconv_lite.experiments import report, splits, tables
from selconv_lite.experiments import finetune as ft
from selconv_lite.data.retrieval import RetrievalDataset
from selconv_lite.core.types import ImageFeatures
from selconv_lite.method.baselines import rmac_regions
from selconv_lite.experiments.report import best_per_column
from selconv_lite.experiments.published import TABLE3, TABLE6, table3_value, table5_value, table6_value


def test_result_table_marks_the_best_of_each_column():
    t = report.ResultTable("T", ["a", "b", "c"], ["x", "y"], [[0.5, np.nan], [0.7, 0.2], [0.7, 0.1]], row_header="fw")
    assert t.best().tolist() == [[False, False], [True, True], [True, False]]
    txt = t.to_text().splitlines()
    assert txt[0] == "T" and txt[1].split() == ["fw", "x", "y"]
    assert txt[2].split() == ["a", "0.500", "-"]
    assert txt[3].split() == ["b", "0.700*", "0.200*"]
    md = t.to_markdown()
    assert "| b | **0.700** | **0.200** |" in md
    assert t.best_overall() == ("b", "x", 0.7)
    assert t.as_dict()["a"] == {"x": 0.5, "y": None}
    with pytest.raises(ValueError, match="do not match"):
        report.ResultTable("T", ["a"], ["x", "y"], [[1.0]])


def test_scaled_max_dim():
    assert tables.scaled_max_dim(1024) == 724
    assert tables.scaled_max_dim(512) == 362


def _synthetic_dataset(n_groups=6, per_group=3, n_train=14, hw=(6, 8), K=512, seed=0):
    """Maps of 'scenes': each group shares a base map, views add noise; queries are other views."""
    rng = np.random.RandomState(seed)

    def scene():
        return np.maximum(rng.randn(*hw, K), 0).astype(np.float32) ** 2

    def view(base, i):
        return np.maximum(base + 0.6 * np.maximum(rng.randn(*base.shape), 0).astype(np.float32), 0)

    db, q, gnd, names = [], [], [], []
    for g in range(n_groups):
        base = scene()
        ids = []
        for v in range(per_group):
            ids.append(len(db))
            db.append(ImageFeatures(view(base, v), (hw[0] * 32, hw[1] * 32), name=f"g{g}_{v}"))
        q.append(ImageFeatures(view(base, 99), (hw[0] * 32, hw[1] * 32), name=f"q{g}"))
        gnd.append({"ok": np.array(ids), "junk": np.array([], int)})
    train = [ImageFeatures(scene(), (hw[0] * 32, hw[1] * 32), name=f"t{i}") for i in range(n_train)]
    ds = RetrievalDataset("synthetic", [f"g{i}.jpg" for i in range(len(db))], [f"q{i}.jpg" for i in range(len(q))],
                          [None] * len(q), gnd, train_images=[f"t{i}.jpg" for i in range(n_train)])
    return ds, {"train": train, "queries": q, "db": db}


def test_table6_rows_baselines_ours_skips_and_published():
    ds, feats = _synthetic_dataset()
    skipped = []
    rows = tables.run_table6(ds, feats, ours=[(512, "none"), (4096, "max")], baselines=("MAC", "GeM"), qe_k=2,
                         skipped=skipped)
    names = [r["method"] for r in rows]
    # 14 held-out images < 512 dimensions: the baselines are not whitened ("auto"), and say so
    assert names == ["MAC (no whitening)", "GeM (no whitening)", "M_NONE+T-emb+demo"]
    assert [r["label"] for r in rows] == ["MAC (L2 only, not whitened, 512-D)", "GeM (L2 only, not whitened, 512-D)",
                                          "M_NONE+T-emb+demo"]
    assert [r.get("whitened") for r in rows] == [False, False, None]
    assert rows[0]["train"] == "train split (14 images)"
    assert "14 held-out images give 14" in rows[0]["whitening"] and "at most 13" in rows[0]["whitening"]
    assert len(skipped) == 1 and "4096-D skipped" in skipped[0] and "masked local features" in skipped[0]
    for r in rows:
        assert 0.9 <= r["mAP"] <= 1.0 and 0 <= r["mAP_qe"] <= 1.0  # easy synthetic scenes
        assert r["published"] is None and r["diff"] is None        # not a paper benchmark
    assert rows[2]["D"] == 512 and rows[0]["D"] == 512
    txt = report.table6_text(rows, "T6")
    assert "M_NONE+T-emb+demo" in txt and "paper" not in txt.splitlines()[1]
    assert "MAC (L2 only, not whitened, 512-D)" in txt and "baselines' whitening:" in txt
    assert "at most 13 dimensions" in txt  # the reason is printed with the table
    # forced whitening refuses (it would keep at most n - 1 = 13 of 512 dimensions)
    with pytest.raises(ValueError, match="MAC\\(whiten=True\\).*at most 13 dimensions"):
        tables.run_table6(ds, feats, ours=[], baselines=("MAC",), qe_k=0, baseline_whitening=True)
    with pytest.raises(ValueError, match="baseline_whitening must be"):
        tables.run_table6(ds, feats, ours=[], baselines=("MAC",), qe_k=0, baseline_whitening="yes")


def test_table6_both_variants_labelled_with_training_set_and_dimension():
    # 30 held-out images of 512 channels: MAC's 30 vectors cannot support a 512-D whitening (its
    # whitened row is skipped with the reason), R-MAC's 30 x 20 = 600 regional vectors can
    ds, feats = _synthetic_dataset(n_train=30)
    skipped = []
    rows = tables.run_table6(ds, feats, ours=[], baselines=("R-MAC", "MAC"), qe_k=0, baseline_whitening="both",
                         skipped=skipped)
    assert [r["label"] for r in rows] == ["R-MAC (L2 only, not whitened, 512-D)", "R-MAC (whitened on train split, 512-D)",
                                          "MAC (L2 only, not whitened, 512-D)"]
    assert rows[1]["train"] == "train split (30 images, 600 regions)" and rows[1]["model"].n_train_vectors_ == 600
    assert all(r["D"] == 512 for r in rows)
    assert len(skipped) == 1 and skipped[0].startswith("MAC whitened skipped") and "at most 29 dimensions" in skipped[0]
    # enough held-out images: both variants are reachable, labelled, with the training set
    ds, feats = _synthetic_dataset(n_train=40, K=32)
    rows = tables.run_table6(ds, feats, ours=[], baselines=("MAC", "R-MAC"), qe_k=0, baseline_whitening="both")
    assert [r["label"] for r in rows] == ["MAC (L2 only, not whitened, 32-D)", "MAC (whitened on train split, 32-D)",
                                          "R-MAC (L2 only, not whitened, 32-D)", "R-MAC (whitened on train split, 32-D)"]
    assert [r["whitened"] for r in rows] == [False, True, False, True]
    n_reg = 40 * len(rmac_regions(6, 8))
    assert rows[1]["train"] == "train split (40 images)" and rows[3]["train"] == f"train split (40 images, {n_reg} regions)"
    assert rows[1]["whitening"] == "PCA-whitening learned on the train split (40 images)"
    assert rows[0]["whitening"].startswith("not whitened (whiten=False)")
    assert not np.allclose(rows[0]["dbvecs"], rows[1]["dbvecs"])
    # the same two variants through "auto" (whitened: 40 > 32) and False
    auto = tables.run_table6(ds, feats, ours=[], baselines=("MAC",), qe_k=0)
    plain = tables.run_table6(ds, feats, ours=[], baselines=("MAC",), qe_k=0, baseline_whitening=False)
    np.testing.assert_array_equal(auto[0]["dbvecs"], rows[1]["dbvecs"])
    np.testing.assert_array_equal(plain[0]["dbvecs"], rows[0]["dbvecs"])


def test_table6_published_difference_for_a_paper_dataset():
    ds, feats = _synthetic_dataset()
    ds.name = "oxford5k"
    # only the whitened 512-D MAC is the paper's (whitened) baseline; L2 only is not compared
    rows = tables.run_table6(ds, feats, ours=[], baselines=("MAC",), qe_k=0, baseline_whitening=False)
    assert rows[0]["published"] is None and rows[0]["diff"] is None
    ds, feats = _synthetic_dataset(n_groups=3, n_train=520, hw=(2, 2))
    ds.name = "oxford5k"
    rows = tables.run_table6(ds, feats, ours=[], baselines=("MAC",), qe_k=0, baseline_whitening=True)
    assert rows[0]["label"] == "MAC (whitened on train split, 512-D)"
    assert rows[0]["published"] == pytest.approx(0.564)
    assert rows[0]["diff"] == pytest.approx(rows[0]["mAP"] - 0.564)
    assert report.table6_text(rows, "T6").splitlines()[1].split()[-2:] == ["paper", "diff"]


def test_table3_image_size_and_layers_drivers():
    ds, feats = _synthetic_dataset(n_train=30)
    t3 = tables.run_table3(ds, feats, D=1024, masks=("none",))
    assert t3.rows == ["FV + avg", "FV + demo", "VLAD + sum", "VLAD + demo", "T-emb + demo", "F-FAemb + demo"]
    assert t3.cols == ["none"] and np.all((t3.values > 0.5) & (t3.values <= 1))
    with pytest.raises(ValueError, match="no Table 3 configuration"):
        tables.run_table3(ds, feats, D=2048)
    t5 = tables.run_image_size(ds, {362: feats, 512: feats}, masks=("max",), D=512)
    assert t5.rows == ["362", "512"] and t5.values[0, 0] == t5.values[1, 0]  # same maps, same seed
    lay = tables.run_layers(ds, {"pool5": feats}, D=512)
    assert list(lay) == ["pool5"] and lay["pool5"] == t5.values[0, 0]


def test_has_enough_features_is_the_pipelines_own_check():
    """The drivers skip a configuration by the pipeline's own pre-fit rule (T-emb whitening of
    D_e dimensions needs D_e - eig_clamp + 1 masked local features), not by a second threshold."""
    from selconv_lite.method.pipeline import SelectiveConvPipeline

    _, feats = _synthetic_dataset(n_train=3)
    pipe = SelectiveConvPipeline.from_preset(D=512, mask="none")
    ok, why = pipe.has_enough_features(feats["train"])
    assert not ok and "144 masked local features" in why and "D=640" in why and "609" in why  # 3 x 48 < 640 - 32 + 1
    with pytest.raises(ValueError, match="144 masked local features"):   # fit refuses it in the same words
        pipe.fit(feats["train"])
    ok, _ = SelectiveConvPipeline(embedding="vlad", d=32, n_centroids=16).has_enough_features(feats["train"])
    assert ok  # no whitening to learn
    ok, why = SelectiveConvPipeline(embedding="vlad", d=32, n_centroids=200).has_enough_features(feats["train"])
    assert not ok and "|C|=200" in why


def test_lazy_maps_and_chunked_transform(tmp_path):
    class FakeCache:
        def __init__(self):
            self.loaded = []

        def load(self, path, crop=None, layer="pool5"):
            self.loaded.append(path)
            return ImageFeatures(np.full((2, 2, 4), float(len(path)), np.float32), (64, 64), name=path)

    class SumModel:
        def transform(self, images):
            return np.stack([im.fmap.sum(axis=(0, 1)) for im in images])

    cache = FakeCache()
    lm = splits.LazyMaps(cache, ["a", "bb", "ccc", "dddd", "eeeee"], None, "pool5")
    assert len(lm) == 5 and cache.loaded == []
    assert lm[1].name == "bb" and isinstance(lm[1:3], splits.LazyMaps) and len(lm[1:3]) == 2
    out = splits.transform_chunked(SumModel(), lm, chunk=2)
    np.testing.assert_array_equal(out[:, 0], [4.0, 8.0, 12.0, 16.0, 20.0])


def test_training_groups_from_manifest(tmp_path):
    (tmp_path / "manifest.csv").write_text(
        "file,role,group,relation,source,transform,region\n"
        't_a_whole.jpg,train,,train,src:a,[],"[0.0, 0.0, 1.0, 1.0]"\n'
        't_a_g2_1.jpg,train,,train,src:a,[],"[0.0, 0.0, 0.5, 0.5]"\n'
        't_a_g3_5.jpg,train,,train,src:a,[],"[0.3333, 0.3333, 0.6667, 0.6667]"\n'
        't_a_g2_4.jpg,train,,train,src:a,[],"[0.5, 0.5, 1.0, 1.0]"\n'
        't_b.jpg,train,,train,src:b,[],"[0.0, 0.0, 1.0, 1.0]"\n')
    names = ("t_a_whole.jpg", "t_a_g2_1.jpg", "t_a_g3_5.jpg", "t_a_g2_4.jpg", "t_b.jpg")
    ds = RetrievalDataset("x", [], [], [], [], train_images=[str(tmp_path / n) for n in names],
                          info={"gnd_path": str(tmp_path / "gnd.pkl")})
    R = ft.training_groups(ds)
    # whole photo contains every tile (match); g2_1 and g2_4 touch at one corner only (no match);
    # the centre ninth overlaps each quarter by 1/4 of its area (unknown); other photo: no match
    assert R.tolist() == [[-1, 1, 1, 1, 0],
                          [1, -1, -1, 0, 0],
                          [1, -1, -1, -1, 0],
                          [1, 0, -1, -1, 0],
                          [0, 0, 0, 0, -1]]
    ds.train_images = [str(tmp_path / "unknown.jpg")]
    assert ft.training_groups(ds) is None
    assert ft.training_groups(RetrievalDataset("y", [], [], [], [])) is None


def test_training_groups_from_paper_regime_manifest(tmp_path):
    """Paper-regime manifest: same object = match, same bare scene = unknown, else no match."""
    (tmp_path / "manifest.csv").write_text(
        "file,role,kind,object,scene\n"
        "tr_box_01.jpg,train,object,box,meadow\n"
        "tr_box_02.jpg,train,object,box,wood\n"
        "tr_leaf_01.jpg,train,object,leaf,meadow\n"
        "tr_scene_meadow_01.jpg,train,scene,,meadow\n"
        "tr_scene_meadow_02.jpg,train,scene,,meadow\n"
        "tr_scene_wood_01.jpg,train,scene,,wood\n")
    names = ("tr_box_01.jpg", "tr_box_02.jpg", "tr_leaf_01.jpg", "tr_scene_meadow_01.jpg",
             "tr_scene_meadow_02.jpg", "tr_scene_wood_01.jpg")
    ds = RetrievalDataset("x", [], [], [], [], train_images=[str(tmp_path / n) for n in names],
                          info={"gnd_path": str(tmp_path / "gnd.pkl")})
    R = ft.training_groups(ds)
    assert R.tolist() == [[-1, 1, 0, 0, 0, 0],
                          [1, -1, 0, 0, 0, 0],
                          [0, 0, -1, 0, 0, 0],
                          [0, 0, 0, -1, -1, 0],
                          [0, 0, 0, -1, -1, 0],
                          [0, 0, 0, 0, 0, -1]]
    # a manifest without object / source labels gives no relation at all
    (tmp_path / "manifest.csv").write_text("file,role\n" + "".join(f"{n},train\n" for n in names))
    assert ft.training_groups(ds) is None


def test_training_groups_of_the_default_set_have_positives():
    from selconv_lite.data.datasets import load_dataset
    ds = load_dataset("default")
    R = ft.training_groups(ds)
    assert R.shape == (len(ds.train_images),) * 2 and (R == R.T).all()
    assert (R == 1).sum(axis=1).max() >= 1 and (R == 1).any(axis=1).sum() >= 30


def test_conv5_layers_from_pool4_equal_the_trunk():
    import torch
    from PIL import Image
    from skimage import data

    from selconv_lite.experiments import finetune as ft
    from selconv_lite.features.backbone import load_vgg16_trunk

    trunk = load_vgg16_trunk("caffe-onnx", device="cpu")
    im = np.asarray(Image.fromarray(data.coffee()).resize((160, 107)))
    x = torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        o = trunk(x, ("conv4_3", "conv5_1", "conv5_2", "pool5"))
    pool4 = [ImageFeatures(o["conv4_3"][0].permute(1, 2, 0).numpy(), im.shape[:2], name="coffee")]
    got = ft.conv5_layers_from_pool4("caffe-onnx", pool4)
    for lay, ref in (("conv5_1", "conv5_1"), ("conv5_2", "conv5_2"), ("conv5_3", "pool5")):
        np.testing.assert_allclose(got[lay][0].fmap, o[ref][0].permute(1, 2, 0).numpy(), rtol=1e-5, atol=1e-4)
    assert list(ft.conv5_layers_from_pool4("caffe-onnx", pool4, ("conv5_1",))) == ["conv5_1"]
    with pytest.raises(ValueError, match="cannot be computed from pool4"):
        ft.conv5_layers_from_pool4("caffe-onnx", pool4, ("conv4_2",))

def test_best_per_column_marks_ties_and_ignores_nan():
    t = np.array([[1.0, 2.0, np.nan], [1.0, 0.5, np.nan], [0.5, 2.0, np.nan]])
    best = best_per_column(t)
    assert best.tolist() == [[True, True, False], [True, False, False], [False, True, False]]
    with pytest.raises(ValueError, match="2-D"):
        best_per_column(np.zeros(3))


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


def test_published_numbers_use_the_one_dataset_name_rule():
    """published.* resolve names with data.datasets.dataset_key (case, -, _, spaces, aliases);
    the paper's Holidays numbers are those of the rotated copy."""
    from selconv_lite.experiments.published import paper_dataset

    assert paper_dataset("Oxford") == paper_dataset("OXFORD-5K") == "oxford5k"
    assert paper_dataset("Holidays Rotated") == paper_dataset("holidays_rotated") == "holidays"
    assert paper_dataset("Paris 106k") == "paris106k"
    assert paper_dataset("R-Oxford5k") is None and paper_dataset("default") is None
    assert table6_value("Oxford-5k", "MAC", 512) == table6_value("oxford5k", "MAC", 512) is not None
