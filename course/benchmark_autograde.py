"""Time nbgrader's autograding of a class of N submissions (prints figures; asserts nothing).

The class cycles through the four simulated students of :mod:`simulated_class` (correct,
typical mistakes, library calls, unanswered) under the names ``s000``, ``s001``, ... A copy of
the course is released and graded in a temporary folder. Needs root and bubblewrap (the
autograding sandbox, grading.py). Usage (from the repository root)::

    .venv/bin/python course/benchmark_autograde.py --students 8 [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import simulated_class  # noqa: E402


def _cpu() -> float:
    # nbgrader's own process (the grader and the tests); the student's code runs in bubblewrap
    # sandboxes whose CPU time does not reach this count
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def nbgrader(course_dir: Path, env: dict, *args: str) -> tuple[float, float]:
    """Run one nbgrader command; return its (wall, CPU) seconds."""
    t0, c0 = time.perf_counter(), _cpu()
    subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env, check=True,
                   capture_output=True, text=True)
    return time.perf_counter() - t0, _cpu() - c0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads of each kernel")
    args = ap.parse_args(argv)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("nbgrader_config.py", "grading.py", "sandbox_worker.py", "course_tools.py"):
            shutil.copy(HERE / name, root)
        shutil.copytree(HERE / "source", root / "source")
        names = sorted(p.name for p in (root / "source").iterdir() if p.is_dir())
        t_release = sum(nbgrader(root, env, "generate_assignment", n, "--force")[0] for n in names)
        simulated_class.write_submissions(root, simulated_class.STUDENTS)
        sub = root / "submitted"
        for i in range(args.students):  # rename and copy the four simulated students into N
            src = sub / simulated_class.STUDENTS[i % len(simulated_class.STUDENTS)]
            shutil.copytree(src, sub / f"s{i:03d}")
        for s in simulated_class.STUDENTS:
            shutil.rmtree(sub / s)
        load = os.getloadavg()[0]
        print(f"release of {len(names)} assignments: {t_release:.1f} s")
        wall = cpu = 0.0
        for n in names:
            w, c = nbgrader(root, env, "autograde", n, "--force")
            wall, cpu = wall + w, cpu + c
            print(f"autograde {n}: {args.students} submissions, wall {w:.1f} s ({w / args.students:.1f} s each), "
                  f"grader CPU {c:.1f} s")
        fb = sum(nbgrader(root, env, "generate_feedback", n, "--force")[0] for n in names)
        print(f"autograde, all assignments, {args.students} students: wall {wall:.1f} s "
              f"({wall / args.students:.1f} s per student), grader CPU {cpu:.1f} s (the sandboxed "
              f"student processes not counted); feedback: wall {fb:.1f} s")
        print(f"{os.cpu_count()} CPUs, load average {load:.1f} at the start of grading, "
              f"{args.threads} BLAS thread(s); autograde grades one submission at a time")
        nb = nbformat.read(root / "autograded" / "s000" / names[0] / f"{names[0]}.ipynb", as_version=4)
        assert nb.cells, "autograded notebook is empty"


if __name__ == "__main__":
    main()
