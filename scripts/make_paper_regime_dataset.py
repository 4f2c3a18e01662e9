#!/usr/bin/env python
"""Generate the "paper regime" set: a miniature Oxford of composited real photos (deterministic).

Issue 22: objects seen in cluttered scenes, at native resolution, under scale, viewpoint,
illumination, occlusion and blur, with Oxford-style queries, revisitop Easy / Hard / Junk labels
from a stated rule, distractors sharing the scenes, and a held-out training split disjoint in
objects *and* scenes. The construction rules are written down in
``docs/dataset_paper_regime.md`` (committed before any method was evaluated on the set); this
script implements them.

* **objects**: a hand-chosen region of a real photo, cut with a feathered super-ellipse alpha
  mask, warped by a homography (scale, tilt, in-plane rotation), relit, pasted into a scene;
  two objects also have a *real* second photo (OpenCV's graf3: viewpoint, leuvenB: light);
* **scenes**: 4:3 crops of other real photos holding at least 1024 x 768 source pixels,
  resized down to 1024 x 768;
* **no upsampling**: every image is 1024 x 768 from a crop with at least that many pixels, and
  every pasted object is down-sampled or at native scale: the largest local linear scale of its
  homography (``object_resample``) is <= 1 by construction (the quadrilateral is shrunk until
  it is). ``manifest.csv`` records both factors and ``scale_at_1024`` / ``upsampled_at_1024``.

Everything is decided by :func:`plan` from fixed seeds, the recorded source sizes
(:data:`SOURCES`) and normalised coordinates, without reading a pixel; :func:`render_row` reads
the photos and composes the image; :func:`build_gnd` makes the revisitop ``gnd`` pickle that
:func:`selconv_lite.data.datasets.load_default` reads (``root=`` the output folder).

Usage::

    apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds \\
        plasma-workspace-wallpapers opencv-doc          # the photo sources
    python scripts/make_paper_regime_dataset.py --out OUTDIR [--quality 80]
    python scripts/make_paper_regime_dataset.py --out OUTDIR --measure-quality   # size vs quality

``--root DIR`` (repeatable) looks for the packages' files under ``DIR`` instead of ``/`` (for
``.deb`` files unpacked with ``dpkg -x`` and not installed).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_default_dataset as mdd  # noqa: E402  (shared helpers: seeds, photometric changes, size columns)

_rng, _r, _photometric = mdd._rng, mdd._r, mdd._photometric

KEY = "paper_regime"           # the seed key of this set (``_rng(KEY, ...)``)
OUT_W, OUT_H = 1024, 768       # every image: the paper's long side 1024 (Sec. 5.1), 4:3
EXTRACT_DIM = mdd.EXTRACT_DIM
N_DB_PER_OBJECT = 12
N_QUERIES_PER_OBJECT = 5
N_DISTRACTOR_OBJECT_IMAGES = 6
N_SCENE_ONLY_TEST = 4
N_TRAIN_PER_OBJECT = 6
N_SCENE_ONLY_TRAIN = 3
S_SMALL, S_LOW, S_CAP = 0.10, 0.13, 0.80
TILT_MAX, ROT_MAX, QUERY_TILT_MAX, QUERY_MIN_TARGET = 0.20, 15.0, 0.15, 0.20
FEATHER = 0.18
#: the label rule (docs/dataset_paper_regime.md, "Labels")
JUNK_VISIBLE, JUNK_SCALE = 0.40, 0.12
EASY_VISIBLE, EASY_SCALE, EASY_TILT, EASY_BLUR = 0.80, 0.25, 0.10, 1.0
QUALITIES = (95, 90, 85, 80, 75, 70, 65, 60)
SIZE_BUDGET_MB = 38.0

# ------------------------------------------------------------------------------ sources
_LOM = "https://gitlab.com/ubports/development/core/lomiri-wallpapers"
_PLASMA = ("LGPL-3.0 (the wallpaper's metadata.json); package copyright file: GPL-2+",
           "https://invent.kde.org/plasma/plasma-workspace-wallpapers")


def _lom(name, w, h, author, lic, pkg="lomiri-wallpapers-16.04"):
    return {"path": f"usr/share/backgrounds/{name}", "size": (w, h), "licence": lic,
            "author": author, "package": pkg, "origin": _LOM}


def _mate(name, w, h, author):
    return {"path": f"usr/share/backgrounds/mate/nature/{name}", "size": (w, h),
            "licence": "GPL-2+", "author": author, "package": "mate-backgrounds",
            "origin": "https://git.mate-desktop.org/mate-backgrounds/"}


def _plasma(name, author, file="2560x1600.jpg", w=2560, h=1600):
    return {"path": f"usr/share/wallpapers/{name}/contents/images/{file}", "size": (w, h),
            "licence": _PLASMA[0], "author": author, "package": "plasma-workspace-wallpapers",
            "origin": _PLASMA[1]}


def _ocv(name, w, h, origin=""):
    return {"path": f"usr/share/doc/opencv-doc/examples/data/{name}", "size": (w, h),
            "licence": "Apache-2.0 AND BSD-3-Clause", "author": "OpenCV contributors (sample data)"
            + (f"; image origin: {origin}" if origin else ""), "package": "opencv-doc",
            "origin": "Debian opencv-doc 4.6.0, examples/data (copyright file: Files: *)"}


_VGG = "Oxford VGG affine-covariant regions data"
#: every photo used, with its size in pixels (checked when rendering), licence and author
#: (from the package's copyright file / the wallpaper's metadata)
SOURCES = {
    # lomiri-wallpapers-16.04 / -20.04 (copyright file, per file)
    "fig": _lom("Picture_0B_by_freespace.jpg", 2572, 1740, 'Trevor "Freespace", 2018', "CC-BY-4.0"),
    "dogs": _lom("friends_by_Aitzol_Berasategi.jpg", 2056, 3088, "Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "clock": _lom("greentock_by_Peter_Nerlich.jpg", 2880, 2160, "Peter Nerlich, 2018", "CC-BY-SA-4.0"),
    "bird_lamp": _lom("free_by_Peter_Nerlich.jpg", 2880, 2160, "Peter Nerlich, 2018", "CC-BY-SA-4.0"),
    "wine": _lom("Wine_by_Jakkub_Mede.jpg", 2560, 3837, "Jakub Mede, 2018", "CC-BY-4.0"),
    "seeding": _lom("seeding_by_Clements_Engelhardt.jpg", 5312, 2988, "Clemens Engelhardt, 2018", "CC0-1.0"),
    "brushes": _lom("Picture_1A_by_freespace.jpg", 1365, 1074, 'Trevor "Freespace", 2018', "CC-BY-4.0"),
    "aitzgorri": _lom("aitzgorri_by_Aitzol_Berasategi.jpg", 3088, 2056, "Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "life": _lom("life_by_Aitzol_Berasategi.jpg", 3088, 2056, "Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "picos": _lom("picosdeeuropa_by_Aitzol_Berasategi.jpg", 3264, 2448, "Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "sunset": _lom("sunset_by_Aitzol_Berasategi.jpg", 4272, 2848, "Aitzol Berasategi, 2018", "CC-BY-4.0"),
    "dragonfly": _lom("Dragonfly_by_Bolly.jpg", 4224, 3168, '"Bolly", 2018', "CC-BY-SA-4.0"),
    "bridge": _lom("Bridge_by_Sander_Klootwijk.jpg", 4352, 2448, "Sander Klootwijk, 2018", "CC-BY-SA-4.0"),
    "kleiber": _lom("Kleiber_by_Lukas_Baubkus.jpg", 6028, 3391, "Lukas Baubkus, 2021", "CC-BY-SA-3.0",
                    pkg="lomiri-wallpapers-20.04"),
    # mate-backgrounds (copyright file, per file; all GPL-2+)
    "ladybird": _mate("LadyBird.jpg", 2560, 1600, "Charles Barbin, 2008"),
    "yellowflower": _mate("YellowFlower.jpg", 2560, 1600, "Charles Barbin, 2008"),
    "garden": _mate("Garden.jpg", 2560, 1600, "Charles Barbin, 2008"),
    "freshflower": _mate("FreshFlower.jpg", 1600, 1203, "Jens Ansorg, 2005"),
    "twowings": _mate("TwoWings.jpg", 2560, 1600, "Charles Barbin, Hylke Bons, 2008"),
    "aqua": _mate("Aqua.jpg", 2560, 1600, "Charles Barbin, 2008"),
    "storm": _mate("Storm.jpg", 1920, 1280, "Sergey Nazarov, 2008"),
    "raindrops": _mate("RainDrops.jpg", 1920, 1200, '"blackcombwhistler07", 2008'),
    "dune": _mate("Dune.jpg", 1680, 1050, "Marco Cogoni, 2007; Hylke Bons, 2008"),
    "blinds": _mate("Blinds.jpg", 1920, 1200, "Lennart Poettering, Andrea Cimitan, 2008"),
    "meadow": _mate("GreenMeadow.jpg", 1280, 1024, "Timothy Schellhase, 2005; Lapo Calamandrei, 2008"),
    "wood": _mate("Wood.jpg", 2560, 1920, "Jean-Francois Fortin Tam, 2008"),
    # plasma-workspace-wallpapers (author and licence from each wallpaper's metadata.json)
    "eveningglow": _plasma("EveningGlow", "Ian Hex"),
    "cups": _plasma("ColorfulCups", "Dmitri Popov"),
    "coldripple": _plasma("ColdRipple", "Risto Saukonpaa"),
    "fallenleaf": _plasma("FallenLeaf", "Martin Klapetek"),
    "path": _plasma("Path", "Risto Saukonpaa"),
    "bythewater": _plasma("BytheWater", "Maciej Wiklo"),
    "onestandsout": _plasma("OneStandsOut", "Risto Saukonpaa"),
    "summer1am": _plasma("summer_1am", "Risto Saukonpaa"),
    "darkesthour": _plasma("DarkestHour", "Risto Saukonpaa"),
    "grey": _plasma("Grey", "Sigi Sagi"),
    # opencv-doc (small photos: small objects only, never upsampled)
    "graf1": _ocv("graf1.png", 800, 640, _VGG), "graf3": _ocv("graf3.png", 800, 640, _VGG),
    "leuvenA": _ocv("leuvenA.jpg", 751, 563, _VGG), "leuvenB": _ocv("leuvenB.jpg", 751, 563, _VGG),
    "aloeL": _ocv("aloeL.jpg", 1282, 1110, "Middlebury stereo"),
    "building": _ocv("building.jpg", 868, 600), "box": _ocv("box.png", 324, 223),
}

# name -> (views [(source, region x0 y0 x1 y1 normalised)], mask exponent p,
#          second-view kind: None, "viewpoint" or "illumination")
TEST_OBJECTS = {
    "fig_bowl": ([("fig", (0.22, 0.12, 1.0, 1.0))], 2, None),
    "dogs": ([("dogs", (0.27, 0.22, 0.68, 0.68))], 2, None),
    "clock": ([("clock", (0.28, 0.02, 0.98, 0.78))], 2, None),
    "bird_ornament": ([("bird_lamp", (0.22, 0.58, 0.68, 0.88))], 2, None),
    "wine_table": ([("wine", (0.25, 0.10, 0.92, 0.58))], 4, None),
    "dandelion": ([("seeding", (0.10, 0.05, 0.48, 0.58))], 2, None),
    "nuthatch": ([("kleiber", (0.30, 0.30, 0.58, 0.75))], 2, None),
    "ladybird": ([("ladybird", (0.55, 0.35, 0.98, 0.68))], 2, None),
    "yellow_flower": ([("yellowflower", (0.42, 0.0, 1.0, 1.0))], 2, None),
    "marigold": ([("garden", (0.35, 0.15, 1.0, 1.0))], 2, None),
    "boats": ([("eveningglow", (0.0, 0.45, 1.0, 0.88))], 4, None),
    "cups": ([("cups", (0.30, 0.30, 0.80, 1.0))], 2, None),
    "graffiti": ([("graf1", (0.03, 0.03, 0.97, 0.97)), ("graf3", (0.03, 0.03, 0.97, 0.97))], 4,
                 "viewpoint"),
    "leuven": ([("leuvenA", (0.02, 0.02, 0.98, 0.98)), ("leuvenB", (0.02, 0.02, 0.98, 0.98))], 4,
               "illumination"),
}
#: objects pasted into test scenes without any query (distractors)
DISTRACTOR_OBJECTS = {
    "pier": ([("coldripple", (0.10, 0.50, 0.95, 1.0))], 4, None),
    "aloe": ([("aloeL", (0.05, 0.05, 0.95, 0.95))], 2, None),
    "building": ([("building", (0.02, 0.02, 0.98, 0.98))], 4, None),
}
TRAIN_OBJECTS = {
    "brushes": ([("brushes", (0.0, 0.0, 0.72, 1.0))], 4, None),
    "orange_flower": ([("freshflower", (0.15, 0.15, 0.95, 0.95))], 2, None),
    "seeds": ([("twowings", (0.40, 0.15, 0.82, 1.0))], 2, None),
    "water_drop": ([("aqua", (0.45, 0.45, 0.90, 0.90))], 2, None),
    "maple_leaf": ([("fallenleaf", (0.45, 0.30, 0.88, 0.98))], 2, None),
    "box": ([("box", (0.0, 0.0, 1.0, 1.0))], 4, None),
}
TEST_SCENES = ["aitzgorri", "life", "picos", "sunset", "dragonfly", "path", "bythewater",
               "onestandsout", "storm", "raindrops"]
TRAIN_SCENES = ["bridge", "summer1am", "darkesthour", "dune", "blinds", "meadow", "wood", "grey"]

MANIFEST_FIELDS = ["file", "role", "kind", "object", "relation", "is_query", "object_source",
                   "object_region", "mask_p", "view", "scene", "scene_region", "quad", "bbx",
                   "obj_scale", "target_scale", "object_resample", "scene_resample", "tilt",
                   "rotation", "visible", "blur", "photometric", "occluder", "view_kind",
                   "occlusion_level"]
SIZE_FIELDS = ["width", "height", f"scale_at_{EXTRACT_DIM}", f"upsampled_at_{EXTRACT_DIM}"]


def photos_of(objects) -> set:
    return {src for views, _, _ in objects.values() for src, _ in views}


# ------------------------------------------------------------------------------ geometry
def homography(src, dst) -> np.ndarray:
    """3x3 H with ``dst ~ H @ src`` for 4 point pairs (``(4, 2)`` arrays), by the DLT."""
    A, b = [], []
    for (x, y), (u, v) in zip(np.asarray(src, float), np.asarray(dst, float)):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); b.append(u)
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y]); b.append(v)
    h = np.linalg.solve(np.array(A), np.array(b))
    return np.append(h, 1.0).reshape(3, 3)


def _apply_h(H, pts) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ H.T
    return p[:, :2] / p[:, 2:3]


def max_local_scale(H, w, h, n=5) -> float:
    """Largest singular value of the Jacobian of ``H`` over an n x n grid of the ``w x h`` source
    rectangle (corners included): the object's worst-case linear resampling factor."""
    g = np.stack(np.meshgrid(np.linspace(0, w, n), np.linspace(0, h, n)), -1).reshape(-1, 2)
    x, y = g[:, 0], g[:, 1]
    d = H[2, 0] * x + H[2, 1] * y + H[2, 2]
    u = (H[0, 0] * x + H[0, 1] * y + H[0, 2]) / d
    v = (H[1, 0] * x + H[1, 1] * y + H[1, 2]) / d
    J = np.empty((len(x), 2, 2))
    J[:, 0, 0] = (H[0, 0] - u * H[2, 0]) / d
    J[:, 0, 1] = (H[0, 1] - u * H[2, 1]) / d
    J[:, 1, 0] = (H[1, 0] - v * H[2, 0]) / d
    J[:, 1, 1] = (H[1, 1] - v * H[2, 1]) / d
    return float(np.linalg.svd(J, compute_uv=False)[:, 0].max())


