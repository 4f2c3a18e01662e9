"""Bad input, table by table: each case asserts the outcome documented in docs/reliability.md --
a clear error naming the file or argument and the problem, or the documented fallback -- and
that nothing is lost. Fixtures are generated small in tmp_path; nothing is downloaded.

Sections: images, crop boxes, feature cache, ground truth (malformed, malicious, ambiguous
names, leaks), downloads, evaluation inputs, the method's parameters, command-line arguments.
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selconv_lite.core.types import ImageFeatures
from selconv_lite.data import download as dl
from selconv_lite.data import transfer as tr
from selconv_lite.data import evaluation as ev
from selconv_lite.data import groundtruth as gtf
from selconv_lite.data import loaders
from selconv_lite.data.datasets import DATASETS, dataset_key, load_dataset
from selconv_lite.data.retrieval import RetrievalDataset
from selconv_lite.features import cache as cache_mod
from selconv_lite.features.extraction import (EmptyFeatureMapError, FeatureExtractor, ImageError,
                                              crop_image, load_image)
from selconv_lite.teaching import series, sweep

FIXTURE_NB = Path(__file__).parent / "fixtures" / "notebooks" / "tiny_sweep.ipynb"


def _rgb(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


def _save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def _exif_rotated(path: Path, w=40, h=20, orientation=6) -> Path:
    """A JPEG stored ``w x h`` whose EXIF says: rotate for display (6 = 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(_rgb(w, h), path, exif=exif.tobytes())


# ======================================================================================
# images
# ======================================================================================
def _img_empty(p):
    p.write_bytes(b"")


def _img_truncated(p):
    buf = io.BytesIO()
    _rgb(64, 48).save(buf, "JPEG")
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def _img_not_an_image(p):
    p.write_text("this is a text file with a .jpg name\n")


IMAGE_ERRORS = {
    "empty": (_img_empty, r"cannot read the image"),
    "truncated": (_img_truncated, r"cannot read the image.*(truncated|broken)"),
    "not an image": (_img_not_an_image, r"cannot read the image.*(cannot identify|UnidentifiedImage)"),
}


@pytest.mark.parametrize("case", sorted(IMAGE_ERRORS))
def test_unreadable_image_is_an_error_naming_the_file(tmp_path, case):
    make, pattern = IMAGE_ERRORS[case]
    p = tmp_path / f"bad {case}.jpg"
    make(p)
    with pytest.raises(ImageError, match=pattern) as ei:
        load_image(p)
    assert str(p) in str(ei.value)


def test_decompression_bomb_is_an_error_naming_the_file(tmp_path, monkeypatch):
    p = _save(_rgb(40, 40), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 px > 2 x 100: PIL refuses it
    with pytest.raises(ImageError, match=r"bomb\.png.*DecompressionBomb"):
        load_image(p)


CONVERTED = {
    # mode of the file -> (make, expected RGB of the pixel (0, 0))
    "alpha (RGBA, composited on white)": (
        lambda p: _save(Image.new("RGBA", (8, 8), (255, 0, 0, 0)), p.with_suffix(".png")),
        (255, 255, 255)),
    "16-bit grayscale (scaled, not clipped)": (
        lambda p: _save(Image.fromarray(np.full((8, 8), 32768, np.uint16)), p.with_suffix(".png")),
        (128, 128, 128)),
    "CMYK": (lambda p: _save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), p.with_suffix(".jpg")),
             None),
    "palette": (lambda p: _save(Image.new("RGB", (8, 8), (0, 0, 255)).convert("P"),
                                p.with_suffix(".png")), (0, 0, 255)),
}


@pytest.mark.parametrize("case", sorted(CONVERTED))
def test_unusual_modes_become_8bit_rgb(tmp_path, case):
    make, first = CONVERTED[case]
    p = make(tmp_path / "im")
    img = load_image(p)
    assert img.mode == "RGB" and img.size == (8, 8)
    a = np.asarray(img)
    assert a.dtype == np.uint8
    if first is not None:
        np.testing.assert_allclose(a[0, 0], first, atol=2)
    else:  # CMYK (0, 255, 255, 0) is red
        assert a[0, 0, 0] > 200 and a[0, 0, 1] < 60 and a[0, 0, 2] < 60


