#!/usr/bin/env python
"""Generate the *first* embedded set (deterministic; retired as ``data/default`` by issue 22).

The default set is now the paper-regime set of ``scripts/make_paper_regime_dataset.py``
(``docs/dataset_paper_regime.md``); this script is kept because that generator reuses its
helpers (seeds, photometric changes, size columns) and to regenerate the first set for
comparison (``--out`` is required, so that it never overwrites ``data/default``).

Real photos only, from sources installable on Debian/PyPI with known licences:

* Debian ``opencv-doc`` (``/usr/share/doc/opencv-doc/examples/data``), including real
  same-scene pairs (graf1/graf3 viewpoint, leuvenA/leuvenB illumination, aero1/aero3,
  aloeL/aloeR, basketball1/2, rubberwhale1/2, left/right, box/box_in_scene, ela_original/
  ela_modified);
* Debian ``lomiri-wallpapers-16.04`` (``/usr/share/backgrounds``, CC BY 4.0 / CC BY-SA 4.0 / CC0);
* scikit-image ``skimage.data`` (public domain / CC0) and scikit-learn sample images (CC BY 2.0).

Protocol (in the spirit of INRIA Holidays / Copydays, with Oxford-style query boxes):

* one **group** per scene: a query (a region of the photo; for some groups the whole photo
  with a crop box ``bbx`` around the region, as Oxford/Paris queries) and database views of
  that region: strong crops (10-80% of the area), perspective warps (viewpoint change),
  zoom-out (scale change), in-plane rotation, illumination / colour shifts, blur, JPEG
  compression, partial occlusion, and for the real pairs the other photo of the pair and
  views of it. Each view is ``easy`` or ``hard`` (revisitop style; ``ok`` = both); a region of
  the same photo that does not overlap the query is ``junk``;
* **distractors**: other photos;
* a **disjoint training split** of yet other photos (never in the database or the queries)
  for learning PCA, codebooks, whitening (Sec. 5.1 insists on held-out learning sets): each
  of 7 large held-out wallpapers as a whole + 2x2 + 3x3 grids of non-overlapping tiles (14
  views at 3 scales, a third of the tiles with a mild photometric change), plus 13 smaller
  held-out photos once (111 images).

Everything is decided by :func:`plan` from fixed seeds and normalised coordinates, without
reading the photos; :func:`render` then reads the sources and writes the JPEGs, and
:func:`build_gnd` turns the manifest into the revisitop ``gnd`` pickle. So the ground truth can
be regenerated and checked (tests/test_datasets.py) without the Debian packages installed.

Sizes: each view is rendered from the full-resolution photo at long side ``MAX_DIM = 1024``
(the paper's image size, Sec. 5.1) where its source region holds that many real pixels, and
never upsampled: a smaller region keeps the size the source gives (for a perspective view, at
most the pixel count of its source quadrilateral). ``manifest.csv`` records each image's
``width``/``height``, its photo's size and ``scale_at_1024``/``upsampled_at_1024``, the factor
by which the extractor resizes it at ``max_dim=1024``; the script prints how many images are
native at 1024 and how many the extractor upsamples. The gnd ``bbx`` of a query is its
normalised box times the rendered query's width and height.

Usage::

    apt-get install opencv-doc lomiri-wallpapers-16.04     # the photo sources
    python scripts/make_default_dataset.py --out OUTDIR
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import zlib
from pathlib import Path

import numpy as np

SEED = 2017
#: long side of the rendered views: the paper's image size (Sec. 5.1: every image is resized so
#: that its long side is 1024). A view is never upsampled: where its source region holds fewer
#: real pixels, it keeps the size the source gives (recorded in the manifest).
MAX_DIM = 1024
#: the extractor's size at which the manifest states each image's resize factor
EXTRACT_DIM = 1024
JPEG_QUALITY = 85
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
LOMIRI_DIR = Path("/usr/share/backgrounds")

# ------------------------------------------------------------------------------ sources
_OCV_LIC = ("Apache-2.0 AND BSD-3-Clause", "OpenCV contributors (OpenCV sample data)",
            "Debian package opencv-doc 4.6.0 (examples/data); licence per its copyright file "
            "(Files: *)")


def _ocv(origin=""):
    lic, author, src = _OCV_LIC
    return (lic, author, src + (f"; image origin: {origin}" if origin else ""))


def _lom(author, lic):
    return (lic, author, "Debian package lomiri-wallpapers-16.04 (/usr/share/backgrounds), "
                         "https://gitlab.com/ubports/development/core/lomiri-wallpapers")


def _ski(author, lic="Public domain / CC0"):
    return (lic, author, "scikit-image skimage.data (BSD-3-Clause package; image licence per its "
                         "docstring)")


SOURCES = {
    # opencv-doc
    "ocv:aero1.jpg": _ocv(), "ocv:aero3.jpg": _ocv(),
    "ocv:aloeL.jpg": _ocv("Middlebury stereo"), "ocv:aloeR.jpg": _ocv("Middlebury stereo"),
    "ocv:basketball1.png": _ocv("Middlebury optical flow"),
    "ocv:basketball2.png": _ocv("Middlebury optical flow"),
    "ocv:box.png": _ocv(), "ocv:box_in_scene.png": _ocv(),
    "ocv:ela_original.jpg": _ocv(), "ocv:ela_modified.jpg": _ocv(),
    "ocv:graf1.png": _ocv("Oxford VGG affine-covariant regions data"),
    "ocv:graf3.png": _ocv("Oxford VGG affine-covariant regions data"),
    "ocv:left.jpg": _ocv(), "ocv:right.jpg": _ocv(),
    "ocv:leuvenA.jpg": _ocv("Oxford VGG affine-covariant regions data"),
    "ocv:leuvenB.jpg": _ocv("Oxford VGG affine-covariant regions data"),
    "ocv:rubberwhale1.png": _ocv("Middlebury optical flow"),
    "ocv:rubberwhale2.png": _ocv("Middlebury optical flow"),
    "ocv:building.jpg": _ocv(), "ocv:butterfly.jpg": _ocv(), "ocv:fruits.jpg": _ocv(),
    "ocv:home.jpg": _ocv(), "ocv:squirrel_cls.jpg": _ocv(), "ocv:apple.jpg": _ocv(),
    "ocv:baboon.jpg": _ocv(), "ocv:orange.jpg": _ocv(), "ocv:chicky_512.png": _ocv(),
    "ocv:smarties.png": _ocv(), "ocv:stuff.jpg": _ocv(), "ocv:board.jpg": _ocv(),
    "ocv:sudoku.png": _ocv(), "ocv:text_defocus.jpg": _ocv(), "ocv:text_motion.jpg": _ocv(),
    "ocv:licenseplate_motion.jpg": _ocv(), "ocv:left01.jpg": _ocv(), "ocv:right05.jpg": _ocv(),
    "ocv:left03.jpg": _ocv(), "ocv:right09.jpg": _ocv(),
    "ocv:starry_night.jpg": _ocv("photo of V. van Gogh's painting (1889, public domain)"),
    "ocv:pca_test1.jpg": _ocv(),
    # lomiri-wallpapers-16.04
    "lomiri:Bridge_by_Sander_Klootwijk.jpg": _lom("Sander Klootwijk, 2018", "CC-BY-SA-4.0"),
    "lomiri:friends_by_Aitzol_Berasategi.jpg": _lom("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "lomiri:Wine_by_Jakkub_Mede.jpg": _lom("Jakub Mede, 2018", "CC-BY-4.0"),
    "lomiri:Picture_0B_by_freespace.jpg": _lom('Trevor "Freespace", 2018', "CC-BY-4.0"),
    "lomiri:picosdeeuropa_by_Aitzol_Berasategi.jpg": _lom("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "lomiri:sunset_by_Aitzol_Berasategi.jpg": _lom("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "lomiri:seeding_by_Clements_Engelhardt.jpg": _lom("Clemens Engelhardt, 2018", "CC0-1.0"),
    "lomiri:Dragonfly_by_Bolly.jpg": _lom('"Bolly", 2018', "CC-BY-SA-4.0"),
    "lomiri:aitzgorri_by_Aitzol_Berasategi.jpg": _lom("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "lomiri:life_by_Aitzol_Berasategi.jpg": _lom("Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "lomiri:greentock_by_Peter_Nerlich.jpg": _lom("Peter Nerlich, 2018", "CC-BY-SA-4.0"),
    "lomiri:free_by_Peter_Nerlich.jpg": _lom("Peter Nerlich, 2018", "CC-BY-SA-4.0"),
    "lomiri:Picture_1A_by_freespace.jpg": _lom('Trevor "Freespace", 2018', "CC-BY-4.0"),
    "lomiri:analogpattern_by_Peter_Nerlich.jpg": _lom("Peter Nerlich, 2018", "CC-BY-SA-4.0"),
    "lomiri:umang_by_Abhishek_Mudgal.jpg": _lom("Abhishek Mudgal, 2018", "CC-BY-4.0"),
    # scikit-image
    "skimage:astronaut": _ski("NASA (Eileen Collins portrait)", "Public domain"),
    "skimage:coffee": _ski("Rachel Michetti (Pikolo Espresso Bar)", "CC0-1.0"),
    "skimage:chelsea": _ski("Stefan van der Walt", "CC0-1.0"),
    "skimage:rocket": _ski("SpaceX (DSCOVR launch)", "Public domain"),
    "skimage:camera": _ski("Lav Varshney", "CC0-1.0"),
    "skimage:coins": _ski("Brooklyn Museum collection", "No known copyright restrictions"),
    "skimage:clock": _ski("Stefan van der Walt", "Public domain"),
    "skimage:hubble_deep_field": _ski("NASA / HubbleSite", "Public domain"),
    "skimage:moon": _ski("unknown (skimage.data.moon)", "No known copyright restrictions"),
    "skimage:retina": _ski("Wikimedia Commons (fundus photograph)", "CC0-1.0"),
    "skimage:brick": _ski("CC0Textures (Bricks25)", "CC0-1.0"),
    "skimage:grass": _ski("linolafett (DeviantArt, Grass-01)", "CC0-1.0"),
    "skimage:gravel": _ski("CC0Textures (Gravel04)", "CC0-1.0"),
    "skimage:immunohistochemistry": _ski("Center for Microscopy And Molecular Imaging (CMMI)",
                                         "No known copyright restrictions"),
    # scikit-learn
    "sklearn:china.jpg": ("CC-BY-2.0", "danielbuechele (Flickr)",
                          "scikit-learn load_sample_images(), "
                          "https://www.flickr.com/photos/danielbuechele/6061409035"),
    "sklearn:flower.jpg": ("CC-BY-2.0", "vultilion (Flickr)",
                           "scikit-learn load_sample_images(), "
                           "https://www.flickr.com/photos/vultilion/6056698931"),
}

# (group name, query source, other photo of a real pair or None, query style)
# query style "crop": the query image is the region; "bbx": the whole photo + a crop box
PAIR_GROUPS = [
    ("aero", "ocv:aero1.jpg", "ocv:aero3.jpg", "crop"),
    ("aloe", "ocv:aloeL.jpg", "ocv:aloeR.jpg", "bbx"),
    ("basketball", "ocv:basketball1.png", "ocv:basketball2.png", "crop"),
    ("box", "ocv:box.png", "ocv:box_in_scene.png", "crop"),
    ("graffiti", "ocv:ela_original.jpg", "ocv:ela_modified.jpg", "bbx"),
    ("graf", "ocv:graf1.png", "ocv:graf3.png", "crop"),
    ("books", "ocv:left.jpg", "ocv:right.jpg", "crop"),
    ("leuven", "ocv:leuvenA.jpg", "ocv:leuvenB.jpg", "bbx"),
    ("rubberwhale", "ocv:rubberwhale1.png", "ocv:rubberwhale2.png", "crop"),
]
SINGLE_GROUPS = [
    ("building", "ocv:building.jpg", "bbx"),
    ("butterfly", "ocv:butterfly.jpg", "crop"),
    ("fruits", "ocv:fruits.jpg", "crop"),
    ("home", "ocv:home.jpg", "crop"),
    ("squirrel", "ocv:squirrel_cls.jpg", "bbx"),
    ("astronaut", "skimage:astronaut", "crop"),
    ("coffee", "skimage:coffee", "crop"),
    ("chelsea", "skimage:chelsea", "crop"),
    ("rocket", "skimage:rocket", "bbx"),
    ("china", "sklearn:china.jpg", "crop"),
    ("bridge", "lomiri:Bridge_by_Sander_Klootwijk.jpg", "crop"),
    ("dogs", "lomiri:friends_by_Aitzol_Berasategi.jpg", "bbx"),
    ("wine", "lomiri:Wine_by_Jakkub_Mede.jpg", "crop"),
    ("fig", "lomiri:Picture_0B_by_freespace.jpg", "crop"),
    ("picos", "lomiri:picosdeeuropa_by_Aitzol_Berasategi.jpg", "bbx"),
]
# groups whose photo is large enough to hold a non-overlapping "junk" region
# (value: the photo's long axis, along which the query side and the junk side are split)
JUNK_GROUPS = {"bridge": "x", "dogs": "y", "wine": "y", "fig": "x", "picos": "x"}
DISTRACTORS = [
    "ocv:apple.jpg", "ocv:baboon.jpg", "ocv:orange.jpg", "ocv:chicky_512.png", "ocv:smarties.png",
    "ocv:stuff.jpg", "ocv:board.jpg", "ocv:sudoku.png", "ocv:text_defocus.jpg",
    "ocv:licenseplate_motion.jpg", "skimage:camera", "skimage:coins", "skimage:clock",
    "skimage:hubble_deep_field", "sklearn:flower.jpg", "lomiri:sunset_by_Aitzol_Berasategi.jpg",
    "lomiri:seeding_by_Clements_Engelhardt.jpg", "lomiri:Dragonfly_by_Bolly.jpg",
]
# the held-out training split: photos used nowhere else (the generator asserts it).
# "tiles": the whole photo + a 2x2 grid of half-size tiles + a 3x3 grid of third-size tiles
# (14 distinct views at 3 scales of each large wallpaper; tiles of one grid do not overlap;
# about a third of the tiles get a mild photometric change); "whole": the photo once.
TRAIN = [
    ("lomiri:aitzgorri_by_Aitzol_Berasategi.jpg", "tiles"),
    ("lomiri:life_by_Aitzol_Berasategi.jpg", "tiles"),
    ("lomiri:greentock_by_Peter_Nerlich.jpg", "tiles"),
    ("lomiri:free_by_Peter_Nerlich.jpg", "tiles"),
    ("lomiri:Picture_1A_by_freespace.jpg", "tiles"),
    ("lomiri:analogpattern_by_Peter_Nerlich.jpg", "tiles"),
    ("lomiri:umang_by_Abhishek_Mudgal.jpg", "tiles"),
    ("skimage:moon", "whole"), ("skimage:retina", "whole"), ("skimage:brick", "whole"),
    ("skimage:grass", "whole"), ("skimage:gravel", "whole"),
    ("skimage:immunohistochemistry", "whole"),
    ("ocv:text_motion.jpg", "whole"), ("ocv:left01.jpg", "whole"), ("ocv:left03.jpg", "whole"),
    ("ocv:right05.jpg", "whole"), ("ocv:right09.jpg", "whole"),
    ("ocv:starry_night.jpg", "whole"), ("ocv:pca_test1.jpg", "whole"),
]
TRAIN_TILE_GRIDS = (2, 3)
TRAIN_TILE_PHOTOMETRIC_P = 0.3


def _train_views(src, scheme):
    """``(suffix, region, transform)`` of every training view of photo ``src``."""
    rng = _rng("train", src)
    views = [("whole", [0.0, 0.0, 1.0, 1.0], [])]
    if scheme == "tiles":
        for g in TRAIN_TILE_GRIDS:
            for i in range(g * g):
                r, c = divmod(i, g)
                region = [_r(c / g), _r(r / g), _r((c + 1) / g), _r((r + 1) / g)]
                ops = ([{"op": "photometric", **_photometric(rng, "mild")}]
                       if rng.random() < TRAIN_TILE_PHOTOMETRIC_P else [])
                views.append((f"g{g}_{i + 1}", region, ops))
    elif scheme != "whole":
        raise ValueError(scheme)
    return views


MANIFEST_FIELDS = ["file", "role", "group", "relation", "source", "transform", "region",
                   "query_box_norm"]
#: columns written after rendering: the image's size, its source photo's size, and the factor by
#: which the extractor resizes it at max_dim ``EXTRACT_DIM`` (> 1: upsampled, no new detail)
SIZE_FIELDS = ["width", "height", "source_width", "source_height", f"scale_at_{EXTRACT_DIM}",
               f"upsampled_at_{EXTRACT_DIM}"]


# --------------------------------------------------------------------------------- plan
def _rng(*keys) -> np.random.Generator:
    return np.random.default_rng([SEED] + [zlib.crc32(str(k).encode()) for k in keys])


def _r(x) -> float:
    return round(float(x), 4)


def _region(rng, area_lo, area_hi, within=(0.0, 0.0, 1.0, 1.0), aspect=(0.75, 1.33)):
    """A random axis-aligned box (normalised coords) of area fraction [lo, hi] of ``within``."""
    x0, y0, x1, y1 = within
    W, H = x1 - x0, y1 - y0
    a = rng.uniform(area_lo, area_hi)
    r = rng.uniform(*aspect)
    w = min(1.0, np.sqrt(a * r))
    h = min(1.0, a / w)
    w = min(1.0, a / h)
    bx = x0 + rng.uniform(0, 1 - w) * W
    by = y0 + rng.uniform(0, 1 - h) * H
    return [_r(bx), _r(by), _r(bx + w * W), _r(by + h * H)]


def _expand(box, f):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    w, h = (box[2] - box[0]) * f, (box[3] - box[1]) * f
    w, h = min(w, 1.0), min(h, 1.0)
    cx = min(max(cx, w / 2), 1 - w / 2)
    cy = min(max(cy, h / 2), 1 - h / 2)
    return [_r(cx - w / 2), _r(cy - h / 2), _r(cx + w / 2), _r(cy + h / 2)]


def _photometric(rng, strength):
    s = {"mild": 0.5, "strong": 1.0}[strength]
    grey = strength == "strong" and rng.random() < 0.3
    return {"gamma": _r(np.exp(rng.uniform(-0.45, 0.45) * s)),
            "gain": _r(np.exp(rng.uniform(-0.35, 0.25) * s)),
            "saturation": 0.0 if grey else _r(np.exp(rng.uniform(-0.9, 0.4) * s)),
            "hue": _r(rng.uniform(-12, 12) * s),
            "cast": [_r(np.exp(rng.uniform(-0.12, 0.12) * s)) for _ in range(3)]}


def _view_ops(rng, kind, q):
    """Transform recipe for one view of query region ``q`` (normalised)."""
    ops = []
    if kind == "crop_strong":
        region = _region(rng, 0.10, 0.25, within=q)
        ops.append({"op": "photometric", **_photometric(rng, "strong")})
    elif kind == "crop":
        region = _region(rng, 0.30, 0.60, within=q)
        ops.append({"op": "photometric", **_photometric(rng, "strong")})
    elif kind == "zoomout":
        region = _expand(q, rng.uniform(2.0, 3.0))
        ops.append({"op": "photometric", **_photometric(rng, "mild")})
        ops.append({"op": "jpeg", "quality": int(rng.integers(8, 20))})
    elif kind == "persp":
        region = _expand(q, rng.uniform(0.9, 1.2))
        ops.insert(0, {"op": "perspective",
                       "jitter": [_r(rng.uniform(-0.3, 0.3)) for _ in range(8)]})
        ops.append({"op": "photometric", **_photometric(rng, "strong")})
    elif kind == "rotate":
        region = _expand(q, rng.uniform(0.8, 1.1))
        ops.insert(0, {"op": "rotate", "degrees": _r(rng.choice([-1, 1]) * rng.uniform(20, 40))})
        ops.append({"op": "photometric", **_photometric(rng, "mild")})
    elif kind == "occlude":
        region = _expand(q, rng.uniform(0.9, 1.2))
        ops.append({"op": "photometric", **_photometric(rng, "mild")})
        a = rng.uniform(0.30, 0.45)
        w = np.sqrt(a * rng.uniform(0.6, 1.6))
        w = min(w, 0.9)
        h = min(a / w, 0.9)
        ox, oy = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        # the occluder is a piece of another (distractor) photo, as a real occluding object
        ops.append({"op": "occlude", "box": [_r(ox), _r(oy), _r(ox + w), _r(oy + h)],
                    "patch_source": str(rng.choice(DISTRACTORS)),
                    "patch_region": _region(rng, 0.1, 0.3)})
    elif kind == "illum_blur":
        region = _expand(q, rng.uniform(0.95, 1.15))
        ops.append({"op": "photometric", **_photometric(rng, "strong")})
        ops.append({"op": "blur", "sigma": _r(rng.uniform(2.0, 4.0))})
    elif kind == "full":
        region = [0.0, 0.0, 1.0, 1.0]
    else:
        raise ValueError(kind)
    return region, ops


#: relation (easy / hard) of each view kind
VIEW_RELATION = {"crop_strong": "hard", "crop": "easy", "zoomout": "hard", "persp": "easy",
                 "rotate": "hard", "occlude": "hard", "illum_blur": "easy", "full": "hard"}


def plan() -> list[dict]:
    """Every image of the dataset as a manifest row (no photo is read)."""
    rows = []
    groups = [(g, a, b, s) for g, a, b, s in PAIR_GROUPS] + [(g, a, None, s) for g, a, s in SINGLE_GROUPS]
    db_rows = []
    for gi, (g, src, pair, style) in enumerate(groups):
        rng = _rng("group", g)
        if g in JUNK_GROUPS:
            left = rng.random() < 0.5
            half = (0.0, 0.0, 0.58, 1.0) if left else (0.42, 0.0, 1.0, 1.0)
            jx = (0.64, 0.0, 1.0, 1.0) if left else (0.0, 0.0, 0.36, 1.0)
            if JUNK_GROUPS[g] == "y":  # split along the height instead
                half = (half[1], half[0], half[3], half[2])
                jx = (jx[1], jx[0], jx[3], jx[2])
            q = _region(rng, 0.35, 0.60, within=half)
            junk = _region(rng, 0.6, 0.9, within=jx)
        else:
            q = _region(rng, 0.15, 0.35) if pair is None else _region(rng, 0.30, 0.60)
            junk = None
        if style == "bbx":
            qrow = {"region": [0.0, 0.0, 1.0, 1.0], "query_box_norm": q}
        else:
            qrow = {"region": q, "query_box_norm": None}
        rows.append({"file": f"q_{g}.jpg", "role": "query", "group": g, "relation": "query",
                     "source": src, "transform": [], **qrow})
        if pair is None:
            kinds = ["crop_strong", "persp", str(rng.choice(["rotate", "occlude"])), "zoomout",
                     str(rng.choice(["illum_blur", "crop"]))]
            views = [(src, k, q) for k in kinds]
        else:
            bq = _region(rng, 0.3, 0.6)
            views = [(pair, "full", None), (pair, "crop", bq), (src, "crop_strong", q),
                     (src, str(rng.choice(["persp", "rotate", "occlude"])), q),
                     (src, str(rng.choice(["zoomout", "illum_blur"])), q)]
        for vi, (vsrc, kind, vq) in enumerate(views):
            region, ops = _view_ops(rng, kind, vq if vq is not None else [0.0, 0.0, 1.0, 1.0])
            if kind != "full" and rng.random() < 0.3:
                ops.append({"op": "jpeg", "quality": int(rng.integers(15, 35))})
            db_rows.append({"file": f"{g}_{vi + 1}_{kind}.jpg", "role": "db", "group": g,
                            "relation": VIEW_RELATION[kind], "source": vsrc, "transform": ops,
                            "region": region, "query_box_norm": None})
        if junk is not None:
            db_rows.append({"file": f"{g}_junk.jpg", "role": "db", "group": g, "relation": "junk",
                            "source": src, "transform": [{"op": "photometric",
                                                          **_photometric(rng, "mild")}],
                            "region": junk, "query_box_norm": None})
    for src in DISTRACTORS:
        rng = _rng("distractor", src)
        name = src.split(":", 1)[1].split(".")[0].split("_by_")[0].lower()
        # two framings of each distractor photo: the whole photo and a close-up
        for k, region in enumerate(([0.0, 0.0, 1.0, 1.0], _region(rng, 0.2, 0.4))):
            db_rows.append({"file": f"x_{name}_{k + 1}.jpg", "role": "db", "group": "",
                            "relation": "distractor", "source": src, "transform": [],
                            "region": region, "query_box_norm": None})
    order = _rng("db-order").permutation(len(db_rows))
    rows += [db_rows[i] for i in order]
    for src, scheme in TRAIN:
        name = src.split(":", 1)[1].split(".")[0].split("_by_")[0].lower()
        for suffix, region, ops in _train_views(src, scheme):
            rows.append({"file": f"t_{name}_{suffix}.jpg", "role": "train", "group": "",
                         "relation": "train", "source": src, "transform": ops, "region": region,
                         "query_box_norm": None})
    # the same photo never appears in two roles (train split disjoint from db + queries)
    by_role = {}
    for r in rows:
        by_role.setdefault(r["source"], set()).add("train" if r["role"] == "train" else "test")
    assert all(len(v) == 1 for v in by_role.values()), "a photo is in the training split and the test set"
    return rows


# ------------------------------------------------------------------------------ manifest
def extractor_scale(size, max_dim=EXTRACT_DIM) -> float:
    """Factor by which the extractor resizes an image of ``size`` (W, H) to long side ``max_dim``."""
    return max_dim / max(size)


def size_columns(size, source_size) -> dict:
    """Manifest size columns of one rendered image (``SIZE_FIELDS``)."""
    f = extractor_scale(size)
    return {"width": size[0], "height": size[1], "source_width": source_size[0],
            "source_height": source_size[1], f"scale_at_{EXTRACT_DIM}": round(f, 3),
            f"upsampled_at_{EXTRACT_DIM}": f"yes x{f:.2f}" if f > 1 else "no"}


def write_manifest(rows, path, sizes, source_sizes) -> None:
    """Write ``manifest.csv``: the plan of every image, its rendered size, licence and origin.

    ``sizes`` and ``source_sizes`` map ``file -> (W, H)`` of the rendered image and of its
    source photo.
    """
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS + SIZE_FIELDS + ["licence", "author", "origin"],
                           lineterminator="\n")
        w.writeheader()
        for r in rows:
            lic, author, origin = SOURCES[r["source"]]
            w.writerow({**{k: r[k] for k in ("file", "role", "group", "relation", "source")},
                        "transform": json.dumps(r["transform"], separators=(",", ":")),
                        "region": json.dumps(r["region"]),
                        "query_box_norm": json.dumps(r["query_box_norm"]),
                        **size_columns(sizes[r["file"]], source_sizes[r["file"]]),
                        "licence": lic, "author": author, "origin": origin})


def read_manifest(path) -> list[dict]:
    """Rows of ``manifest.csv`` with the JSON columns decoded and the sizes as numbers."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            for k in ("transform", "region", "query_box_norm"):
                r[k] = json.loads(r[k])
            for k in ("width", "height", "source_width", "source_height"):
                if k in r:
                    r[k] = int(r[k])
            if f"scale_at_{EXTRACT_DIM}" in r:
                r[f"scale_at_{EXTRACT_DIM}"] = float(r[f"scale_at_{EXTRACT_DIM}"])
            rows.append(r)
    return rows


