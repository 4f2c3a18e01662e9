"""The paper's method (Secs. 3.2-4.4): masks (Eqs. 1-3), embeddings (Eqs. 4-7),
aggregation, post-processing, the full pipeline, and the Table 6 baselines.
"""
