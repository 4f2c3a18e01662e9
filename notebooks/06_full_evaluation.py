# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 06 — Full evaluation (paper §5: Tables 3, 5, 6, Figs. 5, 6)
#
# **What this notebook covers.** The paper's evaluation protocol (§5.1), written out and checked
# against the package, then its experiments end to end on one dataset:
#
# | paper | what | here |
# |---|---|---|
# | §5.1 | protocol: held-out learning, cropped queries, ranking, AP / mAP, query expansion | §1 |
# | Table 3 (§5.2.1) | masks × embedding/aggregation frameworks | §2 |
# | Table 6 (§5.3) | the framework at 512 / 1024 / 4096-D vs SPoC, MAC, R-MAC, CroW, GeM, ± query expansion | §3 |
# | Table 5 (§5.2.3) | image size | §4 |
# | Fig. 2a, Tables 3 and 5 at 512 / 724 / 1024 px | the paper's regime side by side (a measured record, checked at 1024 px) | §4b |
# | Fig. 5 (§5.2.4) | conv. layer | §5 |
# | Fig. 6 (§5.4) | online time per image vs R-MAC | §6 |
# | — | retrieval examples, Easy / Medium / Hard (revisited ground truth) | §3, §7 |
#
# By default it runs offline on the embedded dataset; with `dataset="oxford5k"`, `"paris6k"`,
# `"holidays"`, `"roxford5k"`, ... (data on disk, see `selconv_lite.data.download`) the same cells
# reproduce the paper's setting and print the **published numbers next to the measured ones**
# (stored in `selconv_lite.experiments.published` with their table reference).
#
# **Prerequisites.** Notebooks 02–05 (masks, embedding, aggregation, post-processing).
#
# **Run time on 2 CPU cores.** Run after notebooks 02 and 03, which fill the shared feature cache
# at 1024 px for the four layers used here, this notebook extracts no CNN features; the time goes
# to the fits and evaluations of the tables and figures. Run alone on an empty cache, it first
# extracts every split at those four layers. Table 5's 724-px row is read from a measured record
# (§4); with `max_dim = 512` the notebook extracts the set at 362 px instead. The series'
# measured times are in [docs/notebooks.md](../docs/notebooks.md) ("Measured times"); they were
# measured on the earlier embedded set and have not been re-measured on this one.
#
# ← [05 — Post-processing](05_postprocessing.ipynb) · [07 — Fine-tuned backbones](07_finetuned_backbones.ipynb) →
#
# **Protocol (§5.1).** Every parameter — PCA, codebooks, whitening, rotation — is learned on the
# dataset's *held-out* set, never on the test images: in the paper Paris6k for Oxford5k, Oxford5k
# for Paris6k and 5000 Flickr images for Holidays (paper §5.1); here the embedded set's own
# training split, other objects in other scenes. Queries are cropped by their boxes; in the
# embedded set, as in Oxford5k, a query is a database image cropped to the box of its object, and
# that image itself is junk for it. Database images are ranked by inner product with the query
# vector, and the quality of a ranking is the **average precision** with the junk images removed:
#
# $$
# \mathrm{AP} = \frac{1}{n_+} \sum_{k=1}^{n_f} \frac12\Big(\frac{k-1}{\mathrm{pos}_k - 1}
#   + \frac{k}{\mathrm{pos}_k}\Big), \qquad \frac{k-1}{\mathrm{pos}_k - 1} := 1 \text{ when } \mathrm{pos}_k = 1 ,
# $$
#
# where $\mathrm{pos}_k$ is the (1-based, junk-free) rank of the $k$-th positive found, $n_f$ the
# number of positives found and $n_+$ the number of positives (a positive never retrieved adds
# nothing). Each positive adds a recall step $1/n_+$ times the mean of the precision just before
# it, $(k-1)/(\mathrm{pos}_k - 1)$ (with $p_0 = 1$ at the top of the list), and just at it,
# $k/\mathrm{pos}_k$ — the trapezoidal rule of the authors' `compute_map.m`. **mAP** is its mean
# over the queries.

# %% tags=["parameters"]
dataset = "default"      # "default": the embedded offline set; "oxford5k", "paris6k", "holidays", "roxford5k", ... need the data on disk
weights = "caffe-onnx"   # VGG16 weights: "caffe-onnx" (offline ImageNet), "torchvision", or a state-dict path (e.g. a fine-tuned trunk, notebook 07)
layer = "pool5"          # conv layer of the local features (the paper: pool5)
max_dim = None           # max(W_I, H_I); None: the dataset's default (1024 px, the paper's size)
mask = "max"             # mask of the framework shown in the retrieval examples: "max", "sum", "sift", "none"
D = 1024                 # dimension of that framework (a Table 4 preset: 512, 1024, 2048, 4096, 8064)
alpha = 0.5              # power-law exponent (the paper fixes 0.5)
table3_D = 1024          # Table 3 dimension: 4224 as in the paper (its Table 2), 1024 scaled down (run time; the held-out set is small)
table3_masks = ["max", "sum", "sift", "none"]   # Table 3 columns
table6_ours = [[512, "sift"], [512, "sum"], [512, "max"], [1024, "sift"], [1024, "sum"], [1024, "max"], [4096, "max"]]  # (D, mask) rows of ours in Table 6
table6_baselines = ["SPoC", "MAC", "R-MAC", "CroW", "GeM"]  # baselines on the same feature maps
baseline_whitening = "auto"   # True / False / "auto" (whiten a baseline only if the held-out set has more images than its dimension)
qe_k = 5                 # average query expansion with the top qe_k results (the "+QE" column)
table5_sizes = None      # image sizes of Table 5; None: [the dataset's size x 724/1024, the dataset's size]
table5_masks = ["sum", "max"]
table5_D = 512
regimes_record = "measured/regimes_default.json"  # §4, §4b: measured record of 512 / 724 / 1024 px, relative to the notebooks folder
regimes_live = False     # §4b: True measures that record here (about an hour on 2 CPU cores from an empty cache; the cold extractions are most of it)
fig5_layers = ["pool5", "conv5_2", "conv5_1", "conv4_3"]  # layers of Fig. 5 (conv5_3 + 2x2 max-pool is pool5); each is cached (1024-px images: ~1.5 MB per conv5 map, ~6 MB per conv4 map)
fig5_D = 512
fig6_dims = [512, 1024]  # Fig. 6: online time per image for these D ...
fig6_masks = ["none", "sift", "sum", "max"]   # ... and masks, vs R-MAC
fig6_images = 60         # database images timed
fig6_repeats = 3         # each configuration timed this many times; the best run is kept
n_examples = 2           # retrieval examples: the best and the worst queries
max_train_images = None  # use at most this many held-out images (memory on the real benchmarks); None: all
seed = 0                 # seed of every random choice
cache_dir = None         # feature cache; None: the shared default (env SELCONV_CACHE or <repo>/cache)
output_dir = None        # JSON results and figures; None: env SELCONV_OUTPUT or <repo>/outputs

# %% tags=[]
import warnings

import matplotlib.pyplot as plt
import numpy as np

from selconv_lite.data import evaluation as ev
from selconv_lite.data.datasets import load_dataset
from selconv_lite.experiments import report, scoring, tables
from selconv_lite.experiments import published
from selconv_lite.experiments.report import count_claims
from selconv_lite.method.masks import SiftMaskFallbackWarning, compute_mask
from selconv_lite.method.pipeline import SelectiveConvPipeline
from selconv_lite.teaching import notebook_utils as nu
from selconv_lite.viz.ranked_lists import plot_query_results

# images without any SIFT keypoint fall back to all local features (paper Sec. 5.1)
warnings.filterwarnings("ignore", category=SiftMaskFallbackWarning)
print(nu.seed_everything(seed))
ds = load_dataset(dataset)
max_dim = max_dim or ds.default_max_dim
in_paper = published.paper_dataset(ds.name) is not None
rec = nu.NotebookRecord("06_full_evaluation", output_dir, params=dict(
    dataset=dataset, weights=str(weights), layer=layer, max_dim=max_dim, mask=mask, D=D, alpha=alpha,
    table3_D=table3_D, table3_masks=table3_masks, table6_ours=table6_ours, qe_k=qe_k,
    table5_sizes=table5_sizes, fig5_layers=fig5_layers, fig5_D=fig5_D, seed=seed))
print(ds.summary())
print("published numbers for this dataset:", "yes" if in_paper else "no (not one of the paper's benchmarks)")

# %% tags=["nbval-ignore-output"]
# one pass per image for every layer used below (pool4 = "conv4_3" is also what notebook 07 fine-tunes on)
layers_needed = list(dict.fromkeys([layer, *fig5_layers]))
F = nu.series_features(ds, layers=layers_needed, max_dim=max_dim, cache_dir=cache_dir, weights=weights,
                      max_train_images=max_train_images, seed=seed)
