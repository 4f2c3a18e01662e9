"""The numbers of a fresh notebook run, compared with the committed references within the
stated tolerances (notebooks/reference/*.json, notebooks/reference/tolerances.toml).

Needs the records of a run: ``SELCONV_RECORDS_DIR=<folder of NN_*.json>``. run_tests.sh sets it
to the folder the nbval run wrote into; without it every test here is skipped (the unit tests of
the comparison itself are in tests/test_regression.py).
"""
import os
from pathlib import Path

import pytest

from selconv_lite.teaching.notebook_utils import load_record
from selconv_lite.teaching.regression import compare_record, load_tolerances, reference_dir

RECORDS = os.environ.get("SELCONV_RECORDS_DIR", "")
REFS = sorted(p.stem for p in reference_dir().glob("[0-9][0-9]_*.json"))

pytestmark = pytest.mark.skipif(not RECORDS, reason="SELCONV_RECORDS_DIR not set (run_tests.sh sets it)")


@pytest.mark.parametrize("notebook", REFS)
def test_record_within_tolerance(notebook):
    path = Path(RECORDS) / f"{notebook}.json"
    assert path.is_file(), f"{notebook}: the run wrote no record {path} (did the notebook run?)"
    problems = compare_record(load_record(path), reference_dir(), load_tolerances())
    assert not problems, "\n".join([f"{len(problems)} difference(s) beyond tolerance:", *problems])


def test_every_record_has_a_reference():
    extra = sorted(p.stem for p in Path(RECORDS).glob("[0-9][0-9]_*.json") if p.stem not in REFS)
    assert not extra, (f"records without a reference in {reference_dir()}: {extra} "
                       "(scripts/execute_notebooks.sh writes them)")
