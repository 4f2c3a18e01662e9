"""The landing page of the notebook series: ``index.html`` next to ``summary.md``.

:func:`write_landing` turns the results of a series run (the notebooks' JSON records, see
:class:`selconv_lite.teaching.notebook_utils.NotebookRecord`) into one HTML page that a student
opens first:

* every headline number, with mask names as the notebooks write them (``MAX mask``,
  ``M_MAX``, ``no mask``), the paper's value beside it where the paper publishes one
  (:mod:`selconv_lite.experiments.published`: Tables 3, 5 and 6 of Hoang et al., ACM MM 2017,
  on Oxford5k / Paris6k / Holidays) and a one-line reading computed from the numbers of the
  run: where the notebook recorded the paired comparison of the two numbers (the ``paired``
  entry of its record, :meth:`selconv_lite.experiments.report.PairedClaim.record`), the paired
  difference of per-query APs with its 95 % bootstrap interval and its verdict ("no detectable
  difference" when the interval covers 0); otherwise the bare difference, marked as no verdict
  (e.g. "0.041 below without QE (0.864 -> 0.822), no paired interval recorded: not a verdict");
* links to the tutorial notebooks in ``notebooks/`` (to work in) and to the executed copies
  (to read), all relative to the page;
* the wall time of the series, for the last run that started from an empty feature cache (cold)
  and the last one that extracted nothing (warm), kept in ``timings.json`` next to the page;
* what to do next.

The page is markdown rendered to HTML with nbconvert's markdown filter (mistune).
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..data.datasets import DEFAULT_MAX_DIM
from ..experiments import published
from ..experiments.report import claim_text

__all__ = ["normalise_names", "paper_value", "reading", "headline_rows", "record_timing", "run_kind", "lab_link",
           "render_landing_markdown", "render_html", "write_landing", "TIMINGS_FILE"]

#: Run history (cold/warm wall times) kept next to the page.
TIMINGS_FILE = "timings.json"
#: Key of a record's ``results`` that holds its paired comparisons (``{name: entry}``).
PAIRED_KEY = "paired"
#: Appended to a reading that has no paired interval behind it.
NO_INTERVAL = "no paired interval recorded: not a verdict"

_PAPER_COLS = ("oxford5k", "paris6k", "holidays")
_PAPER_COL_NAMES = "Oxford5k / Paris6k / Holidays"

_MASK_WORD = re.compile(r"\b(max|sum|sift)(?=[ -]mask)", re.IGNORECASE)
_MASK_PREFIX = re.compile(r"\bM_(max|sum|sift)\b", re.IGNORECASE)
_NONE_MASK = re.compile(r"\bnone mask\b", re.IGNORECASE)


def normalise_names(text: str) -> str:
    """Mask names as the notebooks write them: ``MAX mask``, ``M_MAX``, ``no mask``.

    >>> normalise_names("sift mask: features kept (%)"), normalise_names("Fig. 4: M_max, D=512")
    ('SIFT mask: features kept (%)', 'Fig. 4: M_MAX, D=512')
    """
    text = _NONE_MASK.sub("no mask", str(text))
    text = _MASK_WORD.sub(lambda m: m.group(1).upper(), text)
    return _MASK_PREFIX.sub(lambda m: "M_" + m.group(1).upper(), text)


def _paper_triplet(fn) -> str | None:
    vals = [fn(ds) for ds in _PAPER_COLS]
    if all(v is None for v in vals):
        return None
    return " / ".join("–" if v is None else f"{v:.1f}" for v in vals) + f" % ({_PAPER_COL_NAMES})"


_T3 = re.compile(r"^Table 3: (.+?), (MAX|SUM|SIFT|no) mask \(mAP\)$")
_T5 = re.compile(r"^Table 5: (MAX|SUM|SIFT) mask, max_dim (\d+) \(mAP\)$")
_T6 = re.compile(r"^(?:protocol: )?(M_(?:MAX|SUM|SIFT)\+T-emb\+demo) (\d+)-D \(mAP\)$")


def paper_value(quantity: str) -> str | None:
    """The paper's value(s) for a (normalised) headline name, as text, or None.

    Table 3 (framework and mask), Table 5 (mask and max_dim) and Table 6 (our method and D,
    without QE) are looked up; the paper's datasets (Oxford5k, Paris6k, Holidays) are not the
    notebooks' default data, so the values give the direction and size of an effect, not a
    number to match.
    """
    m = _T3.match(quantity)
    if m:
        fw = m.group(1).replace(" + ", "+").replace(" ", "")
        mask = "none" if m.group(2) == "no" else m.group(2).lower()
        return _paper_triplet(lambda ds: published.table3_value(ds, fw, mask))
    m = _T5.match(quantity)
    if m:
        return _paper_triplet(lambda ds: published.table5_value(ds, int(m.group(2)), m.group(1).lower()))
    m = _T6.match(quantity)
    if m:
        return _paper_triplet(lambda ds: published.table6_value(ds, m.group(1), int(m.group(2))))
    return None


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _fmt(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def _compare(value, other, than: str) -> str | None:
    a, b = _num(value), _num(other)
    if a is None or b is None:
        return None
    d = a - b
    if abs(d) < 5e-4:
        return f"equal to {than} ({_fmt(a)})"
    return f"{_fmt(abs(d))} {'above' if d > 0 else 'below'} {than} ({_fmt(b)} → {_fmt(a)})"


def _counterpart(quantity: str, headline: Mapping[str, Any]) -> tuple[str, str] | None:
    """The headline number ``quantity`` is read against, and how to call it, or None."""
    if " +QE" in quantity:
        return quantity.replace(" +QE", ""), "without QE"
    if quantity.endswith(" after") or " after (" in quantity:
        return quantity.replace(" after", " before"), "before fine-tuning"
    for big, small, label in (("1024-D", "512-D", "512-D"), ("D=1024", "D=512", "512-D"),
                              ("4096-D", "1024-D", "1024-D")):
        if big in quantity:
            return quantity.replace(big, small), label
    if quantity.startswith("with rotation normalisation"):
        return "without rotation normalisation (mAP)", "without rotation normalisation"
    m = _T5.match(quantity)
    if m:
        sizes = sorted(int(mm.group(2)) for k in headline if (mm := _T5.match(k)) and mm.group(1) == m.group(1))
        i = sizes.index(int(m.group(2))) if int(m.group(2)) in sizes else 0
        if i > 0:
            return quantity.replace(f"max_dim {m.group(2)}", f"max_dim {sizes[i - 1]}"), f"max_dim {sizes[i - 1]}"
        return None
    if "kept" in quantity:
        return None
    masked = _MASK_PREFIX.sub("no mask", quantity)
    if masked == quantity:
        masked = re.sub(r"\b(MAX|SUM|SIFT) mask\b", "no mask", quantity)
    return (masked, "no mask") if masked != quantity else None


def _paper_delta(quantity: str, other: str) -> str | None:
    """The paper's difference between the two quantities, per data set, or None."""
    def vals(q):
        for rx, fn in ((_T3, lambda m, ds: published.table3_value(
                            ds, m.group(1).replace(" + ", "+").replace(" ", ""),
                            "none" if m.group(2) == "no" else m.group(2).lower())),
                       (_T5, lambda m, ds: published.table5_value(ds, int(m.group(2)), m.group(1).lower())),
                       (_T6, lambda m, ds: published.table6_value(ds, m.group(1), int(m.group(2))))):
            m = rx.match(q)
            if m:
                return [fn(m, ds) for ds in _PAPER_COLS]
        return None

    a, b = vals(quantity), vals(other)
    if a is None or b is None:
        return None
    parts = [(name, x - y) for name, x, y in zip(("Oxford5k", "Paris6k", "Holidays"), a, b)
             if x is not None and y is not None]
    if not parts:
        return None
    return "paper: " + ", ".join(f"{d:+.1f} points on {name}" for name, d in parts)


