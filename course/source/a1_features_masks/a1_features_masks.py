# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Assignment 1: feature maps, receptive field and selection masks
#
# Paper: Hoang et al., *Selective Deep Convolutional Features for Image Retrieval* (ACM MM 2017),
# Sec. 3.1-3.2 (notebooks 01 and 02 of the series). Points: 14 (12 autograded, 2 graded by hand).
#
# **How this assignment is graded.** Write your code in place of `raise NotImplementedError()`.
# The cells after each task test your function; the visible tests are part of the grade, and more
# (hidden) tests with other shapes, ties, zero channels and edge values run when your notebook is
# graded, so test your function beyond the visible cases. You may use numpy, scipy, scikit-learn
# and torch. **At grading time your answer cells run on their own**: in a fresh Python, as another
# user, after the *prelude* cell only (it holds everything your answers may use), without
# selconv_lite, the other provided cells, the files of the course or a network; the tests run in
# the grader's own process and only see the values your functions return. A function that hands
# back the library's answer (or needs anything but the prelude) scores nothing; a function that
# runs far longer than the reference solution is stopped and its test fails. After each task a
# provided cell plugs **your** function into the retrieval pipeline and prints the mAP it gives on
# a few queries of the embedded dataset, so a wrong answer visibly changes retrieval.
# Run the whole notebook (Kernel > Restart & Run All) before you submit.

# %% nbgrader={"grade": false, "grade_id": "prelude", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: everything your answers may use. At grading time your answer cells run after
# this cell only, in a fresh Python without selconv_lite (see "How this assignment is graded").
import numpy as np

LAYERS = ("pool5", "conv5_3", "conv5_2", "conv5_1", "conv4_3", "conv4_2", "conv4_1")


