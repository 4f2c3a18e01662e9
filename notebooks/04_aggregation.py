# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 04 — Aggregating: sum / average vs democratic pooling (paper §4.3, Table 3)
#
# **What this notebook covers (§4.3, Table 3).** The embedded local features
# $X_\phi = \{\phi(\mathbf{x}_i)\}_{i=1}^{n}$ of an image must become **one** vector. This
# notebook
#
# 1. writes out **sum / average / max pooling** $\psi_s(X_\phi) = \sum_i \phi(\mathbf{x}_i)$,
#    $\psi_a = \psi_s / n$, and **democratic aggregation** $\psi_d$ (Jégou & Zisserman, CVPR 2014)
#    as the authors' Sinkhorn loop, and checks them against the package;
# 2. shows the democratic weights on an image;
# 3. reproduces the paper's **Table 3** (masks × embedding/aggregation frameworks, mAP) on the
#    embedded set (test objects pasted into cluttered real scenes, see
#    [docs/dataset_paper_regime.md](../docs/dataset_paper_regime.md)) and compares it with the
#    published numbers, each comparison with a paired confidence interval over the queries.
#
# **Prerequisites:** [03 — Embeddings](03_embeddings.ipynb) (PCA + L2, T-emb, FV, VLAD,
# F-FAemb); mean average precision (mAP) as a retrieval score (notebook 06 writes it out).
#
# **Run time** on 2 CPU cores: run after notebooks 02–03 (which fill the shared feature cache),
# this notebook only extracts the cropped queries at 1024 px; its heaviest cell is Table 3, which
# fits one pipeline per framework and mask. The series' measured times are in
# [docs/notebooks.md](../docs/notebooks.md) ("Measured times"); they were measured on the
# earlier embedded set and have not been re-measured on this one.
#
# **Series:** previous: [03 — Embeddings](03_embeddings.ipynb) · next:
# [05 — Post-processing](05_postprocessing.ipynb) · overview: [docs/notebooks.md](../docs/notebooks.md).

# %% tags=["parameters"]
dataset = "default"      # "default": the embedded offline set; "oxford5k", "paris6k", ... need the data on disk
weights = "caffe-onnx"   # VGG16 weights: "caffe-onnx" (offline), "torchvision", or a state-dict path
layer = "pool5"          # conv layer (the paper: pool5)
max_dim = None           # max(W_I, H_I); None: the dataset's default (1024 px, the paper's size)
mask = "max"             # mask of the weights demo: "max", "sum", "sift" or "none"
embedding = "temb"       # embedding of the weights demo: "temb", "ffaemb", "vlad", "fv"
d = 32                   # PCA dimension of the weights demo (Table 4, D 512)
n_centroids = 20         # |C| of the weights demo (Table 4, D 512)
table3_masks = ["max", "none"]   # masks of Table 3 (the paper: max, sum, sift, none)
table3_configs = {"fv": [16, 16], "vlad": [32, 16], "temb": [32, 20], "ffaemb": [16, 6]}  # (d, |C|) per embedding, D about 512
example_image = "clock_04"       # image whose weights are shown (part of its file name)
max_train_features = 10000   # PCA/codebooks learned on a seeded sample of this many held-out local features (the authors: all)
seed = 0                 # seed of every random choice
cache_dir = None         # feature cache; None: the shared default (env SELCONV_CACHE or <repo>/cache)
output_dir = None        # JSON results and figures; None: env SELCONV_OUTPUT or <repo>/outputs

# %% tags=[]
import numpy as np
from selconv_lite.teaching import notebook_utils as nu
from selconv_lite.data.datasets import load_dataset
from selconv_lite.experiments.tables import FRAMEWORKS, table3
from selconv_lite.viz.figures import network_view, weights_on_image
from selconv_lite.method.masks import mask_locations
from selconv_lite.method.pipeline import SelectiveConvPipeline

print(nu.seed_everything(seed))   # runtime settings: seeds and threads
nu.tidy_warnings()
ds = load_dataset(dataset)
max_dim = max_dim or ds.default_max_dim
rec = nu.NotebookRecord("04_aggregation", output_dir, params=dict(
    dataset=dataset, weights=weights, layer=layer, max_dim=max_dim, mask=mask, embedding=embedding,
    d=d, n_centroids=n_centroids, table3_masks=table3_masks, table3_configs=table3_configs, max_train_features=max_train_features, seed=seed))
