# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 02 — Selective features: SIFT, SUM and MAX masks (paper §3.2–3.3)
#
# A pool5 tensor gives hundreds of local features per image, and many of them are nearly the
# same (flat sky, wall, background): the **burstiness** problem known from SIFT. The paper's main
# contribution is to keep only a *representative subset* of locations, chosen by a **mask**
# $\mathcal{M}$ on the $W \times H$ grid. This notebook
#
# 1. defines the three masks (Eqs. 1–3) and draws them over real images (the paper's **Fig. 1**);
# 2. lets you explore image × mask × layer interactively (an ipywidgets explorer; a static figure
#    when no front end is attached, e.g. under papermill);
# 3. measures over the whole dataset how many features each mask keeps (**Fig. 2a**) and how
#    much less correlated the kept features are (**Fig. 2b–e**).

# %% tags=["parameters"]
dataset = "default"      # "default": the embedded offline set; "oxford5k", "paris6k", ... need the data on disk
weights = "caffe-onnx"   # VGG16 weights: "caffe-onnx" (offline), "torchvision", or a state-dict path
layer = "pool5"          # layer of the Fig. 2 statistics (the paper: pool5)
max_dim = None           # max(W_I, H_I); None: the dataset's default (512 here, 1024 in the paper)
mask = "max"             # the mask the explorer starts with: "max", "sum", "sift" or "none"
figure_images = ["building_2", "bridge_2", "picos_2"]   # Fig. 1 rows (parts of file names)
explorer_images = ["building_2", "china_2", "rubberwhale_1", "graffiti_1"]  # images offered by the explorer
explorer_layers = ["pool5", "conv5_1", "conv4_3"]        # layers offered by the explorer
band = 0.15              # Fig. 2e: half-width of the band of "uncorrelated" dot products
seed = 0                 # seed of every random choice
cache_dir = None         # feature cache; None: the shared default (env SELCONV_CACHE or <repo>/cache)
output_dir = None        # JSON results and figures; None: env SELCONV_OUTPUT or <repo>/outputs
interactive = "auto"     # the explorer: True (widgets), False (static figure), "auto" (widgets if a front end is attached)

# %% tags=[]
import numpy as np
from selconv_lite.teaching import notebook_utils as nu
from selconv_lite.experiments.analysis import kept_percentage, mask_statistics, pairwise_dot_products, fraction_in_band
from selconv_lite.features.cache import FeatureCache
from selconv_lite.data.datasets import load_dataset
from selconv_lite.viz.figures import bar_chart, dot_product_histograms, figure1, network_view
from selconv_lite.method.masks import apply_mask, compute_mask

nu.seed_everything(seed)
nu.tidy_warnings()
ds = load_dataset(dataset)
max_dim = max_dim or ds.default_max_dim
cache = FeatureCache(cache_dir, weights=weights, layers=(layer,), max_dim=max_dim)
rec = nu.NotebookRecord("02_masks", output_dir, params=dict(
    dataset=dataset, weights=weights, layer=layer, max_dim=max_dim, mask=mask, band=band, seed=seed))
print(ds.summary())

