"""The exercise checkers: a correct independent implementation passes, a typical mistake fails
with a message that says what is wrong."""
import numpy as np
import pytest

from selconv_lite.teaching import checkers


# ---- independent "student" implementations (plain loops / numpy, written from the paper) ----
def student_max_mask(fmap):
    H, W, K = fmap.shape
    mask = np.zeros((H, W), bool)
    for k in range(K):
        y, x = np.unravel_index(np.argmax(fmap[:, :, k]), (H, W))
        mask[y, x] = True
    return mask


def student_sum_mask(fmap):
    s = fmap.sum(axis=2)
    return s >= np.median(s)


def student_fmap_size(image_hw, layer):
    s = 32 if layer == "pool5" or layer.startswith("conv5") else 16
    return image_hw[0] // s, image_hw[1] // s


def student_rf(layer):
    size, jump = 1, 1
    convs = {"conv4_1": 8, "conv4_2": 9, "conv4_3": 10, "conv5_1": 11, "conv5_2": 12,
             "conv5_3": 13, "pool5": 13}[layer]
    pools_before = {1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 3, 9: 3, 10: 3, 11: 4, 12: 4, 13: 4}
    ops = []
    for i in range(1, convs + 1):
        if pools_before[i] > (pools_before[i - 1] if i > 1 else 0):
            ops.append((2, 2))
        ops.append((3, 1))
    ops.append((2, 2))
    for k, s in ops:
        size += (k - 1) * jump
        jump *= s
    return size


def student_temb(X, C):
    blocks = []
    for c in C:
        r = X - c
        blocks.append(r / np.linalg.norm(r, axis=1, keepdims=True))
    return np.concatenate(blocks, axis=1)


def student_democratic(Phi):
    G = Phi @ Phi.T
    G = np.maximum(G, 0)
    lam = np.ones(len(Phi))
    for _ in range(10):
        delta = 1 / np.sqrt(G.sum(axis=0))
        G = G * delta[None, :] * delta[:, None]
        lam = lam * delta
    return lam


def test_masks_pass_and_fail(capsys):
    assert checkers.check_max_mask(student_max_mask)
    assert "PASS [MAX mask (Eq. 2)]" in capsys.readouterr().out
    assert checkers.check_sum_mask(student_sum_mask)
    # typical mistakes: > instead of >=, the mean instead of the median, the min instead of the max
    res = checkers.check_sum_mask(lambda f: f.sum(2) > np.mean(f.sum(2)))
    assert not res and "locations differ" in res.message
    res = checkers.check_max_mask(lambda f: student_max_mask(-f))
    assert not res and "FAIL [MAX mask (Eq. 2)]" in str(res)
    res = checkers.check_max_mask(lambda f: student_max_mask(f).astype(int))
    assert not res and "boolean mask" in res.message
    res = checkers.check_max_mask(lambda f: student_max_mask(f)[:, :-1])
    assert not res and "shape" in res.message


def test_student_exception_is_reported():
    def broken(fmap):
        raise KeyError("oops")
    res = checkers.check_max_mask(broken, verbose=False)
    assert not res and "raised KeyError" in res.message and "line" in res.message


def test_feature_map_and_receptive_field():
    assert checkers.check_feature_map_size(student_fmap_size)
    res = checkers.check_feature_map_size(lambda hw, layer: (round(hw[0] / 32), round(hw[1] / 32)),
                                          verbose=False)
    assert not res and "floors" in res.message
    assert checkers.check_receptive_field(student_rf)
    res = checkers.check_receptive_field(lambda layer: 224, verbose=False)
    assert not res and "expected 212" in res.message


def test_temb():
    pytest.importorskip("selconv_lite.method.embeddings")
    assert checkers.check_temb(student_temb)
    res = checkers.check_temb(lambda X, C: np.concatenate([X - c for c in C], axis=1), verbose=False)
    assert not res and "differs from the reference" in res.message  # VLAD-like residuals are not normalised


def test_democratic_weights():
    pytest.importorskip("selconv_lite.method.aggregation")
    assert checkers.check_democratic_weights(student_democratic)
    res = checkers.check_democratic_weights(lambda Phi: np.ones(len(Phi)), verbose=False)
    assert not res and "normalised weights differs" in res.message  # sum pooling is not democratic


def test_power_law_and_l2():
    pytest.importorskip("selconv_lite.method.postprocess")
    assert checkers.check_power_law(lambda x, a: np.sign(x) * np.abs(x) ** a)
    res = checkers.check_power_law(lambda x, a: np.abs(x) ** a, verbose=False)
    assert not res and "differs from the reference" in res.message
    def l2(x):
        n = np.linalg.norm(x, axis=-1, keepdims=True)
        return x / np.where(n == 0, 1, n)
    assert checkers.check_l2_normalize(l2)
    with np.errstate(invalid="ignore"):  # the naive version divides 0 by 0
        res = checkers.check_l2_normalize(lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True),
                                          verbose=False)
    assert not res and "NaN" in res.message
