"""Checks of the tutorial notebooks' text and outputs (issue: lessons that build on each other).

Three checks, each a function and a command (``PATH`` is a notebook or a folder of ``NN_*``
notebooks; the ``.ipynb`` is read where it exists, else the jupytext ``.py``); each prints what
it found and exits 1 when it found something, 0 otherwise::

    python -m selconv_lite.teaching.nbcheck check-markdown notebooks/
    python -m selconv_lite.teaching.nbcheck check-hygiene notebooks/ [--max-width 1200]
    python -m selconv_lite.teaching.nbcheck check-exercises notebooks/
    python -m selconv_lite.teaching.nbcheck strip-widgets notebooks/      # fixes, exit 0

**No measured number typed in markdown** (:func:`markdown_findings`). A number the notebook
measures (an mAP, a percentage kept, a run time, a count of images) must be printed by a code
cell, so the text cannot drift from the outputs. The checker flags, in markdown cells,

* decimals (``0.765``, ``27.7``), percentages (``30 %``), times (``29.3 min``, ``96 s``), sizes
  (``64 bytes``, ``16 GB``), ratios (``3x faster``), counts ``129 of 161``, and integers of 100
  or more (``161 images``);

and allows

* **paper values**, marked with their source: a sentence (or list item or table row) holding a
  parenthesised reference to the paper -- ``(Table 3)``, ``(Fig. 2a)``, ``(Eq. 5)``,
  ``(paper, Table 3)``, ``(Table 3, Oxford5k)``, ``(paper §5.2)`` -- or a paragraph (a block up to
  the next blank line, e.g. a whole markdown table) containing the HTML comment
  ``<!-- paper -->``. A section reference alone, ``(§5.1)``, does not mark a value;
* section, table, figure, equation, notebook and exercise numbers (``§5.2.1``, ``Sec. 4``,
  ``Table 3``, ``Eqs. 1-3``, ``notebook 06``), numbered headings and list items, dotted numbers
  (``5.2.1``), years (1950-2039);
* layer names and identifiers (``conv5_3``, ``pool5``, ``R1M``: digits attached to letters),
  code spans, code blocks, link targets and HTML;
* parameters: a number after ``=``, ``≈``, ``\\approx``, ``\\le``, ... (``D = 1024``,
  ``$K = 512$``) unless a measurement name precedes it (``mAP = 0.76`` is flagged), after a
  parameter word (``exponent 0.5``, ``margin 0.7``), dimensions (``512-D``, ``4224-dimensional``,
  ``32 × 24``), image sizes in pixels (``1024 px``);
* small integers (below 100) in prose.

The rules are a heuristic, tested on both sides in ``tests/test_notebook_hygiene.py``; the
notebooks will be held to them once they print their measured numbers (issue 23).

**Hygiene** (:func:`hygiene_findings`): a committed notebook holds no widget state
(``metadata.widgets``, written by the tqdm progress bars of an execution) and no widget view in
its outputs, and no figure wider than about 1200 px as displayed at notebook width (the PNG or
JPEG's pixel width, or the display width in the output's metadata when it sets one).
:func:`strip_widget_state` removes the widget state (``strip-widgets``); the series runner
strips it from every notebook it executes in place, and ``scripts/execute_notebooks.sh`` runs
``strip-widgets`` after it.

**Exercises** (:func:`exercise_findings`). The convention: an exercise (or a section of
exercises) starts with a markdown heading that begins with "Exercise" or "Exercises" (after an
optional number: ``## Exercises``, ``### Exercise 2: the margin``); up to the next heading of the
same or a higher level it has

* a **visible check**: a code cell, with its source shown, that contains an ``assert`` statement
  or calls an ``assert...`` function (``np.testing.assert_allclose``); the check must pass when
  the notebook runs headless, so it either checks the reader's answer when there is one or
  runs on the collapsed solution;
* a **collapsed solution**: a markdown cell with a ``<details>`` element whose ``<summary>``
  says "Solution" (collapsed by Jupyter, JupyterLab and GitHub, and kept by the jupytext pair),
  or a code cell whose source is collapsed (``metadata.jupyter.source_hidden: true``; the
  jupytext scripts do not carry that key, see ``notebooks/jupytext.toml``).
"""
from __future__ import annotations

import argparse
import ast
import base64
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["NOTEBOOK_NAME", "MAX_FIGURE_WIDTH", "PAPER_MARKER", "notebook_paths", "read_notebook",
           "Finding", "markdown_findings", "notebook_markdown_findings", "WIDGET_VIEW", "image_size",
           "figure_widths", "hygiene_findings", "strip_widget_state", "Exercise", "exercises",
           "exercise_findings", "main"]

