"""How far the notebooks' recorded numbers move with the thread count and the BLAS kernels.

A one-off measurement (never run by the tests or CI) behind the tolerances of the notebooks'
regression check (``notebooks/reference/tolerances.toml``, docs/notebooks.md "Reproducibility").
It runs the whole notebook series once per setting, each into its own folder::

    python benchmarks/notebook_spread.py --root /tmp/spread run            # all settings
    python benchmarks/notebook_spread.py --root /tmp/spread run --settings threads1
    python benchmarks/notebook_spread.py --root /tmp/spread table          # the spread table
    python benchmarks/notebook_spread.py --root /tmp/spread check          # records vs references
    python benchmarks/notebook_spread.py --root /tmp/spread outputs        # what nbval would see

Settings (``SETTINGS``): the reference one (2 threads, the libraries' own kernel choice), 1 thread,
and two forced instruction sets: ``OPENBLAS_CORETYPE`` for numpy / scipy / scikit-learn (they use
OpenBLAS here), plus ``MKL_ENABLE_INSTRUCTIONS`` and ``ONEDNN_MAX_CPU_ISA`` for torch (built with
MKL and oneDNN, so ``OPENBLAS_CORETYPE`` alone would not reach it). Every run reads one feature
cache (``--cache-dir``, filled by the first run) unless ``--cold`` gives each setting an empty
one: a warm cache keeps the CNN features fixed, so the spread measured then is that of everything
after feature extraction (PCA, k-means, GMM, whitening, fine-tuning, evaluation).

``table`` writes ``spread.md`` / ``spread.json`` into the root: for every record key that moves,
the largest absolute difference to the reference setting. ``check`` compares every setting's
records with the committed references and tolerances (the same comparison as the regression
test) and prints each difference beyond tolerance. ``outputs`` applies nbval's sanitizer
(``notebooks/nbval_sanitize.cfg``) to the executed copies and prints the output lines that still
differ from the reference setting, and any output holding a machine path.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: name -> (threads, extra environment)
SETTINGS: dict[str, tuple[int, dict[str, str]]] = {
    "reference": (2, {}),
    "threads1": (1, {}),
    "haswell": (2, {"OPENBLAS_CORETYPE": "Haswell", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                    "ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "sandybridge": (2, {"OPENBLAS_CORETYPE": "Sandybridge", "MKL_ENABLE_INSTRUCTIONS": "AVX",
                        "ONEDNN_MAX_CPU_ISA": "AVX"}),
}
BASELINE = "reference"


def snapshot(root: Path) -> Path:
    """A copy of ``notebooks/NN_*.ipynb`` taken at the first run, so that every setting runs the
    same notebooks even while they are being edited."""
    import shutil

    snap = root / "notebooks_snapshot"
    if not snap.is_dir():
        snap.mkdir(parents=True)
        for nb in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            shutil.copy2(nb, snap / nb.name)
    return snap


def run(root: Path, names, cache_dir: Path | None, cold: bool, only=None) -> int:
    rc = 0
    snap = snapshot(root)
    for name in names:
        threads, extra = SETTINGS[name]
        out = root / name
        cache = root / f"cache_{name}" if cold else (cache_dir or root / "cache")
        env = {**os.environ, **extra}
        for k in ("OPENBLAS_CORETYPE", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA"):
            if k not in extra:
                env.pop(k, None)
        cmd = ["nice", "-n", "5", sys.executable, "-m", "selconv_lite.teaching.series",
               "--out", str(out), "--cache-dir", str(cache), "--threads", str(threads),
               "--notebooks", str(snap)] + (["--only", *only] if only else [])
        print(f"[spread] {name}: {threads} thread(s), {extra or 'default kernels'}, cache {cache}",
              flush=True)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, cwd=REPO)
        print(f"[spread] {name}: exit {r.returncode} after {time.perf_counter() - t0:.0f} s",
              flush=True)
        (out / "setting.json").write_text(json.dumps(
            {"name": name, "threads": threads, "env": extra, "cache": str(cache), "cold": cold,
             "only": only,
             "exit": r.returncode, "seconds": round(time.perf_counter() - t0, 1)}, indent=1) + "\n")
        rc = rc or r.returncode
    return rc


def _records(folder: Path) -> dict[str, dict]:
    from selconv_lite.teaching.notebook_utils import load_record

    return {p.stem: load_record(p) for p in sorted(folder.glob("[0-9][0-9]_*.json"))}


def table(root: Path) -> str:
    from selconv_lite.teaching.regression import measured_values

    names = [n for n in SETTINGS if (root / n).is_dir()]
    if BASELINE not in names:
        raise SystemExit(f"[spread] no {root / BASELINE}: run the reference setting first")
    base = {nb: measured_values(rec) for nb, rec in _records(root / BASELINE).items()}
    others = [n for n in names if n != BASELINE]
    rows, data = [], {}
    for nb, values in base.items():
        for key, v0 in values.items():
            deltas = {}
            for n in others:
                rec = _records(root / n).get(nb)
                if rec is None:  # this setting did not run the notebook
                    continue
                v = measured_values(rec).get(key, "missing")
                if isinstance(v0, (int, float)) and isinstance(v, (int, float)) \
                        and not isinstance(v0, bool):
                    deltas[n] = abs(float(v) - float(v0))
                else:
                    deltas[n] = 0.0 if v == v0 else math.inf
            if any(d > 0 for d in deltas.values()):
                rows.append((nb, key, v0, deltas))
                data[f"{nb}:{key}"] = {"reference": v0, **deltas}
    lines = [f"Largest |difference| to the `{BASELINE}` setting, per record key that moves "
             f"({len(rows)} of {sum(len(v) for v in base.values())} keys).", "",
             "| notebook | key | reference | " + " | ".join(others) + " |",
             "|---|---|---|" + "---|" * len(others)]
    for nb, key, v0, deltas in rows:
        cells = [("not run" if n not in deltas else "differs" if math.isinf(deltas[n])
                  else f"{deltas[n]:.4g}") for n in others]
        lines.append(f"| {nb} | `{key}` | {v0} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (root / "spread.md").write_text(text)
    (root / "spread.json").write_text(json.dumps(data, indent=1) + "\n")
    return text


def _output_lines(nb_path: Path) -> list[tuple[int, str]]:
    """(cell index, line) of every text output of a notebook, skipping nbval-ignored cells."""
    nb = json.loads(nb_path.read_text())
    lines = []
    for i, cell in enumerate(nb["cells"]):
        if "nbval-ignore-output" in cell.get("metadata", {}).get("tags", []):
            continue
        for o in cell.get("outputs", []):
            text = o.get("text") or o.get("data", {}).get("text/plain") or ""
            text = "".join(text) if isinstance(text, list) else text
            lines += [(i, ln) for ln in text.splitlines()]
    return lines


def outputs(root: Path) -> int:
    """nbval's view of the executed copies: after notebooks/nbval_sanitize.cfg, which output
    lines still differ from the reference setting, and which outputs hold the root's path."""
    import re

    from nbval.plugin import get_sanitize_patterns

    rules = [(re.compile(rx), rep) for rx, rep in
             get_sanitize_patterns((REPO / "notebooks" / "nbval_sanitize.cfg").read_text())]

    def clean(text):
        for rx, rep in rules:
            text = rx.sub(rep, text)
        return text

    bad = 0
    for name in SETTINGS:
        folder = root / name / "notebooks"
        if not folder.is_dir():
            continue
        for nb in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
            mine = _output_lines(nb)
            leaks = [(i, ln) for i, ln in mine if str(root) in ln or str(Path.home()) + "/" in ln]
            for i, ln in leaks:
                print(f"[spread] {name} {nb.name} cell {i}: machine path in output: {ln[:160]}")
            bad += len(leaks)
            if name == BASELINE:
                continue
            base = _output_lines(root / BASELINE / "notebooks" / nb.name)
            diff = [(a, b) for a, b in zip(base, mine) if clean(a[1]) != clean(b[1])]
            if len(base) != len(mine):
                print(f"[spread] {name} {nb.name}: {len(mine)} output lines, reference {len(base)}")
                bad += 1
            for (i, a), (_, b) in diff:
                print(f"[spread] {name} {nb.name} cell {i}:\n    reference: {a[:150]}\n    {name}: {b[:150]}")
            bad += len(diff)
    print(f"[spread] {bad} output difference(s) left after sanitising")
    return 1 if bad else 0