def size_summary(rows) -> str:
    """How many images are native at ``EXTRACT_DIM`` and how many the extractor upsamples, then how
    many it downsizes, keeps and upsamples at the dataset's default ``max_dim`` (1024) and at 512."""
    key = f"scale_at_{EXTRACT_DIM}"
    lines = []
    for role in ("all", "query", "db", "train"):
        sel = [float(r[key]) for r in rows if role == "all" or r["role"] == role]
        up = np.array([f for f in sel if f > 1])
        bins = [(1, 1.25), (1.25, 1.5), (1.5, 2), (2, 3), (3, np.inf)]
        hist = ", ".join(f"{((up > a) & (up <= b)).sum()} by x{a:g}-{b:g}" if np.isfinite(b)
                         else f"{(up > a).sum()} by > x{a:g}" for a, b in bins)
        lines.append(f"{role}: {len(sel)} images, {len(sel) - len(up)} native (long side "
                     f"{EXTRACT_DIM}), {len(up)} upsampled by the extractor at {EXTRACT_DIM}"
                     + (f" (median x{np.median(up):.2f}, max x{up.max():.2f}; {hist})" if len(up) else ""))
    for dim in (EXTRACT_DIM, 512):   # the dataset's default max_dim (1024), then the smaller regime
        at = [extractor_scale((int(r["width"]), int(r["height"])), dim) for r in rows]
        lines.append(f"at max_dim {dim}: {sum(f < 1 for f in at)} downsized, "
                     f"{sum(f == 1 for f in at)} kept, {sum(f > 1 for f in at)} upsampled "
                     f"(long side below {dim})")
    return "\n".join(lines)


