"""How the experiments' results print: a table of numbers with the best entry of each column
marked (the paper's bold), as fixed-width text or Markdown, and Table 6's rows as text.

* :func:`best_per_column` -- the maxima of each column of a table;
* :class:`ResultTable` -- rows x columns of numbers (Tables 3 and 5 of the notebooks);
* :func:`table6_text` -- the rows of :func:`selconv_lite.experiments.tables.run_table6`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["best_per_column", "ResultTable", "table6_text"]


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
    """

    title: str
    rows: list
    cols: list
    values: np.ndarray
    row_header: str = ""
    ndigits: int = 3
    notes: list = field(default_factory=list)

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
