"""A distributed engine for extraction and encoding, on Dask distributed.

The same job runs on a :class:`distributed.LocalCluster` of worker processes on one machine, or
on any Dask cluster given its scheduler address (``tcp://host:8786``; start one with
``dask scheduler`` and ``dask worker tcp://host:8786 --nthreads 1`` on each node, one worker
per GPU with ``CUDA_VISIBLE_DEVICES``).

* The unit of work is a shard of images (see :mod:`selconv_lite.scale.stream`); each task
  returns the shard's final vectors, computed by the same function as the serial path
  (:func:`~selconv_lite.scale.stream.encode_images`), so the results are the same bits.
* The fitted pipeline and the extractor's settings travel once to every worker in a worker
  plugin, which also runs on workers that join or restart later; the extractor is built
  there once per worker process and cached, so the VGG16 weights are loaded once per worker,
  not once per task.
* A worker that dies mid-job loses its running task; the scheduler runs it again on another
  worker (up to ``allowed_failures`` times). The driver writes each shard once, when its
  result arrives, so nothing is lost or written twice.

Why Dask rather than Ray: the work is a bag of independent, coarse tasks (a shard is seconds
to minutes of CNN forward passes) with no shared state, which Dask's scheduler retries on
worker loss out of the box; Dask is a pure-Python ``pip`` install that runs on CPU-only
laptops, CI and HPC schedulers (``dask-jobqueue``) alike, with a single scheduler address to
share. Ray's strengths (actors, fractional GPU scheduling, a large object store) are not
needed here: one worker process per GPU with one thread gives GPU workers with Dask too.
"""
from __future__ import annotations

import functools
import os
import time

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin

from ..features.extraction import FeatureExtractor
from .stream import encode_images, extractor_config

__all__ = ["DaskEngine", "EngineError", "worker_extractor", "serial_encode"]


class EngineError(RuntimeError):
    """The cluster cannot be reached or the job failed."""


@functools.lru_cache(maxsize=4)
def _cached_extractor(config_items, num_threads):
    cfg = dict(config_items)
    cfg["layers"] = tuple(cfg["layers"])
    fx = FeatureExtractor(num_threads=num_threads, **cfg)
    fx.trunk  # load the weights now, once in this process
    return fx


def worker_extractor(config: dict, num_threads=None) -> FeatureExtractor:
    """The extractor for ``config`` (see :func:`~selconv_lite.scale.stream.extractor_config`),
    built once per process and reused by every later task of this process."""
    items = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in config.items()))
    return _cached_extractor(items, num_threads)


def extractor_loads() -> int:
    """How many extractors this process has built (1 after any number of tasks of one job)."""
    return _cached_extractor.cache_info().misses


#: pipelines installed on this worker process by :class:`_JobPlugin`, by job key
_JOBS: dict = {}


class _JobPlugin(WorkerPlugin):
    """Installs a job's pipeline and extractor on every worker, including workers that join
    (or are restarted) later: sent once per worker, not once per task."""

    def __init__(self, key, pipeline, config, num_threads):
        self.name = key
        self.key, self.pipeline, self.config, self.num_threads = key, pipeline, config, num_threads

    def setup(self, worker):
        _JOBS[self.key] = (self.pipeline, worker_extractor(self.config, self.num_threads))

    def teardown(self, worker):
        _JOBS.pop(self.key, None)


def _encode_task(key, paths, crops, layer):
    if key not in _JOBS:
        raise EngineError(f"job {key} is not installed on this worker (its plugin did not run)")
    pipeline, fx = _JOBS[key]
    return encode_images(pipeline, fx, paths, crops, layer)


def serial_encode(pipeline, extractor, paths, crops=None, layer="pool5"):
    """The serial path: the same encoding as the engine, in this process."""
    return encode_images(pipeline, extractor, paths, crops, layer)


