"""The series' landing page (index.html): relative links to the tutorial notebooks and the
executed copies, the paper's values and computed readings, cold/warm wall time, next steps."""
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from selconv_lite.teaching import landing, series

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks" / "series"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "img" and "src" in a:
            self.links.append(a["src"])


def _links(page: Path) -> list[str]:
    p = _Links()
    p.feed(page.read_text(encoding="utf-8"))
    return p.links


def test_fixture_series_writes_a_landing_page(tmp_path, capsys):
    # the layout of a checkout: notebooks/ and outputs/ side by side
    nb_dir = tmp_path / "notebooks"
    shutil.copytree(FIXTURES, nb_dir)
    out = tmp_path / "outputs"
    cache = tmp_path / "cache"
    rc = series.main(["--out", str(out), "--notebooks", str(nb_dir), "--cache-dir", str(cache)])
    assert rc == 1  # 02_broken fails on purpose
    printed = capsys.readouterr().out
    page = out / "index.html"
    assert f"landing page:       {page}" in printed
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<table>" in text
    # no absolute path of this machine anywhere on the page
    assert str(tmp_path) not in text and str(Path.cwd()) not in text
    links = [h for h in _links(page) if not h.startswith("#")]  # in-page heading anchors aside
    lab = [h for h in links if "lab/tree/" in h]  # JupyterLab routes, not files
    assert "../../lab/tree/notebooks/01_alpha.ipynb" in lab and len(lab) == 3
    links = [h for h in links if h not in lab]
    assert links and all(not re.match(r"^(/|[a-z]+:)", h) for h in links), links
    assert "../notebooks/01_alpha.ipynb" in links and "notebooks/01_alpha.ipynb" in links
    for h in links:  # every relative link resolves to an existing file
        assert (out / unquote(h)).resolve().exists(), h
    # tutorial notebooks (to work in) and executed copies (to read), both linked
    targets = {(out / unquote(h)).resolve() for h in links}
    for name in ("01_alpha", "02_broken", "03_gamma"):
        assert (nb_dir / f"{name}.ipynb").resolve() in targets
        assert (out / "notebooks" / f"{name}.ipynb").resolve() in targets
    assert (out / "figures" / "01_alpha_line.png").resolve() in targets
    assert "scaled pi" in text and "6.283" in text
    assert "broken on purpose" in text
    assert "What to do next" in text
    # an empty feature cache: the run is recorded as cold, with its wall time
    runs = json.loads((out / landing.TIMINGS_FILE).read_text())["runs"]
    assert runs[-1]["kind"] == "cold" and runs[-1]["all_ok"] is False
    total = sum(n["seconds"] for n in json.loads((out / "series.json").read_text())["notebooks"])
    assert f"This run: {total:.0f} s" in text


def _result(name, seconds, headline, status="ok"):
    return {"name": name, "status": status, "seconds": seconds, "executed": "",
            "record": {"headline": headline}}


def test_cold_and_warm_runs_are_both_shown(tmp_path):
    out = tmp_path / "outputs"
    out.mkdir()
    r1 = [_result("01_a", 600.0, {"x": 1.0}), _result("02_b", 300.0, {"y": 2.0})]
    landing.write_landing(r1, out, repo=tmp_path, cache_entries=(0, 40))
    r2 = [_result("01_a", 60.0, {"x": 1.0}), _result("02_b", 30.0, {"y": 2.0})]
    page = landing.write_landing(r2, out, repo=tmp_path, cache_entries=(40, 40))
    text = page.read_text(encoding="utf-8")
    assert re.search(r"Last <strong>cold</strong> run at this size \([^)]*\): 900 s \(15\.0 min\)", text)
    assert re.search(r"Last <strong>warm</strong> run at this size \([^)]*\): 90 s \(1\.5 min\)", text)
    # a failed run never becomes the shown cold/warm figure
    r3 = [_result("01_a", 5.0, {}), _result("02_b", 1.0, {}, status="failed")]
    text = landing.write_landing(r3, out, repo=tmp_path, cache_entries=(40, 40)).read_text(encoding="utf-8")
    assert re.search(r"Last <strong>warm</strong> run at this size \([^)]*\): 90 s", text)
    assert "This run: 6 s" in text and "it added 0 entries to the feature cache" in text


def test_run_kind():
    assert landing.run_kind((0, 120)) == "cold"
    assert landing.run_kind((120, 120)) == "warm"
    assert landing.run_kind((120, 180)) is None  # partly extracted: neither
    assert landing.run_kind(None) is None


def test_corrupt_timings_file_is_replaced(tmp_path):
    (tmp_path / landing.TIMINGS_FILE).write_text("{not json")
    landing.write_landing([_result("01_a", 3.0, {})], tmp_path, repo=tmp_path, cache_entries=(0, 0))
    runs = json.loads((tmp_path / landing.TIMINGS_FILE).read_text())["runs"]
    assert len(runs) == 1 and runs[0]["total_seconds"] == 3.0


