"""Scoring a model on a dataset: fit on the held-out split only (paper Sec. 5.1), encode the
queries and the database, rank and score with the dataset's protocol (mAP, and Easy / Medium /
Hard for revisited ground truth), with and without average query expansion; and the online
time per image (Fig. 6).

* :func:`mean_ap` / :func:`score` -- the mAP (and the revisited ones) of given vectors;
* :func:`fit_evaluate_model` -- fit any model (pipeline or baseline) and score it;
* :func:`fit_evaluate` -- the same for a :class:`~selconv_lite.method.pipeline.SelectiveConvPipeline`
  given by its parameters, returning ``(pipeline, mAP)``;
* :func:`online_time_per_image` -- Fig. 6.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from ..method.pipeline import SelectiveConvPipeline
from .splits import transform_chunked

__all__ = ["mean_ap", "score", "fit_evaluate_model", "fit_evaluate", "online_time_per_image"]


def mean_ap(ds, qvecs, dbvecs) -> float:
    """mAP (classic ok/junk protocol, as the paper's Sec. 5.1) of query / database vectors."""
    return float(ds.evaluate(qvecs, dbvecs)["mAP"])


def score(ds, qvecs, dbvecs, qe_k: int = 0) -> dict:
    """mAP (and Easy / Medium / Hard mAP for revisited ground truth) of query / database vectors,
    with the per-query APs they average.

    Returns
    -------
    dict
        ``mAP`` and ``aps`` (per-query APs of the classic protocol, ndarray (n_queries,), whose
        mean is ``mAP``); for revisited ground truth also ``easy`` / ``medium`` / ``hard`` and
        ``easy_aps`` / ``medium_aps`` / ``hard_aps`` (NaN for a query without positives under
        that protocol, left out of its mAP); ``ranks``. Two methods' ``aps`` on the same queries
        give a paired interval: :func:`selconv_lite.experiments.report.paired_line`.
    """
    res = ds.evaluate(qvecs, dbvecs, qe_k=qe_k)
    out = {"mAP": float(res["mAP"]), "aps": np.asarray(res["aps"], dtype=np.float64)}
    for p in ("easy", "medium", "hard"):
        if p in res:
            out[p] = float(res[p]["mAP"])
            out[f"{p}_aps"] = np.asarray(res[p]["aps"], dtype=np.float64)
    out["ranks"] = res["ranks"]
    return out


def fit_evaluate_model(model, ds, feats: Mapping[str, list], qe_k: int = 5) -> dict:
    """Fit ``model`` on ``feats["train"]``, encode queries and database, and score them.

    Parameters
    ----------
    model : SelectiveConvPipeline or a baseline (anything with ``fit(images)`` / ``transform(images)``)
    ds : RetrievalDataset
    feats : {"train", "queries", "db"} -> list of ImageFeatures
    qe_k : int
        Average query expansion with ``qe_k`` neighbours for the ``"+QE"`` numbers (0: none).

    Returns
    -------
    dict
        ``model``, ``D``, ``mAP``, ``mAP_qe`` (when ``qe_k``), ``easy`` / ``medium`` / ``hard``
        (and ``*_qe``) for revisited ground truth, ``ranks``, ``fit_s``, ``online_s_per_image``
        (encoding time of the database, per image), and the per-query APs of :func:`score`:
        ``aps`` (and ``aps_qe`` when ``qe_k``), ``easy_aps`` / ``medium_aps`` / ``hard_aps``
        (and ``easy_aps_qe`` ... when ``qe_k``) for revisited ground truth.
    """
    t0 = time.perf_counter()
    model.fit(feats["train"])
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    db = transform_chunked(model, feats["db"])
    online = (time.perf_counter() - t0) / max(1, len(feats["db"]))
    q = transform_chunked(model, feats["queries"])
    out = {"model": model, "D": int(db.shape[1]), "fit_s": fit_s, "online_s_per_image": online}
    s = score(ds, q, db)
    out.update(s)
    if qe_k:
        sq = score(ds, q, db, qe_k=qe_k)
        out["mAP_qe"], out["aps_qe"] = sq["mAP"], sq["aps"]
        for p in ("easy", "medium", "hard"):
            if p in sq:
                out[f"{p}_qe"] = sq[p]
                out[f"{p}_aps_qe"] = sq[f"{p}_aps"]
    out["qvecs"], out["dbvecs"] = q, db
    return out


def fit_evaluate(ds, feats: Mapping[str, list], **pipeline_kwargs):
    """Fit a pipeline on ``feats["train"]``, encode queries and database, return
    ``(pipeline, mAP)``. ``pipeline_kwargs`` go to :class:`SelectiveConvPipeline`."""
    r = fit_evaluate_model(SelectiveConvPipeline(**pipeline_kwargs), ds, feats, qe_k=0)
    return r["model"], r["mAP"]


def online_time_per_image(model, images: Sequence, repeats: int = 1) -> float:
    """Seconds per image of ``model.transform`` (the online stage, feature extraction excluded,
    as in the paper's Fig. 6); the best of ``repeats`` runs."""
    best = float("inf")
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        model.transform(images)
        best = min(best, time.perf_counter() - t0)
    return best / max(1, len(images))