def vgg16_ops(layer="pool5"):
    """The operations ``(name, kernel, stride, padding)`` of VGG16 up to ``layer``, with the 2x2/2
    max-pool that follows every layer other than pool5 in this package (Sec. 5.2.4)."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")
    ops = []
    for block, n_convs in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
        for i in range(1, n_convs + 1):
            ops.append((f"conv{block}_{i}", 3, 1, 1))
            if layer == f"conv{block}_{i}":
                return ops + [(f"maxpool_after_{layer}", 2, 2, 0)]
        ops.append((f"pool{block}", 2, 2, 0))
    return ops


# %% nbgrader={"grade": false, "grade_id": "setup_common", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: run this cell first. It is restored as is when your work is graded. The helpers
# of the tests (the grading guard, comparisons, the mAP of the course queries) are in course_tools.py.
import warnings

import numpy as np

from course_tools import call_student, check_close, course_data, reference_unavailable, show_map

warnings.simplefilter("ignore", UserWarning)
DATA, GND, mean_ap = course_data("course_data.npz")


# %% nbgrader={"grade": false, "grade_id": "setup_a1", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: the pool5 maps of the course images and the tools of this assignment.
from selconv_lite.core.types import ImageFeatures
from selconv_lite.features import backbone as ref_backbone
from selconv_lite.features import receptive_field as ref_rf
from selconv_lite.method import masks as ref_masks
from selconv_lite.method.masks import apply_mask
from selconv_lite.method.postprocess import l2_normalize, power_law

assert LAYERS == ref_backbone.LAYERS and all(vgg16_ops(n) == ref_rf.vgg16_ops(n) for n in LAYERS)
OFF_SIZE = ("selconv_lite.features.backbone:feature_map_hw", "selconv_lite.features.backbone:layer_stride")
OFF_RF = ("selconv_lite.features.receptive_field:receptive_field",
          "selconv_lite.features.receptive_field:receptive_box")
OFF_MASKS = tuple(f"selconv_lite.method.masks:{f}" for f in ("max_mask", "sum_mask", "sift_mask", "compute_mask")) + (
    "selconv_lite.core.utils:round_half_away",)


def _unpack(prefix):
    """The ``(H, W, K)`` maps (stored channel by channel, ``(K, H, W)``, which compresses better)."""
    maps, kp = DATA[f"{prefix}_maps"].astype(np.float32), DATA[f"{prefix}_kp"]
    out, o, k = [], 0, 0
    for (H, W, K), hw, nkp in zip(DATA[f"{prefix}_shapes"], DATA[f"{prefix}_image_hw"], DATA[f"{prefix}_kp_counts"]):
        n = int(H * W * K)
        fmap = np.ascontiguousarray(maps[o:o + n].reshape(K, H, W).transpose(1, 2, 0))
        out.append(ImageFeatures(fmap, tuple(int(v) for v in hw), kp[k:k + nkp]))
        o, k = o + n, k + nkp
    return out


QUERY, DB = _unpack("query"), _unpack("db")
print(f"{len(QUERY)} queries, {len(DB)} database images, pool5 maps such as {DB[0].fmap.shape}")


def check_size(got, expected, case):
    assert isinstance(got, (tuple, list)) and len(got) == 2, f"{case}: return a pair (H, W), got {got!r}"
    for v in got:
        assert isinstance(v, (int, np.integer)) and not isinstance(v, bool), (
            f"{case}: you return {got!r}: a map has a whole number of locations, so return integers, "
            f"not {type(v).__name__} (each 2x2/2 max-pool floors: use integer division)")
    assert tuple(int(v) for v in got) == tuple(expected), (
        f"{case}: you return {tuple(got)}, expected (H, W) = {tuple(expected)} (each 2x2/2 max-pool "
        "floors the size: an odd side loses its last row or column)")


def quantised_map(rng, shape, sparsity=0.5, step=0.25):
    """A ReLU-like map with values on a grid of ``step``: many exact zeros and ties."""
    x = np.round(np.maximum(rng.standard_normal(shape), 0) / step) * step
    x[rng.random(shape) < sparsity] = 0
    return x.astype(np.float32)


def check_mask(got, expected, case, fmap=None, kind=""):
    got = np.asarray(got)
    assert got.shape == expected.shape, f"{case}: the mask must have the grid's shape {expected.shape}, got {got.shape}"
    assert got.dtype == bool, f"{case}: return a boolean mask, got dtype {got.dtype}"
    if np.array_equal(got, expected):
        return
    extra, missing = np.argwhere(got & ~expected), np.argwhere(expected & ~got)
    hint = ""
    if kind == "max":
        flat = fmap.reshape(-1, fmap.shape[2])
        holds_max = (flat == flat.max(axis=0)).any(axis=1).reshape(fmap.shape[:2])
        if len(extra) and all(holds_max[tuple(p)] for p in extra):
            hint = (" Every location you keep holds a channel maximum, so your ties are broken differently: "
                    "take the FIRST maximum in column-major order (smallest column w, then smallest row h), "
                    "as MATLAB's max over F(:) in the authors' create_max_mask; np.argmax of a row-major "
                    "map walks along the rows first.")
    elif kind == "sum":
        s = fmap.sum(axis=2, dtype=np.float64)
        if len(extra) == 0 and all(s[tuple(p)] == np.median(s) for p in missing):
            hint = (" The locations you drop have a channel sum exactly equal to the median: Eq. 3 keeps "
                    "them (>=, not >).")
    elif kind == "sift":
        hint = (" Check the mapping: 0-based OpenCV keypoints + 1 (VLFeat frames), x / (W_I / W) and "
                "y / (H_I / H), MATLAB round (half away from zero; np.round rounds half to even), "
                "then rows y-r..y+r and columns x-r..x+r clipped to the grid.")
    raise AssertionError(f"{case}: you keep {int(got.sum())} locations, the expected mask {int(expected.sum())}: "
                         f"{len(extra)} kept that should not be (e.g. (h, w) = {extra[:2].tolist()}), "
                         f"{len(missing)} missing (e.g. {missing[:2].tolist()}).{hint}")


# %% [markdown]
# ## Task 1.1: the size of a feature map (2 points)
#
# VGG16's 13 convolutions are 3x3 with padding 1: they keep the size. Each of its 2x2 max-pools with
# stride 2 halves the size and **floors** it (an odd side loses its last row or column). In this
# package every layer other than `pool5` is read after one more 2x2/2 max-pool (Sec. 5.2.4), so
# `pool5` and the `conv5_*` layers have 5 poolings, the `conv4_*` layers 4.
#
# Write `feature_map_size(image_hw, layer)` returning the grid `(H, W)` as integers, for
# `layer` in `LAYERS`.

# %% nbgrader={"grade": false, "grade_id": "feature_map_size", "locked": false, "schema_version": 3, "solution": true, "task": false}
def feature_map_size(image_hw, layer="pool5"):
    """Grid (H, W) of ``layer`` for an image of ``image_hw = (height, width)`` pixels."""
    ### BEGIN SOLUTION
    n_pools = 5 if layer == "pool5" or layer.startswith("conv5") else 4
    h, w = int(image_hw[0]), int(image_hw[1])
    for _ in range(n_pools):
        h, w = h // 2, w // 2
    return h, w
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_feature_map_size", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
for hw in [(512, 384), (224, 224)]:
    for layer in ("pool5", "conv4_3"):
        case = f"image {hw}, layer {layer}"
        check_size(call_student(feature_map_size, hw, layer, off=OFF_SIZE, case=case),
                   ref_backbone.feature_map_hw(hw, layer), case)
### BEGIN HIDDEN TESTS
for hw in [(300, 451), (33, 70), (31, 1000), (1023, 65), (64, 32)]:
    for layer in LAYERS:
        case = f"image {hw}, layer {layer}"
        check_size(call_student(feature_map_size, hw, layer, off=OFF_SIZE, case=case),
                   ref_backbone.feature_map_hw(hw, layer), case)
### END HIDDEN TESTS
print("feature_map_size: tests passed")


# %% [markdown]
# ## Task 1.2: the receptive field (2 points)
#
# One local feature "sees" a square of the input image. Write `receptive_field_size(ops)` for a
# list of operations `(name, kernel, stride, padding)`, such as `vgg16_ops(layer)` (given): start
# from `size = 1`, `jump = 1` and for each operation do `size += (kernel - 1) * jump`, then
# `jump *= stride`. The paper quotes 212 x 212 pixels for pool5 (Sec. 3.2.1). Return an integer.
# Your function must work for any such list, not only VGG16's.

# %% nbgrader={"grade": false, "grade_id": "receptive_field_size", "locked": false, "schema_version": 3, "solution": true, "task": false}
def receptive_field_size(ops):
    """Side in pixels of the receptive field of one output feature of the operations ``ops``."""
    ### BEGIN SOLUTION
    size, jump = 1, 1
    for _, kernel, stride, _ in ops:
        size += (kernel - 1) * jump
        jump *= stride
    return size
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_receptive_field", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from selconv_lite.features.receptive_field import receptive_field as _ref_rf


def _check_rf(ops, want, case):
    got = call_student(receptive_field_size, [tuple(op) for op in ops], off=OFF_RF, case=case)
    assert isinstance(got, (int, np.integer)), f"{case}: return an integer number of pixels, got {got!r}"
    assert got == want, (f"{case}: you return {got}, expected {want} pixels (the jump multiplies by "
                         "the stride AFTER the size grows by (kernel - 1) * jump)")


_check_rf(vgg16_ops("pool5"), _ref_rf("pool5").size, "VGG16 up to pool5")
### BEGIN HIDDEN TESTS
_alexnet = [("conv1", 11, 4, 2), ("pool1", 3, 2, 0), ("conv2", 5, 1, 2), ("pool2", 3, 2, 0),
            ("conv3", 3, 1, 1), ("conv4", 3, 1, 1), ("conv5", 3, 1, 1), ("pool5", 3, 2, 0)]
_check_rf(_alexnet, 195, "AlexNet up to pool5 (kernels 11, 5, 3; strides 4 and 2)")
_check_rf(_alexnet[:3], 51, "AlexNet up to conv2")
_check_rf([("conv1", 7, 2, 3), ("pool1", 3, 2, 1)], 11, "a 7x7/2 convolution and a 3x3/2 pool")
_check_rf([("c1", 3, 2, 1), ("c2", 3, 2, 1), ("c3", 3, 2, 1), ("c4", 1, 1, 0)], 15,
          "three 3x3/2 convolutions and a 1x1")
_check_rf([("c1", 1, 1, 0), ("c2", 1, 3, 0)], 1, "1x1 convolutions only")
_check_rf([("pool", 2, 2, 0), ("conv", 5, 3, 2), ("conv", 3, 1, 1)], 22, "strides 2 then 3")
_check_rf([], 1, "no operation (one pixel)")
### END HIDDEN TESTS
print("receptive_field_size: tests passed")


# %% [markdown]
# ## Task 2.1: the MAX mask, Eq. 2 (3 points)
#
# For every channel `k` of the `(H, W, K)` map keep the location of its maximum. Ties follow the
# authors' MATLAB code: the **first** maximum in **column-major** order (smallest column `w`,
# then smallest row `h`); an all-zero or constant channel therefore keeps `(0, 0)`. Return a
# boolean `(H, W)` mask.

# %% nbgrader={"grade": false, "grade_id": "max_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_mask(fmap):
    """MAX mask (Eq. 2) of an (H, W, K) feature map -> bool (H, W)."""
    ### BEGIN SOLUTION
    H, W, K = fmap.shape
    flat = np.asarray(fmap).transpose(1, 0, 2).reshape(H * W, K)  # row w * H + h: column-major order
    mask = np.zeros(H * W, dtype=bool)
    mask[flat.argmax(axis=0)] = True  # argmax returns the first maximum in that order
    return mask.reshape(W, H).T
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_max_mask", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
def _check_max(fmap, case):
    check_mask(call_student(max_mask, fmap.copy(), off=OFF_MASKS, case=case), ref_masks.max_mask(fmap), case,
               fmap, "max")


_rng = np.random.default_rng(2)
_m = quantised_map(_rng, (7, 9, 16))
_m[1, 2, 0] = _m[4, 1, 0] = _m[:, :, 0].max() + 1  # row-major first: (1, 2); column-major first: (4, 1)
_check_max(_m, "a 7x9x16 map with ties")
_check_max(DB[0].fmap, "pool5 map of a database image")
### BEGIN HIDDEN TESTS
_tie = np.zeros((3, 4, 2), np.float32)
_tie[0, 1, 0] = _tie[2, 0, 0] = 1.0  # row-major first: (0, 1); column-major first: (2, 0)
_tie[1, 2, 1] = _tie[2, 2, 1] = 2.0
_check_max(_tie, "two tied maxima in different columns")
_z = quantised_map(_rng, (5, 6, 8))
_z[:, :, 3] = 0
_z[:, :, 5] = 0.75
_check_max(_z, "an all-zero and a constant channel")
_check_max(np.zeros((4, 3, 5), np.float32), "an all-zero map")
_check_max(quantised_map(_rng, (1, 1, 4)), "a 1x1 map")
_check_max(quantised_map(_rng, (5, 3, 1), sparsity=0.0), "one channel")
_check_max(quantised_map(_rng, (24, 32, 64), sparsity=0.6), "a 24x32x64 map")
### END HIDDEN TESTS
print("max_mask: tests passed")


# %% [markdown]
# ## Task 2.2: the SUM mask, Eq. 3 (2 points)
#
# Keep the locations whose sum over the channels is **greater than or equal to** the median of all
# the sums (ties at the median are kept, as in the authors' `s >= prctile(s, 50)`). Sum in float64.

# %% nbgrader={"grade": false, "grade_id": "sum_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sum_mask(fmap):
    """SUM mask (Eq. 3) of an (H, W, K) feature map -> bool (H, W)."""
    ### BEGIN SOLUTION
    s = np.asarray(fmap).sum(axis=2, dtype=np.float64)
    return s >= np.median(s)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sum_mask", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
def _check_sum(fmap, case):
    check_mask(call_student(sum_mask, fmap.copy(), off=OFF_MASKS, case=case), ref_masks.sum_mask(fmap), case,
               fmap, "sum")


_rng = np.random.default_rng(3)
_check_sum(quantised_map(_rng, (7, 9, 16), step=1.0), "a 7x9x16 map with tied sums")
_check_sum(DB[1].fmap, "pool5 map of a database image")
### BEGIN HIDDEN TESTS
_even = np.zeros((2, 4, 3), np.float32)
_even[..., 0] = np.array([[1, 2, 2, 3], [2, 2, 5, 0]])  # median 2, tied four times
_check_sum(_even, "an even number of locations with ties at the median")
_check_sum(np.ones((3, 5, 4), np.float32), "every sum equal")
_check_sum(np.zeros((4, 4, 2), np.float32), "an all-zero map")
_check_sum(quantised_map(_rng, (1, 6, 8), step=1.0), "one row")
_check_sum(quantised_map(_rng, (24, 32, 64)), "a 24x32x64 map")
### END HIDDEN TESTS
print("sum_mask: tests passed")


# %% [markdown]
# ## Task 2.3: the SIFT mask, Eq. 1 (3 points)
#
# `keypoints_xy` holds OpenCV keypoints `(x, y)`, 0-based, in the pixels of the `image_hw =
# (H_I, W_I)` image the network saw; the grid is `grid_hw = (H, W)`. As the authors' code:
#
# 1. add 1 to the coordinates (VLFeat frames are 1-based);
# 2. cell column `x' = round(x / (W_I / W))`, row `y' = round(y / (H_I / H))` with MATLAB's `round`
#    (half **away from zero**; `np.round` rounds half to even);
# 3. mark rows `max(1, y'-r) .. min(H, y'+r)` and columns `max(1, x'-r) .. min(W, x'+r)`
#    (1-based, inclusive); `radius = 1` is the authors' 3x3 neighbourhood, `radius = 0` the single
#    cell of Eq. 1 (clip `x'` to `1..W` and `y'` to `1..H` first in that case);
# 4. if no cell is marked, keep every location (Sec. 5.1: the mask is ignored).

# %% nbgrader={"grade": false, "grade_id": "sift_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sift_mask(keypoints_xy, image_hw, grid_hw, radius=1):
    """SIFT mask (Eq. 1, the authors' neighbourhood) -> bool (H, W)."""
    ### BEGIN SOLUTION
    Hf, Wf = int(grid_hw[0]), int(grid_hw[1])
    kp = np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2) + 1.0

    def matlab_round(v):
        return np.sign(v) * np.floor(np.abs(v) + 0.5)

    x = matlab_round(kp[:, 0] / (image_hw[1] / Wf)).astype(int)
    y = matlab_round(kp[:, 1] / (image_hw[0] / Hf)).astype(int)
    if radius == 0:
        x, y = np.clip(x, 1, Wf), np.clip(y, 1, Hf)
    mask = np.zeros((Hf, Wf), dtype=bool)
    for yy, xx in zip(y, x):
        r0, r1 = max(1, yy - radius), min(Hf, yy + radius)
        c0, c1 = max(1, xx - radius), min(Wf, xx + radius)
        if r0 <= r1 and c0 <= c1:
            mask[r0 - 1:r1, c0 - 1:c1] = True
    if not mask.any():
        mask[:] = True
    return mask
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sift_mask", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
def _check_sift(kp, image_hw, grid_hw, radius, case):
    got = call_student(sift_mask, np.array(kp, np.float32).copy(), image_hw, grid_hw, radius, off=OFF_MASKS, case=case)
    check_mask(got, ref_masks.sift_mask(kp, image_hw, grid_hw, radius=radius), case, kind="sift")