feats = F[layer]

# %% [markdown] tags=[]
# ## 1. The evaluation protocol, written out
#
# One configuration (the parameters' `mask`, `D`) through the whole protocol, step by step:
# **(1)** learn every parameter on the held-out split; **(2)** encode the queries — their feature
# maps were extracted from the query images *cropped to their boxes* (`split_features` crops
# before the network) — and the database; **(3)** rank the database by inner product;
# **(4)** AP per query as `compute_map.m`, junk removed; **(5)** mAP. Then average query
# expansion. Each result is compared with the package (`ds.evaluate`, `evaluation.compute_map`,
# `evaluation.average_query_expansion`).

# %% tags=["save"]
import numpy as np


def average_precision(ranked, ok, junk):                                  # (4), saved for notebook 09
    ranked = ranked[~np.isin(ranked, junk)]                  # junk images leave the ranking
    pos = np.flatnonzero(np.isin(ranked, ok)) + 1            # 1-based ranks of the positives found
    k = np.arange(1, len(pos) + 1)
    before = np.where(pos == 1, 1.0, (k - 1) / np.maximum(pos - 1, 1))   # precision just before (p0 = 1)
    at = k / pos                                                          # precision at the positive
    return float(np.sum((before + at) / 2) / len(ok))


# %% tags=[]
pipe = SelectiveConvPipeline.from_preset(D=D, mask=mask, random_state=seed, alpha=alpha).fit(feats["train"])  # (1)
Q, X = pipe.transform(feats["queries"]), pipe.transform(feats["db"])                                  # (2)
n_crop = sum(b is not None for b in ds.query_boxes)
print(f"(1) learned on {len(feats['train'])} held-out images; (2) {Q.shape[0]} queries ({n_crop} cropped "
      f"to their box) and {X.shape[0]} database images, {Q.shape[1]}-D")
ranks = np.argsort(-(Q.astype(np.float64) @ X.T.astype(np.float64)), axis=1, kind="stable")          # (3)


aps = np.array([average_precision(ranks[i], g["ok"], g.get("junk", [])) for i, g in enumerate(ds.gnd)])
mAP = aps.mean()                                                                                      # (5)
res = ds.evaluate(Q, X)
np.testing.assert_array_equal(ranks.T, res["ranks"])
np.testing.assert_allclose(aps, res["aps"], rtol=0, atol=1e-12)
np.testing.assert_allclose(mAP, ev.compute_map(ranks.T, ds.gnd)[0], rtol=0, atol=1e-12)
print(f"(3)-(5) mAP {mAP:.3f} over {len(aps)} queries (AP from {aps.min():.3f} to {aps.max():.3f}); "
      "equal to ds.evaluate and compute_map")
rec.headline(f"protocol: M_{mask.upper()}+T-emb+demo {D}-D (mAP)", mAP)

# %% [markdown] tags=[]
# **Average query expansion** ("+QE", Chum et al. 2007): the query vector is replaced by the
# L2-normalised mean of itself and its top-$k$ database vectors, and the database is ranked again,
# $\;\mathbf q' = \frac{\mathbf q + \sum_{i=1}^{k} \mathbf x_{(i)}}{\lVert \cdot \rVert}$.
#
# **Verdicts.** Two methods scored on the same queries give two vectors of per-query APs; every
# "A beats B" of this notebook is read from their **paired difference**: the mean of
# $\mathrm{AP}_A(q) - \mathrm{AP}_B(q)$ over the queries (the difference of the mAPs), its $95\%$
# bootstrap confidence interval over the queries and a paired permutation test
# (`selconv_lite.data.paired`, fixed seed). A difference counts only when the interval excludes 0;
# otherwise the line says "no detectable difference", however far apart the two mAPs look. Where
# the paper states a direction, a detectable difference "agrees" or "disagrees" with it; counts
# over many pairs count the intervals. The bootstrap treats the queries as independent, although
# the five queries of one object share their positives; if their APs move together, the intervals
# are narrower than they should be, and a line whose bound lies close to 0 is the least secure.

# %% tags=[]
Qe = Q + X[ranks[:, :qe_k]].sum(axis=1)                      # query + its top-k database vectors
Qe /= np.linalg.norm(Qe, axis=1, keepdims=True)
ranks_qe = np.argsort(-(Qe.astype(np.float64) @ X.T.astype(np.float64)), axis=1, kind="stable")
aps_qe = np.array([average_precision(ranks_qe[i], g["ok"], g.get("junk", [])) for i, g in enumerate(ds.gnd)])
mAP_qe = aps_qe.mean()
np.testing.assert_allclose(Qe, ev.average_query_expansion(Q, X, k=qe_k), atol=1e-6)
np.testing.assert_allclose(mAP_qe, ds.evaluate(Q, X, qe_k=qe_k)["mAP"], atol=1e-6)
print(f"average query expansion, k={qe_k}: mAP {mAP:.3f} -> {mAP_qe:.3f} ({mAP_qe - mAP:+.3f}); "
      f"each query has {np.mean([len(g['ok']) for g in ds.gnd]):.0f} positives on average")
rec.headline(f"protocol: M_{mask.upper()}+T-emb+demo {D}-D +QE (mAP)", mAP_qe)
paired = report.PairedLog()   # results.paired of the record: every verdict's interval (the landing page prints them)
print("paired over the queries (the paper: QE gains on Oxford5k / Paris6k): "
      + str(paired.claim("protocol: +QE vs without", aps_qe, aps, "+QE", "without QE", paper_diff=+1,
                         a=f"protocol: M_{mask.upper()}+T-emb+demo {D}-D +QE (mAP)",
                         b=f"protocol: M_{mask.upper()}+T-emb+demo {D}-D (mAP)")))

# %% [markdown] tags=[]
# **What the lines above show.** The protocol written out gives the same ranks, APs and mAP as
# the package (the asserts), and the AP range shows how unequal the queries are: the easiest
# query is ranked almost perfectly, the hardest barely at all (§7 shows both). Query expansion
# is detectably *worse* than the plain ranking here ("disagrees"), whereas the paper reports
# gains on Oxford5k and Paris6k (Table 6). Expansion replaces the query by the mean of itself and
# its first `qe_k` results: it helps when those are mostly positives and pulls the query towards
# wrong images when they are not, and with the mAP printed above many queries have wrong images
# among their first results. This notebook does not print the precision of the first `qe_k`
# results, so that mechanism is a plausible reading, not a measured cause; §3 shows the same loss
# for every method of Table 6, the strongest baseline included.
#
# The rest of the notebook runs many configurations through the same steps with the package's
# drivers (`tables.run_table3`, `run_table6`, ...).
#
# ## 2. Table 3 — masks × frameworks
#
# Each framework embeds the (masked, PCA-reduced, L2-normalised) local features with FV, VLAD,
# T-emb ($\phi_\Delta$) or F-FAemb and aggregates them with sum / average ($\psi_s$, $\psi_a$) or
# democratic ($\psi_d$) pooling, all at the same final dimension $D$. The paper uses
# $D = 4224$ (Table 2); here `table3_D = 1024` scales every configuration down
# (`tables.TABLE3_CONFIGS`): it keeps the run short, and on the small held-out split (its size is
# printed in §1) a 4224-dimensional T-emb / F-FAemb whitening would rest on few local features per
# dimension, while the rotation learns at most $n - 1$ directions from $n$ held-out images whatever
# $D$ (notebook 05 prints which $D$ the held-out split supports; §3 runs 4096-D for Table 6). The
# best entry of each column is marked `*` (the paper's bold).
# Paper findings to check, each counted below by the paired intervals of its comparisons (§1,
# "Verdicts"): democratic beats sum / average; the masks help (the lines below print in how many
# rows of the paper's Table 3 each mask beats no mask); $\phi_\Delta + \psi_d$ is the best
# framework.

# %% tags=[]
t3 = tables.run_table3(ds, feats, D=table3_D, masks=table3_masks, seed=seed, alpha=alpha)
print(t3)
rec.add("table3", t3.as_dict())
fw, col, best = t3.best_overall()
rec.headline(f"Table 3 (D={table3_D}): best framework", f"{fw}, {col}")
rec.headline(f"Table 3 (D={table3_D}): best mAP", best)
mask_of = dict(zip(t3.cols, table3_masks))   # column -> mask name of the paper's Table 3


def paper_t3(row, col):
    """The paper's Table 3 (Oxford5k, mAP %) for a cell of ours."""
    return published.table3_value("oxford5k", row.replace(" ", ""), mask_of[col])


