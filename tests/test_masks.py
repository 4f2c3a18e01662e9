"""Masks (Sec. 3.2) against the authors' apply_mask.m run under Octave (tests/golden/a1, a2)."""
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from selconv_lite.method.masks import (EmptyMaskError, SiftMaskFallbackWarning, apply_mask, compute_mask,
                                mask_locations, max_mask, sift_mask, sum_mask)
from selconv_lite.core.types import ImageFeatures

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module", params=["a1_masks_7x9x16", "a2_masks_24x32x64"])
def g(request):
    return sio.loadmat(GOLDEN / f"{request.param}.mat")


def _sift(g, **kw):
    return sift_mask(g["f"][:2].T, (g["Himg"][0, 0], g["Wimg"][0, 0]), g["fea"].shape[:2],
                     one_based=True, **kw)


def test_max_mask_equals_golden(g):
    m = max_mask(g["fea"])
    assert m.dtype == bool
    np.testing.assert_array_equal(m, g["max_mask"].astype(bool))
    # the authors return mask(:) -- column-major
    np.testing.assert_array_equal(m.ravel(order="F"), g["max_mask_vec"].ravel().astype(bool))


def test_sum_mask_equals_golden(g):
    m = sum_mask(g["fea"])
    np.testing.assert_array_equal(m, g["sum_mask"].astype(bool))
    np.testing.assert_array_equal(m.ravel(order="F"), g["sum_mask_vec"].ravel().astype(bool))
    s = g["fea"].sum(axis=2)
    np.testing.assert_allclose(s, g["sum_map"], rtol=0, atol=1e-12)
    assert np.median(s) == pytest.approx(g["sum_thr"][0, 0], rel=1e-15)


def test_sift_mask_equals_golden(g):
    np.testing.assert_array_equal(_sift(g), g["sift_mask"].astype(bool))


def test_apply_mask_equals_golden(g):
    fea = g["fea"]
    for name, m in [("max", g["max_mask"]), ("sum", g["sum_mask"]), ("sift", g["sift_mask"])]:
        X = apply_mask(fea, m.astype(bool))
        np.testing.assert_array_equal(X.T, g[f"masked_{name}"])
    if "masked_none" in g:
        np.testing.assert_array_equal(apply_mask(fea, None).T, g["masked_none"])
        np.testing.assert_array_equal(apply_mask(fea, np.ones(fea.shape[:2], bool)).T,
                                      g["masked_none"])


def test_sift_rounding_is_half_away_from_zero(g):
    """The golden keypoints include exact .5 cases where np.round (half to even) differs:
    10 coordinates in a1 and 2 in a2 (golden README)."""
    from selconv_lite.core.utils import round_half_away
    f = g["f"][:2]
    Hf, Wf = g["fea"].shape[:2]
    rx = f[0] / (g["Wimg"][0, 0] / Wf)
    ry = f[1] / (g["Himg"][0, 0] / Hf)
    differ = np.sum(np.round(rx) != round_half_away(rx)) + np.sum(np.round(ry) != round_half_away(ry))
    assert differ == (10 if Hf == 7 else 2)
    np.testing.assert_array_equal(_sift(g), g["sift_mask"].astype(bool))
    if Hf == 7:  # in a1 a half-to-even rounding would even change the mask
        wrong = np.zeros((Hf, Wf), bool)
        for xi, yi in zip(np.round(rx).astype(int), np.round(ry).astype(int)):
            wrong[max(1, yi - 1) - 1:min(Hf, yi + 1), max(1, xi - 1) - 1:min(Wf, xi + 1)] = True
        assert not np.array_equal(wrong, g["sift_mask"].astype(bool))


def test_sift_zero_based_keypoints_are_shifted_to_vlfeat_frames(g):
    kp1 = g["f"][:2].T
    m0 = sift_mask(kp1 - 1.0, (g["Himg"][0, 0], g["Wimg"][0, 0]), g["fea"].shape[:2])
    np.testing.assert_array_equal(m0, g["sift_mask"].astype(bool))


def test_max_mask_ties_and_degenerate_channels():
    a1 = sio.loadmat(GOLDEN / "a1_masks_7x9x16.mat")
    fea = a1["fea"]
    # channel 5 (1-based) is all zero, channel 9 constant: both select (0, 0)
    for ch in (4, 8):
        m = max_mask(fea[:, :, ch:ch + 1])
        assert m.sum() == 1 and m[0, 0]
    # a hand-made tie: the maximum 5 occurs at (2, 1), (0, 2) and (1, 1) -> first column-major
    # is column 1 (the smallest w), row 1 (the smallest h in that column)
    F = np.zeros((3, 4, 1))
    F[2, 1, 0] = F[0, 2, 0] = F[1, 1, 0] = 5
    m = max_mask(F)
    assert m.sum() == 1 and m[1, 1]


