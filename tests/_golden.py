"""Helpers shared by the tests that compare against the authors' golden data (tests/golden/)."""
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread: deterministic sums, and no oversubscription on shared CI machines."""
    with threadpool_limits(1):
        yield


def rel(a, b):
    """Largest absolute difference relative to the largest magnitude of the reference ``b``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b).max() / np.abs(b).max()