def alpha_mask(u, v, p) -> np.ndarray:
    """Feathered super-ellipse alpha at normalised coordinates ``u, v`` in [-1, 1]."""
    r = (np.abs(u) ** p + np.abs(v) ** p) ** (1.0 / p)
    return np.clip((1.0 - r) / FEATHER, 0.0, 1.0)


def visible_fraction(H, w, h, p, occ_box, n=48) -> float:
    """Fraction of the object's alpha mass (in image area) outside the occluder box."""
    if occ_box is None:
        return 1.0
    t = (np.arange(n) + 0.5) / n
    uu, vv = np.meshgrid(t, t)
    a = alpha_mask(2 * uu - 1, 2 * vv - 1, p).ravel()
    src = np.c_[uu.ravel() * w, vv.ravel() * h]
    dst = _apply_h(H, src)
    d = H[2, 0] * src[:, 0] + H[2, 1] * src[:, 1] + H[2, 2]
    wgt = a * np.abs(np.linalg.det(H)) / np.abs(d) ** 3   # alpha x local area scale
    x0, y0, x1, y1 = occ_box
    inside = (dst[:, 0] >= x0) & (dst[:, 0] <= x1) & (dst[:, 1] >= y0) & (dst[:, 1] <= y1)
    return float(wgt[~inside].sum() / max(wgt.sum(), 1e-12))