def build_gnd(rows, image_sizes) -> dict:
    """revisitop-format ground truth from manifest rows.

    Parameters
    ----------
    rows : list of dict
        Manifest rows (:func:`plan` or :func:`read_manifest`).
    image_sizes : dict
        ``file -> (width, height)`` of the query images (to turn normalised boxes into pixels).
    """
    db = [r for r in rows if r["role"] == "db"]
    queries = [r for r in rows if r["role"] == "query"]
    train = [r for r in rows if r["role"] == "train"]
    stem = lambda f: f.rsplit(".", 1)[0]  # noqa: E731
    gnd = []
    for q in queries:
        g = {"easy": [], "hard": [], "junk": []}
        for i, r in enumerate(db):
            if r["group"] == q["group"] and r["relation"] in g:
                g[r["relation"]].append(i)
        bbx = None
        if q["query_box_norm"] is not None:
            W, H = image_sizes[q["file"]]
            b = q["query_box_norm"]
            bbx = [round(b[0] * W, 1), round(b[1] * H, 1), round(b[2] * W, 1), round(b[3] * H, 1)]
        gnd.append({**g, "bbx": bbx})
    return {"imlist": [stem(r["file"]) for r in db], "qimlist": [stem(r["file"]) for r in queries],
            "gnd": gnd, "trainlist": [stem(r["file"]) for r in train]}


