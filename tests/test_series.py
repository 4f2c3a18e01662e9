"""The series runner (the README's main job): executes NN_*.ipynb in order, collects JSON,
writes summary.md, and keeps going after a failing notebook."""
import json
from pathlib import Path

import pytest

from selconv_lite.teaching import series

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks" / "series"


def test_list_notebooks_order_and_filter():
    names = [p.name for p in series.list_notebooks(FIXTURES)]
    assert names == ["01_alpha.ipynb", "02_broken.ipynb", "03_gamma.ipynb"]
    assert [p.name for p in series.list_notebooks(FIXTURES, only=["03"])] == ["03_gamma.ipynb"]
    with pytest.raises(FileNotFoundError, match="matches"):
        series.list_notebooks(FIXTURES, only=["99"])


def test_series_runs_all_and_writes_summary(tmp_path, capsys):
    out = tmp_path / "out"
    rc = series.main(["--out", str(out), "--notebooks", str(FIXTURES)])
    assert rc == 1  # 02_broken fails on purpose
    printed = capsys.readouterr().out
    assert "2/3 notebooks ok" in printed and "summary.md" in printed
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == [
        "01_alpha.ipynb", "02_broken.ipynb", "03_gamma.ipynb"]
    rec = json.loads((out / "01_alpha.json").read_text())
    assert rec["headline"] == {"scaled pi": 6.2832}
    assert rec["results"]["headless"] is True  # the runner sets SELCONV_HEADLESS for the kernel
    assert (out / rec["figures"]["line"]).is_file()
    status = json.loads((out / "series.json").read_text())
    assert [n["status"] for n in status["notebooks"]] == ["ok", "failed", "ok"]
    assert "broken on purpose" in status["notebooks"][1]["error"]
    summary = (out / "summary.md").read_text()
    assert "| scaled pi | 6.283 |" in summary
    assert "| scale squared | 4 |" in summary
    assert "![line](figures/01_alpha_line.png)" in summary
    assert "**failed**: ValueError: broken on purpose" in summary
