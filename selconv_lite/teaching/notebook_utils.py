"""Helpers shared by the tutorial notebooks (``notebooks/NN_*.ipynb``).

The notebooks teach the paper (Hoang et al., "Selective Deep Convolutional Features for Image
Retrieval", ACM MM 2017) section by section; all of the paper's math lives in the method modules.
This module only holds the plumbing every notebook needs, so that the notebooks stay short and
their outputs are stable enough for ``nbval``:

* :func:`resolve_cache_dir` / :func:`resolve_output_dir` -- turn the ``cache_dir`` /
  ``output_dir`` notebook parameters (``None`` = the defaults) into folders;
* :class:`NotebookRecord` -- collect a notebook's key numbers (its *headline*), its parameters
  and its saved figures, and write them to ``<output_dir>/<notebook>.json``; the series runner
  (:mod:`selconv_lite.teaching.series`) and the sweep runner (:mod:`selconv_lite.teaching.sweep`) read that file;
* :func:`rounded` / :func:`fmt` -- round numbers so that printed outputs do not depend on the last
  bits of floating point arithmetic;
* :func:`display_path` -- print paths relative to the repository (never absolute machine paths);
* :func:`has_widget_frontend` -- whether an interactive ipywidgets front end can be assumed
  (``False`` under papermill / nbval, which set ``SELCONV_HEADLESS=1``);
* :func:`seed_everything` -- fix the seeds of numpy, random and torch and torch's threads
  (:func:`thread_environment` gives the variables the runners set);
* :func:`show_figure` -- display a matplotlib figure as a PNG (any backend, inside widgets too).

JSON schema written by :class:`NotebookRecord` (version 1)::

    {"notebook": "02_masks", "schema": 1,
     "params":   {...the notebook's parameters...},
     "headline": {"label": number, ...},      # the numbers shown on the summary page
     "figures":  {"fig2a": "figures/02_masks_fig2a.png", ...},   # relative to output_dir
     "results":  {...anything else, nested dicts/lists of numbers and strings...}}
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.files import find_repo_root, repo_root

__all__ = ["HEADLESS_ENV", "OUTPUT_ENV", "SCHEMA_VERSION", "resolve_cache_dir", "resolve_output_dir",
           "display_path", "rounded", "fmt", "THREADS_ENV", "DEFAULT_THREADS", "THREAD_VARIABLES",
           "thread_environment", "seed_everything", "tidy_warnings", "timed", "figure_png", "show_figure",
           "has_widget_frontend", "use_widgets", "NotebookRecord", "series_features", "dataset_features",
           "pick_images", "load_record", "flatten"]

#: Environment variable that, when set to a non-empty value other than "0", tells the notebooks
#: that no widget front end is attached (set by the series and sweep runners and by the nbval
#: conftest), so interactive explorers fall back to static figures.
HEADLESS_ENV = "SELCONV_HEADLESS"
#: Environment variable overriding the default output folder of the notebooks.
OUTPUT_ENV = "SELCONV_OUTPUT"

SCHEMA_VERSION = 1


# --------------------------------------------------------------------------------------------
# folders and paths
# --------------------------------------------------------------------------------------------
def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The feature-cache folder for a notebook's ``cache_dir`` parameter.

    ``None`` means :func:`selconv_lite.features.cache.default_cache_dir` (env ``SELCONV_CACHE`` or
    ``<repo or cwd>/cache``), so that all notebooks share one cache and only the first one pays for
    the CNN forward passes. A relative path is taken relative to the repository root (or the
    current folder outside it).
    """
    if cache_dir is None:
        from ..features.cache import default_cache_dir

        return Path(default_cache_dir()).resolve()
    p = Path(cache_dir).expanduser()
    return p if p.is_absolute() else (repo_root() / p).resolve()