def label(visible, scale, tilt, blur, view_kind) -> str:
    """revisitop relation of a database image to its object's queries (the stated rule)."""
    if visible < JUNK_VISIBLE or scale < JUNK_SCALE:
        return "junk"
    if (visible >= EASY_VISIBLE and scale >= EASY_SCALE and tilt <= EASY_TILT
            and blur <= EASY_BLUR and view_kind != "viewpoint"):
        return "easy"
    return "hard"


# --------------------------------------------------------------------------------- plan
def _scene_region(rng, scene) -> list:
    """Normalised 4:3 crop of ``scene`` holding >= OUT_W x OUT_H source pixels."""
    W, H = SOURCES[scene]["size"]
    wmax = min(W, H * OUT_W / OUT_H)
    lo = OUT_W + 2    # 2 px spare: the rounded region still holds >= OUT_W source pixels
    assert wmax >= lo, f"scene {scene} too small"
    w = rng.uniform(lo, wmax)
    h = w * OUT_H / OUT_W
    x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
    return [_r(x / W), _r(y / H), _r((x + w) / W), _r((y + h) / H)]


def _s_max(src, region) -> float:
    W, H = SOURCES[src]["size"]
    rw, rh = (region[2] - region[0]) * W, (region[3] - region[1]) * H
    a = rw / rh
    fit = min(0.9, 0.9 * OUT_H * a / OUT_W) if a >= 1 else min(0.9 * OUT_H / OUT_W, 0.9 / a)
    return min(S_CAP, 0.9 * max(rw, rh) / OUT_W, fit)


