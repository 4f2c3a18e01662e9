"""Figures: mask panels, feature maps, receptive fields, ranked lists.
"""