def _paired_entry(quantity: str, other: str, paired) -> Mapping | None:
    """The recorded paired comparison of the headline numbers ``quantity`` and ``other``
    (either order; names normalised), or None."""
    entries = paired.values() if isinstance(paired, Mapping) else (paired or ())
    for e in entries:
        if not isinstance(e, Mapping) or e.get("a") is None or e.get("b") is None:
            continue
        if {normalise_names(e["a"]), normalise_names(e["b"])} == {quantity, other}:
            return e
    return None


def reading(quantity: str, headline: Mapping[str, Any], paired=None) -> str | None:
    """A one-line reading of ``headline[quantity]`` computed from the run's own numbers.

    ``headline`` holds the notebook's (normalised) headline numbers. The reading compares the
    number with its counterpart in the same notebook -- with/without query expansion,
    after/before fine-tuning, 1024-D with 512-D, a mask with no mask, with/without rotation
    normalisation, a max_dim with the next smaller one. When ``paired`` (the ``paired`` entries
    of the notebook's record, :meth:`~selconv_lite.experiments.report.PairedClaim.record`) holds
    the comparison of the two numbers, the reading is its line: the paired difference of the
    per-query APs with its 95 % bootstrap interval and the verdict, "no detectable difference"
    when the interval covers 0 (:func:`~selconv_lite.experiments.report.claim_text`); otherwise
    the bare difference, followed by :data:`NO_INTERVAL`. The paper's difference between the
    same two settings (Tables 3, 5, 6) is added when it publishes both. A kept fraction is read
    as kept/masked out. None when no counterpart exists.
    """
    v = headline.get(quantity)
    if _num(v) is None:
        return None
    if "features kept (%)" in quantity and not quantity.startswith("no mask"):
        return f"keeps {_fmt(v)} % of the local features; {_fmt(100 - v)} % are masked out"
    pair = _counterpart(quantity, headline)
    if pair is None or pair[0] not in headline:
        return None
    delta = _paper_delta(quantity, pair[0])
    if " +QE" in quantity:
        delta = "the paper reports no query-expansion result"
    entry = _paired_entry(quantity, pair[0], paired)
    if entry is not None:  # the paper's differences below replace the entry's own reading of them
        text = claim_text({k: x for k, x in entry.items() if not (delta and k == "agreement")})
    else:
        text = _compare(v, headline[pair[0]], pair[1])
        text = text and f"{text}, {NO_INTERVAL}"
    return f"{text}; {delta}" if text and delta else text


