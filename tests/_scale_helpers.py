"""Shared set-up of the scale tests: a few small real photos and a fitted small pipeline."""
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_DIM = 96


def photos(n):
    """``n`` photos of the embedded set (sorted, so the same ones every time)."""
    paths = sorted(str(p) for p in (ROOT / "data" / "default" / "jpg").glob("*.jpg"))
    assert len(paths) >= n, f"the embedded set has {len(paths)} photos, {n} needed"
    return paths[:n]


def extractor():
    from selconv_lite.features.extraction import FeatureExtractor

    return FeatureExtractor(max_dim=MAX_DIM, sift=False, device="cpu", num_threads=1)


def fitted_pipeline(fx, n_train=6, **params):
    """A small M_MAX + VLAD pipeline (D = 32) fitted on the last ``n_train`` photos."""
    from selconv_lite.method.pipeline import SelectiveConvPipeline

    train = [fx.extract(p)["pool5"] for p in photos(40)[-n_train:]]
    kw = dict(mask="max", embedding="vlad", d=8, n_centroids=4, rn_components=8, random_state=0)
    kw.update(params)
    pipe = SelectiveConvPipeline(**kw).fit(train)
    assert np.isfinite(pipe.train_vectors_).all()
    return pipe
