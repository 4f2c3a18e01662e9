"""selconv_lite.scale.stream: vectors equal the pipeline's, shards are resumable and verified,
another pipeline's folder is refused, memory does not hold the maps."""
import json

import numpy as np
import pytest

from _scale_helpers import extractor, fitted_pipeline, photos
from selconv_lite.scale.stream import (IdentityMismatchError, ShardError, StreamEncoder,
                                       load_vectors, pipeline_identity)


@pytest.fixture(scope="module")
def setup():
    fx = extractor()
    return fx, fitted_pipeline(fx)


@pytest.fixture(scope="module")
def expected(setup):
    fx, pipe = setup
    paths = photos(7)
    return paths, pipe.transform([fx.extract(p)["pool5"] for p in paths])


def test_stream_equals_pipeline_and_resumes(setup, expected, tmp_path):
    fx, pipe = setup
    paths, want = expected
    enc = StreamEncoder(pipe, fx, tmp_path, shard_size=3)
    s = enc.run(paths)
    assert (s.n_shards, s.encoded, s.reused, s.repaired) == (3, [0, 1, 2], [], {})
    ids, X = load_vectors(tmp_path, identity=enc.identity)
    assert ids == paths and X.dtype == np.float32
    np.testing.assert_array_equal(X, want)
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["identity"] == enc.identity and man["dim"] == pipe.output_dim_
    assert [man["shards"][k]["count"] for k in "012"] == [3, 3, 1]
    # a second run keeps every intact shard
    s2 = StreamEncoder(pipe, fx, tmp_path, shard_size=3).run(paths)
    assert (s2.encoded, s2.reused) == ([], [0, 1, 2])


def test_truncated_and_altered_shards_are_detected_and_encoded_again(setup, expected, tmp_path):
    fx, pipe = setup
    paths, want = expected
    enc = StreamEncoder(pipe, fx, tmp_path, shard_size=3)
    enc.run(paths)
    f0, f2 = tmp_path / "shard_00000.npy", tmp_path / "shard_00002.npy"
    f0.write_bytes(f0.read_bytes()[:-40])  # truncated (an interrupted copy)
    raw = bytearray(f2.read_bytes())
    raw[-1] ^= 0xFF  # one flipped byte: same size, different content
    f2.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match="shard 0 .*sha256"):
        load_vectors(tmp_path)
    s = enc.run(paths)
    assert s.encoded == [0, 2] and s.reused == [1] and set(s.repaired) == {0, 2}
    assert "sha256" in s.repaired[0]
    np.testing.assert_array_equal(load_vectors(tmp_path)[1], want)
    (tmp_path / "shard_00001.npy").unlink()
    assert "missing" in enc.run(paths).repaired[1]
    np.testing.assert_array_equal(load_vectors(tmp_path)[1], want)


def test_another_pipeline_is_refused_naming_both_identities(setup, expected, tmp_path):
    fx, pipe = setup
    paths, _ = expected
    enc = StreamEncoder(pipe, fx, tmp_path, shard_size=4)
    enc.run(paths[:4])
    other = fitted_pipeline(fx, alpha=0.7)  # other parameters, same learned weights
    enc2 = StreamEncoder(other, fx, tmp_path, shard_size=4)
    assert enc2.identity != enc.identity
    with pytest.raises(IdentityMismatchError) as e:
        enc2.run(paths[:4])
    msg = str(e.value)
    assert enc.identity in msg and enc2.identity in msg and "params" in msg
    with pytest.raises(IdentityMismatchError, match=enc.identity):
        load_vectors(tmp_path, identity=enc2.identity)
    # other learned weights (another seed) with the same parameters are another pipeline too
    reseeded = fitted_pipeline(fx, n_train=5)
    assert pipeline_identity(reseeded, fx)["params"] == pipeline_identity(pipe, fx)["params"]
    with pytest.raises(IdentityMismatchError, match="fitted"):
        StreamEncoder(reseeded, fx, tmp_path, shard_size=4).run(paths[:4])


def test_bad_input(setup, tmp_path):
    fx, pipe = setup
    from selconv_lite.method.pipeline import SelectiveConvPipeline

    with pytest.raises(ValueError, match="not fitted"):
        StreamEncoder(SelectiveConvPipeline(), fx, tmp_path)
    with pytest.raises(ValueError, match="shard_size"):
        StreamEncoder(pipe, fx, tmp_path, shard_size=0)
    with pytest.raises(ValueError, match="layer 'conv5_3'"):
        StreamEncoder(pipe, fx, tmp_path, layer="conv5_3")
    enc = StreamEncoder(pipe, fx, tmp_path, shard_size=2)
    with pytest.raises(ValueError, match="ids must be unique"):
        enc.run(photos(2), ids=["a", "a"])
    enc.run(photos(2))
    with pytest.raises(ValueError, match="other ids"):
        enc.run(photos(3)[1:])
    with pytest.raises(ShardError, match="not a vector folder"):
        load_vectors(tmp_path / "nowhere")
