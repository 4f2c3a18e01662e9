"""Datasets, downloads and evaluation (paper Sec. 5.1): ground-truth formats and their safe
reading (``groundtruth``), the dataset object (``retrieval``), loaders of the benchmarks and of
bring-your-own folders (``loaders``), the registry of dataset names, the embedded default set
and ``load_dataset`` (``datasets``), what to download for each benchmark (``download``) and the
transfer itself (``transfer``), mAP as the authors' compute_map.m (``evaluation``), paired
statistics of two methods (``paired``).
"""
