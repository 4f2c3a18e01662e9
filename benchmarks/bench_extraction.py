"""Benchmark: the package's feature extraction vs a bare torch forward of the same VGG16 trunk.

For a few ``max_dim`` values it prints seconds per image of

* ``bare``     -- ``trunk.features[:31]`` (VGG16 up to pool5) on the already-normalised input
                  tensor, under ``torch.inference_mode`` -- the floor any extractor must pay;
* ``forward``  -- ``FeatureExtractor.forward`` on the same prepared image (tensor conversion,
                  normalisation, the trunk, the (H, W, K) numpy map);
* ``extract``  -- ``FeatureExtractor.extract(path)``: image decoding, resizing, the forward pass
                  and SIFT keypoint detection (everything the package does per image);
* ``cached``   -- ``FeatureCache.extract_all`` per image (``extract`` + content hash + compressed
                  write-then-rename), on a fresh temporary store;

and the ratios to ``bare`` (goal: overhead <= 10 %). Runs are interleaved and the median of
``--repeats`` is reported, to be robust to other load on the machine.

Usage::

    python benchmarks/bench_extraction.py [--sizes 256 512 1024] [--repeats 3] [--device cpu] [--threads N]
    python benchmarks/bench_extraction.py --compare [--compare-dim 1024] [--images 3] [--batch-size 1] [--prefetch 2]

``--compare`` prints images/s at ``--compare-dim`` of the reference path (``fast=False``:
``FeatureExtractor.extract`` one image after the other) and of the fast path (``fast=True``:
``FeatureExtractor.extract_many``, preparation and SIFT overlapping the forward pass), their
ratio, the load average, and the largest absolute difference between the two paths' maps.

``--series`` prints, in one run, images/s at ``--compare-dim`` (default 1024) of

* ``reference``: ``FeatureExtractor.extract`` (pool5 and SIFT keypoints) one image after the other;
* ``before``: the notebook series' cache fill as it was (the series layers asked for together,
  entries written by ``np.savez_compressed``'s zlib level 6);
* ``after``: the series' cache fill now (pool5 asked for, the other series layers computed in the
  same pass as ``extra_layers``, zlib level 1);

with the load average before each round, and the largest absolute difference between the maps
of every layer stored by ``before`` and ``after`` (and of pool5 against ``reference``).

``--variants`` times forward-pass variants on one 1024x768 photo against the package's forward
(channels-last, ``inference_mode``, 2 threads): NCHW memory format, oneDNN off, ``no_grad``,
1 thread, a batch of 2 equal-size images, TorchScript freeze; each with its max abs difference.

``--loader`` prints, in one run with interleaved repeats, images/s at ``--compare-dim`` of the
CPU paths before and after the GPU input pipeline and encoder (issue 26):

* extraction: ``extract_many`` (a prefetch thread, today's fast path) vs ``iter_features`` (the
  DataLoader pipeline, ``--workers`` worker processes, batches of ``--batch-size``);
* streaming encode (extract + encode of a small fitted M_MAX + T-emb + democratic pipeline):
  ``encode_images`` (numpy, one image after the other) vs ``encode_images_torch`` (DataLoader +
  torch encoder, on the CPU);

with the load average before each round, and the largest differences of maps and vectors.

``--device cuda`` works on a GPU machine; where the default (caffe-onnx) weights are not
installed, a VGG16 trunk with seeded random weights of the same shapes is used and the output
says "timing only" (``--weights FILE`` takes a VGG16 state dict instead, e.g. the float16 copy
that ``benchmarks/bench_gpu.py --write-ref`` writes).

    python benchmarks/bench_extraction.py --series [--compare-dim 1024] [--images 3] [--repeats 3] [--device cuda]
    python benchmarks/bench_extraction.py --variants [--repeats 3]
    python benchmarks/bench_extraction.py --loader [--compare-dim 1024] [--images 4] [--repeats 3] [--workers 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from selconv_lite.core.machine import cpu_model
from selconv_lite.features.backbone import default_device
from selconv_lite.features.cache import FeatureCache
from selconv_lite.features.extraction import FeatureExtractor


def _test_image(path: Path) -> Path:
    """A real photo (scikit-learn's china.jpg, 640x427, CC BY 2.0) upscaled to 1400 px wide."""
    try:
        from sklearn.datasets import load_sample_image

        a = load_sample_image("china.jpg")
    except Exception:  # pragma: no cover - fall back to a synthetic texture
        rng = np.random.default_rng(0)
        a = np.kron(rng.integers(0, 256, (54, 80, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    img = Image.fromarray(a).resize((1400, int(round(1400 * a.shape[0] / a.shape[1]))), Image.Resampling.BICUBIC)
    img.save(path, quality=92)
    return path


def fx_device(device) -> str:
    from selconv_lite.features.backbone import default_device

    d = default_device(device)
    return torch.cuda.get_device_name(d) if d.type == "cuda" else "cpu"


def _time(fn, sync):
    """(wall seconds, CPU seconds of this process, all threads) of one call."""
    c, t = time.process_time(), time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t, time.process_time() - c


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: PyTorch's choice, one per physical core)")
    ap.add_argument("--compare", action="store_true",
                    help="only compare the reference path (fast=False) with extract_many (fast=True)")
    ap.add_argument("--compare-dim", type=int, default=1024)
    ap.add_argument("--images", type=int, default=3, help="images per timed run of --compare")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--prefetch", type=int, default=2)
    ap.add_argument("--weights", default=None,
                    help="--series/--variants: a VGG16 state-dict file instead of the caffe-onnx weights")
    ap.add_argument("--series", action="store_true",
                    help="images/s before/after of the series' cache fill and the reference path")
    ap.add_argument("--loader", action="store_true",
                    help="before/after of the CPU path: extract_many vs the DataLoader pipeline, "
                         "numpy vs torch streaming encode")
    ap.add_argument("--workers", type=int, default=1, help="--loader: DataLoader worker processes")
    ap.add_argument("--variants", action="store_true",
                    help="forward-pass variants vs the package's forward (max abs diff, images/s)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compare:
        _print_compare(args)
        return
    if args.series:
        print_series(args.compare_dim, args.images, args.repeats, args.device, args.weights)
        return
    if args.variants:
        print_variants(args.repeats, args.device, args.weights)
        return
    if args.loader:
        print_loader(args.compare_dim, args.images, args.repeats, args.device, args.batch_size,
                     args.workers)
        return

    tmp = Path(tempfile.mkdtemp(prefix="selconv-bench-"))
    img_path = _test_image(tmp / "photo.jpg")
    sync = torch.cuda.synchronize if (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda") else _nosync

    print(f"machine: {cpu_model()} | {os.cpu_count()} logical CPUs | torch {torch.__version__} "
          f"({torch.get_num_threads()} threads) | device {fx_device(args.device)}")
    print("s/image: wall = fastest of the repeats; cpu = median CPU time of this process (robust when")
    print("other jobs share the machine). Ratios use CPU time (GPU: wall).")
    print(f"{'max_dim':>7} {'image':>9} | {'bare':>12} {'forward':>12} {'extract':>12} {'cached':>12} | "
          f"{'fwd/bare':>8} {'extr/bare':>9} {'cache/bare':>10}")
    print(f"{'':>7} {'':>9} | " + " ".join(f"{'wall  cpu':>12}" for _ in range(4)) + " |")
    for md in args.sizes:
        fx = FeatureExtractor(layers=("pool5",), max_dim=md, device=args.device)
        trunk = fx.trunk
        bare_net = trunk.features[:31]  # VGG16 conv1_1 .. pool5, the same modules and weights
        rgb = fx.prepare(img_path)
        x = trunk.normalize(fx.to_tensor(rgb)).contiguous(memory_format=torch.channels_last)

        def bare():
            with torch.inference_mode():
                return bare_net(x)

        with torch.inference_mode():  # the package's map equals the bare one
            assert np.array_equal(fx.forward(rgb)["pool5"], bare()[0].permute(1, 2, 0).cpu().numpy())
        fx.extract(img_path)  # warm-up

        runs = {"bare": [], "forward": [], "extract": [], "cached": []}
        for r in range(args.repeats):
            runs["bare"].append(_time(bare, sync))
            runs["forward"].append(_time(lambda: fx.forward(rgb), sync))
            runs["extract"].append(_time(lambda: fx.extract(img_path), sync))
            store = FeatureCache(tmp / f"cache{md}_{r}", layers=("pool5",), max_dim=md, device=args.device)
            store._extractor = fx
            runs["cached"].append(_time(lambda: store.extract_all([img_path], progress=False), sync))
        wall = {k: min(w for w, _ in v) for k, v in runs.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
        ref = wall if sync is not _nosync else cpu
        cols = " ".join(f"{wall[k]:>6.3f}{cpu[k]:>6.2f}" for k in runs)
        print(f"{md:>7} {rgb.shape[1]:>4}x{rgb.shape[0]:<4} | {cols} | "
              f"{ref['forward'] / ref['bare']:>8.3f} {ref['extract'] / ref['bare']:>9.3f} "
              f"{ref['cached'] / ref['bare']:>10.3f}")


def _nosync():
    pass


def _photos(tmp: Path, n: int, max_dim: int) -> list[Path]:
    """``n`` different photos of one size (crops of the test photo shifted by 8 px each)."""
    src = Image.open(_test_image(tmp / "src.jpg"))
    w, h = src.size
    out = []
    for k in range(n):
        p = tmp / f"photo_{max_dim}_{k}.jpg"
        src.crop((8 * k, 0, w - 8 * (n - k), h)).save(p, quality=92)
        out.append(p)
    return out


def compare(max_dim=1024, n_images=3, repeats=2, device=None, batch_size=1, prefetch=2):
    """Images/s of the reference path (``extract`` one image at a time) and of the fast path.

    ``fast=False``: ``[fx.extract(p) for p in paths]`` -- each image decoded, resized, forwarded
    and SIFT-detected in turn. ``fast=True``: ``fx.extract_many(paths, batch_size, prefetch)`` --
    preparation and SIFT of the next images overlap the forward pass, equal-size images may be
    batched. Returns a dict with images/s (wall, best repeat), CPU s/image (median) of both paths
    and the largest absolute difference between their feature maps.
    """
    tmp = Path(tempfile.mkdtemp(prefix="selconv-bench-"))
    paths = _photos(tmp, n_images, max_dim)
    fx = FeatureExtractor(layers=("pool5",), max_dim=max_dim, device=device)
    d = default_device(device)
    sync = torch.cuda.synchronize if d.type == "cuda" else _nosync
    fx.extract(paths[0])  # warm-up (weights, allocator)

    def run(fast):
        if fast:
            return list(fx.extract_many(paths, batch_size=batch_size, prefetch=prefetch))
        return [fx.extract(p) for p in paths]

    res = {False: [], True: []}
    outs = {}
    for _ in range(repeats):
        for fast in (False, True):  # interleaved: both see the same load
            c, t = time.process_time(), time.perf_counter()
            outs[fast] = run(fast)
            sync()
            res[fast].append((time.perf_counter() - t, time.process_time() - c))
    diff = max(float(np.abs(a["pool5"].fmap - b["pool5"].fmap).max()) for a, b in zip(outs[False], outs[True]))
    same_kps = all(np.array_equal(a["pool5"].keypoints, b["pool5"].keypoints) for a, b in zip(outs[False], outs[True]))
    summary = {}
    for fast in (False, True):
        wall = min(w for w, _ in res[fast])
        summary[fast] = {"img_per_s": n_images / wall, "cpu_s_per_img": statistics.median(c for _, c in res[fast]) / n_images}
    return {"paths": paths, "hw": outs[False][0]["pool5"].image_hw, "ref": summary[False],
            "fast": summary[True], "max_abs_diff": diff, "same_keypoints": same_kps}


def _print_compare(args):
    r = compare(args.compare_dim, args.images, args.repeats, args.device, args.batch_size, args.prefetch)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    h, w = r["hw"]
    print(f"max_dim {args.compare_dim} ({w}x{h}), {args.images} images, {args.repeats} repeats, "
          f"{torch.get_num_threads()} torch threads, load average {load:.1f} on {os.cpu_count()} CPUs")
    for key, label in (("ref", "fast=False (extract, one by one)"),
                       ("fast", f"fast=True  (extract_many, batch {args.batch_size}, prefetch {args.prefetch})")):
        print(f"  {label:<52} {r[key]['img_per_s']:.3f} images/s (wall)  {r[key]['cpu_s_per_img']:.2f} CPU s/image")
    print(f"  ratio fast/ref: {r['fast']['img_per_s'] / r['ref']['img_per_s']:.3f} (images/s, wall), "
          f"{r['ref']['cpu_s_per_img'] / r['fast']['cpu_s_per_img']:.3f} (CPU)")
    print(f"  max abs difference of the pool5 maps: {r['max_abs_diff']:.3g}; "
          f"keypoints identical: {r['same_keypoints']}")


def loader_compare(max_dim=1024, n_images=4, repeats=3, device=None, batch_size=1, workers=1):
    """Images/s before/after of the CPU extraction and streaming-encode paths (see the module
    docstring), interleaved repeats; returns a dict (medians over the repeats)."""
    from selconv_lite.features.loader import iter_features
    from selconv_lite.method.pipeline import SelectiveConvPipeline
    from selconv_lite.scale.stream import encode_images, encode_images_torch

    os.environ["SELCONV_HEADLESS"] = "1"
    tmp = Path(tempfile.mkdtemp(prefix="selconv-bench-"))
    paths = [str(p) for p in _photos(tmp, n_images, max_dim)]
    fx = FeatureExtractor(layers=("pool5",), max_dim=max_dim, device=device, sift=False)
    sync = torch.cuda.synchronize if default_device(device).type == "cuda" else _nosync
    train = [fx.extract(p)["pool5"] for p in paths]  # warm-up and the pipeline's held-out maps
    pipe = SelectiveConvPipeline(mask="max", embedding="temb", aggregation="democratic", d=16,
                                 n_centroids=4, truncate=0, rn_components=32).fit(train)
    kinds = {
        "extract_many": lambda: [f["pool5"].fmap for f in fx.extract_many(paths, prefetch=2)],
        "loader": lambda: [f["pool5"].fmap for _, f in sorted(
            iter_features(fx, paths, batch_size=batch_size, num_workers=workers),
            key=lambda t: t[0])],
        "encode numpy": lambda: encode_images(pipe, fx, paths),
        "encode torch": lambda: encode_images_torch(pipe, fx, paths, batch_size=batch_size,
                                                    num_workers=workers),
    }
    times = {k: [] for k in kinds}
    outs, loads = {}, []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
        for k, f in kinds.items():
            t = time.perf_counter()
            outs[k] = f()
            sync()
            times[k].append(time.perf_counter() - t)
    map_diff = max(float(np.abs(a - b).max()) for a, b in zip(outs["extract_many"], outs["loader"]))
    vec_diff = float(np.abs(outs["encode numpy"] - outs["encode torch"]).max())
    return {"hw": fx.prepare(paths[0]).shape[:2], "loads": loads, "runs": times,
            "img_per_s": {k: n_images / statistics.median(v) for k, v in times.items()},
            "max_abs_diff_maps": map_diff, "max_abs_diff_vectors": vec_diff}


def print_loader(max_dim=1024, n_images=4, repeats=3, device=None, batch_size=1, workers=1):
    r = loader_compare(max_dim, n_images, repeats, device, batch_size, workers)
    h, w = r["hw"]
    print(f"max_dim {max_dim} ({w}x{h}), {n_images} images, {repeats} interleaved repeats, device "
          f"{fx_device(device)}, {torch.get_num_threads()} torch threads, batch {batch_size}, "
          f"{workers} loader workers; load average before each round: "
          + ", ".join(f"{v:.2f}" for v in r["loads"]) + f" on {os.cpu_count()} CPUs")
    for k in r["img_per_s"]:
        print(f"  {k:<14} {r['img_per_s'][k]:.3f} images/s  runs (s): "
              + " ".join(f"{t:.2f}" for t in r["runs"][k]))
    ips = r["img_per_s"]
    print(f"  after/before: extraction {ips['loader'] / ips['extract_many']:.3f}, streaming encode "
          f"{ips['encode torch'] / ips['encode numpy']:.3f} (images/s, medians)")
    print(f"  max abs difference: maps {r['max_abs_diff_maps']:.3g}, final vectors "
          f"{r['max_abs_diff_vectors']:.3g}")


def _weights(device, path=None):
    """(``path``, None) for a state-dict file, else ("caffe-onnx", None) when those weights are
    installed, else ("random", a seeded random VGG16 trunk of the same shapes on ``device``): the
    timing does not depend on the values."""
    from selconv_lite.features.backbone import VGG16Trunk, WeightsError, caffe_onnx_path

    if path:
        return str(path), None
    try:
        caffe_onnx_path()
        return "caffe-onnx", None
    except WeightsError:
        torch.manual_seed(0)
        trunk = VGG16Trunk(convention="caffe").eval().requires_grad_(False)
        return "random", trunk.to(device=default_device(device), memory_format=torch.channels_last)


def _fx(layers, max_dim, device, trunk, weights="caffe-onnx"):
    fx = FeatureExtractor(weights=weights if trunk is None else "caffe-onnx", layers=layers,
                          max_dim=max_dim, device=device)
    if trunk is not None:
        fx._trunk = trunk
    return fx


def _store(root, layers, extra, compress, max_dim, device, trunk, weights):
    store = FeatureCache(root, layers=layers, extra_layers=extra, max_dim=max_dim, device=device,
                         compress=compress)
    store._extractor = _fx(store.all_layers, max_dim, device, trunk, weights)
    return store


def series(max_dim=1024, n_images=3, repeats=3, device=None, weights=None):
    """Images/s of the reference path and of the series' cache fill before and after (see the
    module docstring); returns a dict (images/s are the median over the interleaved repeats)."""
    from selconv_lite.teaching.settings import SERIES_LAYERS

    os.environ["SELCONV_HEADLESS"] = "1"
    tmp = Path(tempfile.mkdtemp(prefix="selconv-bench-"))
    paths = _photos(tmp, n_images, max_dim)
    wname, trunk = _weights(device, weights)
    sync = torch.cuda.synchronize if default_device(device).type == "cuda" else _nosync
    ref_fx = _fx(("pool5",), max_dim, device, trunk, wname)
    ref_fx.extract(paths[0])  # warm-up
    kinds = {
        "reference": None,
        "before": (SERIES_LAYERS, (), 6),
        "after": (("pool5",), SERIES_LAYERS, True),
    }
    times = {k: [] for k in kinds}
    cpu = {k: [] for k in kinds}
    loads, stores, ref_maps = [], {}, None
    for r in range(repeats):
        loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
        for k, cfg in kinds.items():
            c, t = time.process_time(), time.perf_counter()
            if cfg is None:
                ref_maps = [ref_fx.extract(p)["pool5"].fmap for p in paths]
            else:
                stores[k] = _store(tmp / f"{k}{r}", *cfg, max_dim, device, trunk, wname)
                stores[k].extract_all(paths, progress=False)
            sync()
            times[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    diff = {}
    for layer in SERIES_LAYERS:
        diff[layer] = max(float(np.abs(stores["before"].load(p, layer=layer).fmap
                                       - stores["after"].load(p, layer=layer).fmap).max()) for p in paths)
    diff["pool5 vs reference"] = max(float(np.abs(stores["after"].load(p).fmap - m).max())
                                     for p, m in zip(paths, ref_maps))
    return {"weights": wname, "device": fx_device(device), "hw": ref_fx.prepare(paths[0]).shape[:2],
            "loads": loads, "img_per_s": {k: n_images / statistics.median(v) for k, v in times.items()},
            "runs": times, "max_abs_diff": diff, "n_images": n_images,
            "cpu_s_per_img": {k: statistics.median(v) / n_images for k, v in cpu.items()}}


def print_series(max_dim=1024, n_images=3, repeats=3, device=None, weights=None):
    r = series(max_dim, n_images, repeats, device, weights)
    h, w = r["hw"]
    print(f"max_dim {max_dim} ({w}x{h}), {n_images} images, {repeats} interleaved repeats, device "
          f"{r['device']}, {torch.get_num_threads()} torch threads, load average before each round: "
          + ", ".join(f"{v:.2f}" for v in r["loads"]) + f" on {os.cpu_count()} CPUs")
    if r["weights"] == "random":
        print("weights: caffe-onnx not installed -- seeded RANDOM weights of VGG16's shapes: timing only")
    labels = {"reference": "reference: FeatureExtractor.extract, pool5 + SIFT",
              "before": "before: series cache fill, 4 layers, zlib 6",
              "after": "after:  series cache fill, pool5 + extra_layers, zlib 1"}
    for k, label in labels.items():
        print(f"  {label:<58} {r['img_per_s'][k]:.3f} images/s  {r['cpu_s_per_img'][k]:.3f} CPU s/image  "
              "runs (s): " + " ".join(f"{t:.2f}" for t in r["runs"][k]))
    print(f"  after/before: {r['img_per_s']['after'] / r['img_per_s']['before']:.3f} (images/s, wall), "
          f"{r['cpu_s_per_img']['before'] / r['cpu_s_per_img']['after']:.3f} (CPU time)")
    print("  max abs difference before vs after: "
          + ", ".join(f"{k} {v:.3g}" for k, v in r["max_abs_diff"].items()))


def print_variants(repeats=3, device=None, weights=None):
    """Forward-pass variants on one 1024x768 photo (and a second one for the batch of 2)."""
    import copy
    import warnings

    from sklearn.datasets import load_sample_image

    wname, trunk = _weights(device, weights)
    fx = _fx(("pool5",), 1024, device, trunk, wname)
    trunk = fx.trunk
    sync = torch.cuda.synchronize if default_device(device).type == "cuda" else _nosync
    rgb = np.array(Image.fromarray(load_sample_image("china.jpg")).resize((1024, 768), Image.Resampling.BICUBIC))
    rgb2 = np.ascontiguousarray(rgb[:, ::-1])
    ref, ref2 = fx.forward(rgb)["pool5"], fx.forward(rgb2)["pool5"]
    nchw = copy.deepcopy(trunk).to(memory_format=torch.contiguous_format)
    n_threads = torch.get_num_threads()

    def out(t):
        return t[0].permute(1, 2, 0).contiguous().cpu().numpy()

    def f_nchw():
        with torch.inference_mode():
            return out(nchw.features[:31](nchw.normalize(fx.to_tensor(rgb)).contiguous()))

    def f_mkldnn_off():
        with torch.backends.mkldnn.flags(enabled=False):
            return fx.forward(rgb)["pool5"]

    def f_no_grad():
        with torch.no_grad():
            return out(trunk(fx.to_tensor(rgb), ("pool5",))["pool5"])

    def f_threads1():
        torch.set_num_threads(1)
        try:
            return fx.forward(rgb)["pool5"]
        finally:
            torch.set_num_threads(n_threads)

    def f_batch2():
        m = fx.forward_batch([rgb, rgb2])
        return m[0]["pool5"], m[1]["pool5"]

    variants = {"package forward (channels-last, inference_mode)": lambda: fx.forward(rgb)["pool5"],
                "NCHW (contiguous) memory format": f_nchw, "oneDNN (mkldnn) off": f_mkldnn_off,
                "no_grad instead of inference_mode": f_no_grad, "1 torch thread": f_threads1,
                "batch of 2 equal-size images, per image": f_batch2}
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            x0 = trunk.normalize(fx.to_tensor(rgb)).contiguous(memory_format=torch.channels_last)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(trunk.features[:31], x0).eval()))

        def f_jit():
            with torch.inference_mode():
                return out(frozen(trunk.normalize(fx.to_tensor(rgb)).contiguous(memory_format=torch.channels_last)))
        variants["TorchScript freeze + optimize_for_inference"] = f_jit
    except Exception as e:  # pragma: no cover - depends on the torch build
        print(f"TorchScript variant skipped: {type(e).__name__}: {e}")
    diffs = {}
    for k, f in variants.items():
        o = f()
        diffs[k] = (max(float(np.abs(o[0] - ref).max()), float(np.abs(o[1] - ref2).max()))
                    if isinstance(o, tuple) else float(np.abs(o - ref).max()))
    times = {k: [] for k in variants}
    loads = []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
        for k, f in variants.items():
            t = time.perf_counter()
            f()
            sync()
            times[k].append((time.perf_counter() - t) / (2 if "batch of 2" in k else 1))
    base = statistics.median(times[next(iter(variants))])
    print(f"forward to pool5 at 1024x768, device {fx_device(device)}, {n_threads} torch threads, weights "
          f"{wname}{' (timing only)' if wname == 'random' else ''}, load average before each round: "
          + ", ".join(f"{v:.2f}" for v in loads) + f"; max |map| {float(np.abs(ref).max()):.1f}")
    for k in variants:
        med = statistics.median(times[k])
        d = diffs[k]
        print(f"  {k:<50} {1 / med:6.3f} images/s  x{base / med:5.3f}  max abs diff {d:.3g} "
              f"({'bit-identical' if d == 0 else 'differs'})  runs (s): " + " ".join(f"{t:.2f}" for t in times[k]))


if __name__ == "__main__":
    main()