def resolve_output_dir(output_dir: str | os.PathLike | None = None, create: bool = True) -> Path:
    """The folder a notebook writes its JSON and figures to.

    ``None`` means env ``SELCONV_OUTPUT`` or ``<repo or cwd>/outputs``. A relative path is taken
    relative to the repository root (or the current folder outside a checkout).
    """
    if output_dir is None:
        env = os.environ.get(OUTPUT_ENV)
        p = Path(env) if env else repo_root() / "outputs"
    else:
        p = Path(output_dir).expanduser()
        if not p.is_absolute():
            p = repo_root() / p
    p = p.resolve()
    if create:
        p.mkdir(parents=True, exist_ok=True)
    return p


def _known_roots() -> list[tuple[Path, str]]:
    """The folders whose location varies between machines, each with the fixed label that
    :func:`display_path` prints instead (the folder's default place in the repository)."""
    roots: list[tuple[Path, str]] = []
    try:
        from ..data.loaders import default_data_root, default_dataset_dir
        roots += [(default_dataset_dir(), "data/default"), (default_data_root(), "datasets")]
    except ImportError:  # pragma: no cover - part of the package
        pass
    roots += [(resolve_cache_dir(None), "cache"), (resolve_output_dir(None, create=False), "outputs")]
    out = []
    for folder, label in roots:
        try:  # both spellings: as configured and with symbolic links resolved
            for f in dict.fromkeys((Path(folder).expanduser().absolute(), Path(folder).expanduser().resolve())):
                out.append((f, label))
        except OSError:  # pragma: no cover - unreadable location
            continue
    # the deepest folder first: the default dataset may live inside the cache or the repository
    return sorted(out, key=lambda fl: len(fl[0].parts), reverse=True)


def display_path(path: str | os.PathLike) -> str:
    """``path`` as a short, machine-independent string for printing in notebook outputs.

    A file of the default dataset prints as ``data/default/<name>``, of a downloaded benchmark
    as ``datasets/<name>``, of the feature cache as ``cache/<name>`` and of the output folder as
    ``outputs/<name>`` -- wherever those folders really are (env ``SELCONV_DEFAULT_DATA``,
    ``SELCONV_DATA``, ``SELCONV_CACHE``, ``SELCONV_OUTPUT``). Other paths print relative to the
    repository root when inside it, else relative to the current folder, else as
    ``<...>/name``: never an absolute machine path.
    """
    p = Path(path).expanduser().resolve()
    for root, label in _known_roots():
        try:
            rel = p.relative_to(root).as_posix()
        except ValueError:
            continue
        return label if rel in ("", ".") else f"{label}/{rel}"
    for base in (find_repo_root(), Path(os.getcwd()).resolve()):
        if base is None:
            continue
        try:
            return p.relative_to(base).as_posix() or "."
        except ValueError:
            continue
    return f"<...>/{p.name}"


