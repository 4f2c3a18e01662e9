# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 03 — Pre-processing and embedding of the selected features (paper §4.1–4.2)
#
# After masking, every image is a *set* of selected local features. The framework turns the set
# into one vector in three steps: **embed** each local feature in a higher-dimensional space,
# **aggregate** the embedded vectors (notebook 04), **post-process** (notebook 05). This notebook
# covers the first step:
#
# 1. PCA to $d$ dimensions and L2 normalisation (§4.1);
# 2. the four embeddings the paper compares — Fisher vector, VLAD, triangulation embedding
#    (T-emb) and F-FAemb (Eqs. 4–7);
# 3. Table 2: the $(d, |C|)$ giving the same final dimension $D = 4224$ for each.
#
# Everything is learned on the dataset's **held-out** training split (§5.1), never on the test
# images.

# %% tags=["parameters"]
dataset = "default"      # "default": the embedded offline set; "oxford5k", "paris6k", ... need the data on disk
weights = "caffe-onnx"   # VGG16 weights: "caffe-onnx" (offline), "torchvision", or a state-dict path
layer = "pool5"          # conv layer (the paper: pool5)
max_dim = None           # max(W_I, H_I); None: the dataset's default (512 here, 1024 in the paper)
mask = "max"             # the mask applied before embedding: "max", "sum", "sift" or "none"
d = 32                   # PCA dimension of the local features for the demos below
small_table2 = {"fv": [16, 32], "vlad": [32, 32], "temb": [32, 36], "ffaemb": [16, 10]}  # (d, |C|) learned here, D about 1024
example_image = "building_2"   # image whose embedded features are shown (part of its file name)
seed = 0                 # seed of every random choice (k-means, GMM, samples)
cache_dir = None         # feature cache; None: the shared default (env SELCONV_CACHE or <repo>/cache)
output_dir = None        # JSON results and figures; None: env SELCONV_OUTPUT or <repo>/outputs

# %% tags=[]
import numpy as np
from matplotlib.figure import Figure
from selconv_lite.teaching import notebook_utils as nu
from selconv_lite.data.datasets import load_dataset
from selconv_lite.method.embeddings import PCAL2, make_embedding
from selconv_lite.method.masks import apply_mask, compute_mask
from selconv_lite.method.pipeline import TABLE2, default_truncate, embedding_dim

nu.seed_everything(seed)
nu.tidy_warnings()
ds = load_dataset(dataset)
max_dim = max_dim or ds.default_max_dim
rec = nu.NotebookRecord("03_embeddings", output_dir, params=dict(
    dataset=dataset, weights=weights, layer=layer, max_dim=max_dim, mask=mask, d=d,
    small_table2=small_table2, seed=seed))
print(ds.summary())

# %% tags=["nbval-ignore-output"]
feats = nu.dataset_features(ds, layer=layer, max_dim=max_dim, cache_dir=cache_dir, weights=weights,
                            splits=("train", "db"))

# %% [markdown] tags=[]
# ## 1. PCA + L2 (§4.1)
#
# Given the selected features $\mathcal{X} = \{\mathbf{x}(x, y) \mid (x, y) \in \mathcal{M}_*\}$,
# compress them with PCA and L2-normalise:
#
# $$
# \mathbf{x}^{(d)} = \frac{M_{\text{PCA}}\,(\mathbf{x} - \boldsymbol{\mu})}{\left\lVert M_{\text{PCA}}\,(\mathbf{x} - \boldsymbol{\mu})\right\rVert_2},
# $$
#
# for compact final vectors and to remove noise. `PCAL2(d)` learns $\boldsymbol{\mu}$ and
# $M_{\text{PCA}}$ on the masked local features of the held-out images.

# %% tags=[]
X_train = np.concatenate([apply_mask(f.fmap, compute_mask(mask, f)) for f in feats["train"]])
pca = PCAL2(d=d).fit(X_train)
ev = pca.covariance_.diagonal().sum()
explained = float(pca.explained_variance_.sum() / ev)
print(f"{len(feats['train'])} held-out images -> {X_train.shape[0]} {mask}-masked local features of dim {X_train.shape[1]}")
print(f"PCA to d={d} keeps {100 * explained:.1f}% of the variance")
rec.headline(f"held-out {mask}-masked local features", X_train.shape[0])
rec.headline(f"variance kept by PCA d={d} (%)", 100 * explained)

