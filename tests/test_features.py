"""Tests of selconv_lite.features.extraction: image loading/conversion, crop-then-resize (paper Sec. 5.1),
SIFT keypoints on the resized image (Sec. 3.2.1), per-layer ImageFeatures, and the bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from selconv_lite.features.extraction import (
    EmptyFeatureMapError,
    crop_box_pixels,
    FeatureExtractor,
    ImageError,
    crop_image,
    detect_sift,
    load_image,
    resize_max_dim,
    resized_hw,
)
from selconv_lite.core.types import ImageFeatures


def _textured(h, w, seed=0) -> np.ndarray:
    """A blocky random RGB image with corners (SIFT finds keypoints on it)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
    return np.array(Image.fromarray(small).resize((w, h), Image.Resampling.NEAREST))


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor(layers=("pool5",), max_dim=96, device="cpu")


# ---------------------------------------------------------------------------------- conversion
def test_exif_orientation_is_honoured(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)   # left half red
    a[:, 20:] = (0, 0, 255)   # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6          # "rotate 90 degrees clockwise to display"
    p = tmp_path / "rotated.jpg"
    Image.fromarray(a).save(p, exif=exif, quality=95)
    img = load_image(p)
    assert img.size == (20, 40)                      # W, H swapped
    rgb = np.asarray(img).astype(int)
    assert rgb[2, 10, 0] > 200 and rgb[2, 10, 2] < 60    # top is the red (left) half
    assert rgb[-3, 10, 2] > 200 and rgb[-3, 10, 0] < 60  # bottom is blue


def test_grayscale_bilevel_and_palette(tmp_path):
    g = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    rgb = np.asarray(load_image(tmp_path / "g.png"))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert (rgb == g[:, :, None]).all()

    Image.fromarray(g > 100).convert("1").save(tmp_path / "b.png")
    rgb = np.asarray(load_image(tmp_path / "b.png"))
    assert set(np.unique(rgb)) == {0, 255} and (rgb[..., 0] == 255).sum() == (g > 100).sum()

    colour = _textured(16, 16)
    pal = Image.fromarray(colour).quantize(colors=16)
    pal.save(tmp_path / "p.png")
    assert pal.mode == "P"
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "p.png")), np.asarray(pal.convert("RGB")))


def test_transparency_is_composited_on_white(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 0] = 200                       # red channel everywhere
    a[:2, :, 3] = 255                     # top half opaque, bottom half fully transparent
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    rgb = np.asarray(load_image(tmp_path / "a.png"))
    assert (rgb[:2] == (200, 0, 0)).all()
    assert (rgb[2:] == 255).all()         # transparent -> white, not the hidden (200, 0, 0)

    la = Image.fromarray(np.stack([np.full((4, 4), 10, np.uint8), np.zeros((4, 4), np.uint8)], -1), "LA")
    la.save(tmp_path / "la.png")
    assert (np.asarray(load_image(tmp_path / "la.png")) == 255).all()

    pal = Image.fromarray(np.zeros((4, 4), np.uint8), "P")
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pt.png", transparency=0)
    assert (np.asarray(load_image(tmp_path / "pt.png")) == 255).all()


def test_cmyk(tmp_path):
    a = np.zeros((8, 8, 4), np.uint8)
    a[..., 1] = 255                       # magenta ink only -> (255, 0, 255)
    Image.fromarray(a, "CMYK").save(tmp_path / "c.jpg", quality=100)
    Image.fromarray(a, "CMYK").save(tmp_path / "c.tif")
    for name in ("c.jpg", "c.tif"):
        rgb = np.asarray(load_image(tmp_path / name)).astype(int)
        assert rgb.shape == (8, 8, 3)
        np.testing.assert_allclose(rgb.mean(axis=(0, 1)), (255, 0, 255), atol=6)


def test_16bit_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode in ("I;16", "I")
    rgb = np.asarray(load_image(tmp_path / "g16.png"))
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (rgb[..., 0] == rgb[..., 2]).all()
    Image.fromarray(a.astype(np.int32), "I").save(tmp_path / "g32.tif")
    assert np.asarray(load_image(tmp_path / "g32.tif"))[0, :, 1].tolist() == [0, 1, 128, 255]


def test_pil_image_input_and_name():
    img = Image.fromarray(_textured(64, 64))
    out = FeatureExtractor(max_dim=64, device="cpu", sift=False).extract(img, name="mine")
    assert out["pool5"].name == "mine" and out["pool5"].keypoints.shape == (0, 2)


# ------------------------------------------------------------------------------ crop and resize
@pytest.mark.parametrize("hw,max_dim,expected", [
    ((100, 200), 64, (32, 64)), ((200, 100), 64, (64, 32)), ((30, 40), 80, (60, 80)),
    ((683, 1024), 1024, (683, 1024)), ((333, 500), 724, (483, 724)), ((3264, 2448), 1024, (1024, 768)), ((10, 20), None, (10, 20)),
])
def test_resize_keeps_aspect(hw, max_dim, expected):
    assert resized_hw(hw, max_dim) == expected
    img = Image.new("RGB", (hw[1], hw[0]))
    assert resize_max_dim(img, max_dim).size == (expected[1], expected[0])


