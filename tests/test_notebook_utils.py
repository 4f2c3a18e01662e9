"""Helpers of the notebooks: rounding, JSON records, paths, front-end detection."""
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from selconv_lite.teaching import notebook_utils as nu


def test_rounded_handles_numpy_nan_and_nesting():
    out = nu.rounded({"a": np.float32(0.123456789), "b": [np.int64(3), math.nan],
                      "c": np.array([[1.0 / 3]]), "d": -1e-9, "e": True, "f": None})
    assert out == {"a": 0.1235, "b": [3, None], "c": [[0.3333]], "d": 0.0, "e": True, "f": None}
    json.dumps(out)  # JSON-ready
    assert nu.fmt(2 / 3) == "0.667" and nu.fmt(math.inf) == "nan"
    with pytest.raises(TypeError, match="cannot store a object"):
        nu.rounded(object())


def test_record_writes_json_with_relative_figure(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = nu.NotebookRecord("02_masks", tmp_path, params={"mask": "max", "alpha": 0.5})
    rec.headline("kept (%)", 31.234567)
    fig = plt.figure(figsize=(1, 1))
    assert rec.figure(fig, "fig2a") == "figures/02_masks_fig2a.png"
    plt.close(fig)
    path = rec.save(quiet=True)
    data = nu.load_record(path)
    assert data["notebook"] == "02_masks" and data["params"]["alpha"] == 0.5
    assert data["headline"] == {"kept (%)": 31.2346}
    assert (tmp_path / data["figures"]["fig2a"]).is_file()
    with pytest.raises(ValueError, match="bare name"):
        nu.NotebookRecord("02_masks.ipynb", tmp_path)


def test_paths_are_repo_relative(monkeypatch, tmp_path):
    root = nu.find_repo_root(Path(__file__).parent)
    assert root is not None and (root / "selconv_lite").is_dir()
    assert nu.display_path(root / "outputs" / "x.json") == "outputs/x.json"
    assert not nu.display_path("/some/where/else.json").startswith("/")
    monkeypatch.setenv(nu.OUTPUT_ENV, str(tmp_path / "o"))
    assert nu.resolve_output_dir(None) == (tmp_path / "o").resolve()
    assert nu.resolve_cache_dir("rel/cache") == (root / "rel" / "cache").resolve()
    assert nu.resolve_cache_dir(tmp_path / "c") == tmp_path / "c"


def test_widget_frontend_detection(monkeypatch):
    # plain python (pytest) is never a widget front end
    assert nu.has_widget_frontend() is False
    monkeypatch.setenv(nu.HEADLESS_ENV, "1")
    assert nu.use_widgets("auto") is False
    assert nu.use_widgets(True) is True and nu.use_widgets("no") is False
    with pytest.raises(ValueError, match="interactive"):
        nu.use_widgets("maybe")


def test_dataset_features_caches_series_layers_in_one_pass(tmp_path):
    """On the embedded set, the pool5 extraction also stores the layers notebook 06 reads."""
    from types import SimpleNamespace

    from PIL import Image

    from selconv_lite.features.cache import FeatureCache
    from selconv_lite.teaching.settings import SERIES_LAYERS
    from selconv_lite.teaching.notebook_utils import dataset_features

    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    ds = SimpleNamespace(name="default", default_max_dim=64, train_images=paths[:1],
                         queries=paths[1:], query_boxes=[None], images=paths)
    out = dataset_features(ds, cache_dir=tmp_path / "cache", progress=False)
    assert out["db"][0].fmap.shape == (1, 2, 512)  # 64 x 80 -> 52 x 64 pixels
    for layer in SERIES_LAYERS:
        cache = FeatureCache(tmp_path / "cache", layers=(layer,), max_dim=64)
        assert all(cache.contains(p) for p in paths), layer
    # another dataset name: only the requested layer is stored
    ds.name = "mine"
    dataset_features(ds, cache_dir=tmp_path / "cache2", progress=False)
    assert FeatureCache(tmp_path / "cache2", layers=("pool5",), max_dim=64).contains(paths[0])
    assert not FeatureCache(tmp_path / "cache2", layers=("conv4_3",), max_dim=64).contains(paths[0])
