"""Regression check of the notebooks' measured numbers, with stated tolerances.

Every notebook writes its key numbers to ``<output_dir>/<notebook>.json``
(:class:`selconv_lite.teaching.notebook_utils.NotebookRecord`). The committed notebooks' numbers
are kept as references, ``notebooks/reference/<notebook>.json``; a fresh run is compared with them
number by number, each within the absolute tolerance of the first pattern of
``notebooks/reference/tolerances.toml`` that matches ``<notebook>:<key>``. The tolerances come
from the measured spread of the numbers across thread counts and BLAS kernels
(``benchmarks/notebook_spread.py``, docs/notebooks.md "Reproducibility"): the mAPs of the paper's
tables (Hoang et al., ACM MM 2017, Tables 2-6, Fig. 3) move in the third decimal from one CPU to
another, so byte equality of floats cannot be required.

Keys are the record's ``params``, ``headline`` and ``results`` flattened with dots
(``results.table3.max.0``; list items by index). Integers, strings, booleans and ``null`` (NaN)
must be equal; floats must be within tolerance; a tolerance of ``inf`` excludes a key (timings):
it is neither stored in the references nor compared.

Tolerance file (TOML)::

    [tolerances]
    "*:*seconds*" = inf         # timings: excluded
    "0[4-7]_*:*map*" = 0.02     # measured max spread 0.008 (1 vs 2 threads) x 2.5
    "*" = 0.0                   # everything else exact
"""
from __future__ import annotations

import fnmatch
import json
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .notebook_utils import load_record

__all__ = ["SECTIONS", "REFERENCE_SCHEMA", "reference_dir", "default_tolerance_file", "Tolerances",
           "load_tolerances", "measured_values", "compare_values", "reference_of", "load_reference",
           "update_references", "compare_record", "compare_folder"]

#: Sections of a record that hold measured numbers (``figures`` holds file names only).
SECTIONS = ("params", "headline", "results")
REFERENCE_SCHEMA = 1


def reference_dir() -> Path:
    """``<repo>/notebooks/reference`` of this checkout."""
    return Path(__file__).resolve().parents[2] / "notebooks" / "reference"


def default_tolerance_file() -> Path:
    return reference_dir() / "tolerances.toml"


# --------------------------------------------------------------------------------------------
# tolerances
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerances:
    """Ordered ``(pattern, absolute tolerance)`` pairs; the first pattern that matches
    ``<notebook>:<key>`` (``fnmatch``, case-insensitive) applies."""

    rules: tuple[tuple[str, float], ...]
    source: str = "<tolerances>"

    def lookup(self, notebook: str, key: str) -> tuple[float, str]:
        """``(tolerance, pattern)`` for one key; a key no pattern matches is an error (every
        tolerance file ends with a catch-all)."""
        name = f"{notebook}:{key}".lower()
        for pattern, tol in self.rules:
            if fnmatch.fnmatchcase(name, pattern.lower()):
                return tol, pattern
        raise KeyError(f"{self.source}: no tolerance pattern matches {notebook}:{key} "
                       "(end the file with a catch-all \"*\" = 0.0)")

    def excluded(self, notebook: str, key: str) -> bool:
        return math.isinf(self.lookup(notebook, key)[0])


def load_tolerances(path: str | os.PathLike | None = None) -> Tolerances:
    """Read a tolerance file (TOML, a ``[tolerances]`` table of pattern = absolute tolerance)."""
    path = Path(path) if path is not None else default_tolerance_file()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no tolerance file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("tolerances")
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path}: needs a non-empty [tolerances] table of pattern = tolerance")
    rules = []
    for pattern, tol in table.items():
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or math.isnan(tol) or tol < 0:
            raise ValueError(f"{path}: the tolerance of {pattern!r} must be a number >= 0 or inf, "
                             f"not {tol!r}")
        rules.append((str(pattern), float(tol)))
    return Tolerances(tuple(rules), str(path))


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
def _flatten(obj: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(obj, Mapping):
        if not obj and prefix:
            out[prefix] = {}
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out[prefix] = []
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}.{i}", out)
    else:
        out[prefix] = obj


def measured_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's ``params``, ``headline`` and ``results`` as one flat ``{key: scalar}``."""
    out: dict[str, Any] = {}
    for section in SECTIONS:
        _flatten(record.get(section) or {}, section, out)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, float) else f"{v:.6g}"


