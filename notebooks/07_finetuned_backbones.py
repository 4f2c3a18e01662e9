# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 07 — Fine-tuned backbones (paper §5.3, Table 6 "Fine-tuned network")
#
# The framework takes *any* 3-D activation tensor of a conv. layer as input, so a VGG16 that was
# fine-tuned for retrieval can replace the ImageNet one: the paper feeds it the conv. features of
# the siamese-MAC network of Radenović et al. (**siaMAC**) and of NetVLAD, and gains up to
# +9 mAP on Oxford5k (Table 6, bottom half).
#
# This notebook
#
# 1. **fine-tunes offline** (the default, no download): the conv5 block (conv5_1 … conv5_3) of the
#    ImageNet VGG16 is trained with a siamese **contrastive loss** on pairs drawn from the dataset's
#    *training split only*;
# 2. shows the framework **before and after** on the test split (queries, database), next to GeM
#    and MAC on the same maps;
# 3. shows **what the fine-tuning did to the masks** (§3.2): how many locations MAX / SUM keep and
#    how much they move;
# 4. documents the **online loaders** of real fine-tuned trunks for users with internet.
#
# **Contrastive loss** (Radenović et al., ECCV 2016). For two images $i, j$ with L2-normalised
# descriptors $\bar{\mathbf f}(i)$, $\bar{\mathbf f}(j)$, label $Y(i,j) = 1$ if they match, $0$
# otherwise, and margin $\tau$:
#
# $$
# \mathcal L(i,j) = \tfrac12\, Y(i,j)\, \lVert \bar{\mathbf f}(i) - \bar{\mathbf f}(j) \rVert^2
#  + \tfrac12\, \big(1 - Y(i,j)\big)\, \max\{0,\ \tau - \lVert \bar{\mathbf f}(i) - \bar{\mathbf f}(j) \rVert\}^2 .
# $$
#
# Matching pairs are pulled together, non-matching ones pushed at least $\tau$ apart. The training
# descriptor is **GeM** pooling of the conv5 output, $\mathbf f_k = \big(\frac{1}{|\mathcal X|}
# \sum_{x \in \mathcal X_k} x^{p}\big)^{1/p}$ with $p = 3$, then L2. Each training tuple is an anchor, a
# positive (another image of the same scene, or an overlapping crop of the anchor's image when the
# training image has no partner) and the hardest negatives (the most similar other-scene images
# under the current network, re-mined every epoch).
#
# **Why it is cheap.** conv5_1's input is pool4, which the feature cache already stores (the
# backbone's `"conv4_3"` layer is ReLU(conv4_3) followed by the 2×2 max-pool, i.e. pool4). So the
# 13-layer network runs once per image, and every training step only runs conv5 on cached pool4
# windows; afterwards the test images' pool5 maps are recomputed from their cached pool4 maps,
# which equals running the whole fine-tuned network (tested in `tests/test_finetune.py`).

# %% tags=["parameters"]
dataset = "default"      # "default": the embedded offline set; "oxford5k", "paris6k", ... need the data on disk
weights = "caffe-onnx"   # the trunk before fine-tuning: "caffe-onnx" (offline ImageNet VGG16), "torchvision", or a state-dict path
finetuned = "offline"    # "offline": fine-tune conv5 here; or "cirtorch-vgg16-gem" / "siamac-vgg16" (download once, needs internet); or a trunk state-dict path
layer = "pool5"          # the framework's layer (the paper: pool5)
max_dim = None           # max(W_I, H_I); None: the dataset's default (512 here, 1024 for the paper's benchmarks)
mask = "max"             # mask of the framework: "max", "sum", "sift", "none"
dims = [512, 1024]       # dimensions D of the framework (Table 4 presets)
alpha = 0.5              # power-law exponent
ft_epochs = 2            # fine-tuning: epochs (each re-mines the hard negatives)
ft_anchors = 8           # tuples per step
ft_negatives = 2         # hard negatives per tuple
ft_margin = 0.7          # contrastive margin tau (Radenovic et al. use 0.7 for VGG)
ft_lr = 2e-5             # Adam learning rate
ft_max_cells = 12        # training windows of at most this many pool4 cells per side
ft_layers = ["conv5_1", "conv5_2", "conv5_3"]   # which conv5 layers are trained
seed = 0                 # seed of every random choice (the fine-tuning is deterministic)
cache_dir = None         # feature cache (also holds the fine-tuned trunk); None: env SELCONV_CACHE or <repo>/cache
output_dir = None        # JSON results and figures; None: env SELCONV_OUTPUT or <repo>/outputs

