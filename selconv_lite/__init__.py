"""selconv_lite: a teaching and reproduction package for

    T. Hoang, T.-T. Do, D.-K. Le Tan, N.-M. Cheung,
    "Selective Deep Convolutional Features for Image Retrieval", ACM MM 2017.

The package lives in layers; a module imports only from a lower layer or from its own
subpackage, never a private name of another module, and the import graph has no cycle
(``tests/test_layers.py``). Lowest first:

* ``core`` -- array helpers, shared types, file helpers (hash, atomic write, repository root),
  the machine a measurement ran on;
* ``features`` -- the VGG16 trunk, image loading and extraction, receptive fields, the on-disk
  feature cache (Sec. 3.1);
  ``method`` -- masks (Sec. 3.2, Eqs. 1-3), embeddings (Sec. 4.1-4.2, Eqs. 4-7), aggregation
  (Sec. 4.3), post-processing (Sec. 4.4), the pipeline and its presets (Tables 2 and 4), the
  Table 6 baselines and their registry;
  ``data`` -- the dataset object, benchmarks and bring-your-own loaders, the download registry
  and the generic transfer, mAP as the authors' ``compute_map.m`` (Sec. 5.1);
* ``experiments`` -- drivers of the paper's tables and figures, scoring, the published numbers,
  image-size regimes, fine-tuning (Sec. 5);
  ``viz`` -- figures and ranked lists;
  ``scale`` -- large-scale search, streaming and distributed encoding, the cost of a distractor
  set;
* ``teaching`` -- the notebook series (settings, runner, records, regression checks), sweeps,
  the widget explorer, the landing page of a run.

Quick start: ``selconv_lite.data.datasets.load_dataset``,
``selconv_lite.features.cache.extract_features`` and
``selconv_lite.method.pipeline.SelectiveConvPipeline`` (README).
"""

__version__ = "0.1.0"