print(ds.summary())

# %% tags=["nbval-ignore-output"]
feats = nu.dataset_features(ds, layer=layer, max_dim=max_dim, cache_dir=cache_dir, weights=weights)

# %% [markdown] tags=[]
# ## 1. Democratic aggregation
#
# Sum pooling lets a burst of similar features dominate: the similarity of two images becomes
# the similarity of their most repeated patterns. Democratic aggregation looks for weights
# $\lambda_i \ge 0$ such that every feature contributes the same to the similarity with the
# aggregated vector $\psi_d = \sum_j \lambda_j \phi(\mathbf{x}_j)$:
#
# $$
# \lambda_i\, \phi(\mathbf{x}_i)^\top \sum_{j} \lambda_j \phi(\mathbf{x}_j) = C \quad \forall i .
# $$
#
# **Derivation: a matrix-balancing problem.** Collect the dot products in the Gram matrix
# $G_{ij} = \phi(\mathbf{x}_i)^\top \phi(\mathbf{x}_j)$. The left-hand side above is
# $\lambda_i \sum_j G_{ij} \lambda_j = \lambda_i (G \lambda)_i$, so the $n$ conditions read, all at once,
#
# $$
# \operatorname{diag}(\lambda)\, G\, \lambda = C\, \mathbf{1}
# \quad\Longleftrightarrow\quad
# \big(\operatorname{diag}(\lambda)\, G \operatorname{diag}(\lambda)\big)\, \mathbf{1} = C\, \mathbf{1} :
# $$
#
# the weights are the diagonal scaling that gives the matrix
# $\operatorname{diag}(\lambda)\, G \operatorname{diag}(\lambda)$ constant row sums (and, as it is
# symmetric, constant column sums). This is a **symmetric Sinkhorn (matrix-balancing) problem**,
# the one Sinkhorn–Knopp solves when it scales a non-negative matrix to a doubly stochastic one.
# The authors' code solves it by iteration, from $\lambda = \mathbf{1}$ (powers element-wise):
#
# $$
# \delta = (G \mathbf{1})^{-1/2}, \qquad
# G \leftarrow \operatorname{diag}(\delta)\, G \operatorname{diag}(\delta), \qquad
# \lambda \leftarrow \lambda \odot \delta .
# $$
#
# After every step $G$ holds $\operatorname{diag}(\lambda)\, G_0 \operatorname{diag}(\lambda)$ for the
# original Gram matrix $G_0$, so its row sums are the current contributions $\lambda_i (G_0 \lambda)_i$.
#
# * **The solution is a fixed point.** If all row sums are equal, $G \mathbf{1} = C \mathbf{1}$, then
#   $\delta = C^{-1/2} \mathbf{1}$ is constant: the step multiplies every $\lambda_i$ by the same
#   number, which changes neither the direction of $\psi_d$ nor the equality of the contributions,
#   and it leaves every row sum equal to one, after which $\delta = \mathbf{1}$ and nothing moves.
#   Conversely, $\lambda$ stops changing direction only when $\delta$ is constant, i.e. at a solution.
# * **Why the square root.** The scaling is symmetric: $\delta_i$ multiplies row $i$ *and* column
#   $i$, so the new row sum $\delta_i \sum_j G_{ij} \delta_j$ feels the correction twice, through
#   its own factor and through its neighbours' (similar features get similar factors). Dividing by
#   the full row sum would overcorrect: a uniform error would flip the row sums between $C$ and
#   $1/C$ forever, and a burst's weights would swing from too large to too small. The exponent
#   $-\tfrac12$ puts half of the correction on each side. Near the solution, in $\log \lambda$, one
#   step multiplies the remaining error by $\tfrac12 (I - P)$, where $P$ is the row-normalised
#   scaled Gram matrix; for an unclipped (positive semi-definite) $G$ the eigenvalues of $P$ lie in
#   $[0, 1]$, so every step at least halves the error and removes a uniform rescaling at once (the
#   undamped step would multiply it by $-P$, which does neither).
# * **What the code adds.** As in the authors' `sinkhornm.m`, the Gram matrix is first clipped,
#   $G_{ij} = \max(0, \phi(\mathbf{x}_i)^\top \phi(\mathbf{x}_j))$, so that it is non-negative as
#   matrix balancing requires (a negative entry could make a row sum zero or negative), and the
#   loop stops after a fixed 10 iterations rather than at a tolerance. What becomes equal is
#   therefore the contribution computed with the *clipped* $G$; the spread printed further below
#   shows what that means on a real image.
#
# **A toy example in the plane.** Before the real features: a handful of unit vectors in 2-D, most
# of them a burst (near-duplicates pointing in one direction), the others isolated. All of them lie
# within a quarter turn, so no dot product is negative and the clipping changes nothing (the cell
# asserts it). The cell pools them with the sum and with the loop above written out by hand,
# checks the weights against the package's `democratic_weights`, and prints how unequal the
# contributions $\lambda_i\, \phi(\mathbf{x}_i)^\top \psi$ are under each pooling (largest /
# smallest). Left panel: the vectors and the directions of $\psi_s$ and $\psi_d$. Right panel:
# each vector's contribution, divided by the mean contribution, before and after.

