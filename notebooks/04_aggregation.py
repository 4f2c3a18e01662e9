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
# The embedded local features $X_\phi = \{\phi(\mathbf{x}_i)\}_{i=1}^{n}$ of an image must become
# **one** vector. This notebook compares
#
# * **sum / average pooling** $\psi_s(X_\phi) = \sum_i \phi(\mathbf{x}_i)$, $\psi_a = \psi_s / n$;
# * **democratic aggregation** $\psi_d$ (Jégou & Zisserman, CVPR 2014), which weights the features
#   so that each contributes equally to the similarity;
#
# shows the democratic weights on an image, and reproduces the paper's **Table 3** (masks ×
# embedding/aggregation frameworks, mAP) on the dataset.

# %% tags=["parameters"]
dataset = "default"      # "default": the embedded offline set; "oxford5k", "paris6k", ... need the data on disk
weights = "caffe-onnx"   # VGG16 weights: "caffe-onnx" (offline), "torchvision", or a state-dict path
layer = "pool5"          # conv layer (the paper: pool5)
max_dim = None           # max(W_I, H_I); None: the dataset's default (512 here, 1024 in the paper)
mask = "max"             # mask of the weights demo: "max", "sum", "sift" or "none"
embedding = "temb"       # embedding of the weights demo: "temb", "ffaemb", "vlad", "fv"
d = 32                   # PCA dimension of the weights demo (Table 4, D 512)
n_centroids = 20         # |C| of the weights demo (Table 4, D 512)
table3_masks = ["max", "none"]   # masks of Table 3 (the paper: max, sum, sift, none)
table3_configs = {"fv": [16, 16], "vlad": [32, 16], "temb": [32, 20], "ffaemb": [16, 6]}  # (d, |C|) per embedding, D about 512
example_image = "building_2"   # image whose weights are shown (part of its file name)
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

nu.seed_everything(seed)
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
# With the Gram matrix $G_{ij} = \max(0, \phi(\mathbf{x}_i)^\top \phi(\mathbf{x}_j))$ this is solved by
# a Sinkhorn-like scaling (as in the authors' code: 10 iterations, damped by a square root):
# $\delta = (G \mathbf{1})^{-1/2}$, $G \leftarrow \operatorname{diag}(\delta)\, G \operatorname{diag}(\delta)$,
# $\lambda \leftarrow \lambda \odot \delta$.
#
# Below: a T-emb pipeline learned on the held-out split; for one image the weights of its
# selected features, drawn at their grid cells. Features of repeated structures get small weights.

# %% tags=[]
pipe = SelectiveConvPipeline(mask=mask, embedding=embedding, aggregation="democratic", d=d,
                             n_centroids=n_centroids, seed=seed,
                             max_train_features=max_train_features).fit(feats["train"])
i_ex = nu.pick_images(ds.images, [example_image])[0]
ex = feats["db"][i_ex]
info = pipe.explain(ex)
w = info["weights"]
Phi = info["embedded"]
y_sum, y_demo = Phi.sum(axis=0), w @ Phi
contrib_sum = Phi @ y_sum               # each feature's share of <psi, psi>
contrib_demo = w * (Phi @ y_demo)
cv = lambda c: float(np.std(c) / np.mean(c))
print(f"{len(w)} selected local features; weights from {nu.fmt(w.min(), 3)} to {nu.fmt(w.max(), 3)}")
print(f"spread of the contributions (std / mean): sum pooling {nu.fmt(cv(contrib_sum), 3)}, democratic {nu.fmt(cv(contrib_demo), 3)}")
rec.headline("contribution spread, sum pooling (std/mean)", cv(contrib_sum))
rec.headline("contribution spread, democratic (std/mean)", cv(contrib_demo))
fig = weights_on_image(network_view(ds.images[i_ex], max_dim), ex.fmap.shape[:2], mask_locations(info["mask"]),
                       {"sum pooling (all weights 1)": np.ones_like(w), "democratic weights": w})
rec.figure(fig, "democratic_weights")
nu.show_figure(fig)

# %% [markdown] tags=[]
# ## 2. Table 3 — masks × frameworks
#
# The paper compares six embedding + aggregation frameworks with each mask at $D = 4224$
# (Table 2). The embedded dataset's held-out split is too small to learn 4224-dimensional
# whitenings, so each embedding is learned here at the $(d, |C|)$ of `table3_configs`
# ($D \approx 512$), with the masks of `table3_masks` (add `"sum"` and `"sift"` for the full
# table; notebook 06 runs it on real benchmarks). Paper findings to compare with: democratic
# beats sum / average pooling for FV and VLAD; masks help; T-emb + democratic is best.

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
demo_gain = {f"{e} {m}": mAP[f"{e} + demo"][m] - mAP[f"{e} + {a}"][m]
             for e, a in (("FV", "avg"), ("VLAD", "sum")) for m in table3_masks}
for k, v in demo_gain.items():
    print(f"democratic minus sum/avg, {k}: {v:+.3f}")
rec.add("democratic_gain", demo_gain)

# %% tags=[]
_ = rec.save()

# %% [markdown] tags=[]
# ## Exercises
#
# 1. **Democratic weights.** Implement `my_democratic_weights(Phi)`: clip the Gram matrix at 0,
#    then 10 iterations of the scaling above, starting from $\lambda = \mathbf{1}$. Check it with
#    `check_democratic_weights`.
# 2. **Bursts.** Duplicate one local feature of the example image 20 times and compare the sum-
#    and democratic-pooled vectors before/after (cosine similarity). Which one moves?
# 3. **Full Table 3.** Run `python -m selconv_lite.teaching.sweep 04 -p table3_masks "['max','sum','sift','none']"`
#    — or simply change the parameter — and check the paper's claim that MAX ≥ SUM ≈ SIFT > none.

# %% tags=[]
from selconv_lite.teaching.checkers import check_democratic_weights


def my_democratic_weights(Phi):
    # your code here: Phi is (n, D); return the n weights
    raise NotImplementedError("exercise 1")


_ = check_democratic_weights(my_democratic_weights)