def headline_rows(headline: Mapping[str, Any], paired=None) -> list[tuple[str, Any, str | None, str | None]]:
    """``(quantity, value, paper value, reading)`` for each headline number, names normalised;
    ``paired``: the record's paired comparisons (see :func:`reading`)."""
    head = {normalise_names(k): v for k, v in (headline or {}).items()}
    return [(k, v, paper_value(k), reading(k, head, paired)) for k, v in head.items()]


def _value_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def _cell(text: Any) -> str:
    return html.escape(str(text), quote=False).replace("|", "\\|")


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def lab_link(target: Path, out: Path, repo: Path) -> str | None:
    """Relative URL that opens ``target`` in JupyterLab from ``out/index.html``, or None.

    A JupyterLab server started in ``repo`` serves the page at ``<base>/files/<out>/index.html``
    and opens a notebook at ``<base>/lab/tree/<path>``; the link climbs from the first to the
    second. None when ``out`` or ``target`` lies outside ``repo``.
    """
    try:
        depth = len(Path(out).resolve().relative_to(Path(repo).resolve()).parts)
        rel = Path(target).resolve().relative_to(Path(repo).resolve()).as_posix()
    except ValueError:
        return None
    return "../" * (depth + 1) + "lab/tree/" + rel


def _get(r, key, default=None):
    return r.get(key, default) if isinstance(r, Mapping) else getattr(r, key, default)


