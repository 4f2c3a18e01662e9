"""What wrong answers do to the retrieval demos and to the visible tests (issue 24, point 5).

Each assignment ends its tasks with provided cells (``demo_*``) that plug the student's functions
into the pipeline and print the mAP of the course queries: a wrong answer should visibly change
that number. And each test cell's visible part should catch what its case names promise (e.g. a
case "with ties" catches a row-major argmax). This script runs an assignment's source script
(``source/<a>/<a>.py``) in the assignment's folder, in this process, without nbgrader:

* :func:`demo_changes`: the demo lines with the instructor's solutions, then with each wrong
  answer of :func:`wrong_answers` (one function wrong, every other answer right: the typical
  mistakes of ``simulated_class.MISTAKES`` one at a time, and those of :data:`MORE_WRONG`), and
  the lines each one changes;
* :func:`visible_failures`: which test cells' visible parts fail for given answers
  (``tests/test_course.py`` checks them on the simulated class's mistakes).

Usage (from the repository root)::

    .venv/bin/python course/wrong_answers.py [ASSIGNMENT...]

A mistake that no demo can show (its mAP equals the right answer's) is caught by the tests
only: e.g. the row-major argmax of the MAX mask differs from the column-major one only where a
channel has tied maxima, which real maps hardly have; interleaved T-emb blocks permute the
coordinates of every vector alike, which changes no inner product.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import warnings
from pathlib import Path

import jupytext

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from simulated_class import MISTAKES, solution_of  # noqa: E402

#: more wrong answers than the simulated class's (assignment -> label -> {answer grade_id: code})
MORE_WRONG = {
    "a1_features_masks": {
        "MAX: every location kept": {"max_mask": '''
def max_mask(fmap):
    return np.ones(fmap.shape[:2], dtype=bool)
'''},
        "MAX: argmax over the rows only (one per column and channel)": {"max_mask": '''
def max_mask(fmap):
    H, W, K = fmap.shape
    rows = fmap.argmax(axis=0)  # (W, K)
    mask = np.zeros((H, W), dtype=bool)
    mask[rows, np.arange(W)[:, None]] = True
    return mask
'''},
        "MAX: column-major index read back row-major": {"max_mask": '''
def max_mask(fmap):
    H, W, K = fmap.shape
    mask = np.zeros(H * W, dtype=bool)
    mask[fmap.transpose(1, 0, 2).reshape(H * W, K).argmax(axis=0)] = True
    return mask.reshape(H, W)
'''},
        "SUM: below the median kept": {"sum_mask": '''
def sum_mask(fmap):
    s = fmap.sum(axis=2, dtype=np.float64)
    return s <= np.median(s)
'''},
        "SIFT: x and y swapped": {"sift_mask": '''
def sift_mask(keypoints_xy, image_hw, grid_hw, radius=1):
    Hf, Wf = int(grid_hw[0]), int(grid_hw[1])
    kp = np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2) + 1.0
    y = np.floor(kp[:, 0] / (image_hw[1] / Wf) + 0.5).astype(int)
    x = np.floor(kp[:, 1] / (image_hw[0] / Hf) + 0.5).astype(int)
    mask = np.zeros((Hf, Wf), dtype=bool)
    for yy, xx in zip(y, x):
        r0, r1, c0, c1 = max(1, yy - radius), min(Hf, yy + radius), max(1, xx - radius), min(Wf, xx + radius)
        if r0 <= r1 and c0 <= c1:
            mask[r0 - 1:r1, c0 - 1:c1] = True
    return mask if mask.any() else np.ones((Hf, Wf), dtype=bool)
'''},
        "SIFT: pixel coordinates used as cells": {"sift_mask": '''
def sift_mask(keypoints_xy, image_hw, grid_hw, radius=1):
    Hf, Wf = int(grid_hw[0]), int(grid_hw[1])
    kp = np.floor(np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2) + 1.5).astype(int)
    mask = np.zeros((Hf, Wf), dtype=bool)
    for xx, yy in kp:
        r0, r1, c0, c1 = max(1, yy - radius), min(Hf, yy + radius), max(1, xx - radius), min(Wf, xx + radius)
        if r0 <= r1 and c0 <= c1:
            mask[r0 - 1:r1, c0 - 1:c1] = True
    return mask if mask.any() else np.ones((Hf, Wf), dtype=bool)
'''},
    },
    "a2_embedding_aggregation": {
        "PCA: the smallest eigenvalues (eigh's order)": {"pca_l2": '''
def pca_fit(X, d):
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    _, V = np.linalg.eigh((X - mean).T @ (X - mean))
    return mean, V[:, :d].T


def pca_l2(X, mean, components):
    Y = (np.asarray(X, dtype=np.float64) - mean) @ np.asarray(components).T
    n = np.linalg.norm(Y, axis=1, keepdims=True)
    return Y / np.where(n == 0, 1, n)
'''},
        "T-emb: residuals not normalised": {"temb_residuals": '''
def temb_residuals(X, C):
    return (np.asarray(X, dtype=np.float64)[:, None, :] - np.asarray(C)[None, :, :]).reshape(len(X), -1)
'''},
        "democratic: exponent 1 (delta = 1 / column sums)": {"democratic_weights": '''
def democratic_weights(E, n_iter=10):
    G = np.maximum(E @ E.T, 0)
    lam = np.ones(len(E))
    for _ in range(n_iter):
        s = G.sum(axis=0)
        delta = np.where(s > 0, 1 / np.where(s > 0, s, 1), 0.0)
        G = G * delta[None, :] * delta[:, None]
        lam = lam * delta
    return lam
'''},
    },
    "a3_postprocessing_evaluation": {},
}


def wrong_answers(assignment):
    """``{label: {grade_id: code}}``: each typical mistake of the simulated class on its own, then
    :data:`MORE_WRONG`."""
    out = {f"simulated mistake in {gid}": {gid: code} for gid, code in MISTAKES[assignment].items()}
    out.update(MORE_WRONG.get(assignment, {}))
    return out


def _cells(assignment):
    """``(grade_id, kind, source)`` of the script's code cells; kind is "answer" (the solution),
    "test", "demo" or "provided"."""
    nb = jupytext.read(HERE / "source" / assignment / f"{assignment}.py")
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id", "")
        kind = ("answer" if meta.get("solution") else "test" if meta.get("grade")
                else "demo" if gid.startswith("demo_") else "provided")
        out.append((gid, kind, solution_of(cell.source) if kind == "answer" else cell.source))
    return out


def _run(src, ns, name="<cell>"):
    exec(compile(src, name, "exec"), ns)


@contextlib.contextmanager
def _assignment(assignment, answers=None):
    """The namespace of ``assignment`` after its provided and answer cells (``answers``:
    ``{grade_id: code}`` replacing solutions), run in its folder; yields ``(cells, ns)``."""
    cells = _cells(assignment)
    cwd = os.getcwd()
    os.chdir(HERE / "source" / assignment)
    try:
        with warnings.catch_warnings():  # the cells' own filters and a wrong answer's NaN warnings
            warnings.simplefilter("ignore", RuntimeWarning)
            ns = {"__name__": "__main__"}
            with contextlib.redirect_stdout(io.StringIO()):
                for gid, kind, src in cells:
                    if kind == "provided" or (kind == "answer" and gid not in (answers or {})):
                        _run(src, ns)
                for code in (answers or {}).values():
                    _run(code, ns, "<answer>")
            yield cells, ns
    finally:
        os.chdir(cwd)


def _demo_lines(cells, ns):
    """``{label: printed value}`` of the demo cells run in ``ns``."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        for _, kind, src in cells:
            if kind == "demo":
                _run(src, ns, "<demo>")
    return {m.group(1).strip(): m.group(2).strip()
            for m in re.finditer(r"^(.*?) +(mAP = \S+|not implemented yet|your code raised.*)$",
                                 buf.getvalue(), re.M)}