def compare_values(notebook: str, values: Mapping[str, Any], reference: Mapping[str, Any],
                   tolerances: Tolerances) -> list[str]:
    """Every difference between ``values`` (a fresh run) and ``reference`` beyond tolerance, as
    one line each naming the notebook, the key, both values and the tolerance; keys present on
    one side only are reported too. Excluded keys (tolerance ``inf``) are skipped."""
    problems = []
    for key in reference:
        if tolerances.excluded(notebook, key):
            continue
        if key not in values:
            problems.append(f"{notebook}: {key} is missing from the record "
                            f"(reference {_fmt(reference[key])})")
            continue
        new, ref = values[key], reference[key]
        tol, pattern = tolerances.lookup(notebook, key)
        if isinstance(new, float) or isinstance(ref, float):
            if not (_is_number(new) and _is_number(ref)):
                problems.append(f"{notebook}: {key} = {_fmt(new)}, reference {_fmt(ref)} "
                                "(a number on one side only)")
            elif abs(new - ref) > tol + 1e-12:
                problems.append(f"{notebook}: {key} = {_fmt(new)}, reference {_fmt(ref)}, "
                                f"|difference| {abs(new - ref):.4g} > tolerance {tol:g} "
                                f"(pattern {pattern!r})")
        elif _is_number(new) and _is_number(ref) and abs(new - ref) <= tol:
            continue  # integers (counts): within their tolerance, 0 unless stated
        elif new != ref or type(new) is not type(ref):
            problems.append(f"{notebook}: {key} = {_fmt(new)}, reference {_fmt(ref)} "
                            f"(must be equal; tolerance {tol:g}, pattern {pattern!r})")
    for key in values:
        if key not in reference and not tolerances.excluded(notebook, key):
            problems.append(f"{notebook}: {key} = {_fmt(values[key])} is not in the reference "
                            "(a new number: update the references)")
    return problems


# --------------------------------------------------------------------------------------------
# reference files
# --------------------------------------------------------------------------------------------
def reference_of(record: Mapping[str, Any], tolerances: Tolerances) -> dict:
    """The reference-file content for one record (excluded keys left out)."""
    nb = record["notebook"]
    values = {k: v for k, v in measured_values(record).items() if not tolerances.excluded(nb, k)}
    return {"notebook": nb, "schema": REFERENCE_SCHEMA, "values": values}


def load_reference(path: str | os.PathLike) -> dict:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("values"), dict) \
            or "notebook" not in data:
        raise ValueError(f"{path} is not a notebook reference file (no 'notebook'/'values')")
    return data


def update_references(records: Iterable[Mapping[str, Any] | None], ref_dir: str | os.PathLike,
                      tolerances: Tolerances | None = None) -> list[Path]:
    """Write ``<ref_dir>/<notebook>.json`` for every record; returns the files written."""
    ref_dir = Path(ref_dir)
    ref_dir.mkdir(parents=True, exist_ok=True)
    tolerances = tolerances or load_tolerances(ref_dir / "tolerances.toml")
    written = []
    for rec in records:
        if not rec:
            continue
        path = ref_dir / f"{rec['notebook']}.json"
        path.write_text(json.dumps(reference_of(rec, tolerances), indent=1) + "\n")
        written.append(path)
    return written


def compare_record(record: Mapping[str, Any], ref_dir: str | os.PathLike | None = None,
                   tolerances: Tolerances | None = None) -> list[str]:
    """Compare one notebook record with its committed reference file."""
    ref_dir = Path(ref_dir) if ref_dir is not None else reference_dir()
    tolerances = tolerances or load_tolerances(ref_dir / "tolerances.toml")
    nb = record["notebook"]
    ref_path = ref_dir / f"{nb}.json"
    if not ref_path.is_file():
        return [f"{nb}: no reference file {ref_path.name} in {ref_dir} (update the references)"]
    return compare_values(nb, measured_values(record), load_reference(ref_path)["values"],
                          tolerances)


def compare_folder(records_dir: str | os.PathLike, ref_dir: str | os.PathLike | None = None,
                   tolerances: Tolerances | None = None,
                   notebooks: Sequence[str] | None = None) -> list[str]:
    """Compare every record of ``records_dir`` with the references; a reference whose record is
    missing is reported. ``notebooks`` restricts the check to those names."""
    records_dir = Path(records_dir)
    ref_dir = Path(ref_dir) if ref_dir is not None else reference_dir()
    tolerances = tolerances or load_tolerances(ref_dir / "tolerances.toml")
    refs = sorted(p.stem for p in ref_dir.glob("[0-9][0-9]_*.json"))
    if notebooks is not None:
        refs = [r for r in refs if r in notebooks]
    problems = []
    for nb in refs:
        path = records_dir / f"{nb}.json"
        if not path.is_file():
            problems.append(f"{nb}: no record {path.name} in {records_dir} (did the notebook run?)")
            continue
        problems += compare_record(load_record(path), ref_dir, tolerances)
    return problems