# --------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------
def rounded(obj: Any, ndigits: int = 4) -> Any:
    """A JSON-ready copy of ``obj`` with every float rounded to ``ndigits`` decimals.

    Handles nested dicts / lists / tuples, numpy scalars and arrays (converted to lists),
    ``Path`` (converted with :func:`display_path`); NaN and infinities become ``None`` so the JSON
    stays standard. Integers and strings are kept as they are.
    """
    if isinstance(obj, Mapping):
        return {str(k): rounded(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, ndigits) for v in obj]
    if isinstance(obj, np.ndarray):
        return rounded(obj.tolist(), ndigits)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if not math.isfinite(x):
            return None
        r = round(x, ndigits)
        return 0.0 if r == 0 else r  # no "-0.0"
    if isinstance(obj, os.PathLike):
        return display_path(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in the notebook's JSON results")


def fmt(x: float, ndigits: int = 3) -> str:
    """``x`` rounded and formatted with a fixed number of decimals (stable printing)."""
    r = rounded(x, ndigits)
    return "nan" if r is None else f"{r:.{ndigits}f}"


#: Environment variable holding the number of threads the notebooks compute with. The series,
#: sweep and nbval runners set it (with OpenMP's and the BLAS libraries' own variables, see
#: :func:`thread_environment`) before a kernel starts; :func:`seed_everything` applies it to torch.
THREADS_ENV = "SELCONV_THREADS"
#: The thread count every runner fixes: the reference machine has 2 cores, and a fixed count
#: (rather than "all cores") keeps the order of floating-point reductions the same everywhere.
DEFAULT_THREADS = 2
#: Thread variables read by OpenMP (torch's CPU kernels), MKL, OpenBLAS (numpy / scipy) and numexpr
#: when a process starts; they must be set before the kernel imports numpy or torch.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def thread_environment(threads: int | str | None = None) -> dict[str, str]:
    """Environment variables that fix the thread count of a notebook kernel about to start.

    ``threads`` ``None`` means env ``SELCONV_THREADS`` or :data:`DEFAULT_THREADS`. Returns
    ``{"SELCONV_THREADS": n, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, ...}`` for
    :func:`selconv_lite.teaching.series.patched_environ` or ``os.environ.update``.
    """
    if threads is None:
        threads = os.environ.get(THREADS_ENV) or DEFAULT_THREADS
    try:
        n = int(threads)
    except (TypeError, ValueError):
        raise ValueError(f"{THREADS_ENV} / threads must be a positive integer, not {threads!r}") from None
    if n < 1:
        raise ValueError(f"{THREADS_ENV} / threads must be a positive integer, not {threads!r}")
    return {THREADS_ENV: str(n), **{k: str(n) for k in THREAD_VARIABLES}}


def seed_everything(seed: int = 0) -> str:
    """Make a notebook's run repeatable; returns a one-line description for its header.

    Seeds ``random``, ``numpy`` and ``torch``; sets torch's intra-op thread count from env
    ``SELCONV_THREADS`` (else ``OMP_NUM_THREADS``; unset: torch's default is kept and reported), and
    asks torch for deterministic algorithms (``torch.use_deterministic_algorithms(True,
    warn_only=True)``: an operation without a deterministic version warns instead of failing).
    Floating-point results may still differ in the last bits between CPUs (BLAS kernels), which
    the notebooks' regression checks tolerate (docs/notebooks.md, "Reproducibility").
    """
    random.seed(seed)
    np.random.seed(seed)
    parts = [f"seed {seed}"]
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of the package
        return parts[0]
    torch.manual_seed(seed)
    env = os.environ.get(THREADS_ENV) or os.environ.get("OMP_NUM_THREADS")
    if env:
        n = int(thread_environment(env)[THREADS_ENV])
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    parts.append(f"{torch.get_num_threads()} threads" + ("" if env else " (not fixed)"))
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
        parts.append("deterministic torch algorithms")
    except (AttributeError, TypeError):  # pragma: no cover - very old torch
        pass
    return "; ".join(parts)


def tidy_warnings() -> None:
    """Print warnings as ``Category: message`` with machine paths replaced (the dataset, cache
    and output folders by their labels, see :func:`display_path`; the repository path stripped), instead of
    Python's ``/abs/path/file.py:LINE: Category: message`` -- so that notebook outputs hold no
    machine paths and do not change when a line number moves."""
    import sys
    import warnings

    root = str(find_repo_root() or os.getcwd()) + os.sep
    # absolute folders that vary between machines -> their fixed labels (see display_path)
    labels = [(str(folder) + os.sep, label + "/") for folder, label in _known_roots()]

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        for folder, label in labels:
            text = text.replace(folder, label)
        print(f"{category.__name__}: {text.replace(root, '')}", file=file or sys.stderr)

    warnings.showwarning = show


@contextmanager
def timed(label: str = "elapsed", printer=print):
    """Context manager that prints how long its block took. Tag such cells
    ``nbval-ignore-output`` -- timings vary from run to run."""
    t0 = time.perf_counter()
    yield
    printer(f"{label}: {time.perf_counter() - t0:.1f} s")


def figure_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure rendered to PNG bytes (no timestamp metadata, so deterministic)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def show_figure(fig, dpi: int = 100) -> None:
    """Display a figure as a PNG in the notebook, whatever the matplotlib backend (works for
    :class:`matplotlib.figure.Figure` objects made without pyplot, and inside ipywidgets
    ``Output``). 100 dpi: readable labels while the committed notebooks stay small."""
    from IPython.display import Image, display

    display(Image(data=figure_png(fig, dpi), format="png"))


# --------------------------------------------------------------------------------------------
# front end
# --------------------------------------------------------------------------------------------
def has_widget_frontend() -> bool:
    """Whether the code runs in a Jupyter kernel that can be assumed to have a widget front end.

    ``False`` when ``SELCONV_HEADLESS`` is set (the series/sweep runners and the nbval conftest
    set it: papermill and nbval execute notebooks without a front end, so a widget would render
    as nothing), outside IPython, in a terminal IPython, or when ipywidgets is not installed.
    A notebook's ``interactive`` parameter can force either answer.
    """
    if os.environ.get(HEADLESS_ENV, "") not in ("", "0"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    if ip is None or type(ip).__name__ != "ZMQInteractiveShell" or getattr(ip, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def use_widgets(interactive: bool | str | None = "auto") -> bool:
    """Resolve a notebook's ``interactive`` parameter: ``True`` / ``False`` force the choice,
    ``"auto"`` / ``None`` use :func:`has_widget_frontend`."""
    if interactive in (None, "auto"):
        return has_widget_frontend()
    if isinstance(interactive, str):
        low = interactive.strip().lower()
        if low in ("true", "yes", "1", "on"):
            return True
        if low in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"interactive must be True, False or 'auto', not {interactive!r}")
    return bool(interactive)


# --------------------------------------------------------------------------------------------
# the JSON record of a notebook
# --------------------------------------------------------------------------------------------
class NotebookRecord:
    """Key numbers, parameters and figures of one notebook run, saved as
    ``<output_dir>/<notebook>.json`` (schema in the module docstring).

    Example (inside a notebook)::

        rec = NotebookRecord("02_masks", output_dir, params=dict(mask=mask, layer=layer))
        rec.headline("MAX mask: features kept (%)", 31.25)
        rec.figure(fig, "fig2a")
        rec.save()
    """

    def __init__(self, notebook: str, output_dir: str | os.PathLike | None = None,
                 params: Mapping[str, Any] | None = None, ndigits: int = 4):
        if not notebook or "/" in notebook or notebook.endswith(".ipynb"):
            raise ValueError(f"notebook must be a bare name like '02_masks', not {notebook!r}")
        self.notebook = notebook
        self.output_dir = resolve_output_dir(output_dir)
        self.ndigits = ndigits
        self.params = dict(params or {})
        self.headlines: dict[str, Any] = {}
        self.figures: dict[str, str] = {}
        self.results: dict[str, Any] = {}

    @property
    def path(self) -> Path:
        """Where :meth:`save` writes the JSON file."""
        return self.output_dir / f"{self.notebook}.json"

    def headline(self, label: str, value: Any) -> None:
        """Record a headline number (shown on the series' summary page), rounded."""
        self.headlines[label] = rounded(value, self.ndigits)

    def add(self, key: str, value: Any) -> None:
        """Record any other result (nested dicts/lists of numbers/strings), rounded."""
        self.results[key] = rounded(value, self.ndigits)

    def figure(self, fig, name: str, dpi: int = 100) -> str:
        """Save a matplotlib figure as ``<output_dir>/figures/<notebook>_<name>.png``; returns
        the path relative to ``output_dir`` (also recorded in the JSON)."""
        rel = Path("figures") / f"{self.notebook}_{name}.png"
        (self.output_dir / rel.parent).mkdir(parents=True, exist_ok=True)
        fig.savefig(self.output_dir / rel, dpi=dpi, bbox_inches="tight",
                    metadata={"Software": None})
        self.figures[name] = rel.as_posix()
        return rel.as_posix()

    def as_dict(self) -> dict:
        return {
            "notebook": self.notebook,
            "schema": SCHEMA_VERSION,
            "params": rounded(self.params, self.ndigits),
            "headline": self.headlines,
            "figures": self.figures,
            "results": self.results,
        }

    def save(self, quiet: bool = False) -> Path:
        """Write the JSON file and print its (repository-relative) path."""
        self.path.write_text(json.dumps(self.as_dict(), indent=1, sort_keys=False) + "\n")
        if not quiet:
            print(f"wrote {len(self.headlines)} headline numbers to {display_path(self.path)}")
        return self.path


def series_features(ds, layers=("pool5",), max_dim: int | None = None, weights="caffe-onnx",
                    **kwargs) -> dict:
    """:func:`selconv_lite.experiments.splits.split_features` as the notebook series runs it:
    the first extraction of an image also caches the layers the other notebooks read
    (:func:`~selconv_lite.teaching.settings.series_extra_layers`: on the embedded dataset at
    the series' size with the default weights), in the same forward pass. ``kwargs`` go to
    ``split_features``."""
    from ..experiments.splits import split_features
    from .settings import series_extra_layers

    return split_features(ds, layers=layers, max_dim=max_dim, weights=weights,
                          extra_layers=series_extra_layers(ds, max_dim, weights), **kwargs)


def dataset_features(ds, layer: str = "pool5", max_dim: int | None = None, cache_dir=None,
                     weights: str = "caffe-onnx", splits=("train", "queries", "db"),
                     progress: bool = True) -> dict:
    """Feature maps of a :class:`~selconv_lite.data.retrieval.RetrievalDataset`, through the shared cache.

    Returns ``{"train": [...], "queries": [...], "db": [...]}`` (only the requested splits) of
    :class:`~selconv_lite.core.types.ImageFeatures`; queries are cropped with their boxes (Sec. 5.1:
    "we use the cropped query images based on provided bounding boxes"); ``max_dim`` ``None``
    means the dataset's default. The first call extracts (slow, a progress bar), later ones
    read the cache -- tag such cells ``nbval-ignore-output``.
    """
    max_dim = max_dim or ds.default_max_dim
    # On the embedded set, the first extraction also caches the layers notebooks 06 and 07 read
    # (same forward pass); only ``layer`` is read back here.
    out = series_features(ds, layers=(layer,), max_dim=max_dim, cache_dir=cache_dir, weights=weights,
                          splits=splits, progress=progress, lazy=False)[layer]
    for feats in out.values():
        for f in feats:  # warnings name the image, not where this machine keeps it
            f.name = display_path(f.name)
    return out


def pick_images(paths, wanted, n: int | None = None) -> list[int]:
    """Indices of the images of ``paths`` whose file name contains each string of ``wanted``
    (first match each). Strings that match nothing are replaced by the first unused images (so
    a notebook parameterised for the embedded dataset still runs on another one), with a note.
    ``n`` (default ``len(wanted)``) is the number of indices returned."""
    if isinstance(wanted, str):
        wanted = [wanted]
    names = [Path(p).name for p in paths]
    n = len(wanted) if n is None else n
    chosen: list[int] = []
    missing = []
    for w in wanted:
        hit = next((i for i, nm in enumerate(names) if w in nm and i not in chosen), None)
        if hit is None:
            missing.append(w)
        else:
            chosen.append(hit)
    for i in range(len(names)):
        if len(chosen) >= n:
            break
        if i not in chosen:
            chosen.append(i)
    if missing:
        print(f"note: no image name contains {missing}; using the first images instead")
    return chosen[:n]


def load_record(path: str | os.PathLike) -> dict:
    """Read a notebook's JSON record, checking that it looks like one."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "notebook" not in data or "headline" not in data:
        raise ValueError(f"{path} is not a selconv_lite notebook record (no 'notebook'/'headline')")
    return data


def flatten(d: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested dicts to ``{"a.b": value}`` (lists of scalars are kept as JSON strings)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key, sep))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out
