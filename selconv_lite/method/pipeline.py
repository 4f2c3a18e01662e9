"""The whole framework of Sec. 4: mask -> PCA+L2 -> embedding -> aggregation -> post-processing.

:class:`SelectiveConvPipeline` is fitted on the feature maps of a held-out set (Sec. 5.1) and
turns feature maps into final ``D``-dimensional float32 vectors, compared by inner product.
It reproduces the authors' ``main.m`` end to end (golden files ``i_pipeline_*``):

offline (``fit``, on the held-out images)
    1. mask every map (``"max"``, ``"sum"``, ``"sift"`` or ``"none"``), gather the selected local
       features (a seeded sample of at most ``max_train_features`` if there are more);
    2. PCA to ``d`` + L2 (Sec. 4.1);
    3. learn the embedding: codebook (k-means / GMM, seeded) and, for T-emb / F-FAemb, the mean
       and the clamped whitening;
    4. encode every held-out image (steps below up to the first L2) and learn the rotation
       normalisation on those vectors.

online (``transform``, per image)
    mask -> local features -> PCA+L2 -> embed each local feature -> (L2 of each embedded
    vector, for democratic pooling) -> aggregate -> L2 -> rotate ``P'(v - Xm)`` -> drop the
    first ``truncate`` components -> power-law ``alpha`` -> L2. Each step is the ``transform``
    of the fitted estimator (:class:`~selconv_lite.method.embeddings.PCAL2`, the embedding,
    :class:`~selconv_lite.method.postprocess.RotationNormalization`),
    :func:`~selconv_lite.method.aggregation.aggregate` and
    :func:`~selconv_lite.method.postprocess.power_law`, in the online precision (float32 by
    default: the learned arrays are cast once, after ``fit``).

As in the authors' code, the embedded vectors are L2-normalised one by one before democratic
pooling (``'tembsink'`` and ``'faemb'``), and not before sum / average pooling (``'temb'``,
``'vlad'``, ``'fv'``).

Presets: :meth:`SelectiveConvPipeline.from_preset` (Table 4, ``D`` = 512 ... 8064, T-emb +
democratic), :meth:`SelectiveConvPipeline.from_table2` (Table 2, ``D`` = 4224 for each
embedding) and :meth:`SelectiveConvPipeline.for_dimension` (any reachable ``D``).
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .aggregation import AGGREGATIONS, aggregate, democratic_weights
from .base import as_images
from .embeddings import PCAL2, Embedding, embedding_class, make_embedding
from .masks import MASKS, apply_mask, compute_mask
from .postprocess import RotationNormalization, power_law
from ..core.utils import l2_normalize, sample_indices

__all__ = ["SelectiveConvPipeline", "TABLE2", "TABLE4", "ZeroFeatureMapWarning", "embedding_dim",
           "default_truncate"]

#: Table 4: final dimension D -> (PCA d, |C|) for M + T-emb + democratic.
TABLE4 = {512: (32, 20), 1024: (64, 18), 2048: (64, 34), 4096: (64, 66), 8064: (128, 64)}

#: Table 2: embedding -> (PCA d, |C|), each giving D = 4224.
TABLE2 = {"fv": (48, 44), "vlad": (64, 66), "temb": (64, 68), "ffaemb": (32, 10)}


class ZeroFeatureMapWarning(UserWarning):
    """A feature map is all zero: its vector carries no information about the image.

    Happens with SIFT descriptors of an image in which no keypoint was detected (one zero
    descriptor stands in, see :func:`selconv_lite.experiments.splits.sift_features`) and with
    conv. maps of blank images."""


def embedding_dim(embedding, d, n_centroids):
    """Dimension of the embedded (and aggregated) vector before truncation
    (:meth:`Embedding.output_dim <selconv_lite.method.embeddings.Embedding.output_dim>`).

    ``fv``: ``2 d |C|``; ``vlad`` and ``temb``: ``d |C|``; ``ffaemb``: ``|C| d (d+1) / 2``.
    """
    return embedding_class(embedding).output_dim(d, n_centroids)


def default_truncate(embedding, d):
    """Components dropped after the rotation (Sec. 5.2.1): 128 for T-emb, ``d(d+1)`` for
    F-FAemb, none for FV and VLAD
    (:meth:`Embedding.default_truncate <selconv_lite.method.embeddings.Embedding.default_truncate>`)."""
    return embedding_class(embedding).default_truncate(d)


class SelectiveConvPipeline(TransformerMixin, BaseEstimator):
    """Selective deep conv. features: the paper's full framework (Sec. 3-4, Fig. pipeline).

    Parameters
    ----------
    mask : {"max", "sum", "sift", "none"}, default "max"
        M_MAX (Eq. 2), M_SUM (Eq. 3), M_SIFT (Eq. 1) or no mask.
    embedding : {"temb", "ffaemb", "vlad", "fv"} or an embedding estimator, default "temb"
        phi_Delta (Eq. 6), phi_F-FAemb (Eq. 7), phi_VLAD (Eq. 5), phi_FV (Eq. 4). An estimator
        instance (:class:`~selconv_lite.method.embeddings.TriangulationEmbedding`, ...) is used as is
        if already fitted (e.g. built with ``from_params`` from stored parameters), else cloned
        and fitted; ``n_centroids`` is then taken from it. The names are the keys of
        :data:`~selconv_lite.method.embeddings.EMBEDDINGS`.
    aggregation : {"democratic", "sum", "average", "max"}, default "democratic"
        psi_d, psi_s, psi_a or max pooling (Sec. 4.3).
    d : int, default 64
        PCA dimension of the local features (Sec. 4.1).
    n_centroids : int, default 18
        ``|C|``: codebook size / GMM size / number of anchors (Tables 2 and 4).
    alpha : float, default 0.5
        Power-law exponent (Sec. 4.4; the paper fixes 0.5).
    truncate : int or None, default None
        Components dropped after the rotation; ``None`` = 128 for T-emb, ``d(d+1)`` for
        F-FAemb, 0 otherwise.
    random_state : int, default 0
        Seed of every random choice (samples, k-means, GMM).
    sift_radius : int, default 1
        SIFT-mask neighbourhood (1 = the authors' 3x3, 0 = the paper's Eq. 1).
    max_train_features : int or None, default 200000
        PCA and the codebook are learned on a seeded sample of at most this many masked
        local features of the held-out set (``None`` = all, as the authors).
    max_whiten_features : int or None, default 50000
        The T-emb / F-FAemb mean and whitening are learned on a seeded sample of at most this
        many of them (cost ``n D^2``; ``None`` = all).
    rn_components : int, default 1024
        PCA components of the rotation normalisation (``learn_rn.m``).
    eig_clamp : int or None, default None
        Smallest whitening eigenvalues raised to the next one; ``None`` = 32 (T-emb) / 128
        (F-FAemb), the authors' values.
    dtype : {"float32", "float64"}, default "float32"
        Precision of the online stage (fitting is always float64). float32 halves the time
        of the dominant products; float64 reproduces the authors' f64 runs to ~1e-14.
    embedding_params : dict or None
        Extra parameters of the embedding estimator, e.g. ``{"centroids": C}`` for a fixed
        codebook, ``{"mu": 1e-2}`` for F-FAemb.
    pca : PCAL2 or None, default None
        ``None`` learns PCA+L2 with ``d`` components; a fitted :class:`PCAL2` is used as is
        (``d`` is then taken from it), an unfitted one is cloned and fitted.

    Notes
    -----
    ``alpha`` is only used online, so it can be changed with ``set_params(alpha=...)`` after
    ``fit`` (the power-law sweep of Fig. 3 without refitting).

    ``fit`` and ``transform`` take a list (any iterable) of
    :class:`~selconv_lite.core.types.ImageFeatures`; ``transform`` also one of them. Raw
    ``(H, W, K)`` maps, a 4-D array of them, or a 2-D array ``(n, K)`` of single-location maps
    (one local feature each) are read by :func:`~selconv_lite.method.base.as_images`; the 2-D
    form is checked as scikit-learn checks its inputs, and is how scikit-learn's estimator checks
    exercise the pipeline.

    Attributes
    ----------
    pca_ : PCAL2
    embedding_ : the fitted embedding estimator
    rotation_ : RotationNormalization
    train_vectors_ : ndarray ``(n_train, D_emb)``
        The L2-normalised aggregated held-out vectors the rotation was learned on.
    truncate_ : int
    output_dim_ : int
        ``D`` of the final vectors.
    n_train_features_ : int
        Number of masked local features in the held-out set.
    n_features_in_ : int
        ``K``, the depth of the feature maps.
    """

    def __init__(self, mask="max", embedding="temb", aggregation="democratic", d=64, n_centroids=18,
                 alpha=0.5, truncate=None, random_state=0, sift_radius=1,
                 max_train_features=200_000, max_whiten_features=50_000, rn_components=1024,
                 eig_clamp=None, dtype="float32", embedding_params=None, pca=None):
        self.pca = pca
        self.mask = mask
        self.embedding = embedding
        self.aggregation = aggregation
        self.d = d
        self.n_centroids = n_centroids
        self.alpha = alpha
        self.truncate = truncate
        self.random_state = random_state
        self.sift_radius = sift_radius
        self.max_train_features = max_train_features
        self.max_whiten_features = max_whiten_features
        self.rn_components = rn_components
        self.eig_clamp = eig_clamp
        self.dtype = dtype
        self.embedding_params = embedding_params

    # ------------------------------------------------------------------------------ presets
    @classmethod
    def from_preset(cls, D=1024, mask="max", **kwargs):
        """Table 4: ``M_mask + phi_Delta + psi_d`` with the ``(d, |C|)`` of the paper for ``D``.

        ``D`` in 512, 1024, 2048, 4096, 8064 (``d |C| - 128 = D``).
        """
        D = int(D)
        if D not in TABLE4:
            raise ValueError(f"Table 4 has no preset for D={D} (it has {sorted(TABLE4)}); use "
                             "SelectiveConvPipeline.for_dimension(D, d=...) for another D")
        d, k = TABLE4[D]
        return cls(mask=mask, embedding="temb", aggregation="democratic", d=d, n_centroids=k,
                   **kwargs)

    @classmethod
    def from_table2(cls, embedding="temb", mask="max", aggregation="democratic", **kwargs):
        """Table 2: the ``(d, |C|)`` that give ``D = 4224`` for each embedding."""
        e = str(embedding).lower()
        if e not in TABLE2:
            raise ValueError(f"Table 2 has no row for {embedding!r}; choose one of {sorted(TABLE2)}")
        d, k = TABLE2[e]
        return cls(mask=mask, embedding=e, aggregation=aggregation, d=d, n_centroids=k, **kwargs)

    @classmethod
    def for_dimension(cls, D, d=64, embedding="temb", mask="max", **kwargs):
        """The pipeline with final dimension ``D`` for a given ``d`` (``|C|`` solved for).

        ``temb``: ``d |C| - 128 = D``; ``vlad``: ``d |C| = D``; ``fv``: ``2 d |C| = D``;
        ``ffaemb``: ``(|C| - 2) d (d+1) / 2 = D``
        (:meth:`Embedding.n_centroids_for <selconv_lite.method.embeddings.Embedding.n_centroids_for>`).

        Raises
        ------
        ValueError
            If ``D`` cannot be reached with this ``d`` (the division is not exact).
        """
        cls_ = embedding_class(embedding)
        return cls(mask=mask, embedding=cls_.name, d=int(d), n_centroids=cls_.n_centroids_for(D, d),
                   **kwargs)

    def expected_dim(self):
        """The final dimension ``D`` this configuration produces (without fitting)."""
        De = self.embedded_dim()
        t = self._truncate()
        if not 0 <= t < De:
            raise ValueError(f"truncate={t} must be in [0, {De}) for {self._emb_name()} with "
                             f"d={self._d()}, |C|={self._k()}")
        return De - t

    def embedded_dim(self):
        """Dimension of the embedded (and aggregated) vectors, before the truncation."""
        return self._emb_class().output_dim(self._d(), self._k())

    # ------------------------------------------------------------------------------ helpers
    def _emb_class(self):
        return embedding_class(self.embedding)

    def _emb_name(self):
        return self._emb_class().name

    def _d(self):
        if isinstance(self.pca, PCAL2):
            if hasattr(self.pca, "components_"):
                return self.pca.components_.shape[0]
            return int(self.pca.d)
        return int(self.d)

    def _k(self):
        e = self.embedding
        if not isinstance(e, Embedding):
            return int(self.n_centroids)
        if hasattr(e, "embed_dim_"):  # fitted: the size of its codebook
            return e.embed_dim_ // e.block_dim(e.n_features_in_)
        return int(e.n_centroids)

    def _truncate(self):
        if self.truncate is None:
            return default_truncate(self._emb_name(), self._d())
        return int(self.truncate)

    def _validate(self):
        if str(self.mask).lower() not in MASKS + ("sum50",):
            raise ValueError(f"unknown mask {self.mask!r}; choose one of {MASKS}")
        self._emb_class()  # a known embedding
        if str(self.aggregation).lower() not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; choose one of "
                             f"{AGGREGATIONS}")
        if not 0 <= float(self.alpha) <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.dtype not in ("float32", "float64", np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        self.expected_dim()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the final vectors are float32
        return tags

    def _mask_of(self, im):
        name = getattr(im, "name", "") or ""
        m = compute_mask(self.mask, im, radius=self.sift_radius)  # checks shape and NaN
        if not np.any(im.fmap):
            warnings.warn(f"feature map of image {name!r} (shape {tuple(np.shape(im.fmap))}) is all "
                          "zero: no local feature responds (for SIFT descriptors: no keypoint was "
                          "detected in the image), so its vector is the same as for any other "
                          "all-zero map and carries no information about the image",
                          ZeroFeatureMapWarning, stacklevel=3)
        return m

    # ------------------------------------------------------------------------------ fit
    def fit(self, images, y=None):
        """Learn every parameter on held-out feature maps.

        Parameters
        ----------
        images : list of :class:`selconv_lite.core.types.ImageFeatures`
            The held-out learning set (e.g. Paris6k for Oxford5k, Sec. 5.1); at least 2 images.
        """
        self._validate()
        images = as_images(self, images, reset=True)
        if len(images) < 2:
            raise ValueError(f"fit needs at least 2 held-out images, got n_samples = {len(images)}")
        K = images[0].fmap.shape[2] if np.ndim(images[0].fmap) == 3 else None
        masks = []
        for im in images:
            if np.ndim(im.fmap) != 3 or im.fmap.shape[2] != K:
                raise ValueError(f"feature map of image {im.name!r} has shape "
                                 f"{np.shape(im.fmap)}; all maps must be (H, W, {K})")
            masks.append(self._mask_of(im))
        self.n_features_in_ = K
        counts = np.array([int(m.sum()) for m in masks])
        N = int(counts.sum())
        self._check_enough_features(N)
        idx = sample_indices(N, self.max_train_features, self.random_state)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        X = np.empty((idx.shape[0], K), dtype=np.float32)
        pos = 0
        for i, im in enumerate(images):
            lo, hi = np.searchsorted(idx, [bounds[i], bounds[i + 1]])
            if hi > lo:
                local = apply_mask(im.fmap, masks[i], im.name)
                X[pos:pos + hi - lo] = local[idx[lo:hi] - bounds[i]]
                pos += hi - lo
        d = self._d()
        if d > K:
            raise ValueError(f"PCA d={d} exceeds the feature-map depth K={K} (n_features = {K})")
        if isinstance(self.pca, PCAL2) and hasattr(self.pca, "components_"):  # given fitted
            self.pca_ = self.pca
            if self.pca_.n_features_in_ != K:
                raise ValueError(f"the given PCA expects depth {self.pca_.n_features_in_}, maps "
                                 f"have K={K}")
        else:
            if X.shape[0] < d:
                raise ValueError(f"the held-out set has {X.shape[0]} masked local features, "
                                 f"fewer than the PCA dimension d={d}")
            pca = clone(self.pca) if isinstance(self.pca, PCAL2) else PCAL2(d=d)
            self.pca_ = pca.fit(X)
        Xp = self.pca_.transform(X.astype(np.float64))  # the embedding is learned in float64
        del X
        self.n_train_features_ = N
        self.truncate_ = self._truncate()
        self.embedding_ = self._fit_embedding(Xp, d)
        del Xp
        return self._fit_rest(images, masks)

    def _check_enough_features(self, N):
        """Refuse, before any fitting, a held-out set too small for the embedding's whitening.

        The whitening of a ``D``-dim embedding (T-emb, F-FAemb; Sec. 4.2) raises the
        ``eig_clamp`` smallest eigenvalues of a covariance learned on ``n`` centred samples
        (rank <= n - 1), so it needs ``n >= D - eig_clamp + 1`` local features, e.g. 8161 for
        the D = 8064 preset of Table 4.
        """
        cls = self._emb_class()
        if not isinstance(self.embedding, str) or not getattr(cls, "whitened", False):
            return
        params = dict(self.embedding_params or {})
        clamp = self.eig_clamp if self.eig_clamp is not None else params.get("eig_clamp")
        if clamp is None:
            clamp = inspect.signature(cls).parameters["eig_clamp"].default
        if N < max(self._d(), int(self.n_centroids)):
            return  # the PCA / codebook checks of fit report this case in their own words
        n = N if self.max_whiten_features is None else min(N, int(self.max_whiten_features))
        De = self.embedded_dim()
        need = De - int(clamp) + 1
        if n < need:
            raise ValueError(
                f"the held-out set has {N} masked local features ({n} used for the whitening); the "
                f"{cls.name} whitening of D={De} dimensions needs at least {need} (D - eig_clamp + 1). "
                "Use more held-out images, a smaller D (e.g. from_preset(D=512)), or raise "
                "max_whiten_features / eig_clamp")

    def has_enough_features(self, images):
        """Whether the held-out maps ``images`` have the masked local features :meth:`fit` needs.

        The same rule :meth:`fit` applies before fitting anything -- the T-emb / F-FAemb
        whitening of ``D`` dimensions needs ``D - eig_clamp + 1`` features (of at most
        ``max_whiten_features``) -- plus at least the PCA ``d`` and ``|C|`` features. The full
        evaluation skips a configuration this refuses (Table 6, notebook 05's supported ``D``).

        Returns
        -------
        (bool, str)
            ``(True, "")``, or ``(False, the reason)``.
        """
        N = sum(int(compute_mask(self.mask, im, radius=self.sift_radius).sum()) for im in images)
        if N < max(self._d(), self._k()):
            return False, (f"the held-out set has {N} masked local features, fewer than the PCA "
                           f"dimension d={self._d()} or the |C|={self._k()} codewords")
        try:
            self._check_enough_features(N)
        except ValueError as e:
            return False, str(e)
        return True, ""

    def _fit_embedding(self, Xp, d):
        """The embedding estimator fitted on the PCA-reduced held-out local features ``Xp``."""
        if isinstance(self.embedding, Embedding):
            try:
                check_is_fitted(self.embedding)
                return self.embedding
            except NotFittedError:
                return clone(self.embedding).fit(Xp)
        cls = self._emb_class()
        names = inspect.signature(cls).parameters
        params = dict(self.embedding_params or {})
        params.setdefault("codebook_max_samples", self.max_train_features)
        if cls.whitened:
            params.setdefault("max_samples", self.max_whiten_features)
        if self.eig_clamp is not None and "eig_clamp" in names:
            params.setdefault("eig_clamp", int(self.eig_clamp))
        n_codes = int(self.n_centroids)
        if Xp.shape[0] < n_codes and params.get(cls.codebook_param) is None:
            raise ValueError(f"the held-out set has {Xp.shape[0]} masked local features, fewer than "
                             f"|C|={n_codes}")
        return make_embedding(cls, d, n_codes, random_state=self.random_state, **params).fit(Xp)

    def _fit_rest(self, images, masks):
        if self.embedding_.n_features_in_ != self.pca_.components_.shape[0]:
            raise ValueError(f"the embedding expects d={self.embedding_.n_features_in_}, the PCA "
                             f"gives d={self.pca_.components_.shape[0]}")
        self._build_online()
        train = np.stack([self._aggregate_one(im.fmap, m, im.name) for im, m in zip(images, masks)])
        self.train_vectors_ = train
        self.rotation_ = RotationNormalization(n_components=self.rn_components,
                                               truncate=self.truncate_).fit(train)
        self._online_rotation = self.rotation_.astype(self._dt)
        self.output_dim_ = self.rotation_.rotation_.shape[0] - self.truncate_
        return self

    def _build_online(self):
        """Copies of the fitted PCA and embedding with their arrays in the online precision."""
        self._dt = np.dtype(self.dtype)
        self._online_pca = self.pca_.astype(self._dt)
        self._online_embedding = self.embedding_.astype(self._dt)

    # ------------------------------------------------------------------------------ online
    def _aggregate_one(self, fmap, mask, name="", details=None):
        """Mask -> PCA+L2 -> embedding -> aggregation -> L2 of one map (online precision)."""
        X = apply_mask(fmap, mask, name).astype(self._dt, copy=False)
        Xp = self._online_pca.transform(X)
        E = self._online_embedding.transform(Xp)
        agg = str(self.aggregation).lower()
        if agg == "democratic":  # the authors L2-normalise each vector before psi_d only
            E = l2_normalize(E, copy=False)
        y = l2_normalize(aggregate(E, agg)[None, :], copy=False)[0]
        if details is not None:
            w = democratic_weights(E) if agg == "democratic" else None
            details.update(local_pca=Xp, embedded=E, weights=w, aggregated=y)
        return y

    def _finish(self, Y):
        """Rotation, truncation, power-law and L2 of aggregated vectors ``(m, D_emb)`` at once
        (one product with ``P`` for the whole batch instead of one read of ``P`` per image)."""
        V = self._online_rotation.transform(np.atleast_2d(Y))
        return l2_normalize(power_law(V, float(self.alpha)), copy=False)

    def _check_fitted(self):
        check_is_fitted(self, "rotation_")

    def transform(self, images):
        """Final vectors ``(n, D)`` float32 of ``images`` (a list of ImageFeatures, or one).

        The parameters used online (``alpha``, ``mask``, ...) are checked here, as ``fit`` checks
        all of them: ``set_params`` only stores values (scikit-learn's contract), so a bad value
        set after ``fit`` is refused at the next ``transform`` with the same message.
        """
        self._check_fitted()
        self._validate()
        images = as_images(self, images, reset=False)
        out = np.empty((len(images), self.output_dim_), dtype=np.float32)
        batch = 64
        for s in range(0, len(images), batch):
            Y = []
            for im in images[s:s + batch]:
                self._check_depth(im)
                Y.append(self._aggregate_one(im.fmap, self._mask_of(im), im.name))
            out[s:s + len(Y)] = self._finish(np.stack(Y))
        return out

    def encode(self, image):
        """The final vector ``(D,)`` of one image (in the online precision)."""
        self._check_fitted()
        self._validate()
        self._check_depth(image)
        m = self._mask_of(image)
        return self._finish(self._aggregate_one(image.fmap, m, image.name))[0]

    def _check_depth(self, im):
        K = self.pca_.n_features_in_
        if np.ndim(im.fmap) != 3 or im.fmap.shape[2] != K:
            raise ValueError(f"feature map of image {getattr(im, 'name', '')!r} has shape "
                             f"{np.shape(im.fmap)}, the pipeline was fitted on depth K={K}")

    def explain(self, image):
        """Every intermediate result of the online stage for one image (for teaching).

        Returns a dict with ``mask`` ``(H, W)``, ``local`` ``(n, K)``, ``local_pca`` ``(n, d)``,
        ``embedded`` ``(n, D_emb)``, ``weights`` (democratic ``lambda`` or None),
        ``aggregated`` ``(D_emb,)``, ``rotated`` ``(D,)`` (after truncation) and ``final``
        ``(D,)``.
        """
        self._check_fitted()
        self._check_depth(image)
        m = self._mask_of(image)
        info = {"mask": m, "local": apply_mask(image.fmap, m, image.name)}
        y = self._aggregate_one(image.fmap, m, image.name, details=info)
        info["rotated"] = self._online_rotation.transform(y[None, :])[0]
        info["final"] = self._finish(y)[0]
        return info