def t3_claim(row_a, col_a, row_b, col_b):
    """Paired comparison of two Table 3 cells; the paper's sign from its Table 3 on Oxford5k."""
    pa, pb = paper_t3(row_a, col_a), paper_t3(row_b, col_b)
    return paired.claim(f"Table 3: {row_a} {col_a} vs {row_b} {col_b}", t3.aps[row_a][col_a], t3.aps[row_b][col_b],
                        f"{row_a} {col_a}", f"{row_b} {col_b}", paper_diff=None if None in (pa, pb) else pa - pb)


def counted(k):
    return f"detectably better in {k['better']} of {k['n']}, worse in {k['worse']}, no detectable difference in {k['no_difference']}"


print("paper (Table 3, Oxford5k): democratic beats sum/average pooling; here, paired over the queries:")
claims = []
for e, a in (("FV", "avg"), ("VLAD", "sum")):
    for c in t3.cols:
        claims.append(t3_claim(f"{e} + demo", c, f"{e} + {a}", c))
        print(f"  {claims[-1]}")
k = count_claims(claims)
print(f"democratic pooling: {counted(k)} (embedding, mask) pairs")
rec.headline("Table 3: democratic beats sum/avg (pairs)", f"{k['better']}/{k['n']}")
if "none" in t3.cols:
    for c in t3.cols:
        if c != "none":
            print(f"paper (Table 3, Oxford5k): {c} beats no mask in {sum(paper_t3(r, c) > paper_t3(r, 'none') for r in t3.rows)}"
                  f" of {len(t3.rows)} rows; here:")
            claims = [t3_claim(r, c, r, "none") for r in t3.rows]
            print("\n".join(f"  {cl}" for cl in claims))
            k = count_claims(claims)
            print(f"{c} against no mask: {counted(k)} rows")
            rec.headline(f"Table 3: {c} beats no mask (rows)", f"{k['better']}/{k['n']}")
paper_best = {c: max(t3.rows, key=lambda r: paper_t3(r, c)) for c in t3.cols}
print("paper (Table 3, Oxford5k), best framework of each column: "
      + ", ".join(f"{c} {paper_best[c]}" for c in t3.cols)
      + "; here, T-emb + demo against the strongest other row of each column:")
for c in t3.cols:
    other = max((r for r in t3.rows if r != "T-emb + demo"), key=lambda r: t3.values[t3.rows.index(r), t3.cols.index(c)])
    print(f"  {t3_claim('T-emb + demo', c, other, c)}")

# %% tags=[]
if in_paper and table3_D == 4224:
    pub = np.array([[published.table3_value(ds.name, k, m) or np.nan for m in table3_masks]
                    for k in published.FRAMEWORKS], dtype=float) / 100
    print(report.ResultTable("published (paper Table 3)", t3.rows, t3.cols, pub, row_header="framework"))
    print(report.ResultTable("measured minus published", t3.rows, t3.cols, t3.values - pub, row_header="framework"))
    rec.add("table3_published_diff", (t3.values - pub).tolist())
else:
    print("(the paper's Table 3 is for Oxford5k, Paris6k and Holidays at D = 4224: "
          "run with dataset='oxford5k', table3_D=4224 to compare with it)")

# %% [markdown] tags=[]
# **What the paired lines above show** (Table 3 at the default 1024 px, $D$ = `table3_D`):
#
# * **Democratic against sum / average pooling: not reproduced as a rule.** The count line gives
#   democratic pooling detectably better in some (embedding, mask) pairs, detectably worse in
#   others and no detectable difference in the rest; both pairs where it is worse are in the M_MAX
#   column (the two lines that read "disagrees"), whereas the paper has democratic pooling ahead
#   throughout (Table 3, Oxford5k). We have not established why.
# * **The masks against no mask: reproduced, and much stronger than in the paper.** M_MAX, M_SUM
#   and M_SIFT are each detectably better than no mask in every framework (the three count lines).
#   The one M_MAX line that reads "disagrees" (VLAD + demo) favours the mask too: it disagrees
#   because the paper's Table 3 shows a small loss there. The differences are far larger than the
#   paper's few-point margins on Oxford5k (Table 3; §4b prints the paper's differences for
#   T-emb + demo next to the measured ones). [docs/datasets.md](../docs/datasets.md)
#   ("Difficulty") gives the reason, which follows from how the set is built: the test objects are
#   pasted into cluttered scenes that several objects, distractors and scene-only images share, so
#   without a mask most pool5 cells of a database image describe a background that images of
#   other objects share, and democratic pooling gives each of them the same weight as the
#   object's cells.
# * **T-emb + democratic is the best framework: reproduced with the MAX mask.** It has the best
#   entry (`*`) of the M_MAX, M_SUM and M_SIFT columns, but against the strongest other row of its
#   column (F-FAemb + demo in all three) it is detectably better only with M_MAX; with M_SUM and
#   M_SIFT there is no detectable difference, and without a mask the column's best entry is
#   VLAD + sum, again with no detectable difference. The paper, too, finds T-emb + demo and
#   F-FAemb + demo comparable and T-emb "slightly better" with the MAX mask (paper §5.2.1); its
#   own Table 3 (the line above the comparisons) has F-FAemb + demo best on Oxford5k without a
#   mask, and on Paris6k and Holidays with some masks.
#
# The absolute mAPs are far below the paper's Oxford5k column (Table 3); §3 puts the framework
# next to the baselines on the same maps, and §4b shows how the masks' effect changes with the
# image size (512 / 724 / 1024 px).
#
# ## 3. Table 6 — comparison with the state of the art (same features)
#
# The baselines pool the *same* pool5 maps into one vector each:
# SPoC (sum with a centre prior), MAC (max per channel), R-MAC (MACs of regions at 3
# scales, summed), CroW (spatial × channel weighting), GeM ($(\frac1n\sum x^3)^{1/3}$); each is
# L2-normalised and, when the held-out set supports it, PCA-whitened on the held-out set (the
# paper's SPoC is whitened down to 256-D). A whitening to $m$ dimensions needs more than $m$
# training vectors spanning $m$ dimensions: one pooled vector per held-out image, for R-MAC one
# per region (several per image; the count is printed under the table), so on a small held-out
# set R-MAC can be whitened while the others cannot. `baseline_whitening="auto"` keeps such a
# baseline L2-normalised and unwhitened and says why under the table; `True` / `False` force one
# variant, `"both"` prints both. Each row's label gives its variant (whitened on the train split,
# or L2 only) and its dimension, and the column `D` gives the measured dimension next to the
# paper's `dim`.
# Ours: $\mathcal{M} + \phi_\Delta + \psi_d$ with the Table 4 presets. A configuration whose
# whitening cannot be learned from the held-out local features is skipped with the reason.
# "+QE" is the average query expansion of §1.
# For revisited ground truth (R-Oxford / R-Paris, and the embedded set) the Easy / Medium / Hard
# mAPs are shown too (E, M, H: Easy counts only easy positives, Hard only hard ones, Medium both).
# On the paper's benchmarks the published mAP and the difference are printed.

# %% tags=[]
skipped = []
t6 = tables.run_table6(ds, feats, ours=[tuple(x) for x in table6_ours], baselines=table6_baselines, qe_k=qe_k,
                   seed=seed, alpha=alpha, baseline_whitening=baseline_whitening, skipped=skipped)
print(report.table6_text(t6, f"Table 6 on {ds.name} (mAP; +QE: average query expansion, k={qe_k})"))
for s in skipped:
    print(s)
rec.add("table6", [{k: r.get(k) for k in ("method", "dim", "D", "mAP", "mAP_qe", "easy", "medium", "hard",
                                          "published", "diff")} for r in t6])
for r in t6:
    if not r["ours"] and r["D"] != r["dim"]:
        print(f"{r['method']}: {r['D']}-D here, {r['dim']}-D in the paper (whitened there)")
ours6 = [r for r in t6 if r["ours"]]
base6 = [r for r in t6 if not r["ours"]]
best_ours = max(ours6, key=lambda r: r["mAP"])
best_base = max(base6, key=lambda r: r["mAP"])


def name6(r):
    return f"{r['method']} {r['dim']}-D" if r["ours"] else r["method"]


def t6_claim(ra, rb):
    """Paired comparison of two Table 6 rows; the paper's sign from its Table 6 on Oxford5k where it
    publishes both (a baseline's whitened row only)."""
    pa, pb = (published.table6_value("oxford5k", r["method"], r["dim"]) for r in (ra, rb))
    return paired.claim(f"Table 6: {name6(ra)} vs {name6(rb)}", ra["aps"], rb["aps"], name6(ra), name6(rb),
                        paper_diff=None if None in (pa, pb) else pa - pb)


