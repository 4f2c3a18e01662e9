"""Drivers of the paper's tables and figures (Sec. 5) on any
:class:`~selconv_lite.data.retrieval.RetrievalDataset`, used by notebooks 04-07:

* :func:`table3` / :func:`run_table3` -- Table 3 (masks x the six frameworks of
  :data:`FRAMEWORKS`) at the ``(d, |C|)`` of :data:`TABLE3_CONFIGS`;
* :func:`run_table6` -- Table 6: the framework at several ``D`` next to SPoC, MAC, R-MAC,
  CroW, GeM (:data:`selconv_lite.method.baselines.TABLE6_BASELINES`) on the same features,
  with the paper's published numbers and the difference;
* :func:`run_image_size` and :func:`scaled_max_dim` -- Table 5 (image sizes);
* :func:`run_layers` -- Fig. 5 (layers);
* :func:`explained_vectors` and :func:`alpha_sweep` -- Fig. 3 (the power-law exponent), reusing
  one fitted pipeline instead of refitting.

Every parameter (PCA, codebooks, whitening, rotation) is learned on the held-out split only
(Sec. 5.1), through :mod:`selconv_lite.experiments.scoring`. All numbers are mAP in [0, 1];
the published ones (:mod:`selconv_lite.experiments.published`) are in percent and converted
when compared.

Each mAP comes with the per-query APs it averages, so that any two entries can be compared
with a paired interval (:func:`selconv_lite.experiments.report.paired_line`): ``.aps`` of the
returned :class:`~selconv_lite.experiments.report.ResultTable` (``aps[row][col]``),
:class:`~selconv_lite.experiments.report.MAPDict` (keyed as the mAPs) or
:class:`~selconv_lite.experiments.report.MAPList`, and ``"aps"`` (``"aps_qe"``, ...) of each
Table 6 row.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ..method.baselines import TABLE6_BASELINES, WhiteningFallbackWarning, make_baseline
from ..method.pipeline import TABLE2, SelectiveConvPipeline
from ..method.postprocess import l2_normalize, power_law
from .published import table6_value
from .report import MAPDict, MAPList, ResultTable
from .scoring import fit_evaluate_model, score

__all__ = ["FRAMEWORKS", "TABLE3_CONFIGS", "table3", "run_table3", "run_table6", "run_image_size",
           "scaled_max_dim", "run_layers", "explained_vectors", "alpha_sweep"]

#: The six frameworks of Table 3: (label, embedding, aggregation).
FRAMEWORKS = (("FV + avg", "fv", "average"), ("FV + demo", "fv", "democratic"),
              ("VLAD + sum", "vlad", "sum"), ("VLAD + demo", "vlad", "democratic"),
              ("T-emb + demo", "temb", "democratic"), ("F-FAemb + demo", "ffaemb", "democratic"))

#: ``(d, |C|)`` per embedding for Table 3 at a given ``D``. 4224 is the paper's Table 2; 1024 is
#: the same comparison scaled down (D = 1024 for FV, VLAD and T-emb, 1088 for F-FAemb, whose
#: dimensions move in steps of d(d+1)/2), for held-out sets too small for 4224-D whitenings.
TABLE3_CONFIGS = {
    4224: {k: tuple(v) for k, v in TABLE2.items()},
    1024: {"fv": (32, 16), "vlad": (32, 32), "temb": (32, 36), "ffaemb": (16, 10)},
}


def scaled_max_dim(default_max_dim: int, paper_small: int = 724, paper_large: int = 1024) -> int:
    """The smaller image size of Table 5 for a dataset whose default size is ``default_max_dim``:
    ``724`` for the paper's ``1024``; the same ratio otherwise (``362`` for ``512``)."""
    if int(default_max_dim) == paper_large:
        return paper_small
    return int(round(default_max_dim * paper_small / paper_large))


