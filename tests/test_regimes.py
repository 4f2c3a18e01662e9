"""Tests of selconv_lite.experiments.regimes (image sizes side by side) on a tiny dataset of
synthetic pool5 maps: the record's structure, the masks' kept fractions, agreement with the
full-evaluation drivers, and the refusal of records of other data or of broken files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from selconv_lite.core.types import ImageFeatures
from selconv_lite.data.retrieval import RetrievalDataset
from selconv_lite.experiments import tables
from selconv_lite.experiments import regimes as rg


def _scenes(rng, n_groups, per_group, n_train, hw, K=512):
    """Each group shares a sparse base map; views add noise; queries are one more view."""
    def scene():
        return np.maximum(rng.randn(*hw, K), 0).astype(np.float32) ** 2

    def view(base):
        return np.maximum(base + 0.6 * np.maximum(rng.randn(*base.shape), 0).astype(np.float32), 0)

    size = (hw[0] * 32, hw[1] * 32)
    db, q = [], []
    for g in range(n_groups):
        base = scene()
        db += [ImageFeatures(view(base), size, name=f"g{g}_{v}") for v in range(per_group)]
        q.append(ImageFeatures(view(base), size, name=f"q{g}"))
    train = [ImageFeatures(scene(), size, name=f"t{i}") for i in range(n_train)]
    return {"train": train, "queries": q, "db": db}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A dataset whose files exist (for its identity) and synthetic maps at two sizes."""
    root = tmp_path_factory.mktemp("tiny")
    n_groups, per_group, n_train = 5, 3, 40
    names = {"db": [f"g{g}_{v}.jpg" for g in range(n_groups) for v in range(per_group)],
             "q": [f"q{g}.jpg" for g in range(n_groups)], "train": [f"t{i}.jpg" for i in range(n_train)]}
    for i, n in enumerate(n for v in names.values() for n in v):
        (root / n).write_bytes(f"image {i}".encode())
    (root / "manifest.csv").write_text("file,role\nq0.jpg,query\n")
    gnd = [{"ok": np.arange(g * per_group, (g + 1) * per_group), "junk": np.array([], int)} for g in range(n_groups)]
    ds = RetrievalDataset("tiny", [root / n for n in names["db"]], [root / n for n in names["q"]],
                          [None] * n_groups, gnd, train_images=[root / n for n in names["train"]],
                          info={"gnd_path": str(root / "gnd.pkl")})
    rng = np.random.RandomState(0)
    # 512 px: 6 x 8 = 48 cells (< K = 512); 1024 px: 24 x 32 = 768 cells (> K)
    feats = {512: _scenes(rng, n_groups, per_group, n_train, (6, 8)),
             1024: _scenes(rng, n_groups, per_group, n_train, (24, 32))}
    rec = rg.run_regimes(ds, max_dims=(512, 1024), dims=(512,), masks=("max", "sum", "none"),
                         baselines=("mac", "rmac"), progress=False, features=feats)
    return ds, feats, rec, root


def test_record_structure_and_identity(tiny):
    ds, feats, rec, root = tiny
    assert rec["format"] == rg.RECORD_FORMAT and list(rec["sizes"]) == ["512", "1024"]
    ident = rec["identity"]
    assert ident["dataset"] == "tiny" and ident["n_images"] == 15 + 5 + 40
    assert len(ident["images_sha256"]) == 64 and len(ident["manifest_sha256"]) == 64
    assert ident["weights"].startswith("caffe-onnx-")
    env = rec["environment"]
    for k in ("package_version", "git_describe", "command", "date_utc", "cpu", "threads", "finished_utc"):
        assert k in env
    assert env["threads"]["torch"] >= 1
    assert rec["config"]["baselines"] == ["MAC", "R-MAC"] and rec["config"]["dims"] == [512]
    for s, hw in (("512", 48), ("1024", 768)):
        e = rec["sizes"][s]
        assert e["cells_mean"] == hw == e["cells_min"] == e["cells_max"] and e["K"] == 512
        assert set(e["kept_percent"]) == {"max", "sum", "none"} and e["kept_percent"]["none"] == 100.0
        assert set(e["mAP"]) == {"max", "sum", "none"}
        assert all(0 < e["mAP"][m]["512"] <= 1 for m in e["mAP"])
        assert set(e["baselines"]) == {"MAC", "R-MAC"}
        assert e["extraction"]["seconds"] is None and "not extracted" in e["extraction"]["cache"]["state"]
    json.dumps(rec)  # JSON-able as written by the command line


