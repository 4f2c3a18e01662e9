"""Build the small cached arrays the course notebooks use (run once by the instructor).

The assignments must run in seconds on a laptop CPU, so they do not run VGG16. This script
reads pool5 feature maps of a subset of the embedded default dataset (the paper-regime set,
``docs/dataset_paper_regime.md``) in the paper's regime, ``max_dim = 1024`` (Sec. 5.1, the
set's ``default_max_dim``; queries cropped by their boxes), from the shared feature cache
(:class:`selconv_lite.features.cache.FeatureCache` in its default folder, opened with the
notebook series' ``extra_layers`` so that its entries are the series' own: an image the series
has extracted is not pushed through the network again, and one extracted here serves the
series). It writes, per assignment, the arrays it needs (maps and local features in float16),
compressed:

* ``source/a1_features_masks/course_data.npz``: pool5 maps, image sizes and SIFT keypoints of
  the queries and database images (the masks are computed by the student);
* ``source/a2_embedding_aggregation/course_data.npz``: the local features kept by the MAX mask
  (Eq. 2) of the training, query and database images (the embedding and aggregation are
  computed by the student);
* ``source/a3_postprocessing_evaluation/course_data.npz``: aggregated, L2-normalised T-emb
  vectors before rotation normalisation (Sec. 4.4 is computed by the student), and the
  training images' object labels (the matching pairs of the contrastive loss).

Every file also holds the ground truth of the selected queries (0-based ``ok`` / ``junk``
indices into the selected database images).

**The subset** (a rule on the set's lists, fixed before any mAP was measured on it; only the
counts were chosen, by the size of the files):

* objects: ``N_OBJECTS = 4`` of the 14 test objects, evenly spaced in the set's order
  (positions ``round(linspace(0, 13, 4))`` = 0, 4, 9, 13: fig bowl, wine table, marigold,
  Leuven facade); queries: the first ``QUERIES_PER_OBJECT = 2`` of each object's 5 (8 queries);
* database: every database image of those objects (their queries' positives and junk, each
  query's own image included: 48 images), plus, for each scene in which a query was taken,
  its first ``SCENE_IMAGES = 1`` scene-only image (``kind = scene`` in the manifest: the same
  background without the object, a hard negative); 7 scenes, 55 database images;
* training: the first ``TRAIN_PER_OBJECT = 3`` images of each of the 6 training objects and the
  first ``TRAIN_PER_SCENE = 1`` image of each of the 8 training scenes (26 of the 60 held-out
  images) for a2's local features; a3's vectors are small (1 kB each), so a3 has all 60, and
  the pipeline that makes them is learned on all 60 (changed after the first measurement: with
  26 vectors of dimension 256 the arbitrary completion of the rotation moved a correct
  answer's mAP away from the package's).

Measured sizes (fp16, ``np.savez_compressed``, maps stored channel by channel): a1 4.32 MB,
a2 2.65 MB, a3 0.12 MB, 7.09 MB together (budget: about 8 MB). Counts were chosen by these
sizes: one query of each of 8 objects would put 96 object images in the database (about 7 MB
for a1 and 11 MB together, from the per-image sizes); a1 in ``(H, W, K)`` order is 1 MB larger. What the subset shows (measured with
``course/wrong_answers.py``, docs/teaching.md): the right MAX mask gives mAP 0.688, every
location 0.565, typical wrong MAX masks 0.569 and 0.575.

Usage::

    .venv/bin/python course/make_data.py

It extracts (offline, CPU) only images that are not in the cache yet.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from selconv_lite.data.datasets import load_dataset
from selconv_lite.features.cache import FeatureCache
from selconv_lite.method.masks import apply_mask, max_mask
from selconv_lite.method.pipeline import SelectiveConvPipeline
from selconv_lite.teaching.settings import series_extra_layers

HERE = Path(__file__).resolve().parent
MAX_DIM = 1024            # the paper's size (Sec. 5.1) and the set's default_max_dim
N_OBJECTS = 4             # test objects, evenly spaced over the set's 14
QUERIES_PER_OBJECT = 2    # the first queries of each chosen object
SCENE_IMAGES = 1          # scene-only images per scene of a chosen query
TRAIN_PER_OBJECT = 3      # held-out images per training object
TRAIN_PER_SCENE = 1       # held-out scene-only images per training scene


def manifest(ds):
    """The dataset's ``manifest.csv`` as ``{file name: row}``."""
    path = Path(ds.info["gnd_path"]).parent / "manifest.csv"
    with open(path, newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


def _first_per_group(names, group_of, n):
    """The first ``n`` names of each group, in the order of ``names``."""
    seen, out = {}, []
    for name in names:
        g = group_of(name)
        if g is not None and seen.get(g, 0) < n:
            seen[g] = seen.get(g, 0) + 1
            out.append(name)
    return out


def select(ds, rows):
    """Indices of the course's queries, database images and training images (the rule of the
    module docstring)."""
    qnames = [Path(p).name for p in ds.queries]
    objects = list(dict.fromkeys(rows[n]["object"] for n in qnames))  # the set's order
    chosen = [objects[int(i)] for i in np.linspace(0, len(objects) - 1, N_OBJECTS).round()]
    qidx = [j for o in chosen
            for j in [j for j, n in enumerate(qnames) if rows[n]["object"] == o][:QUERIES_PER_OBJECT]]
    dbnames = [Path(p).name for p in ds.images]
    objs = [i for i, n in enumerate(dbnames) if rows[n]["kind"] == "object" and rows[n]["object"] in chosen]
    gnd = {int(i) for q in qidx for key in ("ok", "junk") for i in np.ravel(ds.gnd[q].get(key, []))}
    assert gnd == set(objs), "the chosen objects' images are not their queries' positives and junk"
    scenes = set(rows[qnames[q]]["scene"] for q in qidx)
    scene_only = _first_per_group(
        [n for n in dbnames if rows[n]["kind"] == "scene"],
        lambda n: rows[n]["scene"] if rows[n]["scene"] in scenes else None, SCENE_IMAGES)
    dbidx = sorted(objs + [dbnames.index(n) for n in scene_only])
    tnames = [Path(p).name for p in ds.train_images]
    train = (_first_per_group(tnames, lambda n: rows[n]["object"] or None, TRAIN_PER_OBJECT)
             + _first_per_group(tnames, lambda n: rows[n]["scene"] if rows[n]["kind"] == "scene" else None,
                                TRAIN_PER_SCENE))
    tidx = sorted(tnames.index(n) for n in train)
    return np.array(qidx), np.array(dbidx), np.array(tidx)


def remap_gnd(gnd, qidx, dbidx):
    """Ground truth of the selected queries, as indices into the selected database images."""
    where = {int(b): i for i, b in enumerate(dbidx)}
    out = {}
    for j, q in enumerate(qidx):
        for key in ("ok", "junk"):
            out[f"gnd_{key}_{j}"] = np.array([where[int(i)] for i in np.ravel(gnd[q].get(key, []))],
                                             dtype=np.int64)
    return out


def pack_maps(feats, prefix):
    """Maps ``(H_i, W_i, 512)`` flattened into one float16 array plus shapes and keypoints. Each map
    is stored channel by channel (``fmap.transpose(2, 0, 1)``, ``(K, H, W)`` order): the zeros of
    a sparse channel then compress as long runs (a1's file is about 1 MB smaller than in
    ``(H, W, K)`` order); ``*_shapes`` holds ``(H, W, K)``."""
    return {
        f"{prefix}_maps": np.concatenate([f.fmap.transpose(2, 0, 1).reshape(-1)
                                          for f in feats]).astype(np.float16),
        f"{prefix}_shapes": np.array([f.fmap.shape for f in feats], dtype=np.int64),
        f"{prefix}_image_hw": np.array([f.image_hw for f in feats], dtype=np.int64),
        f"{prefix}_kp": np.concatenate([np.asarray(f.keypoints, np.float32).reshape(-1, 2) for f in feats]),
        f"{prefix}_kp_counts": np.array([len(f.keypoints) for f in feats], dtype=np.int64),
    }


def pack_local(feats, prefix):
    """MAX-masked local features, rows of every image stacked, plus per-image counts."""
    X = [apply_mask(f.fmap, max_mask(f.fmap)) for f in feats]
    return {f"{prefix}_local": np.concatenate(X).astype(np.float16),
            f"{prefix}_counts": np.array([len(x) for x in X], dtype=np.int64)}


def course_features(ds, qidx, dbidx, tidx, max_dim=MAX_DIM, progress=True):
    """pool5 features of the selected images from the shared feature cache (extracting the
    missing ones), rounded to float16 as the notebooks will see them: ``{"query", "db",
    "train": [ImageFeatures]}``."""
    cache = FeatureCache(None, layers=("pool5",), max_dim=max_dim,
                         extra_layers=series_extra_layers(ds, max_dim))
    lists = {"query": ([ds.queries[i] for i in qidx], [ds.query_boxes[i] for i in qidx]),
             "db": ([ds.images[i] for i in dbidx], [None] * len(dbidx)),
             "train": ([ds.train_images[i] for i in tidx], [None] * len(tidx))}
    cache.extract_all([p for ps, _ in lists.values() for p in ps],
                      [c for _, cs in lists.values() for c in cs], progress=progress)
    sets = {k: [cache.load(p, c) for p, c in zip(ps, cs)] for k, (ps, cs) in lists.items()}
    # fp16 storage: the notebooks see exactly the rounded maps, so round before anything else
    for feats in sets.values():
        for f in feats:
            f.fmap = f.fmap.astype(np.float16).astype(np.float32)
    return sets


def common_arrays(ds, rows, qidx, dbidx, tidx, max_dim):
    """The arrays every file holds: ground truth, names, ``max_dim`` and the training labels
    (the object each training image shows, -1 for a scene-only image)."""
    out = remap_gnd(ds.gnd, qidx, dbidx)
    out["n_queries"] = np.int64(len(qidx))
    out["max_dim"] = np.int64(max_dim)
    out["db_names"] = np.array([Path(ds.images[i]).name for i in dbidx])
    out["query_names"] = np.array([Path(ds.queries[i]).name for i in qidx])
    out["train_names"] = np.array([Path(ds.train_images[i]).name for i in tidx])
    tobj = [rows[n]["object"] for n in out["train_names"]]
    names = sorted({o for o in tobj if o})
    out["train_labels"] = np.array([names.index(o) if o else -1 for o in tobj], dtype=np.int64)
    return out


def build(ds, max_dim=MAX_DIM, progress=True):
    """The arrays of the three data files: ``{assignment: {name: array}}``."""
    rows = manifest(ds)
    qidx, dbidx, tidx = select(ds, rows)
    sets = course_features(ds, qidx, dbidx, tidx, max_dim, progress)
    a1 = common_arrays(ds, rows, qidx, dbidx, tidx, max_dim)
    for prefix in ("query", "db"):  # a1 uses no training image
        a1.update(pack_maps(sets[prefix], prefix))
    a2 = common_arrays(ds, rows, qidx, dbidx, tidx, max_dim)
    for prefix, feats in sets.items():
        a2.update(pack_local(feats, prefix))
    # a3: aggregated T-emb vectors (before rotation normalisation) with the package's pipeline,
    # learned on every held-out image (a vector is 1 kB)
    tall = np.arange(len(ds.train_images))
    train_all = course_features(ds, [], [], tall, max_dim, progress)["train"]
    pipe = SelectiveConvPipeline(mask="max", embedding="temb", d=32, n_centroids=8, truncate=0,
                                 alpha=1.0, random_state=0)
    pipe.fit(train_all)
    a3 = common_arrays(ds, rows, qidx, dbidx, tall, max_dim)
    for prefix, feats in (("train", train_all), ("query", sets["query"]), ("db", sets["db"])):
        a3[f"{prefix}_vectors"] = np.stack([pipe.explain(f)["aggregated"] for f in feats]).astype(np.float32)
    return {"a1_features_masks": a1, "a2_embedding_aggregation": a2, "a3_postprocessing_evaluation": a3}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-dim", type=int, default=MAX_DIM, help="image size (default: the paper's 1024)")
    args = ap.parse_args(argv)
    total = 0
    for name, arrays in build(load_dataset("default"), args.max_dim).items():
        out = HERE / "source" / name / "course_data.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, **arrays)
        total += out.stat().st_size
        print(f"{out.relative_to(HERE)}: {out.stat().st_size / 1e6:.2f} MB")
    print(f"together: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
