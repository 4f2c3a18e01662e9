"""The paper's image size next to smaller ones, measured side by side (Table 3, Table 5, Fig. 2a).

The paper resizes every image so that its long side is 1024 px (Sec. 5.1): VGG16's pool5 maps
are then about 32 x 24 cells, and the MAX mask keeps about 30 % of them (Fig. 2a). At 512 px
the maps shrink to about 16 x 12 and a mask has far less to select from. :func:`run_regimes`
measures, for each ``max_dim`` (long side in pixels) on one dataset:

* the mean number of pool5 cells ``W x H`` per database image;
* the percentage of cells each mask keeps, averaged over the database images (Fig. 2a);
* the mAP of ``M + T-emb + democratic`` for every (mask, ``D``) (Table 3 / Table 5 style, Table 4
  presets, learned on the held-out split only);
* the mAP of the Table 6 baselines (SPoC, MAC, R-MAC) on the same maps, with Table 6's
  whitening policy;
* the per-query APs behind each of these mAPs (rounded to 6 decimals), so that two entries of a
  record compare with a paired interval (:func:`recorded_aps`,
  :func:`selconv_lite.experiments.report.paired_line`);
* the extraction time and whether the feature cache was cold,

and writes it as a JSON record with the identity of the data (dataset name, digest of its
manifest and of its image files), of the weights, of the code and of the machine.
:func:`load_regimes` reads a record back and refuses one that was measured on other data or
weights.

Command line::

    SELCONV_THREADS=2 python -m selconv_lite.experiments.regimes --out regimes.json \\
        --max-dims 512 724 1024
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..core.files import atomic_write, file_digest, find_repo_root
from ..core.machine import cpu_model
from ..features.backbone import weights_identity
from ..method.baselines import baseline_name
from ..method.pipeline import SelectiveConvPipeline
from .analysis import kept_percentages
from .scoring import fit_evaluate_model
from .splits import split_features
from .tables import run_table6

__all__ = ["run_regimes", "load_regimes", "dataset_identity", "regimes_table", "recorded_table5", "recorded_aps",
           "RECORD_FORMAT", "APS_DECIMALS", "main"]

#: Version of the JSON layout written by :func:`run_regimes`.
RECORD_FORMAT = 1

#: Decimals of the per-query APs stored in a record (their mean is the mAP to about 5e-7).
APS_DECIMALS = 6

_MASK_LABEL = {"max": "M_MAX", "sum": "M_SUM", "sift": "M_SIFT", "none": "none"}


# ----------------------------------------------------------------------------------------------
# identities
# ----------------------------------------------------------------------------------------------
def dataset_identity(ds) -> dict:
    """What identifies the data a record was measured on.

    Parameters
    ----------
    ds : RetrievalDataset

    Returns
    -------
    dict
        ``dataset`` (name), ``n_images`` (held-out + queries + database), ``manifest_sha256``
        (SHA-256 of the ``manifest.csv`` next to the ground truth, None when there is none) and
        ``images_sha256``: SHA-256 of the lines ``<split> <file name> <SHA-1 of the file>`` of
        every image in order (the per-file digest the feature cache keys its entries by).

    Raises
    ------
    selconv_lite.core.files.ImageError or OSError
        An image file of the dataset is missing (the message names it).
    """
    h = hashlib.sha256()
    splits = (("train", ds.train_images), ("query", ds.queries), ("db", ds.images))
    n = 0
    for split, paths in splits:
        for p in paths:
            p = Path(p)
            if not p.is_file():
                raise FileNotFoundError(f"{p}: image of dataset {ds.name!r} ({split} split) not found")
            h.update(f"{split} {p.name} {file_digest(p, 'sha1')}\n".encode())
            n += 1
    manifest = None
    gnd = ds.info.get("gnd_path") if isinstance(getattr(ds, "info", None), Mapping) else None
    if gnd and Path(gnd).with_name("manifest.csv").is_file():
        manifest = file_digest(Path(gnd).with_name("manifest.csv"), "sha256")
    return {"dataset": ds.name, "n_images": n, "manifest_sha256": manifest, "images_sha256": h.hexdigest()}


def _git_describe() -> str | None:
    root = find_repo_root(Path(__file__).resolve().parent)
    if root is None:
        return None
    try:
        r = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def _threads() -> dict:
    out = {"SELCONV_THREADS": os.environ.get("SELCONV_THREADS"), "cpu_count": os.cpu_count()}
    try:
        import torch

        out["torch"] = int(torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a hard dependency
        out["torch"] = None
    try:
        from threadpoolctl import threadpool_info

        out["blas"] = sorted({int(i.get("num_threads", 0)) for i in threadpool_info()})
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        out["blas"] = None
    return out


def _command_line() -> str | None:
    if not sys.argv:
        return None
    prog = Path(sys.argv[0]).name
    if prog == "regimes.py":
        prog = "python -m selconv_lite.experiments.regimes"
    return " ".join([prog, *sys.argv[1:]])


def _environment(weights) -> dict:
    from .. import __version__

    return {"weights": weights_identity(weights) if isinstance(weights, str) else str(weights),
            "package_version": __version__, "git_describe": _git_describe(),
            "command": _command_line(),
            "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_model(), "platform": platform.platform(), "python": platform.python_version(),
            "threads": _threads()}


# ----------------------------------------------------------------------------------------------
# measurement
# ----------------------------------------------------------------------------------------------
def _cache_state(ds, max_dim, cache_dir, weights) -> dict:
    """How many of the pool5 entries :func:`~selconv_lite.experiments.splits.split_features`
    will need are already in the feature cache (checked before extracting)."""
    from ..features.cache import FeatureCache

    cache = FeatureCache(cache_dir, weights=weights, layers=("pool5",), max_dim=max_dim)
    jobs = ([(p, None) for p in ds.train_images] + list(zip(ds.queries, ds.query_boxes))
            + [(p, None) for p in ds.images])
    hits = sum(cache.contains(p, c) for p, c in jobs)
    return {"entries": len(jobs), "cached_before": int(hits),
            "state": "warm" if hits == len(jobs) else ("cold" if hits == 0 else "partly cached")}


def _kept_percent(images: Sequence, masks: Sequence[str]) -> tuple[dict, int]:
    """:func:`~selconv_lite.experiments.analysis.kept_percentages` of ``images`` (Fig. 2a), and the
    number of images whose SIFT mask fell back to every cell (no keypoint in the grid, Sec. 5.1)."""
    import warnings

    from ..method.masks import SiftMaskFallbackWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SiftMaskFallbackWarning)
        kept = kept_percentages(images, masks)
    fallbacks = 0
    for w in caught:
        if issubclass(w.category, SiftMaskFallbackWarning):
            fallbacks += 1
        else:  # pragma: no cover - passed on
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return kept, fallbacks


def _aps_list(aps) -> list:
    """Per-query APs as a JSON list, rounded to :data:`APS_DECIMALS` (NaN: None)."""
    return [None if not np.isfinite(v) else round(float(v), APS_DECIMALS) for v in np.asarray(aps, dtype=np.float64)]


def _one_size(ds, feats, dims, masks, baselines, random_state, say) -> dict:
    db = list(feats["db"])
    cells = np.array([im.fmap.shape[0] * im.fmap.shape[1] for im in db], dtype=np.float64)
    hw = np.array([im.fmap.shape[:2] for im in db])
    out = {"cells_mean": float(cells.mean()), "cells_min": int(cells.min()), "cells_max": int(cells.max()),
           "map_hw_median": [float(v) for v in np.median(hw, axis=0)],
           "K": int(db[0].fmap.shape[2]), "n_db": len(db), "n_queries": len(feats["queries"]),
           "n_train": len(feats["train"])}
    out["kept_percent"], out["sift_fallback_db_images"] = _kept_percent(db, masks)
    say("kept % " + ", ".join(f"{m.upper()} {v:.1f}" for m, v in out["kept_percent"].items()))
    maps, aps, skipped = {m: {} for m in masks}, {m: {} for m in masks}, []
    for m in masks:
        for D in dims:
            # the same model as tables.run_image_size / run_table6 (Table 4 preset, alpha 0.5)
            pipe = SelectiveConvPipeline.from_preset(D=int(D), mask=m, random_state=random_state, alpha=0.5)
            ok, why = pipe.has_enough_features(feats["train"])
            if not ok:
                maps[m][str(D)] = aps[m][str(D)] = None
                skipped.append(f"{_MASK_LABEL.get(m, m)}+T-emb+demo {D}-D: {why}")
                say(skipped[-1])
                continue
            r = fit_evaluate_model(pipe, ds, feats, qe_k=0)
            maps[m][str(D)], aps[m][str(D)] = float(r["mAP"]), _aps_list(r["aps"])
            say(f"{_MASK_LABEL.get(m, m)}+T-emb+demo {D}-D mAP {maps[m][str(D)]:.4f}")
    out["mAP"], out["aps"] = maps, aps
    rows = run_table6(ds, feats, ours=(), baselines=baselines, qe_k=0, seed=random_state,
                         baseline_whitening="auto", skipped=skipped)
    out["baselines"] = {r["method"].replace(" (no whitening)", ""): {
        "mAP": float(r["mAP"]), "label": r["label"], "whitened": bool(r["whitened"]), "D": int(r["D"]),
        "whitening": r["whitening"], "aps": _aps_list(r["aps"])} for r in rows}
    say("baselines " + ", ".join(f"{k} {v['mAP']:.4f}" for k, v in out["baselines"].items()))
    out["skipped"] = skipped
    return out


def run_regimes(ds, max_dims=(512, 724, 1024), dims=(512, 1024), masks=("max", "sum", "sift", "none"),
                baselines=("spoc", "mac", "rmac"), cache_dir=None, weights="caffe-onnx", random_state=0,
                progress=True, features: Mapping | Callable | None = None) -> dict:
    """Masks' selectivity and retrieval quality at several image sizes (the paper's Table 5 with
    the masks of Table 3 and the kept fractions of Fig. 2a), on the same dataset and weights.

    Parameters
    ----------
    ds : RetrievalDataset
        Held-out split for learning, queries (cropped by their boxes) and database.
    max_dims : sequence of int
        Long sides ``max(W_I, H_I)`` in pixels (the paper: 724 and 1024, Table 5).
    dims : sequence of int
        Output dimensions ``D`` of ``M + T-emb + democratic`` (Table 4 presets).
    masks : sequence of {"max", "sum", "sift", "none"}
        Masks (Sec. 3), "none" keeping every cell.
    baselines : sequence of str
        Table 6 baselines on the same maps: ``"spoc"``, ``"mac"``, ``"rmac"`` (also ``"crow"``,
        ``"gem"``), with Table 6's whitening policy ``"auto"`` (see
        :func:`~selconv_lite.experiments.tables.run_table6`).
    cache_dir : str or Path, optional
        Feature cache (default: the shared one), so later runs reuse the extracted maps.
    weights : str
        VGG16 weights (see :func:`selconv_lite.features.backbone.load_vgg16_trunk`).
    random_state : int
        Seed of the pipelines (k-means, sampling).
    progress : bool
        Progress bars of the extraction (tqdm, with ETA) and one line per measured number.
    features : mapping or callable, optional
        Feature maps already at hand: ``{max_dim: {"train", "queries", "db"}}`` or a function
        ``max_dim -> that dict``; then nothing is extracted and ``extraction`` says so. Default:
        :func:`~selconv_lite.experiments.splits.split_features` through the cache.

    Returns
    -------
    dict
        ``format``, ``identity`` (:func:`dataset_identity` plus ``weights``), ``environment``
        (package version, ``git describe``, command line, UTC date, CPU, threads), ``config``
        (the arguments) and ``sizes``: ``{str(max_dim): {"cells_mean", "cells_min", "cells_max",
        "map_hw_median", "kept_percent": {mask: %}, "sift_fallback_db_images", "mAP": {mask: {str(D): mAP or None}},
        "aps": {mask: {str(D): [per-query AP] or None}}, "baselines": {name: {"mAP", "label",
        "whitened", "D", "whitening", "aps"}}, "extraction": {"seconds", "cache": {"entries",
        "cached_before", "state"}}, "compute_s", "skipped"}}``. A (mask, D) whose whitening
        cannot be learned on the held-out set is None, with the reason in ``skipped``. The
        per-query APs (``aps``, in query order, rounded to :data:`APS_DECIMALS` decimals) are
        those each mAP averages; :func:`recorded_aps` reads them back (records written before
        they were stored have none).

    Raises
    ------
    ValueError
        An unknown mask or baseline, an empty or non-positive ``max_dims`` / ``dims``.
    """
    max_dims = [int(s) for s in max_dims]
    dims = [int(d) for d in dims]
    if not max_dims or min(max_dims) <= 0:
        raise ValueError(f"max_dims must be positive image sizes, got {max_dims}")
    if not dims or min(dims) <= 0:
        raise ValueError(f"dims must be positive dimensions, got {dims}")
    bad = [m for m in masks if m not in _MASK_LABEL]
    if bad:
        raise ValueError(f"unknown mask {bad[0]!r}; choose from {list(_MASK_LABEL)}")
    names = [baseline_name(b) for b in baselines]
    say = (lambda s: print(s, flush=True)) if progress else (lambda s: None)
    env = _environment(weights)
    record = {"format": RECORD_FORMAT,
              "identity": {**dataset_identity(ds), "weights": env["weights"]},
              "environment": env,
              "config": {"max_dims": max_dims, "dims": dims, "masks": list(masks), "baselines": names,
                         "random_state": int(random_state), "layer": "pool5", "alpha": 0.5,
                         "embedding": "T-emb + democratic (Table 4 presets)", "baseline_whitening": "auto"},
              "sizes": {}}
    for s in max_dims:
        say(f"--- max_dim {s}")
        t0 = time.perf_counter()
        if features is not None:
            feats = features(s) if callable(features) else features[s]
            extraction = {"seconds": None, "cache": {"state": "features given (not extracted)"}}
        else:
            state = _cache_state(ds, s, cache_dir, weights)
            feats = split_features(ds, layers=("pool5",), max_dim=s, cache_dir=cache_dir, weights=weights,
                                      progress=progress)["pool5"]
            extraction = {"seconds": round(time.perf_counter() - t0, 2), "cache": state}
            say(f"features at {s} px: {extraction['seconds']:.0f} s (cache {state['state']}: "
                f"{state['cached_before']} of {state['entries']} entries there before)")
        t1 = time.perf_counter()
        entry = _one_size(ds, feats, dims, masks, names, random_state, say)
        entry["extraction"] = extraction
        entry["compute_s"] = round(time.perf_counter() - t1, 2)
        record["sizes"][str(s)] = entry
        del feats
    record["environment"]["finished_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return record


# ----------------------------------------------------------------------------------------------
# reading a record back
# ----------------------------------------------------------------------------------------------
def load_regimes(path, ds=None, weights="caffe-onnx") -> dict:
    """Read a record written by :func:`run_regimes` and check it belongs to ``ds`` and ``weights``.

    Parameters
    ----------
    path : str or Path
        The JSON file.
    ds : RetrievalDataset, optional
        The dataset the record must have been measured on (its name, manifest digest and
        image digests, :func:`dataset_identity`); None skips that check.
    weights : str or None
        The weights it must have been measured with; None skips that check.

    Returns
    -------
    dict
        The record (``sizes`` keyed by ``str(max_dim)``).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not a complete record (truncated, not JSON, keys missing), or it was measured
        on other data or weights: the message names the record's identity and the expected one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no regimes record there (write one with "
                                "python -m selconv_lite.experiments.regimes --out PATH)")
    try:
        rec = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a regimes record: the file is truncated or not JSON ({e})") from None
    missing = [k for k in ("format", "identity", "config", "sizes") if not isinstance(rec, dict) or k not in rec]
    if missing:
        raise ValueError(f"{path}: not a regimes record: key {missing[0]!r} is missing")
    if rec["format"] != RECORD_FORMAT:
        raise ValueError(f"{path}: record format {rec['format']!r}, this code reads format {RECORD_FORMAT}")
    for s, entry in rec["sizes"].items():
        for k in ("kept_percent", "mAP", "baselines", "cells_mean"):
            if k not in entry:
                raise ValueError(f"{path}: not a complete regimes record: size {s} has no {k!r}")
    ident = rec["identity"]
    if ds is not None:
        want = dataset_identity(ds)
        keys = ("dataset", "manifest_sha256", "images_sha256")
        if any(ident.get(k) != want[k] for k in keys):
            show = lambda d: ", ".join(f"{k}={d.get(k)}" for k in keys)  # noqa: E731
            raise ValueError(f"{path} was measured on other data: record {{{show(ident)}}}, "
                             f"this dataset {{{show(want)}}}; re-measure it with "
                             "python -m selconv_lite.experiments.regimes")
    if weights is not None:
        wid = weights_identity(weights) if isinstance(weights, str) else str(weights)
        if ident.get("weights") != wid:
            raise ValueError(f"{path} was measured with other weights: record weights={ident.get('weights')}, "
                             f"expected weights={wid}")
    return rec


