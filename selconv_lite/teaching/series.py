"""Run the tutorial notebook series headless and write a one-page summary.

This is the README's main job::

    python -m selconv_lite.teaching.series --out outputs/

It executes every ``notebooks/NN_*.ipynb`` in order with papermill on the notebooks' embedded
defaults (the offline default dataset of the paper reproduction, Hoang et al., ACM MM 2017),
headless (``SELCONV_HEADLESS=1``: widget explorers fall back to static figures) and offline. Into
the output folder it writes

* ``notebooks/NN_*.ipynb`` -- the executed copies;
* ``NN_*.json`` and ``figures/`` -- each notebook's key numbers and figures
  (:class:`selconv_lite.teaching.notebook_utils.NotebookRecord`);
* ``series.json`` -- status and wall time of every notebook plus all their records;
* ``summary.md`` -- one page with the headline numbers and figures of every notebook;
* ``index.html`` -- the landing page (:mod:`selconv_lite.teaching.landing`): the numbers with the
  paper's values and a reading, links to the tutorial notebooks and the executed copies, the
  series' cold/warm wall time (``timings.json``) and what to do next.

Every kernel computes with the same fixed number of threads (``--threads``, default env
``SELCONV_THREADS`` or 2: torch, OpenMP and the BLAS libraries, see
:func:`selconv_lite.teaching.notebook_utils.thread_environment`), talks to papermill over IPC
rather than TCP, and the series prints its progress and total time.

The embedded set's default size is the paper's (every image fed at ``max(W_I, H_I) = 1024``,
Sec. 5.1; about 30 minutes on 2 idle CPU cores from an empty feature cache, see
``docs/notebooks.md``). Another size is one option, passed to every notebook as its ``max_dim``
parameter, e.g. the smaller maps of 512 px, where the MAX mask keeps most cells::

    python -m selconv_lite.teaching.series --out outputs/max512 --max-dim 512

Re-executing the committed notebooks (after a change of the method or of a notebook) is::

    python -m selconv_lite.teaching.series --in-place --update-references

which executes ``notebooks/NN_*.ipynb`` in place (``notebooks/`` as the working folder, execution
timestamps stripped so that only outputs change), writes the records into ``--out`` and rewrites
the regression references ``notebooks/reference/NN_*.json`` from them
(:mod:`selconv_lite.teaching.regression`). ``scripts/execute_notebooks.sh`` wraps it.

A failing notebook is reported (with the path of its executed copy, which holds the traceback)
and the series goes on; the exit status is 1 if any notebook failed, 2 on a usage error (no
notebook folder, an output folder that cannot be written).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .landing import write_landing
from ..core.files import find_repo_root
from .notebook_utils import HEADLESS_ENV, OUTPUT_ENV, load_record, thread_environment

__all__ = ["NOTEBOOK_PATTERN", "OutputDirError", "check_output_dir", "default_notebooks_dir",
           "list_notebooks", "patched_environ", "RunResult", "kernel_config", "strip_execution_metadata",
           "execute", "feature_cache_is_empty", "feature_cache_entries", "render_summary", "run_series",
           "check_max_dim", "main"]

NOTEBOOK_PATTERN = re.compile(r"^\d\d_[A-Za-z0-9_\-]+\.ipynb$")


class OutputDirError(OSError):
    """The output folder cannot be created or written (a usage error: exit status 2)."""


def check_output_dir(out: Path) -> Path:
    """Create ``out`` and make sure a file can be written there; :class:`OutputDirError` otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise OutputDirError(f"cannot write to the output folder {out} ({e.strerror or e}); "
                             "choose another --out") from None
    return out


def default_notebooks_dir() -> Path:
    """``<repo>/notebooks`` of the checkout (or of the current folder)."""
    root = find_repo_root()
    if root is None or not (root / "notebooks").is_dir():
        raise FileNotFoundError(
            "cannot find the notebooks/ folder: run from inside the selconv_lite checkout or pass "
            "--notebooks DIR")
    return root / "notebooks"