print(f"+QE (k={qe_k}) against no QE, paired over the queries (the paper: gains on Oxford5k / Paris6k):")
claims = []
for r in t6:
    if r.get("aps_qe") is not None:
        main = r["ours"] and r["dim"] == D and r["mask"] == mask
        claims.append(paired.claim(f"Table 6: {name6(r)} +QE vs without", r["aps_qe"], r["aps"], f"{name6(r)} +QE",
                                   name6(r), paper_diff=+1, a=f"{name6(r)} +QE (mAP)" if main else None,
                                   b=f"{name6(r)} (mAP)" if main else None))
        print(f"  {claims[-1]}")
print(f"+QE: {counted(count_claims(claims))} rows")
print("the best of ours against the best baseline (mAP), and ours at each D against the masks and the sizes "
      "the paper compares (the paper's sign: Table 6, Oxford5k, where it publishes both rows):")
print(f"  {t6_claim(best_ours, best_base)}")
by6 = {(r["dim"], r["mask"]): r for r in ours6}
if (D, mask) in by6:
    for rb in base6:
        print(f"  {t6_claim(by6[D, mask], rb)}")
for (Dm, m), r in by6.items():
    if m == "max":
        for other in ("sum", "sift"):
            if (Dm, other) in by6:
                print(f"  {t6_claim(r, by6[Dm, other])}")
        smaller = [d_ for d_, m_ in by6 if m_ == "max" and d_ < Dm]
        if smaller:
            print(f"  {t6_claim(r, by6[max(smaller), 'max'])}")
rec.headline("Table 6: best of ours", f"{best_ours['method']} {best_ours['dim']}-D")
rec.headline("Table 6: best of ours (mAP)", best_ours["mAP"])
rec.headline("Table 6: best baseline", best_base["method"])
rec.headline("Table 6: best baseline (mAP)", best_base["mAP"])
for r in ours6:
    if r["dim"] == D and r["mask"] == mask:
        rec.headline(f"M_{mask.upper()}+T-emb+demo {D}-D (mAP)", r["mAP"])
        rec.headline(f"M_{mask.upper()}+T-emb+demo {D}-D +QE (mAP)", r["mAP_qe"])
        for p in ("easy", "medium", "hard"):
            if p in r:
                rec.headline(f"M_{mask.upper()}+T-emb+demo {D}-D {p} (mAP)", r[p])

# %% tags=[]
fig, ax = plt.subplots(figsize=(9, 4))
labels = [f"{r['method'].replace('+T-emb+demo', '')}\n{r['dim']}-D" if r["ours"]
          else r["method"].replace(" (no whitening)", "*") for r in t6]
x = np.arange(len(t6))
vals = [r["mAP"] for r in t6] + [r["mAP_qe"] for r in t6 if r.get("mAP_qe") is not None]
ax.bar(x - 0.2, [r["mAP"] for r in t6], 0.4, label="mAP (ours: dark blue)",
       color=["#2c7bb6" if r["ours"] else "#777777" for r in t6])
ax.bar(x + 0.2, [r.get("mAP_qe", np.nan) for r in t6], 0.4, label="+QE (ours: light blue)",
       color=["#abd9e9" if r["ours"] else "#cccccc" for r in t6])
ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=9)
ax.tick_params(axis="y", labelsize=9)
ax.set_ylim(np.floor(20 * min(vals)) / 20 - 0.05, min(1.0, np.ceil(20 * max(vals)) / 20 + 0.02))  # zoomed: not 0-1
ax.set_ylabel("mAP (axis zoomed)"); ax.grid(axis="y", alpha=0.3); ax.legend(fontsize=9, loc="lower right")
ax.set_title(f"Table 6 on {ds.name}: baselines (grey; * = not whitened) vs ours (blue)", fontsize=10)
fig.tight_layout()
rec.figure(fig, "table6")
nu.show_figure(fig, dpi=110)
plt.close(fig)

# %% [markdown] tags=[]
# **What the paired lines above show.** On this set the paper's central result, the framework
# above the state of the art on the same features (Table 6), is **not reproduced**:
#
# * **Below R-MAC.** R-MAC has the best mAP of the table (`*`), and the best configuration of
#   ours (named in the line after the "+QE" count) is detectably below it. At 512-D the paper,
#   too, has R-MAC ahead ("agrees"), but at 1024-D the paper's framework beats R-MAC (Table 6,
#   Oxford5k), while here M_MAX + T-emb + demo at 1024-D is detectably below it ("disagrees").
# * **Below SPoC, MAC, CroW and GeM.** At 1024-D the framework is also detectably below each of
#   the four unwhitened baselines, SPoC included. Those lines print no agreement because the
#   paper's baselines are whitened and these are not (GeM is not in the paper at all), but the
#   paper has its 1024-D framework above SPoC, MAC and CroW (Table 6, Oxford5k). Here four
#   baselines that learn nothing from the held-out split rank better than a framework that learns
#   PCA, codebook, whitening and rotation from it.
#
# **Why: not established.** The known facts are in [docs/datasets.md](../docs/datasets.md)
# ("Difficulty"). The held-out split has 60 images (printed in §1 and in the whitening lines
# above), where the paper learns on Paris6k's thousands, so the rotation normalisation learns at
# most 59 directions and the rest of its basis is an arbitrary completion (notebook 05). The same
# document reports a diagnostic, learning everything on the database images instead, that brings
# the mAP close to zero: the learned steps are very sensitive to the images they are learned on.
# Whether the small split is the cause has not been measured; running with `dataset="oxford5k"`
# tests Table 6 on the paper's data.
#
# **What agrees with the paper.** Among our rows, M_MAX is detectably above M_SIFT at both 512-D
# and 1024-D and above M_SUM at 512-D ("agrees"); at 1024-D MAX against SUM shows no detectable
# difference. The dimension does not help here: 1024-D against 512-D and 4096-D against 1024-D
# show no detectable difference, where the paper gains with $D$ (Table 6, Oxford5k), the same
# finding as notebook 05's Fig. 4. "+QE" is detectably worse in every row (the count line), for
# the baselines as well as for ours (§1). The `M` column repeats the `mAP` column (Medium is the
# default protocol); in every row the Easy mAP is above it and the Hard one below it, with no
# interval printed for those gaps.
#
# ## 4. Table 5 — image size
#
# Fewer pixels mean fewer local features ($W \times H$ shrinks with the image) and coarser details.
# The paper compares 724 px and 1024 px ($\max(W_I, H_I)$); here the dataset's size and the same
# ratio below it (from 1024 to 724 px on the embedded set, whose default is the paper's 1024 px;
# from 512 to 362 px with `max_dim = 512`). A second pass through the network at the smaller size
# is needed once (then cached), unless the measured record of §4b (loaded here, described there)
# already holds that size: it holds 512, 724 and 1024 px of the embedded set, computed with the
# same code, so at the default 1024 px the 724-px row is read from it instead of extracting every
# image again (§4b prints how long that extraction took when the record was measured); with
# `max_dim = 512` the 362-px row is extracted here. §4b checks the record's column at this
# notebook's size against its live numbers.

# %% tags=[]
from pathlib import Path

from selconv_lite.core.files import repo_root
from selconv_lite.experiments import regimes as rgm
from selconv_lite.teaching.regression import load_tolerances

regimes = None
if regimes_live:
    regimes = rgm.run_regimes(ds, cache_dir=cache_dir, weights=weights, random_state=seed)
elif regimes_record:
    record_path = Path(regimes_record)
    record_path = record_path if record_path.is_absolute() else repo_root() / "notebooks" / record_path
    try:
        regimes = rgm.load_regimes(record_path, ds, weights=weights)
    except ValueError as e:
        if dataset == "default":
            raise  # the embedded set's record must match: a stale record fails here
        print(f"{e}\nno record for {ds.name}: run with regimes_live=True to measure one")

# %% tags=[]
sizes = table5_sizes or [tables.scaled_max_dim(max_dim), max_dim]
recorded = ({} if table5_sizes is not None or layer != "pool5" or max_train_images is not None else
            rgm.recorded_table5(regimes, sizes, table5_masks, table5_D, skip=[max_dim], seed=seed, alpha=alpha))
feats_by_size = {s: (feats if s == max_dim else
                     nu.series_features(ds, layers=(layer,), max_dim=s, cache_dir=cache_dir, weights=weights,
                                       max_train_images=max_train_images, seed=seed)[layer])
                 for s in sizes if s not in recorded}

