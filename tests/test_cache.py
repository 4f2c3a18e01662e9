"""Tests of selconv_lite.features.cache: keys, resume after interruption, write-then-rename, corrupt entries,
float16 storage, lazy iteration, error handling, progress bar and the default location."""
from __future__ import annotations

import os
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selconv_lite.features import cache as cache_mod
from selconv_lite.features.cache import CorruptEntryWarning, FeatureCache, default_cache_dir, extract_features
from selconv_lite.features.extraction import EmptyFeatureMapError, FeatureExtractor, ImageError

MAX_DIM = 64


def _save(path: Path, h: int, w: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h), Image.Resampling.NEAREST).save(path)
    return path


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    return [_save(d / f"im{i}.png", 48 + 8 * i, 80 - 4 * i, seed=i) for i in range(4)]


@pytest.fixture
def store(tmp_path):
    return FeatureCache(tmp_path / "cache", layers=("pool5",), max_dim=MAX_DIM, device="cpu")


def _entries(root: Path):
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def _forbid_extraction(cache: FeatureCache):
    def boom(*a, **k):
        raise AssertionError("should have been served from the cache")
    cache.extractor.extract = boom


# ------------------------------------------------------------------------------ basic behaviour
def test_extract_all_then_load_matches_direct_extraction(store, images):
    s = store.extract_all(images, progress=False)
    assert (s.n_images, s.n_extracted, s.n_cached, s.failures) == (4, 4, 0, [])
    assert len(_entries(store.root)) == 4
    direct = FeatureExtractor(layers=("pool5",), max_dim=MAX_DIM, device="cpu")
    _forbid_extraction(store)
    for p in images:
        got = store.load(p)
        ref = direct.extract(p)["pool5"]
        assert got.fmap.dtype == np.float32
        np.testing.assert_array_equal(got.fmap, ref.fmap)
        np.testing.assert_array_equal(got.keypoints, ref.keypoints)
        assert got.image_hw == ref.image_hw and got.name == str(p)
    s2 = store.extract_all(images, progress=False)
    assert (s2.n_extracted, s2.n_cached) == (0, 4)


def test_key_covers_weights_layer_max_dim_dtype_and_crop(tmp_path, images):
    root = tmp_path / "c"
    a = FeatureCache(root, layers=("pool5", "conv4_3"), max_dim=MAX_DIM, device="cpu")
    b = FeatureCache(root, layers=("pool5",), max_dim=96, device="cpu")
    c = FeatureCache(root, layers=("pool5",), max_dim=MAX_DIM, dtype="float16", device="cpu")
    dirs = {a.layer_dir("pool5"), a.layer_dir("conv4_3"), b.layer_dir("pool5"), c.layer_dir("pool5")}
    assert len(dirs) == 4
    assert all(a.weights_id in str(d) and "caffe-onnx-3be917fb4375" in str(d) for d in dirs)
    p = images[0]
    assert a.entry_path(p) != a.entry_path(p, crop=(0, 0, 40, 40))
    assert a.entry_path(p, crop=(0, 0, 40, 40)) == a.entry_path(p, crop=(0.2, 0, 39.9, 40.1))  # same pixels
    # several layers from one pass, stored separately
    a.extract_all([p], progress=False)
    assert a.load(p, layer="conv4_3").fmap.shape[-1] == 512
    assert a.load(p, layer="conv4_3").fmap.shape[0] == 2 * a.load(p, layer="pool5").fmap.shape[0]
    with pytest.raises(ValueError, match="not in this cache's layers"):
        b.load(p, layer="conv4_3")


def test_key_is_the_image_content(store, images, tmp_path):
    store.extract_all(images[:1], progress=False)
    copy = tmp_path / "elsewhere.png"
    copy.write_bytes(images[0].read_bytes())
    _forbid_extraction(store)
    f = store.load(copy)                      # same bytes elsewhere: a hit
    assert f.name == str(copy)
    _save(images[0], 48, 80, seed=99)         # same path, new content: a miss
    os.utime(images[0], ns=(1, 1))
    with pytest.raises(AssertionError, match="served from the cache"):
        store.load(images[0])