def list_notebooks(folder: str | os.PathLike, only: Sequence[str] | None = None) -> list[Path]:
    """The ``NN_*.ipynb`` notebooks of ``folder`` in order; ``only`` keeps those whose name starts
    with one of the given prefixes (e.g. ``["01", "02_masks"]``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebook folder {folder}")
    nbs = sorted(p for p in folder.iterdir() if NOTEBOOK_PATTERN.match(p.name))
    if only:
        nbs = [p for p in nbs if any(p.stem.startswith(o.removesuffix(".ipynb")) for o in only)]
        if not nbs:
            raise FileNotFoundError(f"no notebook in {folder} matches {list(only)}")
    if not nbs:
        raise FileNotFoundError(f"no NN_*.ipynb notebook in {folder}")
    return nbs


@contextmanager
def patched_environ(values: Mapping[str, str | None]):
    """Temporarily set (value) or unset (None) environment variables; kernels started inside
    inherit them."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class RunResult:
    """Outcome of executing one notebook with papermill."""

    name: str
    status: str  # "ok" or "failed"
    seconds: float
    executed: str  # path of the executed copy
    error: str = ""
    record: dict | None = field(default=None)


def kernel_config(socket_dir: str | os.PathLike):
    """traitlets configuration of the kernels papermill starts: IPC transport (local sockets
    ``<socket_dir>/kernel-ipc-N``, a private temporary folder) instead of TCP on localhost -- no
    open port, and no "Kernel is running over TCP without encryption" warning on every start."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc",
                                     "ip": str(Path(socket_dir) / "kernel-ipc")}})


def strip_execution_metadata(path: str | os.PathLike) -> None:
    """Remove what papermill adds besides outputs -- per-cell timestamps and durations, the
    notebook's ``papermill`` block (it holds machine paths), the widget state of the progress bars
    (``metadata.widgets``, see :mod:`selconv_lite.teaching.nbcheck`) -- so that a re-executed
    committed notebook differs from its previous version only where its outputs changed."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, str(path))


def _short_error(exc: BaseException) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    msg = f"{ename}: {evalue}".strip()
    return msg.splitlines()[0][:300] if msg else type(exc).__name__