def recorded_table5(rec: Mapping | None, sizes: Sequence[int], masks: Sequence[str], D: int,
                    skip: Sequence[int] = (), seed: int = 0, alpha: float = 0.5) -> dict:
    """The Table 5 rows a record already holds: ``{size: {"mAP": [one per mask], "cells_mean"}}``
    for each of ``sizes`` (except ``skip``) whose ``M + T-emb + demo`` mAP at ``D`` the record has
    for every mask of ``masks``; sizes it lacks are left out (to be measured live), and so is
    everything when the record's seed or power-law ``alpha`` differ from ``seed`` / ``alpha``.

    The record's numbers are those :func:`~selconv_lite.experiments.tables.run_image_size`
    computes (the same Table 4 preset, seed and held-out fit), so a notebook can read the sizes it
    does not extract from the record instead of running the network again at them.
    """
    out = {}
    if not rec:
        return out
    cfg = rec.get("config", {})
    if int(cfg.get("random_state", -1)) != int(seed) or float(cfg.get("alpha", -1)) != float(alpha):
        return out
    skip = {int(k) for k in skip}
    for s in sizes:
        e = rec.get("sizes", {}).get(str(int(s)))
        if int(s) in skip or e is None:
            continue
        vals = [e.get("mAP", {}).get(m, {}).get(str(int(D))) for m in masks]
        if any(v is None for v in vals):
            continue
        out[int(s)] = {"mAP": [float(v) for v in vals], "cells_mean": float(e["cells_mean"])}
    return out