# %% tags=[]
from matplotlib.figure import Figure
from selconv_lite.method.aggregation import democratic_weights

rng = np.random.default_rng(0)          # a fixed toy: it does not follow `seed`
n_burst = 8
angles = np.deg2rad(np.concatenate([5 + rng.normal(0, 2, n_burst),                  # the burst
                                    np.array([45.0, 70.0, 90.0]) + rng.normal(0, 1.5, 3)]))  # isolated
Phi_toy = np.column_stack([np.cos(angles), np.sin(angles)])     # unit vectors phi(x_i) as rows
assert (Phi_toy @ Phi_toy.T).min() >= 0                         # max(0, .) clips nothing here

G_toy = np.maximum(Phi_toy @ Phi_toy.T, 0)                      # the loop, by hand
lam_toy = np.ones(len(Phi_toy))
for _ in range(10):
    delta = 1.0 / np.sqrt(G_toy.sum(axis=1))                    # (G 1)^(-1/2)
    G_toy = G_toy * delta[:, None] * delta[None, :]             # diag(delta) G diag(delta)
    lam_toy = lam_toy * delta
np.testing.assert_allclose(lam_toy, democratic_weights(Phi_toy), rtol=1e-12)

psi_s_toy, psi_d_toy = Phi_toy.sum(axis=0), lam_toy @ Phi_toy
c_before = Phi_toy @ psi_s_toy                                  # lambda = 1
c_after = lam_toy * (Phi_toy @ psi_d_toy)
print("weights by hand == democratic_weights")
print(f"contributions, largest / smallest: sum pooling {c_before.max() / c_before.min():.3f}, "
      f"democratic {c_after.max() / c_after.min():.4f}")
print(f"the burst's share of <psi, psi>: sum pooling {c_before[:n_burst].sum() / c_before.sum():.2f}, "
      f"democratic {c_after[:n_burst].sum() / c_after.sum():.2f} "
      f"({n_burst} of the {len(Phi_toy)} vectors)")
print("direction of psi (degrees): sum pooling "
      f"{np.degrees(np.arctan2(psi_s_toy[1], psi_s_toy[0])):.1f}, "
      f"democratic {np.degrees(np.arctan2(psi_d_toy[1], psi_d_toy[0])):.1f}")

fig = Figure(figsize=(10, 3.8), layout="constrained")
ax_v, ax_c = fig.subplots(1, 2, width_ratios=[1, 1.7])
colors = ["tab:orange"] * n_burst + ["tab:blue"] * (len(Phi_toy) - n_burst)
zeros = np.zeros(len(Phi_toy))
ax_v.quiver(zeros, zeros, Phi_toy[:, 0], Phi_toy[:, 1], color=colors, angles="xy",
            scale_units="xy", scale=1, width=0.008)
for psi, color, name in ((psi_s_toy, "tab:red", "sum pooling"), (psi_d_toy, "tab:green", "democratic")):
    u = 1.3 * psi / np.linalg.norm(psi)                         # directions only, drawn longer
    ax_v.quiver(0, 0, u[0], u[1], color=color, angles="xy", scale_units="xy", scale=1,
                width=0.014, label=f"{name} (direction)")