def test_tiny_and_elongated_images(tmp_path):
    tiny = _save(_rgb(4, 3), tmp_path / "tiny.png")
    long = _save(_rgb(1000, 8), tmp_path / "long.png")
    fx = FeatureExtractor(layers=("pool5",), max_dim=64, device="cpu", sift=False)
    assert fx.prepare(tiny).shape == (48, 64, 3)  # documented: resized up to max_dim
    with pytest.raises(EmptyFeatureMapError, match=r"long\.png.*pool5.*at least 32 px"):
        fx.prepare(long)
    with pytest.raises(EmptyFeatureMapError, match=r"tiny\.png"):
        FeatureExtractor(layers=("pool5",), max_dim=None, device="cpu", sift=False).prepare(tiny)


def test_exif_orientation_is_applied(tmp_path):
    p = _exif_rotated(tmp_path / "rot.jpg", 40, 20, orientation=6)
    with Image.open(p) as raw:
        assert raw.size == (40, 20)
    assert load_image(p).size == (20, 40)
    assert loaders.displayed_size(p) == (20, 40)


# ======================================================================================
# crop boxes: one frame, the displayed (EXIF-applied) image
# ======================================================================================
def _byo(tmp_path, gnd, imlist=("a", "b", "c"), qimlist=("q",), trainlist=None, make=True):
    imgs = tmp_path / "images"
    if make:
        for i, n in enumerate(list(imlist) + list(qimlist)):
            _save(_rgb(40, 30, seed=i), imgs / f"{n}.jpg")
    p = tmp_path / "gnd.pkl"
    obj = {"imlist": list(imlist), "qimlist": list(qimlist), "gnd": gnd}
    if trainlist:
        obj["trainlist"] = trainlist
    with open(p, "wb") as f:
        pickle.dump(obj, f)
    return imgs, p


def test_crop_box_is_checked_and_cropped_in_the_displayed_frame(tmp_path):
    # stored 40 x 20, displayed 20 x 40 (EXIF orientation 6)
    imgs, p = _byo(tmp_path, [{"ok": [0], "junk": [], "bbx": [2, 3, 15, 35]}])
    _exif_rotated(imgs / "q.jpg", 40, 20, orientation=6)
    d = loaders.load_folder(imgs, p)
    box = d.query_boxes[0]
    # the extractor crops the same box in the same (displayed) frame: 14 x 33 px, not a strip
    assert crop_image(load_image(d.queries[0]), box).size == (14, 33)
    # a box valid only in the stored (raw) frame is refused, naming the displayed size
    imgs2, p2 = _byo(tmp_path / "raw", [{"ok": [0], "junk": [], "bbx": [2, 3, 35, 15]}])
    _exif_rotated(imgs2 / "q.jpg", 40, 20, orientation=6)
    with pytest.raises(gtf.GroundTruthError, match=r"20 x 40 as displayed, EXIF orientation"):
        loaders.load_folder(imgs2, p2)


BAD_BOXES = {
    "x, y, w, h (x2 < x1)": ([30, 5, 10, 10], r"is it x, y, w, h"),
    "three numbers": ([1, 2, 3], r"must be 4 numbers"),
    "NaN": ([0, 0, float("nan"), 10], r"must be 4 numbers"),
    "outside the image": ([0, 0, 90, 20], r"lies outside the image"),
}


@pytest.mark.parametrize("case", sorted(BAD_BOXES))
def test_bad_crop_box_in_ground_truth(tmp_path, case):
    box, pattern = BAD_BOXES[case]
    imgs, p = _byo(tmp_path, [{"ok": [0], "junk": [], "bbx": box}])
    with pytest.raises(gtf.GroundTruthError, match=pattern) as ei:
        loaders.load_folder(imgs, p)
    assert "gnd.pkl" in str(ei.value)


def test_bad_crop_box_in_extractor(tmp_path):
    img = _rgb(40, 30)
    with pytest.raises(ImageError, match=r"q\.jpg: crop box .* lies outside the 40x30 image"):
        crop_image(img, (50, 50, 60, 60), "q.jpg")
    with pytest.raises(ImageError, match=r"q\.jpg: crop must be"):
        crop_image(img, ("a", 0, 1, 1), "q.jpg")


# ======================================================================================
# feature cache
# ======================================================================================
def _fake_features(seed=0):
    rng = np.random.default_rng(seed)
    return ImageFeatures(fmap=rng.random((2, 3, 4), dtype=np.float32), image_hw=(64, 96),
                         keypoints=np.zeros((0, 2), np.float32), name="x")