NOTEBOOK_NAME = re.compile(r"^\d\d_[A-Za-z0-9_\-]+\.(ipynb|py)$")
MAX_FIGURE_WIDTH = 1200
PAPER_MARKER = re.compile(r"<!--\s*paper\b[^>]*-->", re.I)


# --------------------------------------------------------------------------------------------
# reading notebooks
# --------------------------------------------------------------------------------------------
def notebook_paths(paths: Iterable[str | Path], suffixes: Sequence[str] = (".ipynb", ".py")
                   ) -> list[Path]:
    """Expand folders into their ``NN_*`` notebooks (one file per notebook, the first suffix of
    ``suffixes`` that exists); files are kept as given. FileNotFoundError names a missing path."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            stems = sorted({q.stem for q in p.iterdir() if NOTEBOOK_NAME.match(q.name)
                            and q.suffix in suffixes})
            if not stems:
                raise FileNotFoundError(f"no NN_*{'/'.join(suffixes)} notebook in {p}")
            out += [next(p / f"{s}{x}" for x in suffixes if (p / f"{s}{x}").exists()) for s in stems]
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no notebook or folder {p}")
    return out


def read_notebook(path: str | Path):
    """The notebook at ``path`` (``.ipynb`` with nbformat, anything else with jupytext)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        import nbformat

        return nbformat.read(str(path), as_version=4)
    import jupytext

    return jupytext.read(path)


# --------------------------------------------------------------------------------------------
# no measured number typed in markdown
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """A flagged number (or other problem) in a notebook: where, what and why."""

    notebook: str
    cell: int | None  # counted from 0, markdown cells included; None: the whole notebook
    line: int  # 1-based line in the cell; 0 when it concerns the whole cell or notebook
    text: str
    kind: str
    context: str = ""

    def __str__(self) -> str:
        where = self.notebook + (f" cell {self.cell}" if self.cell is not None else "") \
            + (f" line {self.line}" if self.line else "")
        ctx = f"  ...{self.context}..." if self.context else ""
        return f"{where}: {self.text!r} ({self.kind}){ctx}"


_MASKED = [re.compile(p, re.S) for p in (
    r"^(```|~~~).*?^\1[^\n]*$",          # fenced code blocks
    r"<!--.*?-->",                        # HTML comments (the paper marker is read before)
    r"(`+)[^`]*?\1",                      # code spans
    r"\]\([^)]*\)",                       # link targets
    r"<[^<>\n]+>",                        # HTML tags
)]
_PAPER_REF = re.compile(
    r"\((?:the\s+)?(?:paper(?:'s)?[,:]?\s*)?(?:Tables?|Tab\.|Figs?\.|Figures?|Eqs?\.|Equations?)"
    r"\s*\d+[a-z]?(?:[,;][^()\n]{0,60})?\)|\((?:the\s+)?paper(?:'s)?[,:]?\s*§\s*\d[\d.]*\)", re.I)
_REFERENCE_WORD = re.compile(
    r"(?:§§?|\b(?:Sec|Secs|Sect|Section|Sections|Chapter|Table|Tables|Tab|Fig|Figs|Figure|Figures"
    r"|Eq|Eqs|Equation|Equations|notebook|notebooks|Notebook|Notebooks|Exercise|exercise|step|Step"
    r"|cell|Appendix|Algorithm|Python|version|v)\.?)\s*"
    r"(?:\d+(?:\.\d+)*[a-z]?\s*(?:,|–|-|and|to|or|/|&)\s*)*$", re.I)
_PARAMETER_WORD = re.compile(
    r"\b(?:exponent|margin|threshold|tolerance|alpha|beta|gamma|lambda|mu|seed|momentum|lr|"
    r"learning rate|weight decay|temperature|radius|p)\s*$|[αβγλμτ]\s*$|_{3,}\s*\(?$", re.I)
_OPERATOR = re.compile(r"(?:=|≈|≃|~|≤|≥|<|>|\\approx|\\simeq|\\sim|\\le|\\ge|\\leq|\\geq)\s*[−-]?\s*$")
_METRIC_BEFORE = re.compile(r"\b(?:mAP|AP|maps?|recall|precision|accuracy|loss|time|error|"
                            r"speed|score|kept|took|takes)\b[^=≈<>]{0,12}$", re.I)
