"""Small experiment drivers shared by notebooks 03-05 (paper Sec. 4-5): fit a
:class:`~selconv_lite.method.pipeline.SelectiveConvPipeline` on the held-out set, encode queries and
database, score with the dataset's protocol, and the cheap variants of Table 3, Fig. 3 and the
post-processing ablations (reusing fitted parts instead of refitting).

The held-out rule of Sec. 5.1 is respected everywhere: every parameter (PCA, codebooks,
whitening, rotation) is learned on ``feats["train"]`` only.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..method.pipeline import SelectiveConvPipeline
from ..method.postprocess import l2_normalize, power_law
from ..core.utils import l2_normalize_rows

__all__ = ["mean_ap", "fit_evaluate", "table3", "FRAMEWORKS", "explained_vectors",
           "alpha_sweep", "sift_features"]

#: The six frameworks of Table 3: (label, embedding, aggregation).
FRAMEWORKS = (("FV + avg", "fv", "average"), ("FV + demo", "fv", "democratic"),
              ("VLAD + sum", "vlad", "sum"), ("VLAD + demo", "vlad", "democratic"),
              ("T-emb + demo", "temb", "democratic"), ("F-FAemb + demo", "ffaemb", "democratic"))


def mean_ap(ds, qvecs, dbvecs) -> float:
    """mAP (classic ok/junk protocol, as the paper's Sec. 5.1) of query / database vectors."""
    return float(ds.evaluate(qvecs, dbvecs)["mAP"])


def fit_evaluate(ds, feats: Mapping[str, list], **pipeline_kwargs):
    """Fit a pipeline on ``feats["train"]``, encode queries and database, return
    ``(pipeline, mAP)``. ``pipeline_kwargs`` go to :class:`SelectiveConvPipeline`."""
    return _fit_score(ds, feats, SelectiveConvPipeline(**pipeline_kwargs))


def _fit_score(ds, feats, pipe):
    pipe.fit(feats["train"])
    return pipe, mean_ap(ds, pipe.transform(feats["queries"]), pipe.transform(feats["db"]))


def table3(ds, feats: Mapping[str, list], masks: Sequence[str], configs: Mapping[str, tuple],
           frameworks=FRAMEWORKS, seed: int = 0, progress=None, fit_score=None,
           **pipeline_kwargs) -> dict:
    """The paper's Table 3 (masks x frameworks, mAP) at the ``(d, |C|)`` of ``configs``
    (``{"fv": (d, k), ...}``). PCA and the embedding are learned once per (mask, embedding) and
    shared by its aggregations; only the rotation normalisation is refitted. Other
    ``pipeline_kwargs`` (e.g. ``max_train_features``, ``alpha``) go to every pipeline.

    ``fit_score(pipeline) -> (fitted pipeline, mAP)`` fits on the held-out split and scores;
    the default is :func:`fit_evaluate`'s (the full evaluation passes its chunked one).

    Returns ``{framework_label: {mask: mAP}}``.
    """
    if fit_score is None:
        def fit_score(pipe):
            return _fit_score(ds, feats, pipe)
    out: dict = {label: {} for label, _, _ in frameworks}
    steps = [(m, f) for m in masks for f in frameworks]
    fitted: dict = {}
    for mask, (label, emb, agg) in steps:
        d, k = configs[emb]
        kw = dict(pipeline_kwargs, mask=mask, embedding=emb, aggregation=agg, d=d, n_centroids=k,
                  random_state=seed)
        if (mask, emb) in fitted:  # PCA and embedding shared by the aggregations
            pca, est = fitted[mask, emb]
            kw.update(pca=pca, embedding=est)
        pipe, m = fit_score(SelectiveConvPipeline(**kw))
        fitted[mask, emb] = (pipe.pca_, pipe.embedding_)
        out[label][mask] = m
        if progress is not None:
            progress(f"{label:15s} {mask:5s} mAP {m:.3f}")
    return out


def explained_vectors(pipe: SelectiveConvPipeline, images: Sequence) -> dict[str, np.ndarray]:
    """For each image the aggregated vector (before any post-processing) and the rotated,
    truncated vector (before the power law): ``{"aggregated": (n, D_emb), "rotated": (n, D)}``."""
    agg, rot = [], []
    for im in images:
        info = pipe.explain(im)
        agg.append(info["aggregated"])
        rot.append(info["rotated"])
    return {"aggregated": np.stack(agg), "rotated": np.stack(rot)}


def alpha_sweep(ds, q: Mapping[str, np.ndarray], db: Mapping[str, np.ndarray], alphas: Sequence[float],
                rotation: bool = True) -> list[float]:
    """mAP for each power-law exponent ``alpha`` (Fig. 3) from :func:`explained_vectors` outputs:
    ``L2(PN(rotated))`` with rotation normalisation, ``L2(PN(L2(aggregated)))`` without."""
    key = "rotated" if rotation else "aggregated"
    res = []
    for a in alphas:
        def post(V):
            V = V if rotation else l2_normalize_rows(V, copy=True)
            return l2_normalize(power_law(V, a))
        res.append(mean_ap(ds, post(q[key]), post(db[key])))
    return res


def sift_features(paths, max_dim: int, crops=None, root: bool = True) -> list:
    """SIFT descriptors of each image as :class:`~selconv_lite.core.types.ImageFeatures` whose "map"
    is ``(n, 1, 128)`` -- so the same pipeline (with ``mask="none"``) embeds and aggregates
    them: the ``SIFT + phi_Delta + psi_d`` baseline of Fig. 3. ``root=True`` applies RootSIFT
    (L1 normalisation then square root). Images with no keypoint get one zero descriptor."""
    import cv2

    from ..features.extraction import crop_image, load_image, resize_max_dim
    from ..core.types import ImageFeatures

    sift = cv2.SIFT_create()
    crops = [None] * len(paths) if crops is None else list(crops)
    out = []
    for p, c in zip(paths, crops):
        img = load_image(p)
        if c is not None:
            img = crop_image(img, c)
        gray = np.asarray(resize_max_dim(img, max_dim).convert("L"))
        kps, desc = sift.detectAndCompute(gray, None)
        if desc is None or len(desc) == 0:
            desc = np.zeros((1, 128), np.float32)
        desc = desc.astype(np.float32)
        if root:
            desc = np.sqrt(desc / np.maximum(desc.sum(axis=1, keepdims=True), 1e-12))
        out.append(ImageFeatures(fmap=desc[:, None, :], image_hw=gray.shape, name=str(p)))
    return out
