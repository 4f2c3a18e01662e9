"""Drivers of the full evaluation (notebook 06) and of the fine-tuned backbones (notebook 07):
the paper's Sec. 5 experiments on any :class:`~selconv_lite.data.retrieval.RetrievalDataset`.

* :func:`split_features` -- feature maps of the held-out / query / database splits for several
  layers from ONE pass through the shared feature cache;
* :func:`run_table3` -- Table 3 (masks x frameworks) at a chosen ``D`` (:data:`TABLE3_CONFIGS`);
* :func:`fit_evaluate_model` -- fit any model (pipeline or baseline) on the held-out split and
  score it with and without average query expansion (and Easy / Medium / Hard when the ground
  truth is revisited);
* :func:`run_table6` -- Table 6: the framework at several ``D`` next to SPoC, MAC, R-MAC, CroW,
  GeM on the same features, with the paper's published numbers and the difference;
* :func:`online_time_per_image` -- Fig. 6 (online time per image, feature extraction excluded);
* :class:`ResultTable` -- a small table that prints with the best entry of each column marked.

Every parameter (PCA, codebooks, whitening, rotation) is learned on the held-out split only
(Sec. 5.1). All numbers are mAP in [0, 1] here; the published ones (:mod:`selconv_lite.experiments.published`)
are in percent and converted when compared.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Mapping

import numpy as np

from ..method.pipeline import TABLE2, SelectiveConvPipeline

__all__ = [
    "TABLE3_CONFIGS",
    "BASELINE_DIMS",
    "ResultTable",
    "split_features",
    "series_extra_layers",
    "LazyMaps",
    "transform_chunked",
    "run_table3",
    "fit_evaluate_model",
    "run_table6",
    "online_time_per_image",
    "learnable",
    "training_groups",
    "score",
    "scaled_max_dim",
    "run_image_size",
    "run_layers",
]

#: ``(d, |C|)`` per embedding for Table 3 at a given ``D``. 4224 is the paper's Table 2; 1024 is
#: the same comparison scaled down (D = 1024 for FV, VLAD and T-emb, 1088 for F-FAemb, whose
#: dimensions move in steps of d(d+1)/2), for held-out sets too small for 4224-D whitenings.
TABLE3_CONFIGS = {
    4224: {k: tuple(v) for k, v in TABLE2.items()},
    1024: {"fv": (32, 16), "vlad": (32, 32), "temb": (32, 36), "ffaemb": (16, 10)},
}

#: Output dimension of each baseline in Table 6 (K = 512 of pool5, SPoC 256 as in the paper).
BASELINE_DIMS = {"SPoC": 256, "MAC": 512, "R-MAC": 512, "CroW": 512, "GeM": 512}


def scaled_max_dim(default_max_dim: int, paper_small: int = 724, paper_large: int = 1024) -> int:
    """The smaller image size of Table 5 for a dataset whose default size is ``default_max_dim``:
    ``724`` for the paper's ``1024``; the same ratio otherwise (``362`` for ``512``)."""
    if int(default_max_dim) == paper_large:
        return paper_small
    return int(round(default_max_dim * paper_small / paper_large))


# ----------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------
def best_per_column(table) -> np.ndarray:
    """Boolean mask of the maxima of each column of ``table`` (NaN ignored; ties all marked)."""
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"expected a 2-D table, got shape {t.shape}")
    out = np.zeros(t.shape, dtype=bool)
    for j in range(t.shape[1]):
        col = t[:, j]
        if np.all(np.isnan(col)):
            continue
        out[:, j] = col == np.nanmax(col)
    return out



