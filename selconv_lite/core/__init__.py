"""Lowest layer: array helpers (L2 rows, checks, MATLAB rounding), shared types, file helpers
(one content hash, one atomic write, the repository root) and the machine a measurement ran on.
"""
