"""Run one notebook over a parameter grid with papermill (classroom sweeps, paper ablations).

Example -- the masks x dimensionality grid of the paper's Fig. 4 / Table 4 (Hoang et al.,
ACM MM 2017)::

    python -m selconv_lite.teaching.sweep notebooks/05_postprocessing.ipynb \\
        -p mask max sum sift none -p D 512 1024 --out outputs/sweeps/05

Every grid point is executed headless into ``<out>/notebooks/<stem>__mask-max__D-512.ipynb``
(point names are unique and reversible, see :func:`point_name` / :func:`parse_point_name`),
its JSON record goes to ``<out>/points/<point>/<stem>.json``; all records are collected into
``<out>/sweep.csv`` (one row per point: parameters, status, seconds, headline numbers and scalar
results) and a markdown table ``<out>/sweep.md``. A failing point is reported and the sweep goes
on; the exit status is 1 if any point failed, 2 on a usage error (unknown notebook or
parameter, a file that is not a notebook, a value of the wrong type, an output folder that
cannot be written).

Values are parsed like Python literals where possible (``512`` -> int, ``0.5`` -> float,
``True``/``False``/``None``); anything else stays a string. Every value is checked against the
type of the parameter's default in the notebook's ``parameters`` cell before anything runs
(an int parameter refuses ``abc``; a str parameter takes ``512`` as the text ``"512"``).
``-s NAME VALUE`` fixes a parameter for every point without sweeping it.
"""
from __future__ import annotations

import argparse
import ast
import csv
import itertools
import json
import re
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .notebook_utils import display_path, flatten
from .series import OutputDirError, RunResult, check_output_dir, default_notebooks_dir, execute

__all__ = ["SweepError", "parse_value", "resolve_notebook", "notebook_parameters", "point_name",
           "parse_point_name", "check_point_names", "check_parameter_types", "build_grid", "run_sweep",
           "write_csv", "markdown_table", "main"]


class SweepError(ValueError):
    """A problem with the sweep's arguments (unknown notebook or parameter, empty grid ...)."""


def parse_value(text: str) -> Any:
    """``"512"`` -> 512, ``"0.5"`` -> 0.5, ``"None"`` -> None, ``"max"`` -> "max"."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, (int, float, bool, str, type(None))) else text


def resolve_notebook(name: str | Path) -> Path:
    """A notebook path, or a name/prefix like ``05`` / ``05_postprocessing`` in ``notebooks/``."""
    p = Path(name)
    if p.is_file():
        return p.resolve()
    if p.suffix == ".ipynb" and not p.exists():
        raise SweepError(f"no notebook {name}")
    folder = default_notebooks_dir()
    hits = sorted(folder.glob(f"{p.name}*.ipynb"))
    if len(hits) != 1:
        found = ", ".join(h.name for h in hits) or "none"
        raise SweepError(f"notebook {name!r} must name exactly one notebook in {display_path(folder)} "
                         f"(matches: {found})")
    return hits[0]


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The parameters declared in the notebook's ``parameters`` cell (name -> papermill info)."""
    import papermill as pm

    try:
        with open(notebook, encoding="utf-8") as f:
            json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SweepError(f"{notebook} is not a Jupyter notebook (not valid JSON: {e})") from None
    try:
        params = pm.inspect_notebook(str(notebook))
    except Exception as e:  # nbformat validation errors and friends
        raise SweepError(f"{notebook} cannot be read as a notebook ({type(e).__name__}: {e})") from None
    if not params:
        raise SweepError(f"{notebook.name} has no cell tagged 'parameters'; papermill cannot sweep it")
    return params


def _encode(text: str) -> str:
    """Percent-encode everything but ``A-Z a-z 0-9 . + - _``, and ``_`` where it could be read as
    the ``__`` separator (leading, trailing, or next to another ``_``)."""
    q = urllib.parse.quote(text, safe=".+-_")
    return re.sub(r"^_|_$|_(?=_)", "%5F", q)


def point_name(point: Mapping[str, Any]) -> str:
    """A file-name-safe, reversible name for a grid point: ``mask-max__D-512``.

    Characters other than letters, digits, ``.``, ``+``, ``-`` and single inner ``_`` are
    percent-encoded (``"sum 50"`` -> ``sum%2050``, ``"sum/50"`` -> ``sum%2F50``), so two
    different values never share a folder; :func:`parse_point_name` inverts it.
    """
    parts = [f"{_encode(str(k))}-{_encode(str(v))}" for k, v in point.items()]
    return "__".join(parts) or "default"


