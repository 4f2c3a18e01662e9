"""Cells of the course notebooks, as ``(kind, grade_id, points, source)`` tuples.

Kinds: ``md`` (plain markdown), ``locked`` (provided code), ``answer`` (autograded answer with a
solution region), ``tests`` (autograder tests with hidden tests), ``manual`` (manually graded
markdown answer whose solution region holds the model answer and the rubric).
:mod:`build_course` turns them into ``source/<assignment>/<assignment>.ipynb``.
"""
from __future__ import annotations

# ------------------------------------------------------------------------------------------------
# shared by every assignment
# ------------------------------------------------------------------------------------------------
GRADING_INTRO = """
**How this assignment is graded.** Write your code in place of `raise NotImplementedError()`.
The cells after each task test your function; the visible tests are part of the grade, and more
(hidden) tests with other shapes, ties, zero channels and edge values run when your notebook is
graded, so test your function beyond the visible cases. You may use numpy, scipy, scikit-learn
and torch. **At grading time your answer cells run on their own**: in a fresh Python, as another
user, after the *prelude* cell only (it holds everything your answers may use), without
selconv_lite, the other provided cells, the files of the course or a network; the tests run in
the grader's own process and only see the values your functions return. A function that hands
back the library's answer (or needs anything but the prelude) scores nothing; a function that
runs far longer than the reference solution is stopped and its test fails. After each task a
provided cell plugs **your** function into the retrieval pipeline and prints the mAP it gives on
a few queries of the embedded dataset, so a wrong answer visibly changes retrieval.
Run the whole notebook (Kernel > Restart & Run All) before you submit.
"""

PRELUDE_NUMPY = r'''
# Provided code: everything your answers may use. At grading time your answer cells run after
# this cell only, in a fresh Python without selconv_lite (see "How this assignment is graded").
import numpy as np
'''

SETUP_COMMON = r'''
# Provided code: run this cell first. It is restored as is when your work is graded.
import contextlib
import importlib
import warnings

import numpy as np

from selconv_lite.data.evaluation import compute_map, rank_by_inner_product

warnings.simplefilter("ignore", UserWarning)
DATA = np.load("course_data.npz")
GND = [{"ok": DATA[f"gnd_ok_{j}"], "junk": DATA[f"gnd_junk_{j}"]} for j in range(int(DATA["n_queries"]))]
_OFF = "def _off(*args, **kwargs):\n    raise RuntimeError({msg!r})\n"


@contextlib.contextmanager
def reference_unavailable(*targets):
    """Switch off the package's implementation of a step ("module:function" or
    "module:Class.method") while your function runs: the function object itself is replaced,
    so every reference to it (imported names included) raises."""
    saved = []
    try:
        for target in targets:
            module, _, attr = target.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part, None)
            obj = getattr(obj, "__func__", obj)
            while getattr(getattr(obj, "__code__", None), "co_freevars", ()) and hasattr(obj, "__wrapped__"):
                obj = obj.__wrapped__  # a decorated method (e.g. scikit-learn's transform): switch off the original
            if getattr(getattr(obj, "__code__", None), "co_freevars", True):
                continue  # not in this version of the package, or not a plain function
            namespace = {}
            exec(_OFF.format(msg=f"{module}.{attr} is switched off while your code is graded: "
                                 "implement this step yourself"), namespace)
            saved.append((obj, obj.__code__))
            obj.__code__ = namespace["_off"].__code__
        yield
    finally:
        for obj, code in reversed(saved):
            obj.__code__ = code


def call_student(fn, *args, off=(), case="", backward=False):
    """Your ``fn(*args)`` with the package's version of the step switched off; an exception
    becomes a failure that names the case and what went wrong. With ``backward``, the result is
    ``(value, gradients)``: ``value.backward()`` is run and the gradients of the torch arguments
    that require them are returned (``None`` when the value is not attached to a graph). At
    grading time the call goes to your code's own process instead (the grading versions in
    course/grading.py)."""
    with reference_unavailable(*off):
        try:
            out = fn(*args)
            if not backward:
                return out
            import torch

            if not (isinstance(out, torch.Tensor) and out.requires_grad):
                return out, None
            out.backward()
            return out.detach(), [a.grad for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
        except NotImplementedError:
            raise AssertionError(f"{fn.__name__} is not implemented yet") from None
        except Exception as exc:
            if "switched off while your code is graded" in str(exc):
                raise AssertionError(f"{case}: {fn.__name__} calls the package's implementation "
                                     f"of this step ({exc})") from None
            raise AssertionError(f"{case}: {fn.__name__} raised {type(exc).__name__}: {exc}") from exc


def check_close(got, expected, case, what="output", rtol=1e-6, atol=1e-9):
    """Compare an array answer with the expected one; the message says what differs."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"{case}: your {what} has shape {got.shape}, expected {expected.shape}"
    bad = ~np.isfinite(got)
    assert not bad.any(), (f"{case}: your {what} contains NaN/inf at {np.argwhere(bad)[:3].tolist()} "
                           "(a zero vector must stay zero: never divide by a zero norm)")
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        err = np.abs(got.astype(np.float64) - expected)
        i = np.unravel_index(np.argmax(err), err.shape)
        raise AssertionError(f"{case}: your {what} differs from the expected one (largest difference "
                             f"{err[i]:.3g} at index {tuple(int(v) for v in i)}: yours {got[i]:.6g}, "
                             f"expected {expected[i]:.6g})")


def mean_ap(qvecs, dbvecs):
    """mAP of the course queries (package ranking by inner product and compute_map.m)."""
    return compute_map(rank_by_inner_product(qvecs, dbvecs), GND)[0]


def show_map(label, run):
    """Print the mAP that ``run()`` returns, or why it could not be computed."""
    try:
        print(f"{label:<44s} mAP = {run():.3f}")
    except NotImplementedError:
        print(f"{label:<44s} not implemented yet")
    except Exception as exc:
        print(f"{label:<44s} your code raised {type(exc).__name__}: {exc}")
'''

# ------------------------------------------------------------------------------------------------
# a1: feature maps, receptive field, masks (notebooks 01 and 02)
# ------------------------------------------------------------------------------------------------
A1_SETUP = r'''
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
    maps, kp = DATA[f"{prefix}_maps"].astype(np.float32), DATA[f"{prefix}_kp"]
    out, o, k = [], 0, 0
    for shape, hw, nkp in zip(DATA[f"{prefix}_shapes"], DATA[f"{prefix}_image_hw"], DATA[f"{prefix}_kp_counts"]):
        n = int(np.prod(shape))
        out.append(ImageFeatures(maps[o:o + n].reshape(shape), tuple(int(v) for v in hw), kp[k:k + nkp]))
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
'''

A1_PRELUDE = r'''
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
'''