# %% tags=[]
t5 = tables.run_image_size(ds, feats_by_size, masks=table5_masks, D=table5_D, seed=seed, alpha=alpha)
if recorded:  # rows read from the record, merged with the live ones in order of size (per-query APs too)
    live_rows = {int(r): t5.values[i] for i, r in enumerate(t5.rows)}
    rows = sorted([*live_rows, *recorded])
    aps5 = {str(r): (t5.aps[str(r)] if r in live_rows else
                     {c: rgm.recorded_aps(regimes, r, m, table5_D) for c, m in zip(t5.cols, table5_masks)}) for r in rows}
    t5 = report.ResultTable(t5.title, [str(r) for r in rows], t5.cols,
                        [recorded[r]["mAP"] if r in recorded else live_rows[r] for r in rows], row_header=t5.row_header,
                        aps=aps5)
    print("from the record of §4b (not extracted here): " + ", ".join(f"{r} px" for r in recorded))
print(t5)
rec.add("table5", t5.as_dict())
for s in sizes:
    for m in table5_masks:
        rec.headline(f"Table 5: {m.upper()} mask, max_dim {s} (mAP)", t5.values[t5.rows.index(str(s)), t5.cols.index(f"M_{m.upper()}")])
if in_paper and published.table5_value(ds.name, sizes[-1], table5_masks[-1]) is not None:
    pub = np.array([[published.table5_value(ds.name, s, m) or np.nan for m in table5_masks] for s in sizes]) / 100
    print(report.ResultTable("published (paper Table 5)", t5.rows, t5.cols, pub, row_header="max(W_I, H_I)"))
small, large = str(sizes[0]), str(sizes[-1])
for c, m in zip(t5.cols, table5_masks):
    pl, ps = published.table5_value("oxford5k", 1024, m), published.table5_value("oxford5k", 724, m)
    p = None if None in (pl, ps) else pl - ps
    print(f"paper: the larger images are better (Table 5, Oxford5k, {c}: 1024 - 724 px = "
          + ("not published" if p is None else f"{p:+.1f} points") + "); here "
          + str(paired.claim(f"Table 5: {c} {large} vs {small} px", t5.aps[large][c], t5.aps[small][c], f"{c} {large} px",
                             f"{c} {small} px", paper_diff=p, a=f"Table 5: {m.upper()} mask, max_dim {large} (mAP)",
                             b=f"Table 5: {m.upper()} mask, max_dim {small} (mAP)")))
hw = {s_: (recorded[s_]["cells_mean"] if s_ in recorded else
           np.mean([f.fmap.shape[0] * f.fmap.shape[1] for f in feats_by_size[s_]["db"]])) for s_ in sizes}
print("mean pool5 locations per database image: " + ", ".join(f"{s_} px {v:.0f}" for s_, v in hw.items()))

# %% [markdown] tags=[]
# On the paper's benchmarks the images are 1024 px and the pool5 maps about 32 × 24; halving the
# area (724 px) still leaves hundreds of local features. Every image of the embedded set is
# 1024 × 768 with real pixels (none upsampled), so at the default size every pool5 map is the
# same 32 × 24 grid, and the 724-px row works on downscaled copies of the same photos (the last
# line above prints the mean number of cells at each size).
#
# **What the two paired lines show: the image size matters differently for the two masks.** With
# M_MAX the larger images are detectably better ("agrees" with Table 5, Oxford5k); with M_SUM the
# *smaller* images are detectably better ("disagrees"). So the paper's finding reproduces for the
# MAX mask, the framework's default, and not for SUM. We have not established why. §4b adds
# 512 px, the other $D$ and the SIFT mask, with the same kind of lines, and shows how the share
# of cells each mask keeps changes with the size. The test has not been repeated on the paper's
# datasets here; run with `dataset="oxford5k"` to check Table 5 itself.

# %% [markdown] tags=[]
# ## 4b. The paper's regime: 1024 px, next to 724 and 512 px
#
# The paper feeds every image at $\max(W_I, H_I) = 1024$ (§5.1), and so does this series by
# default: every image of the embedded set is 1024 × 768, so its pool5 map is a 32 × 24 = 768-cell
# grid, more cells than the $K = 512$ channels, and the MAX mask (at most one cell per channel)
# can keep at most two thirds of them; on the paper's photos it keeps about 30 % (Fig. 2a). The
# alternative, `max_dim = 512`, gives 16 × 12 = 192-cell maps, fewer cells than $K$, so MAX could
# keep every cell, and every step after the extraction handles a quarter as many local features.
# The series' run times at both sizes are in [docs/notebooks.md](../docs/notebooks.md)
# ("Measured times"), measured on the earlier embedded set.
#
# The cells below show both regimes, measured on the same images, weights and code: a record
# written by `python -m selconv_lite.experiments.regimes` (`selconv_lite.experiments.regimes.run_regimes`)
# with, at 512 / 724 / 1024 px, the pool5 cells per image, the percentage each mask keeps, the mAP
# of M + T-emb + democratic for each (mask, D), the per-query APs behind them, and SPoC / MAC /
# R-MAC on the same maps. The record names the data it was measured on (digests of the manifest
# and of every image file), the weights, the code version, the CPU and the date; `load_regimes`
# refuses a record of other data, and its column at this notebook's size (1024 px by default) is
# checked below against the numbers this notebook computed live.
#
# `regimes_live = True` measures the record here instead. The first lines below print what the
# committed record took at each size on 2 CPU cores: the extraction (and whether the feature
# cache was cold) and the mAP computations after it; a cold extraction is most of the time, and a
# warm cache skips it. A GPU extraction was measured on the earlier embedded set
# (`benchmarks/measured/gpu_extraction_h200.json`); the mAP computations stay on the CPU.

# %% tags=[]
if regimes is not None:  # loaded in §4
    env = regimes["environment"]
    print(f"record: {regimes['identity']['dataset']}, {regimes['identity']['n_images']} images, "
          f"weights {regimes['identity']['weights']}; measured {env['date_utc'][:10]} on {env['cpu']}, "
          f"{env['threads']['torch']} threads, code {env['package_version']} ({env['git_describe']})")
    for s_, e_ in regimes["sizes"].items():
        x_ = e_["extraction"]
        took = ("not extracted" if x_["seconds"] is None else
                f"{x_['seconds'] / 60:.1f} min (cache {x_['cache']['state']}: {x_['cache']['cached_before']} of "
                f"{x_['cache']['entries']} entries there before)")
        print(f"  {s_:>5} px: extraction {took}, then {e_['compute_s'] / 60:.1f} min for the mAPs")

# %% tags=[]
# the record's column at this notebook's size must equal what §3 (Table 6) and §4 (Table 5) computed live
if regimes is not None and str(max_dim) in regimes["sizes"]:
    col = regimes["sizes"][str(max_dim)]
    pairs = []
    for r in t6:
        base_name = r["method"].replace(" (no whitening)", "")
        if r["ours"] and col["mAP"].get(r["mask"], {}).get(str(r["dim"])) is not None:
            pairs.append((f"{r['method']} {r['dim']}-D", col["mAP"][r["mask"]][str(r["dim"])], r["mAP"]))
        elif not r["ours"] and base_name in col["baselines"]:
            pairs.append((r["label"], col["baselines"][base_name]["mAP"], r["mAP"]))
    for m in table5_masks:
        if col["mAP"].get(m, {}).get(str(table5_D)) is not None:
            pairs.append((f"Table 5 M_{m.upper()} {table5_D}-D", col["mAP"][m][str(table5_D)],
                          t5.values[t5.rows.index(str(max_dim)), t5.cols.index(f"M_{m.upper()}")]))
    tol = load_tolerances().lookup("06_full_evaluation", "results.regimes.map")[0]
    got, live = np.array([p[1] for p in pairs]), np.array([p[2] for p in pairs])
    np.testing.assert_allclose(got, live, rtol=0, atol=tol, err_msg=(
        f"the record's {max_dim}-px column differs from this notebook's live numbers "
        f"({', '.join(p[0] for p in pairs)}): re-measure it with python -m selconv_lite.experiments.regimes"))
    print(f"the record's {max_dim}-px column equals this notebook's live numbers for {len(pairs)} configurations "
          f"(within {tol} mAP, the notebooks' tolerance): " + ", ".join(p[0] for p in pairs))