def test_mask_names_follow_the_notebooks():
    assert landing.normalise_names("sift mask: features kept (%)") == "SIFT mask: features kept (%)"
    assert landing.normalise_names("none mask: pairs in band (%)") == "no mask: pairs in band (%)"
    assert landing.normalise_names("held-out max-masked local features") == "held-out MAX-masked local features"
    assert landing.normalise_names("Fig. 4: M_max, D=512 (mAP)") == "Fig. 4: M_MAX, D=512 (mAP)"


def test_paper_values_beside_the_numbers():
    # Table 6, M_MAX+T-emb+demo 1024-D: Oxford5k 72.2, Paris6k 83.2, Holidays 88.4
    assert landing.paper_value("protocol: M_MAX+T-emb+demo 1024-D (mAP)").startswith("72.2 / 83.2 / 88.4 %")
    # Table 5 has no Holidays column
    assert landing.paper_value("Table 5: MAX mask, max_dim 724 (mAP)").startswith("60.9 / 81.2 / – %")
    assert landing.paper_value("Table 3: T-emb + demo, no mask (mAP)") is not None
    assert landing.paper_value("pool5: receptive field (px)") is None


def test_readings_are_computed_from_the_numbers():
    head = {"protocol: M_MAX+T-emb+demo 1024-D (mAP)": 0.8635,
            "protocol: M_MAX+T-emb+demo 1024-D +QE (mAP)": 0.8221,
            "Fig. 4: M_MAX, D=512 (mAP)": 0.8119, "Fig. 4: M_MAX, D=1024 (mAP)": 0.8635,
            "Fig. 4: no mask, D=512 (mAP)": 0.8071,
            "M_MAX 512-D: mAP before": 0.8119, "M_MAX 512-D: mAP after": 0.7896,
            "MAX mask: features kept (%)": 61.64,
            "M_MAX+T-emb+demo 512-D (mAP)": 0.81, "M_MAX+T-emb+demo 1024-D (mAP)": 0.86}
    qe = landing.reading("protocol: M_MAX+T-emb+demo 1024-D +QE (mAP)", head)
    assert qe.startswith("0.041 below without QE (0.864 → 0.822)")
    assert landing.reading("Fig. 4: M_MAX, D=1024 (mAP)", head).startswith("0.052 above 512-D")
    assert landing.reading("Fig. 4: M_MAX, D=512 (mAP)", head).startswith("0.005 above no mask")
    assert landing.reading("M_MAX 512-D: mAP after", head).startswith("0.022 below before fine-tuning")
    assert landing.reading("MAX mask: features kept (%)", head).startswith("keeps 61.6 %")
    # the paper's own difference between the two settings (Table 6: 72.2-65.7, 83.2-81.6, 88.4-85.0)
    r = landing.reading("M_MAX+T-emb+demo 1024-D (mAP)", head)
    assert "paper: +6.5 points on Oxford5k, +1.6 points on Paris6k, +3.4 points on Holidays" in r
    # no counterpart, no reading
    assert landing.reading("Fig. 4: no mask, D=512 (mAP)", head) is None
    assert landing.reading("protocol: M_MAX+T-emb+demo 1024-D (mAP)", head) is None
    # without a recorded paired interval a difference is not a verdict, and the reading says so
    assert qe.startswith(f"0.041 below without QE (0.864 → 0.822), {landing.NO_INTERVAL}")
    # after / before fine-tuning is the counterpart of an "after", whatever its D
    head["M_MAX 1024-D: mAP before"], head["M_MAX 1024-D: mAP after"] = 0.77, 0.745
    assert landing.reading("M_MAX 1024-D: mAP after", head).startswith("0.025 below before fine-tuning")