A1_DEMO_SETUP = r'''
# Provided code: retrieval with a mask. Each image is described by the sum of the local features
# its mask keeps (power-law 0.5, L2); the next assignments build the paper's full encoding.
def map_with_mask(mask_of):
    def encode(images):
        return l2_normalize(power_law(np.stack([apply_mask(f.fmap, mask_of(f)).sum(axis=0) for f in images]), 0.5))
    return mean_ap(encode(QUERY), encode(DB))


show_map("no mask (every location)", lambda: map_with_mask(lambda f: np.ones(f.fmap.shape[:2], bool)))
'''

A1 = [
    ("md", "", 0, """
# Assignment 1: feature maps, receptive field and selection masks

Paper: Hoang et al., *Selective Deep Convolutional Features for Image Retrieval* (ACM MM 2017),
Sec. 3.1-3.2 (notebooks 01 and 02 of the series). Points: 14 (12 autograded, 2 graded by hand).
""" + GRADING_INTRO),
    ("locked", "prelude", 0, A1_PRELUDE),
    ("locked", "setup_common", 0, SETUP_COMMON),
    ("locked", "setup_a1", 0, A1_SETUP),
    ("md", "", 0, """
## Task 1.1: the size of a feature map (2 points)

VGG16's 13 convolutions are 3x3 with padding 1: they keep the size. Each of its 2x2 max-pools with
stride 2 halves the size and **floors** it (an odd side loses its last row or column). In this
package every layer other than `pool5` is read after one more 2x2/2 max-pool (Sec. 5.2.4), so
`pool5` and the `conv5_*` layers have 5 poolings, the `conv4_*` layers 4.

Write `feature_map_size(image_hw, layer)` returning the grid `(H, W)` as integers, for
`layer` in `LAYERS`.
"""),
    ("answer", "feature_map_size", 0, '''
def feature_map_size(image_hw, layer="pool5"):
    """Grid (H, W) of ``layer`` for an image of ``image_hw = (height, width)`` pixels."""
    ### BEGIN SOLUTION
    n_pools = 5 if layer == "pool5" or layer.startswith("conv5") else 4
    h, w = int(image_hw[0]), int(image_hw[1])
    for _ in range(n_pools):
        h, w = h // 2, w // 2
    return h, w
    ### END SOLUTION
'''),
    ("tests", "test_feature_map_size", 2, '''
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
'''),
    ("md", "", 0, """
## Task 1.2: the receptive field (2 points)

One local feature "sees" a square of the input image. For the list of operations
`vgg16_ops(layer)` (tuples `(name, kernel, stride, padding)`, given), start from `size = 1`,
`jump = 1` and for each operation do `size += (kernel - 1) * jump`, then `jump *= stride`.
The paper quotes 212 x 212 pixels for pool5 (Sec. 3.2.1). Return an integer.
"""),
    ("answer", "receptive_field_size", 0, '''
def receptive_field_size(layer="pool5"):
    """Side in pixels of the receptive field of one feature of ``layer``."""
    ### BEGIN SOLUTION
    size, jump = 1, 1
    for _, kernel, stride, _ in vgg16_ops(layer):
        size += (kernel - 1) * jump
        jump *= stride
    return size
    ### END SOLUTION
'''),
    ("tests", "test_receptive_field", 2, '''
from selconv_lite.features.receptive_field import receptive_field as _ref_rf


def _check_rf(layer):
    got = call_student(receptive_field_size, layer, off=OFF_RF, case=f"layer {layer}")
    assert isinstance(got, (int, np.integer)), f"layer {layer}: return an integer number of pixels, got {got!r}"
    want = _ref_rf(layer).size
    assert got == want, (f"layer {layer}: you return {got}, expected {want} pixels (the jump multiplies by "
                         "the stride AFTER the size grows by (kernel - 1) * jump)")


_check_rf("pool5")
### BEGIN HIDDEN TESTS
for layer in LAYERS:
    _check_rf(layer)
### END HIDDEN TESTS
print("receptive_field_size: tests passed")
'''),
    ("md", "", 0, """
## Task 2.1: the MAX mask, Eq. 2 (3 points)

For every channel `k` of the `(H, W, K)` map keep the location of its maximum. Ties follow the
authors' MATLAB code: the **first** maximum in **column-major** order (smallest column `w`,
then smallest row `h`); an all-zero or constant channel therefore keeps `(0, 0)`. Return a
boolean `(H, W)` mask.
"""),
    ("answer", "max_mask", 0, '''
def max_mask(fmap):
    """MAX mask (Eq. 2) of an (H, W, K) feature map -> bool (H, W)."""
    ### BEGIN SOLUTION
    H, W, K = fmap.shape
    flat = np.asarray(fmap).transpose(1, 0, 2).reshape(H * W, K)  # row w * H + h: column-major order
    mask = np.zeros(H * W, dtype=bool)
    mask[flat.argmax(axis=0)] = True  # argmax returns the first maximum in that order
    return mask.reshape(W, H).T
    ### END SOLUTION
'''),
    ("tests", "test_max_mask", 3, '''
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
'''),
    ("md", "", 0, """
## Task 2.2: the SUM mask, Eq. 3 (2 points)

Keep the locations whose sum over the channels is **greater than or equal to** the median of all
the sums (ties at the median are kept, as in the authors' `s >= prctile(s, 50)`). Sum in float64.
"""),
    ("answer", "sum_mask", 0, '''
def sum_mask(fmap):
    """SUM mask (Eq. 3) of an (H, W, K) feature map -> bool (H, W)."""
    ### BEGIN SOLUTION
    s = np.asarray(fmap).sum(axis=2, dtype=np.float64)
    return s >= np.median(s)
    ### END SOLUTION
'''),
    ("tests", "test_sum_mask", 2, '''
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
'''),
    ("md", "", 0, """
## Task 2.3: the SIFT mask, Eq. 1 (3 points)

`keypoints_xy` holds OpenCV keypoints `(x, y)`, 0-based, in the pixels of the `image_hw =
(H_I, W_I)` image the network saw; the grid is `grid_hw = (H, W)`. As the authors' code:

1. add 1 to the coordinates (VLFeat frames are 1-based);
2. cell column `x' = round(x / (W_I / W))`, row `y' = round(y / (H_I / H))` with MATLAB's `round`
   (half **away from zero**; `np.round` rounds half to even);
3. mark rows `max(1, y'-r) .. min(H, y'+r)` and columns `max(1, x'-r) .. min(W, x'+r)`
   (1-based, inclusive); `radius = 1` is the authors' 3x3 neighbourhood, `radius = 0` the single
   cell of Eq. 1 (clip `x'` to `1..W` and `y'` to `1..H` first in that case);
4. if no cell is marked, keep every location (Sec. 5.1: the mask is ignored).
"""),
    ("answer", "sift_mask", 0, '''
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
'''),
    ("tests", "test_sift_mask", 3, '''
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
'''),
    ("md", "", 0, """
## Retrieval with your masks

The provided cell describes each image by the sum of the local features a mask keeps and prints
the mAP of the course queries: first with the package's masks, then with yours.
"""),
    ("locked", "demo_masks", 0, A1_DEMO_SETUP + r'''
show_map("package MAX mask", lambda: map_with_mask(lambda f: ref_masks.max_mask(f.fmap)))
show_map("your MAX mask", lambda: map_with_mask(lambda f: max_mask(f.fmap)))
show_map("package SUM mask", lambda: map_with_mask(lambda f: ref_masks.sum_mask(f.fmap)))
show_map("your SUM mask", lambda: map_with_mask(lambda f: sum_mask(f.fmap)))
show_map("package SIFT mask", lambda: map_with_mask(
    lambda f: ref_masks.sift_mask(f.keypoints, f.image_hw, f.fmap.shape[:2])))
show_map("your SIFT mask", lambda: map_with_mask(lambda f: sift_mask(f.keypoints, f.image_hw, f.fmap.shape[:2])))
'''),
    ("md", "", 0, """
## Question (2 points, graded by hand)

These maps were extracted at `max_dim = 224`, so a pool5 map has about 7 x 5 = 35 locations and
512 channels. Using your receptive field and the sizes above: how many locations can the MAX
mask keep here, and why would it discard more of them at the paper's `max_dim = 1024`? Why can
keeping fewer local features *improve* retrieval (Sec. 3.2)?
"""),
    ("manual", "think_masks", 2, """
### BEGIN SOLUTION
*Model answer.* The MAX mask keeps at most one location per channel, so at most min(K, H W)
locations; with K = 512 and about 35 locations almost every location holds some channel's maximum
and little is discarded. At max_dim = 1024 the pool5 grid is about 32 x 24 = 768 locations, more
than there are distinct maxima, so many locations are dropped. A pool5 feature sees 212 x 212
pixels, so at 224 pixels each one covers nearly the whole image and the features are alike. Fewer
features help because the dropped ones mostly describe background or repeat the same structure
(burstiness); keeping the strongest responses keeps the object's discriminative parts, and the
embedding and aggregation are not swamped by many weak, similar features.

**Rubric (2 points).** 1 point: at most one location per channel (min(K, HW)), hence nearly all
of the ~35 locations here and a real selection at 1024. 1 point: fewer, stronger features remove
background/bursty features that dominate the aggregated vector (a large receptive field or
noise argument is also accepted). 0 points for a restatement of the definitions.
### END SOLUTION
"""),
]