ax_v.set_xlim(-0.1, 1.4)
ax_v.set_ylim(-0.1, 1.4)
ax_v.set_aspect("equal")
ax_v.legend(fontsize=9, loc="upper right")
ax_v.set_title("unit vectors: burst (orange), isolated (blue)", fontsize=10)
x = np.arange(len(Phi_toy))
ax_c.bar(x - 0.2, c_before / c_before.mean(), width=0.4, color="tab:red", label="sum pooling")
ax_c.bar(x + 0.2, c_after / c_after.mean(), width=0.4, color="tab:green", label="democratic")
ax_c.axhline(1, color="0.3", lw=0.8, ls="--")
ax_c.set_xticks(x, [f"B{k + 1}" for k in range(n_burst)] + [f"I{k + 1}" for k in range(len(Phi_toy) - n_burst)],
                fontsize=9)
ax_c.set_ylabel("contribution / mean", fontsize=9)
ax_c.set_title("contribution of each vector to <psi, psi> (B: burst, I: isolated)", fontsize=10)
ax_c.set_ylim(0, 1.35)
ax_c.legend(fontsize=9, loc="upper center", ncol=2)
nu.show_figure(fig)

# %% [markdown] tags=[]
# **Reading the toy.** With sum pooling every vector has weight one, so each burst vector's
# contribution is large (it is similar to all of its near-duplicates) and the most isolated
# vectors' are small (red bars). The democratic weights shrink the burst vectors until every
# contribution is the same (the green bars sit on the dashed line): each vector then owns the same
# share of $\langle \psi_d, \psi_d \rangle$, so the burst's share falls to its head count, and
# $\psi_d$ turns away from the burst towards the isolated vectors. The turn is small here because
# in a quarter of the plane every vector still has a positive dot product with the burst; the
# printed lines give the size of each effect.
#
# Below: a T-emb pipeline learned on the held-out split gives the embedded features `Phi`
# (one row per selected local feature) of one image. On them: the poolings, written out and
# compared with `selconv_lite.method.aggregation`.

# %% tags=[]
from selconv_lite.method.aggregation import (average_pooling, democratic_weights, max_pooling,
                                             sum_pooling)

pipe = SelectiveConvPipeline(mask=mask, embedding=embedding, aggregation="democratic", d=d,
                             n_centroids=n_centroids, random_state=seed,
                             max_train_features=max_train_features).fit(feats["train"])
i_ex = nu.pick_images(ds.images, [example_image])[0]
ex = feats["db"][i_ex]
info = pipe.explain(ex)
Phi = info["embedded"].astype(np.float64)              # (n, D): phi(x_i) as rows
psi_s, psi_a, psi_max = Phi.sum(axis=0), Phi.sum(axis=0) / len(Phi), Phi.max(axis=0)
np.testing.assert_allclose(psi_s, sum_pooling(Phi), rtol=1e-12, atol=1e-12)
np.testing.assert_allclose(psi_a, average_pooling(Phi), rtol=1e-12, atol=1e-12)
assert np.array_equal(psi_max, max_pooling(Phi))
print(f"{Phi.shape[0]} embedded local features of dimension {Phi.shape[1]}: "
      "sum, average and max pooling == the package's")

# %% [markdown] tags=[]
# **The same features from the saved functions.** `Phi` above came from the pipeline. The
# functions saved in notebooks 02 and 03 rebuild it from the pipeline's learned parameters
# (PCA mean and directions, k-means centroids, T-emb mean and whitening $P_\text{emb}$): the
# mask, the selection of the kept local features, PCA + L2, the normalised residuals to every
# centroid, mean removal and whitening — and then the L2 norm of each row, which the authors'
# code applies to every embedded feature before the democratic step. The pipeline computes
# online in float32, so the check allows float32 rounding.

# %% tags=[]
from selconv_lite.teaching.saved import my_apply_mask, my_mask, my_pca_l2, my_residuals   # 02, 03

if embedding == "temb":
    emb = pipe.embedding_
    X_mine = my_pca_l2(my_apply_mask(ex.fmap, my_mask(mask, ex)), pipe.pca_.mean_, pipe.pca_.components_)
    E_mine = (my_residuals(X_mine, emb.centroids_) - emb.mean_) @ emb.projection_.T
    E_mine /= np.linalg.norm(E_mine, axis=1, keepdims=True)
    np.testing.assert_allclose(E_mine, Phi, rtol=0, atol=1e-5)
    print(f"mask, selection, PCA + L2 and T-emb from the saved functions == the pipeline's Phi "
          f"({E_mine.shape[0]} x {E_mine.shape[1]}, largest difference {np.abs(E_mine - Phi).max():.1e})")
else:
    print(f"embedding = {embedding!r}: the rebuild above is written for T-emb only")