# -------------------------------------------------------------------------------- render
def load_source(src: str):
    """The photo ``src`` as an RGB PIL image; a clear error names the package to install."""
    from PIL import Image

    kind, name = src.split(":", 1)
    try:
        if kind == "ocv":
            img = Image.open(OPENCV_DIR / name)
        elif kind == "lomiri":
            img = Image.open(LOMIRI_DIR / name)
        elif kind == "skimage":
            import skimage.data

            img = Image.fromarray(getattr(skimage.data, name)())
        elif kind == "sklearn":
            from sklearn.datasets import load_sample_image

            img = Image.fromarray(load_sample_image(name))
        else:
            raise ValueError(f"unknown source kind {kind!r}")
    except FileNotFoundError as e:
        pkg = {"ocv": "opencv-doc", "lomiri": "lomiri-wallpapers-16.04"}.get(kind, kind)
        raise SystemExit(f"photo source {src} not found ({e}); install the Debian package "
                         f"'{pkg}' (apt-get install {pkg})")
    return img.convert("RGB")


def _native_wh(quad: np.ndarray, rw: float, rh: float, max_dim=MAX_DIM):
    """Output ``(W, H)`` of a view: aspect ``rw:rh``, long side at most ``max_dim``, never upsampled.

    The output holds at most as many pixels as the source quadrilateral ``quad`` it is warped
    from (its area in source pixels: ``rw * rh`` for crops and rotations, the jittered area for
    perspective views), so a view whose source region is smaller than ``max_dim`` keeps the size
    the source gives.
    """
    x, y = quad[:, 0], quad[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    s = min(1.0, max_dim / max(rw, rh), float(np.sqrt(area / max(rw * rh, 1e-12))))
    return max(1, int(round(rw * s))), max(1, int(round(rh * s)))


def _warp(src_rgb: np.ndarray, quad: np.ndarray, out_wh) -> np.ndarray:
    """Map the output rectangle onto quadrilateral ``quad`` (4x2, source pixels, TL TR BR BL)."""
    import cv2

    W, H = out_wh
    # pre-shrink the source so that the warp does not alias
    side = max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[3] - quad[0]))
    s = min(1.0, 1.3 * max(W, H) / max(side, 1))
    img = src_rgb
    if s < 1.0:
        img = cv2.resize(src_rgb, (max(1, int(src_rgb.shape[1] * s)), max(1, int(src_rgb.shape[0] * s))),
                         interpolation=cv2.INTER_AREA)
        quad = quad * s
    dst = np.array([[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]], np.float32)
    M = cv2.getPerspectiveTransform(dst, quad.astype(np.float32))
    return cv2.warpPerspective(img, M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT101)