@dataclass
class ResultTable:
    """A table of numbers (rows x columns) that marks the best value of each column.

    ``values`` may hold NaN for missing entries. :meth:`to_text` prints a fixed-width table
    with ``*`` after the best entry of each column (the paper's bold); :meth:`to_markdown`
    writes the same with ``**bold**``.
    """

    title: str
    rows: list
    cols: list
    values: np.ndarray
    row_header: str = ""
    ndigits: int = 3
    notes: list = field(default_factory=list)

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.shape != (len(self.rows), len(self.cols)):
            raise ValueError(f"values {self.values.shape} do not match {len(self.rows)} rows x {len(self.cols)} cols")

    def best(self) -> np.ndarray:
        """Boolean mask of the best (largest) entry of each column (ties all marked)."""
        return best_per_column(np.round(self.values, self.ndigits))

    def best_overall(self):
        """``(row, col, value)`` of the largest entry."""
        i, j = np.unravel_index(np.nanargmax(self.values), self.values.shape)
        return self.rows[i], self.cols[j], float(self.values[i, j])

    def _cell(self, v) -> str:
        return "-" if not np.isfinite(v) else f"{v:.{self.ndigits}f}"

    def to_text(self) -> str:
        best = self.best()
        w0 = max([len(self.row_header)] + [len(str(r)) for r in self.rows]) + 2
        wc = max([self.ndigits + 4] + [len(str(c)) for c in self.cols]) + 2
        lines = [self.title, str(self.row_header).ljust(w0) + "".join(str(c).rjust(wc) for c in self.cols)]
        for i, r in enumerate(self.rows):
            cells = [(self._cell(v) + ("*" if best[i, j] else " ")).rjust(wc)
                     for j, v in enumerate(self.values[i])]
            lines.append(str(r).ljust(w0) + "".join(cells))
        lines.append("(* best of the column)" + "".join(f"; {n}" for n in self.notes))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        best = self.best()
        out = [f"**{self.title}**", "", "| " + " | ".join([self.row_header or " "] + [str(c) for c in self.cols]) + " |",
               "|" + "---|" * (len(self.cols) + 1)]
        for i, r in enumerate(self.rows):
            cells = [f"**{self._cell(v)}**" if best[i, j] else self._cell(v) for j, v in enumerate(self.values[i])]
            out.append("| " + " | ".join([str(r)] + cells) + " |")
        return "\n".join(out)

    def as_dict(self) -> dict:
        """``{row: {col: value}}`` (NaN as None), JSON-ready."""
        return {str(r): {str(c): (None if not np.isfinite(v) else float(v)) for c, v in zip(self.cols, row)}
                for r, row in zip(self.rows, self.values)}

    def __str__(self):
        return self.to_text()


