"""Build the small cached arrays the course notebooks use (run once by the instructor).

The assignments must run in seconds on a laptop CPU, so they do not run VGG16. This script
extracts pool5 feature maps of a subset of the embedded default dataset with the package's own
extraction (real ImageNet VGG16 weights, small ``max_dim``) and writes, per assignment, the
arrays it needs:

* ``source/a1_features_masks/course_data.npz``: pool5 maps, image sizes and SIFT keypoints
  (the masks are computed by the student);
* ``source/a2_embedding_aggregation/course_data.npz``: the local features kept by the MAX mask
  (Eq. 2) of the same images (the embedding and aggregation are computed by the student);
* ``source/a3_postprocessing_evaluation/course_data.npz``: aggregated, L2-normalised T-emb
  vectors before rotation normalisation (Sec. 4.4 is computed by the student).

Every file also holds the ground truth of the selected queries (0-based ``ok`` / ``junk``
indices into the selected database images). Usage::

    .venv/bin/python course/make_data.py [--max-dim 224]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from selconv_lite.data.datasets import load_dataset
from selconv_lite.features.cache import extract_features
from selconv_lite.method.masks import apply_mask, max_mask
from selconv_lite.method.pipeline import SelectiveConvPipeline

HERE = Path(__file__).resolve().parent
N_QUERIES = 8        # the first queries of the default set
N_DISTRACTORS = 12   # database images outside the query groups
N_TRAIN = 40         # held-out learning images (evenly spaced over the training photos)


def select(ds):
    """Indices of the queries, database images and training images used by the course."""
    qidx = np.arange(min(N_QUERIES, len(ds.queries)))
    pos = sorted({int(i) for q in qidx for key in ("ok", "junk") for i in ds.gnd[q].get(key, [])})
    rest = [i for i in range(len(ds.images)) if i not in set(pos)]
    dist = [rest[int(j)] for j in np.linspace(0, len(rest) - 1, N_DISTRACTORS).round()]
    dbidx = np.array(sorted(pos + dist))
    tidx = np.linspace(0, len(ds.train_images) - 1, N_TRAIN).round().astype(int)
    return qidx, dbidx, tidx


def remap_gnd(gnd, qidx, dbidx):
    """Ground truth of the selected queries, as indices into the selected database images."""
    where = {int(b): i for i, b in enumerate(dbidx)}
    out = {}
    for j, q in enumerate(qidx):
        for key in ("ok", "junk"):
            out[f"gnd_{key}_{j}"] = np.array([where[int(i)] for i in ds_get(gnd[q], key)], dtype=np.int64)
    return out


def ds_get(g, key):
    v = g.get(key)
    return [] if v is None else list(np.ravel(v))


def pack_maps(feats, prefix):
    """Maps ``(H_i, W_i, 512)`` flattened into one float16 array plus shapes and keypoints."""
    shapes = np.array([f.fmap.shape for f in feats], dtype=np.int64)
    kp_counts = np.array([len(f.keypoints) for f in feats], dtype=np.int64)
    return {
        f"{prefix}_maps": np.concatenate([f.fmap.reshape(-1) for f in feats]).astype(np.float16),
        f"{prefix}_shapes": shapes,
        f"{prefix}_image_hw": np.array([f.image_hw for f in feats], dtype=np.int64),
        f"{prefix}_kp": np.concatenate([np.asarray(f.keypoints, np.float32).reshape(-1, 2) for f in feats]),
        f"{prefix}_kp_counts": kp_counts,
    }


def pack_local(feats, prefix):
    """MAX-masked local features, rows of every image stacked, plus per-image counts."""
    X = [apply_mask(f.fmap, max_mask(f.fmap)) for f in feats]
    return {f"{prefix}_local": np.concatenate(X).astype(np.float16),
            f"{prefix}_counts": np.array([len(x) for x in X], dtype=np.int64)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-dim", type=int, default=224)
    args = ap.parse_args(argv)
    ds = load_dataset("default")
    qidx, dbidx, tidx = select(ds)
    kw = dict(max_dim=args.max_dim, progress=False)
    sets = {
        "query": extract_features([ds.queries[i] for i in qidx], crops=[ds.query_boxes[i] for i in qidx], **kw),
        "db": extract_features([ds.images[i] for i in dbidx], **kw),
        "train": extract_features([ds.train_images[i] for i in tidx], **kw),
    }
    # fp16 storage: the notebooks see exactly the rounded maps, so round before anything else
    for feats in sets.values():
        for f in feats:
            f.fmap = f.fmap.astype(np.float16).astype(np.float32)
    common = remap_gnd(ds.gnd, qidx, dbidx)
    common["n_queries"] = np.int64(len(qidx))
    common["max_dim"] = np.int64(args.max_dim)
    common["db_names"] = np.array([Path(ds.images[i]).name for i in dbidx])
    common["query_names"] = np.array([Path(ds.queries[i]).name for i in qidx])
    common["train_names"] = np.array([Path(ds.train_images[i]).name for i in tidx])
    # the photo each training crop comes from ("t_<photo>_<crop>.jpg"): labels for matching pairs
    common["train_labels"] = np.unique([n.split("_")[1] for n in common["train_names"]],
                                       return_inverse=True)[1].astype(np.int64)

    a1 = dict(common)
    for prefix, feats in sets.items():
        a1.update(pack_maps(feats, prefix))
    a2 = dict(common)
    for prefix, feats in sets.items():
        a2.update(pack_local(feats, prefix))
    # aggregated T-emb vectors (before rotation normalisation) with the package's pipeline
    pipe = SelectiveConvPipeline(mask="max", embedding="temb", d=32, n_centroids=8, truncate=0,
                                 alpha=1.0, random_state=0)
    pipe.fit(sets["train"])
    a3 = dict(common)
    for prefix, feats in sets.items():
        a3[f"{prefix}_vectors"] = np.stack([pipe.explain(f)["aggregated"] for f in feats]).astype(np.float32)

    for name, arrays in [("a1_features_masks", a1), ("a2_embedding_aggregation", a2),
                         ("a3_postprocessing_evaluation", a3)]:
        out = HERE / "source" / name / "course_data.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, **arrays)
        print(f"{out.relative_to(HERE)}: {out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
