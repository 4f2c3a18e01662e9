"""Experiment drivers built on the lower layers (paper Sec. 5): the tables and figures
(``tables``), fitting and scoring a model (``scoring``), feature maps of a dataset's splits
(``splits``), printed results (``report``), the small analyses of Fig. 2 (``analysis``), the
published numbers (``published``), image-size regimes (``regimes``), fine-tuned backbones
(``finetune``, ``finetune_weights``).
"""
