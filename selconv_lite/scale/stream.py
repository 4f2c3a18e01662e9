"""Streaming encoder: images -> final vectors in checksummed shards, without storing maps.

Once a :class:`~selconv_lite.method.pipeline.SelectiveConvPipeline` is fitted on the held-out
set (Sec. 5.1), every database image goes extract -> mask -> embed -> aggregate ->
post-process (Secs. 3-4) -> final ``D``-vector, and only that vector is kept: 4 ``D`` bytes per
image instead of a conv map (about 200 KB for pool5 at 1024 px). Vectors are written in shards
of ``shard_size`` images::

    out_dir/manifest.json        ids, paths, crops, pipeline identity, one sha256 per shard
    out_dir/shard_00000.npy      (shard_size, D) float32
    ...

The job is resumable: a shard whose file is present, of the right shape and with the recorded
sha256 is kept; a missing, truncated or altered shard is encoded again. A folder written by
another pipeline (other parameters, other learned weights, other extractor) is refused with
both identities in the message. Memory holds one image's maps and one shard of vectors at a
time, whatever the number of images.

``backend="torch"`` is the GPU path (issue 26): a DataLoader of worker processes decodes and
resizes the images into equal-size batches (:func:`selconv_lite.features.loader.iter_batches`),
the trunk runs on the batch in the extractor's ``precision``, and
:class:`~selconv_lite.scale.torch_encoder.TorchEncoder` masks, embeds, aggregates and
post-processes the maps on the same device, so only the vectors are copied back. Its vectors
equal the numpy path's within float32 rounding (tests/test_torch_encoder.py); the manifest
records the backend, so a folder is never filled by both.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.files import atomic_write, file_digest
from ..features.extraction import FeatureExtractor

__all__ = ["StreamEncoder", "StreamSummary", "ShardError", "IdentityMismatchError",
           "pipeline_identity", "extractor_config", "encode_images", "encode_images_torch",
           "iter_vectors_torch",
           "load_vectors", "MANIFEST", "FORMAT", "BACKENDS"]

#: Encoding back ends of :class:`StreamEncoder`.
BACKENDS = ("numpy", "torch")

MANIFEST = "manifest.json"
FORMAT = "selconv-vectors/1"


class ShardError(ValueError):
    """A shard is missing, truncated or does not match its recorded checksum."""


class IdentityMismatchError(ValueError):
    """A vector folder was written by another pipeline or extractor."""


# ---------------------------------------------------------------------------------- identity
def _hash_value(h, v):
    if isinstance(v, np.ndarray):
        h.update(f"ndarray{v.dtype.str}{v.shape}".encode())
        h.update(np.ascontiguousarray(v).tobytes())
    elif isinstance(v, (list, tuple)):
        h.update(f"{type(v).__name__}{len(v)}".encode())
        for x in v:
            _hash_value(h, x)
    elif isinstance(v, dict):
        for key in sorted(v, key=str):
            h.update(repr(key).encode())
            _hash_value(h, v[key])
    elif hasattr(v, "get_params"):  # an estimator: its class, parameters and fitted arrays
        h.update(type(v).__name__.encode())
        _hash_value(h, v.get_params(deep=False))
        _hash_value(h, {k: x for k, x in vars(v).items()
                        if k.endswith("_") and not k.startswith("_")})
    else:
        h.update(repr(v).encode())


def extractor_config(extractor: FeatureExtractor) -> dict:
    """The settings that determine an extractor's maps (enough to rebuild it elsewhere)."""
    cfg = {"weights": str(extractor.weights), "layers": list(extractor.layers),
           "max_dim": extractor.max_dim, "sift": extractor.sift,
           "convention": extractor.convention, "crop_scale": extractor.crop_scale}
    precision = getattr(extractor, "precision", "float32")
    if precision != "float32":  # changes the maps; float32 keeps the identities of old folders
        cfg["precision"] = precision
    return cfg


def pipeline_identity(pipeline, extractor: FeatureExtractor, layer="pool5", backend="numpy") -> dict:
    """Identity of (fitted pipeline, extractor, layer): what makes two vector sets comparable.

    Returns ``{"identity": sha256[:16], "params": ..., "fitted": sha256[:16],
    "weights": weights_id, "extractor": ...}``: ``params`` are the pipeline's parameters
    (``get_params``), ``fitted`` hashes every learned array (PCA, embedding, rotation), and
    ``weights`` identifies the backbone weights.
    """
    if not hasattr(pipeline, "output_dim_"):
        raise ValueError("the pipeline is not fitted: call fit(held_out) before streaming "
                         "(Sec. 5.1: parameters are learned on a held-out set)")
    params = {k: (repr(v) if not isinstance(v, (str, int, float, bool, type(None))) else v)
              for k, v in pipeline.get_params(deep=False).items()}
    h = hashlib.sha256()
    _hash_value(h, pipeline)
    fitted = h.hexdigest()[:16]
    cfg = extractor_config(extractor)
    weights = extractor.weights_id
    parts = [params, fitted, weights, cfg, layer] + ([] if backend == "numpy" else [backend])
    whole = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    out = {"identity": whole, "params": params, "fitted": fitted, "weights": weights,
           "extractor": cfg, "layer": layer, "dim": int(pipeline.output_dim_)}
    if backend != "numpy":
        out["backend"] = backend
    return out