def _place(rng, src, region, target, tilt, rot):
    """Destination quadrilateral, homography and measured numbers of one pasted object."""
    W, H = SOURCES[src]["size"]
    rw, rh = (region[2] - region[0]) * W, (region[3] - region[1]) * H
    long_px = target * OUT_W
    bw, bh = (long_px, long_px * rh / rw) if rw >= rh else (long_px * rw / rh, long_px)
    base = np.array([[-bw / 2, -bh / 2], [bw / 2, -bh / 2], [bw / 2, bh / 2], [-bw / 2, bh / 2]])
    jit = rng.uniform(-tilt, tilt, size=(4, 2)) * np.array([bw, bh])
    t = np.deg2rad(rot)
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    quad = (base + jit) @ R.T
    srcq = np.array([[0, 0], [rw, 0], [rw, rh], [0, rh]], float)
    # shrink: never upsampled, and the whole quadrilateral inside 0.98 of the frame
    Hm = homography(srcq, quad)
    f = min(1.0, 0.995 / max_local_scale(Hm, rw, rh))   # 0.5 % spare for the rounding below
    ext = quad.max(0) - quad.min(0)
    f = min(f, 0.98 * OUT_W / ext[0], 0.98 * OUT_H / ext[1])
    quad = quad * f
    lo, hi = quad.min(0), quad.max(0)
    off = np.array([rng.uniform(-lo[0], OUT_W - hi[0]), rng.uniform(-lo[1], OUT_H - hi[1])])
    quad = np.round(quad + off, 2)
    Hm = homography(srcq, quad)
    res = max_local_scale(Hm, rw, rh)
    if res > 1.0:
        raise AssertionError(f"{src}: object resample {res} > 1")
    lo, hi = quad.min(0), quad.max(0)
    bbx = [_r(max(lo[0], 0)), _r(max(lo[1], 0)), _r(min(hi[0], OUT_W - 1)), _r(min(hi[1], OUT_H - 1))]
    scale = max(bbx[2] - bbx[0], bbx[3] - bbx[1]) / OUT_W
    return quad, Hm, (rw, rh), bbx, scale, res


