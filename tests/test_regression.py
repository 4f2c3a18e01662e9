"""The regression check of the notebooks' numbers (selconv_lite.teaching.regression): a value
moved past its tolerance fails with a message naming the notebook, the key, both values and the
tolerance; a value inside tolerance passes; missing and extra keys are reported; timings are
excluded. Also checks the committed tolerance file and reference files themselves."""
import json
import math

import pytest

from selconv_lite.teaching import regression as rg

TOML = '''
[tolerances]
"*:*seconds*" = inf   # timings: excluded
"04_*:results.*map*" = 0.01
"*:headline.*kept*" = 0.5
"*" = 0.0
'''


def _record(**results):
    return {"notebook": "04_aggregation", "schema": 1, "params": {"D": 128, "mask": "max"},
            "headline": {"MAX mask: kept (%)": 31.25},
            "figures": {"fig": "figures/04_aggregation_fig.png"},
            "results": {"table3_map": [0.757, 0.75], "n_images": 92, "fit_seconds": 12.3,
                        **results}}


@pytest.fixture()
def refdir(tmp_path):
    (tmp_path / "tolerances.toml").write_text(TOML)
    rg.update_references([_record()], tmp_path)
    return tmp_path


def test_reference_file_leaves_out_timings_and_figures(refdir):
    ref = json.loads((refdir / "04_aggregation.json").read_text())
    assert ref["notebook"] == "04_aggregation"
    assert ref["values"] == {"params.D": 128, "params.mask": "max",
                             "headline.MAX mask: kept (%)": 31.25,
                             "results.table3_map.0": 0.757, "results.table3_map.1": 0.75,
                             "results.n_images": 92}


def test_identical_and_within_tolerance_pass(refdir):
    assert rg.compare_record(_record(), refdir) == []
    rec = _record(table3_map=[0.757 + 0.0099, 0.75 - 0.01], fit_seconds=99.0)
    rec["headline"]["MAX mask: kept (%)"] = 31.7
    assert rg.compare_record(rec, refdir) == []


def test_perturbed_value_fails_naming_everything(refdir):
    rec = _record(table3_map=[0.757, 0.772])
    problems = rg.compare_record(rec, refdir)
    assert len(problems) == 1
    msg = problems[0]
    for part in ("04_aggregation", "results.table3_map.1", "0.772", "0.75", "tolerance 0.01",
                 "0.022"):
        assert part in msg, (part, msg)


def test_integers_and_strings_must_be_equal(refdir):
    rec = _record(n_images=91)
    rec["params"]["mask"] = "sum"
    problems = rg.compare_record(rec, refdir)
    assert any("results.n_images = 91, reference 92" in p for p in problems)
    assert any('params.mask = "sum", reference "max"' in p for p in problems)
    assert len(problems) == 2


def test_nan_against_number_fails(refdir):
    rec = _record(table3_map=[None, 0.75])
    problems = rg.compare_record(rec, refdir)
    assert problems == ["04_aggregation: results.table3_map.0 = null, reference 0.757 "
                        "(a number on one side only)"]


def test_missing_and_extra_keys_are_reported(refdir):
    rec = _record(table3_map=[0.757], new_number=1.5)
    problems = rg.compare_record(rec, refdir)
    assert any("results.table3_map.1 is missing from the record" in p for p in problems)
    assert any("results.new_number = 1.5 is not in the reference" in p for p in problems)


def test_compare_folder_reports_a_missing_record(refdir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("run")
    assert rg.compare_folder(runs, refdir) == [
        f"04_aggregation: no record 04_aggregation.json in {runs} (did the notebook run?)"]
    (runs / "04_aggregation.json").write_text(json.dumps(_record(table3_map=[0.70, 0.75])))
    (problem,) = rg.compare_folder(runs, refdir)
    assert "results.table3_map.0 = 0.7, reference 0.757" in problem


def test_bad_tolerance_files(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text('[tolerances]\n"*" = -1\n')
    with pytest.raises(ValueError, match="must be a number >= 0"):
        rg.load_tolerances(p)
    p.write_text('[other]\n"*" = 1\n')
    with pytest.raises(ValueError, match=r"\[tolerances\]"):
        rg.load_tolerances(p)
    p.write_text('[tolerances]\n"01_*" = 0.1\n')
    with pytest.raises(KeyError, match="no tolerance pattern matches 02_masks:x"):
        rg.load_tolerances(p).lookup("02_masks", "x")
    with pytest.raises(FileNotFoundError, match="no tolerance file"):
        rg.load_tolerances(tmp_path / "missing.toml")


def test_committed_tolerances_and_references_are_consistent():
    tol = rg.load_tolerances()
    assert tol.lookup("99_anything", "results.whatever")[0] == 0.0  # catch-all: exact
    refs = sorted(rg.reference_dir().glob("[0-9][0-9]_*.json"))
    assert refs, "no committed reference files in notebooks/reference"
    for path in refs:
        ref = rg.load_reference(path)
        assert ref["notebook"] == path.stem
        for key, value in ref["values"].items():
            t, _ = tol.lookup(path.stem, key)
            assert not math.isinf(t), f"{path.name}: excluded key {key} is stored"
            assert value is None or isinstance(value, (int, float, str, bool, list, dict)), key
