# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 08 — Large scale (paper §5.3, Table 6: Oxford105k / Paris106k; the revisited R1M protocol)
#
# **What this notebook covers.** Table 6 also evaluates the framework with the 100k Flickr
# distractor images added to the database (Oxford105k, Paris106k); the revisited protocol adds a
# million (R1M). At that scale two things matter that do not on 5k images: **what is stored per
# image** and **how long the encoding takes**. This notebook measures both on the embedded
# dataset plus **derived distractors** (clearly labelled stand-ins, see §2), and projects the
# measured per-image costs to 1M images.
#
# | here | what |
# |---|---|
# | §1 | bytes per image: cached conv maps vs final vectors vs product-quantisation (PQ) codes |
# | §2 | mAP versus the number of distractors |
# | §3 | exact vs compressed search: PQ written out in numpy, then mAP versus bytes per image |
# | §4 | throughput of the streaming encoder, serial and with 1 and 2 Dask workers |
# | §5 | projection to Flickr100k and R1M from the measured per-image costs |
#
# **Prerequisites.** Notebooks 05–06 (the framework and its evaluation). The package side is
# `selconv_lite.scale` (docs/scale.md).
#
# **Run time on 2 CPU cores.** Run after notebook 02 (whose extraction fills the shared feature
# cache at 1024 px), it spends most of its time in §2 (streaming the derived distractors through
# VGG16 at 1024 px, never cached) and §4 (starting two small Dask clusters). The cells print
# their own timings. Run on its own with an empty cache, it first extracts the set's feature maps,
# the pass that notebook 02 makes for the whole series. The series' times measured on this set,
# from an empty cache, are in `notebooks/measured/series_cold_1024.json` and in
# [docs/notebooks.md](../docs/notebooks.md) ("Measured times").
#
# ← [07 — Fine-tuned backbones](07_finetuned_backbones.ipynb) · [09 — Capstone](09_capstone.ipynb) →

# %% tags=["parameters"]
dataset = "default"      # "default": the embedded offline set (this notebook's derived distractors need it)
weights = "caffe-onnx"   # VGG16 weights: "caffe-onnx" (offline ImageNet), "torchvision", or a state-dict path
layer = "pool5"          # conv layer of the local features (the paper: pool5)
max_dim = None           # max(W_I, H_I); None: the dataset's default (1024 px, the paper's size)
mask = "max"             # mask of the framework: "max", "sum", "none" ("sift" needs keypoints of every distractor)
D = 1024                 # final dimension (a Table 4 preset)
distractor_counts = [0, 8, 16, 32]   # numbers of derived distractors added to the database (§2)
pq_settings = [[256, 8], [128, 8], [64, 8], [32, 8], [16, 8], [128, 4]]   # (m sub-quantisers, bits each) of §3
engine_images = 8        # images encoded by the Dask engine in §4
engine_max_dim = 256     # their max_dim (small, so that §4 stays quick)
engine_workers = [1, 2]  # Dask worker processes compared in §4
seed = 0                 # seed of the distractors and of every k-means
cache_dir = None         # feature cache; None: env SELCONV_CACHE or <repo>/cache
output_dir = None        # JSON results and figures; None: env SELCONV_OUTPUT or <repo>/outputs

# %% tags=[]
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import dask
import faiss
import matplotlib.pyplot as plt
import numpy as np

from selconv_lite.data import evaluation as ev
from selconv_lite.data.datasets import load_dataset
from selconv_lite.experiments.published import table6_value
from selconv_lite.experiments.report import PairedLog
from selconv_lite.features.cache import FeatureCache
from selconv_lite.features.extraction import FeatureExtractor
from selconv_lite.method.pipeline import SelectiveConvPipeline
from selconv_lite.scale.distractors import LABEL, make_derived_distractors
from selconv_lite.scale.engine import DaskEngine
from selconv_lite.scale.search import SmallTrainingSetWarning, build_index
from selconv_lite.scale.stream import StreamEncoder, load_vectors
from selconv_lite.teaching import notebook_utils as nu

# the embedded set offers a few hundred training vectors for 256-centroid codebooks: said once in §3
warnings.filterwarnings("ignore", category=SmallTrainingSetWarning)
# on a busy machine Dask logs that a worker process took more than 4 s to exit when a cluster
# closes (harmless: the results have arrived by then); only errors are shown
dask.config.set({"logging.distributed": "error"})
logging.getLogger("distributed").setLevel(logging.ERROR)
print(nu.seed_everything(seed))
ds = load_dataset(dataset)
max_dim = max_dim or ds.default_max_dim
rec = nu.NotebookRecord("08_large_scale", output_dir, params=dict(
    dataset=dataset, weights=str(weights), layer=layer, max_dim=max_dim, mask=mask, D=D,
    distractor_counts=distractor_counts, pq_settings=pq_settings, engine_images=engine_images,
    engine_max_dim=engine_max_dim, engine_workers=engine_workers, seed=seed))