def _occluder(rng, bbx, level, scenes, exclude):
    """An occluding piece of another scene photo over the object's box ``bbx``."""
    lo, hi = {"light": (0.10, 0.30), "heavy": (0.40, 0.75)}[level]
    bw, bh = bbx[2] - bbx[0], bbx[3] - bbx[1]
    area = rng.uniform(lo, hi) * bw * bh
    asp = rng.uniform(0.75, 1.33)
    ow, oh = np.sqrt(area * asp), np.sqrt(area / asp)
    ow, oh = min(ow, OUT_W * 0.95), min(oh, OUT_H * 0.95)
    cx = rng.uniform(bbx[0], bbx[2]); cy = rng.uniform(bbx[1], bbx[3])
    x0 = float(np.clip(cx - ow / 2, 0, OUT_W - ow)); y0 = float(np.clip(cy - oh / 2, 0, OUT_H - oh))
    box = [_r(x0), _r(y0), _r(x0 + ow), _r(y0 + oh)]
    src = scenes[int(rng.integers(len(scenes)))]
    if src == exclude:
        src = scenes[(scenes.index(src) + 1) % len(scenes)]
    W, H = SOURCES[src]["size"]
    # a source piece with at least as many pixels as the patch (down-sampled, never upsampled)
    k = rng.uniform(1.02, min(2.0, W / ow, H / oh))   # 2 % spare for pixel rounding
    sw, sh = ow * k, oh * k
    sx, sy = rng.uniform(0, W - sw), rng.uniform(0, H - sh)
    return {"source": src, "region": [_r(sx / W), _r(sy / H), _r((sx + sw) / W), _r((sy + sh) / H)],
            "box": box, "resample": _r(1.0 / k)}


def _object_rows(name, spec, n, scenes, role, kind, n_queries):
    """``n`` images of object ``name`` pasted into ``scenes`` (rows of the manifest)."""
    views, p, second = spec
    rng = _rng(KEY, role, name)
    src0, reg0 = views[0]
    smax = _s_max(src0, reg0)
    targets = np.r_[S_SMALL, np.exp(np.linspace(np.log(S_LOW), np.log(max(smax, S_LOW)), n - 1))]
    targets = targets * rng.uniform(0.96, 1.04, size=n)
    order = rng.permutation(n)              # slot i gets targets[order[i]]
    targets = targets[order]
    cand = [i for i in range(n) if targets[i] >= QUERY_MIN_TARGET]
    qslots = set(rng.choice(cand, size=min(n_queries, len(cand)), replace=False).tolist()) if n_queries else set()
    others = [i for i in range(n) if i not in qslots]
    if kind == "object":   # 1 of the 7 non-query images unoccluded, 3 light, 3 heavy
        levels = list(rng.permutation(["none"] * (len(others) - 6) + ["light"] * 3 + ["heavy"] * 3))
    else:                  # distractor and training objects: none / light / heavy at 50 / 25 / 25 %
        levels = [str(x) for x in rng.choice(["none", "light", "heavy"], size=len(others),
                                             p=[0.5, 0.25, 0.25])]
    occl = dict(zip(others, levels))
    second_slots = set()
    if len(views) > 1:
        second_slots = set(rng.choice(others, size=4, replace=False).tolist())
    offset = int(rng.integers(len(scenes)))
    rows = []
    for i in range(n):
        r = _rng(KEY, role, name, i)
        is_q = i in qslots
        vi = 1 if i in second_slots else 0
        src, region = views[vi]
        scene = scenes[(offset + i) % len(scenes)]
        tilt = _r(r.uniform(0, QUERY_TILT_MAX if is_q else TILT_MAX))
        rot = _r(r.uniform(-ROT_MAX, ROT_MAX))
        quad, Hm, (rw, rh), bbx, scale, res = _place(r, src, region, float(targets[i]), tilt, rot)
        u = r.random()
        photo = None if u < 0.2 else _photometric(r, "mild" if u < 0.7 else "strong")
        blur = _r(r.uniform(0.8, 2.5)) if r.random() < 0.3 else 0.0
        level = "none" if is_q else occl.get(i, "none")
        occ = None if level == "none" else _occluder(r, bbx, level, scenes, scene)
        vis = visible_fraction(Hm, rw, rh, p, occ["box"] if occ else None)
        view_kind = second if vi == 1 else None
        rel = label(vis, scale, tilt, blur, view_kind) if kind == "object" else kind
        rows.append({
            "file": f"{'pr' if role == 'db' else 'tr'}_{name}_{i + 1:02d}.jpg", "role": role,
            "kind": kind, "object": name, "relation": rel, "is_query": is_q,
            "object_source": src, "object_region": list(region), "mask_p": p,
            "view": "second" if vi else "primary", "view_kind": view_kind,
            "scene": scene, "scene_region": _scene_region(r, scene),
            "quad": quad.tolist(), "bbx": bbx, "obj_scale": _r(scale),
            "target_scale": _r(targets[i]), "object_resample": _r(res), "tilt": tilt,
            "rotation": rot, "visible": _r(vis), "blur": blur, "photometric": photo,
            "occluder": occ, "occlusion_level": level})
    return rows


def _scene_rows(scenes, n, role):
    rows = []
    for s in scenes:
        for i in range(n):
            r = _rng(KEY, role, "scene", s, i)
            rows.append({"file": f"{'pr' if role == 'db' else 'tr'}_scene_{s}_{i + 1}.jpg",
                         "role": role, "kind": "scene", "object": "", "relation": "distractor"
                         if role == "db" else "train", "is_query": False, "object_source": "",
                         "object_region": None, "mask_p": None, "view": "", "view_kind": None,
                         "scene": s, "scene_region": _scene_region(r, s), "quad": None,
                         "bbx": None, "obj_scale": 0.0, "target_scale": 0.0,
                         "object_resample": 0.0, "tilt": 0.0, "rotation": 0.0, "visible": 0.0,
                         "blur": _r(r.uniform(0.8, 2.5)) if r.random() < 0.3 else 0.0,
                         "photometric": None, "occluder": None, "occlusion_level": "none"})
    return rows


def scene_resample(row) -> float:
    """Factor by which the scene crop is resized to OUT_W x OUT_H (<= 1: down-sampled)."""
    W, H = SOURCES[row["scene"]]["size"]
    x0, y0, x1, y1 = row["scene_region"]
    return max(OUT_W / ((x1 - x0) * W), OUT_H / ((y1 - y0) * H))