def _apply_photometric(a: np.ndarray, p: dict) -> np.ndarray:
    import cv2

    x = a.astype(np.float32) / 255.0
    x = np.clip(x * p["gain"], 0, 1) ** p["gamma"]
    x = x * np.asarray(p["cast"], np.float32)[None, None, :]
    hsv = cv2.cvtColor(np.clip(x, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + p["hue"]) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * p["saturation"], 0, 1)
    x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def render_row(row: dict, cache: dict) -> "Image.Image":
    """Produce the image of one manifest row."""
    import cv2
    from PIL import Image

    if row["source"] not in cache:
        img = load_source(row["source"])
        cache[row["source"]] = np.asarray(img)  # full resolution: _warp pre-shrinks per view
    src = cache[row["source"]]
    Hs, Ws = src.shape[:2]
    x0, y0, x1, y1 = row["region"]
    quad = np.array([[x0 * Ws, y0 * Hs], [x1 * Ws, y0 * Hs], [x1 * Ws, y1 * Hs], [x0 * Ws, y1 * Hs]],
                    np.float64)
    rw, rh = (x1 - x0) * Ws, (y1 - y0) * Hs
    for op in row["transform"]:
        if op["op"] == "perspective":
            j = np.asarray(op["jitter"]).reshape(4, 2) * np.array([rw, rh])
            quad = quad + j
        elif op["op"] == "rotate":
            c = quad.mean(axis=0)
            t = np.deg2rad(op["degrees"])
            R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
            quad = (quad - c) @ R.T + c
    out_wh = _native_wh(quad, rw, rh)
    a = _warp(src, quad, out_wh)
    for op in row["transform"]:
        if op["op"] == "photometric":
            a = _apply_photometric(a, op)
        elif op["op"] == "blur":
            a = cv2.GaussianBlur(a, (0, 0), op["sigma"])
        elif op["op"] == "occlude":
            H, W = a.shape[:2]
            bx = op["box"]
            xa, ya, xb, yb = int(bx[0] * W), int(bx[1] * H), int(bx[2] * W), int(bx[3] * H)
            patch = render_row({"file": "", "source": op["patch_source"], "transform": [],
                                "region": op["patch_region"]}, cache)
            a = a.copy()
            a[ya:yb, xa:xb] = np.asarray(patch.resize((xb - xa, yb - ya), Image.BILINEAR))
        elif op["op"] == "jpeg":
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, "JPEG", quality=op["quality"])
            a = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return Image.fromarray(a)