# %% tags=[]
if regimes is not None:
    print(rgm.regimes_table(regimes))
    rs = sorted(regimes["sizes"], key=int)
    small_, big_ = rs[0], rs[-1]
    E = regimes["sizes"]
    rmasks = [m for m in regimes["config"]["masks"] if m != "none"]
    rdims = regimes["config"]["dims"]
    Dtop = str(max(rdims))

    def rclaim(a, b, paper):
        """Paired comparison of two entries ``(size, mask, D)`` of the record from its per-query
        APs, recorded; returns its short form: difference [interval] agreement."""
        name_a, name_b = (f"{'no mask' if m_ == 'none' else 'M_' + m_.upper()} {D_}-D {s_} px" for s_, m_, D_ in (a, b))
        c = paired.claim(f"regimes: {name_a} vs {name_b}", rgm.recorded_aps(regimes, *a), rgm.recorded_aps(regimes, *b),
                         name_a, name_b, paper_diff=paper)
        if c.comparison is None:  # a record written before per-query APs were stored
            no_aps.append(name_a)
            return f"{E[a[0]]['mAP'][a[1]][str(a[2])] - E[b[0]]['mAP'][b[1]][str(b[2])]:+.3f} (no per-query APs)"
        return f"{c.difference:+.3f} [{c.comparison.ci_low:+.3f}, {c.comparison.ci_high:+.3f}] {c.agreement or c.verdict}"

    no_aps = []
    print("\nthe paper's claims, measured here (each: difference of mAPs [its 95 % paired bootstrap interval "
          "over the queries] and agrees / disagrees / no detectable difference):")
    for m in rmasks:
        here_k = E[big_]["kept_percent"][m]
        print(f"paper: {m.upper()} keeps about {published.FIG2A_KEPT[m]:.0f}% of the cells at 1024 px (Fig. 2a); "
              f"here: {here_k:.1f}% at {big_} px ({E[small_]['kept_percent'][m]:.1f}% at {small_} px), "
              f"{'agrees' if abs(here_k - published.FIG2A_KEPT[m]) <= 10 else 'disagrees'} (criterion: within 10 points)")
    t3ox = {m: published.table3_value("oxford5k", "T-emb+demo", m) for m in ("max", "sum", "sift", "none")}
    print("paper: masks beat no mask (Table 3, Oxford5k, T-emb+demo 4224-D: "
          + ", ".join(f"{m.upper()} {(t3ox[m] - t3ox['none']) / 100:+.3f}" for m in rmasks) + "); here, mask - no mask:")
    for s_ in rs:
        for D_ in rdims:
            if "none" not in E[s_]["mAP"] or E[s_]["mAP"]["none"][str(D_)] is None:
                continue
            print(f"  {s_:>5} px, {D_}-D: " + ", ".join(
                f"{m.upper()} {rclaim((s_, m, D_), (s_, 'none', D_), t3ox[m] - t3ox['none'])}" for m in rmasks
                if E[s_]["mAP"][m][str(D_)] is not None))
    if "max" in rmasks and "sum" in rmasks:
        t6ox = {m: published.table6_value("oxford5k", f"M_{m.upper()}+T-emb+demo", 1024) for m in ("max", "sum")}
        print(f"paper: MAX >= SUM (Table 6, Oxford5k 1024-D: MAX - SUM {(t6ox['max'] - t6ox['sum']) / 100:+.3f}); "
              "here, MAX - SUM:")
        for s_ in rs:
            print(f"  {s_:>5} px: " + ", ".join(
                f"{D_}-D {rclaim((s_, 'max', D_), (s_, 'sum', D_), t6ox['max'] - t6ox['sum'])}" for D_ in rdims
                if None not in (E[s_]["mAP"]["max"][str(D_)], E[s_]["mAP"]["sum"][str(D_)])))
    print("paper: larger images are better (Table 5, Oxford5k, 512-D, 724 -> 1024 px: "
          + ", ".join(f"{m.upper()} {published.table5_value('oxford5k', 724, m) / 100:.3f} -> "
                      f"{published.table5_value('oxford5k', 1024, m) / 100:.3f}" for m in ("max", "sum"))
          + "); here:")
    for m in rmasks:
        for D_ in rdims:
            v = {s_: E[s_]["mAP"][m][str(D_)] for s_ in rs}
            if None in v.values():
                continue
            t5ox = [published.table5_value("oxford5k", px, m) for px in (1024, 724)]
            t5ox = None if None in t5ox else t5ox[0] - t5ox[1]
            print(f"  M_{m.upper()} {D_}-D: " + " / ".join(f"{v[s_]:.3f}" for s_ in rs) + f" at {' / '.join(rs)} px; "
                  + ", ".join(f"{big_} vs {o} px {rclaim((big_, m, D_), (o, m, D_), t5ox)}" for o in rs[:-1]))
    if no_aps:
        print(f"the record has no per-query APs for {len(no_aps)} of these comparisons, so they have no interval and "
              "no verdict: re-measure it with python -m selconv_lite.experiments.regimes")
    rec.add("regimes", {s_: {"cells_mean": E[s_]["cells_mean"], "kept_percent": E[s_]["kept_percent"],
                             "mAP": E[s_]["mAP"], "baselines": {k: v["mAP"] for k, v in E[s_]["baselines"].items()}}
                        for s_ in rs})
    for s_ in rs:
        rec.headline(f"Regimes: MAX mask kept at {s_} px (%)", E[s_]["kept_percent"].get("max"))
        for m in ("max", "none"):
            if m in E[s_]["mAP"]:
                rec.headline(f"Regimes: M_{m.upper()}+T-emb+demo {Dtop}-D at {s_} px (mAP)", E[s_]["mAP"][m][Dtop])

# %% tags=[]
if regimes is not None:
    xs = [int(s_) for s_ in rs]
    colors = {"max": "#d7191c", "sum": "#2c7bb6", "sift": "#1a9641", "none": "#555555"}
    fig, axs = plt.subplots(1, 2, figsize=(11, 6))
    for m in regimes["config"]["masks"]:
        for D_, ls in zip(rdims, ("--", "-", ":")):
            ys = [E[s_]["mAP"][m][str(D_)] for s_ in rs]
            axs[0].plot(xs, [np.nan if y is None else y for y in ys], ls, marker="o", color=colors.get(m),
                        label=f"{'M_' + m.upper() if m != 'none' else 'no mask'} {D_}-D")
    for b_, mk in zip(regimes["config"]["baselines"], ("s", "^", "v", "D", "x")):
        axs[0].plot(xs, [E[s_]["baselines"][b_]["mAP"] for s_ in rs], ":", marker=mk, color="#999999", label=b_)
    axs[0].set_xlabel("max(W_I, H_I) (px)", fontsize=9); axs[0].set_ylabel("mAP (axis zoomed)", fontsize=9)
    axs[0].set_title(f"M + T-emb + demo and baselines on {ds.name}", fontsize=10)
    for m in regimes["config"]["masks"]:
        axs[1].plot(xs, [E[s_]["kept_percent"][m] for s_ in rs], "-", marker="o", color=colors.get(m),
                    label=f"{'M_' + m.upper() if m != 'none' else 'no mask'}")
        if m in published.FIG2A_KEPT and m != "none":
            axs[1].plot([1024], [published.FIG2A_KEPT[m]], marker="*", ms=12, ls="none", mfc="none",
                        color=colors.get(m), label=f"paper Fig. 2a {m.upper()}")
    axs[1].plot(xs, [100 * min(1.0, E[s_]["K"] / E[s_]["cells_mean"]) for s_ in rs], "k:", lw=1,
                label="MAX upper bound K / (W H)")
    axs[1].set_xlabel("max(W_I, H_I) (px)", fontsize=9); axs[1].set_ylabel("cells kept (%)", fontsize=9)
    axs[1].set_ylim(0, 105); axs[1].set_title("kept % of the pool5 cells (database images)", fontsize=10)
    for ax in axs:
        ax.set_xticks(xs); ax.tick_params(labelsize=9); ax.grid(alpha=0.3)
    axs[0].legend(fontsize=9, ncol=2, loc="upper left", bbox_to_anchor=(0, -0.15))
    axs[1].legend(fontsize=9, loc="upper left", bbox_to_anchor=(0, -0.15))
    fig.tight_layout()
    rec.figure(fig, "regimes")
    nu.show_figure(fig, dpi=110)
    plt.close(fig)

