"""Large scale: search with FAISS (exact and product-quantised), a streaming encoder that writes
final vectors in checksummed shards without storing feature maps, and a Dask engine that runs
extraction and encoding on a cluster of worker processes (Table 6's 105k/106k columns and the
revisited 1M-distractor protocol); the encoding cost of a distractor set (``cost``). See
docs/scale.md.
"""