def test_replaced_file_with_same_size_and_mtime_is_hashed_again(tmp_path):
    """``cp -p`` / ``rsync -t`` keep size and mtime: the memo must not return the old hash."""
    a = _save(_rgb(32, 32, seed=1), tmp_path / "a.png")
    b = _save(_rgb(32, 32, seed=2), tmp_path / "b.png")
    assert a.stat().st_size == b.stat().st_size or True
    c = cache_mod.FeatureCache(tmp_path / "cache", max_dim=64, device="cpu")
    p = tmp_path / "img.png"
    p.write_bytes(a.read_bytes())
    st = p.stat()
    first = c.entry_path(p)
    # same size, same mtime, different bytes (written in place, as cp -p does)
    data = bytearray(a.read_bytes())
    data[-20] ^= 0xFF
    with open(p, "r+b") as f:
        f.write(bytes(data))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (p.stat().st_size, p.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert c.entry_path(p) != first
    # replaced by rename (rsync -t): a new inode
    q = tmp_path / "new.png"
    q.write_bytes(a.read_bytes())
    os.utime(q, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(q, p)
    assert c.entry_path(p) == first


def test_read_only_cache_is_an_error_even_when_skipping_bad_images(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    c = cache_mod.FeatureCache(blocker / "cache", max_dim=64, device="cpu")
    img = _save(_rgb(40, 30), tmp_path / "ok.png")
    c.extractor.extract = lambda path, crop=None, name=None: {"pool5": _fake_features()}
    with pytest.raises(cache_mod.CacheWriteError, match=r"cannot write to the feature cache .*not_a_folder"):
        c.extract_all([img], on_error="skip", progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_folder(tmp_path):  # pragma: no cover - CI runs unprivileged
    root = tmp_path / "cache"
    c = cache_mod.FeatureCache(root, max_dim=64, device="cpu")
    c.layer_dir("pool5").mkdir(parents=True)
    os.chmod(root, 0o500)
    img = _save(_rgb(40, 30), tmp_path / "ok.png")
    c.extractor.extract = lambda path, crop=None, name=None: {"pool5": _fake_features()}
    try:
        with pytest.raises(cache_mod.CacheWriteError):
            c.extract_all([img], on_error="skip", progress=False)
    finally:
        os.chmod(root, 0o700)


def test_temporary_files_of_killed_writers_are_removed_on_open(tmp_path):
    c = cache_mod.FeatureCache(tmp_path / "cache", max_dim=64, device="cpu")
    img = _save(_rgb(40, 30), tmp_path / "ok.png")
    entry = c.entry_path(img)
    c._write(entry, _fake_features())
    sub = entry.parent
    old = sub / ".tmp-otherhost-1-abc.npz"       # another host, but hours old
    old.write_bytes(b"PK partial")
    os.utime(old, (time.time() - 2 * cache_mod.STALE_TMP_SECONDS,) * 2)
    dead = sub / f"{c._tmp_prefix().rsplit('-', 2)[0]}-999999999-x.npz"  # this host, no such pid
    dead.write_bytes(b"PK partial")
    live = sub / f"{c._tmp_prefix()}y.npz"       # this very process: a write in progress
    live.write_bytes(b"PK partial")
    other = sub / ".tmp-otherhost-1-fresh.npz"   # another host, fresh: may be writing now
    other.write_bytes(b"PK partial")
    c2 = cache_mod.FeatureCache(tmp_path / "cache", max_dim=64, device="cpu")
    assert c2.n_stale_removed == 2
    assert not old.exists() and not dead.exists() and live.exists() and other.exists()
    assert c2._valid(entry)  # complete entries are untouched


_KILLED_WRITER = """
import sys, time
import numpy as np
from selconv_lite.core.types import ImageFeatures
from selconv_lite.features import cache as cache_mod
from selconv_lite.features.cache import FeatureCache

def stuck(fh, level, **arrays):
    fh.write(b"PK partial entry")
    fh.flush()
    print("writing", flush=True)
    time.sleep(600)

cache_mod._write_npz = stuck
c = FeatureCache(sys.argv[1], max_dim=64, device="cpu")
f = ImageFeatures(np.ones((2, 3, 4), np.float32), (64, 96), np.zeros((0, 2), np.float32), "x")
c._write(c.entry_path(sys.argv[2]), f)
"""


def test_sigkill_during_a_write_leaves_no_entry_and_its_temporary_file_is_cleaned(tmp_path):
    import subprocess
    import sys

    img = _save(_rgb(40, 30), tmp_path / "ok.png")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(tmp_path / "cache"), str(img)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()
        proc.wait()
    c = cache_mod.FeatureCache(tmp_path / "cache", max_dim=64, device="cpu")
    entry = c.entry_path(img)
    assert c.n_stale_removed == 1            # the dead writer's temporary file
    assert not entry.exists() and not list(entry.parent.glob(".tmp-*"))
    c.extractor.extract = lambda path, crop=None, name=None: {"pool5": _fake_features(5)}
    np.testing.assert_array_equal(c.load(img).fmap, _fake_features(5).fmap)  # resumes


def test_concurrent_writers_of_one_entry_leave_a_valid_entry(tmp_path):
    caches = [cache_mod.FeatureCache(tmp_path / "cache", max_dim=64, device="cpu") for _ in range(4)]
    img = _save(_rgb(40, 30), tmp_path / "ok.png")
    entry = caches[0].entry_path(img)
    errors = []

    def write(c, seed):
        try:
            for _ in range(5):
                c._write(entry, _fake_features(seed))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(c, 0)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert caches[0]._valid(entry)
    np.testing.assert_array_equal(caches[0]._read(entry, "x").fmap, _fake_features(0).fmap)
    assert not list(entry.parent.glob(".tmp-*"))


def test_corrupt_entry_is_reported_and_replaced(tmp_path):
    c = cache_mod.FeatureCache(tmp_path / "cache", max_dim=64, device="cpu")
    img = _save(_rgb(40, 30), tmp_path / "ok.png")
    entry = c.entry_path(img)
    entry.parent.mkdir(parents=True)
    entry.write_bytes(b"PK\x03\x04 garbage")
    c.extractor.extract = lambda path, crop=None, name=None: {"pool5": _fake_features(3)}
    with pytest.warns(cache_mod.CorruptEntryWarning, match=r"ok\.png: corrupt cache entry"):
        got = c.load(img)
    np.testing.assert_array_equal(got.fmap, _fake_features(3).fmap)
    assert c._valid(entry)


# ======================================================================================
# ground truth: malformed, malicious, ambiguous names, leaks
# ======================================================================================
class _Exec:
    """Unpickling this calls exec, which writes a file."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('x')",))


def test_malicious_pickle_is_refused_before_running_anything(tmp_path):
    target = tmp_path / "pwned.txt"
    bare = tmp_path / "e.pkl"
    bare.write_bytes(pickle.dumps(_Exec(str(target))))
    with pytest.raises(gtf.UnsafePickleError, match=r"e\.pkl: refusing to load builtins\.exec"):
        gtf.read_gnd_pickle(bare)
    # hidden inside an otherwise valid ground truth
    inside = tmp_path / "gnd.pkl"
    inside.write_bytes(pickle.dumps({"imlist": ["a"], "qimlist": ["a"], "extra": _Exec(str(target)),
                                     "gnd": [{"ok": [0], "junk": []}]}))
    with pytest.raises(gtf.UnsafePickleError, match=r"gnd\.pkl"):
        gtf.read_gnd_pickle(inside)
    for mod in ("os", "subprocess", "posix"):
        evil = pickle.dumps({"imlist": ["a"]}).replace(b"imlist", b"imlist")  # harmless base
        assert evil  # a pickle naming os.system is refused the same way:
        raw = b"c" + mod.encode() + b"\nsystem\n(S'true'\ntR."
        with pytest.raises(gtf.UnsafePickleError, match=rf"{mod}\.system"):
            gtf.restricted_loads(raw, "x.pkl")
    assert not target.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_ground_truth_pickles_still_load(tmp_path, protocol):
    """The revisitop files hold numpy arrays: those (and only those) are allowed."""
    p = tmp_path / "gnd.pkl"
    gnd = [{"easy": np.array([0, 1]), "hard": np.array([2], np.int64), "junk": np.array([], np.int64),
            "bbx": np.array([1.0, 2.0, 10.0, 12.0])}]
    with open(p, "wb") as f:
        pickle.dump({"imlist": ["a", "b", "c"], "qimlist": ["a"], "gnd": gnd}, f, protocol=protocol)
    gt = gtf.read_gnd_pickle(p)
    assert gt["gnd"][0]["ok"].tolist() == [0, 1, 2] and gt["gnd"][0]["bbx"] == (1.0, 2.0, 10.0, 12.0)


MALFORMED = {
    "not a pickle": (b"hello", r"cannot read it as a pickle"),
    "a list": (pickle.dumps([1, 2]), r"expected a dict"),
    "no imlist": (pickle.dumps({"gnd": []}), r"missing key 'imlist'"),
    "gnd entry not a dict": (pickle.dumps({"imlist": ["a"], "qimlist": ["a"], "gnd": [[0]]}),
                             r"gnd\[0\].*expected a dict"),
    "non-integer index": (pickle.dumps({"imlist": ["a", "b"], "qimlist": ["a"],
                                        "gnd": [{"ok": [0.5]}]}), r"is not an integer"),
    "1-based index": (pickle.dumps({"imlist": ["a", "b"], "qimlist": ["a"],
                                    "gnd": [{"ok": [1, 2]}]}), r"look 1-based"),
    "negative index": (pickle.dumps({"imlist": ["a", "b"], "qimlist": ["a"],
                                     "gnd": [{"ok": [-1]}]}), r"index -1, out of range"),
    "no positive": (pickle.dumps({"imlist": ["a", "b"], "qimlist": ["a"],
                                  "gnd": [{"ok": [], "junk": [1]}]}), r"has no positive"),
    "name listed twice": (pickle.dumps({"imlist": ["a", "a"], "qimlist": ["a"],
                                        "gnd": [{"ok": [0]}]}), r"listed twice"),
    "qimlist/gnd length": (pickle.dumps({"imlist": ["a"], "qimlist": ["a", "a"],
                                         "gnd": [{"ok": [0]}]}), r"2 queries but 'gnd' has 1"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_ground_truth(tmp_path, case):
    data, pattern = MALFORMED[case]
    p = tmp_path / "bad_gnd.pkl"
    p.write_bytes(data)
    with pytest.raises(gtf.GroundTruthError, match=pattern) as ei:
        gtf.read_gnd_pickle(p)
    assert "bad_gnd.pkl" in str(ei.value)


def test_basename_in_two_subfolders_is_ambiguous(tmp_path):
    imgs, p = _byo(tmp_path, [{"ok": [0], "junk": []}], imlist=("x", "b"), qimlist=("b",))
    (imgs / "x.jpg").unlink()
    _save(_rgb(40, 30, 1), imgs / "one" / "x.jpg")
    _save(_rgb(40, 30, 2), imgs / "two" / "x.jpg")
    with pytest.raises(gtf.GroundTruthError, match=r"'x' is ambiguous.*one/x\.jpg, two/x\.jpg"):
        loaders.load_folder(imgs, p)
    # the relative path is unambiguous
    _, p2 = _byo(tmp_path, [{"ok": [0], "junk": []}], imlist=("one/x.jpg", "b"), qimlist=("b",),
                 make=False)
    assert loaders.load_folder(imgs, p2).images[0].endswith("one/x.jpg")


def test_stem_of_two_files_is_ambiguous(tmp_path):
    imgs, p = _byo(tmp_path, [{"ok": [0], "junk": []}], imlist=("x", "b"), qimlist=("b",))
    _save(_rgb(40, 30, 1), imgs / "x.png")
    with pytest.raises(gtf.GroundTruthError, match=r"'x' is ambiguous.*x\.jpg, x\.png"):
        loaders.load_folder(imgs, p)


def test_one_file_under_two_spellings_enters_once(tmp_path):
    imgs, p = _byo(tmp_path, [{"ok": [0], "junk": []}], imlist=("x", "x.jpg", "b"), qimlist=("b",),
                   make=False)
    for n in ("x", "b"):
        _save(_rgb(40, 30), imgs / f"{n}.jpg")
    with pytest.raises(gtf.GroundTruthError, match=r"'x' and 'x\.jpg' are the same file"):
        loaders.load_folder(imgs, p)


@pytest.mark.parametrize("how", ["hard link", "identical copy", "symlink"])
def test_training_image_that_is_a_database_image_is_a_leak(tmp_path, how):
    imgs, p = _byo(tmp_path, [{"ok": [0], "junk": []}])
    train = tmp_path / "train"
    train.mkdir()
    _save(_rgb(40, 30, seed=77), train / "fine.jpg")
    src, dst = imgs / "b.jpg", train / "copy_of_b.jpg"
    {"hard link": lambda: os.link(src, dst), "identical copy": lambda: dst.write_bytes(src.read_bytes()),
     "symlink": lambda: os.symlink(src, dst)}[how]()
    with pytest.raises(gtf.GroundTruthError, match=r"copy_of_b\.jpg is the same picture as .*b\.jpg"):
        loaders.load_folder(imgs, p, train_dir=train)
    dst.unlink()
    assert loaders.load_folder(imgs, p, train_dir=train).train_images == [str(train / "fine.jpg")]


def test_dataset_object_refuses_out_of_range_ground_truth(tmp_path):
    paths = [str(_save(_rgb(8, 8, i), tmp_path / f"{i}.png")) for i in range(3)]
    with pytest.raises(gtf.GroundTruthError, match=r"index 3, out of range .* 1-based"):
        RetrievalDataset("toy", paths, paths[:1], [None], [{"ok": np.array([1, 3]), "junk": []}])


# ======================================================================================
# downloads
# ======================================================================================
def _tgz(path: Path, files: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def _jpeg():
    b = io.BytesIO()
    _rgb(8, 8).save(b, "JPEG")
    return b.getvalue()


@pytest.fixture
def offline_holidays(tmp_path, monkeypatch):
    monkeypatch.setenv("SELCONV_OFFLINE", "1")
    monkeypatch.setitem(dl.RESOURCES, "holidays", dl._HOLIDAYS[:1])
    return tmp_path, tmp_path / "_archives" / "holidays_jpg1.tar.gz"


@pytest.mark.parametrize("bad", ["zero bytes", "valid but empty archive", "links only"])
def test_bad_placed_archive_is_neither_recorded_nor_marked(offline_holidays, bad):
    root, arch = offline_holidays
    arch.parent.mkdir(parents=True)
    if bad == "zero bytes":
        arch.write_bytes(b"")
    elif bad == "valid but empty archive":
        _tgz(arch, {})
    else:
        with tarfile.open(arch, "w:gz") as t:
            info = tarfile.TarInfo("jpg/l.jpg")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            t.addfile(info)
    with pytest.raises(tr.DownloadError, match=r"holidays_jpg1\.tar\.gz.*(empty|cannot unpack).*"
                                               r"(not marked unpacked|no checksum)"):
        dl.download_dataset("holidays", root=root, progress=False)
    side = arch.with_name(arch.name + ".sha256")
    assert not side.exists()
    assert not (root / "holidays" / "jpg" / ".unpacked_holidays_jpg1.tar.gz").exists()
    # following the advice (placing a good file) now works
    _tgz(arch, {"jpg/100000.jpg": _jpeg()})
    dl.download_dataset("holidays", root=root, progress=False)
    assert (root / "holidays" / "jpg" / "jpg" / "100000.jpg").is_file()
    assert side.read_text().split()[0] == dl.file_digest(arch)


def test_changed_archive_error_names_the_sidecar(offline_holidays):
    root, arch = offline_holidays
    _tgz(arch, {"jpg/100000.jpg": _jpeg()})
    dl.download_dataset("holidays", root=root, progress=False)
    marker = root / "holidays" / "jpg" / ".unpacked_holidays_jpg1.tar.gz"
    marker.unlink()
    _tgz(arch, {"jpg/100001.jpg": _jpeg()})  # another file placed later
    with pytest.raises(tr.ChecksumError, match=r"recorded in .*holidays_jpg1\.tar\.gz\.sha256.*"
                                               r"delete .*\.sha256 as well"):
        dl.download_dataset("holidays", root=root, progress=False)


def test_downloaded_ground_truth_is_read_safely_before_it_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("SELCONV_OFFLINE", "1")
    gnd = [r for r in dl.RESOURCES["roxford5k"] if r.filename == "gnd_roxford5k.pkl"]
    monkeypatch.setitem(dl.RESOURCES, "roxford5k", gnd)
    target = tmp_path / "roxford5k" / "gnd_roxford5k.pkl"
    target.parent.mkdir(parents=True)
    target.write_bytes(pickle.dumps(_Exec(str(tmp_path / "pwned"))))
    with pytest.raises(tr.DownloadError, match=r"(?s)refusing to load builtins\.exec.*not recorded"):
        dl.download_dataset("roxford5k", root=tmp_path, progress=False)
    assert not (tmp_path / "pwned").exists()
    assert not target.with_name(target.name + ".sha256").exists()


def test_download_hosts_use_https_where_offered():
    urls = {r.url for rs in dl.RESOURCES.values() for r in rs}
    for host in ("cmp.felk.cvut.cz", "www.robots.ox.ac.uk", "archive.org", "www.dropbox.com"):
        assert all(u.startswith("https://") for u in urls if host in u), host
    # every hash pinned is a full SHA-256
    assert all(len(v) == 64 for v in dl.KNOWN_SHA256.values())


@pytest.mark.parametrize("spelling", ["R-Oxford5k", "roxford5k", "ROXFORD_5K", "Holidays-Rotated",
                                      "holidays rotated", "Oxford105k", "ukbench"])
def test_download_and_load_accept_the_same_names(tmp_path, monkeypatch, spelling):
    monkeypatch.setenv("SELCONV_OFFLINE", "1")
    key = dataset_key(spelling, DATASETS)
    assert dataset_key(spelling, dl.RESOURCES) == key
    assert key in dl.manual_instructions(spelling, root=tmp_path)
    with pytest.raises(tr.OfflineError):
        dl.download_dataset(spelling, root=tmp_path, progress=False)
    with pytest.raises(loaders.DatasetNotFoundError, match=key.split("_")[0]):
        load_dataset(spelling, root=tmp_path)
    for f in (lambda n: dataset_key(n, DATASETS), lambda n: dataset_key(n, dl.RESOURCES)):
        with pytest.raises(KeyError, match="unknown dataset 'nope'"):
            f("nope")


# ======================================================================================
# evaluation inputs
# ======================================================================================
GND = [{"ok": np.array([0, 2]), "junk": np.array([1])}, {"ok": np.array([3]), "junk": np.array([], int)}]
FULL = np.array([[0, 1, 2, 3], [3, 2, 1, 0]]).T  # (nb=4, nq=2)

EVAL_CASES = {
    "repeated index (not a permutation)": (np.array([[0, 0, 0, 0], [3, 3, 3, 3]]).T, GND,
                                           ValueError, r"column 0 lists database index 0 more than once"),
    "negative rank": (np.array([[0, -1, 2, 3], [3, 2, 1, 0]]).T, GND, ValueError, r"negative"),
    "float ranks": (FULL + 0.5, GND, TypeError, r"integer"),
    "wrong number of columns": (FULL[:, :1], GND, ValueError, r"transpose"),
    "1-based gnd": (FULL, [{"ok": np.array([1, 4]), "junk": []}, {"ok": np.array([4])}],
                    gtf.GroundTruthError, r"look 1-based"),
    "gnd index too large": (FULL, [{"ok": np.array([9])}, {"ok": np.array([0])}],
                            gtf.GroundTruthError, r"index 9, out of range for the 4"),
    "empty query list": (np.zeros((4, 0), int), [], ValueError, r"no queries"),
    "gnd not a dict": (FULL, [[0], [1]], gtf.GroundTruthError, r"must be a dict"),
}


@pytest.mark.parametrize("fn", ["compute_map", "compute_map_and_precision"])
@pytest.mark.parametrize("case", sorted(EVAL_CASES))
def test_impossible_evaluation_input_is_refused(case, fn):
    ranks, gnd, exc, pattern = EVAL_CASES[case]
    with pytest.raises(exc, match=pattern):
        getattr(ev, fn)(ranks, gnd)


def test_transposed_ranks_are_caught_when_nq_equals_nb():
    rng = np.random.default_rng(0)
    n = 8  # UKBench-like: every image is a query
    ranks = np.stack([rng.permutation(n) for _ in range(n)], axis=1)
    gnd = [{"ok": np.array([4 * (i // 4) + j for j in range(4)])} for i in range(n)]
    ev.compute_map(ranks, gnd)
    with pytest.raises(ValueError, match="did you pass its transpose"):
        ev.compute_map(ranks.T, gnd)
    with pytest.raises(ValueError, match="more than once"):
        ev.ukbench_score(ranks.T)


def test_truncated_ranks_are_accepted_and_checked_against_the_database_size():
    ranks = np.array([[5, 1], [7, 3]])  # top-2 of a larger database
    m, aps = ev.compute_map(ranks, [{"ok": np.array([5, 9])}, {"ok": np.array([3])}])
    assert aps.tolist() == [0.5, 0.5 * (0 / 1 + 1 / 2)] or m > 0
    with pytest.raises(gtf.GroundTruthError, match="index 9, out of range for the 8"):
        ev.compute_map(ranks, [{"ok": np.array([5, 9])}, {"ok": np.array([3])}], n_database=8)


def test_truncated_ranks_that_look_complete_say_how_to_pass_the_database_size():
    ranks = np.array([[1, 0]]).T  # the top 2 of a 10-image database happen to be 0 and 1
    with pytest.raises(gtf.GroundTruthError, match=r"implied by ranks.*pass n_database="):
        ev.compute_map(ranks, [{"ok": np.array([1, 5])}])
    m, aps = ev.compute_map(ranks, [{"ok": np.array([1, 5])}], n_database=10)
    assert aps[0] == pytest.approx(ev.compute_ap(np.array([0]), 2))


def test_nan_or_empty_vectors_and_queries_are_refused():
    db = np.eye(4)
    q = np.array([[1.0, np.nan, 0, 0]])
    with pytest.raises(ValueError, match="qvecs contains NaN"):
        ev.evaluate(q, db, [{"ok": np.array([0])}])
    with pytest.raises(ValueError, match="dbvecs contains infinite"):
        ev.rank_by_inner_product(np.eye(4)[:1], np.where(db == 1, np.inf, 0))
    for f in (lambda: ev.evaluate(np.zeros((0, 4)), db, []),
              lambda: ev.compute_map(np.zeros((4, 0), int), []),
              lambda: ev.evaluate_revisited(np.zeros((4, 0), int), []),
              lambda: ev.rank_by_inner_product(np.zeros((0, 4)), db)):
        with pytest.raises(ValueError, match="no queries"):
            f()
    with pytest.raises(gtf.GroundTruthError, match="1-based"):
        ev.evaluate(np.eye(4)[:1], db, [{"ok": np.array([1, 4])}])


def test_golden_numbers_unchanged_by_the_checks():
    """A valid permutation still gives the same mAP (the golden files are in test_evaluation)."""
    m, aps = ev.compute_map(FULL, GND)
    assert aps[0] == pytest.approx(ev.compute_ap(np.array([0, 1]), 2))
    assert aps[1] == pytest.approx(1.0)


# ======================================================================================
# the method's parameters
# ======================================================================================
def _maps(n, hw=(3, 3), K=512, seed=0):
    rng = np.random.default_rng(seed)
    return [ImageFeatures(fmap=rng.random((*hw, K), dtype=np.float32) + 0.01, image_hw=(96, 96),
                          keypoints=np.zeros((0, 2), np.float32), name=f"im{i}") for i in range(n)]


def test_largest_preset_on_too_few_images_fails_before_fitting(monkeypatch):
    from selconv_lite.method import pipeline as pl

    calls = []
    monkeypatch.setattr(pl.PCAL2, "fit", lambda self, X, y=None: calls.append("pca") or self)
    p = pl.SelectiveConvPipeline.from_preset(8064)
    with pytest.raises(ValueError, match=r"has 256 masked local features .*needs at least 8161"):
        p.fit(_maps(4, hw=(8, 8)))
    assert calls == []  # nothing was fitted


def test_bad_parameters_are_refused_at_fit_and_at_transform():
    """``set_params`` only stores values (scikit-learn's contract); ``fit`` checks every
    parameter and ``transform``/``encode`` the ones used online (``alpha``, ``mask``), so a bad
    value set after ``fit`` is refused at the next use, naming the parameter."""
    from selconv_lite.core.types import ImageFeatures
    from selconv_lite.method.pipeline import SelectiveConvPipeline

    rng = np.random.default_rng(0)
    imgs = [ImageFeatures(np.abs(rng.standard_normal((4, 5, 8))).astype(np.float32), (64, 80),
                          name=f"im{i}")
            for i in range(6)]
    with pytest.raises(ValueError, match="unknown mask"):
        SelectiveConvPipeline(mask="nope", d=2, n_centroids=2, truncate=0).fit(imgs)
    p = SelectiveConvPipeline(d=2, n_centroids=2, truncate=0).fit(imgs)
    good = p.transform(imgs)
    assert p.set_params(alpha=2).alpha == 2  # stored, not checked
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 2"):
        p.transform(imgs)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 2"):
        p.encode(imgs[0])
    p.set_params(alpha=0.5, mask="nope")
    with pytest.raises(ValueError, match="unknown mask"):
        p.transform(imgs)
    np.testing.assert_array_equal(p.set_params(mask="max").transform(imgs), good)


# ======================================================================================
# command-line arguments
# ======================================================================================
def _blocked(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    return f / "out"


CLI_CASES = {
    "sweep: unknown parameter": (lambda t: sweep.main([str(FIXTURE_NB), "-p", "nope", "1", "--out", str(t)]),
                                 r"no parameter\(s\) \['nope'\]"),
    "sweep: value of the wrong type": (lambda t: sweep.main([str(FIXTURE_NB), "-p", "a", "abc", "--out", str(t)]),
                                       r"parameter 'a' expects int"),
    "sweep: same point twice": (lambda t: sweep.main([str(FIXTURE_NB), "-p", "a", "1", "1", "--out", str(t)]),
                                r"would both be written to the folder 'a-1'"),
    "sweep: no such notebook": (lambda t: sweep.main([str(t / "none.ipynb"), "-p", "a", "1"]),
                                r"no notebook .*none\.ipynb"),
    "sweep: unwritable --out": (lambda t: sweep.main([str(FIXTURE_NB), "-p", "a", "1", "--out", str(_blocked(t))]),
                                r"cannot write to the output folder .*a_file/out"),
    "series: unwritable --out": (lambda t: series.main(["--out", str(_blocked(t)), "--notebooks", str(t)]),
                                 r"cannot write to the output folder .*a_file/out"),
    "series: no notebook folder": (lambda t: series.main(["--out", str(t / "o"), "--notebooks", str(t / "none")]),
                                   r"no notebook folder .*none"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_usage_errors_exit_2_with_a_message(tmp_path, capsys, case):
    run, pattern = CLI_CASES[case]
    assert run(tmp_path) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    import re

    assert re.search(pattern, err), err
