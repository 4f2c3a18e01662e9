"""The encoding cost model of the distractor sets (selconv_lite.scale.cost)."""
import pytest

from selconv_lite.scale import cost


def test_distractor_info_sizes_and_hours():
    info = cost.distractor_info("R1M", seconds_per_image={"cpu": 3.6, "gpu": 0.036})
    assert info["images"] == 1_001_001 and info["archives"] == 100
    assert info["hours"]["cpu"] == pytest.approx(1_001_001 * 3.6 / 3600)
    assert info["hours"]["gpu"] == pytest.approx(10.01001)
    assert info["pq64_MB"] == pytest.approx(64.064064) and info["vectors_GB_D1024"] == pytest.approx(4.1001)
    f = cost.distractor_info("flickr100k")
    assert f["images"] == 100_071 and set(f["hours"]) == set(cost.MEASURED_SECONDS_PER_IMAGE)
    assert all(h > 0 for h in f["hours"].values())


def test_distractor_info_unknown_set_names_the_choices():
    with pytest.raises(KeyError, match="unknown distractor set 'r2m'; choose from flickr100k, revisitop1m"):
        cost.distractor_info("r2m")
