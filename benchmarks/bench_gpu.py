"""Benchmark: the package's feature extraction on one GPU (paper regime, max_dim 1024).

Prints, as JSON:

* the relative max abs difference between the GPU's pool5 maps and CPU maps of the same images
  computed with the same weights (``--ref``, an ``.npz`` written by ``--write-ref`` on the CPU
  machine), so that the GPU path is checked, not only timed;
* forward-only images/s of the VGG16 trunk on a 1024x768 input, batch 1 and 8 (TF32 off, so
  the arithmetic is float32 as on the CPU);
* the cold fill of the feature cache for the whole embedded set at max_dim 1024 (pool5 and
  conv4_3, as the series asks), 724 and 512 (pool5): decoding, resizing, SIFT keypoints, the
  forward pass, and the compressed write, i.e. what a cold series pays for its features.

The weights may travel rounded to float16 (``--write-ref`` saves them so, for machines whose
upload is limited) and are upcast on load: the timing does not depend on the weight values.

Usage::

    # on the CPU machine
    python benchmarks/bench_gpu.py --write-ref DIR        # DIR/vgg16_fp16.pt, DIR/cpu_ref.npz
    # on the GPU machine
    python benchmarks/bench_gpu.py --weights DIR/vgg16_fp16.pt --ref DIR/cpu_ref.npz --out result.json

A run on one NVIDIA H200 is kept in ``benchmarks/measured/gpu_extraction_h200.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SELCONV_HEADLESS", "1")

from selconv_lite.features.backbone import load_vgg16_trunk  # noqa: E402
from selconv_lite.features.cache import FeatureCache  # noqa: E402
from selconv_lite.features.extraction import FeatureExtractor  # noqa: E402

REF_IMAGES = ("q_aero.jpg", "q_aloe.jpg")


def write_ref(d: Path, images: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    t = load_vgg16_trunk()
    sd = {"features." + k: v.half() for k, v in t.features.state_dict().items()}
    sd["mean"], sd["std"] = t.mean.clone(), t.std.clone()
    torch.save(sd, d / "vgg16_fp16.pt")
    fx = FeatureExtractor(weights=str(d / "vgg16_fp16.pt"), layers=("pool5",), max_dim=1024,
                          device="cpu", num_threads=2)
    np.savez(d / "cpu_ref.npz", **{n: fx.extract(images / n)["pool5"].fmap for n in REF_IMAGES})
    print(f"wrote {d / 'vgg16_fp16.pt'} and {d / 'cpu_ref.npz'}")


def run(weights: str, ref: Path | None, images: Path, device: str) -> dict:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    paths = sorted(images.glob("*.jpg"))
    res = {"device": torch.cuda.get_device_name(0) if device == "cuda" else device,
           "torch": torch.__version__, "cpu_count": os.cpu_count(), "n_images": len(paths)}
    fx = FeatureExtractor(weights=weights, layers=("pool5",), max_dim=1024, device=device,
                          convention="caffe")
    if ref is not None:
        r = np.load(ref)
        res["gpu_vs_cpu_rel_maxabs_pool5_1024"] = {
            n: float(np.abs(fx.extract(images / n)["pool5"].fmap - r[n]).max() / np.abs(r[n]).max())
            for n in r.files}
    x1 = torch.rand(1, 3, 768, 1024, device=device) * 255
    for bs in (1, 8):
        x = x1.repeat(bs, 1, 1, 1)
        with torch.inference_mode():
            for _ in range(3):
                fx.trunk(x, ("pool5",))
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(10):
                fx.trunk(x, ("pool5",))
            if device == "cuda":
                torch.cuda.synchronize()
        res[f"forward_1024x768_bs{bs}_img_per_s"] = 10 * bs / (time.perf_counter() - t)
    for md, layers in ((1024, ("pool5", "conv4_3")), (724, ("pool5",)), (512, ("pool5",))):
        with tempfile.TemporaryDirectory() as d:
            c = FeatureCache(d, weights=weights, layers=layers, max_dim=md, device=device,
                             convention="caffe")
            t = time.perf_counter()
            s = c.extract_all([str(p) for p in paths], progress=False)
            dt = time.perf_counter() - t
        res[f"cache_fill_{md}_{'+'.join(layers)}"] = {"seconds": dt, "img_per_s": len(paths) / dt,
                                                      "summary": str(s)}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-ref", type=Path, help="write fp16 weights and CPU reference maps here")
    ap.add_argument("--weights", default="caffe-onnx")
    ap.add_argument("--ref", type=Path)
    ap.add_argument("--images", type=Path, default=ROOT / "data" / "default" / "jpg")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    if a.write_ref:
        write_ref(a.write_ref, a.images)
        return 0
    res = run(a.weights, a.ref, a.images, a.device)
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