def check_disjoint() -> None:
    """Every photo has one role; the training split shares no photo with the test split."""
    groups = {"test objects": photos_of(TEST_OBJECTS), "distractor objects": photos_of(DISTRACTOR_OBJECTS),
              "train objects": photos_of(TRAIN_OBJECTS), "test scenes": set(TEST_SCENES),
              "train scenes": set(TRAIN_SCENES)}
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = groups[a] & groups[b]
            if both:
                raise AssertionError(f"photos {sorted(both)} are both {a} and {b}")
    unknown = set().union(*groups.values()) - set(SOURCES)
    if unknown:
        raise AssertionError(f"photos without a SOURCES entry: {sorted(unknown)}")


def plan() -> list[dict]:
    """Every image of the set, decided from seeds and :data:`SOURCES` sizes (no pixel read).

    Order: the test database (objects, distractor objects, scenes alone), then training.
    Asserts the set's invariants (docs/dataset_paper_regime.md).
    """
    check_disjoint()
    rows = []
    for name, spec in TEST_OBJECTS.items():
        rows += _object_rows(name, spec, N_DB_PER_OBJECT, TEST_SCENES, "db", "object",
                             N_QUERIES_PER_OBJECT)
    for name, spec in DISTRACTOR_OBJECTS.items():
        rows += _object_rows(name, spec, N_DISTRACTOR_OBJECT_IMAGES, TEST_SCENES, "db",
                             "distractor", 0)
    rows += _scene_rows(TEST_SCENES, N_SCENE_ONLY_TEST, "db")
    for name, spec in TRAIN_OBJECTS.items():
        rows += _object_rows(name, spec, N_TRAIN_PER_OBJECT, TRAIN_SCENES, "train", "train", 0)
    rows += _scene_rows(TRAIN_SCENES, N_SCENE_ONLY_TRAIN, "train")
    for r in rows:
        assert scene_resample(r) <= 1.0, r["file"]
        r["scene_resample"] = _r(scene_resample(r))
    _check_plan(rows)
    return rows


def _check_plan(rows) -> None:
    files = [r["file"] for r in rows]
    assert len(set(files)) == len(files), "duplicate file names"
    for r in rows:
        assert r["scene_resample"] <= 1.0 and r["object_resample"] <= 1.0, r["file"]
        if r["occluder"]:
            assert r["occluder"]["resample"] <= 1.0, r["file"]
    train_photos = {r["scene"] for r in rows if r["role"] == "train"} | \
        {r["object_source"] for r in rows if r["role"] == "train" and r["object_source"]}
    test_photos = {r["scene"] for r in rows if r["role"] == "db"} | \
        {r["object_source"] for r in rows if r["role"] == "db" and r["object_source"]} | \
        {r["occluder"]["source"] for r in rows if r["role"] == "db" and r["occluder"]}
    train_photos |= {r["occluder"]["source"] for r in rows if r["role"] == "train" and r["occluder"]}
    assert not train_photos & test_photos, f"train/test share photos {train_photos & test_photos}"
    for name in TEST_OBJECTS:
        mine = [r for r in rows if r["object"] == name and r["role"] == "db"]
        pos = [r for r in mine if r["relation"] in ("easy", "hard")]
        qs = [r for r in mine if r["is_query"]]
        assert len(pos) >= 8, f"{name}: {len(pos)} positives"
        assert len(qs) == N_QUERIES_PER_OBJECT, f"{name}: {len(qs)} queries"
        for q in qs:
            assert q["visible"] >= EASY_VISIBLE and q["obj_scale"] >= 0.15, q["file"]


def build_gnd(rows) -> dict:
    """revisitop-format ground truth: queries are database images with the object's box;
    a query's own image is junk for it (as in Oxford5k / Paris6k)."""
    db = [r for r in rows if r["role"] == "db"]
    stem = lambda f: f.rsplit(".", 1)[0]  # noqa: E731
    gnd, qimlist = [], []
    for qi, q in enumerate(r for r in db if r["is_query"]):
        g = {"easy": [], "hard": [], "junk": []}
        for i, r in enumerate(db):
            if r["kind"] == "object" and r["object"] == q["object"]:
                g["junk" if r["file"] == q["file"] else r["relation"]].append(i)
        gnd.append({**g, "bbx": list(q["bbx"])})
        qimlist.append(stem(q["file"]))
    return {"imlist": [stem(r["file"]) for r in db], "qimlist": qimlist, "gnd": gnd,
            "trainlist": [stem(r["file"]) for r in rows if r["role"] == "train"]}


# -------------------------------------------------------------------------------- render
def load_photo(key: str, roots) -> np.ndarray:
    """The photo ``key`` of :data:`SOURCES` as an RGB uint8 array; checks its recorded size."""
    from PIL import Image

    s = SOURCES[key]
    for root in roots:
        p = Path(root) / s["path"]
        if p.is_file():
            a = np.asarray(Image.open(p).convert("RGB"))
            if (a.shape[1], a.shape[0]) != tuple(s["size"]):
                raise SystemExit(f"{p}: size {a.shape[1]}x{a.shape[0]}, expected "
                                 f"{s['size'][0]}x{s['size'][1]} (another package version?)")
            return a
    raise SystemExit(f"photo {key} ({s['path']}) not found under {list(map(str, roots))}; install "
                     f"the Debian package '{s['package']}' (apt-get install {s['package']})")


