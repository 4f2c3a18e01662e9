"""Experiment drivers built on the lower layers: the paper's tables and figures, published
numbers, analysis helpers, fine-tuned backbones.
"""
