"""The paper's published numbers (Hoang et al., ACM MM 2017), as data, with their table reference.

Notebook 06 puts them next to the numbers measured on the real benchmarks (``dataset="oxford5k"``
etc.) and shows the difference. All values are mAP in percent, copied from the paper's tables;
``None`` where the paper prints "-".

Keys
----
* :data:`TABLE3` -- ``TABLE3[dataset][framework][mask]``, D = 4224 (paper Table 3, Sec. 5.2.1).
* :data:`TABLE5` -- ``TABLE5[dataset][max_dim][mask]``, M + T-emb + democratic at D = 512 (Table 5, Sec. 5.2.3).
* :data:`TABLE6` -- list of rows ``{"method", "dim", "finetuned", "values": {dataset: mAP}}``
  (Table 6, Sec. 5.3).
* :data:`FIG2A_KEPT` -- ``FIG2A_KEPT[mask]``: the percentage of pool5 local features a mask
  keeps at 1024 px, averaged over Oxford5k, Paris6k and Holidays, as the text of Sec. 3.3 reads
  Fig. 2a (not a per-dataset table value).

Dataset keys match :func:`selconv_lite.data.datasets.load_dataset` names: ``"oxford5k"``,
``"oxford105k"``, ``"paris6k"``, ``"paris106k"``, ``"holidays"``.
"""
from __future__ import annotations

from ..data.datasets import dataset_key

__all__ = ["TABLE3", "TABLE5", "TABLE6", "FIG2A_KEPT", "FRAMEWORKS", "MASKS", "SOURCE",
           "paper_dataset", "table3_value", "table5_value", "table6_rows", "table6_value", "PAPER_DATASETS"]

#: Citation of every number in this module.
SOURCE = ("T. Hoang, T.-T. Do, D.-K. Le Tan, N.-M. Cheung. Selective Deep Convolutional Features "
          "for Image Retrieval. ACM Multimedia 2017.")

#: Benchmarks of the paper (the names :func:`selconv_lite.data.datasets.load_dataset` uses).
PAPER_DATASETS = ("oxford5k", "oxford105k", "paris6k", "paris106k", "holidays")

#: Table 3's frameworks: (embedding, aggregation) with the paper's labels.
FRAMEWORKS = {
    "FV+avg": ("fv", "average"),
    "FV+demo": ("fv", "democratic"),
    "VLAD+sum": ("vlad", "sum"),
    "VLAD+demo": ("vlad", "democratic"),
    "T-emb+demo": ("temb", "democratic"),
    "F-FAemb+demo": ("ffaemb", "democratic"),
}
#: Table 3's masks, in its column order.
MASKS = ("max", "sum", "sift", "none")


def _rows(values):
    return {fw: dict(zip(MASKS, v)) for fw, v in zip(FRAMEWORKS, values)}


#: Paper Table 3 ("Comparison of different frameworks"), D = 4224, mAP %.
TABLE3 = {
    "oxford5k": _rows([(67.8, 65.1, 65.5, 59.5), (72.2, 71.8, 72.0, 69.6), (66.3, 65.6, 66.4, 65.1),
                       (69.2, 70.5, 71.3, 69.4), (75.8, 75.7, 75.3, 73.4), (75.2, 74.7, 74.4, 73.8)]),
    "paris6k": _rows([(78.4, 76.4, 75.8, 68.0), (84.5, 82.2, 82.4, 76.9), (77.7, 74.5, 76.0, 73.2),
                      (80.3, 79.5, 81.3, 79.3), (86.9, 84.8, 85.3, 83.9), (86.6, 85.9, 85.6, 82.9)]),
    "holidays": _rows([(83.2, 80.0, 81.5, 78.2), (87.8, 86.7, 87.1, 85.2), (83.3, 82.0, 83.6, 82.7),
                       (85.5, 86.4, 87.5, 86.1), (89.1, 88.1, 88.6, 87.3), (88.6, 88.4, 88.5, 86.4)]),
}

#: Paper Table 5 ("Impact of input image size"), M + T-emb + democratic, D = 512, mAP %.
TABLE5 = {
    "oxford5k": {724: {"sum": 56.4, "max": 60.9}, 1024: {"sum": 64.0, "max": 65.7}},
    "paris6k": {724: {"sum": 79.3, "max": 81.2}, 1024: {"sum": 78.6, "max": 81.6}},
}


#: Paper Fig. 2a as stated in Sec. 3.3: the masks remove "about 25%, 50%, and 70%" of the local
#: conv. features (SIFT / SUM / MAX), i.e. keep about 75 / 50 / 30 % (pool5 of VGG16,
#: max(W_I, H_I) = 1024, averaged over Oxford5k, Paris6k and Holidays); "none" keeps all.
FIG2A_KEPT = {"sift": 75.0, "sum": 50.0, "max": 30.0, "none": 100.0}


def _t6(method, dim, vals, finetuned=False, ours=None, mask=None, trunk="imagenet"):
    return {"method": method, "dim": dim, "finetuned": finetuned, "ours": ours is not None,
            "mask": mask, "trunk": trunk,
            "values": dict(zip(PAPER_DATASETS, vals))}