def _region_px(a, region):
    """Pixels of a normalised region, rounded outwards (never fewer pixels than planned)."""
    H, W = a.shape[:2]
    x0, y0, x1, y1 = region
    return a[int(np.floor(y0 * H)):int(np.ceil(y1 * H)), int(np.floor(x0 * W)):int(np.ceil(x1 * W))]


def render_row(row, photo) -> np.ndarray:
    """Compose the image of one manifest row; ``photo(key)`` returns a source array."""
    import cv2

    bg = cv2.resize(_region_px(photo(row["scene"]), row["scene_region"]), (OUT_W, OUT_H),
                    interpolation=cv2.INTER_AREA).astype(np.float32)
    if row["quad"] is not None:
        obj = _region_px(photo(row["object_source"]), row["object_region"])
        quad = np.array(row["quad"], np.float32)
        side = max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[3] - quad[0]),
                   np.linalg.norm(quad[2] - quad[1]), np.linalg.norm(quad[2] - quad[3]))
        s = min(1.0, 2.0 * side / max(obj.shape[:2]))    # pre-shrink against aliasing
        if s < 1.0:
            obj = cv2.resize(obj, (max(2, round(obj.shape[1] * s)), max(2, round(obj.shape[0] * s))),
                             interpolation=cv2.INTER_AREA)
        if row["photometric"]:
            obj = mdd._apply_photometric(obj, row["photometric"])
        h, w = obj.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        alpha = alpha_mask(2 * (xx + 0.5) / w - 1, 2 * (yy + 0.5) / h - 1, row["mask_p"])
        M = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), quad)
        ow = cv2.warpPerspective(obj.astype(np.float32), M, (OUT_W, OUT_H), flags=cv2.INTER_LINEAR)
        oa = cv2.warpPerspective(alpha.astype(np.float32), M, (OUT_W, OUT_H), flags=cv2.INTER_LINEAR)
        bg = bg * (1 - oa[..., None]) + ow * oa[..., None]
    occ = row["occluder"]
    if occ:
        x0, y0, x1, y1 = occ["box"]
        xa, ya = int(round(x0)), int(round(y0))
        pw, ph = max(2, int(round(x1)) - xa), max(2, int(round(y1)) - ya)
        piece = cv2.resize(_region_px(photo(occ["source"]), occ["region"]), (pw, ph),
                           interpolation=cv2.INTER_AREA).astype(np.float32)
        yy, xx = np.mgrid[0:ph, 0:pw]
        f = 0.06 * min(pw, ph)   # feathered edge, 0.5 on the box border
        d = np.minimum.reduce([xx + 0.5, pw - xx - 0.5, yy + 0.5, ph - yy - 0.5])
        a = np.clip(0.5 + d / (2 * f), 0, 1)[..., None]
        sub = bg[ya:ya + ph, xa:xa + pw]
        bg[ya:ya + ph, xa:xa + pw] = sub * (1 - a[:sub.shape[0], :sub.shape[1]]) + \
            piece[:sub.shape[0], :sub.shape[1]] * a[:sub.shape[0], :sub.shape[1]]
    out = np.clip(np.round(bg), 0, 255).astype(np.uint8)
    if row["blur"] > 0:
        out = cv2.GaussianBlur(out, (0, 0), row["blur"])
    return out


# ------------------------------------------------------------------------ manifest, licences
def size_columns(size) -> dict:
    return {k: v for k, v in mdd.size_columns(size, size).items() if k in SIZE_FIELDS}


def write_manifest(rows, path, sizes) -> None:
    """``manifest.csv``: the plan of every image (JSON for structured columns), its size and
    the licences of the photos it contains."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS + SIZE_FIELDS + ["photos", "licences"],
                           lineterminator="\n")
        w.writeheader()
        for r in rows:
            photos = photos_in(r)
            rec = {k: (json.dumps(r[k], separators=(",", ":")) if isinstance(r[k], (list, dict))
                       or r[k] is None else r[k]) for k in MANIFEST_FIELDS}
            w.writerow({**rec, **size_columns(sizes[r["file"]]), "photos": " ".join(photos),
                        "licences": " ; ".join(sorted({SOURCES[p]["licence"] for p in photos}))})


def photos_in(row) -> list:
    ps = [row["scene"]] + ([row["object_source"]] if row["object_source"] else []) + \
        ([row["occluder"]["source"]] if row["occluder"] else [])
    return list(dict.fromkeys(ps))


LICENSE_HEADER = """# Licences and attribution of the paper-regime set

Every image is a composite made by `scripts/make_paper_regime_dataset.py` from the real photos
listed below (construction rules: `docs/dataset_paper_regime.md`): a crop of a scene photo,
optionally a region of an object photo (feathered mask, warped, relit) and a piece of another
scene photo (occluder), optionally blurred. `manifest.csv` lists, per image, the photos it
contains (`photos`), their licences and every parameter. A composite carries the licences of
all its photos: it is CC BY-SA if one of them is CC BY-SA, GPL-2+ / LGPL-3 where a MATE or
Plasma photo is in it; attribution is given here.

Summary:

```
{summary}
```

