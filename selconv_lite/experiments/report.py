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
* :func:`paired_claim` -- the same verdict checked against the paper's difference (agrees /
  disagrees / no detectable difference), as a :class:`PairedClaim` that prints that line and
  gives a JSON-ready entry for a notebook's record (:class:`PairedLog` keeps a notebook's
  entries by name); :func:`count_claims` counts the verdicts of
  many pairs (e.g. "democratic beats sum pooling" over every mask); :func:`claim_text` prints a
  recorded entry again (the landing page);
* :func:`table6_text` -- the rows of :func:`selconv_lite.experiments.tables.run_table6`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.paired import DEFAULT_RESAMPLES, PairedComparison, paired_difference

__all__ = ["best_per_column", "ResultTable", "MAPDict", "MAPList", "paired_line", "PairedClaim",
           "paired_claim", "PairedLog", "count_claims", "claim_text", "AGREEMENTS", "NO_APS", "table6_text"]


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
    a, b = _drop_skipped(aps_a, aps_b)
    return str(paired_difference(a, b, name_a=name_a, name_b=name_b, metric=metric,
                                 n_resamples=n_resamples, **kwargs))


def _drop_skipped(aps_a, aps_b) -> tuple[np.ndarray, np.ndarray]:
    """The two APs without the queries that are NaN in both (skipped by a revisited protocol)."""
    a = np.asarray(aps_a, dtype=np.float64)
    b = np.asarray(aps_b, dtype=np.float64)
    if a.ndim == 1 and a.shape == b.shape:
        skipped = np.isnan(a) & np.isnan(b)
        a, b = a[~skipped], b[~skipped]
    return a, b


#: The three readings of a paper's claim against a paired comparison.
AGREEMENTS = ("agrees", "disagrees", "no detectable difference")
#: The verdict of a comparison whose per-query APs are missing (e.g. an old regimes record).
NO_APS = "no per-query APs"


@dataclass(frozen=True)
class PairedClaim:
    """A paired comparison of method A with method B, and what it says of the paper's claim.

    Made by :func:`paired_claim`. ``str()`` is the line of :func:`paired_line`, followed by
    ``-> agrees`` / ``-> disagrees`` when the paper's difference is given and the difference is
    detectable (otherwise the line already ends with "no detectable difference", the third
    reading); :meth:`record` is the entry for a notebook's record.

    Attributes
    ----------
    name_a, name_b : str
        The methods' names, as printed.
    metric : str
        What the per-query APs average to (``"mAP"``, ``"Medium mAP"``).
    comparison : PairedComparison or None
        The paired statistics; None when either side had no per-query APs.
    paper_diff : float or None
        The paper's ``A - B`` (any unit: only its sign is read), None when it publishes none.
    a, b : str or None
        The headline names of A and B in the notebook's record, when both are headline numbers
        (the landing page prints the comparison beside them).
    """

    name_a: str
    name_b: str
    metric: str = "mAP"
    comparison: PairedComparison | None = None
    paper_diff: float | None = None
    a: str | None = None
    b: str | None = None

    @property
    def detectable(self) -> bool:
        """Whether the paired interval excludes 0 (and the permutation test agrees)."""
        return self.comparison is not None and self.comparison.detectable

    @property
    def difference(self) -> float | None:
        """``mAP(A) - mAP(B)``, None without per-query APs."""
        return None if self.comparison is None else self.comparison.difference

    @property
    def verdict(self) -> str:
        """``"<A> better"``, ``"<B> better"``, ``"no detectable difference"`` or :data:`NO_APS`."""
        return NO_APS if self.comparison is None else self.comparison.verdict

    @property
    def agreement(self) -> str | None:
        """With the paper's difference: ``"agrees"`` when the difference is detectable and has
        the paper's sign, ``"disagrees"`` when it is detectable with the other sign (or the
        paper reports no difference), ``"no detectable difference"`` when it is not detectable,
        :data:`NO_APS` without per-query APs; None without a paper's difference."""
        if self.paper_diff is None:
            return None
        if self.comparison is None:
            return NO_APS
        if not self.detectable:
            return "no detectable difference"
        same = self.paper_diff != 0 and (self.paper_diff > 0) == (self.comparison.difference > 0)
        return "agrees" if same else "disagrees"

    def __str__(self) -> str:
        if self.comparison is None:
            line = (f"{self.name_a} vs {self.name_b}: {NO_APS} (the record predates them; "
                    "re-measure it), no verdict")
        else:
            line = str(self.comparison)
        # "no detectable difference" already ends the line: the agreement is printed once
        return line if self.paper_diff is None or not self.detectable else f"{line} -> {self.agreement}"

    def record(self) -> dict:
        """JSON-ready entry for a notebook's record: ``name_a``, ``name_b``, ``metric``, ``n``,
        ``difference``, ``ci_low``, ``ci_high``, ``confidence``, ``p_value`` (floats, None without
        per-query APs), ``verdict``, and ``a`` / ``b`` (headline names), ``paper_diff`` and
        ``agreement`` when given. :func:`claim_text` prints it again."""
        c = self.comparison
        out = {"name_a": self.name_a, "name_b": self.name_b, "metric": self.metric,
               "n": None if c is None else c.n,
               "difference": None if c is None else float(c.difference),
               "ci_low": None if c is None else float(c.ci_low),
               "ci_high": None if c is None else float(c.ci_high),
               "confidence": None if c is None else float(c.confidence),
               "p_value": None if c is None else float(c.p_value),
               "verdict": self.verdict}
        if self.a is not None and self.b is not None:
            out["a"], out["b"] = self.a, self.b
        if self.paper_diff is not None:
            out["paper_diff"] = float(self.paper_diff)
            out["agreement"] = self.agreement
        return out