print(ds.summary())
work = Path(tempfile.mkdtemp(prefix="selconv_08_"))   # this run's distractors and vector shards

# %% tags=["nbval-ignore-output"]
F = nu.dataset_features(ds, layer=layer, max_dim=max_dim, cache_dir=cache_dir, weights=weights)

# %% tags=[]
t = time.perf_counter()
pipe = SelectiveConvPipeline.from_preset(D, mask=mask).fit(F["train"])   # held-out set only (Sec. 5.1)
Q, DB, T = pipe.transform(F["queries"]), pipe.transform(F["db"]), pipe.transform(F["train"])
print(f"pipeline M_{mask.upper()} + T-emb + democratic, D = {pipe.output_dim_}, fitted on "
      f"{len(F['train'])} held-out images and applied to {len(Q)} queries + {len(DB)} database "
      f"images in {time.perf_counter() - t:.1f} s")

# %% [markdown] tags=[]
# ## 1. Bytes per image
#
# The feature cache of notebooks 01–07 keeps every image's conv map (so that the notebooks can
# change the mask, the embedding or $D$ without running the CNN again). After the pipeline is
# fitted, only the final $D$-vector is needed for search, and a product quantiser shrinks it
# further to $m$ codes of `nbits` bits. The cache entries below are the files of this
# dataset's database images on disk (zlib-compressed float32 maps of the `pool5` layer at
# `max_dim`: 1024 px by default, the size of §2 and §5 too).

# %% tags=[]
cache = FeatureCache(cache_dir, weights=weights, layers=(layer,), max_dim=max_dim)
entry_bytes = np.array([cache.entry_path(p, layer=layer).stat().st_size for p in ds.images], float)
raw_bytes = np.array([f.fmap.nbytes for f in F["db"]], float)
print(f"{layer} map in the feature cache (compressed, mean of {len(ds.images)}):  {entry_bytes.mean() / 1024:8.1f} KB")
print(f"{layer} map as float32 in memory (mean):               {raw_bytes.mean() / 1024:8.1f} KB")
print(f"final vector, D = {D}, float32:                        {4 * D:8d} B")
for m, b in pq_settings:
    print(f"PQ code, m = {m:3d} sub-quantisers x {b} bits:             {m * b // 8:8d} B")
print(f"a final vector is {entry_bytes.mean() / (4 * D):.1f}x smaller than a cache entry; "
      f"a 64-byte PQ code {entry_bytes.mean() / 64:.1f}x")
rec.add("bytes_per_image", {"map_cache_mean": entry_bytes.mean(), "map_float32_mean": raw_bytes.mean(),
                            "vector": 4.0 * D})
rec.headline(f"{layer} cache entry per image (KB)", entry_bytes.mean() / 1024)

# %% [markdown] tags=[]
# ## 2. mAP versus the number of distractors
#
# Oxford105k and Paris106k add the Flickr100k images (about a hundred thousand; the paper line
# below prints the count) to the database, and R1M a million; none is relevant to any query, so
# each can only push relevant images down the ranking. They need the internet
# (`download_dataset("oxford105k")`, §5). Offline, `make_derived_distractors` writes **derived
# distractors**: random crops (between half and all of each side), mirror flips and colour jitter
# of the embedded photos that are relevant to *no* query, named `derived-distractor_NNNNNN.jpg` and
# listed with their source in `DERIVED_DISTRACTORS.csv`; like every image, each is then resized to
# `max_dim` on its long side, so a crop is upsampled. The sources are taken in order, the held-out
# images first, then the database images in no query's lists (scene-only and distractor-object
# images). This run asks for fewer distractors (`distractor_counts`) than there are held-out
# images, so every distractor here is cut from a held-out image: other objects in other scenes.
# They are **not Flickr100k** and much less varied, so they are an optimistic stand-in: expect a
# smaller drop than the paper's.
#
# The distractors go through the **streaming encoder**: extract → mask → embed → aggregate →
# post-process → final vector, one image's maps in memory at a time, vectors written in
# checksummed shards; no map is cached.