def run_kind(cache_entries: tuple[int, int] | None) -> str | None:
    """``"cold"`` if the feature cache was empty at the start, ``"warm"`` if the run added no
    entry to it, else None (partly extracted, or unknown)."""
    if cache_entries is None:
        return None
    before, after = (int(v) for v in cache_entries)
    return "cold" if before == 0 else ("warm" if after == before else None)


def record_timing(out: Path, results: Sequence, cache_entries: tuple[int, int] | None = None,
                  whole_series: bool = True, max_dim: int | None = None) -> dict:
    """Append this run to ``out/timings.json``; returns ``{"cold": run or None, "warm": run or None,
    "this": run}``.

    A run is ``{"finished", "kind", "entries_added", "total_seconds", "notebooks": {name:
    seconds}, "all_ok", "max_dim"}`` (kind: :func:`run_kind`, None unless ``whole_series``;
    ``max_dim``: the size passed to every notebook, None for their defaults); the last cold and
    warm runs of the same notebooks at the same ``max_dim`` where every notebook succeeded are
    returned.
    """
    path = Path(out) / TIMINGS_FILE
    try:
        runs = json.loads(path.read_text())["runs"]
        if not isinstance(runs, list):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        runs = []
    run = {"finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "kind": run_kind(cache_entries) if whole_series else None,
           "entries_added": None if cache_entries is None else int(cache_entries[1]) - int(cache_entries[0]),
           "total_seconds": round(sum(float(_get(r, "seconds", 0.0)) for r in results), 1),
           "notebooks": {_get(r, "name"): _get(r, "seconds") for r in results},
           "all_ok": all(_get(r, "status") == "ok" for r in results),
           "max_dim": None if max_dim is None else int(max_dim)}
    runs = (runs + [run])[-50:]
    path.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    names = set(run["notebooks"])
    last = {}
    for kind in ("cold", "warm"):
        same = [r for r in runs if isinstance(r, dict) and r.get("kind") == kind and r.get("all_ok")
                and set(r.get("notebooks", {})) == names and r.get("max_dim") == run["max_dim"]]
        last[kind] = same[-1] if same else None
    last["this"] = run
    return last


#: Measured cold run of the whole series at the paper's image size (repository-relative).
PAPER_SIZE_RECORD = "notebooks/measured/series_cold_1024.json"


def paper_size_step(repo: Path, max_dim: int | None) -> str | None:
    """The step that runs the series in the other regime: at the paper's 1024 px (with the
    measured cold time when the record is there) after a run at a smaller size; at 512 px (small
    maps, the masks keep most cells) after a run at 1024 px, the embedded set's default."""
    size = DEFAULT_MAX_DIM if max_dim is None else int(max_dim)
    if size == 1024:
        return ("Run the series at 512 px, `bash run_main.sh outputs/max512 --max-dim 512` (maps "
                "with a quarter of the cells, so it runs faster), and compare its landing page with "
                "this one: with fewer cells than channels the MAX mask keeps most of each map "
                "(Fig. 2a), and Table 3 shows how much of the masks' effect is left; notebook 06 "
                "(section 4b) shows both sizes side by side from a measured record.")
    took = ""
    try:
        rec = json.loads((Path(repo) / PAPER_SIZE_RECORD).read_text())
        took = (f" (measured from an empty feature cache: {float(rec['total_seconds']) / 60:.1f} min "
                f"on {rec['machine']['cores']} CPU cores)")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return ("Run the series at the paper's image size, `bash run_main.sh outputs/max1024 --max-dim 1024`"
            + took + ", and compare its landing page with this one: the MAX mask keeps fewer cells "
            "of the larger maps (Fig. 2a), and Table 3 shows the masks' effect at that size.")


