"""The sweep runner: a real two-parameter grid on a tiny notebook with papermill."""
import csv
import json
from pathlib import Path

import pytest

from selconv_lite.teaching import sweep

FIXTURE = Path(__file__).parent / "fixtures" / "notebooks" / "tiny_sweep.ipynb"


def test_parse_value_and_grid():
    assert sweep.parse_value("512") == 512
    assert sweep.parse_value("0.5") == 0.5
    assert sweep.parse_value("None") is None
    assert sweep.parse_value("True") is True
    assert sweep.parse_value("max") == "max"
    assert sweep.parse_value("[1, 2]") == "[1, 2]"  # only scalars are parsed
    grid = sweep.build_grid([["mask", "max", "sum"], ["D", "512", "1024"]])
    assert grid == [{"mask": "max", "D": 512}, {"mask": "max", "D": 1024},
                    {"mask": "sum", "D": 512}, {"mask": "sum", "D": 1024}]
    assert sweep.point_name(grid[1]) == "mask-max__D-1024"
    assert sweep.point_name({"w": "a/b c"}) == "w-a%2Fb%20c"
    with pytest.raises(sweep.SweepError, match="twice"):
        sweep.build_grid([["a", "1"], ["a", "2"]])
    with pytest.raises(sweep.SweepError, match="at least one value"):
        sweep.build_grid([["a"]])


def test_unknown_parameter_is_a_clear_error(tmp_path):
    with pytest.raises(sweep.SweepError, match=r"no parameter\(s\) \['nope'\].*'mode'"):
        sweep.run_sweep(FIXTURE, [["nope", "1"]], out=tmp_path, progress=False)
    assert sweep.main([str(FIXTURE), "-p", "nope", "1", "--out", str(tmp_path)]) == 2


def test_two_parameter_grid_with_one_failing_value(tmp_path, capsys):
    out = tmp_path / "sw"
    rc = sweep.main([str(FIXTURE), "-p", "a", "1", "2", "-p", "mode", "x", "y",
                     "-s", "fail_on", "y", "--out", str(out), "--no-progress"])
    assert rc == 1  # some points failed ...
    printed = capsys.readouterr().out
    assert "2/4 points ok" in printed and "FAILED a-1__mode-y" in printed
    # ... but every point ran, one executed copy each
    copies = sorted(p.name for p in (out / "notebooks").glob("*.ipynb"))
    assert copies == [f"tiny_sweep__a-{a}__mode-{m}.ipynb" for a in (1, 2) for m in "xy"]
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["a"], r["mode"], r["status"]) for r in rows] == [
        ("1", "x", "ok"), ("1", "y", "failed"), ("2", "x", "ok"), ("2", "y", "failed")]
    ok = {r["a"]: r for r in rows if r["status"] == "ok"}
    assert ok["1"]["a times factor"] == "2" and ok["2"]["a times factor"] == "4"
    assert ok["2"]["results.third"] == "0.6667"  # rounded by NotebookRecord
    assert "failing on purpose" in rows[1]["error"]
    # each point's JSON record lives in its own folder
    rec = json.loads((out / "points" / "a-2__mode-x" / "tiny_sweep.json").read_text())
    assert rec["params"] == {"a": 2, "mode": "x"} and rec["headline"] == {"a times factor": 4}
    md = (out / "sweep.md").read_text()
    assert "| a | mode | status | a times factor |" in md
    assert "| 2 | x | ok | 4 |" in md
    assert "**failed**: RuntimeError: failing on purpose for mode=y" in md


# ------------------------------------------------------------------------------ bad arguments
def test_point_names_are_unique_and_reversible():
    values = ["sum 50", "sum_50", "sum/50", "a__b", "_x_", "", "50%", "é"]
    names = [sweep.point_name({"mask": v}) for v in values]
    assert len(set(names)) == len(values)
    for v, n in zip(values, names):
        assert "/" not in n and " " not in n and "__" not in n.split("-", 1)[1]
        assert sweep.parse_point_name(n) == {"mask": v}
    two = sweep.point_name({"a": "x__y", "b": "_"})
    assert sweep.parse_point_name(two) == {"a": "x__y", "b": "_"}


def test_colliding_points_are_refused_before_running(tmp_path):
    grid = sweep.build_grid([["mode", "sum 50", "sum_50", "sum/50"]])
    assert len(set(sweep.check_point_names(grid))) == 3
    with pytest.raises(sweep.SweepError, match="same value twice"):
        sweep.check_point_names(sweep.build_grid([["mode", "x", "x"]]))
    with pytest.raises(sweep.SweepError, match="case"):
        sweep.check_point_names(sweep.build_grid([["mode", "Max", "max"]]))
    rc = sweep.main([str(FIXTURE), "-p", "mode", "x", "x", "--out", str(tmp_path / "o")])
    assert rc == 2 and not (tmp_path / "o" / "notebooks").exists()


def test_three_spellings_run_into_three_folders(tmp_path):
    out = tmp_path / "sw"
    rc = sweep.main([str(FIXTURE), "-p", "fail_on", "sum 50", "sum_50", "sum/50", "--out", str(out),
                     "--no-progress"])
    assert rc == 0
    copies = sorted((out / "notebooks").glob("*.ipynb"))
    assert len(copies) == 3
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["fail_on"] for r in rows) == ["sum 50", "sum/50", "sum_50"]
    assert len({r["executed"] for r in rows}) == 3
    for r in rows:
        assert r["status"] == "ok"
        assert sweep.parse_point_name(r["point"]) == {"fail_on": r["fail_on"]}
        assert (out / "points" / r["point"] / "tiny_sweep.json").is_file()


def test_values_are_type_checked_against_the_defaults(tmp_path):
    with pytest.raises(sweep.SweepError, match=r"parameter 'a' expects int .*default.* 1.*'abc'"):
        sweep.run_sweep(FIXTURE, [["a", "abc"]], out=tmp_path, progress=False)
    assert sweep.main([str(FIXTURE), "-p", "a", "2", "x1", "--out", str(tmp_path)]) == 2
    assert sweep.main([str(FIXTURE), "-p", "a", "1", "-s", "a", "0.5", "--out", str(tmp_path)]) == 2
    declared = {"s": {"default": '"x"'}, "f": {"default": "0.5"}, "n": {"default": "None"},
                "b": {"default": "True"}}
    assert sweep.check_parameter_types({"s": 512, "f": 2, "n": "any", "b": False}, declared) == \
        {"s": "512", "f": 2, "n": "any", "b": False}
    with pytest.raises(sweep.SweepError, match="'b' expects bool"):
        sweep.check_parameter_types({"b": 1}, declared)


def test_non_json_notebook_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("# just a python file\nprint(1)\n")
    assert sweep.main([str(bad), "-p", "a", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.ipynb is not a Jupyter notebook" in err and "Traceback" not in err


def test_unwritable_out_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rc = sweep.main([str(FIXTURE), "-p", "a", "1", "--out", str(blocker / "sub")])
    assert rc == 2
    assert "cannot write to the output folder" in capsys.readouterr().err