# %% [markdown] tags=[]
# **What the record shows.** The first line of the table prints the pool5 cells per database
# image at each size: a quarter as many at 512 px as at 1024 px. The kept shares follow from the
# masks' definitions. SUM keeps half of the cells at every size, as its median threshold implies.
# MAX keeps at most one cell per channel, so its share falls as the maps grow (the dotted bound
# $K / (WH)$ in the right panel); at 1024 px it keeps fewer cells than the paper's about 30 %
# (Fig. 2a), within the printed criterion of 10 points. SIFT keeps a smaller share at larger sizes
# and, at 1024 px, somewhat less than the paper's about 75 % (Fig. 2a), again within the criterion.
#
# The paired lines under the table test the paper's three claims in every column of the record:
#
# * **Masks beat no mask: reproduced at every size and $D$.** Every line reads "agrees", and
#   every interval lies entirely above the paper's difference printed in the header line, those
#   of MAX and SUM far above it, for the reason given in §2. The MAX mask's gain has its largest
#   point estimates at 1024 px; no interval is printed for how the gain changes with the size.
# * **MAX ≥ SUM: only at 1024 px.** At 512 px SUM is detectably *better* than MAX at both $D$
#   ("disagrees"); at 724 px there is no detectable difference at either $D$; at 1024 px MAX is
#   detectably better at 512-D ("agrees") and there is no detectable difference at 1024-D. The
#   paper's ordering thus appears only in the paper's regime, where the maps have more cells than
#   channels and MAX is the more selective mask; the record shows that the two go together, but
#   it does not isolate the cause.
# * **Larger images are better: reproduced for MAX, not for SUM and SIFT.** With M_MAX, 1024 px
#   is detectably better than 512 px at both $D$ and than 724 px at 512-D ("agrees"); against
#   724 px at 1024-D there is no detectable difference. With M_SUM, 1024 px shows no detectable
#   difference from 512 px, and 724 px is detectably better than 1024 px at 512-D ("disagrees").
#   With M_SIFT (not in the paper's Table 5, so its lines print no agreement), 724 px is
#   detectably better than 1024 px at both $D$. Every image has real pixels at 1024 px, so the
#   larger maps are computed on finer detail, not on interpolated pixels; why only the MAX mask
#   profits from it here we have not established. The record also prints SPoC, MAC and R-MAC at
#   each size, without intervals, so their trends are readings of the table, not verdicts.
#
# On the paper's benchmarks (`dataset="oxford5k"` with `regimes_live=True`) the same cells measure
# the regime on the paper's photos.

# %% [markdown] tags=[]
# ## 5. Fig. 5 — which conv. layer?
#
# The same framework ($\mathcal{M}_\text{MAX} + \phi_\Delta + \psi_d$, same $D$) on the local
# features of shallower layers, each followed by a $2\times2$ max-pool of stride 2 (§5.2.4);
# `pool5` is conv5_3 + that max-pool. conv4 layers give four times as many local features
# (stride 16 instead of 32).
# The paper finds small drops down to conv4_3 and large ones below.

# %% tags=[]
by_layer = tables.run_layers(ds, {lay: F[lay] for lay in fig5_layers}, mask="max", D=fig5_D, seed=seed, alpha=alpha)
for lay, m in by_layer.items():
    print(f"{lay:8s} mAP {m:.3f}")
rec.add("fig5_layers", by_layer)
rec.headline(f"Fig. 5: best layer (D={fig5_D})", max(by_layer, key=by_layer.get))
if "pool5" in by_layer:
    print("paper (Fig. 5): pool5 is the best layer, small drops down to conv4_3; here, paired over the queries:")
    for lay in by_layer:
        if lay != "pool5":
            print("  " + str(paired.claim(f"Fig. 5: pool5 vs {lay}", by_layer.aps["pool5"], by_layer.aps[lay], "pool5", lay,
                                          paper_diff=+1)))
fig, ax = plt.subplots(figsize=(5, 2.8))
ax.plot(list(by_layer), list(by_layer.values()), "o-")
ax.set_ylabel("mAP"); ax.set_title(f"Fig. 5 on {ds.name}: M_MAX + T-emb + demo, D = {fig5_D}", fontsize=9)
ax.tick_params(labelsize=9)
ax.grid(alpha=0.3)
fig.tight_layout()
rec.figure(fig, "fig5_layers")
nu.show_figure(fig, dpi=110)
plt.close(fig)

# %% [markdown] tags=[]
# **What the paired lines show.** pool5 is detectably better than each of the shallower layers
# ("agrees"): the paper's conclusion that the last conv. layer gives the most reliable local
# features holds on this set. Whether the drops down to conv4_3 are as small as the paper's
# (paper §5.2.4) cannot be judged from these lines, since the paper's Fig. 5 values are not
# printed here; the printed mAPs also do not fall steadily with depth (conv5_1 is below
# conv4_3), with no interval printed between those two layers.
#
# ## 6. Fig. 6 — online time per image
#
# The online stage of the framework (mask → PCA → embedding → democratic pooling →
# post-processing), feature extraction excluded as in the paper, against R-MAC on the same maps.
# Masks remove local features, so they should also save time: the embedding and the $O(n^2)$
# democratic pooling run on the $n$ selected features only. SUM keeps the locations at or above
# the median (half of them); how many MAX and SIFT keep depends on the map — the next cell counts
# them on the timed images. Timings depend on the machine (the paper: one core of an i7-6700);
# each configuration is timed once (`scoring.online_time_per_image`), and the timing cell's output
# is not compared by nbval.

# %% tags=[]
timed_imgs = list(feats["db"][:fig6_images])
kept = {m: 100 * np.mean([compute_mask(m, im).mean() for im in timed_imgs]) for m in fig6_masks}
print("locations kept by each mask (mean over the timed images): "
      + ", ".join(f"{m.upper()} {v:.1f}%" for m, v in kept.items()))
rec.add("fig6_kept_percent", kept)

# %% tags=["nbval-ignore-output"]
models = {(r["dim"], r["mask"]): r["model"] for r in t6 if r["ours"]}
times = {}
for Dm in fig6_dims:
    for m in fig6_masks:
        pipe = models.get((Dm, m))
        if pipe is None:
            from selconv_lite.method.pipeline import SelectiveConvPipeline
            pipe = SelectiveConvPipeline.from_preset(D=Dm, mask=m, random_state=seed, alpha=alpha).fit(feats["train"])
        times[f"{m} {Dm}-D"] = scoring.online_time_per_image(pipe, timed_imgs, repeats=fig6_repeats)
rmac = next((r["model"] for r in t6 if r["method"].startswith("R-MAC")), None)
if rmac is not None:
    times["R-MAC 512-D"] = scoring.online_time_per_image(rmac, timed_imgs, repeats=fig6_repeats)
for k, v in times.items():
    print(f"{k:14s} {1000 * v:7.2f} ms / image")
for Dm in fig6_dims:
    base = times[f"none {Dm}-D"]
    faster = [m.upper() for m in fig6_masks if m != "none" and times[f"{m} {Dm}-D"] < base]
    slower = [m.upper() for m in fig6_masks if m != "none" and times[f"{m} {Dm}-D"] >= base]
    print(f"{Dm}-D, against no mask in this run: faster {', '.join(faster) or 'none'}; "
          f"not faster {', '.join(slower) or 'none'}")
rec.add("fig6_ms_per_image", {k: 1000 * v for k, v in times.items()})
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.bar(list(times), [1000 * v for v in times.values()], color=["#999999" if k.startswith("R-MAC") else "#2c7bb6" for k in times])
ax.set_ylabel("ms / image"); ax.tick_params(axis="x", rotation=45, labelsize=9)
ax.tick_params(axis="y", labelsize=9)
for lab in ax.get_xticklabels():
    lab.set_horizontalalignment("right")
ax.set_title("Fig. 6: online time per image (feature extraction excluded)", fontsize=9)
fig.tight_layout()
rec.figure(fig, "fig6_time")
nu.show_figure(fig, dpi=110)
plt.close(fig)

# %% [markdown] tags=[]
# **Reading the timings.** The kept shares printed first are the expected ones: MAX keeps the
# fewest cells, SUM half, SIFT more. Each time is the best of `fig6_repeats` runs over the timed
# images; the last two lines of the timing cell say, for each $D$, which masks were faster than no
# mask in this run. The paper's Fig. 6 has every mask faster than no mask, because fewer features
# go through the embedding and the $O(n^2)$ democratic pooling. Timings on a shared 2-core machine
# move from run to run (re-run the cell to see by how much), so the timing cell's output is not
# compared between runs and no statement here depends on its values.
#
# ## 7. Retrieval examples
#
# The framework of the parameters (`mask`, `D`) ranks the database for each query; below, the
# query with the highest and the one with the lowest AP, each with its top results framed
# **green** (correct), **orange** (junk: ignored by the mAP) or **red** (wrong).

# %% tags=[]
row = next((r for r in t6 if r["ours"] and r["dim"] == D and r["mask"] == mask), None)
if row is None:
    from selconv_lite.method.pipeline import SelectiveConvPipeline
    row = scoring.fit_evaluate_model(SelectiveConvPipeline.from_preset(D=D, mask=mask, random_state=seed, alpha=alpha), ds, feats, qe_k=0)
aps = ds.evaluate(row["qvecs"], row["dbvecs"])["aps"]
order = np.argsort(-aps, kind="stable")
picked = list(dict.fromkeys([int(order[0]), int(order[-1])] + [int(i) for i in order[1:n_examples - 1]]))[:n_examples]
sims = row["qvecs"] @ row["dbvecs"].T
for qi in picked:
    print(f"query {qi} ({ds.qimlist[qi]}): AP {aps[qi]:.3f}")
    fig = plot_query_results(ds, row["ranks"], qi, k=8, sims=sims, thumb_size=160)
    rec.figure(fig, f"examples_q{qi}")
    nu.show_figure(fig, dpi=100)
    plt.close(fig)