def _next_steps(out: Path, repo: Path, nb_dir: Path, first_nb: str | None,
                max_dim: int | None = None) -> list[str]:
    steps = []
    if first_nb:
        steps.append(f"Work through the tutorial notebooks in order, starting with "
                     f"[{first_nb}]({_rel(nb_dir / (first_nb + '.ipynb'), out)}): open them in "
                     "JupyterLab, run the cells, change the parameters in the first code cell "
                     "(e.g. `max_dim`, the mask, `D`) and answer the exercises. Work in "
                     "`notebooks/`, not in the executed copies below (those are for reading).")
    steps.append("Re-run one notebook of the series after a change, e.g. "
                 "`python -m selconv_lite.teaching.series --only 06` (features come from the "
                 "cache, so a warm run is much faster than the first one).")
    paper_size = paper_size_step(repo, max_dim)
    if paper_size:
        steps.append(paper_size)
    for doc, what in (("docs/notebooks.md", "what each notebook teaches and its parameters"),
                      ("docs/method.md", "the method, equation by equation"),
                      ("docs/features.md", "feature extraction, the cache and its speed")):
        if (repo / doc).is_file():
            steps.append(f"Read [{doc}]({_rel(repo / doc, out)}): {what}.")
    if (repo / "course").is_dir():
        steps.append("Try the graded assignments in `course/` (nbgrader): the same steps, "
                     "written by you and checked by hidden tests.")
    steps.append("Compare each reading with the paper's difference beside it (Tables 3, 5, 6). "
                 "A reading is a verdict only with its paired 95 % interval over the queries: "
                 "\"no detectable difference\" when the interval covers 0. Where a detectable "
                 "difference has the other sign than the paper's, look in the notebook for what "
                 "differs from the paper's setting: a small data set, and the image size "
                 "(`max_dim`, Table 5), which sets the size of the feature maps the masks select from.")
    return steps