# ----------------------------------------------------------------------------------------------
# Table 3
# ----------------------------------------------------------------------------------------------
def table3(ds, feats: Mapping[str, list], masks: Sequence[str], configs: Mapping[str, tuple],
           frameworks=FRAMEWORKS, seed: int = 0, progress=None, **pipeline_kwargs) -> dict:
    """The paper's Table 3 (masks x frameworks, mAP) at the ``(d, |C|)`` of ``configs``
    (``{"fv": (d, k), ...}``). PCA and the embedding are learned once per (mask, embedding) and
    shared by its aggregations; only the rotation normalisation is refitted. Other
    ``pipeline_kwargs`` (e.g. ``max_train_features``, ``alpha``) go to every pipeline. Each
    pipeline is fitted and scored by :func:`~selconv_lite.experiments.scoring.fit_evaluate_model`
    (lazy maps are encoded chunk by chunk).

    Returns ``{framework_label: {mask: mAP}}``, a
    :class:`~selconv_lite.experiments.report.MAPDict` whose ``aps[framework_label][mask]`` are
    the per-query APs of each mAP.
    """
    out = MAPDict({label: {} for label, _, _ in frameworks}, aps={label: {} for label, _, _ in frameworks})
    steps = [(m, f) for m in masks for f in frameworks]
    fitted: dict = {}
    for mask, (label, emb, agg) in steps:
        d, k = configs[emb]
        kw = dict(pipeline_kwargs, mask=mask, embedding=emb, aggregation=agg, d=d, n_centroids=k,
                  random_state=seed)
        if (mask, emb) in fitted:  # PCA and embedding shared by the aggregations
            pca, est = fitted[mask, emb]
            kw.update(pca=pca, embedding=est)
        r = fit_evaluate_model(SelectiveConvPipeline(**kw), ds, feats, qe_k=0)
        pipe, m = r["model"], r["mAP"]
        fitted[mask, emb] = (pipe.pca_, pipe.embedding_)
        out[label][mask] = m
        out.aps[label][mask] = r["aps"]
        if progress is not None:
            progress(f"{label:15s} {mask:5s} mAP {m:.3f}")
    return out


def run_table3(ds, feats: Mapping[str, list], D: int = 1024, masks=("max", "sum", "sift", "none"),
               seed: int = 0, alpha: float = 0.5, progress=None) -> ResultTable:
    """Table 3 (Sec. 5.2.1): mAP of the six embedding + aggregation frameworks with each mask.

    :func:`table3` at the ``(d, |C|)`` of :data:`TABLE3_CONFIGS` for ``D`` (PCA and the
    embedding are learned once per (mask, embedding) and shared by its aggregations; each
    framework's rotation normalisation is its own), as a
    :class:`~selconv_lite.experiments.report.ResultTable`. Rows: frameworks; columns: masks
    (printed ``M_MAX``, ``M_SUM``, ``M_SIFT``, ``none``); ``aps[row][col]``: per-query APs.
    """
    if int(D) not in TABLE3_CONFIGS:
        raise ValueError(f"no Table 3 configuration for D={D}; choose one of {sorted(TABLE3_CONFIGS)}")
    res = table3(ds, feats, masks, TABLE3_CONFIGS[int(D)], seed=seed, progress=progress, alpha=alpha)
    labels = [label for label, _, _ in FRAMEWORKS]
    vals = [[res[label][m] for m in masks] for label in labels]
    notes = [] if int(D) == 4224 else ["F-FAemb at D = 1088 (its nearest reachable size)"]
    cols = [{"max": "M_MAX", "sum": "M_SUM", "sift": "M_SIFT", "none": "none"}.get(m, m) for m in masks]
    aps = {label: {c: res.aps[label][m] for c, m in zip(cols, masks)} for label in labels}
    return ResultTable(f"Table 3 on {ds.name}: mAP at D = {D}", labels, cols, vals, row_header="framework",
                       notes=notes, aps=aps)


