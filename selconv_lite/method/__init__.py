"""The paper's method (Secs. 3.2-4.4): masks (Eqs. 1-3), embeddings (Eqs. 4-7),
aggregation, post-processing, the full pipeline, and the Table 6 baselines.

The estimators share their base class (:mod:`~selconv_lite.method.base`) and their linear
algebra (:mod:`~selconv_lite.method.linalg`: centred covariance, descending eigen-decomposition,
PCA with its Gram path, clamped whitening, completion to a rotation).
"""

__all__ = ["aggregation", "base", "baselines", "embeddings", "linalg", "masks", "pipeline",
           "postprocess"]
