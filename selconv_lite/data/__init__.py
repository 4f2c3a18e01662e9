"""Datasets, downloads and evaluation (paper Sec. 5.1): loaders of the benchmarks' official
formats, the embedded default set, and mAP as the authors' compute_map.m.
"""