def test_kept_percent_of_sum_and_max(tiny):
    ds, feats, rec, _ = tiny
    for s in (512, 1024):
        e = rec["sizes"][str(s)]
        db = feats[s]["db"]
        # SUM keeps the cells at or above the median channel sum: half, plus ties at the median
        ties = [np.sum(np.isclose(f.fmap.sum(2), np.median(f.fmap.sum(2)))) / f.fmap[..., 0].size for f in db]
        assert 50.0 <= e["kept_percent"]["sum"] <= 50.0 + 100 * max(ties) + 100 / db[0].fmap[..., 0].size
        # MAX keeps one argmax cell per channel: at most min(1, K / (W H)) of the cells
        bound = min(1.0, 512 / (db[0].fmap.shape[0] * db[0].fmap.shape[1]))
        assert 0 < e["kept_percent"]["max"] <= 100 * bound + 1e-9
    assert rec["sizes"]["1024"]["kept_percent"]["max"] <= 100 * 512 / 768
    # more cells than channels: MAX becomes selective, as in the paper's Fig. 2a
    assert rec["sizes"]["1024"]["kept_percent"]["max"] < rec["sizes"]["512"]["kept_percent"]["max"]


def test_entries_equal_the_full_evaluation_drivers(tiny):
    ds, feats, rec, _ = tiny
    for s in (512, 1024):
        t5 = tables.run_image_size(ds, {s: feats[s]}, masks=("max", "sum", "none"), D=512, seed=0)
        got = [rec["sizes"][str(s)]["mAP"][m]["512"] for m in ("max", "sum", "none")]
        np.testing.assert_allclose(got, t5.values[0], rtol=0, atol=1e-12)
        rows = tables.run_table6(ds, feats[s], ours=(), baselines=("MAC", "R-MAC"), qe_k=0)
        for r in rows:
            name = r["method"].replace(" (no whitening)", "")
            b = rec["sizes"][str(s)]["baselines"][name]
            assert b["mAP"] == pytest.approx(r["mAP"], abs=1e-12) and b["label"] == r["label"]


def test_load_regimes_round_trip_and_refusals(tiny, tmp_path):
    ds, feats, rec, root = tiny
    path = tmp_path / "regimes.json"
    path.write_text(json.dumps(rec))
    back = rg.load_regimes(path, ds)
    assert back["sizes"]["512"]["mAP"] == rec["sizes"]["512"]["mAP"]
    assert "max_dim (px)" in rg.regimes_table(back) and "kept % M_MAX" in rg.regimes_table(back)

    # another dataset identity: both identities named
    other = dict(rec, identity=dict(rec["identity"], images_sha256="0" * 64, dataset="oxford5k"))
    path.write_text(json.dumps(other))
    with pytest.raises(ValueError, match="measured on other data") as e:
        rg.load_regimes(path, ds)
    assert "dataset=oxford5k" in str(e.value) and "dataset=tiny" in str(e.value)
    assert rec["identity"]["images_sha256"] in str(e.value)

    # a changed image file changes the identity
    path.write_text(json.dumps(rec))
    (root / "g0_0.jpg").write_bytes(b"another image")
    try:
        with pytest.raises(ValueError, match="measured on other data"):
            rg.load_regimes(path, ds)
    finally:
        (root / "g0_0.jpg").write_bytes(b"image 0")
    rg.load_regimes(path, ds)

    # other weights
    with pytest.raises(ValueError, match="other weights.*caffe-onnx"):
        rg.load_regimes(path, ds, weights="torchvision")

    # truncated / garbled / incomplete files
    text = json.dumps(rec)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"regimes\.json: not a regimes record: the file is truncated"):
        rg.load_regimes(path, ds)
    path.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ValueError, match="truncated or not JSON"):
        rg.load_regimes(path, ds)
    path.write_text(json.dumps({k: v for k, v in rec.items() if k != "sizes"}))
    with pytest.raises(ValueError, match="key 'sizes' is missing"):
        rg.load_regimes(path, ds)
    broken = json.loads(text)
    del broken["sizes"]["1024"]["kept_percent"]
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="size 1024 has no 'kept_percent'"):
        rg.load_regimes(path, ds)
    with pytest.raises(FileNotFoundError, match="no regimes record"):
        rg.load_regimes(tmp_path / "absent.json", ds)


