"""Checkers for classroom exercises: test your own implementation against the reference.

Each notebook ends with exercises that ask you to re-implement its key function. Call the
matching checker with your function; it runs your code and selconv_lite's reference
implementation on fixed inputs (seeded, so every student gets the same cases) and prints a
clear PASS / FAIL message saying what differs. The checker returns a :class:`CheckResult`
(truthy on success), so ``assert check_max_mask(my_max_mask)`` also works.

=========================================  ============================================  ==========
checker                                    your function                                 paper
=========================================  ============================================  ==========
:func:`check_feature_map_size`             ``f(image_hw, layer) -> (H, W)``              Sec. 3.1
:func:`check_receptive_field`              ``f(layer) -> size in pixels``                Sec. 3.2.1
:func:`check_max_mask`                     ``f(fmap (H, W, K)) -> bool (H, W)``          Eq. 2
:func:`check_sum_mask`                     ``f(fmap (H, W, K)) -> bool (H, W)``          Eq. 3
:func:`check_temb`                         ``f(X (n, d), C (k, d)) -> (n, k*d)``         Eq. 6
:func:`check_democratic_weights`           ``f(Phi (n, D)) -> weights (n,)``             Sec. 4.3
:func:`check_power_law`                    ``f(x, alpha) -> sign(x) |x|^alpha``          Sec. 4.4
:func:`check_l2_normalize`                 ``f(x) -> x / ||x||`` (rows of a 2-D array)   Sec. 4.1/4.4
=========================================  ============================================  ==========
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = [
    "CheckResult",
    "CheckFailure",
    "run_cases",
    "call_student",
    "compare_output",
    "relu_map",
    "check_feature_map_size",
    "check_receptive_field",
    "check_max_mask",
    "check_sum_mask",
    "check_temb",
    "check_democratic_weights",
    "check_power_law",
    "check_l2_normalize",
]


@dataclass
class CheckResult:
    """Outcome of a checker: ``passed`` and a human-readable ``message``."""

    name: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} [{self.name}] {self.message}"

    def __repr__(self) -> str:
        return str(self)


class CheckFailure(Exception):
    """Raised inside a checker to stop at the first failing case."""


def run_cases(name: str, cases, verbose: bool = True) -> CheckResult:
    """Run ``cases`` (a generator yielding case descriptions, raising CheckFailure on a mismatch)
    and print/return the :class:`CheckResult`."""
    n = 0
    try:
        for _ in cases:
            n += 1
        res = CheckResult(name, True, f"your implementation matches the reference on all {n} cases.")
    except CheckFailure as exc:
        res = CheckResult(name, False, str(exc))
    if verbose:
        print(res)
    return res


def call_student(fn: Callable, *args, case: str = ""):
    """Call the student's function; turn its exceptions into a readable failure."""
    try:
        return fn(*args)
    except Exception as exc:  # the student's code raised: show where
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        raise CheckFailure(f"{case}: your function raised {type(exc).__name__}: {exc} "
                    f"(at line {tb.lineno}: {tb.line!r})") from None


def _as_array(out, case: str, dtype=None) -> np.ndarray:
    try:
        if hasattr(out, "detach"):  # torch tensor
            out = out.detach().cpu().numpy()
        return np.asarray(out, dtype=dtype)
    except Exception as exc:
        raise CheckFailure(f"{case}: could not turn your output ({type(out).__name__}) into an array: {exc}") from None


def compare_output(mine, ref, case: str, rtol=1e-4, atol=1e-5, what="output") -> None:
    """Raise :class:`CheckFailure` naming the case and the first difference if ``mine`` (the
    student's output) differs from ``ref`` in shape, dtype (boolean masks) or value."""
    mine = _as_array(mine, case)
    ref = np.asarray(ref)
    if mine.shape != ref.shape:
        raise CheckFailure(f"{case}: your {what} has shape {mine.shape}, expected {ref.shape}")
    if ref.dtype == bool:
        if mine.dtype != bool:
            raise CheckFailure(f"{case}: your {what} should be a boolean mask, got dtype {mine.dtype}")
        diff = np.argwhere(mine != ref)
        if len(diff):
            ex = ", ".join(f"(y={a}, x={b}): yours {mine[a, b]}, expected {ref[a, b]}"
                           for a, b in diff[:3])
            raise CheckFailure(f"{case}: {len(diff)} of {ref.size} locations differ, e.g. {ex}; "
                        f"you keep {int(mine.sum())} locations, the reference keeps {int(ref.sum())}")
        return
    if not np.all(np.isfinite(mine)):
        raise CheckFailure(f"{case}: your {what} contains NaN or infinity")
    if not np.allclose(mine, ref, rtol=rtol, atol=atol):
        err = np.abs(mine.astype(np.float64) - ref)
        i = np.unravel_index(np.argmax(err), err.shape)
        raise CheckFailure(f"{case}: your {what} differs from the reference (max abs difference {err.max():.3g} at index {tuple(int(v) for v in i)}: "
                    f"yours {mine[i]:.6g}, expected {ref[i]:.6g})")