# %% [markdown] tags=[]
# **The Sinkhorn loop.** Exactly the authors' `sinkhornm.m`: clip the Gram matrix at 0, start
# from $\lambda = \mathbf{1}$, and 10 times divide every row and column of $G$ by the square root
# (exponent 0.5) of its column sum, accumulating the factors in $\lambda$. The table printed
# below follows the spread of the contributions $\lambda_i\, \phi(\mathbf{x}_i)^\top \psi_d$
# (standard deviation / mean; 0 would be perfectly democratic) over the iterations.

# %% tags=["save"]
def my_democratic_weights(Phi, n_iter=10, reg=0.5, trace=None):
    G = np.maximum(Phi @ Phi.T, 0)                      # Gram matrix clipped at 0
    lam = np.ones(len(Phi))
    for it in range(n_iter):
        delta = 1.0 / G.sum(axis=0) ** reg              # column sums ^ -0.5
        G = G * delta[None, :] * delta[:, None]         # scale columns and rows
        lam = lam * delta
        if trace is not None:
            trace.append(lam * (Phi @ (lam @ Phi)))     # contributions after this iteration
    return lam


# %% tags=[]
def spread(c):
    return float(np.std(c) / np.mean(c))


trace = []
w = my_democratic_weights(Phi, trace=trace)
np.testing.assert_allclose(w, democratic_weights(Phi), rtol=1e-9)
np.testing.assert_allclose(w, info["weights"], rtol=1e-4)     # the pipeline's (online precision)
print("my_democratic_weights == democratic_weights == the pipeline's weights")
print("iteration:           " + " ".join(f"{i:>5d}" for i in range(len(trace) + 1)))
print("contribution spread: " + " ".join(f"{spread(c):5.3f}" for c in [Phi @ Phi.sum(axis=0)] + trace))

# %% [markdown] tags=[]
# **Reading the spread.** The printed spread falls most in the first iterations, then settles
# above 0. The loop equalises $\lambda_i \sum_j \lambda_j G_{ij}$, the contributions computed
# with the *clipped* Gram matrix; the printed spread uses the raw dot products of
# $\lambda_i\, \phi(\mathbf{x}_i)^\top \psi_d$, and the two differ wherever two embedded features
# have a negative dot product (T-emb subtracts a mean and whitens, so such pairs are expected).
# On random non-negative vectors, where nothing is clipped, the same loop drives the spread to
# about 0.
#
# On the image: the weights of its selected features, drawn at their grid cells (disc area
# proportional to the weight's share). By construction a feature similar to many others (a
# burst, e.g. a repeated texture) gets a small weight. Note where the selected cells lie: in this
# scene (the default `example_image`) many of the cells the MAX mask keeps are on the rocks
# around the clock, not on the clock. Democratic pooling weighs a cell by how similar it is to
# the rest of the image, not by whether it belongs to the object; §2 shows what the background
# does without a mask.

# %% tags=[]
y_sum, y_demo = Phi.sum(axis=0), w @ Phi
contrib_sum = Phi @ y_sum               # each feature's share of <psi, psi>
contrib_demo = w * (Phi @ y_demo)
print(f"{len(w)} selected local features; weights from {nu.fmt(w.min(), 3)} to {nu.fmt(w.max(), 3)}")
print(f"spread of the contributions (std / mean): sum pooling {nu.fmt(spread(contrib_sum), 3)}, democratic {nu.fmt(spread(contrib_demo), 3)}")
rec.headline("contribution spread, sum pooling (std/mean)", spread(contrib_sum))
rec.headline("contribution spread, democratic (std/mean)", spread(contrib_demo))
fig = weights_on_image(network_view(ds.images[i_ex], max_dim), ex.fmap.shape[:2], mask_locations(info["mask"]),
                       {"sum pooling (all weights 1)": np.ones_like(w), "democratic weights": w})
rec.figure(fig, "democratic_weights")
nu.show_figure(fig)