def test_crop_applied_before_resize(tmp_path):
    a = _textured(120, 240, seed=3)
    p = tmp_path / "wide.png"
    Image.fromarray(a).save(p)
    crop = (59.6, 10.2, 159.4, 109.5)   # Oxford-style box: rounded, x2/y2 inclusive -> x 60..159, y 10..110
    region = a[10:111, 60:160]
    assert region.shape[:2] == (101, 100)

    # default (authors' code): the crop is scaled by the factor that brings the FULL image to max_dim
    fx = FeatureExtractor(max_dim=96, device="cpu")
    rgb = fx.prepare(p, crop=crop)
    scale = 96 / 240
    assert rgb.shape == (41, 40, 3) == (int(np.ceil(101 * scale)), int(np.ceil(100 * scale)), 3)
    np.testing.assert_array_equal(rgb, np.asarray(Image.fromarray(region).resize((40, 41), Image.Resampling.BICUBIC)))
    f = fx.extract(p, crop=crop)["pool5"]
    assert f.image_hw == (41, 40) and f.fmap.shape == (1, 1, 512)

    # crop_scale="crop": the crop's longer side becomes max_dim
    fxc = FeatureExtractor(max_dim=96, device="cpu", crop_scale="crop")
    rgb = fxc.prepare(p, crop=crop)
    assert rgb.shape == (96, 96, 3)   # 101 x 100 -> 96 x ceil(100 * 96 / 101) = 96 x 96
    np.testing.assert_array_equal(rgb, np.asarray(Image.fromarray(region).resize((96, 96), Image.Resampling.BICUBIC)))
    with pytest.raises(ValueError, match="crop_scale"):
        FeatureExtractor(crop_scale="box", device="cpu")


def test_crop_box_convention_matches_crop_qim():
    """crop_qim.m: bbx = uint32(max(bbx + 1, 1)); im(bbx(2):min(bbx(4),H), bbx(1):min(bbx(3),W), :)."""
    def crop_qim(bbx, H, W):  # the MATLAB code, transcribed with 1-based inclusive ranges
        b = [int(np.floor(max(v + 1, 1) + 0.5)) for v in bbx]
        return b[0] - 1, b[1] - 1, min(b[2], W), min(b[3], H)   # -> 0-based (left, top, right excl., bottom excl.)

    for bbx in [(136.5, 34.1, 648.5, 955.7), (0, 0, 10, 10), (-3.2, 2.5, 1023.9, 767.2), (5.49, 5.5, 5.5, 6.5)]:
        assert crop_box_pixels(bbx, (1024, 768)) == crop_qim(bbx, 768, 1024)
    img = Image.new("RGB", (50, 40))
    assert crop_image(img, (10, 10, 19, 29)).size == (10, 20)          # x2, y2 inclusive
    assert crop_image(img, (-5, -5, 20, 1000)).size == (21, 40)        # clipped to the image


@pytest.mark.parametrize("crop", [(50, 50, 49, 60), (300, 0, 400, 50), (10, 20, 5, 40), (1, 2, 3), "abc",
                                  (0, 0, float("nan"), 5)])
def test_bad_crop_names_the_file(tmp_path, fx, crop):
    p = tmp_path / "img.png"
    Image.fromarray(_textured(64, 64)).save(p)
    with pytest.raises(ImageError, match="img.png: crop"):
        fx.extract(p, crop=crop)