def test_bad_arguments_and_cache_state(tiny, tmp_path):
    ds, feats, _, _ = tiny
    with pytest.raises(ValueError, match="unknown mask 'median'"):
        rg.run_regimes(ds, masks=("median",), features=feats)
    with pytest.raises(ValueError, match="unknown baseline 'netvlad'"):
        rg.run_regimes(ds, baselines=("netvlad",), features=feats)
    with pytest.raises(ValueError, match="max_dims must be positive"):
        rg.run_regimes(ds, max_dims=(0,), features=feats)
    # an empty cache folder: every entry the extraction needs is missing
    state = rg._cache_state(ds, 1024, tmp_path / "cache", "caffe-onnx")
    assert state == {"entries": 60, "cached_before": 0, "state": "cold"}


def test_unlearnable_configuration_is_reported_not_nan(tiny):
    ds, feats, _, _ = tiny
    small = {k: (v[:3] if k == "train" else v) for k, v in feats[512].items()}
    rec = rg.run_regimes(ds, max_dims=(512,), dims=(512,), masks=("max",), baselines=("mac",), progress=False,
                         features={512: small})
    e = rec["sizes"]["512"]
    assert e["mAP"]["max"]["512"] is None and e["aps"]["max"]["512"] is None
    assert rg.recorded_aps(rec, 512, "max", D=512) is None
    assert len(e["skipped"]) == 1 and "M_MAX+T-emb+demo 512-D" in e["skipped"][0] and "masked local features" in e["skipped"][0]
    assert "-" in rg.regimes_table(rec).splitlines()[-2]


def test_sift_fallback_counted_per_image():
    """Maps without SIFT keypoints fall back to every cell (paper Sec. 5.1); the record counts them."""
    rng = np.random.RandomState(1)
    ims = [ImageFeatures(rng.rand(4, 5, 8).astype(np.float32), (128, 160), name=f"a{i}") for i in range(3)]
    kept, fallbacks = rg._kept_percent(ims, ("sift", "max"))
    assert kept["sift"] == 100.0 and fallbacks == 3
    assert 100 / 20 <= kept["max"] <= 100 * 8 / 20


