"""The notebook series' settings (selconv_lite.teaching.settings): the layers its caches compute
together and the image size it runs at."""
from __future__ import annotations

import pytest

from selconv_lite.teaching import settings


def test_series_layers_setting(monkeypatch):
    monkeypatch.delenv(settings.SERIES_LAYERS_ENV, raising=False)
    assert settings.series_layers() == settings.SERIES_LAYERS == ("pool5", "conv5_2", "conv5_1", "conv4_3")
    monkeypatch.setenv(settings.SERIES_LAYERS_ENV, " pool5, conv4_2 ,pool5")
    assert settings.series_layers() == ("pool5", "conv4_2")
    monkeypatch.setenv(settings.SERIES_LAYERS_ENV, "")
    assert settings.series_layers() == settings.SERIES_LAYERS
    monkeypatch.setenv(settings.SERIES_LAYERS_ENV, "pool5,conv6")
    with pytest.raises(ValueError, match="SELCONV_SERIES_LAYERS.*'conv6'"):
        settings.series_layers()


def test_series_extra_layers_follow_the_series_size(monkeypatch):
    """One forward pass per image caches every layer the series reads, at the series' size only:
    the dataset's default, or the series runner's ``--max-dim`` (env SELCONV_SERIES_MAX_DIM)."""
    from types import SimpleNamespace

    monkeypatch.delenv(settings.SERIES_LAYERS_ENV, raising=False)
    monkeypatch.delenv(settings.SERIES_MAX_DIM_ENV, raising=False)
    ds = SimpleNamespace(name="default", default_max_dim=512)
    assert settings.series_extra_layers(ds, None) == settings.SERIES_LAYERS
    assert settings.series_extra_layers(ds, 512) == settings.SERIES_LAYERS
    assert settings.series_extra_layers(ds, 1024) == ()          # a side pass: only what it reads
    assert settings.series_extra_layers(ds, 512, weights="torchvision") == ()
    assert settings.series_extra_layers(SimpleNamespace(name="oxford5k", default_max_dim=1024), 1024) == ()
    monkeypatch.setenv(settings.SERIES_MAX_DIM_ENV, "1024")
    assert settings.series_extra_layers(ds, 1024) == settings.SERIES_LAYERS
    assert settings.series_extra_layers(ds, None) == ()           # 512 is then a side pass
    assert settings.series_extra_layers(ds, 724) == ()            # Table 5's smaller size
    monkeypatch.setenv(settings.SERIES_MAX_DIM_ENV, "big")
    with pytest.raises(ValueError, match="SELCONV_SERIES_MAX_DIM='big'"):
        settings.series_extra_layers(ds, 1024)


def test_features_layer_knows_nothing_of_the_series():
    """The feature cache takes the layers as an argument; the series' settings live with the series."""
    from selconv_lite.experiments import splits
    from selconv_lite.features import cache as cache_mod

    for name in ("SERIES_LAYERS", "SERIES_LAYERS_ENV", "SERIES_MAX_DIM_ENV", "series_layers", "series_max_dim"):
        assert not hasattr(cache_mod, name)
    assert not hasattr(splits, "series_extra_layers")