def parse_point_name(name: str) -> dict[str, str]:
    """Inverse of :func:`point_name` (values come back as their text)."""
    if name == "default":
        return {}
    out = {}
    for part in name.split("__"):
        k, _, v = part.partition("-")
        out[urllib.parse.unquote(k)] = urllib.parse.unquote(v)
    return out


def check_point_names(grid: Sequence[Mapping[str, Any]]) -> list[str]:
    """The names of the grid's points; a :class:`SweepError` if two points would share a folder
    (the same value given twice, ``1`` and ``'1'``, names differing only in case, which
    case-insensitive file systems merge, or a name too long for a file name)."""
    names, seen = [], {}
    for point in grid:
        name = point_name(point)
        key = name.casefold()
        if key in seen:
            raise SweepError(f"the grid points {seen[key][1]} and {dict(point)} would both be "
                             f"written to the folder {name!r} (same value twice, or values that "
                             "differ only in type or case); give each value once")
        if len(name) > 200:
            raise SweepError(f"the grid point {dict(point)} gives a folder name of {len(name)} "
                             "characters (at most 200); use shorter values")
        seen[key] = (name, dict(point))
        names.append(name)
    return names


def _default_value(info: Mapping[str, Any]):
    try:
        return True, ast.literal_eval(str(info.get("default", "None")))
    except (ValueError, SyntaxError):
        return False, None


def check_parameter_types(values: Mapping[str, Any], declared: Mapping[str, Mapping[str, Any]],
                          where: str = "") -> dict[str, Any]:
    """Check (and lightly coerce) values against the types of the notebook's defaults.

    An ``int`` default takes an int; a ``float`` default an int or a float; a ``bool`` default
    a bool; a ``str`` default a str (a number is turned back into its text, ``None`` is
    allowed); a ``None`` default or a default that is not a literal takes anything.

    Raises
    ------
    SweepError
        Naming the parameter, the expected type (with the default) and the value.
    """
    out = {}
    for name, value in values.items():
        ok_default, default = _default_value(declared.get(name, {}))
        if not ok_default or default is None or value is None and not isinstance(default, bool):
            out[name] = value
            continue
        expected = type(default)
        if expected is bool:
            good = isinstance(value, bool)
        elif expected is int:
            good = isinstance(value, int) and not isinstance(value, bool)
        elif expected is float:
            good = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif expected is str:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            good = isinstance(value, str)
        else:
            good = True
        if not good:
            raise SweepError(f"parameter {name!r}{where} expects {expected.__name__} (its default in "
                             f"the notebook is {default!r}), got {value!r}")
        out[name] = value
    return out