def test_max_mask_keeps_at_most_k_unique_locations():
    rng = np.random.default_rng(0)
    F = rng.random((6, 8, 20)).astype(np.float32)
    m = max_mask(F)
    flat = F.reshape(-1, 20)
    peaks = {np.unravel_index(np.argmax(F[:, :, k]), (6, 8)) for k in range(20)}
    assert m.sum() == len(peaks) <= 20
    assert all(m[p] for p in peaks)
    assert flat.dtype == np.float32


def test_mask_locations_are_column_major():
    m = np.zeros((3, 3), bool)
    m[2, 0] = m[0, 1] = m[1, 0] = True
    np.testing.assert_array_equal(mask_locations(m), [[1, 0], [2, 0], [0, 1]])
    F = np.arange(3 * 3 * 2, dtype=float).reshape(3, 3, 2)
    np.testing.assert_array_equal(apply_mask(F, m), F[[1, 2, 0], [0, 0, 1]])


def test_sift_mask_radius0_is_eq1():
    # image 64x64, grid 4x4: ratio 16; x=24 -> 1.5 -> 2 (half away), y=40 -> 2.5 -> 3 (1-based)
    m = sift_mask(np.array([[24.0, 40.0]]), (64, 64), (4, 4), radius=0, one_based=True)
    expected = np.zeros((4, 4), bool)
    expected[2, 1] = True
    np.testing.assert_array_equal(m, expected)
    # a keypoint near the origin maps to cell 0 (clamped, MATLAB would index 0)
    m = sift_mask(np.array([[0.0, 0.0]]), (64, 64), (4, 4), radius=0)
    assert m.sum() == 1 and m[0, 0]
    # radius 1 marks the 3x3 neighbourhood, clipped at the border
    m = sift_mask(np.array([[24.0, 40.0]]), (64, 64), (4, 4), radius=1, one_based=True)
    assert m[1:4, 0:3].all() and m.sum() == 9


def test_sift_mask_without_keypoints_falls_back_to_all():
    with pytest.warns(SiftMaskFallbackWarning, match="img7"):
        m = sift_mask(np.zeros((0, 2)), (100, 100), (5, 6), name="img7")
    assert m.shape == (5, 6) and m.all()
    # keypoints all outside the grid count as none
    with pytest.warns(SiftMaskFallbackWarning):
        m = sift_mask(np.array([[1000.0, 1000.0]]), (100, 100), (5, 6))
    assert m.all()
    im = ImageFeatures(np.ones((5, 6, 3), np.float32), (100, 100), np.zeros((0, 2), np.float32), "x")
    with pytest.warns(SiftMaskFallbackWarning, match="'x'"):
        assert compute_mask("sift", im).all()


def test_all_zero_map():
    F = np.zeros((4, 5, 8), np.float32)
    m = max_mask(F)
    assert m.sum() == 1 and m[0, 0]
    assert sum_mask(F).all()  # every sum equals the median


def test_bad_inputs_name_the_problem():
    F = np.ones((4, 5, 3), np.float32)
    F[1, 2, 0] = np.nan
    im = ImageFeatures(F, (64, 80), name="bad.jpg")
    for method in ("max", "sum", "sift", "none"):
        with pytest.raises(ValueError, match="NaN.*|.*bad.jpg"):
            compute_mask(method, im)
    with pytest.raises(ValueError, match="bad.jpg"):
        compute_mask("max", im)
    with pytest.raises(EmptyMaskError, match="keeps no location.*q.jpg|q.jpg.*keeps no"):
        apply_mask(np.ones((2, 2, 3)), np.zeros((2, 2), bool), name="q.jpg")
    with pytest.raises(ValueError, match="shape"):
        apply_mask(np.ones((2, 2, 3)), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="unknown mask"):
        compute_mask("median", ImageFeatures(np.ones((2, 2, 3)), (2, 2)))
    with pytest.raises(ValueError, match=r"\(H, W, K\)"):
        max_mask(np.ones((4, 5)))


def test_compute_mask_dispatch():
    rng = np.random.default_rng(1)
    F = rng.random((6, 7, 10)).astype(np.float32)
    im = ImageFeatures(F, (96, 112), rng.random((5, 2)).astype(np.float32) * 90, "r")
    np.testing.assert_array_equal(compute_mask("max", im), max_mask(F))
    np.testing.assert_array_equal(compute_mask("sum", im), sum_mask(F))
    np.testing.assert_array_equal(compute_mask("sum50", im), sum_mask(F))
    np.testing.assert_array_equal(compute_mask("sift", im),
                                  sift_mask(im.keypoints, im.image_hw, (6, 7)))
    assert compute_mask("none", im).all()