def test_crops_are_cached_separately(store, images):
    crops = [None, (0, 0, 40, 40), None, (10, 5, 70, 45)]
    store.extract_all(images, crops, progress=False)
    direct = FeatureExtractor(max_dim=MAX_DIM, device="cpu")
    f = store.load(images[1], crop=(0, 0, 40, 40))
    ref = direct.extract(images[1], crop=(0, 0, 40, 40))["pool5"]
    assert f.image_hw == ref.image_hw == (35, 35)    # 41 x 41 px scaled by 64 / 76 (full image), ceil
    np.testing.assert_array_equal(f.fmap, ref.fmap)
    other = FeatureCache(store.root, max_dim=MAX_DIM, device="cpu", crop_scale="crop")
    assert other.entry_path(images[1], (0, 0, 40, 40)) != store.entry_path(images[1], (0, 0, 40, 40))
    assert other.entry_path(images[1]) == store.entry_path(images[1])   # no crop: same entry
    assert other.load(images[1], crop=(0, 0, 40, 40)).image_hw == (64, 64)
    assert store.contains(images[3], crop=(10, 5, 70, 45)) and not store.contains(images[3])
    with pytest.raises(ValueError, match="4 paths but 1 crops"):
        store.extract_all(images, [None], progress=False)


# ------------------------------------------------------------------------- robustness on disk
def test_interrupted_extraction_resumes(store, images):
    real = store.extractor.extract
    calls = []

    def interrupt_third(path, crop=None, name=None):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, crop=crop, name=name)

    store.extractor.extract = interrupt_third
    with pytest.raises(KeyboardInterrupt):
        store.extract_all(images, progress=False)
    assert len(_entries(store.root)) == 2
    store.extractor.extract = real
    s = store.extract_all(images, progress=False)
    assert (s.n_cached, s.n_extracted) == (2, 2)


def test_write_then_rename_leaves_no_partial_entry(store, images, monkeypatch):
    def crash_midway(fh, level, **arrays):
        fh.write(b"PK\x03\x04 half an entry")
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod, "_write_npz", crash_midway)
    with pytest.raises(cache_mod.CacheWriteError, match="disk full"):
        store.extract_all(images[:1], progress=False, on_error="skip")  # not an image failure
    assert _entries(store.root) == []         # neither the entry nor the temporary file
    monkeypatch.undo()
    assert store.extract_all(images[:1], progress=False).n_extracted == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_entry_is_reextracted_with_a_warning(store, images, damage):
    store.extract_all(images[:2], progress=False)
    good = store.load(images[0]).fmap
    entry = store.entry_path(images[0])
    data = entry.read_bytes()
    entry.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"x" * 100, "empty": b""}[damage])
    with pytest.warns(CorruptEntryWarning, match="im0.png: corrupt cache entry"):
        f = store.load(images[0])
    np.testing.assert_array_equal(f.fmap, good)
    assert store.contains(images[0])

    entry.write_bytes(data[:-40])             # damaged again: extract_all repairs it too
    with pytest.warns(CorruptEntryWarning, match="im0.png"):
        s = store.extract_all(images[:2], progress=False)
    assert (s.n_extracted, s.n_cached) == (1, 1)
    np.testing.assert_array_equal(store.load(images[0]).fmap, good)


def test_flipped_byte_is_caught_by_the_zip_crc(tmp_path, images):
    store = FeatureCache(tmp_path / "c", max_dim=MAX_DIM, device="cpu", compress=False)
    store.extract_all(images[:1], progress=False)
    good = store.load(images[0]).fmap
    entry = store.entry_path(images[0])
    raw = bytearray(entry.read_bytes())
    i = raw.index(b"fmap.npy") + 400          # inside the stored fmap array data
    raw[i] ^= 0x55
    entry.write_bytes(bytes(raw))
    assert not store.contains(images[0])
    with pytest.warns(CorruptEntryWarning):
        np.testing.assert_array_equal(store.load(images[0]).fmap, good)