# ---------------------------------------------------------------------------------- encoding
def encode_images(pipeline, extractor: FeatureExtractor, paths, crops=None, layer="pool5"):
    """Final vectors ``(n, D)`` float32 of ``paths``, one image's maps in memory at a time.

    The same function runs in the serial path and on every engine worker, so both give the
    same bits.
    """
    paths = list(paths)
    crops = [None] * len(paths) if crops is None else list(crops)
    out = np.empty((len(paths), int(pipeline.output_dim_)), np.float32)
    for i, (p, c) in enumerate(zip(paths, crops)):
        f = extractor.extract(p, crop=c, name=str(p))[layer]
        out[i] = pipeline.transform([f])[0]
        del f
    return out


def iter_vectors_torch(pipeline, extractor: FeatureExtractor, paths, crops=None, layer="pool5",
                       batch_size=32, num_workers=2, encoder=None):
    """Yield ``(indices, vectors (B, D) float32)`` for ``paths``, batch by batch (in no fixed
    order), on the extractor's device (the GPU path).

    Images are prepared by ``num_workers`` DataLoader workers in equal-size batches of at most
    ``batch_size`` (:func:`~selconv_lite.features.loader.iter_batches`; SIFT keypoints only for
    the SIFT mask), the trunk runs in ``extractor.precision`` and
    :class:`~selconv_lite.scale.torch_encoder.TorchEncoder` (``encoder``, built here when None)
    encodes the maps there; only the vectors are copied back.
    """
    from ..features.loader import iter_batches
    from .torch_encoder import TorchEncoder

    paths = list(paths)
    enc = TorchEncoder(pipeline, device=extractor.device) if encoder is None else encoder
    sift = enc.mask == "sift"
    for b in iter_batches(extractor, paths, crops, [str(p) for p in paths], batch_size,
                          num_workers, sift=sift):
        maps = extractor.run_trunk(b.x)[layer]
        v = enc.encode_maps(maps, b.keypoints if sift else None, b.image_hw, b.names)
        yield b.index, v.float().cpu().numpy()


def encode_images_torch(pipeline, extractor: FeatureExtractor, paths, crops=None, layer="pool5",
                        batch_size=32, num_workers=2, encoder=None):
    """Final vectors ``(n, D)`` float32 of ``paths`` in their order, by
    :func:`iter_vectors_torch` (the GPU path; same arguments)."""
    paths = list(paths)
    out = np.empty((len(paths), int(pipeline.output_dim_)), np.float32)
    for idx, v in iter_vectors_torch(pipeline, extractor, paths, crops, layer, batch_size,
                                     num_workers, encoder):
        out[idx] = v
    return out


def _shard_problem(out_dir: Path, rec, dim) -> str | None:
    """Why shard record ``rec`` cannot be used, or None if it is intact."""
    if rec is None:
        return "not written yet"
    f = out_dir / rec["file"]
    if not f.is_file():
        return f"{f} is missing"
    if file_digest(f) != rec["sha256"]:
        return f"{f} does not match its recorded sha256 (truncated or altered)"
    try:
        arr = np.load(f, mmap_mode="r")
    except ValueError as e:
        return f"{f} is not a readable .npy file ({e})"
    if arr.shape != (rec["count"], dim) or arr.dtype != np.float32:
        return f"{f} holds {arr.dtype}{arr.shape}, expected float32{(rec['count'], dim)}"
    return None


@dataclass
class StreamSummary:
    """What one :meth:`StreamEncoder.run` did."""

    out_dir: Path
    identity: str
    n_images: int
    n_shards: int
    encoded: list = field(default_factory=list)   # shard indices encoded now
    reused: list = field(default_factory=list)    # intact shards kept from an earlier run
    repaired: dict = field(default_factory=dict)  # shard index -> why it was encoded again


