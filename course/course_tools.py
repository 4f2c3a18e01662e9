"""Helpers of the course notebooks' tests and demos (imported by their ``setup_common`` cell).

Shipped with every release next to the notebook (``source/<a>/course_tools.py`` links here), so
students run the same helpers as the grader; nothing in it is part of the answer key:

* :func:`reference_unavailable` and :func:`call_student`: the grading guard of the student's own
  notebook (the package's implementation of a step is switched off while the student's function
  runs). At grading time ``call_student`` is replaced by the grader's version, which sends the
  call to the sandbox where selconv_lite is not installed at all (``grading.py``);
* :func:`check_close`: array comparison with a message that says what differs;
* :func:`course_data` (the data file, ground truth and ``mean_ap``) and :func:`show_map` for the
  retrieval demos.
"""
import contextlib
import importlib

import numpy as np

_OFF = "def _off(*args, **kwargs):\n    raise RuntimeError({msg!r})\n"


@contextlib.contextmanager
def reference_unavailable(*targets):
    """Switch off the package's implementation of a step ("module:function" or
    "module:Class.method") while your function runs: the function object itself is replaced,
    so every reference to it (imported names included) raises."""
    saved = []
    try:
        for target in targets:
            module, _, attr = target.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part, None)
            obj = getattr(obj, "__func__", obj)
            while getattr(getattr(obj, "__code__", None), "co_freevars", ()) and hasattr(obj, "__wrapped__"):
                obj = obj.__wrapped__  # a decorated method (e.g. scikit-learn's transform): switch off the original
            if getattr(getattr(obj, "__code__", None), "co_freevars", True):
                continue  # not in this version of the package, or not a plain function
            namespace = {}
            exec(_OFF.format(msg=f"{module}.{attr} is switched off while your code is graded: "
                                 "implement this step yourself"), namespace)
            saved.append((obj, obj.__code__))
            obj.__code__ = namespace["_off"].__code__
        yield
    finally:
        for obj, code in reversed(saved):
            obj.__code__ = code


def call_student(fn, *args, off=(), case="", backward=False):
    """Your ``fn(*args)`` with the package's version of the step switched off; an exception
    becomes a failure that names the case and what went wrong. With ``backward``, the result is
    ``(value, gradients)``: ``value.backward()`` is run and the gradients of the torch arguments
    that require them are returned (``None`` when the value is not attached to a graph). At
    grading time the call goes to your code's own process instead (the grading versions in
    course/grading.py)."""
    with reference_unavailable(*off):
        try:
            out = fn(*args)
            if not backward:
                return out
            import torch

            if not (isinstance(out, torch.Tensor) and out.requires_grad):
                return out, None
            out.backward()
            return out.detach(), [a.grad for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
        except NotImplementedError:
            raise AssertionError(f"{fn.__name__} is not implemented yet") from None
        except Exception as exc:
            if "switched off while your code is graded" in str(exc):
                raise AssertionError(f"{case}: {fn.__name__} calls the package's implementation "
                                     f"of this step ({exc})") from None
            raise AssertionError(f"{case}: {fn.__name__} raised {type(exc).__name__}: {exc}") from exc


def check_close(got, expected, case, what="output", rtol=1e-6, atol=1e-9):
    """Compare an array answer with the expected one; the message says what differs."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"{case}: your {what} has shape {got.shape}, expected {expected.shape}"
    bad = ~np.isfinite(got)
    assert not bad.any(), (f"{case}: your {what} contains NaN/inf at {np.argwhere(bad)[:3].tolist()} "
                           "(a zero vector must stay zero: never divide by a zero norm)")
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        err = np.abs(got.astype(np.float64) - expected)
        i = np.unravel_index(np.argmax(err), err.shape)
        raise AssertionError(f"{case}: your {what} differs from the expected one (largest difference "
                             f"{err[i]:.3g} at index {tuple(int(v) for v in i)}: yours {got[i]:.6g}, "
                             f"expected {expected[i]:.6g})")


def course_data(path="course_data.npz"):
    """The assignment's arrays ``DATA``, the ground truth ``GND`` of its queries and ``mean_ap``:
    the mAP of the course queries for query and database vectors (the package's ranking by inner
    product and compute_map.m)."""
    from selconv_lite.data.evaluation import compute_map, rank_by_inner_product

    data = np.load(path)
    gnd = [{"ok": data[f"gnd_ok_{j}"], "junk": data[f"gnd_junk_{j}"]} for j in range(int(data["n_queries"]))]

    def mean_ap(qvecs, dbvecs):
        """mAP of the course queries (package ranking by inner product and compute_map.m)."""
        return compute_map(rank_by_inner_product(qvecs, dbvecs), gnd)[0]

    return data, gnd, mean_ap


def show_map(label, run):
    """Print the mAP that ``run()`` returns, or why it could not be computed."""
    try:
        print(f"{label:<44s} mAP = {run():.3f}")
    except NotImplementedError:
        print(f"{label:<44s} not implemented yet")
    except Exception as exc:
        print(f"{label:<44s} your code raised {type(exc).__name__}: {exc}")
