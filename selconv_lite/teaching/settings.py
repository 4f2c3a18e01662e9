"""The notebook series' settings: which layers its feature caches compute together and at
which image size it runs.

The series (notebooks 01-09, run by :mod:`selconv_lite.teaching.series`) reads pool5
everywhere, three more layers in notebooks 06 and 07; one forward pass of VGG16 yields all of
them, so the series opens its caches with ``extra_layers=series_extra_layers(...)``
(:class:`selconv_lite.features.cache.FeatureCache` takes the layers as an argument and knows
nothing of the series).

* :data:`SERIES_LAYERS`, env ``SELCONV_SERIES_LAYERS`` and :func:`series_layers` -- the layers;
* env ``SELCONV_SERIES_MAX_DIM`` and :func:`series_max_dim` -- the image size (the series
  runner's ``--max-dim``);
* :func:`series_extra_layers` -- the layers a given extraction caches besides its own.
"""
from __future__ import annotations

import os

from ..features.backbone import LAYERS

__all__ = ["SERIES_LAYERS", "SERIES_LAYERS_ENV", "SERIES_MAX_DIM_ENV", "series_layers", "series_max_dim",
           "series_extra_layers"]

#: Layers the notebook series reads at its main image size: pool5 everywhere (Sec. 3.1), the
#: others in Fig. 5 (Sec. 5.2.4, notebook 06) and conv4_3 = pool4 for the conv5 fine-tuning
#: (notebook 07). One forward pass of VGG16 to pool5 yields all of them.
SERIES_LAYERS = ("pool5", "conv5_2", "conv5_1", "conv4_3")

#: Environment variable overriding :data:`SERIES_LAYERS`: comma-separated layer names
#: (e.g. ``"pool5"`` stores only pool5, ``"pool5,conv5_2,conv5_1,conv4_3,conv4_2"`` adds a layer
#: to a Fig. 5 run); an empty value means :data:`SERIES_LAYERS`.
SERIES_LAYERS_ENV = "SELCONV_SERIES_LAYERS"

#: Environment variable naming the image size (``max_dim``) at which the notebook series runs
#: when it is not the dataset's default (``python -m selconv_lite.teaching.series --max-dim N``
#: sets it for its kernels), so that :data:`SERIES_LAYERS` are cached in one pass at that size.
SERIES_MAX_DIM_ENV = "SELCONV_SERIES_MAX_DIM"


def series_layers(value: str | None = None) -> tuple[str, ...]:
    """The layers computed together on a cache miss of the notebook series.

    Parameters
    ----------
    value : str, optional
        Comma-separated layer names; default: env ``SELCONV_SERIES_LAYERS``, and when that is
        unset or empty, :data:`SERIES_LAYERS`.

    Returns
    -------
    tuple of str
        Distinct layer names of :data:`~selconv_lite.features.backbone.LAYERS`, in the given order.

    Raises
    ------
    ValueError
        An unknown layer name (the message names the variable and the valid layers).
    """
    src = f"env {SERIES_LAYERS_ENV}"
    if value is None:
        value = os.environ.get(SERIES_LAYERS_ENV, "")
    else:
        src = "series layers"
    names = [v.strip() for v in str(value).split(",") if v.strip()]
    if not names:
        return SERIES_LAYERS
    bad = [v for v in names if v not in LAYERS]
    if bad:
        raise ValueError(f"{src}={value!r}: unknown layer {bad[0]!r}; use comma-separated names of "
                         f"{', '.join(LAYERS)}")
    return tuple(dict.fromkeys(names))


def series_max_dim(default: int) -> int:
    """The image size (``max_dim``) the notebook series runs at: env ``SELCONV_SERIES_MAX_DIM``
    when set (the series runner's ``--max-dim``), else ``default`` (the dataset's size).

    Raises
    ------
    ValueError
        The variable is set to something other than an integer (the message names it).
    """
    env = os.environ.get(SERIES_MAX_DIM_ENV, "").strip()
    try:
        return int(env) if env else int(default)
    except ValueError:
        raise ValueError(f"env {SERIES_MAX_DIM_ENV}={env!r} is not an image size in pixels") from None


def series_extra_layers(ds, max_dim: int | None, weights="caffe-onnx") -> tuple[str, ...]:
    """The layers cached together with any layer the notebook series asks for (one forward pass).

    On the embedded dataset (``ds.name == "default"``) with the default weights, at the series'
    image size, :func:`series_layers`; else none (a side pass, e.g.
    Table 5's smaller size, stores only what it reads). The series' size is env
    ``SELCONV_SERIES_MAX_DIM`` when set (the series runner's ``--max-dim``), else the dataset's
    ``default_max_dim``.
    """
    max_dim = int(max_dim or ds.default_max_dim)
    series = (getattr(ds, "name", None) == "default" and max_dim == series_max_dim(ds.default_max_dim)
              and isinstance(weights, str) and weights == "caffe-onnx")
    return series_layers() if series else ()