LICENSE_HEADER = """# Licences and attribution of the embedded default dataset

Every image in `jpg/` is derived (cropped, resized, warped, recoloured, blurred, re-compressed
or partly occluded by `scripts/make_default_dataset.py`) from a real photo listed below. The
per-image record, with the exact transform, is `manifest.csv` (columns `file`, `source`,
`transform`, `licence`, `author`, `origin`). Derived images keep the licence of their photo;
images derived from CC BY-SA photos are therefore CC BY-SA 4.0 (ShareAlike), and CC BY photos
require the attribution given here. Modifications: see `manifest.csv`.

Sizes: each view is rendered at long side 1024 (the paper's image size, Sec. 5.1) where its
source region holds that many real pixels, otherwise at the size the source gives (never
upsampled). `manifest.csv` records each image's `width`, `height`, its source photo's size, and
`scale_at_1024` / `upsampled_at_1024`: the factor by which the extractor resizes it at
`max_dim=1024`, the dataset's default (above 1: upsampled, no new detail). The last two lines
count the images the extractor downsizes, keeps and upsamples at the dataset's default
`max_dim=1024` and at `max_dim=512`. Summary:

```
{summary}
```

| source photo | used as | images | licence | author | origin |
|---|---|---|---|---|---|
"""


def write_licenses(rows, path, summary: str = "") -> None:
    per = {}
    for r in rows:
        d = per.setdefault(r["source"], {"roles": set(), "n": 0})
        d["roles"].add(r["relation"] if r["relation"] in ("train", "distractor") else "group " + r["group"])
        d["n"] += 1
    lines = [LICENSE_HEADER.replace("{summary}", summary)]
    for src in sorted(per):
        lic, author, origin = SOURCES[src]
        lines.append(f"| `{src}` | {', '.join(sorted(per[src]['roles']))} | {per[src]['n']} | "
                     f"{lic} | {author} | {origin} |\n")
    lines.append("\nLicence texts: CC BY 4.0 https://creativecommons.org/licenses/by/4.0/ ; "
                 "CC BY-SA 4.0 https://creativecommons.org/licenses/by-sa/4.0/ ; CC BY 2.0 "
                 "https://creativecommons.org/licenses/by/2.0/ ; CC0 1.0 "
                 "https://creativecommons.org/publicdomain/zero/1.0/ ; Apache-2.0 "
                 "https://www.apache.org/licenses/LICENSE-2.0 ; BSD-3-Clause "
                 "https://opensource.org/licenses/BSD-3-Clause .\n")
    Path(path).write_text("".join(lines))


