"""Precision modes of the extractor (float32 unchanged, bf16 autocast bounded, tf32/fp16 refused
off CUDA) and a smoke run of benchmarks/bench_gpu.py's quick path on the CPU."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from selconv_lite.features.backbone import precision_context
from selconv_lite.features.extraction import FeatureExtractor

from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = sorted((ROOT / "data" / "default" / "jpg").glob("*.jpg"))[:3]


@pytest.fixture(scope="module")
def float32_maps():
    fx = FeatureExtractor(max_dim=96, device="cpu", sift=False)
    return [fx.extract(p)["pool5"].fmap for p in PHOTOS]


def test_float32_mode_is_the_default_path_bit_for_bit(float32_maps):
    fx = FeatureExtractor(max_dim=96, device="cpu", sift=False)
    rgb = fx.prepare(PHOTOS[0])
    with torch.inference_mode():  # the trunk without any precision context
        bare = fx.trunk(fx.to_tensor(rgb), ("pool5",))["pool5"][0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(float32_maps[0], bare)
    explicit = FeatureExtractor(max_dim=96, device="cpu", sift=False, precision="float32")
    np.testing.assert_array_equal(explicit.extract(PHOTOS[0])["pool5"].fmap, float32_maps[0])
    assert "precision" not in repr(explicit)


def test_bf16_autocast_on_cpu_is_bounded(float32_maps):
    """bfloat16 keeps 8 mantissa bits: the pool5 maps differ from float32 by about 1 % of their
    largest value (the embedded set at max_dim 128: median 0.7 %, worst 2.7 %), here at most 5 %
    (the bfloat16 kernels differ between CPU instruction sets)."""
    fx = FeatureExtractor(max_dim=96, device="cpu", sift=False, precision="bf16")
    assert "precision='bf16'" in repr(fx)
    for p, ref in zip(PHOTOS, float32_maps):
        m = fx.extract(p)["pool5"].fmap
        assert m.dtype == np.float32 and m.shape == ref.shape
        rel = float(np.abs(m - ref).max() / np.abs(ref).max())
        assert 0 < rel < 0.05, rel


@pytest.mark.parametrize("mode", ["tf32", "fp16"])
def test_cuda_only_modes_are_refused_on_cpu(mode):
    with pytest.raises(ValueError, match=f"precision='{mode}' needs a CUDA device.*'bf16'"):
        FeatureExtractor(device="cpu", precision=mode)
    with pytest.raises(ValueError, match="unknown precision"):
        FeatureExtractor(device="cpu", precision="int8")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        with precision_context(mode, "cpu"):
            pass


def test_bench_gpu_quick_runs_on_cpu(tmp_path, capsys):
    bench = load_script("benchmarks/bench_gpu.py")
    out = tmp_path / "rec.json"
    assert bench.main(["--device", "cpu", "--quick", "--no-map", "--batch-sizes", "1",
                       "--seconds", "0.01", "--hw", "64", "64", "--e2e-images", "4",
                       "--max-dim", "96", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["device"] == "cpu" and rec["torch"] == torch.__version__ and rec["quick"]
    assert {(r["precision"], r["channels_last"]) for r in rec["forward"]} == {
        ("float32", True), ("float32", False), ("bf16", True), ("bf16", False)}
    assert all(r["img_per_s"] > 0 for r in rec["forward"])
    e = rec["end_to_end"]
    assert e["n_images"] == 4 and e["vectors_finite"] and e["img_per_s"] > 0
    text = capsys.readouterr().out
    assert "forward >= 500 images/s" in text and "end-to-end >= 280 images/s" in text
    assert "only exercise the code" in text