# %% tags=[]
n_dis = max(distractor_counts)
dpaths = make_derived_distractors(ds, work / "distractors", n_dis, seed=seed, max_dim=max_dim)
fx = FeatureExtractor(weights=weights, max_dim=max_dim, sift=False)
enc = StreamEncoder(pipe, fx, work / "vectors", shard_size=16, layer=layer)
t = time.perf_counter()
summary = enc.run(dpaths)
stream_s = time.perf_counter() - t
_, Xd = load_vectors(work / "vectors", identity=enc.identity)
stream_s_per_img = stream_s / max(1, n_dis)
print(f"{n_dis} images labelled {LABEL!r}, streamed into {summary.n_shards} shards of vectors "
      f"{Xd.shape} in {stream_s:.1f} s ({stream_s_per_img:.2f} s per image at max_dim {max_dim})")

# %% tags=[]
def revisited(ranks):
    """Easy / Medium / Hard mAP of the revisited protocol (database = images + distractors), and
    the per-query Medium APs (NaN for a query without Medium positives) for paired comparisons."""
    r = ev.evaluate_revisited(ranks, ds.gnd)
    return {p: r[p]["mAP"] for p in ("easy", "medium", "hard")}, r["medium"]["aps"]


by_n, medium_aps = {}, {}
paired = PairedLog()   # results.paired of the record: each verdict's interval
for n in distractor_counts:
    by_n[n], medium_aps[n] = revisited(build_index(np.vstack([DB, Xd[:n]]), "numpy").search(Q))
    print(f"{len(DB)} images + {n:3d} derived distractors: mAP Easy {nu.fmt(by_n[n]['easy'])}, "
          f"Medium {nu.fmt(by_n[n]['medium'])}, Hard {nu.fmt(by_n[n]['hard'])}")
drop = by_n[n_dis]["medium"] - by_n[0]["medium"]
p5, p105 = table6_value("oxford5k", f"M_{mask.upper()}+T-emb+demo", D), table6_value("oxford105k", f"M_{mask.upper()}+T-emb+demo", D)
if p5 is not None and p105 is not None:
    print(f"change of mAP with distractors -- paper (Table 6, Oxford5k -> Oxford105k, 100,071 Flickr "
          f"images): {(p105 - p5) / 100:+.3f}, here (Medium, {n_dis} derived distractors): {drop:+.3f}")
print("paired over the queries: " + str(paired.claim(
    f"Medium mAP: {n_dis} distractors vs none", medium_aps[n_dis], medium_aps[0], f"{n_dis} distractors", "none",
    metric="Medium mAP", paper_diff=None if None in (p5, p105) else p105 - p5)))
rec.add("map_vs_distractors", {str(n): v for n, v in by_n.items()})
rec.headline(f"Medium mAP, {n_dis} derived distractors", by_n[n_dis]["medium"])
rec.headline(f"Medium mAP change with {n_dis} derived distractors", drop)

# %% tags=[]
fig, ax = plt.subplots(figsize=(5.5, 3.4))
for p, mk in (("easy", "o"), ("medium", "s"), ("hard", "^")):
    ax.plot(distractor_counts, [by_n[n][p] for n in distractor_counts], marker=mk, label=p.capitalize())
ax.set_xlabel("derived distractors added to the database", fontsize=10)
ax.set_ylabel("mAP", fontsize=10)
ax.set_title(f"M_{mask.upper()} + T-emb + demo, D = {D}: mAP vs distractors", fontsize=10)
ax.tick_params(labelsize=9)
ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
ax.grid(alpha=0.3)
fig.tight_layout()
rec.figure(fig, "map_vs_distractors")
nu.show_figure(fig, dpi=100)
plt.close(fig)

# %% [markdown] tags=[]
# **What §2 shows.** The derived distractors lower the Medium mAP only slightly: the paired line
# puts the change (the largest count against none) below zero with an interval that excludes 0,
# the same sign as the paper's Oxford5k → Oxford105k drop ("agrees"), and far smaller than the
# paper's change printed on the line before it. The Easy mAP does not move at the printed digits.
# The setting differs from the paper's in size (a few dozen stand-ins, not a hundred thousand
# Flickr images) and in kind (crops of held-out photos that share neither objects nor scenes with
# the test set); we have not measured how much each contributes to the smaller drop.
#
# ## 3. Exact versus compressed search
#
# **Product quantisation** (Jégou et al., TPAMI 2011) cuts a $D$-vector $\mathbf x$ into $m$
# sub-vectors $\mathbf x_j$ of $D/m$ dimensions and replaces each by the index of its nearest
# centroid in a codebook $C_j$ of $2^{\text{nbits}}$ centroids learned by k-means:
# $\mathbf x \approx (c_{1,i_1}, \dots, c_{m,i_m})$, stored as $m \cdot \text{nbits}/8$ bytes.
# A query $\mathbf q$ is *not* quantised (asymmetric distance): the inner product is read
# from $m$ look-up tables,
#
# $$
# \langle \mathbf q, \mathbf x \rangle \approx \sum_{j=1}^{m} \langle \mathbf q_j, c_{j, i_j} \rangle ,
# \qquad T_j[i] = \langle \mathbf q_j, c_{j,i} \rangle \text{ computed once per query.}
# $$
#
# Written out in numpy for a few vectors, and checked against FAISS (which `selconv_lite.scale.search`
# uses): the codes and the approximate inner products must agree.