# %% [markdown] tags=[]
# ## 2. Table 3 — masks × frameworks
#
# The paper compares six embedding + aggregation frameworks with each mask at $D = 4224$
# (Table 2). The embedded set's held-out split (60 images of other objects in other scenes) is too
# small to learn 4224-dimensional whitenings well (notebook 03 prints how few MAX-masked
# held-out features there are per dimension of T-emb's covariance at that size), so each
# embedding is learned here at the $(d, |C|)$ of `table3_configs` ($D \approx 512$), with the
# masks of `table3_masks` (add `"sum"` and `"sift"` for the full table; notebook 06 §2 runs all
# four masks at $D = 1024$, on this set or on the real benchmarks). Three findings of the
# paper's Table 3 (Oxford5k, $D = 4224$) are checked below: democratic beats sum / average
# pooling for FV and VLAD; the MAX mask beats no mask in five of the six rows, all but
# VLAD + demo (Table 3, Oxford5k); T-emb + democratic is the best framework. Each comparison prints the
# paper's difference, then the **paired** difference here: the two entries' APs are compared
# query by query, and the mean of the per-query differences is given with its $95\%$ bootstrap
# confidence interval over the queries and a paired permutation test
# (`selconv_lite.data.paired`, fixed seed). It reads "agrees" when the interval excludes 0 on
# the paper's side, "disagrees" when it excludes 0 on the other side, and "no detectable
# difference" when it covers 0: then this set cannot tell the two apart, whatever the two mAPs
# printed. Counts over several pairs (e.g. "the MAX mask is above no mask in k of 6 frameworks")
# count the intervals, not the differences of mAPs.

# %% tags=[]
mAP = table3(ds, feats, table3_masks, {k: tuple(v) for k, v in table3_configs.items()}, seed=seed,
              max_train_features=max_train_features)
header = "framework".ljust(16) + "".join(m.rjust(8) for m in table3_masks)
print(header)
for label, _, _ in FRAMEWORKS:
    print(label.ljust(16) + "".join(f"{mAP[label][m]:8.3f}" for m in table3_masks))
rec.add("table3_mAP", mAP)
best = max(((mAP[l][m], l, m) for l, _, _ in FRAMEWORKS for m in table3_masks))
rec.headline("Table 3: best framework", f"{best[1]} with {best[2]} mask")
rec.headline("Table 3: best mAP", best[0])
for m in table3_masks:
    rec.headline(f"Table 3: T-emb + demo, {m} mask (mAP)", mAP["T-emb + demo"][m])

# %% tags=[]
from selconv_lite.experiments.published import TABLE3
from selconv_lite.experiments.report import PairedLog, count_claims

paper = {label: TABLE3["oxford5k"][label.replace(" ", "")] for label, _, _ in FRAMEWORKS}   # mAP %


paired = PairedLog()   # results.paired of the record: each comparison's interval (the landing page prints them)


def check(key, paper_diff, a, b, name_a, name_b, headline=False):
    """Paired comparison of two Table 3 entries (framework, mask), recorded under ``key``."""
    return paired.claim(key, mAP.aps[a[0]][a[1]], mAP.aps[b[0]][b[1]], name_a, name_b, paper_diff=paper_diff,
                        a=f"Table 3: {a[0]}, {a[1]} mask (mAP)" if headline else None,
                        b=f"Table 3: {b[0]}, {b[1]} mask (mAP)" if headline else None)


demo_gain = {f"{e} {m}": mAP[f"{e} + demo"][m] - mAP[f"{e} + {a}"][m]
             for e, a in (("FV", "avg"), ("VLAD", "sum")) for m in table3_masks}
print("democratic vs sum/avg pooling (paper: mAP points; here: paired over the queries):")
for e, a in (("FV", "avg"), ("VLAD", "sum")):
    for m in table3_masks:
        p = paper[f"{e} + demo"][m] - paper[f"{e} + {a}"][m]
        c = check(f"{e} demo vs {a}, {m}", p, (f"{e} + demo", m), (f"{e} + {a}", m), f"{e} + demo", f"{e} + {a}")
        print(f"  {m:4s} paper {p:+5.1f}; {c}")
rec.add("democratic_gain", demo_gain)
mask_gain = {}
masked = [m for m in table3_masks if m != "none"] if "none" in table3_masks else []
for m in masked:
    print(f"{m.upper()} mask vs no mask (paper: mAP points; here: paired over the queries):")
    claims = []
    for label, _, _ in FRAMEWORKS:
        p = paper[label][m] - paper[label]["none"]
        mask_gain[f"{label} {m}"] = mAP[label][m] - mAP[label]["none"]
        claims.append(check(f"{label}, {m} vs no mask", p, (label, m), (label, "none"), f"{label} {m.upper()}",
                            f"{label} no mask", headline=label == "T-emb + demo"))
        print(f"  paper {p:+5.1f}; {claims[-1]}")
    k = count_claims(claims)
    print(f"  the {m.upper()} mask is detectably above no mask in {k['better']} of {k['n']} frameworks here, below in "
          f"{k['worse']}, no detectable difference in {k['no_difference']} "
          f"(paper: above in {sum(paper[l][m] > paper[l]['none'] for l, _, _ in FRAMEWORKS)} of {len(FRAMEWORKS)})")
    rec.headline(f"Table 3: {m.upper()} beats no mask (frameworks, paired CI)", f"{k['better']}/{k['n']}")