_NUMBER = re.compile(r"(?<![\w.\\])(?<!\w-)(\d{1,3}(?:(?:[ \u00a0\u202f\u2009]|,(?=\d{3}))\d{3})+"
                     r"(?![\d.,]\d)|\d+(?:\.\d+)*)(?:(?!\w)|(?=[x×]\b))")
_UNIT_AFTER = [
    ("percentage", re.compile(r"^\s*(?:%|percent\b|per ?cent\b|percentage points?\b|points?\b|pp\b)")),
    ("time", re.compile(r"^\s*(?:ms|s|sec|secs|seconds?|min|mins|minutes?|h|hrs?|hours?|days?)\b")),
    ("size", re.compile(r"^\s*(?:B|kB|KB|KiB|MB|MiB|GB|GiB|TB|bytes?)\b")),
    ("ratio", re.compile(r"^\s*[x×](?!\s*\d)")),
]
_DIMENSION_AFTER = re.compile(r"^(?:(?:\s*(?:,|and|or|to|–|/)\s*\d+)*\s*[-‑]?\s*"
                              r"(?:D|d|dim|dims|dimensional|dimensions|px|pixels?)\b|\s*[×x]\s*\d)")
_DIMENSION_BEFORE = re.compile(r"\d\s*[×x]\s*$|\d\s*[×x]\s*\d+\s*=\s*$")
_COUNT_OF = re.compile(r"^\s+of\s+(?:the\s+|its\s+|their\s+)?\d")
_ABBREVIATIONS = {"fig", "figs", "eq", "eqs", "sec", "secs", "tab", "e.g", "i.e", "al", "vs",
                  "cf", "approx", "resp", "no", "nos", "ca", "etc"}


def _mask(text: str) -> str:
    """``text`` with code, HTML and link targets blanked (newlines and offsets kept); code spans
    become ``_`` runs, so that a number right after one reads as a parameter's value."""
    for rx in _MASKED:
        fill = "_" if rx.pattern.startswith("(`+)") else " "
        text = rx.sub(lambda m: re.sub(r"[^\n]", fill, m.group(0)), text)
    return text