for i in (0, 2):
    _check_sift(DB[i].keypoints, DB[i].image_hw, DB[i].fmap.shape[:2], 1, f"keypoints of database image {i}")
### BEGIN HIDDEN TESTS
_half = np.array([[23.0, 7.0], [39.0, 55.0], [-0.4, 0.0], [111.0, 143.0]])  # (x+1)/16 exactly .5
_check_sift(_half, (112, 144), (7, 9), 1, "keypoints exactly half-way between cells")
_check_sift(_half, (112, 144), (7, 9), 0, "radius 0 (Eq. 1), half-way keypoints")
_check_sift(DB[3].keypoints, DB[3].image_hw, DB[3].fmap.shape[:2], 0, "radius 0 on a database image")
_check_sift(np.zeros((0, 2)), (224, 160), (7, 5), 1, "no keypoint (the mask is ignored)")
_check_sift(np.array([[5000.0, 5000.0]]), (224, 160), (7, 5), 1, "a keypoint far outside the grid")
_rng = np.random.default_rng(4)
_kp = _rng.uniform(0, 1, (150, 2)) * np.array([500, 380])
_check_sift(_kp, (380, 500), (24, 32), 1, "150 keypoints, non-integer cell ratio")
### END HIDDEN TESTS
print("sift_mask: tests passed")