# %% [markdown] tags=[]
# ## 1. Three masks
#
# A mask is a set of grid coordinates $\{(x, y)\}$, $1 \le x \le W$, $1 \le y \le H$, where local
# features are **kept**.
#
# **SIFT mask (Eq. 1).** SIFT's detector finds salient regions. With keypoints
# $\mathcal{S} = \{(x^{(i)}, y^{(i)})\}_{i=1}^n$ in an image of size $W_I \times H_I$, keep the grid
# cells under them:
#
# $$
# \mathcal{M}_{\text{SIFT}} = \left\{\left(x^{(i)}_{\text{SIFT}}, y^{(i)}_{\text{SIFT}}\right)\right\},\quad
# x^{(i)}_{\text{SIFT}} = \operatorname{round}\!\left(\frac{x^{(i)} W}{W_I}\right),\;
# y^{(i)}_{\text{SIFT}} = \operatorname{round}\!\left(\frac{y^{(i)} H}{H_I}\right).
# $$
#
# (The authors' code marks the $3 \times 3$ neighbourhood of each such cell; `selconv_lite` does the
# same by default, `radius=0` gives Eq. 1 literally.)
#
# **MAX mask (Eq. 2).** Each feature map responds to one visual pattern; keep, for every channel,
# the location of its strongest response:
#
# $$
# \mathcal{M}_{\text{MAX}} = \left\{\left(x^{(k)}_{\text{MAX}}, y^{(k)}_{\text{MAX}}\right)\right\}_{k=1}^{K},\qquad
# \left(x^{(k)}_{\text{MAX}}, y^{(k)}_{\text{MAX}}\right) = \arg\max_{(x,y)} \mathcal{F}^{(k)}_{(x,y)} .
# $$
#
# At most $K = 512$ locations survive, fewer when channels peak at the same place.
#
# **SUM mask (Eq. 3).** A local feature that fires in many channels is informative; keep the
# locations whose channel sum reaches the median:
#
# $$
# \mathcal{M}_{\text{SUM}} = \left\{(x, y) \mid \Sigma^{\mathcal{F}}_{(x,y)} \ge \alpha\right\},\qquad
# \Sigma^{\mathcal{F}}_{(x,y)} = \sum_{k=1}^{K} \mathcal{F}^{(k)}_{(x,y)},\quad \alpha = \operatorname{median}(\Sigma^{\mathcal{F}}) .
# $$
#
# `selconv_lite.method.masks.compute_mask(name, features)` returns any of them as a boolean `(H, W)` array.

# %% [markdown] tags=[]
# ## 2. Fig. 1 — the masks over real images
#
# Columns as in the paper: (a) the image, (b) its SIFT keypoints, (c) SIFT, (d) SUM and (e) MAX
# masks. Darkened cells are removed.

# %% tags=[]
idx = nu.pick_images(ds.images, figure_images)
rows, masks = [], {m: [] for m in ("sift", "sum", "max")}
for i in idx:
    f = cache.load(ds.images[i], layer=layer)
    rows.append((network_view(ds.images[i], max_dim), f))
    for m in masks:
        masks[m].append(compute_mask(m, f))
fig = figure1(rows, masks)
rec.figure(fig, "fig1")
nu.show_figure(fig)

# %% [markdown] tags=[]
# ## 3. Explore: image × mask × layer
#
# Choose an image, a mask and a layer; the figure redraws. Things to look for: the MAX mask keeps
# scattered, "interesting" cells; the SUM mask keeps a blob on the object; on conv4_3 (a finer grid)
# the MAX mask keeps a smaller *fraction* of the cells, because at most $K$ locations survive.
#
# Without a widget front end (papermill, nbval) this cell shows every mask on every layer for the
# first image instead.

# %% tags=["explorer"]
from selconv_lite.teaching.explorer import MaskExplorer

explorer = MaskExplorer([ds.images[i] for i in nu.pick_images(ds.images, explorer_images)],
                        layers=explorer_layers, max_dim=max_dim, cache_dir=cache_dir, weights=weights)
explorer.prepare()
explorer.show(interactive)

# %% [markdown] tags=[]
# ## 4. Fig. 2a — how many local features does each mask keep?
#
# Averaged over the database images. The paper (at $\max(W_I, H_I) = 1024$, a $32 \times 24$ pool5
# grid) reports that about 25%, 50% and 70% of the features are **removed** by the SIFT, SUM and
# MAX masks. The SUM mask keeps half by construction. At our smaller images the grid has fewer
# cells than there are channels, so the MAX mask keeps a larger fraction: at most $K$ locations
# out of $W \cdot H$.

# %% tags=["nbval-ignore-output"]
db = nu.dataset_features(ds, layer=layer, max_dim=max_dim, cache_dir=cache_dir, weights=weights,
                         splits=("db",))["db"]
