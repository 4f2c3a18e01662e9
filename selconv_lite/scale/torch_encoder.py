"""The online stage of a fitted pipeline in torch, on the device that computed the maps.

:class:`TorchEncoder` reads the FITTED state of a
:class:`~selconv_lite.method.pipeline.SelectiveConvPipeline` (``pca_``, ``embedding_``,
``rotation_``, ``truncate_``, ``alpha``, ``mask``, ``aggregation``) and runs, for a batch of
feature maps of one size already on the device (what a batch of equal-size images gives),

mask (MAX Eq. 2, SUM Eq. 3, SIFT Eq. 1 from precomputed keypoints, or none) -> PCA + L2
(Sec. 4.1) -> embedding (T-emb Eq. 6 or VLAD Eq. 5) -> aggregation (democratic with the
authors' Sinkhorn iterations, sum, average or max; Sec. 4.3) -> L2 -> rotation normalisation
and truncation -> power law -> L2 (Sec. 4.4),

so that only the final ``D``-vectors leave the GPU. The arithmetic is the numpy pipeline's,
batched: the masked local features of the ``B`` images are gathered into a zero-padded
``(B, N, K)`` tensor (``N`` the largest count), and padded rows are zero embedded vectors,
which the democratic weights give weight 0 exactly as the numpy code does for a zero vector.
Tie rules are the authors': the MAX mask takes the first maximum in column-major order
(``torch.argmax`` returns the first maximal index), the SUM mask keeps ``sum >= median`` with
the sums in float64 and numpy's median (mean of the two middle values); the SIFT mask is
computed by :func:`selconv_lite.method.masks.sift_mask` itself (on the CPU, from keypoints).

Tolerance against ``pipeline.transform`` (tests/test_torch_encoder.py): float64 to 1e-9, float32
to 1e-4 in any component of the unit-norm final vectors (float32 rounding in another
summation order; the masks are the same).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..method.aggregation import aggregation_name
from ..method.masks import EmptyMaskError, mask_name, sift_mask
from ..method.pipeline import ZeroFeatureMapWarning

__all__ = ["TorchEncoder", "SUPPORTED_EMBEDDINGS"]

#: Embeddings the torch encoder implements (the others raise at construction).
SUPPORTED_EMBEDDINGS = ("temb", "vlad")


def _l2_rows(X):
    """L2 of the last axis; a zero row stays zero (as ``core.utils.l2_normalize``)."""
    n = torch.linalg.vector_norm(X, dim=-1, keepdim=True)
    return X / torch.where(n == 0, torch.ones_like(n), n)


class TorchEncoder:
    """A fitted pipeline's online stage in torch (see the module docstring).

    Parameters
    ----------
    pipeline : SelectiveConvPipeline
        Fitted; its embedding must be T-emb or VLAD (:data:`SUPPORTED_EMBEDDINGS`).
    device : str or torch.device, default "cpu"
    dtype : {"float32", "float64"} or None
        Precision of the computation; default the pipeline's online ``dtype``.

    Raises
    ------
    ValueError
        Unfitted pipeline, or an embedding / aggregation / mask this encoder does not implement.
    """

    def __init__(self, pipeline, device="cpu", dtype=None):
        if not hasattr(pipeline, "rotation_"):
            raise ValueError("TorchEncoder needs a fitted pipeline: call fit(held_out) first")
        emb = pipeline.embedding_
        self.embedding = getattr(emb, "name", type(emb).__name__)
        if self.embedding not in SUPPORTED_EMBEDDINGS:
            raise ValueError(f"TorchEncoder implements the embeddings {SUPPORTED_EMBEDDINGS}; this "
                             f"pipeline uses {self.embedding!r}: use the numpy path "
                             "(pipeline.transform, StreamEncoder backend='numpy')")
        self.aggregation = aggregation_name(pipeline.aggregation)
        self.mask = mask_name(pipeline.mask)
        self.sift_radius = int(pipeline.sift_radius)
        self.alpha = float(pipeline.alpha)
        self.device = torch.device(device)
        dt = np.dtype(pipeline.dtype if dtype is None else dtype)
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.dtype = torch.float32 if dt == np.float32 else torch.float64

        def t(a):
            return torch.as_tensor(np.asarray(a, dtype=dt), device=self.device)

        self.n_features_in = int(pipeline.pca_.n_features_in_)
        self.pca_mean = t(pipeline.pca_.mean_)
        self.pca_components = t(pipeline.pca_.components_)          # (d, K)
        self.centroids = t(emb.centroids_)                           # (k, d)
        if self.embedding == "temb":
            self.emb_mean = t(emb.mean_)                             # (k d,)
            self.emb_projection = t(emb.projection_)                 # (D_emb, k d)
        rot = pipeline.rotation_
        trunc = int(pipeline.truncate_)
        self.rot_mean = t(rot.mean_)
        self.rotation = t(np.asarray(rot.rotation_)[:, trunc:])    # (D_emb, D)
        self.output_dim = int(pipeline.output_dim_)

    # ------------------------------------------------------------------------------ masks
    def masks(self, Fcm, grid_hw, keypoints=None, image_hw=None, names=None):
        """Boolean masks ``(B, W*H)`` in column-major location order for maps ``Fcm``
        ``(B, W*H, K)`` (column-major rows ``w*H + h``)."""
        B, L, K = Fcm.shape
        H, W = grid_hw
        if self.mask == "none":
            return torch.ones(B, L, dtype=torch.bool, device=Fcm.device)
        if self.mask == "max":  # Eq. 2; argmax returns the first maximum = smallest w, then h
            first = Fcm.argmax(dim=1)                                   # (B, K)
            m = torch.zeros(B, L, dtype=torch.bool, device=Fcm.device)
            return m.scatter_(1, first, True)
        if self.mask == "sum":  # Eq. 3 with numpy's median of float64 sums
            s = Fcm.sum(dim=2, dtype=torch.float64)
            srt = s.sort(dim=1).values
            med = srt[:, L // 2] if L % 2 else (srt[:, L // 2 - 1] + srt[:, L // 2]) / 2
            return s >= med[:, None]
        if keypoints is None or image_hw is None:
            raise ValueError("the SIFT mask needs the keypoints and image_hw of every image")
        ms = []
        for b in range(B):
            name = names[b] if names is not None else ""
            ms.append(sift_mask(keypoints[b], image_hw[b], (H, W), radius=self.sift_radius,
                                name=name).T.reshape(-1))
        return torch.as_tensor(np.stack(ms), device=Fcm.device)

    # ------------------------------------------------------------------------------ encode
    def encode_maps(self, maps, keypoints=None, image_hw=None, names=None):
        """Final vectors ``(B, D)`` (this encoder's dtype, on its device) of a batch of maps.

        Parameters
        ----------
        maps : tensor ``(B, K, H, W)``
            One layer's maps of ``B`` images of one size, as the trunk returns them (any float
            dtype, any memory format; cast to this encoder's dtype and device).
        keypoints : list of ``(n, 2)`` arrays, optional
            Only for the SIFT mask: 0-based ``(x, y)`` in the pixels of each image.
        image_hw : list of (int, int), optional
            Only for the SIFT mask: the size of each image the network saw.
        names : list of str, optional
            Used in messages.
        """
        if maps.ndim != 4 or maps.shape[1] != self.n_features_in:
            raise ValueError(f"maps must be (B, K={self.n_features_in}, H, W), got "
                             f"{tuple(maps.shape)}")
        F = maps.to(device=self.device, dtype=self.dtype)
        B, K, H, W = F.shape
        finite = torch.isfinite(F).flatten(1).all(dim=1)
        nonzero = (F != 0).flatten(1).any(dim=1)
        bad = (~finite).nonzero().flatten().tolist()
        if bad:
            who = names[bad[0]] if names is not None else f"#{bad[0]}"
            raise ValueError(f"feature map of image {who!r} contains NaN or inf")
        for b in (~nonzero).nonzero().flatten().tolist():
            who = names[b] if names is not None else f"#{b}"
            warnings.warn(f"feature map of image {who!r} is all zero: its vector carries no "
                          "information about the image", ZeroFeatureMapWarning, stacklevel=2)
        Fcm = F.permute(0, 3, 2, 1).reshape(B, W * H, K)   # column-major locations
        mask = self.masks(Fcm, (H, W), keypoints, image_hw, names)
        counts = mask.sum(dim=1)
        if bool((counts == 0).any()):
            b = int((counts == 0).nonzero()[0, 0])
            raise EmptyMaskError(f"the mask of image {names[b] if names else b!r} keeps no location")
        N = int(counts.max())
        order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices[:, :N]
        X = Fcm.gather(1, order[:, :, None].expand(B, N, K))          # (B, N, K)
        valid = torch.arange(N, device=F.device)[None, :] < counts[:, None]
        Xp = _l2_rows((X - self.pca_mean) @ self.pca_components.T)    # (B, N, d)
        E = self._embed(Xp) * valid[:, :, None]
        y = self._aggregate(E, valid, counts)
        y = _l2_rows(y)
        V = (y - self.rot_mean) @ self.rotation
        if self.alpha == 0:
            V = torch.sign(V)
        elif self.alpha != 1:
            V = torch.sign(V) * V.abs() ** self.alpha
        return _l2_rows(V)

    def _embed(self, Xp):
        B, N, d = Xp.shape
        C = self.centroids
        k = C.shape[0]
        if self.embedding == "temb":  # Eq. 6: normalised residuals, mean removed, whitened
            R = Xp[:, :, None, :] - C
            R = _l2_rows(R).reshape(B, N, k * d) - self.emb_mean
            return R @ self.emb_projection.T
        # VLAD (Eq. 5): the residual to the nearest centroid (ties: lowest index) in its block
        d2 = (C * C).sum(dim=1) - 2 * (Xp @ C.T)
        nn = d2.argmin(dim=2)                                          # (B, N)
        out = torch.zeros(B, N, k, d, dtype=Xp.dtype, device=Xp.device)
        out.scatter_(2, nn[:, :, None, None].expand(B, N, 1, d), (Xp - C[nn])[:, :, None, :])
        return out.reshape(B, N, k * d)

    def _aggregate(self, E, valid, counts):
        if self.aggregation == "sum":
            return E.sum(dim=1)
        if self.aggregation == "average":
            return E.sum(dim=1) / counts[:, None].to(E.dtype)
        if self.aggregation == "max":
            return E.masked_fill(~valid[:, :, None], float("-inf")).max(dim=1).values
        # democratic (Sec. 4.3): the authors' sinkhornm on the clipped Gram matrix, 10
        # iterations, exponent 0.5; a zero (or padded) vector gets weight 0
        E = _l2_rows(E)
        G = (E @ E.transpose(1, 2)).clamp_(min=0)
        lam = torch.ones(E.shape[:2], dtype=E.dtype, device=E.device)
        zero = None
        for _ in range(10):
            s = lam * (G @ lam[:, :, None])[:, :, 0]
            if zero is None:
                zero = s <= 0
            s = torch.where(zero, torch.ones_like(s), s)
            lam = lam * torch.where(zero, torch.zeros_like(s), 1.0 / torch.sqrt(s))
        return (lam[:, None, :] @ E)[:, 0, :]

    def transform(self, images):
        """Final vectors ``(n, D)`` float32 numpy of a list of ImageFeatures (maps of any sizes;
        grouped by size, each group encoded as one batch): the torch counterpart of
        ``pipeline.transform``."""
        if hasattr(images, "fmap"):
            images = [images]
        images = list(images)
        out = np.empty((len(images), self.output_dim), np.float32)
        groups: dict = {}
        for i, im in enumerate(images):
            groups.setdefault(np.shape(im.fmap), []).append(i)
        for idx in groups.values():
            maps = torch.stack([torch.from_numpy(np.asarray(images[i].fmap)) for i in idx])
            v = self.encode_maps(maps.permute(0, 3, 1, 2),
                                 keypoints=[images[i].keypoints for i in idx],
                                 image_hw=[images[i].image_hw for i in idx],
                                 names=[images[i].name for i in idx])
            out[idx] = v.cpu().numpy()
        return out
