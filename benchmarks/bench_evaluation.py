"""Time of compute_map (with its input checks) on Oxford5k-, Paris6k- and 100k-sized rankings.

Prints one line per size: ``python benchmarks/bench_evaluation.py``. The checks (every rank
column a permutation, gnd indices in range) run once per call; membership of positives and junk
is a boolean-table gather per query.
"""
from __future__ import annotations

import time

import numpy as np

from selconv_lite.data import evaluation as ev


def main(repeats: int = 3) -> None:
    rng = np.random.default_rng(0)
    for nb, nq in ((5063, 55), (6392, 70), (100_000, 55)):
        ranks = np.stack([rng.permutation(nb) for _ in range(nq)], axis=1)
        gnd = [{"ok": rng.choice(nb, 50, replace=False), "junk": rng.choice(nb, 20, replace=False)}
               for _ in range(nq)]
        ev.compute_map(ranks, gnd)
        t0 = time.perf_counter()
        for _ in range(repeats):
            ev.compute_map(ranks, gnd)
        dt = (time.perf_counter() - t0) / repeats
        print(f"compute_map  nb={nb:>6}  nq={nq:>3}: {dt * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