| photo | file (Debian package) | size | used as | images | licence | author | origin |
|---|---|---|---|---|---|---|---|
"""


def write_licenses(rows, path, summary="") -> None:
    roles = {**{p: "test object" for p in photos_of(TEST_OBJECTS)},
             **{p: "distractor object" for p in photos_of(DISTRACTOR_OBJECTS)},
             **{p: "training object" for p in photos_of(TRAIN_OBJECTS)},
             **{p: "test scene" for p in TEST_SCENES}, **{p: "training scene" for p in TRAIN_SCENES}}
    count = {}
    for r in rows:
        for p in photos_in(r):
            count[p] = count.get(p, 0) + 1
    lines = [LICENSE_HEADER.replace("{summary}", summary)]
    for k in sorted(count):
        s = SOURCES[k]
        lines.append(f"| `{k}` | `{s['path']}` ({s['package']}) | {s['size'][0]}x{s['size'][1]} | "
                     f"{roles[k]} | {count[k]} | {s['licence']} | {s['author']} | {s['origin']} |\n")
    lines.append("\nLicence texts: CC BY 4.0 https://creativecommons.org/licenses/by/4.0/ ; CC BY-SA "
                 "4.0 https://creativecommons.org/licenses/by-sa/4.0/ ; CC BY-SA 3.0 "
                 "https://creativecommons.org/licenses/by-sa/3.0/ ; CC0 1.0 "
                 "https://creativecommons.org/publicdomain/zero/1.0/ ; GPL-2+ "
                 "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html ; LGPL-3.0 "
                 "https://www.gnu.org/licenses/lgpl-3.0.html ; Apache-2.0 "
                 "https://www.apache.org/licenses/LICENSE-2.0 ; BSD-3-Clause "
                 "https://opensource.org/licenses/BSD-3-Clause .\n")
    Path(path).write_text("".join(lines))


def summary(rows, sizes=None) -> str:
    """Counts, labels, scales and resampling factors of the set (printed and in LICENSES.md)."""
    db = [r for r in rows if r["role"] == "db"]
    obj = [r for r in db if r["kind"] == "object"]
    rel = {k: sum(r["relation"] == k for r in obj) for k in ("easy", "hard", "junk")}
    n_up = None
    if sizes is not None:
        n_up = sum(mdd.extractor_scale(sizes[r["file"]]) > 1 for r in rows)
    sc = np.array([r["obj_scale"] for r in rows if r["quad"] is not None])
    lines = [
        f"{len(rows)} images: {len(db)} database ({len(obj)} with a test object, "
        f"{sum(r['kind'] == 'distractor' for r in db)} with a distractor object, "
        f"{sum(r['kind'] == 'scene' for r in db)} scenes alone), "
        f"{sum(r['is_query'] for r in db)} queries (database images, bbx), "
        f"{sum(r['role'] == 'train' for r in rows)} training",
        f"{len(TEST_OBJECTS)} test objects x {N_DB_PER_OBJECT} images: {rel['easy']} easy, "
        f"{rel['hard']} hard, {rel['junk']} junk; {len(TEST_SCENES)} test scenes, "
        f"{len(TRAIN_SCENES)} training scenes, {len(TRAIN_OBJECTS)} training objects",
        f"object scale (box side / image side): min {sc.min():.3f}, median {np.median(sc):.3f}, "
        f"max {sc.max():.3f}; max object resample {max(r['object_resample'] for r in rows):.3f}, "
        f"max scene resample {max(r['scene_resample'] for r in rows):.3f} (<= 1: never upsampled)",
    ]
    if n_up is not None:
        lines.append(f"at max_dim {EXTRACT_DIM}: {n_up} of {len(rows)} images upsampled by the extractor")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- main
def _encode(a, quality) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (jpg/, gnd_default.pkl, manifest.csv, LICENSES.md)")
    ap.add_argument("--root", action="append", default=None,
                    help="where the Debian packages' files lie (default /); repeatable")
    ap.add_argument("--quality", type=int, default=None,
                    help="JPEG quality (default: the highest of QUALITIES fitting SIZE_BUDGET_MB)")
    ap.add_argument("--measure-quality", action="store_true",
                    help="print the set's JPEG size at each quality of QUALITIES")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from selconv_lite.data.groundtruth import write_gnd_pickle

    roots = [Path(p) for p in (args.root or ["/"])]
    out = Path(args.out)
    (out / "jpg").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = plan()
    cache = {}

    def photo(k):
        if k not in cache:
            cache[k] = load_photo(k, roots)
        return cache[k]

    images = {r["file"]: render_row(r, photo) for r in rows}
    t_render = time.perf_counter() - t0
    if args.measure_quality or args.quality is None:
        mb = {}
        for q in QUALITIES:
            mb[q] = sum(len(_encode(a, q)) for a in images.values()) / 1e6
            if args.measure_quality:
                print(f"JPEG quality {q}: {mb[q]:.1f} MB ({mb[q] * 1e3 / len(images):.0f} kB per image)")
        quality = args.quality or next((q for q in QUALITIES if mb[q] <= SIZE_BUDGET_MB), QUALITIES[-1])
    else:
        quality = args.quality
    sizes = {}
    for f, a in images.items():
        (out / "jpg" / f).write_bytes(_encode(a, quality))
        sizes[f] = (a.shape[1], a.shape[0])
    keep = set(images)
    for p in (out / "jpg").glob("*.jpg"):
        if p.name not in keep:
            p.unlink()
    write_manifest(rows, out / "manifest.csv", sizes)
    text = summary(rows, sizes)
    write_licenses(rows, out / "LICENSES.md", text)
    gt = build_gnd(rows)
    write_gnd_pickle(out / "gnd_default.pkl", gt["imlist"], gt["qimlist"], gt["gnd"],
                     trainlist=gt["trainlist"])
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(rows)} images to {out} at JPEG quality {quality}: {total / 1e6:.1f} MB in all "
          f"({time.perf_counter() - t0:.0f} s, rendering {t_render:.0f} s)")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