def test_float16_storage(tmp_path, images):
    f32 = FeatureCache(tmp_path / "c", max_dim=MAX_DIM, device="cpu", compress=False)
    f16 = FeatureCache(tmp_path / "c", max_dim=MAX_DIM, device="cpu", compress=False, dtype="float16")
    f32.extract_all(images[:1], progress=False)
    f16.extract_all(images[:1], progress=False)
    e32, e16 = f32.entry_path(images[0]), f16.entry_path(images[0])
    with np.load(e16) as z:
        assert z["fmap"].dtype == np.float16
    assert e16.stat().st_size < 0.6 * e32.stat().st_size
    a, b = f32.load(images[0]).fmap, f16.load(images[0]).fmap
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3 * a.max())
    with pytest.raises(ValueError, match="float16"):
        FeatureCache(tmp_path, dtype="int8")


def test_iter_is_lazy(store, images):
    store.extract_all(images, progress=False)
    it = store.iter(images)
    assert isinstance(it, types.GeneratorType)
    loaded = []
    real = store._read
    store._read = lambda entry, name: loaded.append(name) or real(entry, name)
    first = next(it)
    assert loaded == [str(images[0])] and first.fmap.ndim == 3   # one map read, not all
    assert [f.name for f in it] == [str(p) for p in images[1:]]


# ------------------------------------------------------------------------------ bad images
def test_bad_image_raises_naming_it_by_default(store, images, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match="broken.jpg"):
        store.extract_all([images[0], bad, images[1]], progress=False)