def _units(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences, list items, table rows and headings of ``text``."""
    spans = []
    starts = [0]
    for m in re.finditer(r"\n", text):
        nxt = text[m.end():]
        if (not nxt.strip("\n") or re.match(r"\s*\n|\s*\||\s*#|\s*(?:[*+-]|\d+[.)])\s", nxt)
                or text[:m.start()].rsplit("\n", 1)[-1].lstrip().startswith(("|", "#"))):
            starts.append(m.end())
    bounds = sorted(set(starts)) + [len(text)]
    for a, b in zip(bounds, bounds[1:]):
        s = a
        for m in re.finditer(r"[.!?]\s+(?=[A-Z(*$\[_])", text[a:b]):
            word = re.search(r"([\w.]*)$", text[a:a + m.start()]).group(1).lower()
            if word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", word):
                continue
            spans.append((s, a + m.end()))
            s = a + m.end()
        spans.append((s, b))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _classify(unit: str, i: int, j: int) -> str | None:
    """Why the number ``unit[i:j]`` is flagged, or None when it is allowed."""
    tok = unit[i:j]
    before, after = unit[max(0, i - 40):i], unit[j:j + 40]
    line_start = unit[:i].rsplit("\n", 1)[-1]
    if _REFERENCE_WORD.search(before) or tok.count(".") >= 2:
        return None
    if re.fullmatch(r"\s*#+\s*", line_start) or (re.fullmatch(r"\s*", line_start)
                                                 and re.match(r"[.)]\s", after)):
        return None  # numbered heading or list item
    for kind, rx in _UNIT_AFTER:
        if rx.match(after):
            return kind
    if _COUNT_OF.match(after):
        return "count 'N of M'"
    value = float(re.sub(r"[\s,]", "", tok))
    if "." not in tok and 1950 <= value <= 2039:
        return None  # a year
    if _DIMENSION_AFTER.match(after) or _DIMENSION_BEFORE.search(before):
        return None
    if _OPERATOR.search(before) and not _METRIC_BEFORE.search(
            _OPERATOR.sub("", before).rstrip()):
        return None
    if _PARAMETER_WORD.search(before):
        return None
    if "." in tok:
        return "decimal"
    if value >= 100:
        return "integer >= 100"
    return None


def markdown_findings(source: str, notebook: str = "?", cell: int = 0) -> list[Finding]:
    """The numbers of one markdown cell that look measured (see the module docstring)."""
    found: list[Finding] = []
    paper_blocks = []
    for m in re.finditer(r"(?:[^\n]|\n(?!\s*\n))+", source):   # blocks up to a blank line
        if PAPER_MARKER.search(m.group(0)):
            paper_blocks.append((m.start(), m.end()))
    text = _mask(source)
    clauses = [(a + m.start(), a + m.end()) for a, b in _units(text)
               for m in re.finditer(r"(?:[^;—]|—(?!\s))+", text[a:b])]
    for a, b in clauses:
        unit = text[a:b]
        if _PAPER_REF.search(unit) or any(pa <= a < pb for pa, pb in paper_blocks):
            continue
        for m in _NUMBER.finditer(unit):
            kind = _classify(unit, m.start(), m.end())
            if kind:
                pos = a + m.start()
                line = source.count("\n", 0, pos) + 1
                ctx = " ".join(source[max(0, pos - 30):pos + len(m.group(0)) + 20].split())
                found.append(Finding(notebook, cell, line, m.group(0), kind, ctx))
    return found


def notebook_markdown_findings(path: str | Path) -> list[Finding]:
    """:func:`markdown_findings` of every markdown cell of the notebook at ``path``."""
    nb = read_notebook(path)
    name = Path(path).name
    return [f for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
            for f in markdown_findings(c.source, name, i)]


# --------------------------------------------------------------------------------------------
# hygiene: widget state, figure widths
# --------------------------------------------------------------------------------------------
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def image_size(data: str | bytes) -> tuple[int, int]:
    """(width, height) in pixels of a PNG / JPEG / GIF given as bytes or as the base64 text of a
    notebook output; only the header is read."""
    from PIL import Image

    raw = base64.b64decode(data) if isinstance(data, str) else data
    with Image.open(io.BytesIO(raw)) as im:
        return im.size


def figure_widths(nb) -> list[tuple[int, int, int, int]]:
    """(cell, output, pixel width, displayed width) of every PNG/JPEG/GIF output of ``nb``; the
    displayed width is the output metadata's ``width`` when set, else the pixel width."""
    rows = []
    for i, cell in enumerate(nb.cells):
        for k, out in enumerate(cell.get("outputs", [])):
            for mime in ("image/png", "image/jpeg", "image/gif"):
                if mime in out.get("data", {}):
                    w, _ = image_size(out["data"][mime])
                    shown = (out.get("metadata", {}).get(mime) or {}).get("width", w)
                    rows.append((i, k, w, int(shown)))
    return rows


def hygiene_findings(path: str | Path, max_width: int = MAX_FIGURE_WIDTH, widgets: bool = True,
                     figures: bool = True) -> list[Finding]:
    """Widget state / widget views saved in the notebook at ``path`` and figures displayed wider
    than ``max_width`` pixels."""
    nb = read_notebook(path)
    name = Path(path).name
    found = []
    if widgets:
        if "widgets" in nb.metadata:
            n = len((nb.metadata["widgets"] or {}).get(
                "application/vnd.jupyter.widget-state+json", {}).get("state", {}))
            found.append(Finding(name, None, 0, "metadata.widgets", f"widget state saved ({n} models)"))
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                if WIDGET_VIEW in out.get("data", {}):
                    found.append(Finding(name, i, 0, WIDGET_VIEW, "widget view in an output"))
    if figures:
        for i, k, w, shown in figure_widths(nb):
            if shown > max_width:
                found.append(Finding(name, i, 0, f"output {k}: {w} px wide"
                                     + (f" shown at {shown} px" if shown != w else ""),
                                     f"figure wider than {max_width} px"))
    return found


def strip_widget_state(path: str | Path) -> bool:
    """Remove ``metadata.widgets`` from the ``.ipynb`` at ``path``; True if it was there. Refuses
    (ValueError) a notebook whose outputs display widget views, which need that state."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    if "widgets" not in nb.metadata:
        return False
    views = [i for i, c in enumerate(nb.cells) for o in c.get("outputs", [])
             if WIDGET_VIEW in o.get("data", {})]
    if views:
        raise ValueError(f"{path}: cells {views} display widgets; clear those outputs before "
                         "stripping the widget state")
    del nb.metadata["widgets"]
    nbformat.write(nb, str(path))
    return True


# --------------------------------------------------------------------------------------------
# exercises: a visible check and a collapsed solution
# --------------------------------------------------------------------------------------------
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.M)
_SOLUTION_DETAILS = re.compile(r"<details\b.*?<summary\b[^>]*>.*?solution.*?</summary>", re.I | re.S)


def _has_assert(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name.startswith("assert"):
                return True
    return False


def _hidden(cell) -> bool:
    jup = cell.metadata.get("jupyter") or {}
    tags = set(cell.metadata.get("tags") or [])
    return bool(jup.get("source_hidden")) or bool(tags & {"remove-input", "hide-input", "remove-cell"})


@dataclass
class Exercise:
    """An exercise (or a section of exercises) of a notebook and what it has."""

    notebook: str
    cell: int
    title: str
    check_cells: list[int]
    solution_cells: list[int]

    @property
    def complete(self) -> bool:
        return bool(self.check_cells and self.solution_cells)


def exercises(nb, name: str = "?") -> list[Exercise]:
    """The exercises of ``nb`` following the convention of the module docstring."""
    heads = []  # (cell, level, title) of every markdown heading
    for i, c in enumerate(nb.cells):
        if c.cell_type == "markdown":
            for m in _HEADING.finditer(_mask(c.source)):
                heads.append((i, len(m.group(1)), m.group(2).strip()))
    found = []
    for n, (i, level, title) in enumerate(heads):
        if not re.match(r"[*_\s]*(?:\d+[.)]?\s*)?exercises?\b", title, re.I):
            continue
        end = next((j for j, lv, _ in heads[n + 1:] if lv <= level and j > i), len(nb.cells))
        span = range(i, end)
        checks = [j for j in span if nb.cells[j].cell_type == "code"
                  and _has_assert(nb.cells[j].source) and not _hidden(nb.cells[j])]
        sols = [j for j in span if (nb.cells[j].cell_type == "markdown"
                                    and _SOLUTION_DETAILS.search(nb.cells[j].source))
                or (nb.cells[j].cell_type == "code"
                    and (nb.cells[j].metadata.get("jupyter") or {}).get("source_hidden"))]
        found.append(Exercise(name, i, title, checks, sols))
    return found


def exercise_findings(path: str | Path) -> list[Finding]:
    """What the notebook at ``path`` lacks: no exercise at all, or no exercise with both a
    visible check and a collapsed solution (one finding per incomplete exercise then)."""
    name = Path(path).name
    ex = exercises(read_notebook(path), name)
    if not ex:
        return [Finding(name, None, 0, "no exercise", "no markdown heading starting with 'Exercise'")]
    if any(e.complete for e in ex):
        return []
    return [Finding(name, e.cell, 0, e.title, "lacks " + " and ".join(
        w for w, ok in (("a visible check (assert)", e.check_cells),
                        ("a collapsed solution", e.solution_cells)) if not ok)) for e in ex]


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def _report(findings: list[Finding], paths: list[Path], what: str) -> int:
    for f in findings:
        print(f)
    counts = {p.name: 0 for p in paths}
    for f in findings:
        counts[f.notebook] = counts.get(f.notebook, 0) + 1
    print(f"\n{what} per notebook:")
    for name, n in counts.items():
        print(f"  {name}: {n}")
    print(f"total: {len(findings)}")
    return 1 if findings else 0


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m selconv_lite.teaching.nbcheck",
                                 description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd, help_ in (("check-markdown", "flag measured numbers typed in markdown cells"),
                       ("check-hygiene", "flag widget state and figures wider than --max-width"),
                       ("check-exercises", "list notebooks without an exercise that has a "
                                           "visible check and a collapsed solution"),
                       ("strip-widgets", "remove the saved widget state from .ipynb files")):
        p = sub.add_parser(cmd, help=help_)
        p.add_argument("paths", nargs="+", help="notebooks or folders of NN_* notebooks")
        if cmd == "check-hygiene":
            p.add_argument("--max-width", type=int, default=MAX_FIGURE_WIDTH)
            p.add_argument("--only", choices=("widgets", "figures"),
                           help="run one of the two checks")
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        if args.cmd == "strip-widgets":
            paths = notebook_paths(args.paths, (".ipynb",))
            for p in paths:
                if strip_widget_state(p):
                    print(f"stripped the widget state of {p}")
            return 0
        paths = notebook_paths(args.paths, (".ipynb",) if args.cmd == "check-hygiene"
                               else (".ipynb", ".py"))
        if args.cmd == "check-markdown":
            return _report([f for p in paths for f in notebook_markdown_findings(p)], paths,
                           "measured numbers typed in markdown")
        if args.cmd == "check-hygiene":
            return _report([f for p in paths for f in hygiene_findings(
                p, args.max_width, widgets=args.only != "figures",
                figures=args.only != "widgets")], paths, "hygiene problems")
        return _report([f for p in paths for f in exercise_findings(p)], paths,
                       "exercises lacking a visible check or a collapsed solution")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
