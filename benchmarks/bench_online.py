"""Speed of the online stage (mask -> final vector), paper Sec. 5.4 / Fig. 6.

For every mask x embedding at D = 512, 1024, 4096, on pool5-sized maps of a 1024x768 image
(24 x 32 x 512), prints milliseconds per image next to

* the BLAS floor: the FLOPs of the step's matrix products divided by the float32 GEMM rate
  measured in the same run (same thread count), and
* R-MAC on the same maps.

Usage::

    python benchmarks/bench_online.py                 # 1 BLAS thread, like the paper's one core
    python benchmarks/bench_online.py --threads 4 --images 32

The maps are synthetic (smooth ReLU activations with a few blobs, so the masks keep realistic
numbers of locations); timings do not depend on the values. One pipeline is fitted per
embedding x D (mask "none", fit not timed); the mask is an online-only parameter, so the same
fitted pipeline is timed with every mask. Configurations: T-emb = Table 4; VLAD / FV reach D
exactly (d |C| = D, 2 d |C| = D); F-FAemb cannot reach 512/1024/4096 exactly (d(d+1)/2 is
never a power of two), so it uses d = 16 and the smallest |C| whose truncation of at least
d(d+1) leaves exactly D.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from selconv_lite.core.machine import cpu_model
from selconv_lite.method.baselines import RMAC
from selconv_lite.method.masks import SiftMaskFallbackWarning
from selconv_lite.method.pipeline import TABLE4, SelectiveConvPipeline, embedding_dim
from selconv_lite.core.types import ImageFeatures

H, W, K = 24, 32, 512
MASKS = ("max", "sum", "sift", "none")
EMBEDDINGS = ("temb", "ffaemb", "vlad", "fv")
DIMS = (512, 1024, 4096)


def synthetic_maps(n, seed):
    """Smooth, sparse, non-negative maps: each channel responds to a few spatial blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for i in range(n):
        n_blobs = 12
        cy, cx = rng.uniform(0, H, n_blobs), rng.uniform(0, W, n_blobs)
        sig = rng.uniform(1.5, 5, n_blobs)
        B = np.exp(-((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2)
                   / (2 * sig[:, None, None] ** 2))  # (blobs, H, W)
        load = np.maximum(rng.standard_normal((n_blobs, K)), 0) ** 2
        F = np.tensordot(B, load, axes=(0, 0)) + 0.3 * rng.standard_normal((H, W, K)) - 0.4
        F = np.maximum(F, 0).astype(np.float32)
        kp = np.column_stack([rng.normal(W * 16, 200, 400), rng.normal(H * 16, 150, 400)])
        kp = kp[(kp[:, 0] >= 0) & (kp[:, 0] < W * 32) & (kp[:, 1] >= 0) & (kp[:, 1] < H * 32)]
        out.append(ImageFeatures(F, (H * 32, W * 32), kp.astype(np.float32), f"synth{i}"))
    return out


def config(embedding, D):
    """(d, |C|, truncate) reaching exactly D."""
    if embedding == "temb":
        d, k = TABLE4[D]
        return d, k, 128
    if embedding == "vlad":
        d = 32 if D == 512 else 64
        return d, D // d, 0
    if embedding == "fv":
        d = 32 if D <= 1024 else 64
        return d, D // (2 * d), 0
    d = 16
    T = d * (d + 1) // 2
    k = -(-(D + d * (d + 1)) // T)
    return d, k, k * T - D


def gemm_rate(n, D, repeat=5):
    """float32 GEMM GFLOP/s on the shape of the dominant product (n x D) @ (D x D)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, D)).astype(np.float32)
    B = rng.standard_normal((D, D)).astype(np.float32)
    A @ B
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t)
    return 2.0 * n * D * D / best / 1e9


def online_flops(embedding, aggregation, n, K, d, k, D_emb, D):
    """FLOPs of the matrix products of the online stage for one image with n local features."""
    f = 2.0 * n * K * d  # PCA
    if embedding in ("temb", "ffaemb"):
        f += 2.0 * n * D_emb * D_emb  # whitening projection P_emb
    elif embedding == "vlad":
        f += 2.0 * n * k * d  # nearest centroid
    else:
        f += 2.0 * 2 * n * k * d  # GMM log-likelihoods
    if aggregation == "democratic":
        f += 2.0 * n * n * D_emb + 2.0 * n * D_emb  # Gram + weighted sum
    f += 2.0 * D_emb * D  # rotation (only the kept columns)
    return f


def time_per_image(fn, images, repeat):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn(images)
        best = min(best, time.perf_counter() - t)
    return 1e3 * best / len(images)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for the timed part")
    ap.add_argument("--fit-threads", type=int, default=None, help="BLAS threads for fitting")
    ap.add_argument("--images", type=int, default=16, help="timed images")
    ap.add_argument("--train", type=int, default=40, help="held-out maps for fitting")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dims", type=int, nargs="+", default=list(DIMS))
    ap.add_argument("--embeddings", nargs="+", default=list(EMBEDDINGS))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", SiftMaskFallbackWarning)

    train = synthetic_maps(args.train, seed=1)
    test = synthetic_maps(args.images, seed=2)
    from selconv_lite.method.masks import compute_mask
    kept = {m: np.mean([compute_mask(m, im).sum() for im in test]) for m in MASKS}

    print(f"# bench_online: {H}x{W}x{K} maps, {args.images} images, best of {args.repeat}, "
          f"{args.threads} BLAS thread(s)")
    print(f"# machine: {cpu_model()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"numpy {np.__version__}, python {platform.python_version()}")
    print("# mean local features kept per mask: " +
          ", ".join(f"{m} {kept[m]:.0f}" for m in MASKS) + f" (of {H * W})")

    rmac = RMAC().fit(train)
    with threadpool_limits(args.threads):
        t_rmac = time_per_image(rmac.transform, test, args.repeat)
    print(f"# R-MAC (L=3, 20 regions, whitened): {t_rmac:.2f} ms/image")
    print()
    print("| D | embedding | d, |C|, trunc | mask | n | ms/image | BLAS floor ms | x floor | "
          "vs R-MAC |")
    print("|---|---|---|---|---|---|---|---|---|")
    rates = {}
    for D in args.dims:
        for emb in args.embeddings:
            d, k, t = config(emb, D)
            D_emb = embedding_dim(emb, d, k)
            with threadpool_limits(args.fit_threads):
                pipe = SelectiveConvPipeline(mask="none", embedding=emb, d=d, n_centroids=k,
                                             truncate=t, max_train_features=60_000,
                                             max_whiten_features=max(2 * D_emb, 4000),
                                             eig_clamp=None).fit(train)
            assert pipe.output_dim_ == D
            agg = pipe.aggregation
            for m in MASKS:
                pipe.set_params(mask=m)
                n = int(round(kept[m]))
                key = (n, D_emb)
                with threadpool_limits(args.threads):
                    if key not in rates:
                        rates[key] = gemm_rate(n, D_emb)
                    ms = time_per_image(pipe.transform, test, args.repeat)
                floor = online_flops(emb, agg, kept[m], K, d, k, D_emb, D) / (rates[key] * 1e9) * 1e3
                print(f"| {D} | {emb} | {d}, {k}, {t} | {m} | {n} | {ms:.2f} | {floor:.2f} | "
                      f"{ms / floor:.2f} | {ms / t_rmac:.2f} |", flush=True)
    print()
    print("# GEMM rates used for the floor (GFLOP/s, float32): " +
          ", ".join(f"n={n} D={D}: {r:.1f}" for (n, D), r in sorted(rates.items())))


if __name__ == "__main__":
    main()