# ----------------------------------------------------------------------------------------------
# Table 6
# ----------------------------------------------------------------------------------------------
def _baseline_row(name: str, whiten, ds, feats, qe_k: int) -> dict:
    """Fit and score one baseline; label the row with its whitening, training set and dimension.

    ``whiten="auto"``'s fallback warning is kept in the row (``whitening``) and printed by
    :func:`table6_text`. A ``whiten=True`` that the held-out set cannot support raises."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WhiteningFallbackWarning)
        r = fit_evaluate_model(make_baseline(name, whiten), ds, feats, qe_k=qe_k)
    for w in caught:  # anything else is passed on
        if not issubclass(w.category, WhiteningFallbackWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    m = r["model"]
    regions = f", {m.n_train_vectors_} regions" if name == "R-MAC" else ""
    r["train"] = f"train split ({m.n_train_images_} images{regions})"
    if m.whitened_:
        r["label"] = f"{name} (whitened on train split, {m.output_dim_}-D)"
        r["whitening"] = f"PCA-whitening learned on the {r['train']}"
    else:
        r["label"] = f"{name} (L2 only, not whitened, {m.output_dim_}-D)"
        fallback = [str(w.message) for w in caught if issubclass(w.category, WhiteningFallbackWarning)]
        r["whitening"] = fallback[0] if fallback else "not whitened (whiten=False): L2-normalised pooled vectors"
    r.update(method=name if m.whitened_ else f"{name} (no whitening)", dim=TABLE6_BASELINES[name][1], ours=False,
             whitened=bool(m.whitened_))
    return r


def run_table6(ds, feats: Mapping[str, list], ours: Sequence[tuple] = ((512, "sift"), (512, "sum"), (512, "max"),
               (1024, "sift"), (1024, "sum"), (1024, "max"), (4096, "max")),
               baselines: Sequence[str] = ("SPoC", "MAC", "R-MAC", "CroW", "GeM"), qe_k: int = 5,
               seed: int = 0, alpha: float = 0.5, baseline_whitening="auto", skipped: list | None = None,
               progress=None) -> list[dict]:
    """Table 6 (Sec. 5.3): baselines and ``M + T-emb + democratic`` (Table 4 presets) on the same
    features, with and without average query expansion, next to the paper's published mAP.

    Returns
    -------
    list of dict
        One row per method: ``method`` (the paper's name; ``"MAC (no whitening)"`` etc. for a
        baseline that is not whitened), ``label`` (the printed row label; for
        a baseline it says whether it is whitened and its dimension, e.g. ``"R-MAC (whitened on
        train split, 512-D)"`` or ``"MAC (L2 only, not whitened, 512-D)"``), ``dim`` (the
        paper's), ``D`` (measured output size), ``mAP``, ``mAP_qe``, revisited
        ``easy``/``medium``/``hard`` when available, the per-query APs ``aps`` (``aps_qe``;
        ``easy_aps``, ``medium_aps``, ``hard_aps`` and their ``*_qe``) of
        :func:`~selconv_lite.experiments.scoring.fit_evaluate_model`, ``published`` (mAP in [0, 1] or None) and
        ``diff`` (measured minus published), ``online_s_per_image``, and the fitted ``model``.
        Baseline rows also have ``whitened`` (bool), ``train`` (the held-out set the whitening
        is learned on, e.g. ``"train split (44 images, 880 regions)"``) and ``whitening`` (how
        the row was whitened, or why not).

    Notes
    -----
    ``baseline_whitening`` is the baselines' ``whiten`` policy
    (:mod:`selconv_lite.method.baselines`): ``"auto"`` (default) whitens a baseline when its
    training vectors (one per held-out image; R-MAC: one per region) outnumber its dimension
    and span it (true for the paper's held-out sets), and keeps L2-normalised ``K``-D vectors
    otherwise, with the reason in the row's ``whitening``; ``True`` whitens every baseline and
    raises if the held-out set cannot support it; ``False`` whitens none; ``"both"`` gives two
    rows per baseline, L2 only and whitened, and skips a whitening the held-out set cannot
    support (the reason appended to ``skipped``). Only whitened rows at the paper's dimension
    are compared with the published (whitened) numbers.
    A configuration of ours that cannot be learned on the held-out set (too few masked local
    features for its whitening, see
    :meth:`~selconv_lite.method.pipeline.SelectiveConvPipeline.has_enough_features`) is
    skipped, with the reason appended to ``skipped`` when a list is given. Print the rows with
    :func:`~selconv_lite.experiments.report.table6_text`.
    """
    skipped = [] if skipped is None else skipped

    rows = []
    if baseline_whitening == "both":
        variants = (False, True)
    elif isinstance(baseline_whitening, (bool, np.bool_)) or baseline_whitening == "auto":
        variants = (baseline_whitening,)
    else:
        raise ValueError(f"baseline_whitening must be 'auto', True, False or 'both', got {baseline_whitening!r}")
    for name in baselines:
        for whiten in variants:
            try:
                r = _baseline_row(name, whiten, ds, feats, qe_k)
            except ValueError as e:
                if baseline_whitening != "both" or "(whiten=True)" not in str(e):
                    raise
                skipped.append(f"{name} whitened skipped: {e}")
                if progress is not None:
                    progress(skipped[-1])
                continue
            rows.append(r)
            if progress is not None:
                progress(f"{r['label']:40s} mAP {r['mAP']:.3f}")
    for D, mask in ours:
        pipe = SelectiveConvPipeline.from_preset(D=D, mask=mask, random_state=seed, alpha=alpha)
        method = f"M_{mask.upper()}+T-emb+demo"
        ok, why = pipe.has_enough_features(feats["train"])
        if not ok:
            skipped.append(f"{method} at {D}-D skipped: {why}")
            if progress is not None:
                progress(skipped[-1])
            continue
        r = fit_evaluate_model(pipe, ds, feats, qe_k=qe_k)
        r.update(method=method, label=method, dim=int(D), ours=True, mask=mask)
        rows.append(r)
        if progress is not None:
            progress(f"{r['method']:24s} {D:5d}  mAP {r['mAP']:.3f}")
    for r in rows:
        comparable = r["ours"] or (r["whitened"] and r["D"] == r["dim"])
        pub = table6_value(ds.name, r["method"], r["dim"]) if comparable else None
        r["published"] = None if pub is None else pub / 100.0
        r["diff"] = None if pub is None else r["mAP"] - pub / 100.0
    return rows


# ----------------------------------------------------------------------------------------------
# Table 5, Fig. 5, Fig. 3
# ----------------------------------------------------------------------------------------------
def run_image_size(ds, feats_by_size: Mapping[int, Mapping[str, list]], masks=("sum", "max"), D: int = 512,
                   seed: int = 0, alpha: float = 0.5) -> ResultTable:
    """Table 5 (Sec. 5.2.3): ``M + T-emb + democratic`` (Table 4 preset ``D``) for each image size
    ``max(W_I, H_I)`` (keys of ``feats_by_size``) and mask. Rows: sizes (``"724"``); columns:
    masks (``"M_MAX"``); ``aps[row][col]``: per-query APs."""
    sizes = sorted(int(s) for s in feats_by_size)
    cols = [f"M_{m.upper()}" for m in masks]
    res = {(s, m): fit_evaluate_model(SelectiveConvPipeline.from_preset(D=D, mask=m, random_state=seed, alpha=alpha),
                                      ds, feats_by_size[s], qe_k=0) for s in sizes for m in masks}
    return ResultTable(f"Table 5 on {ds.name}: mAP of M + T-emb + demo at D = {D}", [str(s) for s in sizes], cols,
                       [[res[s, m]["mAP"] for m in masks] for s in sizes], row_header="max(W_I, H_I)",
                       aps={str(s): {c: res[s, m]["aps"] for c, m in zip(cols, masks)} for s in sizes})


def run_layers(ds, feats_by_layer: Mapping[str, Mapping[str, list]], mask: str = "max", D: int = 512,
               seed: int = 0, alpha: float = 0.5) -> dict:
    """Fig. 5 (Sec. 5.2.4): mAP of ``M_mask + T-emb + democratic`` at the same ``D`` on the
    features of each layer (keys of ``feats_by_layer``). Returns ``{layer: mAP}``, a
    :class:`~selconv_lite.experiments.report.MAPDict` whose ``aps[layer]`` are the per-query APs."""
    res = {layer: fit_evaluate_model(SelectiveConvPipeline.from_preset(D=D, mask=mask, random_state=seed, alpha=alpha),
                                     ds, f, qe_k=0) for layer, f in feats_by_layer.items()}
    return MAPDict({layer: r["mAP"] for layer, r in res.items()}, aps={layer: r["aps"] for layer, r in res.items()})


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
    ``L2(PN(rotated))`` with rotation normalisation, ``L2(PN(L2(aggregated)))`` without.
    Returns a :class:`~selconv_lite.experiments.report.MAPList` whose ``aps[i]`` are the
    per-query APs at ``alphas[i]``."""
    key = "rotated" if rotation else "aggregated"
    res = MAPList()
    for a in alphas:
        def post(V):
            V = V if rotation else l2_normalize(V)
            return l2_normalize(power_law(V, a))
        s = score(ds, post(q[key]), post(db[key]))
        res.append(s["mAP"])
        res.aps.append(s["aps"])
    return res
