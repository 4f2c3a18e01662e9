"""Ranked retrieval lists drawn for inspection (Sec. 5.1 protocol): a query and its top-k,
each marked correct / junk / wrong by the ground truth."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["label_results", "plot_query_results", "plot_ranked_list", "COLORS"]

#: frame colour per label
COLORS = {"correct": "#1a9850", "junk": "#fdae61", "wrong": "#d73027", "query": "#2c7bb6"}


def label_results(ranked_ids: Sequence[int], gnd_entry: dict) -> list[str]:
    """``"correct"``, ``"junk"`` or ``"wrong"`` for each database index of a ranked list.

    Parameters
    ----------
    ranked_ids : sequence of int
        Database indices (0-based), best first.
    gnd_entry : dict
        One query's ground truth with ``"ok"`` and optionally ``"junk"``.
    """
    ok = set(np.asarray(gnd_entry["ok"]).ravel().tolist())
    junk = set(np.asarray(gnd_entry.get("junk", [])).ravel().tolist())
    return ["correct" if i in ok else "junk" if i in junk else "wrong" for i in map(int, ranked_ids)]


def _thumb(path, box=None, size=256):
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = 1.0
        if max(im.size) > size:
            scale = size / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
        return np.asarray(im), scale


def plot_ranked_list(query_path, result_paths, labels, query_box=None, scores=None,
                     title=None, ncols=None, thumb_size=256, fig=None):
    """Draw a query (with its crop box) and a ranked list with coloured frames.

    Parameters
    ----------
    query_path : str
    result_paths : sequence of str
        The top-k database images, best first.
    labels : sequence of str
        ``"correct"`` / ``"junk"`` / ``"wrong"`` per result (see :func:`label_results`).
    query_box : tuple, optional
        ``(x1, y1, x2, y2)`` in query-image pixels, drawn as a rectangle.
    scores : sequence of float, optional
        Similarity of each result, shown under it.
    title : str, optional
    ncols : int, optional
        Results per row (default: all on one row up to 5, so that the figure stays under
        about 1200 px wide at 100 dpi).
    thumb_size : int, default 256
    fig : matplotlib Figure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    if len(result_paths) != len(labels):
        raise ValueError(f"{len(result_paths)} results but {len(labels)} labels")
    k = len(result_paths)
    ncols = ncols or min(max(k, 1), 5)
    nrows = max(1, int(np.ceil(k / ncols)))
    if fig is None:
        fig = plt.figure(figsize=(1.8 * (ncols + 1.3), 2.1 * nrows + 0.6))
    gs = fig.add_gridspec(nrows, ncols + 1, width_ratios=[1.3] + [1] * ncols)
    axq = fig.add_subplot(gs[:, 0])
    qimg, s = _thumb(query_path, size=thumb_size)
    axq.imshow(qimg)
    if query_box is not None:
        x1, y1, x2, y2 = (v * s for v in query_box)
        axq.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=2.5, ec=COLORS["query"]))
    axq.set_title("query", color=COLORS["query"], fontsize=10)
    axq.set_xticks([]), axq.set_yticks([])
    for sp in axq.spines.values():
        sp.set_edgecolor(COLORS["query"]), sp.set_linewidth(3)
    for j, (p, lab) in enumerate(zip(result_paths, labels)):
        ax = fig.add_subplot(gs[j // ncols, 1 + j % ncols])
        img, _ = _thumb(p, size=thumb_size)
        ax.imshow(img)
        ax.set_xticks([]), ax.set_yticks([])
        c = COLORS.get(lab, "gray")
        for sp in ax.spines.values():
            sp.set_edgecolor(c), sp.set_linewidth(4)
        txt = f"#{j + 1} {lab}"
        if scores is not None:
            txt += f"\n{scores[j]:.3f}"
        ax.set_title(txt, color=c, fontsize=9)
    handles = [Patch(facecolor="none", edgecolor=COLORS[n], lw=3, label=n)
               for n in ("correct", "junk", "wrong")]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95 if title else 1))
    return fig


def plot_query_results(dataset, ranks, query_index: int, k: int = 10, protocol: str | None = None,
                       sims=None, ncols=None, thumb_size: int = 256):
    """Show query ``query_index`` of a :class:`~selconv_lite.data.retrieval.RetrievalDataset` and
    its top-``k`` results, framed green (correct), orange (junk) or red (wrong), with its AP.

    Parameters
    ----------
    dataset : RetrievalDataset
    ranks : array_like of int, shape (nb, nq)
        From :func:`selconv_lite.data.evaluation.rank_by_inner_product`.
    query_index : int
    k : int, default 10
    protocol : {"easy", "medium", "hard"}, optional
        For revisited ground truth, label with that protocol's ok / junk.
    sims : array_like, shape (nq, nb), optional
        Similarities, to print under each result.
    ncols, thumb_size : see :func:`plot_ranked_list`

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..data.evaluation import compute_map, revisited_gnd

    ranks = np.asarray(ranks)
    nq = len(dataset.queries)
    if not 0 <= query_index < nq:
        raise IndexError(f"query_index {query_index} out of range for {nq} queries")
    if ranks.ndim != 2 or ranks.shape[1] != nq:
        raise ValueError(f"ranks must be (nb, {nq}), got {ranks.shape}")
    g = dataset.gnd[query_index]
    if protocol is not None:
        g = revisited_gnd([g], protocol)[0]
    top = ranks[:k, query_index]
    labels = label_results(top, g)
    _, aps = compute_map(ranks[:, [query_index]], [g])
    scores = None if sims is None else np.asarray(sims)[query_index, top]
    qname = dataset.qimlist[query_index] if dataset.qimlist else str(query_index)
    title = (f"{dataset.name}: query {query_index} ({qname}) - AP {aps[0]:.3f}"
             + (f" [{protocol}]" if protocol else ""))
    return plot_ranked_list(dataset.queries[query_index], [dataset.images[i] for i in top], labels,
                            query_box=dataset.query_boxes[query_index], scores=scores, title=title,
                            ncols=ncols, thumb_size=thumb_size)
