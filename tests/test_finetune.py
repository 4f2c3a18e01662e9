"""Tests of selconv_lite.experiments.finetune: converters on FAKE weight files built here (never a download),
the offline download failure, the conv5 block on cached pool4 maps, and a short fine-tuning run."""
from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from selconv_lite.data import transfer
from selconv_lite.experiments import finetune as ft
from selconv_lite.experiments import finetune_weights as ftw
from selconv_lite.features.backbone import CONV_NAMES, WeightsError, load_vgg16_trunk
from selconv_lite.core.types import ImageFeatures

CH = ftw.VGG16_CHANNELS


def _fake_convs(seed=0, scale=0.01):
    """13 random conv layers with VGG16's shapes, PyTorch layout (out, in, 3, 3)."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(o, i, 3, 3, generator=g) * scale, torch.randn(o, generator=g) * scale) for i, o in CH]


@pytest.fixture(scope="module")
def fake_convs():
    return _fake_convs()


# ----------------------------------------------------------------------------------------------
# cirtorch checkpoint
# ----------------------------------------------------------------------------------------------
def _write_cirtorch(path, convs, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), arch="vgg16"):
    sd = {}
    for name, (w, b) in zip(CONV_NAMES, convs):
        i = ftw.TV_CONV_INDEX[name]
        sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = w, b
    sd["pool.p"] = torch.tensor([3.0])
    meta = {"architecture": arch, "pooling": "gem", "local_whitening": False, "regional": False,
            "whitening": False, "mean": list(mean), "std": list(std), "outputdim": 512}
    torch.save({"state_dict": sd, "meta": meta}, path)


def test_cirtorch_conversion_loads_in_backbone(tmp_path, fake_convs):
    src = tmp_path / "retrievalSfM120k-vgg16-gem-fake.pth"
    _write_cirtorch(src, fake_convs)
    out = ftw.convert_cirtorch_checkpoint(src)
    assert out == tmp_path / "retrievalSfM120k-vgg16-gem-fake-trunk.pt"
    trunk = load_vgg16_trunk(out, device="cpu")
    for name, (w, b) in zip(CONV_NAMES, fake_convs):
        conv = trunk.features[ftw.TV_CONV_INDEX[name]]
        assert torch.equal(conv.weight, w) and torch.equal(conv.bias, b)
    # input (x/255 - mean)/std  ==  (x - 255 mean) / (255 std)
    x = torch.rand(1, 3, 4, 5) * 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(trunk.normalize(x), (x / 255 - mean) / std, rtol=1e-5, atol=1e-5)


def test_cirtorch_rejects_other_architectures_and_missing_layers(tmp_path, fake_convs):
    src = tmp_path / "resnet.pth"
    _write_cirtorch(src, fake_convs, arch="resnet101")
    with pytest.raises(WeightsError, match="only 'vgg16'"):
        ftw.convert_cirtorch_checkpoint(src)
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"features.0.weight": fake_convs[0][0]}, "meta": {"architecture": "vgg16"}}, bad)
    with pytest.raises(WeightsError, match="missing features.0.bias"):
        ftw.convert_cirtorch_checkpoint(bad)
    with pytest.raises(WeightsError, match="not a cirtorch checkpoint"):
        torch.save({"foo": 1}, bad)
        ftw.convert_cirtorch_checkpoint(bad)


def test_cirtorch_untrusted_pickle_is_refused(tmp_path, fake_convs):
    src = tmp_path / "withnumpy.pth"
    _write_cirtorch(src, fake_convs)
    state = torch.load(src, weights_only=True)
    state["meta"]["Lw"] = {"retrieval-SfM-120k": {"ss": {"m": np.zeros((512, 1)), "P": np.eye(2)}}}
    torch.save(state, src)
    with pytest.raises(WeightsError, match="trusted=True"):
        ftw.convert_cirtorch_checkpoint(src)
    out = ftw.convert_cirtorch_checkpoint(src, tmp_path / "ok.pt", trusted=True)
    assert load_vgg16_trunk(out, device="cpu").features[0].weight.shape == (64, 3, 3, 3)


# ----------------------------------------------------------------------------------------------
# MatConvNet .mat (DagNN siaMAC-like and SimpleNN)
# ----------------------------------------------------------------------------------------------
def _mat_convs(convs):
    """The fake convs in MatConvNet layout: filters (kh, kw, in, out), biases (out,)."""
    return [(w.permute(2, 3, 1, 0).numpy().astype(np.float32), b.numpy().astype(np.float32)) for w, b in convs]


def _write_dagnn(path, convs, average_image):
    import scipy.io

    mconvs = _mat_convs(convs)
    layers, params = [], []
    for branch in ("a", "b"):  # a siamese net: two branches sharing every filter
        prev = f"input_{branch}"
        for k, name in enumerate(CONV_NAMES):
            layers.append({"name": f"{name}_{branch}", "type": "dagnn.Conv", "inputs": [prev],
                           "outputs": [f"x{k}_{branch}"], "params": np.array([f"{name}f", f"{name}b"], dtype=object),
                           "block": {"size": np.array(mconvs[k][0].shape, float)}})
            layers.append({"name": f"relu{k}_{branch}", "type": "dagnn.ReLU", "inputs": [f"x{k}_{branch}"],
                           "outputs": [f"r{k}_{branch}"], "params": np.zeros((0,), object), "block": {}})
            prev = f"r{k}_{branch}"
    for name, (w, b) in zip(CONV_NAMES, mconvs):
        params.append({"name": f"{name}f", "value": w})
        params.append({"name": f"{name}b", "value": b})
    layers_arr = np.empty((len(layers),), dtype=object)
    layers_arr[:] = layers
    params_arr = np.empty((len(params),), dtype=object)
    params_arr[:] = params
    net = {"layers": layers_arr, "params": params_arr, "vars": np.zeros((0,), object),
           "meta": {"normalization": {"averageImage": average_image}}}
    scipy.io.savemat(str(path), {"net": net}, do_compression=False)


def test_matconvnet_dagnn_conversion(tmp_path, fake_convs):
    avg = np.array([122.0, 116.0, 104.0], np.float32).reshape(1, 1, 3)
    src = tmp_path / "siaMAC_vgg.mat"
    _write_dagnn(src, fake_convs, avg)
    out = ftw.convert_matconvnet_vgg16(src)
    trunk = load_vgg16_trunk(out, device="cpu")
    for name, (w, b) in zip(CONV_NAMES, fake_convs):
        conv = trunk.features[ftw.TV_CONV_INDEX[name]]
        torch.testing.assert_close(conv.weight, w.float(), rtol=0, atol=0)
        torch.testing.assert_close(conv.bias, b.float(), rtol=0, atol=0)
    # the authors' mac.m subtracts the scalar mean of averageImage
    assert torch.allclose(trunk.mean.flatten(), torch.full((3,), float(avg.mean())))
    assert torch.equal(trunk.std.flatten(), torch.ones(3))
    out2 = ftw.convert_matconvnet_vgg16(src, tmp_path / "chan.pt", mean_mode="channel")
    assert torch.allclose(load_vgg16_trunk(out2, device="cpu").mean.flatten(), torch.tensor([122.0, 116.0, 104.0]))


def test_matconvnet_filter_layout_is_correlation_over_rows_and_columns(tmp_path):
    """One output value of conv1_1 computed by hand with MatConvNet's convention
    (y(i,j,o) = b(o) + sum_{u,v,c} W(u,v,c,o) x(i+u-1, j+v-1, c), zero padding)."""
    convs = _fake_convs(seed=3, scale=1.0)
    src = tmp_path / "net.mat"
    _write_dagnn(src, convs, np.zeros((1, 1, 3), np.float32))
    trunk = load_vgg16_trunk(ftw.convert_matconvnet_vgg16(src), device="cpu")
    W = _mat_convs(convs)[0][0]  # (3, 3, 3, 64)
    bias = convs[0][1].numpy()
    rng = np.random.RandomState(0)
    x = rng.rand(6, 7, 3).astype(np.float32) * 255  # (rows, cols, RGB)
    with torch.no_grad():
        y = trunk.features[0](trunk.normalize(torch.from_numpy(x).permute(2, 0, 1)[None]))[0]
    i, j, o = 2, 4, 5
    ref = bias[o] + sum(W[u, v, c, o] * x[i + u - 1, j + v - 1, c] for u in range(3) for v in range(3) for c in range(3))
    assert y[o, i, j].item() == pytest.approx(float(ref), rel=1e-4)


def test_matconvnet_simplenn_and_errors(tmp_path, fake_convs):
    import scipy.io

    mconvs = _mat_convs(fake_convs)
    layers = []
    for name, (w, b) in zip(CONV_NAMES, mconvs):
        wc = np.empty((2,), dtype=object)
        wc[0], wc[1] = w, b
        layers.append({"name": name, "type": "conv", "weights": wc})
        layers.append({"name": "relu", "type": "relu"})
    fc = np.empty((2,), dtype=object)  # an fc layer stored as a 7x7 conv is dropped
    fc[0], fc[1] = np.zeros((7, 7, 512, 2), np.float32), np.zeros((2,), np.float32)
    layers.append({"name": "fc6", "type": "conv", "weights": fc})
    arr = np.empty((len(layers),), dtype=object)
    arr[:] = layers
    src = tmp_path / "imagenet-vgg-verydeep-16.mat"
    scipy.io.savemat(str(src), {"layers": arr, "meta": {"normalization": {"averageImage": np.array([123.68, 116.779, 103.939])}}})
    trunk = load_vgg16_trunk(ftw.convert_matconvnet_vgg16(src, mean_mode="channel"), device="cpu")
    assert torch.equal(trunk.features[28].weight, fake_convs[12][0])
    assert torch.allclose(trunk.mean.flatten(), torch.tensor([123.68, 116.779, 103.939]))

    few = np.empty((2,), dtype=object)
    few[:] = layers[:2]
    scipy.io.savemat(str(tmp_path / "few.mat"), {"layers": few, "meta": {"normalization": {"averageImage": 1.0}}})
    with pytest.raises(WeightsError, match="found 1 3x3 conv layers"):
        ftw.convert_matconvnet_vgg16(tmp_path / "few.mat")
    noavg = tmp_path / "noavg.mat"
    scipy.io.savemat(str(noavg), {"layers": arr})
    with pytest.raises(WeightsError, match="averageImage"):
        ftw.convert_matconvnet_vgg16(noavg)
    h5 = tmp_path / "v73.mat"
    h5.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + b"\0" * 200)
    with pytest.raises(WeightsError, match="v7.3"):
        ftw.convert_matconvnet_vgg16(h5)


# ----------------------------------------------------------------------------------------------
# downloads: offline failure, file:// resume and checksum (no network)
# ----------------------------------------------------------------------------------------------
def test_download_offline_fails_clearly(tmp_path, monkeypatch):
    def no_net(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_net)
    with pytest.raises(transfer.DownloadError, match="needs internet access") as e:
        ftw.fetch_finetuned_trunk("cirtorch-vgg16-gem", weights_dir=tmp_path, progress=False)
    assert "retrievalSfM120k-vgg16-gem-b4dcdc6.pth" in str(e.value)
    assert str(tmp_path) in str(e.value)  # says where to put the file
    with pytest.raises(transfer.DownloadError, match="needs internet access"):
        ftw.fetch_finetuned_trunk("siamac-vgg16", weights_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown fine-tuned trunk"):
        ftw.fetch_finetuned_trunk("netvlad", weights_dir=tmp_path)


def test_download_file_url_and_checksum_prefix(tmp_path):
    """Weight files come through the one downloader, whose ``sha256`` may be the start of the
    digest that publishers put in file names."""
    import hashlib

    payload = bytes(range(256)) * 1000
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "out" / "w.bin"
    got = transfer.download_file(src.as_uri(), dest, sha256=digest[:7], progress=False)
    assert got.read_bytes() == payload
    # a second call finds the file and does not download
    src.unlink()
    assert transfer.download_file(src.as_uri(), dest, sha256=digest[:7], progress=False) == dest
    # checksum mismatch: clear error, the bad bytes set aside, no file at the destination
    src.write_bytes(payload[:-1])
    bad = tmp_path / "out" / "bad.bin"
    with pytest.raises(transfer.ChecksumError, match=f"expected {digest[:7]}\\.\\.\\.: the file is corrupt"):
        transfer.download_file(src.as_uri(), bad, sha256=digest[:7], progress=False)
    assert not bad.exists() and not bad.with_name("bad.bin.part").exists()
    assert bad.with_name("bad.bin.corrupt").is_file()


def test_fetch_uses_converted_file_when_present(tmp_path, fake_convs, monkeypatch):
    """A hand-placed checkpoint (as the offline message says) is converted without any download."""
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    info = ftw.FINETUNED_TRUNKS["cirtorch-vgg16-gem"]
    raw = tmp_path / info["url"].rsplit("/", 1)[-1]
    _write_cirtorch(raw, fake_convs)
    # the hand-placed file is not the published one: its checksum is refused clearly
    with pytest.raises(transfer.DownloadError, match="SHA-256"):
        ftw.fetch_finetuned_trunk("cirtorch-vgg16-gem", weights_dir=tmp_path, progress=False)
    monkeypatch.setitem(ftw.FINETUNED_TRUNKS, "cirtorch-vgg16-gem", dict(info, sha256_prefix=None))
    out = ftw.fetch_finetuned_trunk("cirtorch-vgg16-gem", weights_dir=tmp_path, progress=False)
    assert out.name == "cirtorch-vgg16-gem-trunk.pt"
    assert torch.equal(load_vgg16_trunk(out, device="cpu").features[0].weight, fake_convs[0][0])


# ----------------------------------------------------------------------------------------------
# conv5 block, loss, fine-tuning
# ----------------------------------------------------------------------------------------------
def test_contrastive_loss_and_gem_values():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.6, 0.8], [0.6, 0.8]])  # distance sqrt(0.16 + 0.64) = sqrt(0.8)
    d = np.sqrt(0.8)
    got = ft.contrastive_loss(a, b, torch.tensor([1.0, 0.0]), margin=1.0)
    assert got.item() == pytest.approx(0.5 * (0.5 * 0.8 + 0.5 * (1 - d) ** 2), rel=1e-6)
    assert ft.contrastive_loss(a, b, torch.tensor([0.0, 0.0]), margin=0.5).item() == 0.0
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert ft.gem(x, p=1).item() == pytest.approx(2.5)
    assert ft.gem(x, p=3).item() == pytest.approx(((1 + 8 + 27 + 64) / 4) ** (1 / 3), rel=1e-6)


@pytest.fixture(scope="module")
def real_conv4():
    """pool4 ("conv4_3") and pool5 maps of a few real photos through the real ImageNet VGG16."""
    from PIL import Image
    from skimage import data

    trunk = load_vgg16_trunk("caffe-onnx", device="cpu")
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry(),
              data.hubble_deep_field()]
    conv4, pool5 = [], []
    for k, im in enumerate(photos):
        im = np.asarray(Image.fromarray(im).resize((192, int(192 * im.shape[0] / im.shape[1]))))
        x = torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            o = trunk(x, ("conv4_3", "pool5"))
        conv4.append(ImageFeatures(o["conv4_3"][0].permute(1, 2, 0).numpy(), im.shape[:2], name=f"im{k}"))
        pool5.append(o["pool5"][0].permute(1, 2, 0).numpy())
    return conv4, pool5


def test_apply_conv5_equals_full_trunk_pool5(real_conv4):
    conv4, pool5 = real_conv4
    got = ft.apply_conv5("caffe-onnx", conv4)
    for g, ref, c in zip(got, pool5, conv4):
        assert g.fmap.shape == ref.shape == (c.fmap.shape[0] // 2, c.fmap.shape[1] // 2, 512)
        np.testing.assert_allclose(g.fmap, ref, rtol=1e-5, atol=1e-4)
        assert g.image_hw == c.image_hw and g.name == c.name
    with pytest.raises(ValueError, match="512"):
        ft.apply_conv5("caffe-onnx", [ImageFeatures(np.zeros((4, 4, 3), np.float32), (64, 64))])


def test_short_finetuning_decreases_the_loss_and_is_deterministic(real_conv4, tmp_path):
    conv4, _ = real_conv4
    cfg = ft.FinetuneConfig(epochs=2, anchors_per_step=3, n_negatives=2, lr=1e-4, max_cells=8, seed=0)
    res = ft.finetune_conv5(conv4, config=cfg, progress=False)
    assert res.n_steps == 4 and len(res.step_losses) == 4
    assert res.eval_loss_after < res.eval_loss_before
    # only conv5 changed
    base = load_vgg16_trunk("caffe-onnx", device="cpu")
    assert torch.equal(res.trunk.features[21].weight, base.features[21].weight)
    assert not torch.equal(res.trunk.features[28].weight, base.features[28].weight)
    # deterministic: same seed, same losses; the cached variant saves a loadable trunk
    res2 = ft.finetune_conv5_cached(conv4, out_dir=tmp_path, config=cfg, progress=False)
    assert res2.step_losses == res.step_losses
    assert torch.equal(res2.trunk.features[28].weight, res.trunk.features[28].weight)
    again = ft.finetune_conv5_cached(conv4, out_dir=tmp_path, config=cfg, progress=False)
    assert again.path == res2.path and again.step_losses == res.step_losses
    loaded = load_vgg16_trunk(res2.path, device="cpu")
    assert torch.equal(loaded.features[28].weight, res.trunk.features[28].weight)
    assert torch.equal(loaded.mean, base.mean)


def test_finetune_with_groups_uses_group_positives(real_conv4):
    conv4, _ = real_conv4
    cfg = ft.FinetuneConfig(epochs=1, anchors_per_step=6, n_negatives=2, max_cells=6)
    tuples = ft._Tuples([ft._to_tensor(f) for f in conv4], [0, 0, 1, 1, 2, 2], cfg)
    rng = np.random.RandomState(0)
    assert tuples.positive_source(0, rng) == (1, 1.0)
    assert set(tuples.non_matching(0)) == {2, 3, 4, 5}
    res = ft.finetune_conv5(conv4, groups=[0, 0, 1, 1, 2, 2], config=cfg, progress=False)
    assert res.n_steps == 1 and np.isfinite(res.step_losses[0])
    with pytest.raises(ValueError, match="group labels"):
        ft.finetune_conv5(conv4, groups=[0, 1], config=cfg, progress=False)
    # a relation matrix: 1 match, 0 non-match, -1 unknown (neither positive nor negative)
    R = ft.relation_matrix([0, 0, 1, 1, 2, 2], 6)
    R[0, 2] = R[2, 0] = -1
    t = ft._Tuples([ft._to_tensor(f) for f in conv4], R, cfg)
    assert set(t.non_matching(0)) == {3, 4, 5} and t.positive_source(0, rng)[0] == 1
    assert t.positive_source(4, rng)[0] == 5
    res = ft.finetune_conv5(conv4, groups=R, config=cfg, progress=False)
    assert res.n_steps == 1
    with pytest.raises(ValueError, match="symmetric"):
        ft.relation_matrix(np.triu(np.ones((6, 6), int)), 6)
    with pytest.raises(ValueError, match="train_layers"):
        ft.finetune_conv5(conv4, config=ft.FinetuneConfig(train_layers=("conv4_3",)), progress=False)


def test_mask_change_counts_kept_locations_and_overlap():
    rng = np.random.RandomState(0)
    a = [ImageFeatures(rng.rand(5, 6, 8).astype(np.float32), (160, 192), name="x")]
    same = ft.mask_change(a, a, "max")
    assert same["iou"] == 1.0 and same["kept_before"] == same["kept_after"]
    assert 0 < same["kept_before"] <= 8 / 30
    # SUM mask keeps the locations whose channel sum is >= the median: about half
    half = ft.mask_change(a, a, "sum")
    assert half["kept_before"] == pytest.approx(0.5, abs=0.05)
    b = [ImageFeatures(a[0].fmap[::-1, ::-1].copy(), (160, 192), name="x")]
    diff = ft.mask_change(a, b, "max")
    assert diff["iou"] < 1.0 and diff["n_images"] == 1
    with pytest.raises(ValueError, match="map sizes differ"):
        ft.mask_change(a, [ImageFeatures(np.ones((4, 6, 8), np.float32), (128, 192))], "max")


def test_self_positive_windows_overlap_the_anchor():
    cfg = ft.FinetuneConfig(crop_min=0.6, max_cells=10)
    maps = [torch.zeros(1, 512, 30, 40) for _ in range(4)]
    for k, m in enumerate(maps):  # encode the position in the map's values
        m[0, 0] = torch.arange(30)[:, None].float() + 100 * k
        m[0, 1] = torch.arange(40)[None, :].float()
    t = ft._Tuples(maps, None, cfg)  # no matching images: positives are windows of the anchor's map
    rng = np.random.RandomState(0)
    for _ in range(20):
        x, ra, rb, lab = t.batch([0, 1], [np.array([2]), np.array([3])], rng)
        ch, cw = x.shape[-2:]
        assert ch <= 10 and cw <= 10
        for a, b, y in zip(ra, rb, lab):
            if y == 1:
                assert x[a, 0, 0, 0] // 100 == x[b, 0, 0, 0] // 100  # same image
                dy = abs(float(x[a, 0, 0, 0] - x[b, 0, 0, 0]))
                dx = abs(float(x[a, 1, 0, 0] - x[b, 1, 0, 0]))
                assert dy <= 0.4 * ch and dx <= 0.4 * cw
            else:
                assert x[a, 0, 0, 0] // 100 != x[b, 0, 0, 0] // 100
