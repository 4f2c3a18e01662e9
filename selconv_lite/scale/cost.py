"""What encoding a distractor set costs: the per-image seconds measured on this project's
machines (CPU, and one GPU) and the hours, bytes of vectors and of PQ codes they give for the
large-scale protocols (Flickr100k for Oxford105k / Paris106k, R1M; docs/scale.md).

The sets themselves (image counts, archives, where they go) are
:data:`selconv_lite.data.download.DISTRACTOR_SETS`.
"""
from __future__ import annotations

from ..data.datasets import dataset_key
from ..data.download import DISTRACTOR_SETS

__all__ = ["MEASURED_SECONDS_PER_IMAGE", "distractor_info"]

#: Seconds per image measured for extraction + encoding (``benchmarks/`` and notebook 08);
#: the expected hours of :func:`distractor_info` are images x these / 3600.
MEASURED_SECONDS_PER_IMAGE: dict[str, tuple[float, str]] = {
    "cpu_512px": (1.30, "streaming encoder, 1 process, 2 threads, max_dim 512: the fastest of "
                        "notebook 08's runs on a shared 2-core machine (1.3-2.6 s at loads 3.5-6)"),
    "cpu_1024px": (4.3, "extraction on 2 CPU cores at max_dim 1024, pool5 (3.4-4.3 s measured)"),
    "gpu_1024px_forward": (1 / 57.9, "VGG16 forward pass only, 1024x768, batch 1, one NVIDIA "
                                     "H200 (benchmarks/measured/gpu_extraction_h200.json)"),
    "gpu_1024px_with_io": (1 / 4.86, "one H200, cold feature-cache fill at 1024 px incl. JPEG "
                                     "decoding, SIFT and compressed writes of pool5 + conv4_3 "
                                     "(an upper bound for streaming, which writes no maps)"),
}


def distractor_info(name: str, seconds_per_image=None) -> dict:
    """Size of a distractor set and the expected hours to encode it.

    Parameters
    ----------
    name : {"flickr100k", "revisitop1m" (or "r1m")}
    seconds_per_image : dict, optional
        ``{setting: seconds}`` (default :data:`MEASURED_SECONDS_PER_IMAGE`).

    Returns
    -------
    dict
        The entry of :data:`DISTRACTOR_SETS` plus ``"hours"`` (``{setting: hours}`` for one
        machine / one GPU), ``"vectors_GB_D1024"`` (float32 final vectors, D = 1024) and
        ``"pq64_MB"`` (64-byte PQ codes). The archives' sizes are not published by the hosts:
        :func:`remote_sizes` asks them (online).
    """
    key = dataset_key(name, DISTRACTOR_SETS, what="distractor set")
    info = dict(DISTRACTOR_SETS[key], name=key)
    sec = seconds_per_image or {k: v[0] for k, v in MEASURED_SECONDS_PER_IMAGE.items()}
    n = info["images"]
    info["hours"] = {k: n * float(s) / 3600.0 for k, s in sec.items()}
    info["vectors_GB_D1024"] = n * 4096 / 1e9
    info["pq64_MB"] = n * 64 / 1e6
    return info
