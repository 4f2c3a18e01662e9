"""FeatureExtractor.extract_many (preparation overlapping the network, equal-size batches) gives
the features of the reference path, extract() one image at a time; its progress bar shows an ETA
in interactive runs and stays off in headless ones."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from selconv_lite.features.extraction import EmptyFeatureMapError, FeatureExtractor, ImageError

#: Largest |fast - reference| allowed on a feature map. A batch of one image is bit-identical;
#: oneDNN may block a batch of several images differently, measured up to 3e-5 on maps of
#: magnitude ~100 (float32 rounding).
ATOL = 1e-4


def _photo(path, w, h, seed):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC).save(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    # two pairs of equal size (batchable) separated by a portrait image
    sizes = [(200, 150), (200, 150), (150, 200), (120, 90), (200, 150)]
    return [_photo(d / f"im{k}.png", w, h, k) for k, (w, h) in enumerate(sizes)]


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor(layers=("pool5", "conv4_3"), max_dim=96, device="cpu")


def _assert_same(fast, ref, atol):
    assert len(fast) == len(ref)
    for a, b in zip(fast, ref):
        assert list(a) == list(b)
        for layer in b:
            fa, fb = a[layer], b[layer]
            assert fa.name == fb.name and fa.image_hw == fb.image_hw
            assert fa.fmap.shape == fb.fmap.shape and fa.fmap.dtype == np.float32
            assert fa.fmap.flags.c_contiguous
            np.testing.assert_allclose(fa.fmap, fb.fmap, rtol=0, atol=atol)
            np.testing.assert_array_equal(fa.keypoints, fb.keypoints)


@pytest.mark.parametrize("batch_size,prefetch", [(1, 0), (1, 2), (3, 2), (2, 0)])
def test_fast_path_equals_reference(fx, images, batch_size, prefetch):
    crops = [None, (10, 5, 180, 140), None, None, None]
    ref = [fx.extract(p, crop=c) for p, c in zip(images, crops)]
    fast = list(fx.extract_many(images, crops=crops, batch_size=batch_size, prefetch=prefetch))
    _assert_same(fast, ref, 0.0 if batch_size == 1 else ATOL)
    assert float(np.abs(ref[0]["pool5"].fmap).max()) > 1.0  # not a trivially zero map


def test_batch_really_batches_equal_sizes(fx, images, monkeypatch):
    seen = []
    orig = fx.forward_batch

    def spy(rgbs):
        rgbs = list(rgbs)
        seen.append(len(rgbs))
        return orig(rgbs)

    monkeypatch.setattr(fx, "forward_batch", spy)
    out = list(fx.extract_many(images, batch_size=4, prefetch=0))
    assert len(out) == 5 and sum(seen) == 5
    assert seen[0] == 2  # the first two (equal size) in one pass, the portrait one apart


def test_forward_batch_refuses_mixed_sizes(fx):
    a = np.zeros((64, 96, 3), np.uint8)
    b = np.zeros((96, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="one size"):
        fx.forward_batch([a, b])
    assert fx.forward_batch([]) == []


def test_bad_image_raises_in_order(fx, images, tmp_path):
    bad = tmp_path / "missing.png"
    seq = [images[0], images[1], bad, images[2]]
    got = []
    with pytest.raises(ImageError, match="missing.png: no such image file"):
        for f in fx.extract_many(seq, batch_size=3, prefetch=3):
            got.append(f)
    assert len(got) == 2  # the images before the bad one were delivered
    tiny = _photo(tmp_path / "tiny.png", 400, 16, 0)  # 96 x 4 after resizing: empty pool5 map
    with pytest.raises(EmptyFeatureMapError, match="tiny.png"):
        list(fx.extract_many([tiny], prefetch=1))


@pytest.mark.parametrize("kw,msg", [({"batch_size": 0}, "batch_size"), ({"prefetch": -1}, "prefetch"),
                                    ({"crops": [None]}, "crops")])
def test_bad_arguments(fx, images, kw, msg):
    with pytest.raises(ValueError, match=msg):
        list(fx.extract_many(images[:2], **kw))


def test_progress_bar_with_eta_unless_headless(fx, images, capsys, monkeypatch):
    monkeypatch.delenv("SELCONV_HEADLESS", raising=False)
    list(fx.extract_many(images[:2], progress=True))
    err = capsys.readouterr().err
    assert "features (pool5, conv4_3, max_dim=96)" in err and "2/2" in err
    assert "<00:00" in err  # tqdm's elapsed<remaining: the ETA
    monkeypatch.setenv("SELCONV_HEADLESS", "1")
    list(fx.extract_many(images[:2], progress=True))
    assert "features (" not in capsys.readouterr().err