def test_command_line_refuses_bad_output_folder_and_threads(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        rg.main(["--out", str(tmp_path / "absent" / "r.json")])
    err = capsys.readouterr().err
    assert "--out" in err and "folder" in err and "does not exist" in err
    monkeypatch.setenv("SELCONV_THREADS", "zero")
    with pytest.raises(SystemExit):
        rg.main(["--out", str(tmp_path / "r.json")])
    assert "SELCONV_THREADS must be a positive integer" in capsys.readouterr().err


def test_recorded_table5_reads_only_complete_matching_rows():
    rec = {"config": {"random_state": 0, "alpha": 0.5},
           "sizes": {"512": {"cells_mean": 189.0, "mAP": {"max": {"512": 0.8, "1024": 0.9}, "sum": {"512": 0.7}}},
                     "724": {"cells_mean": 371.0, "mAP": {"max": {"512": 0.81}, "sum": {"512": 0.77}}},
                     "1024": {"cells_mean": 770.0, "mAP": {"max": {"512": None}, "sum": {"512": 0.72}}}}}
    got = rg.recorded_table5(rec, [724, 1024], ["sum", "max"], 512)
    assert got == {724: {"mAP": [0.77, 0.81], "cells_mean": 371.0}}   # 1024: a missing value
    # 362 not recorded; 512 is complete, and left out when it is the live size
    assert rg.recorded_table5(rec, [362, 512], ["sum", "max"], 512) == {512: {"mAP": [0.7, 0.8], "cells_mean": 189.0}}
    assert rg.recorded_table5(rec, [362, 512], ["sum", "max"], 512, skip=[512]) == {}
    assert rg.recorded_table5(rec, [512, 724], ["max"], 512, skip=[724]) == {512: {"mAP": [0.8], "cells_mean": 189.0}}
    assert rg.recorded_table5(rec, [724], ["sum", "max"], 1024) == {}          # no 1024-D numbers at 724
    assert rg.recorded_table5(rec, [724], ["sum", "max"], 512, seed=1) == {}  # other seed: measure live
    assert rg.recorded_table5(rec, [724], ["sum", "max"], 512, alpha=0.3) == {}
    assert rg.recorded_table5(None, [724], ["max"], 512) == {}


def test_record_stores_per_query_aps_of_each_entry(tiny, tmp_path):
    ds, feats, rec, _ = tiny
    n = len(ds.queries)
    for s in ("512", "1024"):
        e = rec["sizes"][s]
        assert set(e["aps"]) == set(e["mAP"])
        for m in e["mAP"]:
            aps = e["aps"][m]["512"]
            assert isinstance(aps, list) and len(aps) == n and all(isinstance(v, float) for v in aps)
            assert all(v == round(v, rg.APS_DECIMALS) for v in aps)
            assert abs(np.mean(aps) - e["mAP"][m]["512"]) <= 1e-6   # rounded to 6 decimals
        for b in e["baselines"].values():
            assert len(b["aps"]) == n and abs(np.mean(b["aps"]) - b["mAP"]) <= 1e-6
    # the same per-query APs as the table drivers (Table 5), through a written and reloaded record
    path = tmp_path / "regimes.json"
    path.write_text(json.dumps(rec))
    back = rg.load_regimes(path, ds)
    t5 = tables.run_image_size(ds, {1024: feats[1024]}, masks=("max",), D=512, seed=0)
    np.testing.assert_allclose(rg.recorded_aps(back, 1024, "max", D=512), t5.aps["1024"]["M_MAX"], rtol=0, atol=5e-7)
    mac = rg.recorded_aps(back, 512, "MAC")
    assert mac.shape == (n,) and abs(mac.mean() - back["sizes"]["512"]["baselines"]["MAC"]["mAP"]) <= 1e-6
    with pytest.raises(KeyError, match="no baseline 'GeM'"):
        rg.recorded_aps(back, 512, "GeM")
    with pytest.raises(KeyError, match="no 'max' mask at D = 1024"):
        rg.recorded_aps(back, 512, "max", D=1024)


def test_old_record_without_per_query_aps_still_loads(tiny, tmp_path):
    ds, _, rec, _ = tiny
    old = json.loads(json.dumps(rec))
    for e in old["sizes"].values():
        del e["aps"]
        for b in e["baselines"].values():
            del b["aps"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    back = rg.load_regimes(path, ds)
    assert back["sizes"]["512"]["mAP"] == rec["sizes"]["512"]["mAP"]
    assert rg.recorded_aps(back, 512, "max", D=512) is None and rg.recorded_aps(back, 512, "MAC") is None
    assert rg.regimes_table(back) == rg.regimes_table(rec)