# %% [markdown]
# ## Retrieval with your masks
#
# The provided cell describes each image by the sum of the local features a mask keeps and prints
# the mAP of the course queries: first with the package's masks, then with yours.

# %% nbgrader={"grade": false, "grade_id": "demo_masks", "locked": true, "schema_version": 3, "solution": false, "task": false}
# Provided code: retrieval with a mask. Each image is described by the sum of the local features
# its mask keeps (power-law 0.5, L2); the next assignments build the paper's full encoding.
def map_with_mask(mask_of):
    def encode(images):
        return l2_normalize(power_law(np.stack([apply_mask(f.fmap, mask_of(f)).sum(axis=0) for f in images]), 0.5))
    return mean_ap(encode(QUERY), encode(DB))


show_map("no mask (every location)", lambda: map_with_mask(lambda f: np.ones(f.fmap.shape[:2], bool)))

show_map("package MAX mask", lambda: map_with_mask(lambda f: ref_masks.max_mask(f.fmap)))
show_map("your MAX mask", lambda: map_with_mask(lambda f: max_mask(f.fmap)))
show_map("package SUM mask", lambda: map_with_mask(lambda f: ref_masks.sum_mask(f.fmap)))
show_map("your SUM mask", lambda: map_with_mask(lambda f: sum_mask(f.fmap)))
show_map("package SIFT mask", lambda: map_with_mask(
    lambda f: ref_masks.sift_mask(f.keypoints, f.image_hw, f.fmap.shape[:2])))