# ------------------------------------------------------------------------------------------------
# a2: PCA + L2, T-emb, democratic aggregation (notebooks 03 and 04)
# ------------------------------------------------------------------------------------------------
A2_SETUP = r'''
# Provided code: the local features the MAX mask keeps (pool5, 512-D) for every course image.
from sklearn.cluster import KMeans

from selconv_lite.method import aggregation as ref_agg
from selconv_lite.method import embeddings as ref_emb
from selconv_lite.method.postprocess import l2_normalize

OFF_PCA = ("selconv_lite.method.embeddings:PCAL2.fit", "selconv_lite.method.embeddings:PCAL2.transform",
           "selconv_lite.core.utils:l2_normalize_rows")
OFF_TEMB = ("selconv_lite.method.embeddings:triangulation_residuals",
            "selconv_lite.method.embeddings:TriangulationEmbedding.residuals",
            "selconv_lite.method.embeddings:TriangulationEmbedding.transform",
            "selconv_lite.core.utils:l2_normalize_rows")
OFF_DEMOCRATIC = ("selconv_lite.method.aggregation:democratic_weights",
                  "selconv_lite.method.aggregation:democratic_pooling")


def _split(prefix):
    X = DATA[f"{prefix}_local"].astype(np.float32)
    return np.split(X, np.cumsum(DATA[f"{prefix}_counts"])[:-1])


TRAIN, QUERY, DB = _split("train"), _split("query"), _split("db")
print(f"{sum(map(len, TRAIN))} training local features from {len(TRAIN)} images; "
      f"{len(QUERY)} queries, {len(DB)} database images")


def ref_pca_fit(X, d):
    p = ref_emb.PCAL2(d).fit(X)
    return p.mean_, p.components_


def ref_pca_l2(X, mean, components):
    return ref_emb.PCAL2.from_params(mean, components).transform(X)


def _spectrum(rng, n, K):
    """Features with clearly separated variances along random orthogonal directions."""
    Q = np.linalg.qr(rng.standard_normal((K, K)))[0]
    return (rng.standard_normal((n, K)) * np.linspace(3.0, 0.5, K)) @ Q.T + rng.standard_normal(K)


def check_components(mean, comps, X, d, case):
    ref_mean, ref_comps = ref_pca_fit(X, d)
    comps = np.asarray(comps)
    if comps.shape == ref_comps.shape[::-1] and comps.shape[0] != comps.shape[1]:
        raise AssertionError(f"{case}: components must be ROWS, shape (d, K) = {ref_comps.shape}; you return {comps.shape}")
    assert comps.shape == ref_comps.shape, f"{case}: components have shape {comps.shape}, expected {ref_comps.shape}"
    check_close(mean, ref_mean, case, "mean", rtol=1e-5, atol=1e-6)
    gram = comps @ comps.T
    assert np.allclose(gram, np.eye(d), atol=1e-5), f"{case}: your components are not orthonormal rows"
    overlap = np.abs(comps @ ref_comps.T)
    assert np.allclose(overlap, np.eye(d), atol=1e-4), (
        f"{case}: your components are not the top-{d} eigenvectors of the covariance of the CENTRED "
        "features, in order of decreasing eigenvalue (up to sign)")
'''

A2_DEMO = r'''
# Provided code: the paper's encoding with the functions you pass in. MAX-masked pool5 features ->
# PCA to d + L2 -> T-emb (k-means codebook; centring and whitening with the 33 smallest
# eigenvalues clamped, learned on the training images) -> democratic pooling -> L2 -> mAP.
def map_with(fit, project, residuals, weights, d=32, k=8):
    Xtr = np.concatenate(TRAIN)
    mean, comps = fit(Xtr, d)
    Ptr = project(Xtr, mean, comps)
    C = KMeans(k, n_init=1, random_state=0).fit(Ptr).cluster_centers_
    R = residuals(Ptr, C)
    mu = R.mean(axis=0)
    ev, V = np.linalg.eigh((R - mu).T @ (R - mu))
    W = V / np.sqrt(np.maximum(ev, ev[32]))

    def encode(images):
        out = []
        for X in images:
            E = l2_normalize((residuals(project(X, mean, comps), C) - mu) @ W)
            out.append(weights(E) @ E)
        return l2_normalize(np.stack(out))

    return mean_ap(encode(QUERY), encode(DB))


def sum_weights(E):
    return np.ones(len(E))
'''

