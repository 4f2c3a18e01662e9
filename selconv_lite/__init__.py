"""selconv_lite: a teaching and reproduction package for

    T. Hoang, T.-T. Do, D.-K. Le Tan, N.-M. Cheung,
    "Selective Deep Convolutional Features for Image Retrieval", ACM MM 2017.

Modules mirror the paper:

* ``backbone`` / ``features`` / ``cache`` -- the VGG16 trunk and local conv features (Sec. 3.1)
* ``masks``        -- SIFT, SUM and MAX masks (Sec. 3.2, Eqs. 1-3)
* ``embeddings``   -- PCA + L2 (Sec. 4.1), FV, VLAD, T-emb, F-FAemb (Sec. 4.2, Eqs. 4-7)
* ``aggregation``  -- sum, average, max and democratic pooling (Sec. 4.3)
* ``postprocess``  -- power-law, rotation normalisation, truncation (Sec. 4.4)
* ``pipeline``     -- the full framework and the presets of Tables 2 and 4
* ``baselines``    -- SPoC, MAC, R-MAC, CroW, GeM (Table 6)
* ``datasets`` / ``evaluation`` -- benchmarks, the embedded default set, mAP (Sec. 5.1)
"""

__version__ = "0.1.0"