def paired_claim(aps_a, aps_b, name_a: str = "A", name_b: str = "B", paper_diff: float | None = None,
                 metric: str = "mAP", a: str | None = None, b: str | None = None,
                 n_resamples: int = DEFAULT_RESAMPLES, **kwargs) -> PairedClaim:
    """The verdict of "A beats B" from per-query APs, checked against the paper's difference.

    Parameters
    ----------
    aps_a, aps_b : array_like of float, shape (n_queries,), or None
        Per-query APs of A and B, as for :func:`paired_line` (queries NaN in both left out).
        None (e.g. :func:`selconv_lite.experiments.regimes.recorded_aps` of a record written
        before per-query APs were stored) gives a claim without a verdict (:data:`NO_APS`).
    name_a, name_b : str
        The methods' names, as printed.
    paper_diff : float, optional
        The paper's ``A - B`` (its sign is what is checked); None: no agreement is read.
    metric : str, default "mAP"
        What the per-query APs average to.
    a, b : str, optional
        Headline names of A and B in the notebook's record (for the landing page).
    n_resamples, **kwargs
        As :func:`paired_line`.

    Returns
    -------
    PairedClaim
        ``print(claim)`` gives the paired line and the agreement; ``claim.record()`` the entry
        for ``NotebookRecord.add``.
    """
    cmp = None
    if aps_a is not None and aps_b is not None:
        x, y = _drop_skipped(aps_a, aps_b)
        cmp = paired_difference(x, y, name_a=name_a, name_b=name_b, metric=metric,
                                n_resamples=n_resamples, **kwargs)
    return PairedClaim(name_a=str(name_a), name_b=str(name_b), metric=str(metric), comparison=cmp,
                       paper_diff=None if paper_diff is None else float(paper_diff), a=a, b=b)


class PairedLog(dict):
    """A notebook's paired comparisons by name, ``{key: PairedClaim.record()}``: record it with
    ``NotebookRecord.add("paired", log)`` (the landing page prints an entry beside the two
    headline numbers it names in ``a`` / ``b``)."""

    def claim(self, key: str, aps_a, aps_b, name_a: str = "A", name_b: str = "B", **kwargs) -> PairedClaim:
        """:func:`paired_claim` of the arguments, its :meth:`~PairedClaim.record` kept under
        ``key``; returns the claim (print it for the line)."""
        c = paired_claim(aps_a, aps_b, name_a, name_b, **kwargs)
        self[str(key)] = c.record()
        return c


def count_claims(claims: Sequence[PairedClaim]) -> dict:
    """How many of several paired comparisons A wins, loses or ties by their intervals.

    Returns
    -------
    dict
        ``{"better": A better, detectably; "worse": B better, detectably; "no_difference":
        interval covering 0; "untested": no per-query APs; "n": all}`` (ints).
    """
    out = {"better": 0, "worse": 0, "no_difference": 0, "untested": 0, "n": len(claims)}
    for c in claims:
        if c.comparison is None:
            out["untested"] += 1
        elif not c.detectable:
            out["no_difference"] += 1
        else:
            out["better" if c.comparison.difference > 0 else "worse"] += 1
    return out


def claim_text(entry: Mapping) -> str:
    """One line from a recorded :meth:`PairedClaim.record` entry (e.g. on the landing page):
    ``"A - B = +0.031 mAP, 95% CI [+0.012, +0.050], p = 0.004 (70 queries): A better"``, with
    ``"; paper: agrees"`` when the entry holds the paper's reading."""
    a, b = entry.get("name_a", "A"), entry.get("name_b", "B")
    if entry.get("difference") is None or entry.get("ci_low") is None:
        text = f"{a} vs {b}: {NO_APS}, no verdict"
    else:
        p = entry.get("p_value")
        p_txt = "" if p is None else (", p < 0.001" if p < 0.001 else f", p = {p:.3f}")
        conf = entry.get("confidence") or 0.95
        text = (f"{a} - {b} = {entry['difference']:+.3f} {entry.get('metric', 'mAP')}, {100 * conf:g}% CI "
                f"[{entry['ci_low']:+.3f}, {entry['ci_high']:+.3f}]{p_txt} ({entry.get('n')} queries): "
                f"{entry.get('verdict', '')}")
    if entry.get("agreement"):
        text += f"; paper: {entry['agreement']}"
    return text


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
