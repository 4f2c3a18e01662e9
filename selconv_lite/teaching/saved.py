"""Functions the tutorial notebooks derive and save (cells tagged ``save``).

GENERATED from the cells of notebooks/NN_*.py tagged ``save`` by

    python -m selconv_lite.teaching.saved_export

generated, do not edit: edit the notebook cell and run the command again (the rules are
in :mod:`selconv_lite.teaching.saved_export`).

Source cells, in order (cell numbers count from 0, markdown cells included):

* ``01_features.py cell 7``: BLOCK_ENDS, my_vgg16_forward
* ``01_features.py cell 10``: my_resized_hw, my_feature_map_hw
* ``01_features.py cell 19``: my_receptive_field
* ``02_masks.py cell 8``: my_max_mask
* ``02_masks.py cell 11``: my_sum_mask
* ``02_masks.py cell 14``: matlab_round, my_sift_mask
* ``02_masks.py cell 17``: MASK_NAMES, my_mask, my_apply_mask
* ``03_embeddings.py cell 5``: my_pca_fit, my_pca_l2
* ``03_embeddings.py cell 16``: my_vlad
* ``03_embeddings.py cell 19``: my_fv
* ``03_embeddings.py cell 22``: my_residuals, my_whitening
* ``03_embeddings.py cell 25``: my_ffa_coefficients, my_ffa_raw
* ``04_aggregation.py cell 11``: my_democratic_weights
* ``05_postprocessing.py cell 11``: my_rotation_fit
* ``05_postprocessing.py cell 14``: post_process
* ``06_full_evaluation.py cell 5``: average_precision
* ``09_capstone.py cell 23``: RMAC_OVERLAP, my_l2, my_mac, my_spoc, my_gem, my_region_starts, my_rmac_regions, my_rmac
"""


import numpy as np
import torch
import torch.nn.functional as F
from selconv_lite.features.backbone import CAFFE_MEAN_RGB, CONV_NAMES
import math
from scipy.special import softmax

__all__ = ['BLOCK_ENDS', 'my_vgg16_forward', 'my_resized_hw', 'my_feature_map_hw', 'my_receptive_field', 'my_max_mask', 'my_sum_mask', 'matlab_round', 'my_sift_mask', 'MASK_NAMES', 'my_mask', 'my_apply_mask', 'my_pca_fit', 'my_pca_l2', 'my_vlad', 'my_fv', 'my_residuals', 'my_whitening', 'my_ffa_coefficients', 'my_ffa_raw', 'my_democratic_weights', 'my_rotation_fit', 'post_process', 'average_precision', 'RMAC_OVERLAP', 'my_l2', 'my_mac', 'my_spoc', 'my_gem', 'my_region_starts', 'my_rmac_regions', 'my_rmac']


# ---- 01_features.py cell 7 ---------------------------------------------------
BLOCK_ENDS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")


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
    return {name: t[0].permute(1, 2, 0).numpy() for name, t in out.items()}


# ---- 01_features.py cell 10 --------------------------------------------------
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


# ---- 01_features.py cell 19 --------------------------------------------------
def my_receptive_field(layer):
    """(size, jump) of `layer`: the recursion above over VGG16's blocks of 2, 2, 3, 3, 3 convs."""
    last = "conv5_3" if layer == "pool5" else layer
    size, jump = 1, 1                                  # one input pixel
    for b, n_convs in enumerate((2, 2, 3, 3, 3), start=1):
        for c in range(1, n_convs + 1):
            size += (3 - 1) * jump                     # 3x3 conv, stride 1
            if f"conv{b}_{c}" == last:                 # + the 2x2/2 max-pool after the layer
                return size + (2 - 1) * jump, 2 * jump
        size, jump = size + (2 - 1) * jump, 2 * jump


# ---- 02_masks.py cell 8 ------------------------------------------------------
def my_max_mask(fmap):
    H, W, K = fmap.shape
    F_cm = fmap.transpose(1, 0, 2).reshape(W * H, K)   # row w * H + h: column-major locations
    first = F_cm.argmax(axis=0)                        # per channel: first maximum (MATLAB max)
    keep = np.zeros(W * H, dtype=bool)
    keep[first] = True                                 # at most K locations
    return keep.reshape(W, H).T