print(f"{len(db)} database images, {layer} grids from {min(f.fmap.shape[0] * f.fmap.shape[1] for f in db)} "
      f"to {max(f.fmap.shape[0] * f.fmap.shape[1] for f in db)} cells")

# %% tags=[]
stats = mask_statistics(db, masks=("sift", "sum", "max", "none"), band=band)
print(f"{'mask':6s} {'kept %':>7s} {'dot products in band %':>23s}")
for m, s in stats.items():
    print(f"{m:6s} {s['kept_pct']:7.1f} {s['band_pct']:23.1f}")
    rec.headline(f"{m} mask: features kept (%)", s["kept_pct"])
rec.add("fig2", stats)
fig = bar_chart({m: stats[m]["kept_pct"] for m in ("sift", "sum", "max")}, "features kept (%)",
                f"Fig. 2a: kept local features, {layer}, max_dim {max_dim}")
rec.figure(fig, "fig2a")
nu.show_figure(fig)

# %% [markdown] tags=[]
# ## 5. Fig. 2b–d — are the kept features less correlated?
#
# L2-normalise the local features of one image and compute the dot products of all pairs (the
# paper calls them covariances). Pool5 features are non-negative, so the values lie in $[0, 1]$; a
# value near 1 means two nearly identical features — burstiness. With a mask, the histogram moves
# towards 0 and loses its tail.

# %% tags=[]
i0 = idx[0]
f0 = cache.load(ds.images[i0], layer=layer)
dots = {m: pairwise_dot_products(apply_mask(f0.fmap, compute_mask(m, f0))) for m in ("none", "sift", "sum", "max")}
for m, v in dots.items():
    print(f"{m:5s}: {len(v):6d} pairs, mean {nu.fmt(v.mean(), 3)}, in [-{band}, {band}]: {nu.fmt(100 * fraction_in_band(v, band), 1)}%")
fig = dot_product_histograms(dots, band=band)
rec.figure(fig, "fig2bcd")
nu.show_figure(fig)

# %% [markdown] tags=[]
# ## 6. Fig. 2e — the fraction of nearly orthogonal pairs, over the dataset
#
# The average percentage of pairwise dot products in $[-0.15, 0.15]$. Higher means the selected
# features are more decorrelated, i.e. less redundant.

# %% tags=[]
fig = bar_chart({m: stats[m]["band_pct"] for m in ("none", "sift", "sum", "max")},
                f"pairs in [-{band}, {band}] (%)", "Fig. 2e: nearly orthogonal pairs")
for m in ("none", "sift", "sum", "max"):
    rec.headline(f"{m} mask: pairs in band (%)", stats[m]["band_pct"])
rec.figure(fig, "fig2e")
nu.show_figure(fig)

# %% tags=[]
_ = rec.save()

# %% [markdown] tags=[]
# ## Exercises
#
# 1. **MAX mask.** Implement `my_max_mask(fmap)` for an `(H, W, K)` array: a boolean `(H, W)` mask
#    with `True` at the arg-max location of every channel. Check it with `check_max_mask`.
# 2. **SUM mask.** Implement `my_sum_mask(fmap)` (Eq. 3: sum over channels, keep `>=` median).
#    Check it with `check_sum_mask`. What goes wrong with `>` instead of `>=`?
# 3. **Think.** Re-run the notebook with `max_dim=1024` (papermill `-p max_dim 1024`, or
#    `python -m selconv_lite.teaching.sweep 02 -p max_dim 512 1024`). How does the fraction kept by the MAX
#    mask change, and why? Compare with the paper's ~30%.

# %% tags=[]
from selconv_lite.teaching.checkers import check_max_mask, check_sum_mask


def my_max_mask(fmap):
    # your code here: fmap is (H, W, K); return a boolean (H, W) mask
    raise NotImplementedError("exercise 1")


def my_sum_mask(fmap):
    # your code here
    raise NotImplementedError("exercise 2")


_ = check_max_mask(my_max_mask)
_ = check_sum_mask(my_sum_mask)