plt.close(fig)
rec.add("example_queries", {ds.qimlist[qi]: float(aps[qi]) for qi in picked})

# %% tags=[]
rec.add("paired", paired)
_ = rec.save()

# %% [markdown] tags=[]
# **What the examples show.** In both lists the first result is the query's own image, framed
# orange: it is junk for its query, so it neither helps nor hurts the AP. In the best query's
# list the correct images show the object in other scenes. In the worst query's list most of the
# wrong images show the query's scene with another object or with none: there the shared
# background, not the object, seems to drive the ranking, the failure that §2 describes for the
# unmasked features and that the MAX mask, default here, reduces but does not remove.
#
# ## Exercises
#
# 1. **Average precision by hand.** For a query with 3 positives ranked 1st, 4th and (after one
#    junk image at rank 2) 6th, compute the AP with the formula at the top and set `my_ap`; then
#    set `my_ap_junk_negative` to the AP when the junk image is counted as a negative. The
#    self-check computes both with `average_precision` of §1.
# 2. **Query expansion.** §1 expanded each query with its top `qe_k` results. Fill `my_qe_map`
#    with the mAP of §1's vectors (`Q`, `X`) with average query expansion at $k = 1, 2, 10$, and
#    `my_wrong_share` with the mean over the queries of the share of the first $k$ results of §1's
#    ranking (`ranks`) that are neither positives nor junk, at the same $k$. When does expansion
#    hurt on this dataset, and why (look at those shares and at the number of positives per
#    query)? The self-check computes both with `ds.evaluate` and `ds.gnd`.
# 3. **The bold entries.** Which framework has the best entry (`*`) of each column of the
#    Table 3 of §2, and which has the paper's best entry (Table 3, Oxford5k:
#    `published.table3_value`)? Fill `my_best_rows` and `my_paper_best_rows` (column → framework,
#    as `t3.rows` names them; a tie at the printed digits counts). Where do they differ? The
#    project behind it (no automatic check): run the notebook with `table3_D=4224` on a held-out
#    set large enough (e.g. `dataset="oxford5k"`) and compare the `*` marks with the paper's.
#
# A graded version of the AP (with junk) is in the course folder
# (`course/source/a3_postprocessing_evaluation`).

# %% tags=[]
my_ap = None                  # your answer: the AP with the junk image removed
my_ap_junk_negative = None    # your answer: the AP with the junk image counted as a negative

if my_ap is None or my_ap_junk_negative is None:
    print("exercise 1: not answered yet")
else:
    ranked = np.arange(6)                                   # ranks 1..6: positives 1, 4, 6, junk 2
    np.testing.assert_allclose(my_ap, average_precision(ranked, [0, 3, 5], [1]), atol=5e-4)
    np.testing.assert_allclose(my_ap_junk_negative, average_precision(ranked, [0, 3, 5], []), atol=5e-4)
    print("exercise 1: correct")

# %% tags=[]
my_qe_map = None        # your answer: {k: mAP with average query expansion over the top k}, k = 1, 2, 10
my_wrong_share = None   # your answer: {k: mean share of the first k results that are neither positive nor junk}

if my_qe_map is None or my_wrong_share is None:
    print("exercise 2: not answered yet")
else:
    for k in (1, 2, 10):
        np.testing.assert_allclose(my_qe_map[k], ds.evaluate(Q, X, qe_k=k)["mAP"], atol=1e-6)
        wrong = [np.mean(~np.isin(ranks[i, :k], np.concatenate([g["ok"], g.get("junk", [])])))
                 for i, g in enumerate(ds.gnd)]
        np.testing.assert_allclose(my_wrong_share[k], np.mean(wrong), atol=1e-6)
    print("exercise 2: correct")

# %% tags=[]
my_best_rows = None         # your answer: {column of t3: the framework with its * here}
my_paper_best_rows = None   # your answer: {column of t3: the framework best in the paper's Table 3, Oxford5k}

if my_best_rows is None or my_paper_best_rows is None:
    print("exercise 3: not answered yet")
else:
    star = t3.best()                                        # the * of each column (ties all marked)
    for j, c in enumerate(t3.cols):
        assert star[t3.rows.index(my_best_rows[c]), j], (c, my_best_rows[c])
        paper_col = [paper_t3(r, c) for r in t3.rows]
        assert paper_t3(my_paper_best_rows[c], c) == max(paper_col), (c, my_paper_best_rows[c])
    print("exercise 3: correct")

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 1</summary>
#
# ```python
# # junk removed: positives at ranks 1, 3, 5 of the junk-free list
# my_ap = ((1 + 1) / 2 + (1 / 2 + 2 / 3) / 2 + (2 / 4 + 3 / 5) / 2) / 3
# # junk counted as a negative: positives at ranks 1, 4, 6
# my_ap_junk_negative = ((1 + 1) / 2 + (1 / 3 + 2 / 4) / 2 + (2 / 5 + 3 / 6) / 2) / 3
# print(f"AP {my_ap:.4f} with the junk image removed, {my_ap_junk_negative:.4f} with it as a negative")
# ```
#
# Each positive adds $\frac{1}{n_+}$ times the mean of the precision just before it and at it.
# Removing the junk image moves the second and third positives up one rank each, so both
# precisions of their steps rise: the AP is higher ($32/45$ against $28/45$). Counting a junk
# image as a negative penalises the method for ranking high an image the ground truth declares
# ambiguous (in Oxford5k a query's own image, or one with the object barely visible), which is
# why `compute_map.m` removes it.
#
# </details>

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 2</summary>
#
# ```python
# ks = (1, 2, 10)
# my_qe_map = {k: ds.evaluate(Q, X, qe_k=k)["mAP"] for k in ks}
# my_wrong_share = {k: np.mean([np.mean(~np.isin(ranks[i, :k], np.concatenate([g["ok"], g["junk"]])))
#                               for i, g in enumerate(ds.gnd)]) for k in ks}
# n_pos = [len(g["ok"]) + len(g["junk"]) for g in ds.gnd]
# first_junk = np.mean([ranks[i, 0] in g["junk"] for i, g in enumerate(ds.gnd)])
# print(f"no expansion: mAP {mAP:.3f}; positives and junk per query: {min(n_pos)} to {max(n_pos)}; "
#       f"the first result is junk for {first_junk:.0%} of the queries")
# for k in ks:
#     print(f"k = {k:2d}: mAP {my_qe_map[k]:.3f}, wrong images among the first {k}: {my_wrong_share[k]:.0%}")
# print(report.paired_claim(ds.evaluate(Q, X, qe_k=1)["aps"], ds.evaluate(Q, X)["aps"], "+QE k=1", "without QE"))
# ```
#
# Average query expansion adds the first $k$ database vectors to the query, right or wrong; it
# assumes they are views of the query's object. Wrong images among them pull the expanded query
# towards other objects, and their share grows with $k$: at $k = 10$ a query with fewer than 10
# positives and junk images together (their range is printed) must be expanded with wrong images,
# even by a perfect ranking. But the printed mAPs show expansion below the plain ranking at every
# $k$ here, $k = 1$ included, where no wrong image is added: the first result is almost always
# junk (the printed share), the query's own database image. It is not cropped to the box, so its
# vector describes the whole scene, whose cluttered background other objects' images share on
# this set ([docs/datasets.md](../docs/datasets.md), "Difficulty"), and adding it moves the
# cropped query from the object towards that scene. The paired line for $k = 1$ says the loss is
# detectable. On Oxford5k the paper's expansion gains (Table 6), where the top results are mostly
# other views of the landmark.
#
# </details>

# %% [markdown] tags=[]
# <details>
# <summary>Solution to exercise 3</summary>
#
# ```python
# star = t3.best()
# my_best_rows = {c: t3.rows[int(np.flatnonzero(star[:, j])[0])] for j, c in enumerate(t3.cols)}
# my_paper_best_rows = {c: max(t3.rows, key=lambda r: paper_t3(r, c)) for c in t3.cols}
# for c in t3.cols:
#     print(f"{c:8s} here: {my_best_rows[c]:16s} paper: {my_paper_best_rows[c]}")
# ```
#
# In the paper (Table 3, Oxford5k) T-emb + democratic has the bold entry of every masked column
# and F-FAemb + democratic that of the no-mask column; compare with the `*` of this run (§2's text
# reads them too), and read §2's paired lines to see whether the best row here is detectably
# ahead of the runner-up (where it is not, the `*` could have gone to the other row on another
# held-out split). At
# `table3_D=4224` on Oxford5k (the project) the same cells compare the marks at the paper's size.
#
# </details>
