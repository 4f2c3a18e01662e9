"""The DataLoader input pipeline (features.loader) gives the maps of FeatureExtractor.extract for
the same images: bit-identical one image per batch, within float32 rounding in batches of
several equal-size images; batches hold one image size; SIFT keypoints only when asked; bad
images are raised or reported with their index."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from selconv_lite.features.extraction import FeatureExtractor, ImageError
from selconv_lite.features.loader import iter_batches, iter_features

ROOT = Path(__file__).resolve().parents[1]
#: oneDNN may block a batch of several images differently from one image (see
#: tests/test_extraction_fast.py): float32 rounding, relative to the largest value of the map.
RTOL_MAX = 2e-5


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor(layers=("pool5", "conv4_3"), max_dim=64, device="cpu", sift=True)


@pytest.fixture(scope="module")
def photos():
    return sorted(str(p) for p in (ROOT / "data" / "default" / "jpg").glob("*.jpg"))[:7]


@pytest.fixture(scope="module")
def reference(fx, photos):
    crops = [None, (5, 5, 1000, 700)] + [None] * (len(photos) - 2)
    return crops, [fx.extract(p, crop=c) for p, c in zip(photos, crops)]


@pytest.mark.parametrize("batch_size,num_workers", [(1, 0), (3, 0), (4, 2)])
def test_same_maps_as_extract(fx, photos, reference, batch_size, num_workers):
    crops, ref = reference
    got = dict(iter_features(fx, photos, crops=crops, batch_size=batch_size, num_workers=num_workers))
    assert sorted(got) == list(range(len(photos)))
    for i, r in enumerate(ref):
        for layer in fx.layers:
            a, b = got[i][layer], r[layer]
            assert a.name == b.name and a.image_hw == b.image_hw and a.fmap.dtype == np.float32
            tol = 0 if batch_size == 1 else RTOL_MAX * float(np.abs(b.fmap).max())
            np.testing.assert_allclose(a.fmap, b.fmap, rtol=0, atol=tol)
            assert isinstance(a.keypoints, np.ndarray) and a.keypoints.dtype == np.float32
            np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert float(np.abs(ref[0]["pool5"].fmap).max()) > 1.0


def test_batches_are_equal_size_buckets(fx, photos, reference):
    _, ref = reference
    seen = []
    for b in iter_batches(fx, photos, batch_size=3, num_workers=0, sift=False):
        assert b.x.shape[0] == len(b.index) <= 3 and b.x.dtype.is_floating_point
        assert b.x.shape[2:] == b.image_hw[0] and len(set(b.image_hw)) == 1
        assert all(k.shape == (0, 2) for k in b.keypoints)  # no SIFT unless asked
        for j, i in enumerate(b.index):
            np.testing.assert_array_equal(b.x[j].permute(1, 2, 0).numpy().astype(np.uint8),
                                          fx.prepare(photos[i]))
        seen += list(b.index)
    assert sorted(seen) == list(range(len(photos)))
    shapes = {r["pool5"].image_hw for r in ref[2:]}
    assert len(shapes) < len(photos) - 2  # the set has repeated sizes: some batches hold several


def test_bad_images(fx, photos, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    good = shutil.copy(photos[0], tmp_path / "ok.jpg")
    paths = [str(good), str(bad), str(good)]
    with pytest.raises(ImageError, match="broken.jpg"):
        list(iter_batches(fx, paths, batch_size=2, num_workers=0))
    errs, ok = {}, []
    for b in iter_batches(fx, paths, batch_size=2, num_workers=1, on_error="skip"):
        errs.update(b.errors)
        ok += [] if b.x is None else list(b.index)
    assert list(errs) == [1] and sorted(ok) == [0, 2]
    with pytest.raises(ValueError, match="batch_size"):
        list(iter_batches(fx, paths, batch_size=0))
    with pytest.raises(ValueError, match="3 images but 1 crops"):
        list(iter_batches(fx, paths, crops=[None]))