# ---------------------------------------------------------------------------------- extraction
def test_extract_outputs_imagefeatures_per_layer(tmp_path):
    p = tmp_path / "tall.png"
    Image.fromarray(_textured(200, 130, seed=5)).save(p)
    fx = FeatureExtractor(layers=("pool5", "conv5_1", "conv4_3"), max_dim=150, device="cpu")
    out = fx.extract(p)
    assert list(out) == ["pool5", "conv5_1", "conv4_3"]
    H, W = resized_hw((200, 130), 150)
    assert (H, W) == (150, 98)
    for layer, f in out.items():
        assert isinstance(f, ImageFeatures) and f.name == str(p)
        assert f.image_hw == (H, W)
        assert f.fmap.dtype == np.float32 and f.fmap.flags.c_contiguous
        s = 16 if layer.startswith("conv4") else 32
        assert f.fmap.shape == (H // s, W // s, 512)
        assert (f.fmap >= 0).all() and f.fmap.max() > 0
    # the (H, W, K) map equals the trunk's (K, H, W) output transposed
    import torch
    with torch.inference_mode():
        ref = fx.trunk(fx.to_tensor(fx.prepare(p)), ("pool5",))["pool5"][0].numpy()
    np.testing.assert_array_equal(out["pool5"].fmap, ref.transpose(1, 2, 0))


def test_every_layer_of_a_union_pass_equals_its_own_pass(tmp_path):
    """What the feature cache relies on to store several layers from one forward pass: a layer's
    map does not depend on the other layers asked for with it, bit for bit."""
    from selconv_lite.features.backbone import LAYERS

    p = tmp_path / "wide.png"
    Image.fromarray(_textured(130, 200, seed=7)).save(p)
    union = FeatureExtractor(layers=LAYERS, max_dim=160, device="cpu").extract(p)
    for layer in LAYERS:
        alone = FeatureExtractor(layers=(layer,), max_dim=160, device="cpu").extract(p)[layer]
        assert union[layer].fmap.shape == alone.fmap.shape
        assert np.array_equal(union[layer].fmap, alone.fmap), layer
        np.testing.assert_array_equal(union[layer].keypoints, alone.keypoints)
        assert alone.fmap.max() > 0
    assert np.array_equal(union["conv5_3"].fmap, union["pool5"].fmap)  # conv5_3 + 2x2 pool is pool5


def test_sift_keypoints_on_the_resized_image(tmp_path, fx):
    p = tmp_path / "big.png"
    Image.fromarray(_textured(300, 400, seed=7)).save(p)
    f = fx.extract(p)["pool5"]
    H, W = f.image_hw
    assert (H, W) == (72, 96)
    kp = f.keypoints
    assert kp.dtype == np.float32 and kp.ndim == 2 and kp.shape[1] == 2 and len(kp) > 0
    assert (kp[:, 0] >= 0).all() and (kp[:, 0] < W).all() and (kp[:, 1] >= 0).all() and (kp[:, 1] < H).all()
    np.testing.assert_array_equal(kp, detect_sift(fx.prepare(p)))
    assert len(np.unique(kp, axis=0)) == len(kp)
    # a flat image has no keypoint (the SIFT mask is then ignored downstream, Sec. 5.1)
    assert detect_sift(np.full((64, 64, 3), 128, np.uint8)).shape == (0, 2)


def test_sift_settings_follow_the_authors_vl_sift_call(monkeypatch):
    """vl_sift(I, 'PeakThresh', 4, 'edgethresh', 10), first octave 0 -> OpenCV parameters."""
    import cv2

    created = {}
    real = cv2.SIFT_create
    monkeypatch.setattr(cv2, "SIFT_create", lambda **kw: created.update(kw) or real(**kw))
    monkeypatch.setattr("selconv_lite.features.extraction._SIFT_CACHE", {})
    rgb = _textured(160, 160, seed=11)
    default = detect_sift(rgb)
    assert created == {"nOctaveLayers": 3, "contrastThreshold": pytest.approx(12 / 255), "edgeThreshold": 10.0}
    with_octave_minus_1 = detect_sift(rgb, upsample=True)
    assert len(with_octave_minus_1) >= len(default) > 0
    assert len(detect_sift(rgb, peak_thresh=0.5)) >= len(default)
    # default keypoints are a subset of the upsampled run's (octave -1 only adds)
    assert {tuple(k) for k in default} <= {tuple(k) for k in with_octave_minus_1}


def test_upscales_small_images(tmp_path, fx):
    p = tmp_path / "small.png"
    Image.fromarray(_textured(24, 40)).save(p)
    f = fx.extract(p)["pool5"]
    assert f.image_hw == (58, 96) and f.fmap.shape == (1, 3, 512)


# ---------------------------------------------------------------------------------- bad inputs
def test_empty_feature_map_names_the_image(tmp_path):
    p = tmp_path / "thin.png"
    Image.fromarray(_textured(8, 600)).save(p)
    fx = FeatureExtractor(max_dim=512, device="cpu")
    with pytest.raises(EmptyFeatureMapError, match=r"thin.png: .*512x7 .*pool5 feature map is empty"):
        fx.extract(p)
    # conv4 layers need only 16 px; a crop can also be too small
    fx4 = FeatureExtractor(layers=("conv4_1",), max_dim=None, device="cpu")
    Image.fromarray(_textured(20, 40)).save(tmp_path / "ok.png")
    assert fx4.extract(tmp_path / "ok.png")["conv4_1"].fmap.shape == (1, 2, 512)
    with pytest.raises(EmptyFeatureMapError, match="ok.png"):
        fx4.extract(tmp_path / "ok.png", crop=(0, 0, 10, 20))


def test_missing_file(tmp_path, fx):
    with pytest.raises(ImageError, match="nothere.jpg: no such image file"):
        fx.extract(tmp_path / "nothere.jpg")
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)


def test_not_an_image(tmp_path, fx):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a JPEG")
    with pytest.raises(ImageError, match="notes.jpg: cannot read the image"):
        fx.extract(p)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.png"):
        fx.extract(empty)


def test_truncated_jpeg(tmp_path, fx):
    good = tmp_path / "good.jpg"
    Image.fromarray(_textured(128, 128)).save(good, quality=90)
    data = good.read_bytes()
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated.jpg: cannot read the image"):
        fx.extract(bad)


def test_bad_options():
    with pytest.raises(ValueError, match="unknown layer"):
        FeatureExtractor(layers=("fc6",), device="cpu")
    with pytest.raises(ValueError, match="max_dim"):
        FeatureExtractor(max_dim=0, device="cpu")
    with pytest.raises(ValueError, match="at least one layer"):
        FeatureExtractor(layers=(), device="cpu")