def check(root: Path, own_references: bool = False) -> int:
    """Every setting's records against the committed references, or (``own_references``)
    against references made from this experiment's reference setting with the committed
    tolerances -- the right comparison when the notebooks changed since the references."""
    import shutil

    from selconv_lite.teaching.regression import compare_folder, update_references

    ref_dir = REPO / "notebooks" / "reference"
    if own_references:
        own = root / "references"
        shutil.rmtree(own, ignore_errors=True)
        own.mkdir()
        shutil.copy(ref_dir / "tolerances.toml", own / "tolerances.toml")
        update_references(_records(root / BASELINE).values(), own)
        ref_dir = own
    bad = 0
    for name in SETTINGS:
        if not (root / name).is_dir():
            continue
        ran = [p.stem for p in (root / name).glob("[0-9][0-9]_*.json")]
        problems = compare_folder(root / name, ref_dir, notebooks=ran)
        print(f"[spread] {name}: {len(problems)} difference(s) beyond tolerance")
        for p in problems:
            print(f"    {p}")
        bad += len(problems)
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("outputs/spread"),
                    help="folder of the runs (one subfolder per setting)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the series once per setting")
    r.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    r.add_argument("--cache-dir", type=Path, default=None,
                   help="the feature cache every setting reads (default: ROOT/cache)")
    r.add_argument("--cold", action="store_true", help="an empty feature cache per setting")
    r.add_argument("--only", nargs="+", default=None, metavar="PREFIX",
                   help="run only these notebooks (e.g. 03 04 05)")
    sub.add_parser("table", help="write ROOT/spread.md: which keys move and by how much")
    c = sub.add_parser("check", help="compare every setting's records with notebooks/reference")
    c.add_argument("--own-references", action="store_true",
                   help="references from the reference setting's records (committed tolerances)")
    sub.add_parser("outputs", help="output lines nbval would still see differ, machine paths")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if args.cmd == "run":
        return run(root, args.settings, args.cache_dir, args.cold, args.only)
    if args.cmd == "table":
        print(table(root))
        return 0
    if args.cmd == "outputs":
        return outputs(root)
    return check(root, args.own_references)


if __name__ == "__main__":
    sys.exit(main())