rec.add("mask_gain", mask_gain)
paper_best = max(paper, key=lambda l: max(paper[l].values()))
print(f"best framework: paper {paper_best}, here {best[1]} with the {best[2]} mask (mAP {best[0]:.3f}); "
      "T-emb + demo against the strongest other framework of each mask:")
for m in table3_masks:
    others = [l for l, _, _ in FRAMEWORKS if l != "T-emb + demo"]
    claims = [check(f"T-emb + demo vs {l}, {m}", paper["T-emb + demo"][m] - paper[l][m], ("T-emb + demo", m), (l, m),
                    "T-emb + demo", l) for l in others]
    k = count_claims(claims)
    print(f"  {m:4s} {claims[int(np.argmin([c.difference for c in claims]))]}")
    print(f"       T-emb + demo is detectably above {k['better']} of the {k['n']} others, below {k['worse']}, "
          f"no detectable difference from {k['no_difference']}")
rec.add("paired", paired)

# %% tags=[]
_ = rec.save()

# %% [markdown] tags=[]
# **What the paired lines above show.** Of the paper's three findings, one does not hold on this
# set, one holds more strongly than in the paper, and one holds with the MAX mask only.
#
# * **Democratic against sum / average pooling: not reproduced.** For FV, democratic and
#   average pooling show no detectable difference with either mask; for VLAD, sum pooling is
#   detectably *better* than democratic pooling with both masks (the two lines that read
#   "disagrees"), whereas the paper has democratic pooling ahead in all four comparisons (Table 3,
#   Oxford5k). We have not established why. The setting differs from the paper's in ways that
#   could matter ($D \approx 512$ with the small codebooks of `table3_configs` instead of
#   Table 2's $D = 4224$; codebooks and whitening learned on a held-out split of 60 images instead
#   of Paris6k's thousands), but we have not measured the effect of either.
# * **The MAX mask against no mask: reproduced, and much stronger.** The MAX mask is detectably
#   better than no mask in every framework (the count line above), including VLAD + demo, the
#   one row where the paper shows a small loss: that line reads "disagrees" although it favours
#   the mask. Every interval lies entirely above the paper difference printed beside it (the
#   paper's differences are in mAP points, hundredths of the mAPs printed here), and the no-mask
#   column of the table is far below the MAX column in every row.
#   [docs/datasets.md](../docs/datasets.md) ("Difficulty") gives the reason, which follows from
#   how the set is built: the test objects are pasted, many of them small, into cluttered scenes, and every
#   scene appears with several objects, with distractors and alone
#   ([docs/dataset_paper_regime.md](../docs/dataset_paper_regime.md)), so without a mask most
#   pool5 cells of a database image describe a background that images of other objects share.
#   The figure of §1 shows that the MAX mask does not remove that background entirely.
# * **T-emb + democratic is the best framework: reproduced with the MAX mask.** With the MAX mask
#   it is the best entry of the table and detectably above each of the five other frameworks; the
#   closest, F-FAemb + demo, is the paper's runner-up too (paper §5.2.1: "slightly better than"
#   F-FAemb). Without a mask it is detectably above three of the others and shows no detectable
#   difference from two, among them the strongest, VLAD + sum (printed); on Oxford5k the paper's
#   best framework without a mask is F-FAemb + demo (Table 3).
#
# The absolute mAPs are far below the paper's Oxford5k column (Table 3); notebook 06 (Table 6)
# puts this framework next to SPoC, GeM and R-MAC on the same set with paired intervals, and
# [docs/datasets.md](../docs/datasets.md) ("Difficulty") lists where this set and the paper
# disagree.
#
# **How far to trust these lines.** The intervals resample the queries: five per test object
# (the counts are printed at the top), so one query carries only a small share of an mAP, and an
# interval that covers 0 says that this set cannot tell the two entries apart, not that they are
# equal. The bootstrap treats the queries as independent, although the five queries of one
# object share their positives; if their APs move together, the intervals are narrower than they
# should be, and a line whose bound lies close to 0 is the least secure. The embeddings are
# learned at $D \approx 512$ on the held-out split: with the MAX mask it has fewer masked local
# features than `max_train_features` (notebook 03 prints their count), so all of them are used;
# only the no-mask pipelines learn from a seeded sample. The images themselves are in the paper's
# regime: every image is 1024 × 768 with real pixels (none upsampled), so at the default size
# every pool5 map is a 32 × 24 grid. The MAX mask keeps a smaller fraction of those cells than the
# paper reports (notebook 02 prints both). At 512 px, the faster alternative, the maps are
# 16 × 12 cells and the MAX mask keeps a much larger fraction of them (notebook 02); notebook 06
# §4b shows what each mask keeps, and the resulting mAPs, at 512, 724 and 1024 px side by side.