show_map("your SIFT mask", lambda: map_with_mask(lambda f: sift_mask(f.keypoints, f.image_hw, f.fmap.shape[:2])))

# %% [markdown] nbgrader={"grade": false, "grade_id": "question_masks", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Question (2 points, graded by hand)
#
# These maps were extracted at the paper's `max_dim = 1024`: a database image (1024 x 768 pixels)
# has a pool5 map of 32 x 24 = 768 locations and 512 channels; a query, cropped to its object,
# fewer locations. Using your sizes and receptive field: at most how many locations can the MAX
# mask keep, and why does it keep far fewer on these maps (count them)? What would it select at
# `max_dim = 224`? Compare the mAPs printed above with and without a mask: why can keeping fewer
# local features *improve* retrieval (Sec. 3.2)?
#
# <!-- ### BEGIN HIDDEN TESTS: for the grader only, not in the release nor in the feedback -->
# **For the grader.**
#
# *Model answer.* The MAX mask keeps at most one location per channel, so at most
# min(K, H W) = min(512, 768) = 512 locations of a database map; it keeps far fewer (about 120 to
# 250, a median of 176 of 768 on the course's database images) because many channels have their
# maximum at the same location: a few strong structures win many channels. At max_dim = 224 the
# grid is 7 x 5 = 35 locations, fewer than the 512 channels: nearly every location holds some
# channel's maximum and the mask selects nothing. A pool5 feature sees 212 x 212 pixels, a fifth
# of a 1024-px image, so at 1024 px most locations describe the cluttered background (the scene)
# and a few the object. Fewer features help because the dropped ones mostly describe background or
# repeat the same structure (burstiness); keeping the strongest responses keeps the object's
# discriminative parts, and the embedding and aggregation are not swamped by many weak, similar
# features: the MAX mask's mAP above is clearly higher than with every location.
#
# **Rubric (2 points).** 1 point: at most one location per channel (min(K, HW) = 512), fewer in
# practice because channels share maxima, and almost no selection at 224 px (35 locations < 512
# channels). 1 point: fewer, stronger features remove background/bursty features that dominate the
# aggregated vector (a large receptive field or noise argument is also accepted). 0 points for a
# restatement of the definitions.
# <!-- ### END HIDDEN TESTS -->

# %% [markdown] nbgrader={"grade": true, "grade_id": "think_masks", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# *Model answer and Rubric*: in the question cell above, in its part for the grader (the
# formgrader shows it next to each student's answer).
# ### END SOLUTION