# %% tags=[]
m, nbits = 64, 8
X = np.ascontiguousarray(np.vstack([DB, Xd]), dtype=np.float32)   # database: images + distractors
train = np.ascontiguousarray(np.vstack([T, DB, Xd]), dtype=np.float32)   # codebooks: held-out + database vectors
pq_ix = faiss.IndexPQ(D, m, nbits, faiss.METRIC_INNER_PRODUCT)
pq_ix.pq.cp.seed = seed
pq_ix.pq.cp.min_points_per_centroid = 1          # few training vectors here (see below)
pq_ix.train(train)
pq_ix.add(X)
C = faiss.vector_to_array(pq_ix.pq.centroids).reshape(m, 2 ** nbits, D // m)   # codebooks C_j

x = X[:5].reshape(5, m, D // m)                                   # 5 database vectors, cut into m parts
d2 = ((x[:, :, None, :] - C[None]) ** 2).sum(-1)                  # (5, m, 256) squared distances to centroids
codes = d2.argmin(-1).astype(np.uint8)                            # encoding: nearest centroid per part
assert np.array_equal(codes, pq_ix.sa_encode(X[:5]))              # FAISS's codes: the same bytes

q = Q[:3].astype(np.float32).reshape(3, m, D // m)
tables = np.einsum("qjd,jcd->qjc", q, C)                          # T_j[i] for every query, part, centroid
all_codes = pq_ix.sa_encode(X).reshape(-1, m).astype(np.int64)
approx = tables[:, np.arange(m), all_codes].sum(-1)               # (3, N): sum_j T_j[i_j(x)]
S_faiss, I_faiss = pq_ix.search(Q[:3].astype(np.float32), 10)
np.testing.assert_allclose(np.take_along_axis(approx, I_faiss, 1), S_faiss, rtol=0, atol=1e-4)
assert np.all(approx.max(1) <= S_faiss[:, 0] + 1e-4)              # FAISS's best is numpy's best
print(f"{m} parts of {D // m} dimensions, {2 ** nbits} centroids each: {m * nbits // 8} bytes per image; "
      f"numpy's codes and look-up-table scores equal FAISS's on {len(X)} vectors")
exact = (Q[:3] @ X.T)
print("exact vs PQ inner product, query 0, first 5 database images:")
for i in range(5):
    print(f"  {nu.fmt(exact[0, i])}  vs  {nu.fmt(approx[0, i])}")

# %% [markdown] tags=[]
# The package's indexes (`build_index(X, backend)`): `"faiss-flat"` is exact and returns the same
# ranks as the numpy ranking; `"faiss-pq"` keeps only the codes. An OPQ rotation before the PQ
# (`opq=True`, the package's default) needs at least $D$ training vectors, more than this small
# set has, so the codebooks below are plain PQ (`opq=False`), learned on the held-out and database
# vectors (no labels are used).

# %% tags=[]
exact_ranks = build_index(X, "numpy").search(Q)
assert np.array_equal(build_index(X, "faiss-flat", threads=1).search(Q), exact_ranks)   # exact: same ranks
ex, ex_aps = revisited(exact_ranks)
print(f"{len(train)} training vectors for {2 ** 8} centroids per sub-quantiser (FAISS recommends "
      f"{39 * 2 ** 8}): the codebooks are coarser than on a large set")
print(f"exact (float32 vectors, {4 * D} B per image): Medium mAP {nu.fmt(ex['medium'])}, Hard {nu.fmt(ex['hard'])}")
pq_rows, pq_aps = [], []
for m_, b_ in pq_settings:
    ix = build_index(X, "faiss-pq", m=m_, nbits=b_, opq=False, train=train, seed=seed, threads=1)
    r, r_aps = revisited(ix.search(Q))
    pq_aps.append(r_aps)
    pq_rows.append({"m": m_, "nbits": b_, "bytes": ix.bytes_per_image, "medium": r["medium"],
                    "hard": r["hard"], "medium_diff": r["medium"] - ex["medium"]})
    print(f"PQ m = {m_:3d} x {b_} bits ({ix.bytes_per_image:5.0f} B per image): Medium mAP "
          f"{nu.fmt(r['medium'])} ({nu.fmt(r['medium'] - ex['medium'])} vs exact), Hard {nu.fmt(r['hard'])}")
rec.add("pq", pq_rows)
rec.add("exact", ex)
best64 = max((r for r in pq_rows if r["bytes"] <= 64), key=lambda r: r["medium"], default=None)
if best64 is not None:
    print(f"best setting with <= 64 B per image: Medium mAP {nu.fmt(best64['medium'])}, "
          f"{nu.fmt(best64['medium_diff'])} vs exact (target: no lower than -0.03)")
    rec.headline("PQ <= 64 B: Medium mAP difference to exact", best64["medium_diff"])
    c = paired.claim("Medium mAP: PQ <= 64 B vs exact", pq_aps[pq_rows.index(best64)], ex_aps,
                     f"PQ m = {best64['m']} x {best64['nbits']} bits", "exact", metric="Medium mAP")
    print(f"paired over the queries: {c}\n  the whole interval is "
          + ("above" if c.comparison.ci_low > -0.03 else "not above") + " -0.03: the target is "
          + ("met" if c.comparison.ci_low > -0.03 else "not shown to be met") + " on these queries")
rec.add("paired", paired)

# %% tags=[]
fig, ax = plt.subplots(figsize=(5.5, 3.4))
for nb_ in sorted({r["nbits"] for r in pq_rows}):
    rows = [r for r in pq_rows if r["nbits"] == nb_]
    ax.plot([r["bytes"] for r in rows], [r["medium"] for r in rows], marker="o", label=f"PQ, {nb_} bits")
ax.axhline(ex["medium"], color="k", ls="--", lw=1, label=f"exact ({4 * D} B)")
ax.axhline(ex["medium"] - 0.03, color="grey", ls=":", lw=1, label="exact - 0.03")
ax.set_xscale("log", base=2)
ax.set_xlabel("bytes per image in the index", fontsize=10)
ax.set_ylabel("Medium mAP", fontsize=10)
ax.set_title(f"compressed search: {len(DB)} images + {n_dis} derived distractors", fontsize=10)
ax.tick_params(labelsize=9)
ax.legend(fontsize=9)
ax.grid(alpha=0.3)
fig.tight_layout()
rec.figure(fig, "map_vs_bytes")
nu.show_figure(fig, dpi=100)
plt.close(fig)

# %% [markdown] tags=[]
# **What §3 shows.** The numpy encoding and look-up tables equal FAISS's (the asserts passed).
# Compression costs accuracy here: for the best setting whose codes fit in the 64-byte budget,
# the paired line puts the difference to the exact search below zero with an interval that
# excludes 0 ("exact better"), and the interval does not lie wholly above the target printed with
# it, so the target is not shown to be met on these queries. The other settings are printed as
# point estimates, without paired intervals: in the figure the 8-bit codes lie closer to the
# exact line the more bytes they use (the single 4-bit point is Exercise 1). The codebooks are
# learned from a few hundred vectors (the printed count, against FAISS's recommendation), so they
# are coarser than they would be on the real distractors.
#
# ## 4. Throughput: serial and with a Dask engine
#
# `DaskEngine` runs the streaming encoder's shards on worker processes (here a local cluster; on
# several machines, the scheduler's address). Each worker loads the VGG16 weights once. Few
# images at a small size (`engine_max_dim`, 256 px, not the 1024 px of §2) keep this section
# quick; the vectors must equal the serial ones.
# The figures depend on how busy the machine's cores are (other jobs share them), so they are
# printed, never compared between runs.

# %% tags=[]
eng_paths = list(ds.images[:engine_images])
fx_small = FeatureExtractor(weights=weights, max_dim=engine_max_dim, sift=False, num_threads=1)
fx_small.extract(eng_paths[0])                                     # loads the weights
t = time.perf_counter()
StreamEncoder(pipe, fx_small, work / "serial", shard_size=1, layer=layer).run(eng_paths)
rate = {0: len(eng_paths) / (time.perf_counter() - t)}
X_serial = load_vectors(work / "serial")[1]
same = {}
for w in engine_workers:
    t0 = time.perf_counter()
    with DaskEngine(n_workers=w, threads_per_worker=1) as eng:
        eng.encode(pipe, fx_small, eng_paths[:w], chunk=1, layer=layer)   # each worker loads its weights
        t_up = time.perf_counter() - t0
        t = time.perf_counter()
        StreamEncoder(pipe, fx_small, work / f"engine{w}", shard_size=1, layer=layer).run(eng_paths, engine=eng)
        rate[w] = len(eng_paths) / (time.perf_counter() - t)
    same[w] = bool(np.array_equal(load_vectors(work / f"engine{w}")[1], X_serial))
    print(f"Dask, {w} worker(s): start and weight loading {t_up:.1f} s, then {rate[w]:.2f} img/s; "
          f"vectors equal to the serial ones: {same[w]}")
print(f"serial (this process, 1 torch thread): {rate[0]:.2f} img/s; {len(eng_paths)} images at max_dim {engine_max_dim}")
if 1 in rate and 2 in rate:
    print(f"2 workers vs 1: {rate[2] / rate[1]:.2f}x")
assert all(same.values())
rec.add("engine", {"img_per_s_serial": rate[0], **{f"img_per_s_{w}_workers": rate[w] for w in engine_workers},
                   "equal_to_serial": all(same.values())})

# %% [markdown] tags=[]
# The figures above come from this run, on cores that other jobs may share: here 2 workers gain
# little over 1 (the cell's last line), short of the engine's target. The recorded run of
# `benchmarks/bench_scale.py --sections engine --workers 1,2` on 2 idle cores (16 images at
# 512 px, timed after a warm-up job) is the one the target is judged by; the line below prints its
# ratio next to the target, which it meets. In both runs one Dask worker is slower than the serial
# loop in this process; we have not measured where that time goes. The idle run's images per
# second are at 512 px, those above at 256 px and §2's time per image at 1024 px: three sizes, so
# the rates do not compare across them.

# %% tags=[]
import json

from selconv_lite.core.files import repo_root

idle = json.loads((repo_root() / "benchmarks" / "measured" / "engine_2cores_idle.json").read_text())["engine"]
print(f"2 idle cores ({idle['images']} images at {idle['max_dim']} px): serial {idle['serial_img_s']:.2f} img/s, "
      + ", ".join(f"{w} worker(s) {e['img_s']:.2f} img/s" for w, e in idle["engine"].items())
      + f"; 2 workers / 1 worker {idle['ratio_to_one_worker']:.2f}x (target 1.6x), vectors equal to serial: "
      + str(all(e["equal_to_serial"] for e in idle["engine"].values())))

# %% [markdown] tags=[]
# ## 5. Projection to Flickr100k and R1M
#
# From the per-image costs measured above: the streaming encoder's time per image (§2, at
# `max_dim` of this run, this machine, one process), the bytes of a cache entry (§1, same size),
# of a float32 vector and of a 64-byte PQ code. Extraction dominates the time and grows with the
# number of pixels. At the default `max_dim` of 1024 px, the paper's size, the CPU hours are
# measured at that size. With a smaller `max_dim` the cell adds an estimate at 1024 px, the
# measured time scaled by the pixel ratio (1024 px / `max_dim`)², four times from 512 px (an
# estimate, not a measurement). Every image of this set is 1024 × 768, so its pool5 map has
# 32 × 24 cells at 1024 px and 16 × 12 at 512 px (the float32 line of §1 is that map's size;
# notebook 06 §4b prints the cells per database image at each size).

# %% tags=[]
scale_px = (1024 / max_dim) ** 2
proj = {}
for name, n in (("Flickr100k (Oxford105k / Paris106k)", 100_071), ("R1M (revisitop1m)", 1_001_001)):
    proj[name] = {"images": n, "cpu_hours": n * stream_s_per_img / 3600,
                  "cpu_hours_1024px_estimate": n * stream_s_per_img * scale_px / 3600,
                  "cache_GB": n * entry_bytes.mean() / 1e9, "vectors_GB": n * 4 * D / 1e9,
                  "pq64_MB": n * 64 / 1e6}
    p = proj[name]
    at_1024 = "" if max_dim == 1024 else f" (about {p['cpu_hours_1024px_estimate']:.1f} at 1024 px, estimated)"
    print(f"{name}, {n:,} images:\n"
          f"  encoding on this machine: {p['cpu_hours']:.1f} CPU hours at max_dim {max_dim}{at_1024}\n"
          f"  disk if every map were cached: {p['cache_GB']:.1f} GB; final vectors: {p['vectors_GB']:.2f} GB\n"
          f"  RAM of the index: flat float32 {p['vectors_GB']:.2f} GB, PQ 64 B {p['pq64_MB']:.1f} MB")
rec.add("projection", proj)

# %% tags=[]
_ = rec.save()
shutil.rmtree(work, ignore_errors=True)   # this run's distractor images and vector shards

# %% [markdown] tags=[]
# The projection multiplies the measured per-image costs by the number of images, so its
# proportions are those of §1: the cached maps take the printed multiple of the final vectors, and
# the 64-byte PQ index is a small fraction of the flat one. The encoding time, mostly extraction at
# 1024 px (§2's time per image against the pipeline's time for the whole set at the top), grows to
# the CPU hours printed for R1M: the work that the Dask engine of §4 spreads over workers and
# machines.
#
# With the real data (internet needed once), the same steps run end to end:
# `download_dataset("oxford105k")` (or `"r1m"` for the revisited 1M distractors), the pipeline
# fitted on the held-out set, `StreamEncoder(...).run(paths, engine=DaskEngine(...))`, then
# `build_index(X, "faiss-flat")` or `"faiss-pq"` and the revisited evaluation. The README's
# section "Oxford105k / Paris106k / R1M end to end with the real data" gives the commands.
#
# ## Exercises
#
# 1. **Bits versus sub-quantisers.** At the same bytes per image, compare `m = 64 x 8 bits` with
#    `m = 128 x 4 bits` in §3. Which has the higher Medium mAP here (`my_better`: `"64x8"` or
#    `"128x4"`)? How many training vectors does each codebook get per centroid with 8 and with 4
#    bits (`my_per_centroid`, bits → vectors)? Why might a larger training set change the
#    comparison? The self-check reads §3's rows and training set.
# 2. **Harder distractors.** The derived distractors of this run are crops of held-out photos.
#    Which kind of image would lower the Hard mAP most? A first measure in this notebook's state:
#    are the queries closer (the mean over the queries of the largest inner product) to the
#    held-out distractors `Xd` or to the database's scene-only images, which share backgrounds
#    with the positives (`my_closer_source`: `"held-out"` or `"scene-only"`)? The self-check
#    computes both. The project behind it (no automatic check): use the scene-only images (or
#    the queries' crops of *other* objects' images) as the sources of the distractors and re-run
#    §2.
# 3. **Break-even.** From the figures of §1 and §5, at how many images does the index of float32
#    vectors stop fitting in a machine with $R = 16$ GB of RAM (`my_n_flat`), and at how many does
#    the 64-byte PQ index (`my_n_pq`)? Count the vectors or codes only; the self-check accepts GB
#    or GiB.

# %% tags=[]
my_better = None         # your answer: "64x8" or "128x4"
my_per_centroid = None   # your answer: {8: training vectors per centroid, 4: ...}

if my_better is None or my_per_centroid is None:
    print("exercise 1: not answered yet")
else:
    r8, r4 = (next(r for r in pq_rows if (r["m"], r["nbits"]) == s) for s in ((64, 8), (128, 4)))
    assert my_better == ("64x8" if r8["medium"] > r4["medium"] else "128x4"), my_better
    for b_ in (8, 4):
        np.testing.assert_allclose(my_per_centroid[b_], len(train) / 2 ** b_, rtol=1e-3)
    print("exercise 1: correct")

# %% tags=[]
my_closer_source = None   # your answer: "held-out" or "scene-only"

if my_closer_source is None:
    print("exercise 2: not answered yet")
else:
    scene = np.array(["_scene_" in Path(p).name for p in ds.images])   # the scene-only database images
    closeness = {"held-out": (Q @ Xd.T).max(axis=1).mean(), "scene-only": (Q @ DB[scene].T).max(axis=1).mean()}
    assert my_closer_source == max(closeness, key=closeness.get), my_closer_source
    print("exercise 2: correct")

# %% tags=[]
my_n_flat = None   # your answer: images whose float32 D-vectors fit in 16 GB
my_n_pq = None     # your answer: images whose 64-byte PQ codes fit in 16 GB

if my_n_flat is None or my_n_pq is None:
    print("exercise 3: not answered yet")
else:
    np.testing.assert_allclose(my_n_flat, 16e9 / (4 * D), rtol=0.08)   # 16 GiB is 7.4% more than 16e9 B
    np.testing.assert_allclose(my_n_pq, 16e9 / 64, rtol=0.08)
    print("exercise 3: correct")

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 1</summary>
#
# ```python
# from selconv_lite.experiments.report import paired_claim
#
# i8, i4 = (next(i for i, r in enumerate(pq_rows) if (r["m"], r["nbits"]) == s) for s in ((64, 8), (128, 4)))
# for i in (i8, i4):
#     print(f"m = {pq_rows[i]['m']:3d} x {pq_rows[i]['nbits']} bits ({pq_rows[i]['bytes']:.0f} B per image): "
#           f"Medium mAP {nu.fmt(pq_rows[i]['medium'])}, Hard {nu.fmt(pq_rows[i]['hard'])}")
# print(paired_claim(pq_aps[i8], pq_aps[i4], "64 x 8 bits", "128 x 4 bits", metric="Medium mAP"))
# my_better = "64x8" if pq_rows[i8]["medium"] > pq_rows[i4]["medium"] else "128x4"
# my_per_centroid = {b: len(train) / 2 ** b for b in (8, 4)}
# print(f"training vectors per centroid: {my_per_centroid[8]:.1f} with 8 bits, {my_per_centroid[4]:.1f} with 4 bits")
# ```
#
# At the same bytes per image the 8-bit codes are detectably better here: $2^4$ centroids per
# sub-vector describe it too coarsely, however many sub-vectors there are. The 8-bit codebooks are
# the ones short of training vectors (the last line), so a larger training set should mainly refine
# them and widen the gap rather than close it; that is an expectation, not measured here.
#
# </details>

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 2</summary>
#
# ```python
# scene = np.array(["_scene_" in Path(p).name for p in ds.images])   # scene-only database images (pr_scene_*)
# closeness = {"held-out": (Q @ Xd.T).max(axis=1).mean(), "scene-only": (Q @ DB[scene].T).max(axis=1).mean()}
# my_closer_source = max(closeness, key=closeness.get)
# print("mean over the queries of the largest inner product: "
#       + ", ".join(f"{k} {nu.fmt(v)}" for k, v in closeness.items()))
#
# # the project: derived distractors cut from the scene-only images, then §2's Hard mAP
# import tempfile
# from types import SimpleNamespace
#
# from selconv_lite.experiments.report import paired_claim
#
# ex_work = Path(tempfile.mkdtemp(prefix="selconv_08_ex_"))      # the §5 cell removed `work`
# scenes = [p for p, s in zip(ds.images, scene) if s]
# view = SimpleNamespace(name="scene-only", images=scenes, gnd=[], train_images=[])   # sources: these only
# spaths = make_derived_distractors(view, ex_work / "distractors", n_dis, seed=seed, max_dim=max_dim)
# senc = StreamEncoder(pipe, fx, ex_work / "vectors", shard_size=16, layer=layer)
# senc.run(spaths)                                               # as long as the streaming of §2
# _, Xs = load_vectors(ex_work / "vectors", identity=senc.identity)
#
#
# def hard(Xdis):
#     r = ev.evaluate_revisited(build_index(np.vstack([DB, Xdis]), "numpy").search(Q), ds.gnd)
#     return r["hard"]["mAP"], r["hard"]["aps"]
#
#
# (h_held, aps_held), (h_scene, aps_scene) = hard(Xd[:n_dis]), hard(Xs)
# print(f"Hard mAP with {n_dis} derived distractors: from held-out images {nu.fmt(h_held)}, "
#       f"from scene-only images {nu.fmt(h_scene)} (none: {nu.fmt(by_n[0]['hard'])})")
# print(paired_claim(aps_scene, aps_held, "scene-only sources", "held-out sources", metric="Hard mAP"))
# shutil.rmtree(ex_work, ignore_errors=True)
# ```
#
# The distractors that hurt most are those that look like what a query's positives look like: the
# scene-only images share their backgrounds with the positives, whereas the held-out crops share
# neither scenes nor objects with them. The first line measures that resemblance from the vectors
# already in memory; it is a proxy, since what lowers the Hard mAP is a distractor ranked above a
# Hard positive. The project measures that: compare the two Hard mAPs and let the paired line say
# whether the difference is detectable on these queries.
#
# </details>

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 3</summary>
#
# ```python
# R = 16e9                                                       # bytes of RAM
# my_n_flat, my_n_pq = R / (4 * D), R / 64
# for what, n in (("flat index, float32 vectors", my_n_flat), ("PQ index, 64-byte codes", my_n_pq)):
#     print(f"{what}: {n:,.0f} images in R = 16 GB ({n / 1_001_001:.1f}x R1M)")
# ```
#
# The break-even is $N = R / b$ for $b$ bytes per image: the flat index of float32 $D$-vectors stops
# fitting at a few million images, a few times R1M, while the PQ codes fit $4D/64$ times as many;
# the ids, the codebooks, the process and the operating system take their share too, so the real
# limits are lower.
#
# </details>