# %% [markdown] tags=[]
# ## Exercises
#
# 1. **Bursts.** Duplicate one local feature of the example image 20 times (`np.vstack` with 20
#    copies of `Phi[0]`) and compare the sum- and democratic-pooled vectors before/after (cosine
#    similarity). Which one moves? The self-check below does it for sum pooling; add the
#    democratic case.
# 2. **Full Table 3.** Run the notebook with all four masks, from `notebooks/`:
#    `papermill 04_aggregation.ipynb /tmp/04_all_masks.ipynb -y "table3_masks: [max, sum, sift, none]"`
#    (or change the parameter cell), and check the paper's ordering MAX ≥ SUM ≈ SIFT > none. This
#    one is a project: it re-runs Table 3, so it has no automatic check here.
#
# Graded version: `course/source/a2_embedding_aggregation/` (nbgrader).

# %% tags=[]
def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


burst = np.vstack([Phi] + [Phi[:1]] * 20)               # feature 0 repeated 20 more times
c_sum = cosine(Phi.sum(axis=0), burst.sum(axis=0))
print(f"sum pooling, cosine before/after the burst: {c_sum:.3f}")
psi_d = psi_d_burst = None   # your code here: the democratic vectors before and after the burst

if psi_d is None or psi_d_burst is None:
    print("exercise 1: not answered yet")
else:
    ref = my_democratic_weights(Phi) @ Phi                   # the check's own democratic vector
    assert cosine(psi_d, ref) > 1 - 1e-9, "psi_d is not the democratic vector of Phi"
    assert cosine(psi_d, psi_d_burst) > c_sum, "the burst should move the democratic vector less"
    print("exercise 1: correct")

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 1</summary>
#
# ```python
# psi_d = my_democratic_weights(Phi) @ Phi                    # democratic vector, before the burst
# psi_d_burst = my_democratic_weights(burst) @ burst          # and after it
# print(f"democratic pooling, cosine before/after the burst: {cosine(psi_d, psi_d_burst):.3f}")
# ```
#
# Sum pooling moves more: the burst adds its copies to the sum with full weight, while the Sinkhorn
# loop gives each of the near-identical copies a smaller weight, so the democratic vector stays closer
# to where it was (its cosine is nearer to one).
#
# </details>

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 2</summary>
#
# ```python
# from selconv_lite.experiments.report import paired_claim
#
# masks4 = ["max", "sum", "sift", "none"]
# full = table3(ds, feats, masks4, {k: tuple(v) for k, v in table3_configs.items()}, seed=seed,
#               max_train_features=max_train_features)
# print("framework".ljust(16) + "".join(m.rjust(8) for m in masks4))
# for label, _, _ in FRAMEWORKS:
#     print(label.ljust(16) + "".join(f"{full[label][m]:8.3f}" for m in masks4))
#     for a, b in (("max", "sum"), ("sum", "sift"), ("sift", "none")):   # the paper: MAX >= SUM ~ SIFT > none
#         print("   ", paired_claim(full.aps[label][a], full.aps[label][b], f"{label} {a.upper()}",
#                                   f"{label} {b.upper()}", paper_diff=paper[label][a] - paper[label][b]))
# ```
#
# The MAX and no-mask columns repeat §2's table; read the three paired lines of each row against the
# paper's order: on this set MAX is detectably above SUM and SIFT detectably above no mask in every
# framework, while "SUM ≈ SIFT" holds only where the SUM − SIFT interval covers 0, and in some
# frameworks SUM is detectably ahead.
#
# </details>