# %% [markdown] tags=[]
# ## 2. Four embeddings (§4.2)
#
# With a codebook learned on the held-out features — a GMM $\{\mu_i, \Sigma_i, w_i\}_{i=1}^{k}$ for
# FV, k-means centroids $\{c_i\}_{i=1}^{k}$ for the others — each local feature $\mathbf{x}$ is
# mapped to $\phi(\mathbf{x})$. The paper decomposes FV and VLAD into an embedding per feature, so
# any aggregation can follow.
#
# **Fisher vector (Eq. 4)**, $2 k d$ dimensions, with posteriors $p_i(\mathbf{x})$ and
# $\sigma_i = \sqrt{\operatorname{diag}\Sigma_i}$:
#
# $$
# u_i = \frac{p_i(\mathbf{x})}{\sqrt{w_i}}\left(\frac{\mathbf{x} - \mu_i}{\sigma_i}\right),\qquad
# v_i = \frac{p_i(\mathbf{x})}{\sqrt{2 w_i}}\left[\left(\frac{\mathbf{x} - \mu_i}{\sigma_i}\right)^2 - 1\right].
# $$
#
# **VLAD (Eq. 5)**, $k d$ dimensions: the residual to the nearest centroid only,
# $\phi_{\text{VLAD}}(\mathbf{x}) = [\dots, q_i(\mathbf{x} - c_i)^\top, \dots]^\top$, $q_i = 1$ for the nearest $c_i$.
#
# **T-emb (Eq. 6)**, $k d$ dimensions: the *directions* to all centroids,
#
# $$
# \phi_\Delta(\mathbf{x}) = \left[\dots, \left(\frac{\mathbf{x} - c_i}{\lVert \mathbf{x} - c_i \rVert}\right)^\top, \dots\right]^\top ,
# $$
#
# then centred and whitened (learned on the held-out set).
#
# **F-FAemb (Eq. 7)**, $k\,d(d+1)/2$ dimensions: second-order terms weighted by the coefficients
# $\gamma_i(\mathbf{x})$ of a local function approximation, $s_i = \gamma_i(\mathbf{x})\, V\!\left((\mathbf{x} - c_i)(\mathbf{x} - c_i)^\top\right)$.

# %% [markdown] tags=[]
# ### Table 2 — the same final dimension for every embedding
#
# T-emb drops its first 128 components after the rotation, F-FAemb its first $d(d+1)$ (§5.2.1), so:

# %% tags=[]
formula = {"fv": "2 d |C|", "vlad": "d |C|", "temb": "d |C| - 128", "ffaemb": "(|C| - 2) d (d+1) / 2"}
print(f"{'embedding':9s} {'d':>4s} {'|C|':>4s}  {'D':>5s}  formula")
table2 = {}
for e, (dd, k) in TABLE2.items():
    D = embedding_dim(e, dd, k) - default_truncate(e, dd)
    table2[e] = D
    print(f"{e:9s} {dd:>4d} {k:>4d}  {D:>5d}  {formula[e]}")
rec.add("table2_D", table2)
rec.headline("Table 2: D of every embedding", sorted(set(table2.values()))[0] if len(set(table2.values())) == 1 else str(table2))

# %% [markdown] tags=[]
# Learning a $4224$-dimensional T-emb whitening needs many more than $4224$ local features; the
# embedded dataset's held-out split has a few thousand. So below we learn each embedding at a
# smaller size (`small_table2`, $D \approx 1024$); on Oxford/Paris (`dataset="oxford5k"`) use
# `TABLE2` itself.

# %% tags=[]
ex = feats["db"][nu.pick_images(ds.images, [example_image])[0]]
Xp_ex = None
embedded = {}
print(f"{'embedding':9s} {'d':>3s} {'|C|':>4s} {'phi(x) dim':>10s} {'D':>5s} {'non-zeros %':>11s}")
for e, (dd, k) in small_table2.items():
    p = PCAL2(d=dd).fit(X_train)
    est = make_embedding(e, dd, k, random_state=seed).fit(p.transform(X_train))
    Z = est.transform(p.transform(apply_mask(ex.fmap, compute_mask(mask, ex))))
    embedded[e] = Z
    D = embedding_dim(e, dd, k) - default_truncate(e, dd)
    nz = float((np.abs(Z) > 1e-9).mean())
    print(f"{e:9s} {dd:>3d} {k:>4d} {Z.shape[1]:>10d} {D:>5d} {100 * nz:>11.1f}")
    rec.headline(f"{e}: embedded dim (d={dd}, |C|={k})", Z.shape[1])
    rec.add(f"nonzero_fraction_{e}", nz)

# %% [markdown] tags=[]
# Each row of the picture is one local feature of the example image, embedded. VLAD is sparse
# (one block), FV nearly so (posteriors are peaked), T-emb and F-FAemb are dense: every centroid
# contributes a direction.

# %% tags=[]
fig = Figure(figsize=(11, 3.2), layout="constrained")
axes = fig.subplots(1, len(embedded))
for ax, (e, Z) in zip(axes, embedded.items()):
    ax.imshow(np.abs(Z[:40]), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_title(f"{e}: |phi(x)|, {Z.shape[1]} dims", fontsize=9)
    ax.set_xlabel("dimension")
axes[0].set_ylabel("local feature")
rec.figure(fig, "embeddings")
nu.show_figure(fig)

# %% tags=[]
_ = rec.save()

# %% [markdown] tags=[]
# ## Exercises
#
# 1. **T-emb.** Implement Eq. 6 *before* centring/whitening: `my_temb(X, C)` with `X` `(n, d)`
#    and centroids `C` `(k, d)` returns `(n, k*d)`, block $i$ = $(\mathbf{x} - c_i) / \lVert \mathbf{x} - c_i \rVert$.
#    Check it with `check_temb`.
# 2. **Dimensions.** Which $(d, |C|)$ give $D = 512$ for T-emb with $d = 32$? For F-FAemb with
#    $d = 8$? (`SelectiveConvPipeline.for_dimension(512, d=32)` answers the first.)
# 3. **Explore.** Sweep the PCA dimension: `python -m selconv_lite.teaching.sweep 03 -p d 16 32 64` and
#    compare the variance kept.

# %% tags=[]
from selconv_lite.teaching.checkers import check_temb


def my_temb(X, C):
    # your code here: return (n, k*d), block i = (x - c_i) / ||x - c_i||
    raise NotImplementedError("exercise 1")


_ = check_temb(my_temb)
