"""Datasets, downloads and evaluation (paper Sec. 5.1): ground-truth formats and their safe
reading (``groundtruth``), loaders of the benchmarks and of bring-your-own folders
(``loaders``), the dataset object, the embedded default set and ``load_dataset``
(``datasets``), downloads (``download``), and mAP as the authors' compute_map.m
(``evaluation``).
"""