def test_skip_reports_all_failures_at_the_end(store, images, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    thin = _save(tmp_path / "thin.png", 4, 300, seed=1)
    missing = tmp_path / "missing.png"
    paths = [images[0], bad, images[1], thin, missing]
    with pytest.warns(UserWarning) as rec:
        s = store.extract_all(paths, on_error="skip", progress=False)
    assert [p for p, _ in s.failures] == [str(bad), str(thin), str(missing)]
    assert s.n_extracted == 2 and not s.ok
    msg = "\n".join(str(w.message) for w in rec)
    assert "3 of 5 images could not be extracted" in msg
    assert "broken.jpg" in msg and "thin.png" in msg and "feature map is empty" in msg and "missing.png" in msg
    assert "3 failed" in str(s)
    with pytest.raises(ValueError, match="on_error"):
        store.extract_all(paths, on_error="ignore")


def test_empty_feature_map_raises(store, tmp_path):
    thin = _save(tmp_path / "thin.png", 4, 300, seed=1)
    with pytest.raises(EmptyFeatureMapError, match="thin.png"):
        store.extract_all([thin], progress=False)
    with pytest.raises(EmptyFeatureMapError, match="thin.png"):
        store.load(thin)


# ------------------------------------------------------------------------ conveniences
def test_extract_features_convenience(tmp_path, images):
    bad = tmp_path / "broken.jpg"
    bad.write_text("nope")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = extract_features(images + [bad], layer="conv5_1", max_dim=MAX_DIM,
                                 cache_dir=tmp_path / "cc", device="cpu", on_error="skip", progress=False)
    assert [f.name for f in feats] == [str(p) for p in images]
    assert all(f.fmap.shape[2] == 512 and f.fmap.dtype == np.float32 for f in feats)
    assert (tmp_path / "cc").is_dir()


def test_progress_bar(store, images, capsys, monkeypatch):
    monkeypatch.delenv("SELCONV_HEADLESS", raising=False)
    store.extract_all(images[:2], progress=True)
    err = capsys.readouterr().err
    assert "features (pool5, max_dim=64)" in err and "2/2" in err


def test_no_progress_bar_when_headless(store, images, capsys, monkeypatch):
    """papermill/series/sweep runs set SELCONV_HEADLESS: no bar may be saved in notebook outputs."""
    monkeypatch.setenv("SELCONV_HEADLESS", "1")
    s = store.extract_all(images[:2], progress=True)
    assert s.n_extracted == 2
    assert "features (pool5" not in capsys.readouterr().err


def test_default_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SELCONV_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    assert FeatureCache().root == tmp_path / "mine"
    monkeypatch.delenv("SELCONV_CACHE")
    repo = tmp_path / "repo"
    (repo / "selconv_lite").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    (repo / "notebooks").mkdir()
    monkeypatch.chdir(repo / "notebooks")
    assert default_cache_dir() == repo.resolve() / "cache"
    # outside any checkout: the checkout the package was imported from (one shared cache)
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    assert default_cache_dir() == Path(cache_mod.__file__).resolve().parents[2] / "cache"


def test_trunk_is_not_loaded_when_everything_is_cached(store, images):
    store.extract_all(images, progress=False)
    fresh = FeatureCache(store.root, layers=("pool5",), max_dim=MAX_DIM, device="cpu")
    assert fresh.extract_all(images, progress=False).n_cached == 4
    assert [f.name for f in fresh.iter(images)] == [str(p) for p in images]
    assert fresh._extractor is None
    assert "caffe-onnx" in repr(fresh) and cache_mod.FORMAT_VERSION == 1


# ------------------------------------------------- one forward pass for several layer sets
@pytest.fixture
def count_passes():
    """Counts runs of the shared trunk (calls of its first convolution, conv1_1)."""
    from selconv_lite.features.backbone import load_vgg16_trunk

    calls = []
    hook = load_vgg16_trunk("caffe-onnx", "cpu").features[0].register_forward_hook(
        lambda mod, inp, out: calls.append(int(inp[0].shape[0])))
    yield calls
    hook.remove()


def _series_like_run(root, images, extra):
    """The layer sets the notebook series asks for, in its order: pool5 (02-05), pool5 + Fig. 5
    layers (06), pool5 + conv4_3 (07), the explorer's layers (02)."""
    out = {}
    for layers in [("pool5",), ("pool5", "conv5_2", "conv5_1", "conv4_3"), ("pool5", "conv4_3"),
                   ("pool5", "conv5_1", "conv4_3")]:
        c = FeatureCache(root, layers=layers, max_dim=MAX_DIM, device="cpu", extra_layers=extra)
        c.extract_all(images, progress=False)
        for lay in layers:
            out[lay] = [c.load(p, layer=lay).fmap for p in images]
    return out


def test_series_layers_cost_one_forward_pass_per_image(tmp_path, images, count_passes):
    before = _series_like_run(tmp_path / "separate", images, extra=())
    n_before = len(count_passes)
    count_passes.clear()
    after = _series_like_run(tmp_path / "union", images, extra=("pool5", "conv5_2", "conv5_1", "conv4_3"))
    assert n_before == 2 * len(images)  # the Fig. 5 layers missed: the trunk ran again
    assert len(count_passes) == len(images)  # one pass per image for the whole series
    for lay, maps in before.items():  # the union pass changes no value, bit for bit
        for a, b in zip(maps, after[lay]):
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
            assert np.array_equal(a, b), lay
    direct = FeatureExtractor(layers=("conv4_3",), max_dim=MAX_DIM, device="cpu")
    for p, m in zip(images, after["conv4_3"]):  # and equal to a pass asking for that layer alone
        assert np.array_equal(direct.extract(p)["conv4_3"].fmap, m)
    assert float(np.abs(after["conv4_3"][0]).max()) > 1.0


def test_extra_layers_stored_only_where_missing_and_not_needed_for_a_hit(tmp_path, images, count_passes):
    root = tmp_path / "c"
    first = FeatureCache(root, layers=("conv4_3",), max_dim=MAX_DIM, device="cpu")
    first.extract_all(images[:1], progress=False)
    c = FeatureCache(root, layers=("pool5",), max_dim=MAX_DIM, device="cpu", extra_layers=("conv4_3", "pool5"))
    assert c.extra_layers == ("conv4_3",) and c.all_layers == ("pool5", "conv4_3")
    kept = c.entry_path(images[0], layer="conv4_3").stat().st_mtime_ns
    count_passes.clear()
    assert c.extract_all(images[:2], progress=False).n_extracted == 2
    assert len(count_passes) == 2
    assert c.entry_path(images[0], layer="conv4_3").stat().st_mtime_ns == kept  # not rewritten
    assert FeatureCache(root, layers=("conv4_3",), max_dim=MAX_DIM).contains(images[1])
    # a missing extra entry does not make an image a miss
    c.entry_path(images[1], layer="conv4_3").unlink()
    count_passes.clear()
    assert c.extract_all(images[:2], progress=False).n_cached == 2 and count_passes == []
    # loading it re-extracts (one pass) and stores it again
    assert c.load(images[1], layer="conv4_3").fmap.shape[2] == 512
    assert len(count_passes) == 1 and c.entry_path(images[1], layer="conv4_3").is_file()
    assert c.describe()["extra_layers"] == ["conv4_3"]
    with pytest.raises(ValueError, match="conv5_3"):
        c.load(images[0], layer="conv5_3")


def test_corrupt_extra_entry_is_repaired_when_asked_for(tmp_path, images):
    c = FeatureCache(tmp_path / "c", layers=("pool5",), max_dim=MAX_DIM, device="cpu", extra_layers=("conv5_1",))
    c.extract_all(images[:1], progress=False)
    entry = c.entry_path(images[0], layer="conv5_1")
    good = c.load(images[0], layer="conv5_1").fmap
    entry.write_bytes(entry.read_bytes()[:50])
    other = FeatureCache(tmp_path / "c", layers=("conv5_1",), max_dim=MAX_DIM, device="cpu")
    assert not other.contains(images[0])
    with pytest.warns(CorruptEntryWarning, match="im0.png"):
        assert other.extract_all(images[:1], progress=False).n_extracted == 1
    np.testing.assert_array_equal(other.load(images[0], layer="conv5_1").fmap, good)
    # a corrupt entry that is still a valid zip: load() re-extracts and rewrites it
    np.savez(entry, fmap=np.full((1, 1), np.nan, np.float32), image_hw=np.array([1, 1]),
             keypoints=np.zeros((0, 2), np.float32))
    with pytest.warns(CorruptEntryWarning, match="malformed"):
        np.testing.assert_array_equal(c.load(images[0], layer="conv5_1").fmap, good)
    np.testing.assert_array_equal(c.load(images[0], layer="conv5_1").fmap, good)  # rewritten


def test_extra_layer_empty_for_an_image_stores_the_asked_for_ones(tmp_path):
    # 64 x 24 px at max_dim 64: a 1 x 4 conv4_3 map (stride 16) but an empty pool5 map (stride 32)
    low = _save(tmp_path / "low.png", 24, 64, seed=3)
    c = FeatureCache(tmp_path / "c", layers=("conv4_3",), max_dim=MAX_DIM, device="cpu", extra_layers=("pool5",))
    assert c.extract_all([low], progress=False).n_extracted == 1
    assert c.load(low, layer="conv4_3").fmap.shape == (1, 4, 512)
    assert not c.entry_path(low, layer="pool5").exists()
    with pytest.raises(EmptyFeatureMapError, match="low.png"):
        c.load(low, layer="pool5")


def test_extra_layers_must_be_known(monkeypatch):
    with pytest.raises(ValueError, match="unknown layer 'pool4'"):
        FeatureCache(layers=("pool5",), extra_layers=("pool4",))


def test_compression_level_changes_size_not_values(tmp_path, images):
    got = {}
    for comp in (True, 6, 9, False):
        c = FeatureCache(tmp_path / f"c{comp}", layers=("pool5",), max_dim=MAX_DIM, device="cpu", compress=comp)
        c.extract_all(images[:1], progress=False)
        entry = c.entry_path(images[0])
        with np.load(entry) as z:  # a plain .npz archive
            assert sorted(z.files) == ["fmap", "image_hw", "keypoints"]
        got[comp] = (c.load(images[0]).fmap, entry.stat().st_size)
    assert FeatureCache(tmp_path, compress=True).compress == cache_mod.COMPRESS_LEVEL == 1
    for comp in (6, 9, False):
        assert np.array_equal(got[comp][0], got[True][0])
    assert got[True][1] < got[False][1]
    # an entry written by np.savez_compressed (the earlier writer) is a hit
    old = FeatureCache(tmp_path / "old", layers=("pool5",), max_dim=MAX_DIM, device="cpu")
    f = FeatureExtractor(layers=("pool5",), max_dim=MAX_DIM, device="cpu").extract(images[1])["pool5"]
    entry = old.entry_path(images[1])
    entry.parent.mkdir(parents=True)
    np.savez_compressed(entry, fmap=f.fmap, image_hw=np.asarray(f.image_hw), keypoints=f.keypoints)
    _forbid_extraction(old)
    assert old.extract_all(images[1:2], progress=False).n_cached == 1
    assert np.array_equal(old.load(images[1]).fmap, f.fmap)
    for bad in (10, -1, "fast", 1.5):
        with pytest.raises(ValueError, match="compress"):
            FeatureCache(tmp_path, compress=bad)
