"""Distractors without the internet: derived photos for mAP, synthetic vectors for timing.

The real distractor sets are Flickr100k (Oxford105k / Paris106k, Table 6) and the revisited
R1M; :func:`selconv_lite.data.download.download_dataset` fetches Flickr100k when online (see
docs/scale.md for sizes and hours). Offline, two stand-ins are offered, each clearly labelled:

* :func:`make_derived_distractors` writes **derived distractors**: random crops, mirror flips
  and colour jitter of those photos of a dataset that are *not* relevant to any query (its
  held-out images and its unrelated database images). They are labelled
  ``derived-distractor`` in their file names and in ``DERIVED_DISTRACTORS.csv``; they are not
  Flickr100k images and have far less variety, so mAP against them is an optimistic proxy.
* :func:`synthetic_vectors` draws random unit vectors, for timing and memory only (their mAP
  means nothing).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

__all__ = ["LABEL", "make_derived_distractors", "distractor_sources", "synthetic_vectors"]

LABEL = "derived-distractor"


def distractor_sources(dataset) -> list[str]:
    """Photos of ``dataset`` relevant to no query: the held-out images, then the database
    images in no query's ``ok`` / ``junk`` (or ``easy`` / ``hard``) list."""
    relevant = set()
    for g in dataset.gnd:
        for key in ("ok", "junk", "easy", "hard"):
            relevant.update(int(i) for i in np.asarray(g.get(key, []), dtype=np.int64).ravel())
    unrelated = [p for i, p in enumerate(dataset.images) if i not in relevant]
    return list(dataset.train_images) + unrelated


def make_derived_distractors(dataset, out_dir, n, seed=0, max_dim=512) -> list[str]:
    """Write ``n`` derived distractor images into ``out_dir`` and return their paths.

    Each is one source photo (:func:`distractor_sources`, cycled) with a random crop (50-100 %
    of each side), a mirror flip with probability 1/2, brightness / contrast / saturation
    factors in [0.7, 1.3], resized to ``max_dim``; seeded. Existing files are reused.
    ``DERIVED_DISTRACTORS.csv`` records the source and the transform of each; the images keep
    the licence of their source photo (see the dataset's LICENSES.md).
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    src = distractor_sources(dataset)
    if n and not src:
        raise ValueError(f"dataset {dataset.name!r} has no photo outside the queries' relevant "
                         "lists to derive distractors from")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, paths = [], []
    for i in range(n):
        s = src[i % len(src)]
        fw, fh = rng.uniform(0.5, 1.0, 2)
        fx, fy = rng.uniform(0, 1 - fw), rng.uniform(0, 1 - fh)
        flip = bool(rng.random() < 0.5)
        b, c, sat = rng.uniform(0.7, 1.3, 3)
        name = out / f"{LABEL}_{i:06d}.jpg"
        if not name.is_file():
            with Image.open(s) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                W, H = im.size
                im = im.crop((int(fx * W), int(fy * H), int((fx + fw) * W), int((fy + fh) * H)))
                if flip:
                    im = ImageOps.mirror(im)
                im = ImageEnhance.Brightness(im).enhance(b)
                im = ImageEnhance.Contrast(im).enhance(c)
                im = ImageEnhance.Color(im).enhance(sat)
                im.thumbnail((max_dim, max_dim))
                im.save(name, quality=90)
        paths.append(str(name))
        rows.append({"file": name.name, "label": LABEL, "source": Path(s).name,
                     "crop_xywh_frac": f"{fx:.3f} {fy:.3f} {fw:.3f} {fh:.3f}", "flip": int(flip),
                     "brightness": f"{b:.3f}", "contrast": f"{c:.3f}", "saturation": f"{sat:.3f}"})
    with open(out / "DERIVED_DISTRACTORS.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["file"])
        w.writeheader()
        w.writerows(rows)
    return paths


def synthetic_vectors(n, dim=1024, seed=0, chunk=65536) -> np.ndarray:
    """``n`` random unit vectors ``(n, dim)`` float32 (Gaussian, normalised; generated in chunks
    so that no float64 copy of the whole set exists). For timing and memory only."""
    n, dim = int(n), int(dim)
    if n < 0 or dim < 1:
        raise ValueError(f"need n >= 0 and dim >= 1, got n={n}, dim={dim}")
    out = np.empty((n, dim), np.float32)
    rng = np.random.default_rng(seed)
    for a in range(0, n, chunk):
        x = rng.standard_normal((min(chunk, n - a), dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[a:a + x.shape[0]] = x
    return out