# ----------------------------------------------------------------------------------------------
# features
# ----------------------------------------------------------------------------------------------
class LazyMaps(Sequence):
    """A read-only list of feature maps that loads each one from the feature cache on access.

    For the real benchmarks (thousands of 1024-px images), where the maps of a split do not fit
    in memory; :func:`fit_evaluate_model` encodes such a list chunk by chunk.
    """

    def __init__(self, cache, paths, crops, layer):
        self.cache, self.paths, self.layer = cache, list(paths), layer
        self.crops = list(crops) if crops is not None else [None] * len(self.paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return LazyMaps(self.cache, self.paths[i], self.crops[i], self.layer)
        return self.cache.load(self.paths[i], self.crops[i], self.layer)

    def __repr__(self):
        return f"LazyMaps({len(self)} images, layer={self.layer!r})"


def series_extra_layers(ds, max_dim: int | None, weights="caffe-onnx") -> tuple[str, ...]:
    """The layers cached together with any layer the notebook series asks for (one forward pass).

    On the embedded dataset (``ds.name == "default"``) with the default weights, at the series'
    image size, :func:`~selconv_lite.features.cache.series_layers`; else none (a side pass, e.g.
    Table 5's smaller size, stores only what it reads). The series' size is env
    ``SELCONV_SERIES_MAX_DIM`` when set (the series runner's ``--max-dim``), else the dataset's
    ``default_max_dim``.
    """
    from ..features.cache import series_layers, series_max_dim

    max_dim = int(max_dim or ds.default_max_dim)
    series = (getattr(ds, "name", None) == "default" and max_dim == series_max_dim(ds.default_max_dim)
              and isinstance(weights, str) and weights == "caffe-onnx")
    return series_layers() if series else ()


def split_features(ds, layers=("pool5",), max_dim: int | None = None, cache_dir=None,
                   weights="caffe-onnx", splits=("train", "queries", "db"), progress: bool = True,
                   dtype: str = "float32", lazy: bool | None = None, max_train_images: int | None = None,
                   seed: int = 0, extra_layers=None) -> dict:
    """Feature maps of a dataset's splits for several layers, through the shared feature cache.

    All ``layers`` come from one forward pass per image (an image is only pushed through the
    network if one of its entries is missing). Queries are cropped with their boxes (Sec. 5.1).

    Parameters
    ----------
    extra_layers : sequence of str, optional
        Layers also computed and cached in that forward pass (see
        :class:`~selconv_lite.features.cache.FeatureCache`), so that a later call asking for
        them does not run the trunk again. Default: :func:`series_extra_layers` (the layers the
        notebook series reads, on the embedded dataset at the series' size with the default
        weights; else none).
    lazy : bool, optional
        Return :class:`LazyMaps` (loaded on access) instead of lists; default: lazy when the
        dataset has more than 2000 images in all.
    max_train_images : int, optional
        Use a seeded random subset of at most this many held-out images (memory: fitting holds
        the held-out maps in memory, about 1.5 MB per 1024-px pool5 map). Default: all.

    Returns
    -------
    dict
        ``{layer: {"train": [...], "queries": [...], "db": [...]}}`` of ImageFeatures.
    """
    from ..features.cache import FeatureCache

    if isinstance(layers, str):
        layers = (layers,)
    max_dim = max_dim or ds.default_max_dim
    if extra_layers is None:
        extra_layers = series_extra_layers(ds, max_dim, weights)
    cache = FeatureCache(cache_dir, weights=weights, layers=tuple(layers), max_dim=max_dim, dtype=dtype,
                         extra_layers=extra_layers)
    train = list(ds.train_images)
    if max_train_images is not None and len(train) > int(max_train_images):
        keep = np.sort(np.random.RandomState(seed).choice(len(train), int(max_train_images), replace=False))
        train = [train[i] for i in keep]
    lists = {"train": (train, None), "queries": (list(ds.queries), list(ds.query_boxes)),
             "db": (list(ds.images), None)}
    for s in splits:
        if s not in lists:
            raise ValueError(f"unknown split {s!r}; choose from {list(lists)}")
    paths = [p for s in splits for p in lists[s][0]]
    crops = [c for s in splits for c in (lists[s][1] or [None] * len(lists[s][0]))]
    if lazy is None:
        lazy = len(paths) > 2000
    cache.extract_all(paths, crops, progress=progress)
    out = {}
    for layer in layers:
        out[layer] = {}
        for s in splits:
            p, c = lists[s]
            lm = LazyMaps(cache, p, c, layer)
            out[layer][s] = lm if (lazy and s != "train") else list(lm)
    return out


def transform_chunked(model, images, chunk: int = 256) -> np.ndarray:
    """``model.transform`` of a (possibly lazy) list of maps, ``chunk`` images at a time."""
    if not isinstance(images, LazyMaps):
        return model.transform(images)
    parts = [model.transform(list(images[s:s + chunk])) for s in range(0, len(images), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def training_groups(ds, min_overlap: float = 0.5) -> np.ndarray | None:
    """Which held-out (training) images match, when the dataset records it, else None.

    The embedded default set ships ``manifest.csv`` (next to its ground truth): its ``source``
    column names the photo each training image was cut from and ``region`` the normalised box
    ``[x0, y0, x1, y1]`` of that photo it shows. Two training images *match* when they come from
    the same photo and their regions overlap by at least ``min_overlap`` of the smaller one;
    regions of one photo that overlap less (but not zero) are *unknown* (used neither as
    positives nor as negatives); everything else does not match.

    Returns
    -------
    np.ndarray or None
        ``(n, n)`` int8 relation matrix (1 / 0 / -1, see
        :func:`selconv_lite.experiments.finetune.relation_matrix`), used only to draw training pairs for the
        offline fine-tuning (notebook 07). The paper's benchmarks have no such labels: the
        fine-tuning then uses crops of one image as positives.
    """
    import csv
    import json
    from pathlib import Path

    gnd_path = ds.info.get("gnd_path") if hasattr(ds, "info") else None
    if not gnd_path:
        return None
    manifest = Path(gnd_path).with_name("manifest.csv")
    if not manifest.is_file():
        return None
    with open(manifest, newline="") as f:
        rows = {row["file"]: row for row in csv.DictReader(f) if row.get("file")}
    names = [Path(p).name for p in ds.train_images]
    if not all(n in rows for n in names):
        return None
    src = [rows[n].get("source") or n for n in names]
    boxes = []
    for n in names:
        try:
            b = json.loads(rows[n].get("region") or "null")
        except ValueError:
            b = None
        boxes.append(np.asarray(b if b else [0.0, 0.0, 1.0, 1.0], dtype=np.float64))
    k = len(names)
    R = np.zeros((k, k), np.int8)
    for i in range(k):
        for j in range(k):
            if i == j or src[i] != src[j]:
                continue
            a, b = boxes[i], boxes[j]
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
            ov = iw * ih / smaller if smaller > 0 else 0.0
            R[i, j] = 1 if ov >= min_overlap else (-1 if ov > 0 else 0)
    np.fill_diagonal(R, -1)
    return R


# ----------------------------------------------------------------------------------------------
# scoring
# ----------------------------------------------------------------------------------------------
def score(ds, qvecs, dbvecs, qe_k: int = 0) -> dict:
    """mAP (and Easy / Medium / Hard mAP for revisited ground truth) of query / database vectors."""
    res = ds.evaluate(qvecs, dbvecs, qe_k=qe_k)
    out = {"mAP": float(res["mAP"])}
    for p in ("easy", "medium", "hard"):
        if p in res:
            out[p] = float(res[p]["mAP"])
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
        (encoding time of the database, per image).
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
        out["mAP_qe"] = sq["mAP"]
        for p in ("easy", "medium", "hard"):
            if p in sq:
                out[f"{p}_qe"] = sq[p]
    out["qvecs"], out["dbvecs"] = q, db
    return out


# ----------------------------------------------------------------------------------------------
# Table 3
# ----------------------------------------------------------------------------------------------
def run_table3(ds, feats: Mapping[str, list], D: int = 1024, masks=("max", "sum", "sift", "none"),
               seed: int = 0, alpha: float = 0.5, progress=None) -> ResultTable:
    """Table 3 (Sec. 5.2.1): mAP of the six embedding + aggregation frameworks with each mask.

    :func:`selconv_lite.experiments.tables.table3` at the ``(d, |C|)`` of :data:`TABLE3_CONFIGS`
    for ``D`` (PCA and the embedding are learned once per (mask, embedding) and shared by its
    aggregations; each framework's rotation normalisation is its own), scored by
    :func:`fit_evaluate_model` (chunked encoding of lazy maps). Rows: frameworks; columns: masks.
    """
    from .tables import FRAMEWORKS, table3

    if int(D) not in TABLE3_CONFIGS:
        raise ValueError(f"no Table 3 configuration for D={D}; choose one of {sorted(TABLE3_CONFIGS)}")

    def fit_score(pipe):
        r = fit_evaluate_model(pipe, ds, feats, qe_k=0)
        return r["model"], r["mAP"]

    res = table3(ds, feats, masks, TABLE3_CONFIGS[int(D)], seed=seed, progress=progress,
                 fit_score=fit_score, alpha=alpha)
    labels = [label for label, _, _ in FRAMEWORKS]
    vals = [[res[label][m] for m in masks] for label in labels]
    notes = [] if int(D) == 4224 else ["F-FAemb at D = 1088 (its nearest reachable size)"]
    return ResultTable(f"Table 3 on {ds.name}: mAP at D = {D}", labels,
                       [{"max": "M_MAX", "sum": "M_SUM", "sift": "M_SIFT", "none": "none"}.get(m, m) for m in masks],
                       vals, row_header="framework", notes=notes)


# ----------------------------------------------------------------------------------------------
# Table 6
# ----------------------------------------------------------------------------------------------
def _baseline(name: str, whiten="auto"):
    """The Table 6 baseline ``name`` with the whitening policy ``whiten`` (``"auto"``, True or
    False; see :mod:`selconv_lite.method.baselines`): SPoC whitened to the paper's 256-D, the
    others to ``K`` (512 for VGG16 pool5)."""
    from ..method.baselines import CroW, GeM, MAC, RMAC, SPoC

    cls = {"SPoC": SPoC, "MAC": MAC, "R-MAC": RMAC, "CroW": CroW, "GeM": GeM}[name]
    return cls(n_components=BASELINE_DIMS[name] if name == "SPoC" else None, whiten=whiten)


def _baseline_row(name: str, whiten, ds, feats, qe_k: int) -> dict:
    """Fit and score one baseline; label the row with its whitening, training set and dimension.

    ``whiten="auto"``'s fallback warning is kept in the row (``whitening``) and printed by
    :func:`table6_text`. A ``whiten=True`` that the held-out set cannot support raises."""
    import warnings

    from ..method.baselines import WhiteningFallbackWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WhiteningFallbackWarning)
        r = fit_evaluate_model(_baseline(name, whiten), ds, feats, qe_k=qe_k)
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
    r.update(method=name if m.whitened_ else f"{name} (no whitening)", dim=BASELINE_DIMS[name], ours=False,
             whitened=bool(m.whitened_))
    return r


def learnable(pipe: SelectiveConvPipeline, train: Sequence) -> tuple[bool, str]:
    """Whether ``pipe``'s T-emb / F-FAemb whitening can be learned on ``train``: it needs at least
    as many masked local features as the embedded dimension (else the covariance is singular).
    Returns ``(ok, reason)``."""
    from ..method.embeddings import embedding_class
    from ..method.masks import compute_mask

    if not embedding_class(pipe.embedding).whitened:
        return True, ""
    n = sum(int(compute_mask(pipe.mask, im, radius=pipe.sift_radius).sum()) for im in train)
    De = pipe.embedded_dim()
    if n < De:
        return False, (f"the held-out set has {n} masked local features, fewer than the "
                       f"{De} dimensions of the embedding to whiten")
    return True, ""


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
        ``easy``/``medium``/``hard`` when available, ``published`` (mAP in [0, 1] or None) and
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
    A configuration of ours whose whitening cannot be learned on the held-out set (fewer masked
    local features than embedded dimensions, see :func:`learnable`) is skipped, with the
    reason appended to ``skipped`` when a list is given.
    """
    from .published import table6_value

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
        ok, why = learnable(pipe, feats["train"])
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


def table6_text(rows: Sequence[dict], title: str) -> str:
    """Fixed-width text of :func:`run_table6`'s rows (best mAP and best mAP+QE marked ``*``)."""
    has_rev = any("easy" in r for r in rows)
    has_pub = any(r.get("published") is not None for r in rows)
    cols = ["dim", "D", "mAP", "+QE"] + (["E", "M", "H"] if has_rev else []) + (["paper", "diff"] if has_pub else [])
    best = max(r["mAP"] for r in rows)
    best_qe = max(r.get("mAP_qe", -1) for r in rows)
    w0 = max(len(r.get("label", r["method"])) for r in rows) + 2
    lines = [title, "method".ljust(w0) + "".join(c.rjust(8) for c in cols)]
    for r in rows:
        cells = [f"{r['dim']:8d}", f"{r['D']:8d}",
                 (f"{r['mAP']:.3f}" + ("*" if r["mAP"] == best else " ")).rjust(8),
                 (f"{r['mAP_qe']:.3f}" + ("*" if r.get("mAP_qe") == best_qe else " ")).rjust(8) if "mAP_qe" in r else "-".rjust(8)]
        if has_rev:
            cells += [f"{r[p]:8.3f}" if p in r else "-".rjust(8) for p in ("easy", "medium", "hard")]
        if has_pub:
            cells += [f"{r['published']:8.3f}" if r.get("published") is not None else "-".rjust(8),
                      f"{r['diff']:+8.3f}" if r.get("diff") is not None else "-".rjust(8)]
        lines.append(r.get("label", r["method"]).ljust(w0) + "".join(cells))
    lines.append("(dim: the paper's dimensionality; D: measured; * best of the column)")
    base = [r for r in rows if not r["ours"] and "whitening" in r]
    if base:
        lines.append("baselines' whitening:")
        lines += [f"  {r['label']}: {r['whitening']}" for r in base]
    return "\n".join(lines)


__all__.append("table6_text")


# ----------------------------------------------------------------------------------------------
# Fig. 6
# ----------------------------------------------------------------------------------------------
def online_time_per_image(model, images: Sequence, repeats: int = 1) -> float:
    """Seconds per image of ``model.transform`` (the online stage, feature extraction excluded,
    as in the paper's Fig. 6); the best of ``repeats`` runs."""
    best = float("inf")
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        model.transform(images)
        best = min(best, time.perf_counter() - t0)
    return best / max(1, len(images))


# ----------------------------------------------------------------------------------------------
# Table 5 and Fig. 5: smaller sweeps
# ----------------------------------------------------------------------------------------------
def run_image_size(ds, feats_by_size: Mapping[int, Mapping[str, list]], masks=("sum", "max"), D: int = 512,
                   seed: int = 0, alpha: float = 0.5) -> ResultTable:
    """Table 5 (Sec. 5.2.3): ``M + T-emb + democratic`` (Table 4 preset ``D``) for each image size
    ``max(W_I, H_I)`` (keys of ``feats_by_size``) and mask. Rows: sizes; columns: masks."""
    sizes = sorted(int(s) for s in feats_by_size)
    vals = [[fit_evaluate_model(SelectiveConvPipeline.from_preset(D=D, mask=m, random_state=seed, alpha=alpha), ds,
                                feats_by_size[s], qe_k=0)["mAP"] for m in masks] for s in sizes]
    return ResultTable(f"Table 5 on {ds.name}: mAP of M + T-emb + demo at D = {D}", [str(s) for s in sizes],
                       [f"M_{m.upper()}" for m in masks], vals, row_header="max(W_I, H_I)")


def run_layers(ds, feats_by_layer: Mapping[str, Mapping[str, list]], mask: str = "max", D: int = 512,
               seed: int = 0, alpha: float = 0.5) -> dict:
    """Fig. 5 (Sec. 5.2.4): mAP of ``M_mask + T-emb + democratic`` at the same ``D`` on the
    features of each layer (keys of ``feats_by_layer``). Returns ``{layer: mAP}``."""
    return {layer: fit_evaluate_model(SelectiveConvPipeline.from_preset(D=D, mask=mask, random_state=seed, alpha=alpha), ds, f,
                                      qe_k=0)["mAP"] for layer, f in feats_by_layer.items()}