def render_landing_markdown(results: Sequence, out: Path, repo: Path | None = None,
                            timing: Mapping[str, Any] | None = None,
                            title: str = "selconv_lite: the notebook series",
                            notebooks_dir: str | os.PathLike | None = None) -> str:
    """The landing page as markdown (see the module docstring); links relative to ``out``."""
    out = Path(out)
    repo = Path(repo) if repo is not None else out.parent
    nb_dir = Path(notebooks_dir) if notebooks_dir is not None else repo / "notebooks"
    lines = [f"# {title}", "",
             "Hoang et al., *Selective Deep Convolutional Features for Image Retrieval*, ACM MM "
             "2017, reproduced by the selconv_lite notebooks on their default (embedded, offline) "
             "data. The paper's values are on Oxford5k, Paris6k and Holidays, a different and "
             "larger data set: compare the direction of an effect, not the numbers.", ""]
    # ---- notebooks
    lines += ["## The notebooks", "",
              "Work in the tutorial notebooks; the executed copies show what this run computed. "
              "In JupyterLab (started in the checkout's root), right-click `index.html` in the "
              "file browser and choose *Open in New Browser Tab*: the *in JupyterLab* links then "
              "open a notebook in JupyterLab, ready to run.", "",
              "| notebook | to work in | to read (executed by this run) | status | time (s) |",
              "|---|---|---|---|---|"]
    for r in results:
        name, status = _get(r, "name"), _get(r, "status")
        tutorial = nb_dir / f"{name}.ipynb"
        work = f"[{name}.ipynb]({_rel(tutorial, out)})" if tutorial.is_file() else "–"
        lab = lab_link(tutorial, out, repo) if tutorial.is_file() else None
        if lab:
            work += f" ([in JupyterLab]({lab}))"
        executed = Path(_get(r, "executed", ""))
        read = f"[executed copy]({_rel(executed, out)})" if executed.is_file() else "–"
        st = "ok" if status == "ok" else f"**{status}**: {_cell(_get(r, 'error', ''))}"
        lines.append(f"| {name} | {work} | {read} | {st} | {float(_get(r, 'seconds', 0)):.1f} |")
    total = sum(float(_get(r, "seconds", 0.0)) for r in results)
    timing = timing or {}
    added = (timing.get("this") or {}).get("entries_added")
    md = (timing.get("this") or {}).get("max_dim")
    size = (f"every notebook at its default image size (max_dim {DEFAULT_MAX_DIM}"
            + (", the paper's)" if DEFAULT_MAX_DIM == 1024 else "; the paper: 1024)")
            if md is None else f"every notebook at max_dim {md}" + (" (the paper's image size)" if md == 1024 else ""))
    lines += ["", f"This run: {total:.0f} s ({total / 60:.1f} min) for {len(results)} notebook(s), {size}"
              + ("." if added is None else f"; it added {added} entries to the feature cache."), ""]
    for kind, what in (("cold", "from an empty feature cache: every feature extracted"),
                       ("warm", "features read from the cache")):
        t = timing.get(kind)
        if t:
            lines.append(f"- Last **{kind}** run at this size ({what}): {t['total_seconds']:.0f} s "
                         f"({t['total_seconds'] / 60:.1f} min), finished {t['finished']}.")
    lines.append("")
    # ---- numbers
    lines += ["## The numbers, with the paper's", ""]
    for r in results:
        name = _get(r, "name")
        rec = _get(r, "record") or {}
        rows = headline_rows(rec.get("headline") or {}, (rec.get("results") or {}).get(PAIRED_KEY))
        lines += [f"### {name}", ""]
        if rows:
            lines += ["| quantity | here | paper | reading |", "|---|---|---|---|"]
            for q, v, p, rd in rows:
                lines.append(f"| {_cell(q)} | {_cell(_value_text(v))} | {_cell(p or '')} | {_cell(rd or '')} |")
            lines.append("")
        elif _get(r, "status") != "ok":
            lines += [f"Failed: `{_get(r, 'error', '')}` (the executed copy holds the traceback).", ""]
        figs = list((rec.get("figures") or {}).items())[:3]
        if figs:
            lines += [" ".join(f"![{_cell(k)}]({Path(v).as_posix()})" for k, v in figs), ""]
    # ---- next
    first = _get(results[0], "name") if results else None
    steps = _next_steps(out, repo, nb_dir, first, max_dim=md)
    lines += ["## What to do next", ""] + [f"{i}. {s}" for i, s in enumerate(steps, 1)]
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}img{max-width:32%;margin:.2rem}code{background:#f4f4f4;padding:0 .2rem}"""


def render_html(markdown_text: str, title: str = "selconv_lite: the notebook series") -> str:
    """A standalone HTML page from the landing markdown (nbconvert's mistune renderer)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    body = markdown2html_mistune(markdown_text)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def write_landing(results: Sequence, out: str | os.PathLike, repo: str | os.PathLike | None = None,
                  cache_entries: tuple[int, int] | None = None, whole_series: bool = True,
                  notebooks_dir: str | os.PathLike | None = None, max_dim: int | None = None) -> Path:
    """Write ``out/index.html`` (and record the run in ``out/timings.json``); returns its path.

    Parameters
    ----------
    results : sequence of RunResult or dict
        The series' results (``name``, ``status``, ``seconds``, ``executed``, ``error``, ``record``).
    out : path
        The series' output folder.
    repo : path, optional
        The checkout holding ``notebooks/`` and ``docs/`` (default: the parent of ``out``).
    cache_entries : (int, int), optional
        Entries in the feature cache before and after the run (cold: none before; warm: none
        added), None if unknown.
    whole_series : bool
        False when only some notebooks ran (the run is then neither cold nor warm).
    notebooks_dir : path, optional
        The tutorial notebooks (default: ``repo/notebooks``).
    max_dim : int, optional
        The image size passed to every notebook (None: their defaults).
    """
    out = Path(out)
    timing = record_timing(out, results, cache_entries, whole_series, max_dim=max_dim)
    md = render_landing_markdown(results, out, repo, timing, notebooks_dir=notebooks_dir)
    page = out / "index.html"
    page.write_text(render_html(md), encoding="utf-8")
    return page