class StreamEncoder:
    """Encode a list of images into checksummed vector shards with a fitted pipeline.

    Parameters
    ----------
    pipeline : SelectiveConvPipeline
        Fitted on the held-out set (Sec. 5.1).
    extractor : FeatureExtractor
        Gives the maps of ``layer`` (``max_dim=1024`` in the paper).
    out_dir : path
        Folder of the manifest and the shards (created).
    shard_size : int, default 256
        Images per shard (the unit of resumption, and of work for an engine).
    layer : str, default "pool5"
    backend : {"numpy", "torch"}, default "numpy"
        ``"numpy"``: :func:`encode_images` (one image after the other, the pipeline's own
        ``transform``). ``"torch"``: :func:`encode_images_torch` on the extractor's device
        (build the extractor with ``device="cuda"`` and e.g. ``precision="bf16"`` for speed).
    batch_size, num_workers : int
        Only for ``backend="torch"``: most images per forward pass, DataLoader workers.

    Examples
    --------
    >>> enc = StreamEncoder(pipe, FeatureExtractor(max_dim=1024), "vectors/flickr100k")  # doctest: +SKIP
    >>> enc.run(paths)                       # interrupted? run again: intact shards are kept
    >>> ids, X = load_vectors("vectors/flickr100k")                                       # doctest: +SKIP
    """

    def __init__(self, pipeline, extractor: FeatureExtractor, out_dir, shard_size=256,
                 layer="pool5", backend="numpy", batch_size=32, num_workers=2):
        if int(shard_size) != shard_size or shard_size < 1:
            raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.batch_size, self.num_workers = batch_size, num_workers
        self._encoder = None
        if backend == "torch":
            from .torch_encoder import TorchEncoder

            self._encoder = TorchEncoder(pipeline, device=extractor.device)
        if layer not in extractor.layers:
            raise ValueError(f"layer {layer!r} is not extracted by {extractor!r}")
        self.pipeline = pipeline
        self.extractor = extractor
        self.out_dir = Path(out_dir)
        self.shard_size = int(shard_size)
        self.layer = layer
        self.info = pipeline_identity(pipeline, extractor, layer, backend)

    @property
    def identity(self) -> str:
        return self.info["identity"]

    def _manifest_for(self, ids, paths, crops):
        return {"format": FORMAT, "identity": self.identity, "identity_parts": self.info,
                "dim": self.info["dim"], "dtype": "float32", "shard_size": self.shard_size,
                "n": len(ids), "ids": ids, "paths": paths, "crops": crops, "shards": {}}

    def _open(self, ids, paths, crops):
        mf = self.out_dir / MANIFEST
        new = self._manifest_for(ids, paths, crops)
        if not mf.is_file():
            return new
        try:
            old = json.loads(mf.read_text())
        except (OSError, ValueError) as e:
            raise ShardError(f"{mf} is unreadable ({e}); delete the folder to start again") from e
        if old.get("format") != FORMAT:
            raise ShardError(f"{mf} has format {old.get('format')!r}, expected {FORMAT!r}")
        if old["identity"] != self.identity:
            o, n = old.get("identity_parts", {}), self.info
            diff = [k for k in ("params", "fitted", "weights", "extractor", "layer", "backend")
                    if o.get(k) != n.get(k)]
            raise IdentityMismatchError(
                f"{mf} holds vectors of pipeline {old['identity']}, this pipeline is "
                f"{self.identity} (they differ in: {', '.join(diff) or 'identity'}); vectors of "
                "two pipelines are not comparable: use another out_dir or delete this one")
        for key, want in (("ids", ids), ("paths", paths), ("crops", crops),
                          ("shard_size", self.shard_size)):
            if old.get(key) != want:
                raise ValueError(f"{mf} was written for other {key} than this run's; use another "
                                 "out_dir for another image list")
        new["shards"] = old.get("shards", {})
        return new

    def _save_manifest(self, man):
        data = json.dumps(man, indent=1).encode()
        with atomic_write(self.out_dir / MANIFEST) as fh:
            fh.write(data)

    def _store(self, man, s, vecs):
        name = f"shard_{s:05d}.npy"
        with atomic_write(self.out_dir / name) as fh:
            np.save(fh, np.ascontiguousarray(vecs, np.float32))
        man["shards"][str(s)] = {"file": name, "count": int(vecs.shape[0]),
                                 "sha256": file_digest(self.out_dir / name)}
        self._save_manifest(man)

    def _run_torch(self, man, plan, todo, paths, crops, summary):
        """Every shard of ``todo`` through ONE DataLoader (its workers start once per run, not
        once per shard); a shard is stored as soon as all its vectors are in."""
        rows = [i for s in todo for i in range(*plan[s])]
        shard_of = {i: s for s in todo for i in range(*plan[s])}
        vecs = {s: np.empty((plan[s][1] - plan[s][0], self.info["dim"]), np.float32) for s in todo}
        left = {s: plan[s][1] - plan[s][0] for s in todo}
        sub_crops = None if crops is None else [crops[i] for i in rows]
        for idx, v in iter_vectors_torch(self.pipeline, self.extractor, [paths[i] for i in rows],
                                         sub_crops, self.layer, self.batch_size, self.num_workers,
                                         self._encoder):
            for j, vec in zip(idx, v):
                g = rows[int(j)]
                s = shard_of[g]
                vecs[s][g - plan[s][0]] = vec
                left[s] -= 1
                if left[s] == 0:
                    self._store(man, s, vecs.pop(s))
                    summary.encoded.append(s)

    def plan(self, n):
        """Index ranges ``[(start, stop), ...]`` of the shards of ``n`` images."""
        return [(a, min(a + self.shard_size, n)) for a in range(0, n, self.shard_size)]

    def run(self, paths, ids=None, crops=None, engine=None) -> StreamSummary:
        """Encode every image whose shard is not already intact in ``out_dir``.

        Parameters
        ----------
        paths : sequence of path
        ids : sequence of str, optional
            Names stored in the manifest (default: the paths); must be unique.
        crops : sequence of (x1, y1, x2, y2) or None, optional
        engine : DaskEngine, optional
            Encode the shards on a cluster (:class:`selconv_lite.scale.engine.DaskEngine`);
            default: here, one shard after the other.
        """
        paths = [str(p) for p in paths]
        ids = list(paths) if ids is None else [str(i) for i in ids]
        if len(ids) != len(paths):
            raise ValueError(f"{len(ids)} ids for {len(paths)} paths")
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique")
        crops_l = None if crops is None else [None if c is None else [float(x) for x in c]
                                              for c in crops]
        if crops_l is not None and len(crops_l) != len(paths):
            raise ValueError(f"{len(crops_l)} crops for {len(paths)} paths")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        man = self._open(ids, paths, crops_l)
        plan = self.plan(len(paths))
        summary = StreamSummary(self.out_dir, self.identity, len(paths), len(plan))
        todo = []
        for s, _ in enumerate(plan):
            rec = man["shards"].get(str(s))
            why = _shard_problem(self.out_dir, rec, self.info["dim"])
            if why is None:
                summary.reused.append(s)
                continue
            if rec is not None:
                summary.repaired[s] = why
                man["shards"].pop(str(s))
            todo.append(s)
        self._save_manifest(man)

        def work(s):
            a, b = plan[s]
            return paths[a:b], (None if crops_l is None else crops_l[a:b])

        if engine is not None and self.backend != "numpy":
            raise ValueError("backend='torch' encodes in this process on the extractor's device; "
                             "run it with engine=None (one process per GPU)")
        if engine is None and self.backend == "torch":
            self._run_torch(man, plan, todo, paths, crops_l, summary)
        elif engine is None:
            for s in todo:
                p, c = work(s)
                self._store(man, s, encode_images(self.pipeline, self.extractor, p, c, self.layer))
                summary.encoded.append(s)
        else:
            for s, vecs in engine.encode_shards(self.pipeline, self.extractor,
                                                {s: work(s) for s in todo}, self.layer):
                self._store(man, s, vecs)
                summary.encoded.append(s)
        summary.encoded.sort()
        return summary