def relu_map(rng, shape, sparsity=0.5) -> np.ndarray:
    """A ReLU-like feature map: non-negative, with many exact zeros (as after VGG's ReLU)."""
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < sparsity] = 0
    return np.maximum(x, 0)


# --------------------------------------------------------------------------------------------
# notebook 01: feature maps
# --------------------------------------------------------------------------------------------
def check_feature_map_size(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(image_hw, layer) -> (H, W)``: the grid size of ``layer`` for an input image of
    ``image_hw = (height, width)`` pixels (Sec. 3.1: the ``W x H`` set of local features)."""
    from ..features.backbone import LAYERS, feature_map_hw

    def cases():
        for hw in [(512, 384), (1024, 768), (300, 451), (33, 70)]:
            for layer in LAYERS:
                case = f"image {hw[0]}x{hw[1]}, layer {layer}"
                got = call_student(fn, hw, layer, case=case)
                ref = feature_map_hw(hw, layer)
                if tuple(int(v) for v in np.ravel(got)) != tuple(ref):
                    raise CheckFailure(f"{case}: you return {tuple(np.ravel(got))}, expected (H, W) = {ref} "
                                "(each 2x2/2 max-pool floors the size)")
                yield case
    return run_cases("feature map size", cases(), verbose)


def check_receptive_field(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(layer) -> size``: the receptive field side in pixels of one feature of ``layer``
    (pool5 of VGG16: 212, paper Sec. 3.2.1)."""
    from ..features.backbone import LAYERS
    from ..features.receptive_field import receptive_field

    def cases():
        for layer in LAYERS:
            got = call_student(fn, layer, case=f"layer {layer}")
            ref = receptive_field(layer).size
            try:
                ok = int(np.ravel(got)[0]) == ref
            except Exception:
                ok = False
            if not ok:
                raise CheckFailure(f"layer {layer}: you return {got!r}, expected {ref} pixels "
                            "(size += (k - 1) * jump for each layer; jump *= stride)")
            yield layer
    return run_cases("receptive field", cases(), verbose)


# --------------------------------------------------------------------------------------------
# notebook 02: masks
# --------------------------------------------------------------------------------------------
def _mask_cases(fn, ref_fn, name):
    rng = np.random.default_rng(2017)
    shapes = [(7, 9, 16), (24, 32, 64), (5, 5, 8), (16, 12, 512)]

    def cases():
        for i, shape in enumerate(shapes):
            fmap = relu_map(rng, shape, sparsity=0.6 if i % 2 else 0.3)
            if i == 2:
                fmap[:, :, 0] = 0  # an all-zero channel
            case = f"{name}: case {i + 1}, feature map {shape}"
            compare_output(call_student(fn, fmap.copy(), case=case), ref_fn(fmap), case, what="mask")
            yield case
    return cases()


def check_max_mask(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(fmap) -> mask``: the MAX mask of Eq. 2, the location of each channel's maximum.

    ``fmap`` is ``(H, W, K)`` (rows = image y); return a boolean ``(H, W)`` mask. An all-zero
    channel keeps location ``(0, 0)``."""
    from ..method.masks import max_mask

    return run_cases("MAX mask (Eq. 2)", _mask_cases(fn, max_mask, "MAX mask"), verbose)


def check_sum_mask(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(fmap) -> mask``: the SUM mask of Eq. 3, locations whose channel sum is ``>=``
    the median of all sums."""
    from ..method.masks import sum_mask

    return run_cases("SUM mask (Eq. 3)", _mask_cases(fn, sum_mask, "SUM mask"), verbose)


# --------------------------------------------------------------------------------------------
# notebook 03: embeddings
# --------------------------------------------------------------------------------------------
def _reference_temb(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Eq. 6 with the package's T-emb, before its centring and whitening."""
    from ..method.embeddings import triangulation_residuals

    return np.asarray(triangulation_residuals(X, C), dtype=np.float64)


def check_temb(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(X, C) -> Phi``: the triangulation embedding of Eq. 6 *before* centring and
    whitening: for every feature ``x`` (row of ``X``, ``(n, d)``) and centroid ``c_i`` (row of
    ``C``, ``(k, d)``), the block ``(x - c_i) / ||x - c_i||``; blocks concatenated in centroid
    order, giving ``(n, k*d)``."""
    rng = np.random.default_rng(21)

    def cases():
        for n, d, k in [(5, 4, 3), (40, 16, 8), (100, 64, 20)]:
            X = rng.standard_normal((n, d))
            X /= np.linalg.norm(X, axis=1, keepdims=True)
            C = rng.standard_normal((k, d)) * 0.5
            case = f"T-emb: n={n} features, d={d}, |C|={k}"
            compare_output(call_student(fn, X.copy(), C.copy(), case=case), _reference_temb(X, C), case,
                     what="embedding")
            yield case
    return run_cases("T-emb (Eq. 6)", cases(), verbose)


# --------------------------------------------------------------------------------------------
# notebook 04: democratic aggregation
# --------------------------------------------------------------------------------------------
def check_democratic_weights(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(Phi) -> weights``: the democratic aggregation weights of Jegou & Zisserman
    (paper Sec. 4.3, ref. [21]) for the embedded features ``Phi`` ``(n, D)``, as the authors
    compute them: Gram matrix ``G = Phi Phi^T`` with negative entries clipped to 0, weights
    ``lambda = 1``, then 10 Sinkhorn iterations: ``delta = 1 / sqrt(column sums of G)``,
    ``G <- diag(delta) G diag(delta)``, ``lambda <- lambda * delta``.

    Weights are compared after scaling both to sum 1 (only their ratios matter once the
    aggregated vector is L2-normalised)."""
    from ..method.aggregation import democratic_weights

    rng = np.random.default_rng(4)

    def cases():
        for n, D, bursty in [(6, 8, False), (50, 32, True), (200, 64, True)]:
            Phi = rng.standard_normal((n, D))
            if bursty:  # a burst: many near-duplicates of one feature
                Phi[: n // 3] = Phi[0] + 0.05 * rng.standard_normal((n // 3, D))
            Phi /= np.linalg.norm(Phi, axis=1, keepdims=True)
            case = f"democratic weights: n={n}, D={D}{' (with a burst)' if bursty else ''}"
            mine = _as_array(call_student(fn, Phi.copy(), case=case), case, dtype=np.float64).ravel()
            ref = np.asarray(democratic_weights(Phi), dtype=np.float64).ravel()
            if mine.shape != ref.shape:
                raise CheckFailure(f"{case}: you return {mine.shape[0]} weights, expected one per feature ({n})")
            if mine.sum() == 0:
                raise CheckFailure(f"{case}: your weights sum to 0")
            compare_output(mine / mine.sum(), ref / ref.sum(), case, rtol=1e-3, atol=1e-6,
                     what="normalised weights")
            yield case
    return run_cases("democratic weights (Sec. 4.3)", cases(), verbose)


# --------------------------------------------------------------------------------------------
# notebook 05: post-processing
# --------------------------------------------------------------------------------------------
def check_power_law(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(x, alpha) -> sign(x) * |x| ** alpha`` (power-law normalisation, Sec. 4.4)."""
    from ..method.postprocess import power_law

    rng = np.random.default_rng(5)

    def cases():
        for alpha in (0.5, 0.2, 1.0, 0.0):
            x = rng.standard_normal((3, 17))
            x[0, :3] = 0.0
            case = f"power law: alpha={alpha}, x of shape {x.shape} with zeros and negatives"
            compare_output(call_student(fn, x.copy(), alpha, case=case), power_law(x, alpha), case)
            yield case
    return run_cases("power-law normalisation (Sec. 4.4)", cases(), verbose)


def check_l2_normalize(fn: Callable, verbose: bool = True) -> CheckResult:
    """Your ``fn(x) -> x / ||x||``: L2 normalisation of a vector, or of every row of a 2-D
    array (Sec. 4.1 and 4.4). An all-zero row must stay zero (no NaN)."""
    from ..method.postprocess import l2_normalize

    rng = np.random.default_rng(6)

    def cases():
        vec = rng.standard_normal(10)
        mat = rng.standard_normal((4, 10))
        mat[2] = 0.0
        for case, x in [("L2: a vector of 10", vec), ("L2: 4 rows of 10, one all-zero", mat)]:
            compare_output(call_student(fn, x.copy(), case=case), l2_normalize(x), case)
            yield case
    return run_cases("L2 normalisation", cases(), verbose)