def build_grid(sweeps: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Cartesian product of ``[[name, v1, v2, ...], ...]`` in the given order."""
    names, values = [], []
    for item in sweeps:
        if len(item) < 2:
            raise SweepError(f"-p needs a name and at least one value, got {list(item)}")
        name, *vals = item
        if name in names:
            raise SweepError(f"parameter {name!r} given twice")
        names.append(name)
        values.append([parse_value(v) for v in vals])
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def run_sweep(notebook: str | Path, sweeps: Sequence[Sequence[str]], out: str | Path | None = None,
              fixed: Mapping[str, Any] | None = None, cache_dir: str | Path | None = None,
              kernel_name: str | None = None, timeout: float | None = None,
              progress: bool = True) -> tuple[list[dict], Path, Path]:
    """Run the grid; returns (rows, csv_path, md_path). One row per point, failed ones included."""
    from tqdm.auto import tqdm

    nb = resolve_notebook(notebook)
    declared = notebook_parameters(nb)
    fixed = dict(fixed or {})
    grid = build_grid(sweeps)
    unknown = sorted(k for k in {*grid[0], *fixed} if k not in declared)
    if unknown:
        raise SweepError(f"{nb.name} has no parameter(s) {unknown}; its parameters are "
                         f"{sorted(declared)}")
    if "output_dir" in grid[0] or "output_dir" in fixed:
        raise SweepError("output_dir is set by the sweep itself (one folder per point); use --out")
    fixed = check_parameter_types(fixed, declared, " (-s)")
    grid = [check_parameter_types(point, declared) for point in grid]
    names = check_point_names(grid)
    out = Path(out) if out is not None else Path("outputs") / "sweeps" / nb.stem
    out = check_output_dir(out.resolve())
    check_output_dir(out / "notebooks")

    rows: list[dict] = []
    bar = tqdm(list(zip(grid, names)), desc=f"sweep {nb.stem}", unit="point",
               disable=not progress, file=sys.stderr)
    for point, name in bar:
        bar.set_postfix_str(name)
        params = {**fixed, **point}
        if "output_dir" in declared:
            params["output_dir"] = str(out / "points" / name)
        res: RunResult = execute(nb, out / "notebooks" / f"{nb.stem}__{name}.ipynb",
                                 out / "points" / name, parameters=params, cache_dir=cache_dir,
                                 kernel_name=kernel_name, timeout=timeout, cwd=nb.parent)
        row: dict[str, Any] = {"point": name, **point, "status": res.status,
                               "seconds": res.seconds, "error": res.error,
                               "executed": _rel(res.executed, out)}
        if res.record:
            row.update(flatten(res.record.get("headline", {})))
            scalars = {k: v for k, v in flatten(res.record.get("results", {})).items()
                       if isinstance(v, (int, float, str, bool)) or v is None}
            row.update({f"results.{k}": v for k, v in scalars.items()})
        if res.status != "ok":
            tqdm.write(f"[sweep] point {name} FAILED: {res.error} (see {res.executed})",
                       file=sys.stderr)
        rows.append(row)
    bar.close()

    csv_path, md_path = out / "sweep.csv", out / "sweep.md"
    write_csv(rows, csv_path)
    md_path.write_text(markdown_table(rows, list(grid[0].keys()), nb.name) + "\n")
    return rows, csv_path, md_path


def _rel(path: str | Path, base: Path) -> str:
    try:
        return Path(path).resolve().relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    cols = _columns(rows)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})


def markdown_table(rows: Sequence[Mapping[str, Any]], param_names: Sequence[str], title: str) -> str:
    """Parameters, status and the headline numbers of every point as a markdown table."""
    skip = {"point", "seconds", "executed", "error", "status", *param_names}
    value_cols = [c for c in _columns(rows) if c not in skip and not c.startswith("results.")]
    cols = [*param_names, "status", *value_cols]

    def cell(r, c):
        v = r.get(c, "")
        if c == "status" and v != "ok":
            return f"**{v}**: {str(r.get('error', '')).replace('|', '/')}"
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v).replace("|", "/")

    lines = [f"# Sweep of {title}", "", "| " + " | ".join(cols) + " |",
             "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    n_failed = sum(r.get("status") != "ok" for r in rows)
    lines += ["", f"{len(rows) - n_failed}/{len(rows)} points ok."]
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m selconv_lite.teaching.sweep",
        description="Run a notebook over a parameter grid with papermill; collect every point's "
                    "JSON record into one CSV and a markdown table.")
    ap.add_argument("notebook", help="notebook path, or a name/prefix in notebooks/ (e.g. 05)")
    ap.add_argument("-p", "--param", nargs="+", action="append", default=[], metavar="NAME_VALUES",
                    help="NAME V1 [V2 ...]: sweep parameter NAME over the values (repeatable)")
    ap.add_argument("-s", "--set", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="fix parameter NAME to VALUE for every point (repeatable)")
    ap.add_argument("--out", default=None, help="output folder (default: outputs/sweeps/<notebook>)")
    ap.add_argument("--cache-dir", default=None, help="feature cache folder (default: shared default)")
    ap.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebook's)")
    ap.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if not args.param:
        ap.error("give at least one -p NAME V1 [V2 ...]")
    try:
        rows, csv_path, md_path = run_sweep(
            args.notebook, args.param, args.out, {k: parse_value(v) for k, v in args.set},
            args.cache_dir, args.kernel, args.timeout, progress=not args.no_progress)
    except (SweepError, FileNotFoundError, OutputDirError) as exc:
        print(f"[sweep] error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"[sweep] {len(rows) - len(failed)}/{len(rows)} points ok")
    for r in failed:
        print(f"[sweep]   FAILED {r['point']}: {r['error']}  ({csv_path.parent / r['executed']})")
    print(f"[sweep] CSV:      {csv_path}")
    print(f"[sweep] table:    {md_path}")
    print(f"[sweep] notebooks: {csv_path.parent / 'notebooks'}")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