A2 = [
    ("md", "", 0, """
# Assignment 2: PCA + L2, triangulation embedding and democratic aggregation

Paper Sec. 4.1-4.3 (notebooks 03 and 04 of the series). Points: 13 (11 autograded, 2 by hand).
Local features are ROWS: `X` is `(n, K)`.
""" + GRADING_INTRO),
    ("locked", "prelude", 0, PRELUDE_NUMPY),
    ("locked", "setup_common", 0, SETUP_COMMON),
    ("locked", "setup_a2", 0, A2_SETUP),
    ("md", "", 0, """
## Task 3.1: PCA to `d` dimensions, then L2 (4 points)

`pca_fit(X, d)` returns the mean `(K,)` of the training features and the top-`d` principal
directions as ROWS `(d, K)`, by decreasing eigenvalue of the covariance of the centred features
(the sign of each direction is free). `pca_l2(X, mean, components)` projects the centred
features and L2-normalises every row; a row that projects to zero must stay zero (no NaN).
"""),
    ("answer", "pca_l2", 0, '''
def pca_fit(X, d):
    """Mean (K,) and top-d principal directions (d, K) of the rows of X."""
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    Xc = X - mean
    _, V = np.linalg.eigh(Xc.T @ Xc / len(X))
    return mean, V[:, ::-1][:, :d].T
    ### END SOLUTION


def pca_l2(X, mean, components):
    """L2-normalised PCA projections (n, d) of the rows of X."""
    ### BEGIN SOLUTION
    Y = (np.asarray(X, dtype=np.float64) - mean) @ np.asarray(components).T
    norms = np.linalg.norm(Y, axis=1, keepdims=True)
    return Y / np.where(norms == 0, 1, norms)
    ### END SOLUTION
'''),
    ("tests", "test_pca_fit", 2, '''
_rng = np.random.default_rng(31)
_X = _spectrum(_rng, 300, 12)
_mean, _comps = call_student(pca_fit, _X.copy(), 4, off=OFF_PCA, case="300 features of dimension 12, d=4")
check_components(_mean, _comps, _X, 4, "300 features of dimension 12, d=4")
### BEGIN HIDDEN TESTS
_X = _spectrum(_rng, 50, 20) + 10.0  # far from the origin: centring matters
_mean, _comps = call_student(pca_fit, _X.copy(), 8, off=OFF_PCA, case="features far from the origin, d=8")
check_components(_mean, _comps, _X, 8, "features far from the origin, d=8")
_X = _spectrum(_rng, 40, 6).astype(np.float32)
_mean, _comps = call_student(pca_fit, _X.copy(), 6, off=OFF_PCA, case="float32 features, d=K=6")
check_components(_mean, _comps, _X, 6, "float32 features, d=K=6")
### END HIDDEN TESTS
print("pca_fit: tests passed")
'''),
    ("tests", "test_pca_l2", 2, '''
_rng = np.random.default_rng(32)
_X = _spectrum(_rng, 30, 10)
_m, _c = ref_pca_fit(_X, 5)
_Xq = _X[:6].copy()
_Xq[2] = _m  # a feature equal to the mean projects to zero
check_close(call_student(pca_l2, _Xq.copy(), _m, _c, off=OFF_PCA, case="6 features, one equal to the mean"),
            ref_pca_l2(_Xq, _m, _c), "6 features, one equal to the mean", "projection")
### BEGIN HIDDEN TESTS
_X = _spectrum(_rng, 200, 16).astype(np.float32)
_m, _c = ref_pca_fit(_X, 3)
check_close(call_student(pca_l2, _X.copy(), _m, _c, off=OFF_PCA, case="200 float32 features, d=3"),
            ref_pca_l2(_X, _m, _c), "200 float32 features, d=3", "projection", rtol=1e-4, atol=1e-6)
_one = _X[:1].copy()
check_close(call_student(pca_l2, _one, _m, _c, off=OFF_PCA, case="a single feature"),
            ref_pca_l2(_one, _m, _c), "a single feature", "projection", rtol=1e-4, atol=1e-6)
_m1, _c1 = ref_pca_fit(_X, 1)
check_close(call_student(pca_l2, _X[:5].copy(), _m1, _c1, off=OFF_PCA, case="d=1"),
            ref_pca_l2(_X[:5], _m1, _c1), "d=1", "projection", rtol=1e-4, atol=1e-6)
### END HIDDEN TESTS
print("pca_l2: tests passed")
'''),
    ("md", "", 0, """
## Task 3.2: triangulation embedding, Eq. 6 (3 points)

For every feature `x` (row of `X`, `(n, d)`) and centroid `c_j` (row of `C`, `(k, d)`), the
block `(x - c_j) / ||x - c_j||`. Row `i` of the result is the concatenation of the `k` blocks in
centroid order: `(n, k*d)`. A feature equal to a centroid gives a zero block (no NaN). The
centring and whitening that follow are provided below.
"""),
    ("answer", "temb_residuals", 0, '''
def temb_residuals(X, C):
    """Normalised residuals (n, k*d): block j of row i is (x_i - c_j) / ||x_i - c_j||."""
    ### BEGIN SOLUTION
    R = np.asarray(X, dtype=np.float64)[:, None, :] - np.asarray(C, dtype=np.float64)[None, :, :]
    norms = np.linalg.norm(R, axis=2, keepdims=True)
    return (R / np.where(norms == 0, 1, norms)).reshape(len(X), -1)
    ### END SOLUTION
'''),
    ("tests", "test_temb_residuals", 3, '''
def _check_temb(X, C, case):
    got = np.asarray(call_student(temb_residuals, X.copy(), C.copy(), off=OFF_TEMB, case=case))
    want = ref_emb.triangulation_residuals(np.asarray(X, np.float64), C)
    n, k, d = len(X), len(C), X.shape[1]
    if got.shape == want.shape and np.all(np.isfinite(got)) and not np.allclose(got, want, atol=1e-6):
        if np.allclose(got, want.reshape(n, k, d).transpose(0, 2, 1).reshape(n, -1), atol=1e-6):
            raise AssertionError(f"{case}: your values are right but interleaved: row i must be the k blocks "
                                 "[r_i1 (d values), r_i2 (d values), ...] one centroid after the other")
        norms = np.linalg.norm(got.reshape(n, k, d), axis=2)
        if not np.allclose(norms[norms > 0], 1, atol=1e-6):
            raise AssertionError(f"{case}: each block (x - c_j) must be divided by its own norm ||x - c_j||")
    check_close(got, want, case, "embedding", rtol=1e-6, atol=1e-8)


_rng = np.random.default_rng(33)
_check_temb(_rng.standard_normal((5, 4)), _rng.standard_normal((3, 4)), "5 features, d=4, 3 centroids")
### BEGIN HIDDEN TESTS
_C = _rng.standard_normal((4, 6))
_X = _rng.standard_normal((7, 6))
_X[3] = _C[2]
_check_temb(_X, _C, "a feature equal to a centroid")
_check_temb(_rng.standard_normal((1, 8)), _rng.standard_normal((5, 8)), "a single feature")
_check_temb(_rng.standard_normal((9, 1)), _rng.standard_normal((2, 1)), "d=1")
_check_temb(_rng.standard_normal((60, 32)).astype(np.float32), _rng.standard_normal((8, 32)), "60 float32 features")
### END HIDDEN TESTS
print("temb_residuals: tests passed")
'''),
    ("md", "", 0, """
## Task 4: democratic aggregation weights (4 points)

As the authors' `sinkhornm.m` (Sec. 4.3, ref. [21]), for the L2-normalised embedded features
`E` `(n, D)`: Gram matrix `G = E E^T` with negative entries **clipped to 0**; weights
`lambda = 1`; then `n_iter = 10` times: `delta = 1 / sqrt(column sums of G)`,
`G <- diag(delta) G diag(delta)`, `lambda <- lambda * delta`. A zero feature (a zero column of
`G`) gets weight 0, never NaN. Return `lambda` `(n,)`; the aggregated vector is `lambda @ E`.
"""),
    ("answer", "democratic_weights", 0, '''
def democratic_weights(E, n_iter=10):
    """Democratic weights (n,) of the rows of E (Sinkhorn, exponent 0.5, Gram clipped at 0)."""
    ### BEGIN SOLUTION
    E = np.asarray(E, dtype=np.float64)
    G = np.maximum(E @ E.T, 0)
    lam = np.ones(len(E))
    for _ in range(n_iter):
        s = G.sum(axis=0)
        delta = np.where(s > 0, 1 / np.sqrt(np.where(s > 0, s, 1)), 0.0)
        G = G * delta[None, :] * delta[:, None]
        lam = lam * delta
    return lam
    ### END SOLUTION
'''),
    ("tests", "test_democratic_weights", 4, '''
def _unit_rows(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def _check_dem(E, case, n_iter=None):
    args = (E.copy(),) if n_iter is None else (E.copy(), n_iter)
    got = np.asarray(call_student(democratic_weights, *args, off=OFF_DEMOCRATIC, case=case), dtype=np.float64)
    want = ref_agg.democratic_weights(E, n_iter=10 if n_iter is None else n_iter)
    if (got.shape == want.shape and np.all(np.isfinite(got)) and not np.allclose(got, want, rtol=1e-6)
            and (E @ E.T < 0).any()):
        pos = np.abs(E)  # the same features without negative inner products
        got_pos = call_student(democratic_weights, *((pos,) + args[1:]), off=OFF_DEMOCRATIC, case=case)
        if np.allclose(got_pos, ref_agg.democratic_weights(pos, n_iter=n_iter or 10), rtol=1e-6):
            raise AssertionError(f"{case}: your weights are right when every inner product is >= 0 but not here, "
                                 "where E E^T has negative entries: the authors clip them to 0 before the "
                                 "Sinkhorn iterations (G = max(E E^T, 0))")
    check_close(got, want, case, "weights", rtol=1e-6, atol=1e-12)


_rng = np.random.default_rng(34)
_check_dem(_unit_rows(np.abs(_rng.standard_normal((6, 8)))), "6 non-negative features (no clipping needed)")
_check_dem(_unit_rows(_rng.standard_normal((8, 5))), "8 features with negative inner products")
### BEGIN HIDDEN TESTS
_E = _unit_rows(_rng.standard_normal((40, 16)))
_E[:12] = _unit_rows(_E[0] + 0.05 * _rng.standard_normal((12, 16)))  # a burst of near-duplicates
_check_dem(_E, "a burst of 12 near-duplicates")
_E = _unit_rows(_rng.standard_normal((10, 6)))
_E[4] = 0.0
_check_dem(_E, "a zero feature")
_check_dem(_unit_rows(_rng.standard_normal((1, 4))), "a single feature")
_check_dem(_unit_rows(_rng.standard_normal((12, 7))), "n_iter=3", n_iter=3)
### END HIDDEN TESTS
print("democratic_weights: tests passed")
'''),
    ("md", "", 0, """
## Retrieval with your functions

The provided cell runs the paper's encoding (Sec. 4) on the course images: first with the
package's functions, then with yours, then with sum pooling instead of democratic pooling.
"""),
    ("locked", "demo_embedding", 0, A2_DEMO + r'''
show_map("package PCA, T-emb and democratic", lambda: map_with(
    ref_pca_fit, ref_pca_l2, ref_emb.triangulation_residuals, ref_agg.democratic_weights))
show_map("your PCA, T-emb and democratic", lambda: map_with(pca_fit, pca_l2, temb_residuals, democratic_weights))
show_map("your PCA and T-emb, sum pooling", lambda: map_with(pca_fit, pca_l2, temb_residuals, sum_weights))
'''),
    ("md", "", 0, """
## Question (2 points, graded by hand)

Compare the last two lines above. What does democratic aggregation equalise, and why does that
matter for features such as repeated windows or sky (burstiness)? What would go wrong with the
Sinkhorn iterations if the negative Gram entries were not clipped to 0?
"""),
    ("manual", "think_democratic", 2, """
### BEGIN SOLUTION
*Model answer.* Democratic aggregation chooses weights so that every local feature contributes
the same amount to the similarity of the aggregated vector with itself
(lambda_i phi_i . sum_j lambda_j phi_j is constant). With sum pooling, a burst of near-identical
features (windows, sky, texture) adds up and dominates the vector, so images match on their
repetitive background; the democratic weights shrink the burst. Sinkhorn scaling needs a
non-negative matrix: with negative entries a column sum can be zero or negative, the square root
is undefined (NaN) or the weights blow up, and the iteration need not converge; clipping keeps
only the positive interactions.

**Rubric (2 points).** 1 point: equal contribution of each feature / down-weights bursts, tied to
the numbers above. 1 point: Sinkhorn needs non-negative entries (zero or negative sums, NaN,
no convergence). 0 points for restating the algorithm.
### END SOLUTION
"""),
]

