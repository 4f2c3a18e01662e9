"""A simulated class for checking the grading set-up: four submissions built from the release.

* ``correct``: every answer is the instructor's solution;
* ``mistakes``: the typical mistakes (floats for sizes, row-major argmax, ``>`` for ``>=``,
  ``np.round``, a NaN on a zero row, interleaved T-emb blocks, no Gram clipping, a lost sign,
  truncating the wrong end, junk counted as negatives, ``d`` for ``d^2``); a few answers are right;
* ``library``: every answer hands back selconv_lite's own implementation (and the written
  questions are left unanswered);
* ``unanswered``: the release as it was handed out.

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


def receptive_field_size(layer="pool5"):
    return receptive_field(layer).size
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

MANUAL_ANSWER = ("The MAX mask keeps one location per channel; fewer, stronger features remove background "
                 "and bursts. Clipping keeps Sinkhorn well defined. Learning on held-out data avoids tuning "
                 "on the test set.")


def solution_of(source: str) -> str:
    """The instructor's answer: the source cell without nbgrader's solution markers."""
    lines = [ln for ln in source.splitlines() if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln]
    return "\n".join(lines)


def submission(student: str, assignment: str, release_nb, source_nb):
    """The ``student``'s notebook of ``assignment``, built from the release and source notebooks."""
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
        elif student == "correct":
            cell.source = solution_of(source[gid].source)
        elif student == "mistakes":
            cell.source = MISTAKES[assignment].get(gid, solution_of(source[gid].source)).strip("\n")
        elif student == "library":
            cell.source = LIBRARY[assignment][gid].strip("\n")
    return nb


def write_submissions(course_dir, students=STUDENTS):
    """Write ``submitted/<student>/<assignment>/<assignment>.ipynb`` for every released assignment,
    with the data file the release carries."""
    course_dir = Path(course_dir)
    written = []
    for release in sorted((course_dir / "release").iterdir()):
        name = release.name
        release_nb = nbformat.read(release / f"{name}.ipynb", as_version=4)
        source_nb = nbformat.read(course_dir / "source" / name / f"{name}.ipynb", as_version=4)
        for student in students:
            out = course_dir / "submitted" / student / name
            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(submission(student, name, release_nb, source_nb), out / f"{name}.ipynb")
            for extra in release.iterdir():
                if extra.suffix != ".ipynb":
                    (out / extra.name).write_bytes(extra.read_bytes())
            written.append(out)
    return written


if __name__ == "__main__":
    for path in write_submissions(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent):
        print(path)