def execute(notebook: Path, executed: Path, output_dir: Path, parameters: Mapping[str, Any] | None = None,
            cache_dir: str | os.PathLike | None = None, kernel_name: str | None = None,
            timeout: float | None = None, cwd: str | os.PathLike | None = None,
            record_name: str | None = None, threads: int | None = None) -> RunResult:
    """Execute ``notebook`` into ``executed`` with papermill, headless, with ``threads`` threads
    (``None``: env ``SELCONV_THREADS`` or 2), writing its JSON record into ``output_dir`` (via
    ``SELCONV_OUTPUT``); never raises on a notebook error. ``executed`` may be ``notebook``
    itself (in place)."""
    import papermill as pm

    from ..features.cache import CACHE_ENV

    executed.parent.mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    env = {HEADLESS_ENV: "1", OUTPUT_ENV: str(output_dir),
           # silences debugpy's "frozen modules" warning on the kernels' stderr
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", **thread_environment(threads)}
    if cache_dir is not None:
        env[CACHE_ENV] = str(Path(cache_dir).resolve())
    record_path = output_dir / f"{record_name or notebook.stem}.json"
    if record_path.exists():
        record_path.unlink()  # never report a stale record
    t0 = time.perf_counter()
    status, error = "ok", ""
    try:
        with patched_environ(env), tempfile.TemporaryDirectory(prefix="selconv-kernel-") as sockets:
            pm.execute_notebook(
                str(notebook), str(executed), parameters=dict(parameters or {}),
                kernel_name=kernel_name, progress_bar=False, log_output=False,
                request_save_on_cell_execute=False, cwd=str(cwd or notebook.parent),
                execution_timeout=timeout, config=kernel_config(sockets))
    except Exception as exc:  # papermill raises PapermillExecutionError, kernels may die, ...
        status, error = "failed", _short_error(exc)
    seconds = time.perf_counter() - t0
    record = None
    if record_path.exists():
        try:
            record = load_record(record_path)
        except ValueError as exc:
            status, error = "failed", f"bad JSON record: {exc}"
    elif status == "ok":
        status, error = "failed", f"the notebook wrote no {record_path.name} (NotebookRecord.save())"
    return RunResult(notebook.stem, status, round(seconds, 1), str(executed), error, record)


# --------------------------------------------------------------------------------------------
# summary page
# --------------------------------------------------------------------------------------------
def feature_cache_is_empty(cache_dir: str | os.PathLike | None = None) -> bool:
    """True if the feature cache (``cache_dir`` or the cache module's default) holds no entry:
    a run starting from it is *cold* (every feature extracted), otherwise *warm*."""
    from ..features.cache import default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return next(root.glob(_CACHE_ENTRIES), None) is None


_CACHE_ENTRIES = "features-v*/*/*/*/*.npz"


def feature_cache_entries(cache_dir: str | os.PathLike | None = None) -> int:
    """Number of entries in the feature cache (``cache_dir`` or the cache module's default)."""
    from ..features.cache import default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return sum(1 for _ in root.glob(_CACHE_ENTRIES))


def _md_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def render_summary(results: Sequence[RunResult], out: Path, max_figures: int = 3,
                   title: str = "selconv_lite notebook series") -> str:
    """The one-page markdown summary: a status table, then per notebook its headline numbers and
    up to ``max_figures`` of its figures (paths relative to ``out``)."""
    lines = [f"# {title}", "",
             "Hoang et al., *Selective Deep Convolutional Features for Image Retrieval*, ACM MM 2017 "
             "-- reproduced by the selconv_lite notebooks on their default (embedded, offline) data.",
             "", "| notebook | status | time (s) |", "|---|---|---|"]
    for r in results:
        rel = Path(r.executed).resolve()
        try:
            rel = rel.relative_to(out.resolve())
        except ValueError:
            pass
        status = r.status if r.status == "ok" else f"**{r.status}**: {r.error}"
        lines.append(f"| [{r.name}]({Path(rel).as_posix()}) | {status} | {r.seconds:.1f} |")
    total = sum(r.seconds for r in results)
    lines += ["", f"Total: {total:.0f} s.", ""]
    for r in results:
        lines += [f"## {r.name}", ""]
        rec = r.record or {}
        head = rec.get("headline") or {}
        if head:
            lines += ["| quantity | value |", "|---|---|"]
            lines += [f"| {_md_cell(k)} | {_md_cell(_md_value(v))} |" for k, v in head.items()]
            lines.append("")
        elif r.status != "ok":
            lines += [f"Failed: `{r.error}` (see the executed copy).", ""]
        figs = list((rec.get("figures") or {}).items())[:max_figures]
        if figs:
            lines.append(" ".join(f"![{k}]({v})" for k, v in figs))
            lines.append("")
    return "\n".join(lines)


def run_series(out: str | os.PathLike = "outputs", notebooks_dir: str | os.PathLike | None = None,
               only: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None,
               kernel_name: str | None = None, timeout: float | None = None,
               echo=None, threads: int | None = None, in_place: bool = False,
               max_dim: int | None = None) -> list[RunResult]:
    """Execute the series; write executed copies, ``series.json`` and ``summary.md`` into ``out``.

    ``max_dim`` (``None``: each notebook's own default, the dataset's size) is passed to every
    notebook as its ``max_dim`` parameter, e.g. 1024 for the paper's image size. It cannot be
    combined with ``in_place``: the committed notebooks keep their defaults.

    ``in_place`` executes the notebooks into themselves (their execution metadata stripped, see
    :func:`strip_execution_metadata`) instead of into ``out/notebooks``; a notebook that fails is
    left as it was (its executed copy with the traceback goes to ``out/notebooks``).
    """
    from .settings import SERIES_MAX_DIM_ENV

    echo = echo or (lambda msg: print(msg, flush=True))
    max_dim = check_max_dim(max_dim)
    if max_dim is not None and in_place:
        raise ValueError(f"max_dim={max_dim} with in_place: the committed notebooks are executed with "
                         "their own defaults only; run the other size into an output folder")
    out = Path(out).resolve()
    check_output_dir(out)  # fail before running anything when the results could not be saved
    nbs = list_notebooks(notebooks_dir or default_notebooks_dir(), only)
    n_threads = thread_environment(threads)["SELCONV_THREADS"]
    echo(f"[series] {len(nbs)} notebook(s), {n_threads} thread(s) per kernel"
         + (", executed in place" if in_place else "")
         + (f", max_dim {max_dim} in every notebook" if max_dim is not None else "")
         + f"; records into {out}")
    entries_before = feature_cache_entries(cache_dir)
    results: list[RunResult] = []
    t_start = time.perf_counter()
    for i, nb in enumerate(nbs, 1):
        echo(f"[series] ({i}/{len(nbs)}) {nb.name} ...")
        target = out / "notebooks" / nb.name
        with patched_environ({SERIES_MAX_DIM_ENV: None if max_dim is None else str(max_dim)}):
            r = execute(nb, target, out, cache_dir=cache_dir, kernel_name=kernel_name,
                        timeout=timeout, threads=threads,
                        parameters=None if max_dim is None else {"max_dim": max_dim})
        if in_place and r.status == "ok":
            strip_execution_metadata(target)
            nb.write_bytes(target.read_bytes())
            target.unlink()
            r.executed = str(nb)
        results.append(r)
        msg = (f"[series]     {r.status} in {r.seconds:.1f} s "
               f"({time.perf_counter() - t_start:.0f} s so far)")
        if r.status != "ok":
            msg += f" -- {r.error} (traceback in {r.executed})"
        echo(msg)
    (out / "series.json").write_text(json.dumps(
        {"notebooks": [asdict(r) for r in results], "max_dim": max_dim,
         "total_seconds": round(sum(r.seconds for r in results), 1)}, indent=1) + "\n")
    (out / "summary.md").write_text(render_summary(results, out) + "\n")
    if not in_place:
        nb_dir = Path(notebooks_dir or default_notebooks_dir())
        write_landing(results, out, nb_dir.parent,
                      cache_entries=(entries_before, feature_cache_entries(cache_dir)),
                      whole_series=only is None, notebooks_dir=nb_dir, max_dim=max_dim)
    return results


def check_max_dim(max_dim) -> int | None:
    """``None`` or a positive int (the long side, in pixels, of every image fed to the network)."""
    if max_dim is None:
        return None
    try:
        value = int(max_dim)
    except (TypeError, ValueError):
        raise ValueError(f"max_dim must be a positive integer (pixels), got {max_dim!r}") from None
    fractional = not isinstance(max_dim, str) and value != max_dim   # e.g. 1024.5
    if fractional or isinstance(max_dim, bool) or value < 32:
        raise ValueError(f"max_dim must be an integer of at least 32 pixels (pool5 has a stride of "
                         f"32), got {max_dim!r}")
    return value


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m selconv_lite.teaching.series",
        description="Run notebooks/NN_*.ipynb in order with papermill (headless, offline, embedded "
                    "defaults) and write executed copies, JSON results and summary.md.")
    ap.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    ap.add_argument("--notebooks", default=None, help="folder of NN_*.ipynb (default: <repo>/notebooks)")
    ap.add_argument("--only", nargs="+", default=None, metavar="PREFIX",
                    help="run only notebooks whose name starts with one of these (e.g. 01 02_masks)")
    ap.add_argument("--cache-dir", default=None,
                    help="feature cache folder (default: the cache module's default, shared)")
    ap.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebooks')")
    ap.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads per kernel for torch, OpenMP and BLAS (default: env "
                         "SELCONV_THREADS or 2; the committed outputs use 2)")
    ap.add_argument("--max-dim", type=int, default=None, metavar="PX",
                    help="max(W_I, H_I) of every image in every notebook, e.g. 512 (smaller maps, "
                         "faster); default: each notebook's own (the dataset's size; the embedded "
                         "set's is the paper's 1024, about 30 min on 2 idle CPU cores from an empty cache)")
    ap.add_argument("--in-place", action="store_true",
                    help="execute the notebooks into themselves (re-executing the committed "
                         "outputs) instead of into OUT/notebooks")
    ap.add_argument("--update-references", action="store_true",
                    help="after a run where every notebook succeeded, rewrite the regression "
                         "references notebooks/reference/NN_*.json from the new records")
    args = ap.parse_args(list(argv) if argv is not None else None)
    t0 = time.perf_counter()
    try:
        results = run_series(args.out, args.notebooks, args.only, args.cache_dir, args.kernel,
                             args.timeout, threads=args.threads, in_place=args.in_place,
                             max_dim=args.max_dim)
    except (FileNotFoundError, ValueError, OutputDirError) as exc:
        print(f"[series] error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    failed = [r for r in results if r.status != "ok"]
    print(f"[series] {len(results) - len(failed)}/{len(results)} notebooks ok, "
          f"{sum(r.seconds for r in results):.0f} s in all")
    print(f"[series] executed notebooks: "
          f"{Path(args.notebooks or default_notebooks_dir()) if args.in_place else out / 'notebooks'}"
          + (" (in place)" if args.in_place else ""))
    print(f"[series] results (JSON):     {out}/NN_*.json, {out / 'series.json'}")
    print(f"[series] summary:            {out / 'summary.md'}")
    if args.update_references:
        if failed:
            print("[series] references NOT updated: a notebook failed", file=sys.stderr)
        else:
            from .regression import update_references

            ref_dir = Path(args.notebooks or default_notebooks_dir()) / "reference"
            written = update_references([r.record for r in results], ref_dir)
            print(f"[series] references:         {len(written)} file(s) rewritten in {ref_dir}")
    print(f"[series] total time {time.perf_counter() - t0:.0f} s")
    if not args.in_place:
        print(f"[series] landing page:       {out / 'index.html'} (open it in a browser)")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