# ------------------------------------------------------------------------------------------------
# a3: post-processing, evaluation, contrastive loss (notebooks 05, 06 and 07)
# ------------------------------------------------------------------------------------------------
A3_SETUP = r'''
# Provided code: aggregated T-emb vectors (MAX mask, d=32, 8 centroids, democratic pooling, L2)
# of the course images, before the post-processing of Sec. 4.4.
import torch

from selconv_lite.data import evaluation as ref_eval
from selconv_lite.experiments import finetune as ref_finetune
from selconv_lite.method import postprocess as ref_post

TRAIN_V, QUERY_V, DB_V = (DATA[f"{p}_vectors"].astype(np.float64) for p in ("train", "query", "db"))
TRAIN_LABELS = DATA["train_labels"]
print(f"vectors of dimension {TRAIN_V.shape[1]}: {len(TRAIN_V)} training, {len(QUERY_V)} query, {len(DB_V)} database")

OFF_POWER = ("selconv_lite.method.postprocess:power_law",)
OFF_POST = ("selconv_lite.method.postprocess:power_law", "selconv_lite.method.postprocess:l2_normalize",
            "selconv_lite.method.postprocess:truncate", "selconv_lite.core.utils:l2_normalize_rows",
            "selconv_lite.method.postprocess:RotationNormalization.fit",
            "selconv_lite.method.postprocess:RotationNormalization.transform")
OFF_AP = tuple(f"selconv_lite.data.evaluation:{f}" for f in
               ("compute_map", "compute_ap", "_adjusted_positions", "compute_map_and_precision", "evaluate"))
OFF_LOSS = ("selconv_lite.experiments.finetune:contrastive_loss",)


def ref_learn_rotation(V):
    rn = ref_post.RotationNormalization().fit(V)
    return rn.mean_, rn.rotation_


def ref_postprocess(V, mean, P, n_truncate, alpha=0.5):
    return ref_post.l2_normalize(ref_post.power_law(((V - mean) @ P)[:, n_truncate:], alpha))


def ref_ap(ranked, ok, junk):
    gnd = [{"ok": np.asarray(ok, int), "junk": np.asarray(junk, int)}]
    n_database = int(max([len(ranked) - 1, *np.ravel(ranked), *gnd[0]["ok"], *gnd[0]["junk"]])) + 1
    try:  # a truncated ranking: the database is larger than the list
        return ref_eval.compute_map(np.asarray(ranked)[:, None], gnd, n_database=n_database)[0]
    except TypeError:
        return ref_eval.compute_map(np.asarray(ranked)[:, None], gnd)[0]
'''