def test_readings_print_the_recorded_paired_interval(tmp_path):
    import numpy as np

    from selconv_lite.experiments.report import paired_claim

    rng = np.random.default_rng(0)
    a = rng.beta(2, 2, 70)
    a = np.clip(a, 0, 1 - 1e-3)
    b = np.clip(a - 0.03 + rng.normal(0, 0.03, 70), 0, 1)
    head = {"Fig. 4: M_max, D=512 (mAP)": float(a.mean()), "Fig. 4: no mask, D=512 (mAP)": float(b.mean()),
            "M_MAX 512-D: mAP before": float(a.mean()), "M_MAX 512-D: mAP after": float(a.mean()) + 1e-3,
            "Table 3: T-emb + demo, max mask (mAP)": float(a.mean()),
            "Table 3: T-emb + demo, none mask (mAP)": float(b.mean())}
    # recorded with the notebooks' own (un-normalised) headline names, in either order
    paired = {"mask": paired_claim(a, b, "M_MAX", "no mask", a="Fig. 4: M_max, D=512 (mAP)",
                                   b="Fig. 4: no mask, D=512 (mAP)").record(),
              "ft": paired_claim(a, a + 1e-3, "before", "after", paper_diff=-12.0, a="M_MAX 512-D: mAP before",
                                 b="M_MAX 512-D: mAP after").record(),
              "t3": paired_claim(a, b, "MAX", "no mask", paper_diff=5.0, a="Table 3: T-emb + demo, max mask (mAP)",
                                 b="Table 3: T-emb + demo, none mask (mAP)").record()}
    rows = {q: r for q, _, _, r in landing.headline_rows(head, paired)}
    mask = rows["Fig. 4: M_MAX, D=512 (mAP)"]
    assert re.match(r"M_MAX - no mask = \+0\.0\d\d mAP, 95% CI \[\+0\.\d{3}, \+0\.\d{3}\], p < 0\.001 "
                    r"\(70 queries\): M_MAX better$", mask), mask
    assert landing.NO_INTERVAL not in mask
    # the entry's reading of the paper stays where the landing has no paper difference of its own
    after = rows["M_MAX 512-D: mAP after"]
    assert "before - after = -0.001 mAP" in after and after.endswith("; paper: agrees")
    # ... and gives way to the paper's differences per data set where it has them
    t3 = rows["Table 3: T-emb + demo, MAX mask (mAP)"]
    assert ": MAX better; paper: +" in t3 and "points on Oxford5k" in t3 and "agrees" not in t3
    # the page shows them: a record's results.paired feeds the readings
    out = tmp_path / "outputs"
    out.mkdir()
    res = [{"name": "05_x", "status": "ok", "seconds": 1.0, "executed": "",
            "record": {"headline": head, "results": {landing.PAIRED_KEY: paired}}}]
    text = landing.write_landing(res, out, repo=tmp_path).read_text(encoding="utf-8")
    assert "M_MAX - no mask = +0.0" in text and "(70 queries): M_MAX better" in text


def test_values_are_escaped(tmp_path):
    page = landing.write_landing([_result("01_a", 1.0, {"<script>x</script>": "a|b"})], tmp_path,
                                 repo=tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text


@pytest.mark.parametrize("cold", [True, False])
def test_feature_cache_state(tmp_path, cold):
    if not cold:
        entry = tmp_path / "features-v1" / "w" / "pool5_max1024_float32" / "ab" / "ab12.npz"
        entry.parent.mkdir(parents=True)
        entry.write_bytes(b"")
    assert series.feature_cache_is_empty(tmp_path) is cold
    assert series.feature_cache_entries(tmp_path) == (0 if cold else 1)


def test_lab_link(tmp_path):
    repo = tmp_path
    nb = repo / "notebooks" / "01_a.ipynb"
    assert landing.lab_link(nb, repo / "outputs", repo) == "../../lab/tree/notebooks/01_a.ipynb"
    assert landing.lab_link(nb, repo / "runs" / "x", repo) == "../../../lab/tree/notebooks/01_a.ipynb"
    assert landing.lab_link(nb, tmp_path.parent / "elsewhere", repo) is None


def test_next_steps_offer_the_other_image_size(tmp_path):
    rec = tmp_path / landing.PAPER_SIZE_RECORD
    rec.parent.mkdir(parents=True)
    rec.write_text(json.dumps({"total_seconds": 2323.0, "machine": {"cores": 2}}))
    out = tmp_path / "outputs"
    out.mkdir()
    # the default run is at the paper's 1024 px: it offers the 512-px regime, not itself
    assert landing.DEFAULT_MAX_DIM == 1024
    text = landing.write_landing([_result("01_a", 3.0, {})], out, repo=tmp_path).read_text(encoding="utf-8")
    assert "--max-dim 512" in text and "--max-dim 1024" not in text
    assert "default image size (max_dim 1024, the paper's)" in text
    text = landing.write_landing([_result("01_a", 3.0, {})], out, repo=tmp_path, max_dim=1024).read_text(encoding="utf-8")
    assert "--max-dim 1024" not in text and "--max-dim 512" in text and "every notebook at max_dim 1024" in text
    # a run at a smaller size offers the paper's size with its measured cold time
    text = landing.write_landing([_result("01_a", 3.0, {})], out, repo=tmp_path, max_dim=512).read_text(encoding="utf-8")
    assert "--max-dim 1024" in text and "38.7 min on 2 CPU cores" in text and "--max-dim 512`" not in text
    # no record (or a broken one): the step stays, without a time
    rec.write_text("{broken")
    text = landing.write_landing([_result("01_a", 3.0, {})], out, repo=tmp_path, max_dim=512).read_text(encoding="utf-8")
    assert "--max-dim 1024" in text and "measured from an empty feature cache" not in text