def measure(out: Path, threads: int = 2, cache_dir=None) -> dict:
    """Time pool5 extraction of the whole set at its default max_dim and score SPoC (sum pooling + L2).

    Used to calibrate the set (target: SPoC mAP between 0.50 and 0.85) and to report the
    extraction time in docs/datasets.md. With ``cache_dir``, only score SPoC, reusing cached
    features (for quick calibration rounds).
    """
    import time

    import torch

    from selconv_lite.data.datasets import load_dataset
    from selconv_lite.features.extraction import FeatureExtractor

    torch.set_num_threads(threads)
    d = load_dataset("default", root=out)
    fx = FeatureExtractor(layers=("pool5",), max_dim=d.default_max_dim)
    if cache_dir is not None:
        from selconv_lite.features.cache import FeatureCache

        fc = FeatureCache(cache_dir, layers=("pool5",), max_dim=d.default_max_dim)
        fc.extract_all(d.images, progress=False)
        fc.extract_all(d.queries, crops=d.query_boxes, progress=False)

        def l2(v):
            return v / max(np.linalg.norm(v), 1e-12)
        db = np.stack([l2(fc.load(p).fmap.sum(axis=(0, 1)).astype(np.float64)) for p in d.images])
        q = np.stack([l2(fc.load(p, crop=b).fmap.sum(axis=(0, 1)).astype(np.float64))
                      for p, b in zip(d.queries, d.query_boxes)])
        res = d.evaluate(q, db)
        out_ = {"spoc_mAP": round(res["mAP"], 4),
                **{f"spoc_{p}": round(res[p]["mAP"], 4) for p in ("easy", "medium", "hard")},
                "aps": {qn: round(float(a), 3) for qn, a in zip(d.qimlist, res["aps"])}}
        print(json.dumps(out_, indent=1))
        return out_
    fx.extract(d.images[0])  # warm-up (model load) outside the timing

    def spoc(path, crop=None):
        f = fx.extract(path, crop=crop)["pool5"].fmap
        v = f.sum(axis=(0, 1)).astype(np.float64)
        return v / max(np.linalg.norm(v), 1e-12)

    t0 = time.perf_counter()
    db = np.stack([spoc(p) for p in d.images])
    q = np.stack([spoc(p, b) for p, b in zip(d.queries, d.query_boxes)])
    for p in d.train_images:
        fx.extract(p)
    secs = time.perf_counter() - t0
    res = d.evaluate(q, db)
    n = len(d.images) + len(d.queries) + len(d.train_images)
    out_ = {"images": n, "seconds": round(secs, 1), "threads": threads, "spoc_mAP": round(res["mAP"], 4),
            **{f"spoc_{p}": round(res[p]["mAP"], 4) for p in ("easy", "medium", "hard")},
            "aps": {qn: round(float(a), 3) for qn, a in zip(d.qimlist, res["aps"])}}
    print(json.dumps(out_, indent=1))
    return out_


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (never data/default: that is the paper-regime set now)")
    ap.add_argument("--measure", action="store_true",
                    help="only time the pool5 extraction of the existing set and score SPoC")
    ap.add_argument("--cache", default=None,
                    help="with --measure: score SPoC with a feature cache here (no timing)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if args.measure:
        measure(Path(args.out), cache_dir=args.cache)
        return 0
    from PIL import Image

    from selconv_lite.data.groundtruth import write_gnd_pickle

    out = Path(args.out)
    (out / "jpg").mkdir(parents=True, exist_ok=True)
    rows = plan()
    cache, sizes, source_sizes = {}, {}, {}
    for r in rows:
        im = render_row(r, cache)
        im.save(out / "jpg" / r["file"], "JPEG", quality=JPEG_QUALITY, optimize=True)
        sizes[r["file"]] = im.size
        h, w = cache[r["source"]].shape[:2]
        source_sizes[r["file"]] = (w, h)
    keep = {r["file"] for r in rows}
    for p in (out / "jpg").glob("*.jpg"):
        if p.name not in keep:
            p.unlink()
    write_manifest(rows, out / "manifest.csv", sizes, source_sizes)
    summary = size_summary(read_manifest(out / "manifest.csv"))
    write_licenses(rows, out / "LICENSES.md", summary)
    gt = build_gnd(rows, sizes)
    write_gnd_pickle(out / "gnd_default.pkl", gt["imlist"], gt["qimlist"], gt["gnd"],
                     trainlist=gt["trainlist"])
    n = {k: sum(r["role"] == k for r in rows) for k in ("query", "db", "train")}
    total = sum(p.stat().st_size for p in (out / "jpg").glob("*.jpg"))
    folder = sum(p.stat().st_size for p in out.parent.rglob("*") if p.is_file())
    print(f"wrote {len(rows)} images ({n}) to {out}, {total / 1e6:.1f} MB of JPEG (quality "
          f"{JPEG_QUALITY}); {out.parent} holds {folder / 1e6:.1f} MB")
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
