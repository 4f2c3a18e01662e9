"""selconv_lite.scale.engine: a local Dask cluster of 2 worker processes gives the serial
vectors; a worker killed mid-job is replaced and nothing is lost or written twice; the weights
are loaded once per worker; an unreachable scheduler fails fast naming its address."""
import os
import signal
import time

import numpy as np
import pytest

from _scale_helpers import extractor, fitted_pipeline, photos
from selconv_lite.scale.engine import DaskEngine, EngineError, serial_encode
from selconv_lite.scale.stream import StreamEncoder, load_vectors

JOB_LIMIT_S = 150  # the whole cluster test is aborted past this (normally well under a minute)


class _Alarm:
    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        def fail(*_):
            raise TimeoutError(f"the engine job took more than {self.seconds} s")
        self.old = signal.signal(signal.SIGALRM, fail)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)


class _KillOneWorkerAfterFirstShard:
    """Wraps an engine: once the first shard arrives, SIGKILL one worker process."""

    def __init__(self, engine):
        self.engine = engine
        self.killed = None
        self.arrived = []

    def encode_shards(self, *args, **kwargs):
        for s, vecs in self.engine.encode_shards(*args, **kwargs):
            self.arrived.append(s)
            if self.killed is None:
                addr, pid = sorted(self.engine.worker_pids().items())[0]
                os.kill(pid, signal.SIGKILL)
                self.killed = addr
            yield s, vecs


def test_local_cluster_equals_serial_and_survives_a_killed_worker(tmp_path):
    fx = extractor()
    pipe = fitted_pipeline(fx)
    paths = photos(6)
    want = serial_encode(pipe, fx, paths)
    with _Alarm(JOB_LIMIT_S), DaskEngine(n_workers=2, threads_per_worker=1) as eng:
        assert eng.n_workers == 2
        got = eng.encode(pipe, fx, paths, chunk=2)  # 3 tasks on 2 workers
        np.testing.assert_array_equal(got, want)
        loads = eng.extractor_loads()
        # 3 tasks on 2 workers: one worker ran at least 2, yet no worker built its extractor
        # (loaded the weights) more than once
        assert set(loads.values()) <= {0, 1} and sum(loads.values()) >= 1, loads

        killer = _KillOneWorkerAfterFirstShard(eng)
        enc = StreamEncoder(pipe, fx, tmp_path, shard_size=2)
        s = enc.run(paths, engine=killer)
        assert killer.killed is not None
        assert sorted(killer.arrived) == list(range(3)) == s.encoded  # each shard once
        ids, X = load_vectors(tmp_path, identity=enc.identity)
        assert ids == paths
        np.testing.assert_array_equal(X, want)
        # the killed worker's pid is gone from the cluster (a nanny starts a new process)
        deadline = time.time() + 30
        while time.time() < deadline and killer.killed in eng.worker_pids():
            time.sleep(0.5)
        assert all(n <= 1 for n in eng.extractor_loads().values())


def test_unreachable_scheduler_fails_fast_with_its_address():
    t = time.time()
    with pytest.raises(EngineError, match=r"tcp://127\.0\.0\.1:9"):
        DaskEngine("tcp://127.0.0.1:9", timeout=2)
    assert time.time() - t < 30