def recorded_aps(rec: Mapping, max_dim: int, method: str, D: int | None = None) -> np.ndarray | None:
    """The per-query APs a record holds for one entry, for a paired comparison
    (:func:`selconv_lite.experiments.report.paired_line`).

    Parameters
    ----------
    rec : dict
        A record of :func:`run_regimes` / :func:`load_regimes`.
    max_dim : int
        The image size (a key of ``rec["sizes"]``).
    method : str
        A mask of ``M + T-emb + democratic`` (``"max"``, ``"sum"``, ``"sift"``, ``"none"``), with
        ``D``; or a baseline's name as recorded (``"MAC"``, ``"R-MAC"``, ...), without ``D``.
    D : int, optional
        The output dimension of the mask's pipeline.

    Returns
    -------
    ndarray of shape (n_queries,) or None
        None when the record has no per-query APs for that entry (a record written before they
        were stored, or a configuration that was skipped).

    Raises
    ------
    KeyError
        No such size, mask / D or baseline in the record.
    """
    e = rec["sizes"][str(int(max_dim))]
    if D is None:
        if method not in e["baselines"]:
            raise KeyError(f"no baseline {method!r} at {max_dim} px in the record (baselines: {sorted(e['baselines'])}); "
                           "a mask needs D")
        v = e["baselines"][method].get("aps")
    else:
        if str(int(D)) not in e["mAP"].get(method, {}):
            raise KeyError(f"no {method!r} mask at D = {D} for {max_dim} px in the record")
        v = e.get("aps", {}).get(method, {}).get(str(int(D)))
    return None if v is None else np.array([np.nan if x is None else x for x in v], dtype=np.float64)