# ---- 02_masks.py cell 11 -----------------------------------------------------
def my_sum_mask(fmap):
    s = fmap.sum(axis=2, dtype=np.float64)             # Sigma^F_(x,y), summed in float64
    return s >= np.median(s)


# ---- 02_masks.py cell 14 -----------------------------------------------------
def matlab_round(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def my_sift_mask(keypoints_xy, image_hw, grid_hw, radius=1):
    (H_I, W_I), (H, W) = image_hw, grid_hw
    kp = np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2) + 1      # 1-based, as VLFeat
    x = matlab_round(kp[:, 0] / (W_I / W)).astype(int)                       # 1-based column
    y = matlab_round(kp[:, 1] / (H_I / H)).astype(int)                       # 1-based row
    mask = np.zeros((H, W), dtype=bool)
    for dy in range(-radius, radius + 1):                                    # the 3x3 neighbourhood
        for dx in range(-radius, radius + 1):
            r, c = y + dy, x + dx
            ok = (r >= 1) & (r <= H) & (c >= 1) & (c <= W)                   # clipped at the border
            mask[r[ok] - 1, c[ok] - 1] = True
    if not mask.any():
        mask[:] = True                                                       # §5.1 fallback
    return mask


# ---- 02_masks.py cell 17 -----------------------------------------------------
MASK_NAMES = ("max", "sum", "sift", "none")


def my_mask(name, f):
    """The mask ``name`` of one image ``f`` (``f.fmap`` (H, W, K), ``f.keypoints``, ``f.image_hw``)."""
    if name == "max":
        return my_max_mask(f.fmap)
    if name == "sum":
        return my_sum_mask(f.fmap)
    if name == "sift":
        return my_sift_mask(f.keypoints, f.image_hw, f.fmap.shape[:2])
    if name == "none":
        return np.ones(f.fmap.shape[:2], dtype=bool)
    raise ValueError(f"unknown mask {name!r}; expected one of {MASK_NAMES}")


def my_apply_mask(fmap, mask):
    """The kept local features of ``fmap`` as rows (n, K), column-major location order."""
    H, W, K = fmap.shape
    return fmap.transpose(1, 0, 2).reshape(W * H, K)[mask.T.reshape(-1)]


# ---- 03_embeddings.py cell 5 -------------------------------------------------
def my_pca_fit(X, d):
    """PCA of the rows of ``X`` (§4.1): the mean and the top-``d`` directions ``M`` (d, K).

    Eigenvectors of the covariance (divided by n), largest eigenvalue first; each direction's
    sign is fixed so that its largest entry is positive."""
    X = np.asarray(X, dtype=np.float64)
    mu = X.mean(axis=0)
    lam, V = np.linalg.eigh((X - mu).T @ (X - mu) / len(X))   # ascending eigenvalues
    M = V[:, ::-1][:, :d].T.copy()                            # (d, K): the top-d directions
    M *= np.sign(M[np.arange(d), np.abs(M).argmax(axis=1)])[:, None]
    return mu, M


def my_pca_l2(X, mu, M):
    """x^(d) = M (x - mu) / ||M (x - mu)||, row by row."""
    Y = (np.asarray(X, dtype=np.float64) - mu) @ M.T
    return Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-300)


# ---- 03_embeddings.py cell 16 ------------------------------------------------
def my_vlad(X, C):
    nearest = ((X[:, None, :] - C[None]) ** 2).sum(axis=2).argmin(axis=1)   # q_i = 1 here
    phi = np.zeros((len(X), len(C), X.shape[1]))
    phi[np.arange(len(X)), nearest] = X - C[nearest]    # x - c_i in block i, zeros elsewhere
    return phi.reshape(len(X), -1)


