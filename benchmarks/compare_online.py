"""Online speed of two versions of the package side by side, in one process (interleaved runs,
so that the load of a shared machine falls on both alike).

Fits the same pipeline (same seed, same synthetic held-out maps as ``bench_online.py``) with
each version, checks that both give the same vectors, then times mask -> final vector per image,
alternating the two versions ``--rounds`` times and keeping the best time of each. The other
version is any copy of the package renamed, e.g.::

    git archive <rev> selconv_lite | tar -x -C /tmp/old && mv /tmp/old/selconv_lite /tmp/old/selconv_lite_old
    PYTHONPATH=/tmp/old python benchmarks/compare_online.py --other selconv_lite_old
"""
from __future__ import annotations

import argparse
import importlib
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from bench_online import DIMS, EMBEDDINGS, MASKS, config, synthetic_maps, time_per_image


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--other", required=True, help="importable name of the other package copy")
    ap.add_argument("--dims", type=int, nargs="+", default=list(DIMS))
    ap.add_argument("--embeddings", nargs="+", default=list(EMBEDDINGS))
    ap.add_argument("--masks", nargs="+", default=list(MASKS))
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--train", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    versions = {"this": importlib.import_module("selconv_lite.method.pipeline"),
                args.other: importlib.import_module(f"{args.other}.method.pipeline")}
    train = synthetic_maps(args.train, seed=1)  # the pipelines read .fmap/.keypoints/.name only
    test = synthetic_maps(args.images, seed=2)
    print(f"| D | embedding | mask | {args.other} ms/image | this ms/image | this / {args.other} |")
    print("|---|---|---|---|---|---|")
    for D in args.dims:
        for emb in args.embeddings:
            d, k, t = config(emb, D)
            D_emb = versions["this"].embedding_dim(emb, d, k)
            pipes = {}
            for v, mod in versions.items():
                pipes[v] = mod.SelectiveConvPipeline(
                    mask="none", embedding=emb, d=d, n_centroids=k, truncate=t,
                    max_train_features=60_000, max_whiten_features=max(2 * D_emb, 4000),
                    eig_clamp=None).fit(train)
            for m in args.masks:
                for p in pipes.values():
                    p.set_params(mask=m)
                with threadpool_limits(1):
                    out = {v: p.transform(test) for v, p in pipes.items()}
                    np.testing.assert_allclose(out["this"], out[args.other], atol=2e-4)
                    ms = {v: np.inf for v in versions}
                    for _ in range(args.rounds):
                        for v, p in pipes.items():
                            ms[v] = min(ms[v], time_per_image(p.transform, test, 1))
                print(f"| {D} | {emb} | {m} | {ms[args.other]:.2f} | {ms['this']:.2f} | "
                      f"{ms['this'] / ms[args.other]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