def demo_changes(assignment):
    """``(right, {label: {demo line: value}})``: the demo lines with the solutions, and the lines
    each wrong answer of :func:`wrong_answers` changes."""
    with _assignment(assignment) as (cells, ns):
        right = _demo_lines(cells, ns)
        changed = {}
        for label, answers in wrong_answers(assignment).items():
            for code in answers.values():
                _run(code, ns, "<answer>")
            got = _demo_lines(cells, ns)
            changed[label] = {k: v for k, v in got.items() if v != right.get(k)}
            for gid, kind, src in cells:  # back to the right answers
                if kind == "answer" and gid in answers:
                    _run(src, ns)
    return right, changed


def visible_failures(assignment, answers):
    """``{test grade_id: failure message, or None when the visible part passes}`` for the
    ``answers`` (``{grade_id: code}``; the solutions elsewhere)."""
    out = {}
    with _assignment(assignment, answers) as (cells, ns):
        for gid, kind, src in cells:
            if kind != "test":
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    _run(src.split("### BEGIN HIDDEN TESTS")[0], ns, f"<{gid}>")
                out[gid] = None
            except AssertionError as exc:
                out[gid] = str(exc)
    return out


def main(argv=None):
    names = (argv if argv is not None else sys.argv[1:]) or sorted(
        p.name for p in (HERE / "source").iterdir() if p.is_dir())
    for name in names:
        right, changed = demo_changes(name)
        print(f"== {name}: the demos with the solutions")
        for label, value in right.items():
            print(f"   {label:<44s} {value}")
        for label, lines in changed.items():
            print(f"-- {label}")
            for k, v in lines.items():
                print(f"   {k:<44s} {v}   (right: {right.get(k, '-')})")
            if not lines:
                print("   (no demo line changes)")
        print(f"== {name}: visible tests with the simulated class's mistakes")
        for gid, message in visible_failures(name, MISTAKES[name]).items():
            print(f"   {gid:<28s} {'fails: ' + message[:90] if message else 'passes'}")


if __name__ == "__main__":
    main()