# ---- 03_embeddings.py cell 19 ------------------------------------------------
def my_fv(X, mu_g, var, w):
    z = (X[:, None, :] - mu_g[None]) / np.sqrt(var)[None]                 # (n, k, d)
    loglik = np.log(w) - 0.5 * np.log(2 * np.pi * var).sum(axis=1) - 0.5 * (z ** 2).sum(axis=2)
    p = softmax(loglik, axis=1)                                          # p_i(x)
    p[p < 1e-6] = 0                                                      # as VLFeat
    u = (p / np.sqrt(w))[:, :, None] * z
    v = (p / np.sqrt(2 * w))[:, :, None] * (z ** 2 - 1)
    return np.concatenate([u.reshape(len(X), -1), v.reshape(len(X), -1)], axis=1)


# ---- 03_embeddings.py cell 22 ------------------------------------------------
def my_residuals(X, C):
    R = X[:, None, :] - C[None]                                          # x - c_i, every i
    return (R / np.linalg.norm(R, axis=2, keepdims=True)).reshape(len(X), -1)


def my_whitening(Z, n_clamp, scale):
    m = Z.mean(axis=0)                                                   # mean removal
    ev, V = np.linalg.eigh((Z - m).T @ (Z - m) / scale)
    ev, V = ev[::-1].copy(), V[:, ::-1]                                  # descending
    ev[-(n_clamp + 1):] = ev[-(n_clamp + 1)]                             # the eigenvalue clamp
    return m, V.T / np.sqrt(ev)[:, None]


# ---- 03_embeddings.py cell 25 ------------------------------------------------
def my_ffa_coefficients(X, B, mu_reg):
    G, one, out = B @ B.T, np.ones(len(B)), []
    for x in X:
        a = (np.abs(x - B).sum(axis=1) ** 3).sum()                       # sum_j ||x - b_j||_1^3
        M = G + a * mu_reg * np.eye(len(B))
        Bx = B @ x
        lam_ = (one @ np.linalg.solve(M, Bx) - 1) / (one @ np.linalg.solve(M, one))
        out.append(np.linalg.solve(M, Bx - lam_ * one))
    return np.array(out)


def my_ffa_raw(X, B, gamma):
    R = X[:, None, :] - B[None]
    R /= np.linalg.norm(R, axis=2, keepdims=True)
    iu, ju = np.triu_indices(X.shape[1])                                 # upper triangle, by rows
    return (gamma[:, :, None] * R[:, :, iu] * R[:, :, ju]).reshape(len(X), -1)


# ---- 04_aggregation.py cell 11 -----------------------------------------------
def my_democratic_weights(Phi, n_iter=10, reg=0.5, trace=None):
    G = np.maximum(Phi @ Phi.T, 0)                      # Gram matrix clipped at 0
    lam = np.ones(len(Phi))
    for it in range(n_iter):
        delta = 1.0 / G.sum(axis=0) ** reg              # column sums ^ -0.5
        G = G * delta[None, :] * delta[:, None]         # scale columns and rows
        lam = lam * delta
        if trace is not None:
            trace.append(lam * (Phi @ (lam @ Phi)))     # contributions after this iteration
    return lam


# ---- 05_postprocessing.py cell 11 --------------------------------------------
def my_rotation_fit(psi_train, rel_tol=1e-10):
    """Rotation normalisation learned as the authors' ``learn_rn.m``: the mean of the held-out
    vectors and a (D, D) rotation ``P`` whose first columns are their covariance eigenvectors,
    largest variance first (those with variance above ``rel_tol`` times the largest), completed
    to an orthonormal basis by QR."""
    psi_train = np.asarray(psi_train, dtype=np.float64)
    n, D = psi_train.shape
    mean = psi_train.mean(axis=0)                                    # psi-bar
    Xc = psi_train - mean
    eigval, eigvec = np.linalg.eigh(Xc.T @ Xc / n)                   # ascending eigenvalues
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]                   # largest variance first
    V = eigvec[:, eigval > rel_tol * eigval[0]]                      # directions that carry variance
    P, _ = np.linalg.qr(np.hstack([V, np.eye(D)[:, :D - V.shape[1]]]))   # complete to a rotation
    return mean, P


