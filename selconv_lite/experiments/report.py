"""How the experiments' results print: a table of numbers with the best entry of each column
marked (the paper's bold), as fixed-width text or Markdown, and Table 6's rows as text.

* :func:`best_per_column` -- the maxima of each column of a table;
* :class:`ResultTable` -- rows x columns of numbers (Tables 3 and 5 of the notebooks), with the
  per-query APs of each cell in :attr:`ResultTable.aps`;
* :class:`MAPDict` / :class:`MAPList` -- a dict / list of mAPs (``table3``, ``run_layers``,
  ``alpha_sweep``) that also carries their per-query APs in ``.aps``;
* :func:`paired_line` -- the one-line verdict of "A beats B": paired difference of two
  methods' per-query APs with its 95 % bootstrap interval over queries
  (:func:`selconv_lite.data.paired.paired_difference`);
* :func:`table6_text` -- the rows of :func:`selconv_lite.experiments.tables.run_table6`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.paired import DEFAULT_RESAMPLES, paired_difference

__all__ = ["best_per_column", "ResultTable", "MAPDict", "MAPList", "paired_line", "table6_text"]


def best_per_column(table) -> np.ndarray:
    """Boolean mask of the maxima of each column of ``table`` (NaN ignored; ties all marked)."""
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"expected a 2-D table, got shape {t.shape}")
    out = np.zeros(t.shape, dtype=bool)
    for j in range(t.shape[1]):
        col = t[:, j]
        if np.all(np.isnan(col)):
            continue
        out[:, j] = col == np.nanmax(col)
    return out


@dataclass
class ResultTable:
    """A table of numbers (rows x columns) that marks the best value of each column.

    ``values`` may hold NaN for missing entries. :meth:`to_text` prints a fixed-width table
    with ``*`` after the best entry of each column (the paper's bold); :meth:`to_markdown`
    writes the same with ``**bold**``.

    ``aps`` holds, when the table's driver has them, the per-query APs that each mAP cell
    averages: ``aps[row][col]`` is an ndarray (n_queries,) whose mean is the cell's value
    (``{}`` for a table built from numbers only). Two cells compare with :func:`paired_line`.
    """

    title: str
    rows: list
    cols: list
    values: np.ndarray
    row_header: str = ""
    ndigits: int = 3
    notes: list = field(default_factory=list)
    aps: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.shape != (len(self.rows), len(self.cols)):
            raise ValueError(f"values {self.values.shape} do not match {len(self.rows)} rows x {len(self.cols)} cols")

    def best(self) -> np.ndarray:
        """Boolean mask of the best (largest) entry of each column (ties all marked)."""
        return best_per_column(np.round(self.values, self.ndigits))

    def best_overall(self):
        """``(row, col, value)`` of the largest entry."""
        i, j = np.unravel_index(np.nanargmax(self.values), self.values.shape)
        return self.rows[i], self.cols[j], float(self.values[i, j])

    def _cell(self, v) -> str:
        return "-" if not np.isfinite(v) else f"{v:.{self.ndigits}f}"

    def to_text(self) -> str:
        best = self.best()
        w0 = max([len(self.row_header)] + [len(str(r)) for r in self.rows]) + 2
        wc = max([self.ndigits + 4] + [len(str(c)) for c in self.cols]) + 2
        lines = [self.title, str(self.row_header).ljust(w0) + "".join(str(c).rjust(wc) for c in self.cols)]
        for i, r in enumerate(self.rows):
            cells = [(self._cell(v) + ("*" if best[i, j] else " ")).rjust(wc)
                     for j, v in enumerate(self.values[i])]
            lines.append(str(r).ljust(w0) + "".join(cells))
        lines.append("(* best of the column)" + "".join(f"; {n}" for n in self.notes))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        best = self.best()
        out = [f"**{self.title}**", "", "| " + " | ".join([self.row_header or " "] + [str(c) for c in self.cols]) + " |",
               "|" + "---|" * (len(self.cols) + 1)]
        for i, r in enumerate(self.rows):
            cells = [f"**{self._cell(v)}**" if best[i, j] else self._cell(v) for j, v in enumerate(self.values[i])]
            out.append("| " + " | ".join([str(r)] + cells) + " |")
        return "\n".join(out)

    def as_dict(self) -> dict:
        """``{row: {col: value}}`` (NaN as None), JSON-ready."""
        return {str(r): {str(c): (None if not np.isfinite(v) else float(v)) for c, v in zip(self.cols, row)}
                for r, row in zip(self.rows, self.values)}

    def __str__(self):
        return self.to_text()


class MAPDict(dict):
    """A dict of mAPs (``{key: mAP}``, or nested, ``{row: {col: mAP}}``) that also carries the
    per-query APs of each mAP, keyed the same way, in :attr:`aps` (ndarrays (n_queries,)).

    It is a plain dict otherwise (printing, JSON, iteration see only the mAPs).
    """

    def __init__(self, *args, aps: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        #: Per-query APs, keyed as the mAPs.
        self.aps: dict = {} if aps is None else aps


class MAPList(list):
    """A list of mAPs that also carries the per-query APs of each in :attr:`aps` (same order).

    It is a plain list otherwise.
    """

    def __init__(self, iterable=(), aps: list | None = None):
        super().__init__(iterable)
        #: Per-query APs, one ndarray (n_queries,) per mAP.
        self.aps: list = [] if aps is None else aps


def paired_line(aps_a, aps_b, name_a: str = "A", name_b: str = "B", metric: str = "mAP",
                n_resamples: int = DEFAULT_RESAMPLES, **kwargs) -> str:
    """One-line verdict of "A beats B" from two methods' per-query APs on the same queries.

    The paired difference of mAPs with its bootstrap confidence interval over queries (95 %,
    BCa), the paired permutation test and the verdict of
    :func:`selconv_lite.data.paired.paired_difference` (fixed seed), e.g.::

        A - B = +0.031 mAP, 95% CI [+0.012, +0.050], p = 0.004 (permutation, 55 queries): A better

    or ``...: no detectable difference`` when the interval covers 0.

    Parameters
    ----------
    aps_a, aps_b : array_like of float, shape (n_queries,)
        Per-query APs of A and B (``"aps"`` of :func:`~selconv_lite.experiments.scoring.score`,
        ``ResultTable.aps[row][col]``, ``MAPDict.aps[key]``, a Table 6 row's ``"aps"``). Queries
        whose AP is NaN in both (skipped by a revisited protocol) are left out.
    name_a, name_b : str
        The methods' names, as printed.
    metric : str, default "mAP"
        What the per-query APs average to (``"Medium mAP"`` for ``medium_aps``).
    n_resamples : int, default 9999
        Bootstrap and permutation resamples (about 0.04 s a call for 70 queries).
    **kwargs
        ``confidence``, ``random_state``, ``method`` of ``paired_difference``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        Different numbers of queries, a query NaN in only one of the two, fewer than 2 queries,
        APs outside [0, 1] (see ``paired_difference``).
    """
    a = np.asarray(aps_a, dtype=np.float64)
    b = np.asarray(aps_b, dtype=np.float64)
    if a.ndim == 1 and a.shape == b.shape:
        skipped = np.isnan(a) & np.isnan(b)
        a, b = a[~skipped], b[~skipped]
    return str(paired_difference(a, b, name_a=name_a, name_b=name_b, metric=metric,
                                 n_resamples=n_resamples, **kwargs))


def table6_text(rows: Sequence[dict], title: str) -> str:
    """Fixed-width text of :func:`run_table6`'s rows (best mAP and best mAP+QE marked ``*``)."""
    has_rev = any("easy" in r for r in rows)
    has_pub = any(r.get("published") is not None for r in rows)
    cols = ["dim", "D", "mAP", "+QE"] + (["E", "M", "H"] if has_rev else []) + (["paper", "diff"] if has_pub else [])
    best = max(r["mAP"] for r in rows)
    best_qe = max(r.get("mAP_qe", -1) for r in rows)
    w0 = max(len(r.get("label", r["method"])) for r in rows) + 2
    lines = [title, "method".ljust(w0) + "".join(c.rjust(8) for c in cols)]
    for r in rows:
        cells = [f"{r['dim']:8d}", f"{r['D']:8d}",
                 (f"{r['mAP']:.3f}" + ("*" if r["mAP"] == best else " ")).rjust(8),
                 (f"{r['mAP_qe']:.3f}" + ("*" if r.get("mAP_qe") == best_qe else " ")).rjust(8) if "mAP_qe" in r else "-".rjust(8)]
        if has_rev:
            cells += [f"{r[p]:8.3f}" if p in r else "-".rjust(8) for p in ("easy", "medium", "hard")]
        if has_pub:
            cells += [f"{r['published']:8.3f}" if r.get("published") is not None else "-".rjust(8),
                      f"{r['diff']:+8.3f}" if r.get("diff") is not None else "-".rjust(8)]
        lines.append(r.get("label", r["method"]).ljust(w0) + "".join(cells))
    lines.append("(dim: the paper's dimensionality; D: measured; * best of the column)")
    base = [r for r in rows if not r["ours"] and "whitening" in r]
    if base:
        lines.append("baselines' whitening:")
        lines += [f"  {r['label']}: {r['whitening']}" for r in base]
    return "\n".join(lines)