def regimes_table(rec: Mapping) -> str:
    """A fixed-width text table of a record: cells, kept % per mask, mAP per (mask, D) and the
    baselines' mAP, one column per ``max_dim``."""
    sizes = list(rec["sizes"])
    cfg = rec["config"]
    rows = [("mean pool5 cells per database image", [rec["sizes"][s]["cells_mean"] for s in sizes], "{:.0f}")]
    for m in cfg["masks"]:
        rows.append((f"kept % {_MASK_LABEL.get(m, m)}", [rec["sizes"][s]["kept_percent"][m] for s in sizes], "{:.1f}"))
    for D in cfg["dims"]:
        for m in cfg["masks"]:
            rows.append((f"mAP {_MASK_LABEL.get(m, m)}+T-emb+demo {D}-D",
                         [rec["sizes"][s]["mAP"][m][str(D)] for s in sizes], "{:.3f}"))
    for b in cfg["baselines"]:
        rows.append((f"mAP {b} ({'whitened' if rec['sizes'][sizes[0]]['baselines'][b]['whitened'] else 'L2 only'})",
                     [rec["sizes"][s]["baselines"][b]["mAP"] for s in sizes], "{:.3f}"))
    w0 = max(len(r[0]) for r in rows) + 2
    lines = ["max_dim (px)".ljust(w0) + "".join(f"{s:>9}" for s in sizes)]
    for label, vals, fmt in rows:
        lines.append(label.ljust(w0) + "".join(f"{'-' if v is None else fmt.format(v):>9}" for v in vals))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    """``python -m selconv_lite.experiments.regimes --out PATH [...]``: run :func:`run_regimes`
    on a dataset and write the record (threads: env ``SELCONV_THREADS``, default 2)."""
    p = argparse.ArgumentParser(prog="python -m selconv_lite.experiments.regimes",
                                description="Masks' selectivity and mAP at several image sizes (Table 5, "
                                            "Table 3 masks, Fig. 2a kept %), written as a JSON record.")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--dataset", default="default", help="dataset name (default: the embedded set)")
    p.add_argument("--max-dims", type=int, nargs="+", default=[512, 724, 1024])
    p.add_argument("--dims", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--masks", nargs="+", default=["max", "sum", "sift", "none"])
    p.add_argument("--baselines", nargs="+", default=["spoc", "mac", "rmac"])
    p.add_argument("--cache-dir", default=None, help="feature cache (default: the shared one)")
    p.add_argument("--weights", default="caffe-onnx")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    out = Path(a.out)
    if out.parent and not out.parent.exists():
        p.error(f"--out {out}: folder {out.parent} does not exist")
    raw = os.environ.get("SELCONV_THREADS") or "2"
    try:
        n = int(raw)
        if n < 1:
            raise ValueError
    except ValueError:
        p.error(f"SELCONV_THREADS must be a positive integer, not {raw!r}")
    import warnings

    import torch
    from threadpoolctl import threadpool_limits

    from ..data.datasets import load_dataset
    from ..method.masks import SiftMaskFallbackWarning

    # counted in the record (sift_fallback_db_images) instead of one line per image
    warnings.filterwarnings("ignore", category=SiftMaskFallbackWarning)
    torch.set_num_threads(n)
    with threadpool_limits(n):
        ds = load_dataset(a.dataset)
        rec = run_regimes(ds, a.max_dims, a.dims, a.masks, a.baselines, cache_dir=a.cache_dir, weights=a.weights,
                          random_state=a.seed, progress=not a.no_progress)
    with atomic_write(out, "w") as fh:
        fh.write(json.dumps(rec, indent=1) + "\n")
    print(regimes_table(rec))
    print(f"written {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