# %% tags=[]
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from selconv_lite.experiments import finetune as ft
from selconv_lite.experiments import finetune_weights as ftw
from selconv_lite.experiments import full_eval as fe
from selconv_lite.teaching import notebook_utils as nu
from selconv_lite.data.datasets import load_dataset
from selconv_lite.method.masks import SiftMaskFallbackWarning, compute_mask
from selconv_lite.method.pipeline import SelectiveConvPipeline

warnings.filterwarnings("ignore", category=SiftMaskFallbackWarning)  # no keypoint: all features (Sec. 5.1)
nu.seed_everything(seed)
ds = load_dataset(dataset)
max_dim = max_dim or ds.default_max_dim
rec = nu.NotebookRecord("07_finetuned_backbones", output_dir, params=dict(
    dataset=dataset, weights=str(weights), finetuned=str(finetuned), layer=layer, max_dim=max_dim, mask=mask,
    dims=dims, alpha=alpha, ft_epochs=ft_epochs, ft_anchors=ft_anchors, ft_negatives=ft_negatives,
    ft_margin=ft_margin, ft_lr=ft_lr, ft_max_cells=ft_max_cells, ft_layers=ft_layers, seed=seed))
print(ds.summary())

# %% tags=["nbval-ignore-output"]
F = fe.split_features(ds, layers=(layer, "conv4_3"), max_dim=max_dim, cache_dir=cache_dir, weights=weights)
before = F[layer]

# %% [markdown] tags=[]
# ## 1. Fine-tuning conv5 on the training split
#
# Only the held-out training split is used — the test queries and database are never seen (the
# paper's rule, §5.1). On the embedded set, the training images cut from one photo form a group
# (the manifest records which part of which photo each one shows: two views of one photo whose
# regions overlap by at least half of the smaller one match, views of one photo that overlap less
# are left out of the pairs); a training image without a partner is matched with an overlapping
# crop of itself.
# The loss below is measured on a fixed set of tuples (mined with the initial network) before and
# after training. The trained trunk is saved in the cache folder, so a second run loads it.

# %% tags=["nbval-ignore-output"]
cfg = ft.FinetuneConfig(epochs=ft_epochs, anchors_per_step=ft_anchors, n_negatives=ft_negatives, margin=ft_margin,
                        lr=ft_lr, max_cells=ft_max_cells, train_layers=tuple(ft_layers), seed=seed)
groups = fe.training_groups(ds)
if finetuned == "offline":
    if layer != "pool5":
        raise ValueError("the offline fine-tuning recomputes pool5 from pool4: use layer='pool5'")
    wdir = (Path(cache_dir) if cache_dir else Path(nu.resolve_cache_dir())) / "weights"
    res = ft.finetune_conv5_cached(F["conv4_3"]["train"], out_dir=wdir, base_weights=weights, groups=groups,
                                   config=cfg, progress=False)
    trunk_path = res.path
else:
    res = None
    trunk_path = Path(finetuned) if Path(str(finetuned)).is_file() else ftw.fetch_finetuned_trunk(finetuned)
print(f"fine-tuned trunk: {nu.display_path(trunk_path)}")