#: Paper Table 6 ("Comparison with the state of the art"), mAP %; columns Oxford5k, Oxford105k,
#: Paris6k, Paris106k, Holidays.
TABLE6 = [
    # off-the-shelf network
    _t6("SPoC", 256, (53.1, None, 50.1, None, 80.2)),
    _t6("MOP-CNN", 512, (None, None, None, None, 78.4)),
    _t6("CroW", 512, (70.8, 65.3, 79.7, 72.2, 85.1)),
    _t6("MAC", 512, (56.4, 47.8, 72.3, 58.0, 76.7)),
    _t6("R-MAC", 512, (66.9, 61.6, 83.0, 75.7, None)),
    _t6("NetVLAD", 1024, (62.6, None, 73.3, None, 87.3)),
    _t6("M_SIFT+T-emb+demo", 512, (64.4, 59.4, 79.5, 70.6, 86.5), ours=True, mask="sift"),
    _t6("M_SUM+T-emb+demo", 512, (64.0, 58.8, 78.6, 70.4, 86.4), ours=True, mask="sum"),
    _t6("M_MAX+T-emb+demo", 512, (65.7, 60.5, 81.6, 72.4, 85.0), ours=True, mask="max"),
    _t6("M_SIFT+T-emb+demo", 1024, (69.9, 64.3, 81.7, 73.8, 87.1), ours=True, mask="sift"),
    _t6("M_SUM+T-emb+demo", 1024, (70.8, 64.4, 80.6, 73.8, 86.9), ours=True, mask="sum"),
    _t6("M_MAX+T-emb+demo", 1024, (72.2, 67.9, 83.2, 76.1, 88.4), ours=True, mask="max"),
    _t6("NetVLAD", 4096, (66.6, None, 77.4, None, 88.3)),
    _t6("M_MAX+T-emb+demo", 4096, (75.3, 71.4, 86.7, 80.6, 89.0), ours=True, mask="max"),
    # fine-tuned network
    _t6("siaMAC + R-MAC", 512, (77.0, 69.2, 83.8, 76.4, 82.5), finetuned=True, trunk="siamac"),
    _t6("NetVLAD fine-tuned", 1024, (69.2, None, 76.5, None, 86.5), finetuned=True, trunk="netvlad"),
    _t6("siaMAC + M_MAX+T-emb+demo", 512, (77.7, 72.7, 83.2, 76.5, 86.3), finetuned=True, ours=True,
        mask="max", trunk="siamac"),
    _t6("siaMAC + M_MAX+T-emb+demo", 1024, (81.4, 77.4, 84.8, 78.9, 88.9), finetuned=True, ours=True,
        mask="max", trunk="siamac"),
    _t6("NetVLAD + M_MAX+T-emb+demo", 1024, (75.2, 71.7, 84.4, 76.9, 91.5), finetuned=True, ours=True,
        mask="max", trunk="netvlad"),
    _t6("NetVLAD fine-tuned", 4096, (71.6, None, 79.7, None, 87.5), finetuned=True, trunk="netvlad"),
    _t6("NetVLAD + M_MAX+T-emb+demo", 4096, (78.2, 75.7, 87.8, 81.8, 92.2), finetuned=True, ours=True,
        mask="max", trunk="netvlad"),
    _t6("siaMAC + M_MAX+T-emb+demo", 4096, (83.8, 80.6, 88.3, 83.1, 90.1), finetuned=True, ours=True,
        mask="max", trunk="siamac"),
]


def _norm_ds(dataset: str) -> str | None:
    """The paper's dataset of ``dataset`` by the one name rule
    (:func:`selconv_lite.data.datasets.dataset_key`); the paper's Holidays numbers are on the
    rotated copy, so ``holidays_rotated`` reads them too."""
    try:
        key = dataset_key(dataset, (*PAPER_DATASETS, "holidays_rotated"))
    except KeyError:
        return None
    return "holidays" if key == "holidays_rotated" else key


def paper_dataset(name: str) -> str | None:
    """The paper's name for dataset ``name`` (``"oxford5k"``, ...), or None if the paper has no
    numbers for it (e.g. the embedded default set, R-Oxford)."""
    return _norm_ds(name)


def table3_value(dataset: str, framework: str, mask: str):
    """Table 3's mAP (%) for ``dataset`` / ``framework`` (a :data:`FRAMEWORKS` key) / ``mask``, or None."""
    ds = _norm_ds(dataset)
    return TABLE3.get(ds, {}).get(framework, {}).get(mask) if ds else None


def table5_value(dataset: str, max_dim: int, mask: str):
    """Table 5's mAP (%) or None."""
    ds = _norm_ds(dataset)
    return TABLE5.get(ds, {}).get(int(max_dim), {}).get(mask) if ds else None


def table6_rows(finetuned: bool | None = None, ours: bool | None = None) -> list[dict]:
    """Rows of Table 6, optionally only the (not) fine-tuned / (not) "ours" ones."""
    return [r for r in TABLE6 if (finetuned is None or r["finetuned"] == finetuned)
            and (ours is None or r["ours"] == ours)]


def table6_value(dataset: str, method: str, dim: int, finetuned: bool = False):
    """Table 6's mAP (%) for a method label and dimensionality, or None when not published.

    ``method`` is a row label of :data:`TABLE6` (e.g. ``"M_MAX+T-emb+demo"``, ``"R-MAC"``).
    """
    ds = _norm_ds(dataset)
    if ds is None:
        return None
    for r in TABLE6:
        if r["method"] == method and r["dim"] == int(dim) and r["finetuned"] == finetuned:
            return r["values"].get(ds)
    return None