# ---- 05_postprocessing.py cell 14 --------------------------------------------
def post_process(psi, mean, P, n_drop, alpha):
    v = (psi - mean) @ P                       # rotation: row i is P^T (psi_i - psi_bar)
    v = v[:, n_drop:]                          # truncation: drop the first n_drop components
    v = np.sign(v) * np.abs(v) ** alpha        # power-law normalisation
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ---- 06_full_evaluation.py cell 5 --------------------------------------------
def average_precision(ranked, ok, junk):                                  # (4), saved for notebook 09
    ranked = ranked[~np.isin(ranked, junk)]                  # junk images leave the ranking
    pos = np.flatnonzero(np.isin(ranked, ok)) + 1            # 1-based ranks of the positives found
    k = np.arange(1, len(pos) + 1)
    before = np.where(pos == 1, 1.0, (k - 1) / np.maximum(pos - 1, 1))   # precision just before (p0 = 1)
    at = k / pos                                                          # precision at the positive
    return float(np.sum((before + at) / 2) / len(ok))


# ---- 09_capstone.py cell 23 --------------------------------------------------
RMAC_OVERLAP = 0.4


def my_l2(V):
    """L2 normalisation of the last axis (a zero vector stays zero)."""
    n = np.linalg.norm(V, axis=-1, keepdims=True)
    return V / np.where(n > 0, n, 1)


def my_mac(fmap):
    """MAC: the maximum of every channel of an (H, W, K) map -> (K,)."""
    return np.asarray(fmap, dtype=np.float64).max(axis=(0, 1))


def my_spoc(fmap):
    """SPoC: sum pooling with a Gaussian centre prior, sigma = 1/3 of the centre-border distance."""
    fmap = np.asarray(fmap, dtype=np.float64)
    H, W, _ = fmap.shape
    sigma = min(H, W) / 2 / 3
    y = np.arange(H) + 0.5 - H / 2                        # cell centres, relative to the map centre
    x = np.arange(W) + 0.5 - W / 2
    prior = np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))
    return np.einsum("hw,hwk->k", prior, fmap)


def my_gem(fmap, p=3.0, eps=1e-6):
    """GeM: (mean over locations of max(x, eps)^p)^(1/p) per channel."""
    fmap = np.asarray(fmap, dtype=np.float64)
    return np.mean(np.maximum(fmap, eps) ** p, axis=(0, 1)) ** (1 / p)


def my_region_starts(n, size, side):
    """First cells of n regions of `side` cells spread evenly over `size` cells (duplicates merged)."""
    half = np.floor(side / 2 - 1)
    step = (size - side) / (n - 1) if n > 1 else 0.0
    starts = np.floor(half + np.arange(n) * step) - half
    return np.unique(np.clip(starts.astype(int), 0, size - side))


def my_rmac_regions(H, W, L=3):
    """R-MAC's square regions (y0, x0, side) of an H x W grid at scales l = 1..L (Tolias et al.)."""
    w = min(H, W)
    steps = (max(H, W) - w) / np.arange(1, 7)             # gap between 2 ... 7 regions of side w
    extra = 1 + int(np.argmin(np.abs((w * w - w * steps) / (w * w) - RMAC_OVERLAP)))
    regions = []
    for l in range(1, L + 1):
        side = int(np.floor(2 * w / (l + 1)))
        if side < 1:
            break
        for y0 in my_region_starts(l + (extra if H > W else 0), H, side):
            for x0 in my_region_starts(l + (extra if W > H else 0), W, side):
                regions.append((int(y0), int(x0), side))
    return regions


def my_rmac(fmap, L=3):
    """R-MAC: L2 of the sum of the L2-normalised MACs of the regions -> (K,)."""
    fmap = np.asarray(fmap, dtype=np.float64)
    H, W, _ = fmap.shape
    R = np.stack([fmap[y:y + s, x:x + s].max(axis=(0, 1)) for y, x, s in my_rmac_regions(H, W, L)])
    return my_l2(my_l2(R).sum(axis=0))
