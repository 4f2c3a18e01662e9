"""Large scale: engine throughput, search latency and memory, streaming memory, PQ mAP.

Prints, in one run:

* ``engine``: images/s of extraction + encoding (``--max-dim`` px, default 512) serial vs the
  Dask engine with ``--workers`` worker processes (default 2; ``1,2`` times 1 and 2 workers
  and prints their ratio), and their ratio (timed after a warm-up job, so the cluster start
  and the weight loading are reported apart); ``--weights`` / ``--convention`` choose the
  backbone weights as :class:`~selconv_lite.features.extraction.FeatureExtractor` takes them;
* ``search``: latency per query batch and memory for ``--sizes`` synthetic 1024-D unit vectors
  (default 100k and 1M): numpy exact, FAISS flat (exact, float64 re-scored) and FAISS PQ
  (64 bytes per image). numpy exact is ``rank_by_inner_product`` (float64) up to 200k vectors;
  above that its float64 copy alone would need 8 GB per million vectors, so the numpy figure
  is a float32 product with ``argpartition`` in blocks of 100k (labelled);
* ``stream``: peak RSS of a process that streams N and 4 N images into vector shards;
* ``map``: mAP (revisited Medium) of the embedded set with 0 and ``--distractors`` derived
  distractors, exact vs PQ with 64 and 32 bytes per image.

Usage::

    nice -n 5 python benchmarks/bench_scale.py                       # everything
    nice -n 5 python benchmarks/bench_scale.py --sections search --sizes 100000
    taskset -c 0,1 python benchmarks/bench_scale.py --sections engine --workers 1,2 --images 16
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    """Current resident memory of this process (MB)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory (VmHWM, MB) since the start or the last :func:`reset_peak_rss`."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the peak (Linux: ``5`` into /proc/self/clear_refs); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------- engine
def machine_info() -> dict:
    """CPU model, the cores this process may run on, the load average and the thread settings."""
    from selconv_lite.core.machine import cpu_model

    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = None
    env = {k: os.environ.get(k) for k in ("SELCONV_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                          "OPENBLAS_NUM_THREADS")}
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "affinity": affinity,
            "load_average_1min": os.getloadavg()[0], "thread_env": env}


def bench_engine(n_images, max_dim, workers, weights="caffe-onnx", convention=None):
    """Images/s of extraction + encoding: serial, then the Dask engine with each of ``workers``
    worker processes (1 torch thread per process), then serial again."""
    import torch

    from selconv_lite.data.datasets import load_dataset
    from selconv_lite.features.extraction import FeatureExtractor
    from selconv_lite.method.pipeline import SelectiveConvPipeline
    from selconv_lite.scale.engine import DaskEngine, serial_encode

    workers = [int(w) for w in workers]
    ds = load_dataset("default")
    fx = FeatureExtractor(weights=weights, convention=convention, max_dim=max_dim, sift=False,
                          device="cpu", num_threads=1)
    train = [fx.extract(p)["pool5"] for p in ds.train_images[:12]]
    pipe = SelectiveConvPipeline(mask="max", embedding="temb", d=32, n_centroids=20,
                                 rn_components=64).fit(train)
    paths = ds.images[:n_images]
    serial_encode(pipe, fx, paths[:1])  # warm-up (weights already loaded)
    t = time.perf_counter()
    X1 = serial_encode(pipe, fx, paths)
    t_serial = time.perf_counter() - t
    runs = {}
    for w in workers:
        t0 = time.perf_counter()
        with DaskEngine(n_workers=w, threads_per_worker=1) as eng:
            t_start = time.perf_counter() - t0
            t = time.perf_counter()
            eng.encode(pipe, fx, paths[:w], chunk=1)  # warm-up: each worker loads its weights
            t_warm = time.perf_counter() - t
            t = time.perf_counter()
            X2 = eng.encode(pipe, fx, paths, chunk=1)
            t_eng = time.perf_counter() - t
        runs[w] = {"img_s": n_images / t_eng, "seconds": t_eng, "cluster_start_s": t_start,
                   "warmup_s": t_warm, "equal_to_serial": bool(np.array_equal(X1, X2))}
    t = time.perf_counter()
    serial_encode(pipe, fx, paths)  # again, after the engine: shows how much the load drifted
    t_serial2 = time.perf_counter() - t
    top = runs[max(workers)]
    r = {"images": n_images, "max_dim": max_dim, "weights": str(weights),
         "torch_threads_serial": torch.get_num_threads(), "serial_img_s": n_images / t_serial,
         "engine_workers": max(workers), "engine_img_s": top["img_s"],
         "ratio": t_serial / top["seconds"], "cluster_start_s": top["cluster_start_s"],
         "warmup_s": top["warmup_s"], "serial_s_per_img": t_serial / n_images,
         "serial_again_img_s": n_images / t_serial2,
         "equal_to_serial": all(v["equal_to_serial"] for v in runs.values()),
         "engine": {str(w): v for w, v in runs.items()}}
    if 1 in runs and max(workers) > 1:
        r["ratio_to_one_worker"] = top["img_s"] / runs[1]["img_s"]
    each = "; ".join(f"Dask {w} worker{'s' if w > 1 else ''} {v['img_s']:.3f} img/s "
                     f"(x{v['img_s'] / r['serial_img_s']:.2f} serial; cluster start "
                     f"{v['cluster_start_s']:.1f} s, worker warm-up {v['warmup_s']:.1f} s)"
                     for w, v in runs.items())
    vs_one = (f"; {max(workers)} workers / 1 worker {r['ratio_to_one_worker']:.2f}x"
              if "ratio_to_one_worker" in r else "")
    print(f"[engine] {n_images} images at {max_dim} px (extract + encode, 1 torch thread per "
          f"process): serial {r['serial_img_s']:.3f} img/s ({r['serial_s_per_img']:.2f} s/img); "
          f"{each}; ratio {r['ratio']:.2f}x serial{vs_one}; serial again after the engine "
          f"{r['serial_again_img_s']:.3f} img/s; vectors equal to serial: {r['equal_to_serial']}")
    return r


# ------------------------------------------------------------------------------- search
def _numpy_f32_topk(q, db, k, block=100_000):
    """Top ``k`` by a float32 product, ``block`` database rows at a time."""
    best_s = np.zeros((q.shape[0], 0), np.float32)
    best_i = np.zeros((q.shape[0], 0), np.int64)
    for a in range(0, db.shape[0], block):
        s = np.concatenate([best_s, q @ db[a:a + block].T], axis=1)
        idx = np.arange(a, min(a + block, db.shape[0]))
        i = np.concatenate([best_i, np.broadcast_to(idx, (q.shape[0], idx.size))], axis=1)
        keep = np.argpartition(-s, min(k, s.shape[1]) - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, keep, 1), np.take_along_axis(i, keep, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, 1).T


def bench_search(sizes, dim, nq, k, threads, pq_m, max_train):
    import faiss

    from selconv_lite.data.evaluation import rank_by_inner_product
    from selconv_lite.scale.distractors import synthetic_vectors
    from selconv_lite.scale.search import build_index

    faiss.omp_set_num_threads(threads)
    rows = []
    for n in sizes:
        rng = np.random.default_rng(1)
        base = rss_mb()
        db = synthetic_vectors(n, dim, seed=0)
        # queries: noisy copies of database vectors (so recall of the compressed index means something)
        src = rng.choice(n, nq, replace=False)
        q = db[src] + 0.5 * rng.standard_normal((nq, dim), dtype=np.float32) / np.sqrt(dim)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        row = {"n": n, "dim": dim, "nq": nq, "k": k, "db_MB": db.nbytes / 2**20}
        t = time.perf_counter()
        if n <= 200_000:
            ref = rank_by_inner_product(q, db, k)
            row["numpy_kind"] = "rank_by_inner_product (float64)"
        else:
            ref = _numpy_f32_topk(q, db, k)
            row["numpy_kind"] = "float32 blocked argpartition"
        row["numpy_s"] = time.perf_counter() - t
        m0 = rss_mb()
        t = time.perf_counter()
        flat = build_index(db, "faiss-flat")
        row["flat_build_s"] = time.perf_counter() - t
        row["flat_index_MB"] = rss_mb() - m0
        t = time.perf_counter()
        r_flat = flat.search(q, k)
        row["flat_s"] = time.perf_counter() - t
        row["flat_equal_numpy_top1"] = bool(np.array_equal(r_flat[0], ref[0]))
        if n <= 200_000:
            row["flat_equal_numpy"] = bool(np.array_equal(r_flat, ref))
        del flat
        m0 = rss_mb()
        t = time.perf_counter()
        pq = build_index(db, "faiss-pq", m=pq_m, nbits=8, opq=False, max_train=max_train)
        row["pq_build_s"] = time.perf_counter() - t
        row["pq_index_MB"] = max(rss_mb() - m0, 0.0)
        row["pq_bytes_per_image"] = pq.bytes_per_image
        t = time.perf_counter()
        r_pq = pq.search(q, k)
        row["pq_s"] = time.perf_counter() - t
        row["pq_recall1_at_k"] = float(np.mean(np.any(r_pq == ref[0][None, :], axis=0)))
        del pq, db
        row["process_peak_MB"] = peak_rss_mb()
        row["rss_before_MB"] = base
        rows.append(row)
        print(f"[search] n={n:,} D={dim} nq={nq} k={k} (FAISS threads {threads}): "
              f"numpy {row['numpy_s']:.2f} s [{row['numpy_kind']}], "
              f"FAISS flat {row['flat_s']:.2f} s (x{row['numpy_s'] / row['flat_s']:.1f}; exact ranks "
              f"= numpy: {row.get('flat_equal_numpy', row['flat_equal_numpy_top1'])}), "
              f"FAISS PQ{pq_m} {row['pq_s']:.3f} s (train+add {row['pq_build_s']:.1f} s, "
              f"{row['pq_bytes_per_image']:g} B/img, recall@{k} of the exact top-1 "
              f"{row['pq_recall1_at_k']:.2f}); memory: vectors {row['db_MB']:.0f} MB, flat index "
              f"+{row['flat_index_MB']:.0f} MB, PQ index +{row['pq_index_MB']:.0f} MB")
    return rows


# ------------------------------------------------------------------------------- stream
def _stream_child(n, max_dim, out):
    """Run in a fresh process: stream ``n`` images, print the peak RSS as JSON."""
    from selconv_lite.data.datasets import load_dataset
    from selconv_lite.features.extraction import FeatureExtractor
    from selconv_lite.method.pipeline import SelectiveConvPipeline
    from selconv_lite.scale.stream import StreamEncoder

    ds = load_dataset("default")
    fx = FeatureExtractor(max_dim=max_dim, sift=False, device="cpu", num_threads=1)
    train = [fx.extract(p)["pool5"] for p in ds.train_images[:8]]
    pipe = SelectiveConvPipeline(mask="max", embedding="vlad", d=16, n_centroids=8,
                                 rn_components=64).fit(train)
    paths = [ds.images[i % len(ds.images)] for i in range(n)]
    before = peak_rss_mb()  # model loading and fitting
    reset = reset_peak_rss()  # from here on: the streaming alone
    t = time.perf_counter()
    StreamEncoder(pipe, fx, out, shard_size=16).run(paths, ids=[f"img{i:07d}" for i in range(n)])
    print(json.dumps({"n": n, "peak_setup_MB": before, "peak_MB": peak_rss_mb(),
                      "peak_reset": reset, "rss_end_MB": rss_mb(),
                      "s_per_img": (time.perf_counter() - t) / n}))


def bench_stream(n, max_dim):
    rows = []
    for m in (n, 4 * n):
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([sys.executable, __file__, "--stream-child", str(m), str(max_dim), d],
                                 capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    a, b = rows
    what = "while streaming (peak reset after set-up)" if a["peak_reset"] else "of the process"
    print(f"[stream] peak RSS {what}: {a['n']} images {a['peak_MB']:.0f} MB; {b['n']} images "
          f"{b['peak_MB']:.0f} MB (growth {b['peak_MB'] - a['peak_MB']:+.0f} MB for 4x the images); "
          f"set-up (weights, fit) peak {a['peak_setup_MB']:.0f} MB; {max_dim} px, "
          f"{b['s_per_img']:.2f} s/img")
    return rows


# ------------------------------------------------------------------------------- map
def bench_map(n_distractors, out_dir):
    from selconv_lite.data import evaluation as ev
    from selconv_lite.data.datasets import load_dataset
    from selconv_lite.experiments.splits import split_features
    from selconv_lite.features.extraction import FeatureExtractor
    from selconv_lite.method.pipeline import SelectiveConvPipeline
    from selconv_lite.scale.distractors import make_derived_distractors
    from selconv_lite.scale.search import build_index
    from selconv_lite.scale.stream import StreamEncoder, load_vectors

    ds = load_dataset("default")
    feats = split_features(ds, max_dim=ds.default_max_dim, progress=False)["pool5"]
    pipe = SelectiveConvPipeline.from_preset(1024, mask="max").fit(feats["train"])
    Q, DB = pipe.transform(feats["queries"]), pipe.transform(feats["db"])
    T = pipe.transform(feats["train"])
    fx = FeatureExtractor(max_dim=ds.default_max_dim, sift=False)
    dpaths = make_derived_distractors(ds, Path(out_dir) / "images", n_distractors, seed=0,
                                      max_dim=ds.default_max_dim)
    enc = StreamEncoder(pipe, fx, Path(out_dir) / "vectors", shard_size=32)
    t = time.perf_counter()
    summ = enc.run(dpaths)
    t_enc = time.perf_counter() - t
    _, Xd = load_vectors(enc.out_dir, identity=enc.identity)

    def medium(ranks):
        return ev.evaluate_revisited(ranks, ds.gnd)["medium"]["mAP"]

    rows = []
    for nd in sorted({0, n_distractors}):
        db = np.vstack([DB, Xd[:nd]])
        train = np.vstack([T, DB, Xd[:nd]])  # PQ codebooks: held-out + database vectors
        row = {"distractors": nd, "exact": medium(build_index(db, "numpy").search(Q))}
        for m in (64, 32):
            # an OPQ rotation needs >= D training vectors; the embedded set has a few hundred
            ix = build_index(db, "faiss-pq", m=m, nbits=8, opq=train.shape[0] >= db.shape[1],
                             train=train, seed=0, threads=1)
            row[f"pq{m}"] = medium(ix.search(Q))
            row[f"pq{m}_bytes"] = ix.bytes_per_image
        rows.append(row)
        print(f"[map] embedded set + {nd} derived distractors (revisited Medium mAP, D=1024, "
              f"4096 B/img exact): exact {row['exact']:.4f}; (O)PQ 64 B/img {row['pq64']:.4f} "
              f"(diff {row['pq64'] - row['exact']:+.4f}); 32 B/img {row['pq32']:.4f}")
    print(f"[map] derived distractors encoded by the streaming encoder: {len(summ.encoded)} new "
          f"shards, {len(summ.reused)} reused, {t_enc:.1f} s")
    return rows


def _int_list(text, name):
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or min(vals) < 1:
        raise SystemExit(f"{name} must be positive integers separated by commas, not {text!r}")
    return vals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", default="engine,search,stream,map")
    ap.add_argument("--images", type=int, default=8, help="images of the engine benchmark")
    ap.add_argument("--max-dim", type=int, default=512)
    ap.add_argument("--workers", default="2",
                    help="engine worker processes; a comma list (e.g. 1,2) times each")
    ap.add_argument("--weights", default="caffe-onnx",
                    help="engine backbone weights: 'caffe-onnx', 'torchvision' or a state-dict path")
    ap.add_argument("--convention", choices=("caffe", "torchvision"), default=None,
                    help="input convention of a state-dict --weights path that does not record it")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--queries", type=int, default=55)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1,
                    help="FAISS OpenMP threads (1: its spinning threads suffer on a busy machine)")
    ap.add_argument("--pq-m", type=int, default=64)
    ap.add_argument("--max-train", type=int, default=50_000)
    ap.add_argument("--stream-n", type=int, default=16)
    ap.add_argument("--stream-max-dim", type=int, default=256)
    ap.add_argument("--distractors", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "cache" / "bench_scale"))
    ap.add_argument("--json", default=None, help="write all figures to this file")
    ap.add_argument("--stream-child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.stream_child:
        _stream_child(int(a.stream_child[0]), int(a.stream_child[1]), a.stream_child[2])
        return
    info = machine_info()
    print(f"# bench_scale: {info['cpu_count']} cores ({info['cpu_model']}), this process may use "
          f"{info['affinity']}, load average {info['load_average_1min']:.1f}")
    sections = a.sections.split(",")
    res = {}
    if "engine" in sections:
        res["machine"] = machine_info()
        res["engine"] = bench_engine(a.images, a.max_dim, _int_list(a.workers, "--workers"),
                                     a.weights, a.convention)
        res["machine"]["load_average_1min_after"] = os.getloadavg()[0]
    if "search" in sections:
        res["search"] = bench_search([int(s) for s in a.sizes.split(",")], a.dim, a.queries, a.k,
                                     a.threads, a.pq_m, a.max_train)
    if "stream" in sections:
        res["stream"] = bench_stream(a.stream_n, a.stream_max_dim)
    if "map" in sections:
        res["map"] = bench_map(a.distractors, a.out)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
