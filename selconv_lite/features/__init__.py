"""Local convolutional features (paper Sec. 3.1): the VGG16 trunk, receptive fields,
image loading and extraction, and the on-disk feature cache.
"""
