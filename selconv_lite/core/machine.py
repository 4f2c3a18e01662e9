"""What a measurement was run on: the CPU's model name.

Benchmarks and experiment records (``benchmarks/*.py``,
:mod:`selconv_lite.experiments.regimes`) print or store it next to their timings.
"""
from __future__ import annotations

import platform

__all__ = ["cpu_model"]


def cpu_model() -> str:
    """The CPU's model name: the first ``model name`` line of ``/proc/cpuinfo`` (Linux), else
    :func:`platform.processor` or :func:`platform.machine`, else ``"unknown"``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
