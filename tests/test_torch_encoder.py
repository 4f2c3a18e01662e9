"""TorchEncoder (the online stage in torch, for the GPU streaming encoder) gives the vectors of
SelectiveConvPipeline.transform: float64 to 1e-9, float32 to 1e-4, for every mask, both
supported embeddings and every aggregation; on CPU tensors, so CI checks it without a GPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from selconv_lite.core.types import ImageFeatures
from selconv_lite.method.pipeline import SelectiveConvPipeline
from selconv_lite.scale.torch_encoder import TorchEncoder

K = 24
TOL = {"float64": 1e-9, "float32": 1e-4}


def _maps(n, seed, sizes=((5, 7), (6, 4), (5, 7))):
    """ReLU-like maps: many exact zeros (all-zero channels: MAX-mask ties at (0, 0)), repeated
    maxima, a few sizes, SIFT-like keypoints."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        f = (rng.gamma(2.0, 3.0, (h, w, K)) * (rng.random((h, w, K)) > 0.5)).astype(np.float32)
        f[:, :, i % K] = 0                       # an all-zero channel
        f[1, 2, (i + 1) % K] = f[0, 0, (i + 1) % K] = f[:, :, (i + 1) % K].max() + 1  # a tie
        f = np.round(f, 1)                        # more ties in the channel sums
        hw = (32 * h, 32 * w)
        kp = rng.uniform(0, 1, (rng.integers(0, 6), 2)) * np.array([hw[1], hw[0]])
        out.append(ImageFeatures(fmap=f, image_hw=hw, keypoints=kp.astype(np.float32), name=f"im{i}"))
    return out


@pytest.fixture(scope="module")
def data():
    return _maps(40, 0), _maps(9, 1)


CASES = [
    dict(mask="max", embedding="temb", aggregation="democratic"),
    dict(mask="sum", embedding="temb", aggregation="democratic"),
    dict(mask="sift", embedding="temb", aggregation="sum"),
    dict(mask="none", embedding="vlad", aggregation="sum"),
    dict(mask="max", embedding="vlad", aggregation="democratic"),
    dict(mask="sum", embedding="vlad", aggregation="average"),
    dict(mask="max", embedding="temb", aggregation="max"),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c.values()))
def test_torch_encoder_equals_pipeline(data, case, dtype):
    train, test = data
    pipe = SelectiveConvPipeline(d=6, n_centroids=3, truncate=2, rn_components=8, dtype=dtype,
                                 eig_clamp=2, random_state=0, alpha=0.5, **case).fit(train)
    ref = pipe.transform(test)
    enc = TorchEncoder(pipe, device="cpu")
    got = enc.transform(test)
    assert got.shape == ref.shape == (len(test), pipe.output_dim_)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL[dtype])
    # one batch of equal-size maps, as the loader gives them, straight from torch
    same = [im for im in test if im.fmap.shape == test[0].fmap.shape]
    maps = torch.from_numpy(np.stack([im.fmap for im in same])).permute(0, 3, 1, 2)
    v = enc.encode_maps(maps, [im.keypoints for im in same], [im.image_hw for im in same])
    np.testing.assert_allclose(v.float().numpy(), pipe.transform(same), rtol=0, atol=TOL[dtype])


def test_masks_equal_the_numpy_masks(data):
    from selconv_lite.method.masks import compute_mask

    _, test = data
    for mask in ("max", "sum", "sift"):
        pipe = SelectiveConvPipeline(mask=mask, embedding="vlad", d=6, n_centroids=3,
                                     rn_components=8, random_state=0).fit(data[0])
        enc = TorchEncoder(pipe, dtype="float64")
        for im in test:
            h, w, _ = im.fmap.shape
            Fcm = torch.from_numpy(im.fmap.astype(np.float64)).permute(1, 0, 2).reshape(1, w * h, K)
            m = enc.masks(Fcm, (h, w), [im.keypoints], [im.image_hw])[0].numpy()
            np.testing.assert_array_equal(m.reshape(w, h).T, compute_mask(mask, im))


def test_bad_input(data):
    train, test = data
    with pytest.raises(ValueError, match="fitted"):
        TorchEncoder(SelectiveConvPipeline())
    ffa = SelectiveConvPipeline(embedding="vlad", d=6, n_centroids=3, rn_components=8).fit(train)
    ffa.embedding_ = type("FisherVector", (), {"name": "fv"})()
    with pytest.raises(ValueError, match="implements the embeddings"):
        TorchEncoder(ffa)
    pipe = SelectiveConvPipeline(embedding="vlad", d=6, n_centroids=3, rn_components=8).fit(train)
    enc = TorchEncoder(pipe)
    with pytest.raises(ValueError, match=r"\(B, K=24, H, W\)"):
        enc.encode_maps(torch.zeros(1, 5, 3, 3))
    bad = torch.from_numpy(np.stack([test[0].fmap, test[0].fmap])).permute(0, 3, 1, 2).clone()
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="'b' contains NaN"):
        enc.encode_maps(bad, names=["a", "b"])


def test_stream_encoder_torch_backend(tmp_path):
    """StreamEncoder(backend="torch") on CPU: DataLoader batches + TorchEncoder give the numpy
    path's vectors within float32 rounding (and batches of one image, the same maps); the
    backend is part of the identity, so a numpy folder is not continued by the torch path."""
    from _scale_helpers import extractor, fitted_pipeline, photos
    from selconv_lite.scale.stream import IdentityMismatchError, StreamEncoder, load_vectors

    fx = extractor()
    pipe = fitted_pipeline(fx)
    paths = photos(7)
    want = pipe.transform([fx.extract(p)["pool5"] for p in paths])
    for bs, nw in ((1, 0), (4, 1)):
        enc = StreamEncoder(pipe, fx, tmp_path / f"t{bs}", shard_size=3, backend="torch",
                            batch_size=bs, num_workers=nw)
        assert enc.run(paths).encoded == [0, 1, 2]
        ids, X = load_vectors(tmp_path / f"t{bs}", identity=enc.identity)
        assert ids == paths
        np.testing.assert_allclose(X, want, rtol=0, atol=1e-4)
    (tmp_path / "t4" / "shard_00001.npy").unlink()  # resumes: only the missing shard again
    s = StreamEncoder(pipe, fx, tmp_path / "t4", shard_size=3, backend="torch", batch_size=4,
                      num_workers=0).run(paths)
    assert (s.encoded, s.reused) == ([1], [0, 2])
    np.testing.assert_allclose(load_vectors(tmp_path / "t4")[1], want, rtol=0, atol=1e-4)
    np_enc = StreamEncoder(pipe, fx, tmp_path / "np", shard_size=3)
    assert np_enc.identity != enc.identity and "backend" not in np_enc.info
    np_enc.run(paths)
    with pytest.raises(IdentityMismatchError, match="backend"):
        StreamEncoder(pipe, fx, tmp_path / "np", shard_size=3, backend="torch").run(paths)
    with pytest.raises(ValueError, match="backend must be one of"):
        StreamEncoder(pipe, fx, tmp_path / "x", backend="cupy")
