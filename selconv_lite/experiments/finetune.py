"""Fine-tuning VGG16's conv5 block for the framework, offline (paper Sec. 5.3, "Taking advantages
of fine-tuned VGG network", Table 6 bottom half): loss, training, caching, effect on the masks.

The framework takes *any* 3-D conv. activation tensor as input, so a VGG16 fine-tuned for
retrieval can replace the ImageNet one. This module fine-tunes one, ending in a state-dict file
that :func:`selconv_lite.features.backbone.load_vgg16_trunk` accepts as ``weights=<path>``;
published fine-tuned trunks are downloaded and converted by
:mod:`selconv_lite.experiments.finetune_weights`.

Offline (the default, what CI runs)
    :func:`finetune_conv5` fine-tunes the conv5 block (conv5_1 ... conv5_3) of the ImageNet VGG16
    with the siamese contrastive loss of Radenovic et al. on tuples drawn from a dataset's
    **training split only**. The input of conv5_1 is pool4, which is exactly the backbone's
    ``"conv4_3"`` layer (ReLU(conv4_3) followed by a 2x2/2 max-pool), so the expensive part of the
    network runs once per image (through the feature cache) and each training step only runs the
    conv5 block. :func:`apply_conv5` turns cached ``conv4_3`` maps into ``pool5`` maps of any
    conv5 weights, which is equal to running the whole fine-tuned trunk on the image.

Contrastive loss (Radenovic et al.), for L2-normalised descriptors :math:`\\bar f(i)` of a pair
:math:`(i, j)` with label :math:`Y(i, j) = 1` (matching) or 0 (non-matching) and margin :math:`\\tau`:

.. math::

    \\mathcal{L}(i, j) = \\tfrac12 Y(i,j)\\,\\lVert \\bar f(i) - \\bar f(j)\\rVert^2
        + \\tfrac12 (1 - Y(i,j)) \\max\\{0, \\tau - \\lVert \\bar f(i) - \\bar f(j)\\rVert\\}^2 .

The descriptor used for training is GeM pooling (:math:`p = 3`) of the pool5 map, then L2.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..features.backbone import VGG16Trunk, load_vgg16_trunk
from ..core.types import ImageFeatures
from .finetune_weights import TV_CONV_INDEX, default_weights_dir, save_trunk

__all__ = [
    "conv5_block",
    "apply_conv5",
    "conv5_layers_from_pool4",
    "gem",
    "contrastive_loss",
    "FinetuneConfig",
    "FinetuneResult",
    "finetune_conv5",
    "finetune_conv5_cached",
    "mask_change",
    "relation_matrix",
    "training_groups",
]

#: ``VGG16Trunk.features`` modules 24..30: conv5_1, relu, conv5_2, relu, conv5_3, relu, pool5.
_CONV5_SLICE = slice(24, 31)


# ----------------------------------------------------------------------------------------------
# the conv5 block on cached pool4 (= "conv4_3") maps
# ----------------------------------------------------------------------------------------------
def conv5_block(trunk: VGG16Trunk) -> nn.Sequential:
    """A deep copy of the trunk's conv5 block: conv5_1, ReLU, conv5_2, ReLU, conv5_3, ReLU, pool5.

    Its input is pool4 (the backbone's ``"conv4_3"`` layer, ``(N, 512, h, w)``), its output is
    pool5.
    """
    return copy.deepcopy(nn.Sequential(*list(trunk.features)[_CONV5_SLICE]))


def _block_from(weights) -> nn.Sequential:
    if isinstance(weights, nn.Sequential):
        return weights
    if isinstance(weights, VGG16Trunk):
        return conv5_block(weights)
    return conv5_block(load_vgg16_trunk(weights, device="cpu"))


def _to_tensor(f: ImageFeatures) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(f.fmap.transpose(2, 0, 1)))[None]


CONV5_LAYERS = ("conv5_1", "conv5_2", "conv5_3")


def conv5_layers_from_pool4(weights, pool4: Sequence[ImageFeatures],
                            layers=CONV5_LAYERS) -> dict[str, list[ImageFeatures]]:
    """The layers ``conv5_1``, ``conv5_2``, ``conv5_3`` (each ReLU output followed by a 2x2/2
    max-pool, Sec. 5.2.4 / Fig. 5) from pool4 maps (the backbone's ``"conv4_3"`` layer).

    Equal (up to float rounding) to extracting those layers with the full trunk of ``weights``
    from the same images (``conv5_3`` is ``"pool5"``), but only the conv5 block runs.

    Parameters
    ----------
    weights : VGG16Trunk, nn.Sequential (a :func:`conv5_block`), or anything ``load_vgg16_trunk`` takes
    pool4 : sequence of ImageFeatures
        ``"conv4_3"`` maps ``(h, w, 512)`` (the SIFT keypoints and image size are carried over).
    layers : sequence of str
        Which of ``conv5_1``, ``conv5_2``, ``conv5_3`` to return.

    Returns
    -------
    dict
        ``{layer: [ImageFeatures, ...]}`` of ``(h // 2, w // 2, 512)`` float32 maps.
    """
    for lay in layers:
        if lay not in CONV5_LAYERS:
            raise ValueError(f"{lay!r} cannot be computed from pool4; choose from {CONV5_LAYERS}")
    block = _block_from(weights).eval()
    convs = [block[0], block[2], block[4]]
    pool = nn.MaxPool2d(2, 2)
    last = max(layers, key=CONV5_LAYERS.index)
    out = {lay: [] for lay in layers}
    with torch.inference_mode():
        for f in pool4:
            if f.fmap.ndim != 3 or f.fmap.shape[2] != 512:
                raise ValueError(f"{f.name}: expected a (h, w, 512) conv4_3 map, got {f.fmap.shape}")
            h = _to_tensor(f).float()
            for name, conv in zip(CONV5_LAYERS, convs):
                h = torch.relu(conv(h))
                if name in out:
                    y = pool(h)[0].permute(1, 2, 0).contiguous().numpy().astype(np.float32)
                    out[name].append(ImageFeatures(fmap=y, image_hw=f.image_hw,
                                                   keypoints=f.keypoints, name=f.name))
                if name == last:
                    break
    return out


def apply_conv5(weights, conv4_maps: Sequence[ImageFeatures]) -> list[ImageFeatures]:
    """pool5 maps from cached pool4 (``"conv4_3"``) maps, through the conv5 block of ``weights``:
    the ``"conv5_3"`` entry of :func:`conv5_layers_from_pool4`.

    Returns
    -------
    list of ImageFeatures
        ``(h // 2, w // 2, 512)`` float32 pool5 maps.
    """
    return conv5_layers_from_pool4(weights, conv4_maps, ("conv5_3",))["conv5_3"]


def gem(x: torch.Tensor, p: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """Generalised-mean pooling ``(mean x^p)^(1/p)`` over the spatial dims of ``(N, K, h, w)`` -> ``(N, K)``."""
    return x.clamp(min=eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, label: torch.Tensor, margin: float = 0.7) -> torch.Tensor:
    """Mean contrastive loss of descriptor pairs (rows of ``a``, ``b``), see the module docstring.

    ``label`` is 1 for matching pairs, 0 for non-matching ones.
    """
    d = (a - b).pow(2).sum(dim=1).clamp(min=0).sqrt()
    label = label.to(d.dtype)
    loss = 0.5 * label * d.pow(2) + 0.5 * (1 - label) * (margin - d).clamp(min=0).pow(2)
    return loss.mean()


# ----------------------------------------------------------------------------------------------
# offline fine-tuning
# ----------------------------------------------------------------------------------------------
@dataclass
class FinetuneConfig:
    """Settings of :func:`finetune_conv5` (defaults sized for <= 3 minutes on 2 CPU cores).

    Attributes
    ----------
    epochs : int
        Passes over the training images, each starting with hard-negative mining.
    anchors_per_step : int
        Tuples per optimisation step.
    n_negatives : int
        Hard negatives per tuple (the most similar other images under the current network,
        as in Radenovic et al.).
    margin : float
        Contrastive margin :math:`\\tau` (0.7, the value Radenovic et al. use for VGG).
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam weight decay.
    gem_p : float
        GeM exponent of the training descriptor.
    crop_min : float
        Training windows cover at least this fraction of each side of the smallest map of the
        step (at most ``max_cells``); a positive cut from the anchor's own map (when the anchor
        has no matching image) overlaps the anchor's window by at least this fraction of each side.
    max_cells : int
        Maps are cropped to at most ``max_cells x max_cells`` pool4 cells during training (speed).
    train_layers : tuple of str
        Which conv5 layers are updated.
    seed : int
        Seed of every random choice (tuples, crops); the run is deterministic.
    """

    epochs: int = 3
    anchors_per_step: int = 4
    n_negatives: int = 2
    margin: float = 0.7
    lr: float = 2e-5
    weight_decay: float = 1e-4
    gem_p: float = 3.0
    crop_min: float = 0.6
    max_cells: int = 16
    train_layers: tuple = ("conv5_1", "conv5_2", "conv5_3")
    seed: int = 0

    def key(self) -> str:
        """A short hash of the settings (used in cache file names)."""
        blob = json.dumps(asdict(self), sort_keys=True, default=list).encode()
        return hashlib.sha1(blob).hexdigest()[:10]


@dataclass
class FinetuneResult:
    """What :func:`finetune_conv5` produced."""

    #: The fine-tuned trunk (conv1-4 unchanged, conv5 fine-tuned), in eval mode on CPU.
    trunk: VGG16Trunk
    #: Mean training loss of each step.
    step_losses: list = field(default_factory=list)
    #: Loss on a fixed set of evaluation tuples (mined with the initial network) before training.
    eval_loss_before: float = float("nan")
    #: The same loss after training.
    eval_loss_after: float = float("nan")
    #: Number of optimisation steps.
    n_steps: int = 0
    #: Wall-clock seconds of the training.
    seconds: float = 0.0
    #: Where the trunk was saved (by :func:`finetune_conv5_cached`), else None.
    path: Path | None = None
    config: FinetuneConfig = field(default_factory=FinetuneConfig)

    def summary(self) -> dict:
        """The numbers of the run (no timing), JSON-ready."""
        return {"n_steps": self.n_steps, "eval_loss_before": self.eval_loss_before,
                "eval_loss_after": self.eval_loss_after,
                "first_step_loss": self.step_losses[0] if self.step_losses else None,
                "last_step_loss": self.step_losses[-1] if self.step_losses else None,
                "config": asdict(self.config)}


def training_groups(ds, min_overlap: float = 0.5) -> np.ndarray | None:
    """Which held-out (training) images match, when the dataset records it, else None.

    The embedded default set ships ``manifest.csv`` (next to its ground truth). Two formats:

    * the paper-regime set (``scripts/make_paper_regime_dataset.py``): an ``object`` column (the
      pasted object, empty for a scene alone) and a ``scene`` column. Two training images
      *match* when they show the same object; two images of the same scene without an object
      are *unknown* (overlapping crops of one photo: used neither as positives nor as
      negatives); everything else does not match (the same scene with another object is a
      negative, as a distractor sharing the background is);
    * the first embedded set: a ``source`` column (the photo each training image was cut from)
      and ``region`` (the normalised box ``[x0, y0, x1, y1]`` it shows). Two training images
      match when they come from the same photo and their regions overlap by at least
      ``min_overlap`` of the smaller one; regions of one photo that overlap less (but not zero)
      are unknown; everything else does not match.

    A manifest with neither ``object`` nor ``source`` gives None (no labels), never a matrix
    without positives.

    Returns
    -------
    np.ndarray or None
        ``(n, n)`` int8 relation matrix (1 / 0 / -1, see
        :func:`relation_matrix`), used only to draw training pairs for the
        offline fine-tuning (notebook 07). The paper's benchmarks have no such labels: the
        fine-tuning then uses crops of one image as positives.
    """
    import csv

    gnd_path = ds.info.get("gnd_path") if hasattr(ds, "info") else None
    if not gnd_path:
        return None
    manifest = Path(gnd_path).with_name("manifest.csv")
    if not manifest.is_file():
        return None
    with open(manifest, newline="") as f:
        rows = {row["file"]: row for row in csv.DictReader(f) if row.get("file")}
    names = [Path(p).name for p in ds.train_images]
    if not names or not all(n in rows for n in names):
        return None
    first = rows[names[0]]
    if "object" in first:
        obj = [rows[n].get("object") or "" for n in names]
        scene = [rows[n].get("scene") or "" for n in names]
        o = np.array(obj, dtype=object)
        sc = np.array(scene, dtype=object)
        same_obj = (o[:, None] == o[None, :]) & (o[:, None] != "")
        same_bare_scene = (sc[:, None] == sc[None, :]) & (o[:, None] == "") & (o[None, :] == "")
        R = np.where(same_obj, 1, np.where(same_bare_scene, -1, 0)).astype(np.int8)
        np.fill_diagonal(R, -1)
        return R
    if "source" not in first:
        return None
    src = [rows[n].get("source") or n for n in names]
    boxes = []
    for n in names:
        try:
            b = json.loads(rows[n].get("region") or "null")
        except ValueError:
            b = None
        boxes.append(np.asarray(b if b else [0.0, 0.0, 1.0, 1.0], dtype=np.float64))
    k = len(names)
    R = np.zeros((k, k), np.int8)
    for i in range(k):
        for j in range(k):
            if i == j or src[i] != src[j]:
                continue
            a, b = boxes[i], boxes[j]
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
            ov = iw * ih / smaller if smaller > 0 else 0.0
            R[i, j] = 1 if ov >= min_overlap else (-1 if ov > 0 else 0)
    np.fill_diagonal(R, -1)
    return R


def relation_matrix(groups, n: int) -> np.ndarray | None:
    """``(n, n)`` int8 matrix of training-pair relations: 1 matching, 0 non-matching, -1 unknown
    (used for neither positives nor negatives); the diagonal is -1.

    ``groups`` is None (every pair non-matching), ``n`` group labels (same label = matching), or
    such a matrix already.
    """
    if groups is None:
        R = np.zeros((n, n), np.int8)
    else:
        g = np.asarray(groups, dtype=object)
        if g.ndim == 2:
            if g.shape != (n, n):
                raise ValueError(f"{n} training maps but a {g.shape} relation matrix")
            R = np.asarray(groups, dtype=np.int8).copy()
            if not np.isin(R, (-1, 0, 1)).all() or not (R == R.T).all():
                raise ValueError("the relation matrix must be symmetric with values -1, 0, 1")
        else:
            if len(g) != n:
                raise ValueError(f"{n} training maps but {len(g)} group labels")
            R = (g[:, None] == g[None, :]).astype(np.int8)
    np.fill_diagonal(R, -1)
    return R


class _Tuples:
    """Draws deterministic training tuples from pool4 maps."""

    def __init__(self, maps: list[torch.Tensor], groups, cfg: FinetuneConfig):
        self.maps, self.cfg = maps, cfg
        self.rel = relation_matrix(groups, len(maps))

    def positive_source(self, i: int, rng) -> tuple[int, float]:
        """(image index, minimal side fraction of the window) of anchor ``i``'s positive."""
        same = np.flatnonzero(self.rel[i] == 1)
        if len(same):
            return int(rng.choice(same)), 1.0
        return i, self.cfg.crop_min

    def non_matching(self, i: int) -> np.ndarray:
        return np.flatnonzero(self.rel[i] == 0)

    def batch(self, anchors, negs, rng) -> tuple[torch.Tensor, list, list, list]:
        """All windows of one step, of one common size so that they run as one batch.

        Every window is placed at random, except a positive cut from the anchor's own map: it is
        shifted from the anchor's window by at most ``1 - crop_min`` of the window's size, so
        that the two overlap by at least ``crop_min`` of each side.

        Returns the ``(B, 512, ch, cw)`` batch and, for every pair, the rows of its two
        descriptors and its label (1 = matching).
        """
        cfg = self.cfg
        items = []  # (image index, row of the anchor it must overlap, or None)
        rows_a, rows_b, labels = [], [], []
        for i, ng in zip(anchors, negs):
            a = len(items)
            items.append((int(i), None))
            j, _ = self.positive_source(int(i), rng)
            items.append((j, a if j == int(i) else None))
            rows_a.append(a), rows_b.append(a + 1), labels.append(1.0)
            for j in ng:
                rows_a.append(a), rows_b.append(len(items)), labels.append(0.0)
                items.append((int(j), None))
        hmin = min(self.maps[k].shape[-2] for k, _ in items)
        wmin = min(self.maps[k].shape[-1] for k, _ in items)
        f = rng.uniform(cfg.crop_min, 1.0)
        ch = max(1, min(cfg.max_cells, int(np.ceil(hmin * f))))
        cw = max(1, min(cfg.max_cells, int(np.ceil(wmin * f))))
        sy, sx = int((1 - cfg.crop_min) * ch), int((1 - cfg.crop_min) * cw)
        crops, pos = [], []
        for k, near in items:
            x = self.maps[k]
            h, w = x.shape[-2:]
            if near is None:
                y0, x0 = rng.randint(0, h - ch + 1), rng.randint(0, w - cw + 1)
            else:
                ya, xa = pos[near]
                y0 = int(np.clip(ya + rng.randint(-sy, sy + 1), 0, h - ch))
                x0 = int(np.clip(xa + rng.randint(-sx, sx + 1), 0, w - cw))
            pos.append((y0, x0))
            crops.append(x[..., y0:y0 + ch, x0:x0 + cw])
        return torch.cat(crops), rows_a, rows_b, labels


def _descriptors(block: nn.Sequential, maps, p: float, max_cells: int) -> torch.Tensor:
    """GeM + L2 descriptors of (centre-cropped to max_cells) maps, without gradients."""
    out = []
    with torch.no_grad():
        for x in maps:
            h, w = x.shape[-2:]
            ch, cw = min(h, max_cells), min(w, max_cells)
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            d = gem(block(x[..., y0:y0 + ch, x0:x0 + cw]), p)
            out.append(nn.functional.normalize(d, dim=1))
    return torch.cat(out)


def _mine(desc: torch.Tensor, tuples: _Tuples, anchors, k: int) -> list[np.ndarray]:
    sims = desc @ desc.T
    res = []
    for i in anchors:
        cand = tuples.non_matching(int(i))
        order = np.argsort(-sims[int(i), cand].numpy(), kind="stable")
        res.append(cand[order[:k]])
    return res


def _tuple_loss(block, tuples: _Tuples, anchors, negs, rng, cfg: FinetuneConfig) -> torch.Tensor:
    x, ra, rb, labels = tuples.batch(anchors, negs, rng)
    d = nn.functional.normalize(gem(block(x), cfg.gem_p), dim=1)
    return contrastive_loss(d[ra], d[rb], torch.tensor(labels), cfg.margin)


def finetune_conv5(train_conv4: Sequence[ImageFeatures], base_weights="caffe-onnx", groups=None,
                   config: FinetuneConfig | None = None, progress: bool = True) -> FinetuneResult:
    """Fine-tune VGG16's conv5 block with a siamese contrastive loss on training pool4 maps.

    Training tuples (Radenovic et al., ECCV 2016 / TPAMI 2018, adapted to a small, unlabelled
    training split): an *anchor* is a random window of a training image's pool4 map; its
    *positive* is another random window of the same map (overlapping it; a crop of the image,
    seen through conv1-4) or, when ``groups`` labels the training images, a window of another
    image of the same group; its *negatives* are the ``n_negatives`` other training images most
    similar to it under the current network (mined at the start of every epoch). The
    descriptor is GeM (p = 3) of the conv5 output, L2-normalised.

    Only the training split is used: never pass database or query images here (the paper learns
    every parameter on held-out data, Sec. 5.1).

    Parameters
    ----------
    train_conv4 : sequence of ImageFeatures
        The training images' ``"conv4_3"`` (= pool4) maps, e.g. from the feature cache.
    base_weights : str, Path or VGG16Trunk
        The trunk to start from (default: the ImageNet VGG16 the paper uses).
    groups : sequence of hashable or (n, n) array, optional
        Group label of each training image (images of one group match), or a relation matrix
        (1 matching, 0 non-matching, -1 unknown: used for neither, see :func:`relation_matrix`).
    config : FinetuneConfig, optional
    progress : bool
        Show a progress bar.

    Returns
    -------
    FinetuneResult
        With the fine-tuned trunk and the losses.
    """
    cfg = config or FinetuneConfig()
    if len(train_conv4) < cfg.n_negatives + 2:
        raise ValueError(f"need at least {cfg.n_negatives + 2} training images, got {len(train_conv4)}")
    for lay in cfg.train_layers:
        if lay not in ("conv5_1", "conv5_2", "conv5_3"):
            raise ValueError(f"train_layers may only name conv5_1, conv5_2, conv5_3, not {lay!r}")
    base = base_weights if isinstance(base_weights, VGG16Trunk) else load_vgg16_trunk(base_weights, device="cpu")
    trunk = copy.deepcopy(base).cpu()
    trunk.requires_grad_(False)
    block = nn.Sequential(*list(trunk.features)[_CONV5_SLICE])  # shares the trunk's modules
    params = []
    for lay in cfg.train_layers:
        conv = trunk.features[TV_CONV_INDEX[lay]]
        conv.requires_grad_(True)
        params += list(conv.parameters())
    maps = []
    for f in train_conv4:
        if f.fmap.ndim != 3 or f.fmap.shape[2] != 512:
            raise ValueError(f"{f.name}: expected a (h, w, 512) conv4_3 map, got {f.fmap.shape}")
        maps.append(_to_tensor(f).float())
    tuples = _Tuples(maps, groups, cfg)
    n = len(maps)
    torch.manual_seed(cfg.seed)
    rng = np.random.RandomState(cfg.seed)

    # fixed evaluation tuples, mined with the initial network
    eval_rng = np.random.RandomState(cfg.seed + 1)
    eval_anchors = np.arange(n)
    block.eval()
    desc0 = _descriptors(block, maps, cfg.gem_p, cfg.max_cells)
    eval_negs = _mine(desc0, tuples, eval_anchors, cfg.n_negatives)
    eval_state = eval_rng.get_state()

    def eval_loss() -> float:
        r = np.random.RandomState()
        r.set_state(eval_state)
        with torch.no_grad():
            return float(_tuple_loss(block, tuples, eval_anchors, eval_negs, r, cfg))

    before = eval_loss()
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = int(np.ceil(n / cfg.anchors_per_step))
    from tqdm.auto import tqdm

    losses = []
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc="fine-tuning conv5", disable=not progress)
    try:
        for _ in range(cfg.epochs):
            desc = _descriptors(block, maps, cfg.gem_p, cfg.max_cells) if losses else desc0
            order = rng.permutation(n)
            for s in range(steps_per_epoch):
                anchors = order[s * cfg.anchors_per_step:(s + 1) * cfg.anchors_per_step]
                negs = _mine(desc, tuples, anchors, cfg.n_negatives)
                opt.zero_grad(set_to_none=True)
                loss = _tuple_loss(block, tuples, anchors, negs, rng, cfg)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    after = eval_loss()
    trunk.requires_grad_(False).eval()
    trunk.weights_id = f"finetuned-conv5-{cfg.key()}"
    return FinetuneResult(trunk=trunk, step_losses=losses, eval_loss_before=before,
                          eval_loss_after=after, n_steps=len(losses), seconds=seconds, config=cfg)


def _maps_key(maps: Sequence[ImageFeatures], groups) -> str:
    h = hashlib.sha1()
    for f in maps:
        a = np.ascontiguousarray(f.fmap, dtype=np.float32)
        h.update(str(a.shape).encode())
        h.update(hashlib.sha1(a.tobytes()).digest())
    if groups is not None:
        h.update(json.dumps(np.asarray(groups, dtype=object).tolist(), default=str).encode())
    return h.hexdigest()[:12]


def finetune_conv5_cached(train_conv4: Sequence[ImageFeatures], out_dir=None, base_weights="caffe-onnx",
                          groups=None, config: FinetuneConfig | None = None, progress: bool = True,
                          force: bool = False) -> FinetuneResult:
    """:func:`finetune_conv5`, saving the trunk (and the run's numbers) so that a second call with
    the same training maps and settings loads it instead of training again.

    Files: ``<out_dir>/finetuned-conv5-<data key>-<config key>.pt`` (a trunk state dict usable as
    ``weights=``) and the same name with ``.json`` (losses, settings, training time).
    ``out_dir`` defaults to :func:`default_weights_dir`.
    """
    cfg = config or FinetuneConfig()
    if not isinstance(base_weights, (str, os.PathLike)):
        raise TypeError("finetune_conv5_cached needs base_weights as a name or path (it is part of the cache key)")
    from ..features.backbone import weights_identity

    out_dir = Path(out_dir) if out_dir is not None else default_weights_dir()
    stem = f"finetuned-conv5-{weights_identity(base_weights)[:24]}-{_maps_key(train_conv4, groups)}-{cfg.key()}"
    pt, js = out_dir / f"{stem}.pt", out_dir / f"{stem}.json"
    if pt.is_file() and js.is_file() and not force:
        info = json.loads(js.read_text())
        trunk = load_vgg16_trunk(pt, device="cpu")
        return FinetuneResult(trunk=trunk, step_losses=info["step_losses"],
                              eval_loss_before=info["eval_loss_before"], eval_loss_after=info["eval_loss_after"],
                              n_steps=info["n_steps"], seconds=info["seconds"], path=pt, config=cfg)
    res = finetune_conv5(train_conv4, base_weights, groups, cfg, progress)
    save_trunk(res.trunk, pt)
    js.write_text(json.dumps({"step_losses": res.step_losses, "eval_loss_before": res.eval_loss_before,
                              "eval_loss_after": res.eval_loss_after, "n_steps": res.n_steps,
                              "seconds": res.seconds, "config": asdict(cfg)}, indent=1, default=list))
    res.path = pt
    return res


# ----------------------------------------------------------------------------------------------
# what fine-tuning does to the masks
# ----------------------------------------------------------------------------------------------
def mask_change(before: Sequence[ImageFeatures], after: Sequence[ImageFeatures], mask: str = "max") -> dict:
    """Compare a mask (paper Sec. 3.2) computed on two trunks' maps of the same images.

    Returns
    -------
    dict
        ``kept_before`` / ``kept_after``: mean fraction of locations the mask keeps;
        ``iou``: mean intersection-over-union of the two masks; ``n_images``.
    """
    from ..method.masks import compute_mask

    if len(before) != len(after):
        raise ValueError(f"{len(before)} maps before but {len(after)} after")
    kb, ka, ious = [], [], []
    for fb, fa in zip(before, after):
        if fb.fmap.shape[:2] != fa.fmap.shape[:2]:
            raise ValueError(f"{fb.name}: map sizes differ ({fb.fmap.shape[:2]} vs {fa.fmap.shape[:2]})")
        mb, ma = compute_mask(mask, fb), compute_mask(mask, fa)
        kb.append(mb.mean()), ka.append(ma.mean())
        union = np.logical_or(mb, ma).sum()
        ious.append(np.logical_and(mb, ma).sum() / union if union else 1.0)
    return {"kept_before": float(np.mean(kb)), "kept_after": float(np.mean(ka)),
            "iou": float(np.mean(ious)), "n_images": len(before)}
