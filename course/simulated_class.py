"""A simulated class for checking the grading set-up: four submissions built from the release.

* ``correct``: every answer is the instructor's solution;
* ``mistakes``: the typical mistakes (floats for sizes, row-major argmax, ``>`` for ``>=``,
  ``np.round``, a NaN on a zero row, interleaved T-emb blocks, no Gram clipping, a lost sign,
  truncating the wrong end, junk counted as negatives, ``d`` for ``d^2``); a few answers are right;
* ``library``: every answer hands back selconv_lite's own implementation (and the written
  questions are left unanswered);
* ``unanswered``: the release as it was handed out;

and the cheats of :data:`CHEATS` (assignment 1 only): each hands in the solution for every task
but one, and games that one: exec of the package's source, ``importlib.reload``, a copied
``__code__``, emptied guard lists, monkeypatched numpy, builtins or IPython input transformers,
a write to the gradebook, a read of ``source/`` or of another submission, a function that sleeps
and ignores interrupts, one that kills its process, one that raises ``SystemExit``, a test cell
turned into ``pass``, a test cell deleted (``CHEAT_TEST_EDITS``). Each would
have scored the task when the tests ran in the student's kernel; graded in the sandbox
(``grading.py``) each scores 0 on that task and changes nobody else's grade.

:func:`write_submissions` writes them as ``submitted/<student>/<assignment>/<assignment>.ipynb``
from the release notebooks, replacing the answer cells (matched by their nbgrader ``grade_id``).
:data:`EXPECTED_MESSAGES` lists, per test cell of the ``mistakes`` submission, words its
failure message must contain. Usage::

    .venv/bin/python course/simulated_class.py COURSE_DIR   # after nbgrader generate_assignment
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

STUDENTS = ("correct", "mistakes", "library", "unanswered")

#: answers of the "mistakes" student (answer grade_id -> code); answers not listed are the solution
MISTAKES = {
    "a1_features_masks": {
        "feature_map_size": '''
def feature_map_size(image_hw, layer="pool5"):
    stride = 32 if layer == "pool5" or layer.startswith("conv5") else 16
    return image_hw[0] / stride, image_hw[1] / stride
''',
        "max_mask": '''
def max_mask(fmap):
    H, W, K = fmap.shape
    mask = np.zeros((H, W), dtype=bool)
    h, w = np.unravel_index(fmap.reshape(H * W, K).argmax(axis=0), (H, W))
    mask[h, w] = True
    return mask
''',
        "sum_mask": '''
def sum_mask(fmap):
    s = fmap.sum(axis=2)
    return s > np.median(s)
''',
        "sift_mask": '''
def sift_mask(keypoints_xy, image_hw, grid_hw, radius=1):
    Hf, Wf = grid_hw
    kp = np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2) + 1.0
    x = np.round(kp[:, 0] / (image_hw[1] / Wf)).astype(int)
    y = np.round(kp[:, 1] / (image_hw[0] / Hf)).astype(int)
    mask = np.zeros((Hf, Wf), dtype=bool)
    for yy, xx in zip(y, x):
        mask[max(1, yy - radius) - 1:min(Hf, yy + radius), max(1, xx - radius) - 1:min(Wf, xx + radius)] = True
    if not mask.any():
        mask[:] = True
    return mask
''',
    },
    "a2_embedding_aggregation": {
        "pca_l2": '''
def pca_fit(X, d):
    mean = X.mean(axis=0)
    _, V = np.linalg.eigh(np.cov((X - mean).T))
    return mean, V[:, ::-1][:, :d].T


def pca_l2(X, mean, components):
    Y = (X - mean) @ components.T
    return Y / np.linalg.norm(Y, axis=1, keepdims=True)
''',
        "temb_residuals": '''
def temb_residuals(X, C):
    R = X[:, None, :] - C[None, :, :]
    R = R / np.linalg.norm(R, axis=2, keepdims=True)
    return R.transpose(0, 2, 1).reshape(len(X), -1)
''',
        "democratic_weights": '''
def democratic_weights(E, n_iter=10):
    G = E @ E.T
    lam = np.ones(len(E))
    for _ in range(n_iter):
        delta = 1 / np.sqrt(np.abs(G.sum(axis=0)))
        G = G * delta[None, :] * delta[:, None]
        lam = lam * delta
    return lam
''',
    },
    "a3_postprocessing_evaluation": {
        "power_law": '''
def power_law(x, alpha=0.5):
    return np.abs(x) ** alpha
''',
        "rotation": '''
def learn_rotation(V):
    mean = V.mean(axis=0)
    _, U = np.linalg.eigh(np.cov((V - mean).T))
    return mean, U[:, ::-1]


def postprocess(V, mean, P, n_truncate, alpha=0.5):
    Y = ((V - mean) @ P)[:, :P.shape[1] - n_truncate]
    Y = np.sign(Y) * np.abs(Y) ** alpha
    return Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-12)
''',
        "average_precision": '''
def average_precision(ranked, ok, junk):
    ranked, ok = np.asarray(ranked), np.asarray(ok)
    if ok.size == 0:
        return 0.0
    pos = np.flatnonzero(np.isin(ranked, ok))
    ap = 0.0
    for k, r in enumerate(pos):
        before = 1.0 if r == 0 else k / r
        ap += (before + (k + 1) / (r + 1)) / (2 * ok.size)
    return ap
''',
        "contrastive_loss": '''
def contrastive_loss(a, b, y, margin=0.7):
    d = torch.sqrt(((a - b) ** 2).sum(dim=1))
    return (0.5 * y * d + 0.5 * (1 - y) * torch.clamp(margin - d, min=0)).mean()
''',
    },
}

#: test cells the "mistakes" student passes (the answers above that are right)
MISTAKES_PASS = {
    "a1_features_masks": {"test_receptive_field"},
    "a2_embedding_aggregation": {"test_pca_fit"},
    "a3_postprocessing_evaluation": {"test_learn_rotation"},
}

#: words the failure message of each test cell of the "mistakes" student must contain
EXPECTED_MESSAGES = {
    "a1_features_masks": {
        "test_feature_map_size": "integer division",
        "test_max_mask": "column-major",
        "test_sum_mask": ">=, not >",
        "test_sift_mask": "half away from zero",
    },
    "a2_embedding_aggregation": {
        "test_pca_l2": "NaN",
        "test_temb_residuals": "interleaved",
        "test_democratic_weights": "clip",
    },
    "a3_postprocessing_evaluation": {
        "test_power_law": "negative entries must stay negative",
        "test_postprocess": "FIRST n_truncate",
        "test_average_precision": "junk",
        "test_contrastive_loss": "not d",
    },
}

#: answers of the "library" student: selconv_lite's implementation of each step
LIBRARY = {
    "a1_features_masks": {
        "feature_map_size": '''
from selconv_lite.features.backbone import feature_map_hw as feature_map_size
''',
        "receptive_field_size": '''
from selconv_lite.features.receptive_field import receptive_field


def receptive_field_size(ops):
    return receptive_field(ops[-1][0].replace("maxpool_after_", "")).size
''',
        "max_mask": "from selconv_lite.method.masks import max_mask\n",
        "sum_mask": "from selconv_lite.method.masks import sum_mask\n",
        "sift_mask": '''
from selconv_lite.method.masks import sift_mask as _sift


def sift_mask(keypoints_xy, image_hw, grid_hw, radius=1):
    return _sift(keypoints_xy, image_hw, grid_hw, radius=radius)
''',
    },
    "a2_embedding_aggregation": {
        "pca_l2": '''
from selconv_lite.method.embeddings import PCAL2


def pca_fit(X, d):
    p = PCAL2(d).fit(X)
    return p.mean_, p.components_


def pca_l2(X, mean, components):
    return PCAL2.from_params(mean, components).transform(X)
''',
        "temb_residuals": "from selconv_lite.method.embeddings import triangulation_residuals as temb_residuals\n",
        "democratic_weights": '''
from selconv_lite.method.aggregation import democratic_pooling


def democratic_weights(E, n_iter=10):
    return democratic_pooling(E, n_iter=n_iter)[1]
''',
    },
    "a3_postprocessing_evaluation": {
        "power_law": "from selconv_lite.method.postprocess import power_law\n",
        "rotation": '''
from selconv_lite.method.postprocess import RotationNormalization, l2_normalize
from selconv_lite.method.postprocess import power_law as _pw


def learn_rotation(V):
    rn = RotationNormalization().fit(V)
    return rn.mean_, rn.rotation_


def postprocess(V, mean, P, n_truncate, alpha=0.5):
    return l2_normalize(_pw(((V - mean) @ P)[:, n_truncate:], alpha))
''',
        "average_precision": '''
from selconv_lite.data.evaluation import compute_map


def average_precision(ranked, ok, junk):
    return compute_map(np.asarray(ranked)[:, None], [{"ok": ok, "junk": junk}])[0]
''',
        "contrastive_loss": "from selconv_lite.experiments.finetune import contrastive_loss\n",
    },
}

#: the cheats: student -> (assignment, the answer cells gamed -> code, the test cells they must fail).
#: ``COURSE_DIR`` and ``REPO_DIR`` in the code are replaced by the absolute paths at writing time,
#: so a cheat knows where the gradebook, ``source/`` and the package are.
CHEATS = {
    "cheat_exec_source": ("a1_features_masks", {"max_mask": '''
_ns = {"__name__": "selconv_copy"}
exec(open("REPO_DIR/selconv_lite/method/masks.py").read(), _ns)  # a fresh copy: not switched off
max_mask = _ns["max_mask"]
'''}, {"test_max_mask"}),
    "cheat_reload": ("a1_features_masks", {"max_mask": '''
import importlib

import selconv_lite.method.masks as _masks


def max_mask(fmap):
    return importlib.reload(_masks).max_mask(fmap)  # new function objects, not switched off
'''}, {"test_max_mask"}),
    "cheat_code_copy": ("a1_features_masks", {"max_mask": '''
import types

from selconv_lite.method import masks as _masks

max_mask = types.FunctionType(_masks.max_mask.__code__, _masks.__dict__)  # the code, copied before the guard
'''}, {"test_max_mask"}),
    "cheat_guard_lists": ("a1_features_masks", {"max_mask": '''
OFF_MASKS = ()  # nothing is switched off any more
from selconv_lite.method.masks import max_mask
'''}, {"test_max_mask"}),
    "cheat_numpy": ("a1_features_masks", {"max_mask": '''
np.array_equal = lambda *args, **kwargs: True  # every mask "equals" the expected one


def max_mask(fmap):
    return np.ones(fmap.shape[:2], dtype=bool)
'''}, {"test_max_mask"}),
    "cheat_builtins": ("a1_features_masks", {"feature_map_size": '''
import builtins

builtins.isinstance = lambda obj, types: types is not bool  # every value "is" an int
builtins.tuple = lambda *args: ()                              # every pair "equals" the expected one


def feature_map_size(image_hw, layer="pool5"):
    return (0.5, 0.5)
'''}, {"test_feature_map_size"}),
    "cheat_ipython": ("a1_features_masks", {"sum_mask": '''
def sum_mask(fmap):
    return np.zeros(fmap.shape[:2], dtype=bool)


get_ipython().input_transformers_cleanup.append(lambda lines: ["pass\\n"])  # every later cell: pass
'''}, {"test_sum_mask"}),
    "cheat_gradebook": ("a1_features_masks", {"max_mask": '''
import sqlite3


def max_mask(fmap):
    return np.zeros(fmap.shape[:2], dtype=bool)


_db = sqlite3.connect("COURSE_DIR/gradebook.db")
_db.execute("UPDATE grade SET manual_score = 0, needs_manual_grade = 0")  # everyone else to 0
_db.commit()
'''}, {"test_max_mask"}),
    "cheat_read_source": ("a1_features_masks", {"max_mask": '''
import json

for _path in ("COURSE_DIR/source/a1_features_masks/a1_features_masks.ipynb",
              "REPO_DIR/course/source/a1_features_masks/a1_features_masks.ipynb",
              "COURSE_DIR/submitted/correct/a1_features_masks/a1_features_masks.ipynb"):
    try:
        _cells = json.load(open(_path))["cells"]
    except OSError:
        continue
    exec(next("".join(c["source"]) for c in _cells
              if c["metadata"].get("nbgrader", {}).get("grade_id") == "max_mask"))
    break
'''}, {"test_max_mask"}),
    "cheat_sleep": ("a1_features_masks", {"max_mask": '''
import time


def max_mask(fmap):
    while True:  # a loop that ignores interrupts
        try:
            time.sleep(3600)
        except BaseException:
            pass
'''}, {"test_max_mask"}),
    "cheat_kill": ("a1_features_masks", {"max_mask": '''
import os
import signal


def max_mask(fmap):
    for pid in (os.getppid(), 1, -1):  # the kernel's parent (the grader), everything else, then all
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os.killpg(0, signal.SIGKILL)
'''}, {"test_max_mask"}),
    "cheat_exit": ("a1_features_masks", {"max_mask": '''
import sys


def max_mask(fmap):
    sys.exit(0)
'''}, {"test_max_mask"}),
}

CHEATS.update({
    "cheat_edit_test": ("a1_features_masks", {"max_mask": '''
def max_mask(fmap):
    return np.ones(fmap.shape[:2], dtype=bool)
'''}, {"test_max_mask"}),
    "cheat_delete_test": ("a1_features_masks", {"max_mask": '''
def max_mask(fmap):
    return np.ones(fmap.shape[:2], dtype=bool)
'''}, {"test_max_mask"}),
})

#: what two cheats do to the test cells of their notebook: a new source, or None to delete the cell
CHEAT_TEST_EDITS = {
    "cheat_edit_test": {"test_max_mask": "pass  # the test, turned into nothing"},
    "cheat_delete_test": {"test_max_mask": None},
}

MANUAL_ANSWER = ("The MAX mask keeps one location per channel; fewer, stronger features remove background "
                 "and bursts. Clipping keeps Sinkhorn well defined. Learning on held-out data avoids tuning "
                 "on the test set.")


def solution_of(source: str) -> str:
    """The instructor's answer: the source cell without nbgrader's solution markers."""
    lines = [ln for ln in source.splitlines() if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln]
    return "\n".join(lines)


def submission(student: str, assignment: str, release_nb, source_nb, paths=None):
    """The ``student``'s notebook of ``assignment``, built from the release and source notebooks
    (``paths``: the replacements of ``COURSE_DIR`` and ``REPO_DIR`` in a cheat's code)."""
    nb = nbformat.from_dict(release_nb)
    source = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in source_nb.cells}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution") or student == "unanswered":
            continue
        gid = meta["grade_id"]
        if cell.cell_type == "markdown":  # a manually graded answer
            if student in ("correct", "mistakes"):
                cell.source = MANUAL_ANSWER
        elif student in CHEATS:
            cell.source = CHEATS[student][1].get(gid, solution_of(source[gid].source)).strip("\n")
            for key, value in (paths or {}).items():
                cell.source = cell.source.replace(key, str(value))
        elif student == "correct":
            cell.source = solution_of(source[gid].source)
        elif student == "mistakes":
            cell.source = MISTAKES[assignment].get(gid, solution_of(source[gid].source)).strip("\n")
        elif student == "library":
            cell.source = LIBRARY[assignment][gid].strip("\n")
    edits = CHEAT_TEST_EDITS.get(student, {})
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if edits.get(gid):
            cell.source = edits[gid]
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in edits
                or edits[c.metadata["nbgrader"]["grade_id"]] is not None]
    return nb


def write_submissions(course_dir, students=STUDENTS + tuple(CHEATS)):
    """Write ``submitted/<student>/<assignment>/<assignment>.ipynb`` for every released assignment
    (a cheat: its assignment only), with the data file the release carries."""
    course_dir = Path(course_dir).resolve()
    paths = {"COURSE_DIR": course_dir, "REPO_DIR": Path(__file__).resolve().parents[1]}
    written = []
    for release in sorted((course_dir / "release").iterdir()):
        name = release.name
        release_nb = nbformat.read(release / f"{name}.ipynb", as_version=4)
        source_nb = nbformat.read(course_dir / "source" / name / f"{name}.ipynb", as_version=4)
        for student in students:
            if student in CHEATS and CHEATS[student][0] != name:
                continue
            out = course_dir / "submitted" / student / name
            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(submission(student, name, release_nb, source_nb, paths), out / f"{name}.ipynb")
            for extra in release.iterdir():
                if extra.suffix != ".ipynb":
                    (out / extra.name).write_bytes(extra.read_bytes())
            written.append(out)
    return written


if __name__ == "__main__":
    for path in write_submissions(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent):
        print(path)