class DaskEngine:
    """Run extraction + encoding on a Dask cluster.

    Parameters
    ----------
    address : str, optional
        Scheduler address of an existing cluster (``"tcp://10.0.0.1:8786"``). Default: start a
        :class:`~distributed.LocalCluster` of ``n_workers`` processes here.
    n_workers : int, default 2
    threads_per_worker : int, default 1
        Also the number of torch threads of each worker's extractor (one process per core,
        one torch thread each, avoids oversubscription).
    timeout : float, default 10
        Seconds to wait for the scheduler before failing.
    allowed_failures : int, default 3
        How often a task may lose its worker before the job fails.

    Examples
    --------
    >>> with DaskEngine(n_workers=2) as eng:                                # doctest: +SKIP
    ...     X = eng.encode(pipe, FeatureExtractor(max_dim=1024), paths)
    >>> with DaskEngine("tcp://head:8786") as eng:                          # doctest: +SKIP
    ...     StreamEncoder(pipe, fx, "vectors/r1m").run(paths, engine=eng)
    """

    def __init__(self, address=None, n_workers=2, threads_per_worker=1, timeout=10.0,
                 allowed_failures=3):
        import dask
        from distributed import Client, LocalCluster

        self.address = address
        self.threads_per_worker = int(threads_per_worker)
        self._cluster = None
        dask.config.set({"distributed.scheduler.allowed-failures": int(allowed_failures)})
        if address is None:
            self._cluster = LocalCluster(n_workers=int(n_workers),
                                         threads_per_worker=self.threads_per_worker,
                                         processes=True, dashboard_address=None)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(address, timeout=f"{float(timeout)}s")
            except (OSError, TimeoutError) as e:
                raise EngineError(f"cannot reach the Dask scheduler at {address!r} within "
                                  f"{timeout:g} s ({type(e).__name__}: {e}); start it with "
                                  "`dask scheduler` or check the address") from e

    # ------------------------------------------------------------------ context manager
    def close(self):
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def n_workers(self) -> int:
        return len(self.client.scheduler_info()["workers"])

    def worker_pids(self) -> dict:
        """``{worker address: process id}``."""
        return self.client.run(os.getpid)

    def extractor_loads(self) -> dict:
        """``{worker address: number of extractors built}`` (1 each after a job)."""
        return self.client.run(extractor_loads)

    # ------------------------------------------------------------------ jobs
    def encode_shards(self, pipeline, extractor, shards: dict, layer="pool5"):
        """Yield ``(shard index, vectors)`` as shards finish (any order).

        ``shards``: ``{index: (paths, crops or None)}``.
        """
        from distributed import as_completed

        if not shards:
            return
        cfg = extractor_config(extractor)
        cfg["device"] = str(extractor.device) if self.address is None else None
        key = f"selconv-encode-{time.time_ns()}"
        self.client.register_plugin(_JobPlugin(key, pipeline, cfg, self.threads_per_worker))
        futs = {}
        for s, (paths, crops) in shards.items():
            f = self.client.submit(_encode_task, key, list(paths), crops, layer,
                                   key=f"{key}-shard-{s}", pure=False)
            futs[f] = s
        try:
            for f in as_completed(futs):
                try:
                    vecs = f.result()
                except Exception as e:  # noqa: BLE001 - re-raised with the shard named
                    s = futs[f]
                    raise EngineError(f"shard {s} ({len(shards[s][0])} images from "
                                      f"{shards[s][0][0]!r}) failed: {type(e).__name__}: {e}") from e
                yield futs[f], np.asarray(vecs, np.float32)
        finally:
            for f in futs:
                f.release()
            try:
                self.client.unregister_worker_plugin(key)
            except Exception:  # noqa: BLE001 - a worker gone meanwhile; nothing to clean there
                pass

    def encode(self, pipeline, extractor, paths, crops=None, layer="pool5", chunk=16):
        """Final vectors ``(n, D)`` of ``paths`` in their order (tasks of ``chunk`` images)."""
        paths = [str(p) for p in paths]
        starts = range(0, len(paths), int(chunk))
        shards = {i: (paths[a:a + chunk], None if crops is None else list(crops[a:a + chunk]))
                  for i, a in enumerate(starts)}
        out = np.empty((len(paths), int(pipeline.output_dim_)), np.float32)
        seen = set()
        for i, vecs in self.encode_shards(pipeline, extractor, shards, layer):
            if i in seen:
                raise EngineError(f"chunk {i} arrived twice")
            seen.add(i)
            a = i * int(chunk)
            out[a:a + vecs.shape[0]] = vecs
        missing = set(shards) - seen
        if missing:
            raise EngineError(f"chunks {sorted(missing)} never arrived")
        return out
