"""Lowest layer: array helpers (L2 rows, checks, MATLAB rounding) and shared types.
"""