def load_vectors(out_dir, identity=None):
    """``(ids, vectors (N, D) float32)`` of a complete vector folder, every checksum verified.

    Parameters
    ----------
    identity : str, optional
        If given, the folder must hold vectors of this pipeline identity.

    Raises
    ------
    ShardError
        Missing manifest, or a shard missing / incomplete / altered (run the encoder again).
    IdentityMismatchError
        The folder holds another pipeline's vectors.
    """
    out_dir = Path(out_dir)
    mf = out_dir / MANIFEST
    if not mf.is_file():
        raise ShardError(f"{mf} not found: {out_dir} is not a vector folder")
    man = json.loads(mf.read_text())
    if identity is not None and man["identity"] != identity:
        raise IdentityMismatchError(f"{mf} holds vectors of pipeline {man['identity']}, expected "
                                    f"{identity}")
    n, size, dim = man["n"], man["shard_size"], man["dim"]
    out = np.empty((n, dim), np.float32)
    for s, a in enumerate(range(0, n, size)):
        rec = man["shards"].get(str(s))
        why = _shard_problem(out_dir, rec, dim)
        if why is not None:
            raise ShardError(f"shard {s} of {out_dir}: {why}; run StreamEncoder.run again to "
                             "encode it")
        out[a:a + rec["count"]] = np.load(out_dir / rec["file"])
    return list(man["ids"]), out