A3 = [
    ("md", "", 0, """
# Assignment 3: post-processing, evaluation and the contrastive loss

Paper Sec. 4.4, 5.1 and 5.3 (notebooks 05, 06 and 07 of the series). Points: 15 (13 autograded,
2 by hand). Image vectors are ROWS: `V` is `(n, D)`.
""" + GRADING_INTRO),
    ("locked", "prelude", 0, PRELUDE_NUMPY + "import torch\n"),
    ("locked", "setup_common", 0, SETUP_COMMON),
    ("locked", "setup_a3", 0, A3_SETUP),
    ("md", "", 0, """
## Task 5.1: power-law normalisation (2 points)

`PN(x) = sign(x) |x|^alpha` element-wise (Sec. 4.4). `alpha = 0` gives `sign(x)` with `0 -> 0`;
negative entries keep their sign.
"""),
    ("answer", "power_law", 0, '''
def power_law(x, alpha=0.5):
    """sign(x) * |x| ** alpha, element-wise."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.abs(x) ** alpha
    ### END SOLUTION
'''),
    ("tests", "test_power_law", 2, '''
def _check_pw(x, alpha, case):
    got = np.asarray(call_student(power_law, x.copy(), alpha, off=OFF_POWER, case=case), dtype=np.float64)
    want = ref_post.power_law(x, alpha)
    if got.shape == want.shape and np.all(np.isfinite(got)) and np.allclose(got, np.abs(want)) and (x < 0).any():
        raise AssertionError(f"{case}: negative entries must stay negative: sign(x) * |x|^alpha")
    check_close(got, want, case, "vector")


_rng = np.random.default_rng(51)
_x = _rng.standard_normal((3, 7))
_x[0, :2] = 0.0
_check_pw(_x, 0.5, "alpha=0.5, with zeros and negative entries")
### BEGIN HIDDEN TESTS
_check_pw(_x, 0.0, "alpha=0 (sign, 0 -> 0)")
_check_pw(_x, 1.0, "alpha=1")
_check_pw(_x[1], 0.2, "a 1-D vector, alpha=0.2")
_check_pw(np.zeros((2, 4)), 0.5, "all zeros")
### END HIDDEN TESTS
print("power_law: tests passed")
'''),
    ("md", "", 0, """
## Task 5.2: rotation normalisation and truncation (5 points)

`learn_rotation(V)` learns, on the held-out training vectors `V` `(n, D)`, their mean `(D,)`
and an orthogonal `(D, D)` matrix `P` whose first columns are the principal directions of the
centred vectors by decreasing eigenvalue (signs are free; the columns beyond the rank of the
data complete `P` to a rotation). `postprocess(V, mean, P, n_truncate, alpha)` then computes,
for every row, `P^T (v - mean)`, drops the FIRST `n_truncate` components, applies the
power law, and L2-normalises (a zero row stays zero).
"""),
    ("answer", "rotation", 0, '''
def learn_rotation(V):
    """Mean (D,) and rotation P (D, D) of the training vectors V (n, D)."""
    ### BEGIN SOLUTION
    V = np.asarray(V, dtype=np.float64)
    mean = V.mean(axis=0)
    Vc = V - mean
    _, U = np.linalg.eigh(Vc.T @ Vc / len(V))
    return mean, U[:, ::-1]
    ### END SOLUTION


def postprocess(V, mean, P, n_truncate, alpha=0.5):
    """Rotate, truncate, power-law and L2-normalise the rows of V -> (n, D - n_truncate)."""
    ### BEGIN SOLUTION
    Y = ((np.asarray(V, dtype=np.float64) - mean) @ P)[:, n_truncate:]
    Y = np.sign(Y) * np.abs(Y) ** alpha
    norms = np.linalg.norm(Y, axis=1, keepdims=True)
    return Y / np.where(norms == 0, 1, norms)
    ### END SOLUTION
'''),
    ("tests", "test_learn_rotation", 2, '''
def _check_rot(V, case):
    mean, P = call_student(learn_rotation, V.copy(), off=OFF_POST, case=case)
    P = np.asarray(P, dtype=np.float64)
    ref_mean, _ = ref_learn_rotation(V)
    D = V.shape[1]
    check_close(mean, ref_mean, case, "mean", rtol=1e-6, atol=1e-9)
    assert P.shape == (D, D), f"{case}: P must be (D, D) = {(D, D)}, got {P.shape}"
    assert np.allclose(P.T @ P, np.eye(D), atol=1e-6), f"{case}: P is not orthogonal (P^T P != I)"
    rn = ref_post.RotationNormalization().fit(V)
    r = rn.eigvec_.shape[1] - 1  # leave out the smallest kept eigenvalue (possibly tied with the null space)
    overlap = np.abs(np.sum(P[:, :r] * rn.eigvec_[:, :r], axis=0))
    assert np.allclose(overlap, 1, atol=1e-5), (
        f"{case}: the first columns of P must be the principal directions of the centred vectors, by "
        "decreasing eigenvalue (up to sign)")


_rng = np.random.default_rng(52)
_check_rot(_rng.standard_normal((100, 12)) * np.linspace(2, 0.5, 12), "100 vectors of dimension 12")
### BEGIN HIDDEN TESTS
_check_rot(_rng.standard_normal((25, 40)) * np.linspace(2, 0.5, 40) + 3.0, "25 vectors of dimension 40 (n < D)")
_check_rot(TRAIN_V, "the course training vectors")
### END HIDDEN TESTS
print("learn_rotation: tests passed")
'''),
    ("tests", "test_postprocess", 3, '''
def _check_post(V, t, alpha, case):
    mean, P = ref_learn_rotation(TRAIN_V)
    got = np.asarray(call_student(postprocess, V.copy(), mean, P, t, alpha, off=OFF_POST, case=case))
    want = ref_postprocess(V, mean, P, t, alpha)
    if got.shape == want.shape and np.all(np.isfinite(got)) and t > 0:
        drop_last = ref_post.l2_normalize(ref_post.power_law(((V - mean) @ P)[:, :P.shape[1] - t], alpha))
        assert not np.allclose(got, drop_last), f"{case}: drop the FIRST n_truncate components, not the last"
    check_close(got, want, case, "vectors", rtol=1e-6, atol=1e-9)


_check_post(QUERY_V, 16, 0.5, "course queries, truncate 16, alpha 0.5")
### BEGIN HIDDEN TESTS
_check_post(DB_V[:5], 0, 0.5, "no truncation")
_check_post(DB_V, 64, 0.2, "truncate 64, alpha 0.2")
_check_post(DB_V[:3], 8, 1.0, "alpha 1")
_V = DB_V[:4].copy()
_V[1] = TRAIN_V.mean(axis=0)  # rotates to zero: must stay zero
_check_post(_V, 4, 0.5, "a vector equal to the training mean")
### END HIDDEN TESTS
print("postprocess: tests passed")
'''),
    ("md", "", 0, """
## Retrieval with your post-processing

With 40 training vectors of dimension 256 only the first 39 directions of `P` are learned; the
remaining columns are an arbitrary orthogonal completion (the package uses the QR factor of
`[eigvec, I]` as the authors' `learn_rn.m`). Those columns survive the truncation, so a correct
`learn_rotation` can give a slightly different mAP than the package's. On 8 queries the
post-processing does not pay off as it does on Oxford5k (Table 2 of the paper): think about why
in the last question.
"""),
    ("locked", "demo_postprocess", 0, r'''
def map_post(learn, post, n_truncate, alpha=0.5):
    mean, P = learn(TRAIN_V)
    return mean_ap(post(QUERY_V, mean, P, n_truncate, alpha), post(DB_V, mean, P, n_truncate, alpha))


show_map("aggregated vectors, no post-processing", lambda: mean_ap(QUERY_V, DB_V))
for _t in (0, 16, 64):
    show_map(f"package post-processing, truncate {_t}", lambda: map_post(ref_learn_rotation, ref_postprocess, _t))
    show_map(f"your post-processing, truncate {_t}", lambda: map_post(learn_rotation, postprocess, _t))
'''),
    ("md", "", 0, """
## Task 6: average precision as `compute_map.m` (3 points)

`ranked` lists database indices, most similar first (it may be truncated); `ok` are the
positives, `junk` images that are ignored. As the authors' code:

1. the 0-based positions of the positives in `ranked`, each lowered by the number of junk
   images ranked before it (junk is removed from the list);
2. for the `k`-th positive found (`k = 1, 2, ...`) at adjusted position `r_k`: the precision
   just before it, `(k - 1) / r_k` (1 if `r_k = 0`), and just after it, `k / (r_k + 1)`;
3. `AP = sum_k (before_k + after_k) / (2 * len(ok))`: positives never retrieved add nothing but
   still count in `len(ok)`; a query without positives has AP 0.
"""),
    ("answer", "average_precision", 0, '''
def average_precision(ranked, ok, junk):
    """AP of one query, as the authors' compute_map.m (trapezoid rule, junk removed)."""
    ### BEGIN SOLUTION
    ranked, ok, junk = np.asarray(ranked), np.asarray(ok), np.asarray(junk)
    if ok.size == 0:
        return 0.0
    pos = np.flatnonzero(np.isin(ranked, ok))
    jpos = np.flatnonzero(np.isin(ranked, junk))
    pos = pos - np.searchsorted(jpos, pos)
    ap = 0.0
    for k, r in enumerate(pos):  # k positives found before this one
        before = 1.0 if r == 0 else k / r
        after = (k + 1) / (r + 1)
        ap += (before + after) / (2 * ok.size)
    return float(ap)
    ### END SOLUTION
'''),
    ("tests", "test_average_precision", 3, '''
def _check_ap(ranked, ok, junk, case):
    ranked, ok, junk = np.asarray(ranked), np.asarray(ok, int), np.asarray(junk, int)
    got = call_student(average_precision, ranked.copy(), ok.copy(), junk.copy(), off=OFF_AP, case=case)
    got = float(got)
    want = ref_ap(ranked, ok, junk)
    if abs(got - want) > 1e-9 and len(junk) and abs(got - ref_ap(ranked, ok, [])) < 1e-9:
        raise AssertionError(f"{case}: you count junk images as negatives; remove them from the ranking "
                             "(lower each positive's position by the junk ranked before it)")
    assert abs(got - want) <= 1e-9, f"{case}: AP {got:.6f}, expected {want:.6f}"


_check_ap(np.arange(10), [0, 1, 2], [], "perfect ranking")
_check_ap([5, 3, 7, 1, 0, 2, 4, 6], [7, 4], [3], "a junk image before a positive")
### BEGIN HIDDEN TESTS
_check_ap(np.arange(10), [8, 9], [], "positives last")
_check_ap([4, 0, 1, 2, 3, 5], [0, 1], [4], "junk ranked first")
_check_ap(np.arange(6), [1, 3, 14], [13], "a truncated ranking (a positive never retrieved)")
_check_ap(np.arange(5), [], [], "no positive")
_check_ap([2, 9, 4, 7, 1, 0, 3, 8, 6, 5], [9, 1, 5], [4, 7, 3], "junk interleaved with positives")
_rng = np.random.default_rng(6)
for _t in range(4):
    _perm = _rng.permutation(40)
    _check_ap(_rng.permutation(40), _perm[:5], _perm[10:13], f"random ranking {_t}")
### END HIDDEN TESTS
print("average_precision: tests passed")
'''),
    ("locked", "demo_ap", 0, r'''
def map_with_ap(ap, qvecs, dbvecs):
    ranks = rank_by_inner_product(qvecs, dbvecs)
    return float(np.mean([ap(ranks[:, i], g["ok"], g["junk"]) for i, g in enumerate(GND)]))


_mean, _P = ref_learn_rotation(TRAIN_V)
_q, _db = ref_postprocess(QUERY_V, _mean, _P, 16), ref_postprocess(DB_V, _mean, _P, 16)
show_map("package compute_map (final vectors)", lambda: mean_ap(_q, _db))
show_map("your average_precision (final vectors)", lambda: map_with_ap(average_precision, _q, _db))
'''),
    ("md", "", 0, """
## Task 7: the contrastive loss (3 points)

For descriptor pairs (rows of the torch tensors `a`, `b`, `(n, D)`) with labels `y` (1 =
matching, 0 = non-matching), `d = ||a - b||` and the mean over the pairs of
`0.5 * y * d^2 + 0.5 * (1 - y) * max(0, margin - d)^2` (Sec. 5.3, the siaMAC training of
Radenovic et al.). Return a 0-dimensional torch tensor that autograd can differentiate.
"""),
    ("answer", "contrastive_loss", 0, '''
def contrastive_loss(a, b, y, margin=0.7):
    """Mean contrastive loss of the pairs (a_i, b_i) with labels y_i (torch tensors)."""
    ### BEGIN SOLUTION
    d = torch.sqrt(((a - b) ** 2).sum(dim=1))
    y = y.to(d.dtype)
    return (0.5 * y * d ** 2 + 0.5 * (1 - y) * torch.clamp(margin - d, min=0) ** 2).mean()
    ### END SOLUTION
'''),
    ("tests", "test_contrastive_loss", 3, '''
def _check_loss(a, b, y, margin, case):
    ta = torch.tensor(a, requires_grad=True)
    got, grads = call_student(contrastive_loss, ta, torch.tensor(b), torch.tensor(y), margin, off=OFF_LOSS,
                              case=case, backward=True)
    assert isinstance(got, torch.Tensor) and got.dim() == 0, (
        f"{case}: return a 0-dimensional torch tensor (the mean over the pairs), got {type(got).__name__} "
        f"{tuple(getattr(got, 'shape', ()))}")
    ra = torch.tensor(a, requires_grad=True)
    want = ref_finetune.contrastive_loss(ra, torch.tensor(b), torch.tensor(y), margin)
    d = np.linalg.norm(a - b, axis=1)
    hints = {"the loss uses d^2 for matching pairs and max(0, margin - d)^2 for non-matching ones, not d":
             np.mean(0.5 * y * d + 0.5 * (1 - y) * np.maximum(0, margin - d)),
             "take the MEAN over the pairs, not the sum":
             np.sum(0.5 * y * d ** 2 + 0.5 * (1 - y) * np.maximum(0, margin - d) ** 2),
             "non-matching pairs farther than the margin must cost 0: max(0, margin - d)":
             np.mean(0.5 * y * d ** 2 + 0.5 * (1 - y) * (margin - d) ** 2)}
    value = float(got.detach())
    if abs(value - float(want)) > 1e-6:
        for hint, wrong in hints.items():
            if abs(value - wrong) < 1e-6 and abs(wrong - float(want)) > 1e-6:
                raise AssertionError(f"{case}: loss {value:.6f}, expected {float(want):.6f}: {hint}")
        raise AssertionError(f"{case}: loss {value:.6f}, expected {float(want):.6f}")
    assert grads, f"{case}: your loss is detached from the graph (keep torch operations)"
    want.backward()
    check_close(np.asarray(grads[0]), ra.grad.numpy(), case, "gradient", rtol=1e-5, atol=1e-8)


_rng = np.random.default_rng(7)
_a, _b = _rng.standard_normal((6, 8)), _rng.standard_normal((6, 8))
_a /= np.linalg.norm(_a, axis=1, keepdims=True)
_b /= np.linalg.norm(_b, axis=1, keepdims=True)
_check_loss(_a, _b, np.array([1, 0, 1, 0, 1, 0.0]), 0.7, "6 pairs, margin 0.7")
### BEGIN HIDDEN TESTS
_check_loss(_a, _b, np.array([0, 0, 0, 0, 0, 0.0]), 0.3, "non-matching pairs beyond the margin")
_check_loss(_a, _b, np.array([1, 1, 1, 1, 1, 1.0]), 0.7, "only matching pairs")
_check_loss(_a[:1], _b[:1], np.array([0.0]), 2.0, "one pair, margin 2")
_c = _rng.standard_normal((10, 32))
_check_loss(_c, _c + 0.1 * _rng.standard_normal((10, 32)), (np.arange(10) % 3 == 0).astype(float), 1.0,
            "10 pairs of dimension 32")
### END HIDDEN TESTS
print("contrastive_loss: tests passed")
'''),
    ("md", "", 0, """
## Training with your loss

The provided cell learns a linear projection `W` (240 -> 128) of the post-processed vectors on
the training images with your loss (a whole photo and a crop of it are a matching pair, crops of
different photos a non-matching one; 50 full-batch Adam steps) and prints the mAP of the
projected course vectors before and after training.
"""),
    ("locked", "demo_finetune", 0, r'''
def map_after_training(loss_fn, dim=128, steps=50, margin=0.7, lr=1e-3):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    mean, P = ref_learn_rotation(TRAIN_V)
    X = torch.tensor(ref_postprocess(TRAIN_V, mean, P, 16))
    q, db = (torch.tensor(ref_postprocess(V, mean, P, 16)) for V in (QUERY_V, DB_V))
    # pairs: a whole photo and a crop of it match; crops of different photos do not
    whole = np.array(["_whole" in str(n) for n in DATA["train_names"]])
    i, j = np.triu_indices(len(X), k=1)
    same = TRAIN_LABELS[i] == TRAIN_LABELS[j]
    keep = ~same | whole[i] | whole[j]
    i, j, y = i[keep], j[keep], torch.tensor(same[keep].astype(np.float64))
    W = torch.eye(X.shape[1], dim, dtype=torch.float64).requires_grad_(True)
    opt = torch.optim.Adam([W], lr=lr)

    def project(Z):
        return torch.nn.functional.normalize(Z @ W, dim=1)

    for _ in range(steps):
        opt.zero_grad()
        Z = project(X)
        loss = loss_fn(Z[i], Z[j], y, margin)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return mean_ap(project(q).numpy(), project(db).numpy())


show_map("projection before training", lambda: map_after_training(ref_finetune.contrastive_loss, steps=0))
show_map("trained with the package's loss", lambda: map_after_training(ref_finetune.contrastive_loss))
show_map("trained with your loss", lambda: map_after_training(contrastive_loss))
'''),
    ("md", "", 0, """
## Question (2 points, graded by hand)

Why is the rotation learned on a held-out set of images rather than on the database that is
searched, and why does dropping the first components (truncation) help (Sec. 4.4 and 5.2.1)?
"""),
    ("manual", "think_postprocess", 2, """
### BEGIN SOLUTION
*Model answer.* Everything learned (PCA, codebook, whitening, rotation) must come from images
other than the test set, otherwise the evaluation is optimistic (it tunes on the test data) and
does not describe a system that must index images it has never seen; the paper uses Paris6k for
Oxford5k and vice versa. After the rotation the first components carry the largest variance of
the training vectors: directions shared by many images (co-occurrences, common background,
the embedding's mean structure), which add similarity between unrelated images; dropping them
(128 for T-emb) removes this bias, and the power law then reduces the remaining burstiness.

**Rubric (2 points).** 1 point: held-out learning avoids fitting to the test set / reflects
unseen data. 1 point: the first components are dominated by variance common to all images
(co-occurrence/background) and hurt discrimination. 0 points for a restatement of the steps.
### END SOLUTION
"""),
]

ASSIGNMENTS = {
    "a1_features_masks": A1,
    "a2_embedding_aggregation": A2,
    "a3_postprocessing_evaluation": A3,
}