# %% tags=[]
if res is not None:
    with_partner = int((groups == 1).any(axis=1).sum()) if groups is not None else 0
    n_pairs = int((groups == 1).sum() // 2) if groups is not None else 0
    print(f"training split: {len(ds.train_images)} images, {n_pairs} matching pairs, {with_partner} images with a partner; "
          f"{res.n_steps} steps")
    print(f"contrastive loss on the fixed evaluation tuples: before {res.eval_loss_before:.4f}, after {res.eval_loss_after:.4f}")
    rec.headline("fine-tuning: eval loss before", res.eval_loss_before)
    rec.headline("fine-tuning: eval loss after", res.eval_loss_after)
    rec.add("finetune", res.summary())
    fig, ax = plt.subplots(figsize=(5, 2.6))
    ax.plot(np.arange(1, res.n_steps + 1), res.step_losses, ".-", lw=0.8)
    ax.axhline(res.eval_loss_before, color="grey", ls="--", lw=0.8, label="eval tuples, before")
    ax.axhline(res.eval_loss_after, color="C2", ls="--", lw=0.8, label="eval tuples, after")
    ax.set_xlabel("step"); ax.set_ylabel("contrastive loss"); ax.legend(fontsize=8)
    ax.set_title("fine-tuning conv5 (training split only)", fontsize=9)
    fig.tight_layout()
    rec.figure(fig, "finetune_loss")
    nu.show_figure(fig)
    plt.close(fig)

# %% tags=["nbval-ignore-output"]
if res is not None:
    print(f"training time: {res.seconds:.1f} s")   # varies with the machine (0 s when loaded from the cache)

# %% [markdown] tags=[]
# ## 2. The framework before and after
#
# The pool5 maps of the test images are recomputed with the fine-tuned conv5 (from their cached
# pool4 maps) — or, for a downloaded trunk, extracted with it through the feature cache — and the
# whole framework is learned again on the held-out split (PCA, codebook, whitening, rotation all
# depend on the features). GeM and MAC on the same maps show how the global descriptors moved.

# %% tags=["nbval-ignore-output"]
if res is not None:
    after = {s: ft.apply_conv5(res.trunk, F["conv4_3"][s]) for s in ("train", "queries", "db")}
else:
    after = fe.split_features(ds, layers=(layer,), max_dim=max_dim, cache_dir=cache_dir, weights=trunk_path)[layer]

# %% tags=[]
methods = [(f"M_{mask.upper()}+T-emb+demo {D}-D", lambda D=D: SelectiveConvPipeline.from_preset(D=D, mask=mask, seed=seed, alpha=alpha)) for D in dims]
methods += [(name, lambda name=name: fe._baseline(name, len(ds.train_images) > 512)) for name in ("GeM", "MAC")]
rows = []
for label, make in methods:
    rb = fe.fit_evaluate_model(make(), ds, before, qe_k=0)
    ra = fe.fit_evaluate_model(make(), ds, after, qe_k=0)
    rows.append((label, rb, ra))
has_rev = "easy" in rows[0][1]
head = f"{'method':26s}{'before':>8s}{'after':>8s}{'diff':>8s}" + ("   E/M/H before      E/M/H after" if has_rev else "")
print(head)
for label, rb, ra in rows:
    line = f"{label:26s}{rb['mAP']:8.3f}{ra['mAP']:8.3f}{ra['mAP'] - rb['mAP']:+8.3f}"
    if has_rev:
        line += "   " + "/".join(f"{rb[p]:.3f}" for p in ("easy", "medium", "hard")) + "   " + "/".join(f"{ra[p]:.3f}" for p in ("easy", "medium", "hard"))
    print(line)
    rec.headline(f"{label}: mAP before", rb["mAP"])
    rec.headline(f"{label}: mAP after", ra["mAP"])
rec.add("before_after", {label: {"before": {k: rb[k] for k in ("mAP", "easy", "medium", "hard") if k in rb},
                                 "after": {k: ra[k] for k in ("mAP", "easy", "medium", "hard") if k in ra}}
                         for label, rb, ra in rows})

# %% [markdown] tags=[]
# On the embedded set the training split is tiny (a few dozen images), so expect a few points
# either way rather than the paper's gains, which come from 120k-image 3D-reconstruction training
# sets (SfM-120k) and days of GPU time. The loss curve above shows the training itself works; what
# the fine-tuned features are worth depends on how well the training pairs resemble the test
# variations. With a real fine-tuned trunk (`finetuned="siamac-vgg16"`, the one the paper used, or
# `"cirtorch-vgg16-gem"`) on Oxford5k, compare with the paper's Table 6:

# %% tags=[]
from selconv_lite.experiments.published import table6_rows

for r in table6_rows(finetuned=True):
    vals = ", ".join(f"{k} {v}" for k, v in r["values"].items() if v is not None)
    print(f"{r['method']:28s} {r['dim']:5d}-D  {vals}")

# %% [markdown] tags=[]
# ## 3. What the fine-tuning did to the masks
#
# The masks of §3.2 are computed from the activations: MAX keeps, for every channel, the location
# of its maximum; SUM keeps the locations whose channel sum is at least the median. A trunk trained
# to match scenes changes which channels fire where. For the test images: the fraction of
# locations each mask keeps, before and after, and their overlap (intersection over union).

# %% tags=[]
test_before = before["queries"] + before["db"]
test_after = after["queries"] + after["db"]
mask_stats = {m: ft.mask_change(test_before, test_after, m) for m in ("max", "sum")}
for m, st in mask_stats.items():
    print(f"{m.upper():4s} mask: keeps {100 * st['kept_before']:.1f}% of the locations before, "
          f"{100 * st['kept_after']:.1f}% after; IoU before/after {st['iou']:.3f}")
    rec.headline(f"{m.upper()} mask: kept before (%)", 100 * st["kept_before"])
    rec.headline(f"{m.upper()} mask: kept after (%)", 100 * st["kept_after"])
    rec.headline(f"{m.upper()} mask: IoU before/after", st["iou"])
rec.add("mask_change", mask_stats)

# %% tags=[]
from selconv_lite.features.extraction import load_image, resize_max_dim, crop_image

qi = 0
img = load_image(ds.queries[qi])
if ds.query_boxes[qi] is not None:
    img = crop_image(img, ds.query_boxes[qi])
img = np.asarray(resize_max_dim(img, max_dim))
fig, axes = plt.subplots(1, 4, figsize=(10, 2.6))
for ax, (title, f, m) in zip(axes, [("MAX before", before["queries"][qi], "max"), ("MAX after", after["queries"][qi], "max"),
                                    ("SUM before", before["queries"][qi], "sum"), ("SUM after", after["queries"][qi], "sum")]):
    msk = compute_mask(m, f)
    h, w = msk.shape
    ax.imshow(img)
    ax.imshow(np.kron(msk, np.ones((img.shape[0] // h + 1, img.shape[1] // w + 1)))[:img.shape[0], :img.shape[1]],
              alpha=0.45, cmap="Greens", vmin=0, vmax=1)
    ax.set_title(f"{title}: {int(msk.sum())}/{msk.size}", fontsize=9)
    ax.axis("off")
fig.suptitle(f"selected locations on query {qi} ({ds.qimlist[qi]})", fontsize=10)
fig.tight_layout()
rec.figure(fig, "masks_before_after")
nu.show_figure(fig)
plt.close(fig)

# %% [markdown] tags=[]
# ## 4. Real fine-tuned trunks (online)
#
# With internet access, two published fine-tuned VGG16 trunks load through the same path — the
# result is a trunk state dict that any `weights=` parameter accepts (feature cache, notebooks,
# `load_vgg16_trunk`):
#
# ```python
# from selconv_lite.experiments.finetune_weights import fetch_finetuned_trunk
# path = fetch_finetuned_trunk("siamac-vgg16")        # the siaMAC trunk of the paper's Table 6 (MatConvNet .mat, converted)
# path = fetch_finetuned_trunk("cirtorch-vgg16-gem")  # cirtorch's GeM VGG16 trained on SfM-120k (PyTorch checkpoint, converted)
# # then e.g.  papermill 06_full_evaluation.ipynb out.ipynb -p dataset oxford5k -p weights <path> -p table3_D 4224
# ```
#
# The conversion keeps only the 13 conv layers and records each network's own input
# normalisation in the state dict (cirtorch: RGB in [0, 1] with mean/std; siaMAC: MatConvNet's
# filter layout `(kh, kw, in, out)` transposed, RGB minus the scalar mean pixel as in the authors'
# `mac.m`). Without internet, the download fails at once and says where to put a file downloaded
# elsewhere; `convert_cirtorch_checkpoint(path)` and `convert_matconvnet_vgg16(path)` convert files
# obtained by hand. The registry:

# %% tags=[]
for name, info in ftw.FINETUNED_TRUNKS.items():
    print(f"{name}:\n  {info['url']}\n  {info['reference']}")

# %% tags=[]
_ = rec.save()

# %% [markdown] tags=[]
# ## Exercises
#
# 1. **GeM.** Implement `my_gem(fmap, p)` for an `(H, W, K)` map (clamp at `1e-6` first) and check it
#    with `check_gem`. What do `p = 1` and a large `p` give?
# 2. **Contrastive loss.** Implement `my_contrastive_loss(a, b, y, margin)` (the mean over the pairs
#    of the equation at the top) and check it with `check_contrastive_loss`.
# 3. **Which layers to train?** Re-run with `ft_layers=["conv5_3"]` (and then `ft_epochs=8`): how do the
#    loss, the mAP and the mask overlap change? Why is training only conv5_3 about twice as fast?

# %% tags=[]
from selconv_lite.teaching.checkers_eval import check_contrastive_loss, check_gem


def my_gem(fmap, p):
    # your code here: fmap (H, W, K) -> (K,)
    raise NotImplementedError("exercise 1")


def my_contrastive_loss(a, b, y, margin):
    # your code here: a, b (n, D); y (n,) in {0, 1}
    raise NotImplementedError("exercise 2")


_ = check_gem(my_gem)
_ = check_contrastive_loss(my_contrastive_loss)
