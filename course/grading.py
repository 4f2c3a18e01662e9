"""Autograding in isolation: the submission's code runs in a sandbox, the tests run in the grader.

``nbgrader autograde`` normally runs the whole submitted notebook, answer cells and locked test
cells alike, in one kernel with the instructor's rights. This course replaces that step
(``Autograde.autograde_preprocessors`` in ``nbgrader_config.py``) with :class:`SandboxExecute`:

* **the student's code** (the assignment's ``prelude`` cell, then every code cell of the
  submission that is not a provided cell) runs in :class:`Sandbox`: a fresh Python started with
  bubblewrap as the unprivileged user ``nobody`` (uid 65534), in new mount, PID, network, IPC
  and UTS namespaces that hold only the Python installation and an empty private ``/sandbox``
  and ``/tmp`` (size-limited tmpfs): no course folder, no ``source/``, no gradebook, no other
  submission, no selconv_lite, no network, no process of the grader to signal. It is killed at
  the end of each submission, when a test runs past its time limit, and when it dies it is
  started again for the next test (at most ``max_restarts`` times);
* **the tests** (the instructor's setup and test cells, hidden tests included, read from
  ``source/``, never from the submission) run in the grader's own process, where no student code
  ever runs. Each call of a student's function in a test is sent to the sandbox with its
  arguments, and only the returned *values* (numbers, arrays, tensors: :mod:`sandbox_worker`)
  come back, so nothing the answer cells do to names, builtins, numpy or IPython in their own
  process changes how the result is checked;
* a test cell scores its points only if the instructor's test code ran to its end in the grader;
  it gets an error output (0 points in nbgrader's ``SaveAutoGrades``) when it raised, when a
  call of the student's code failed, timed out or killed its process, or when it was not run;
* the retrieval demos (provided cells named ``demo_*``) do not count and are not run at grading.

The gradebook is written afterwards by nbgrader (root) from the cells' outputs. Requirements:
Linux, root (to start the sandbox as another user) and bubblewrap (``bwrap``), which
``scripts/setup_course.sh`` installs from Debian.
"""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import os
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Float, Integer

import sandbox_worker  # the course folder is on the path: nbgrader_config.py puts it there

HERE = Path(__file__).resolve().parent

SANDBOX_UID = 65534  # nobody
PRELUDE_ID = "prelude"


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be started on this machine (not root, or no bubblewrap)."""


class StudentCodeFailed(Exception):
    """A call of the student's code did not return a value (timeout, crash, protocol error)."""


def sandbox_problem() -> str | None:
    """Why the sandbox cannot run here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "grading in the sandbox needs Linux"
    if os.geteuid() != 0:
        return "grading in the sandbox needs root (it starts each submission's code as the user nobody)"
    if shutil.which("bwrap") is None:
        return ("grading in the sandbox needs bubblewrap (bwrap): run `bash scripts/setup_course.sh` "
                "as root, or `apt-get install bubblewrap`")
    return None


def _bwrap_command(worker: Path) -> list[str]:
    """bubblewrap's command line: the Python installation read-only, nothing else of this machine."""
    binds = []  # (path inside = path outside) read-only binds below the system directories
    for path in {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parents[1]}:
        if path != Path("/usr") and Path("/usr") not in path.parents:
            binds.append(path)
    cmd = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session", "--clearenv",
           "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
           "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
           "--perms", "1777", "--size", str(256 * 2 ** 20), "--tmpfs", "/tmp",
           "--perms", "1777", "--size", str(64 * 2 ** 20), "--tmpfs", "/dev/shm",
           "--perms", "1777", "--size", str(256 * 2 ** 20), "--tmpfs", "/sandbox"]
    made = {Path("/")}
    for path in sorted(set(binds)):
        for parent in reversed(path.parents):  # the folders above a bind, readable by the user
            if parent not in made:
                cmd += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        cmd += ["--ro-bind", str(path), str(path)]
        made.add(path)
    spec = importlib.util.find_spec("selconv_lite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if any(Path(location).is_relative_to(b) for b in binds):  # a non-editable install: hide it
            cmd += ["--tmpfs", str(location)]
    cmd += ["--perms", "0755", "--dir", "/grader", "--ro-bind", str(worker), "/grader/worker.py",
            "--chdir", "/sandbox", "--setenv", "HOME", "/sandbox", "--setenv", "PATH", "/usr/bin:/bin"]
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        cmd += ["--setenv", var, "1"]
    cmd += ["/usr/bin/setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            str(Path(sys.prefix) / "bin" / "python"), "-I", "/grader/worker.py"]
    return cmd


def _limits() -> None:  # run in the child before bwrap: inherited by the student's process
    os.setsid()
    resource.setrlimit(resource.RLIMIT_NPROC, (256, 256))
    resource.setrlimit(resource.RLIMIT_AS, (8 * 2 ** 30, 8 * 2 ** 30))  # virtual: torch alone maps ~3 GiB
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 2 ** 20, 64 * 2 ** 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Sandbox:
    """One submission's code in a bubblewrap sandbox, as the user nobody (see the module docstring)."""

    def __init__(self, prelude: str, cells: list[tuple[str, str]], load_timeout: float = 120.0,
                 max_restarts: int = 3):
        problem = sandbox_problem()
        if problem:
            raise SandboxUnavailable(problem)
        self.prelude, self.cells = prelude, cells
        self.load_timeout, self.restarts_left = load_timeout, max_restarts
        self.proc = None
        self.load_results = None
        self.fatal = None  # why no call can be made any more
        self._log = tempfile.TemporaryFile()

    # -- process -------------------------------------------------------------------------------
    def _start(self) -> None:
        self.proc = subprocess.Popen(_bwrap_command(HERE / "sandbox_worker.py"), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, preexec_fn=_limits)
        try:
            results = self._request({"op": "load", "prelude": self.prelude, "cells": self.cells},
                                    time.monotonic() + self.load_timeout)
        except StudentCodeFailed as exc:
            self.kill()
            self.fatal = f"your answer cells could not be run: {exc}"
            raise StudentCodeFailed(self.fatal) from None
        if self.load_results is None:
            self.load_results = results["cells"]

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError):
                    stream.close()
            self.proc = None

    def close(self) -> None:
        """End the sandbox: its standard input closed, the worker ends (so that its CPU time is
        accounted to the grader), or it is killed after 5 s."""
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        self.kill()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def load(self) -> list[dict]:
        """Start the sandbox and run the student's cells; their outputs (``id``, ``stdout``, ``error``)."""
        with contextlib.suppress(StudentCodeFailed):
            self._start()
        return self.load_results or []

    # -- messages ------------------------------------------------------------------------------
    def _read(self, n: int, deadline: float) -> bytes:
        fd, data = self.proc.stdout.fileno(), b""
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(n - len(data), 2 ** 20))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _request(self, message: dict, deadline: float) -> dict:
        import json

        try:
            data = json.dumps(message).encode()
            self.proc.stdin.write(struct.pack(">Q", len(data)) + data)
            self.proc.stdin.flush()
            (n,) = struct.unpack(">Q", self._read(8, deadline))
            if n > sandbox_worker.MAX_FRAME:
                raise ValueError(f"an answer of {n} bytes")
            return json.loads(self._read(n, deadline))
        except TimeoutError:
            self.kill()
            raise StudentCodeFailed("it did not finish within the time limit") from None
        except (EOFError, BrokenPipeError, ConnectionError):
            self.kill()
            raise StudentCodeFailed("it stopped the Python process that runs your code "
                                    "(killed, os._exit, or out of memory)") from None
        except ValueError as exc:
            self.kill()
            raise StudentCodeFailed(f"it sent back something unreadable ({exc})") from None

    def call(self, name: str, args: tuple, deadline: float, backward: bool = False):
        """``name(*args)`` in the sandbox: ``(True, value)`` or ``(False, "Ename: message")``."""
        if self.fatal:
            raise StudentCodeFailed(self.fatal)
        if self.proc is None or self.proc.poll() is not None:
            if self.restarts_left <= 0:
                self.fatal = "your code stopped its process too many times"
                raise StudentCodeFailed(self.fatal)
            self.restarts_left -= 1
            self.kill()
            self._start()
        answer = self._request({"op": "call", "name": name, "args": [sandbox_worker.encode(a) for a in args],
                                "backward": backward}, deadline)
        if not answer.get("ok"):
            return False, (str(answer.get("ename")), str(answer.get("evalue")))
        try:
            return True, sandbox_worker.decode(answer["value"])
        except (ValueError, TypeError, KeyError) as exc:
            raise StudentCodeFailed(f"it returned something unreadable ({exc})") from None


# ------------------------------------------------------------------------------------------------
# the tests, run in the grader
# ------------------------------------------------------------------------------------------------
class StudentFunction:
    """Stands for the student's function ``name`` in the grader's namespace: calls go to the sandbox."""

    def __init__(self, name: str, judge: "Judge"):
        self.__name__ = name
        self._judge = judge

    def __call__(self, *args):
        return self._judge.call_student(self, *args, case="a call")


def solution_names(source_nb) -> list[str]:
    """The functions the answer cells of the source notebook define (the names the tests call)."""
    names = []
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            names += [n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)]
    return names


class Judge:
    """The instructor's provided and test cells of one notebook, with the student's functions in a sandbox."""

    def __init__(self, source_nb, source_dir: Path, sandbox: Sandbox, cell_timeout: float,
                 submission_timeout: float, load_errors: dict[str, str]):
        self.source_nb, self.source_dir, self.sandbox = source_nb, Path(source_dir), sandbox
        self.cell_timeout = cell_timeout
        self.end = time.monotonic() + submission_timeout
        self.deadline = self.end
        self.load_errors = load_errors
        self.namespace = {"__name__": "__main__"}

    def call_student(self, fn, *args, off=(), case="", backward=False):  # noqa: ARG002 (off: see docstring)
        """The grading version of the notebooks' ``call_student``: ``fn`` runs in the sandbox, where
        selconv_lite is not installed at all, so ``off`` has nothing left to switch off."""
        if not isinstance(fn, StudentFunction):
            raise TypeError(f"{case}: the tests may only call the student's functions through call_student")
        name = fn.__name__
        try:
            ok, value = self.sandbox.call(name, args, min(self.deadline, self.end), backward=backward)
        except StudentCodeFailed as exc:
            raise AssertionError(f"{case}: {name} failed: {exc}. The test counts as failed.") from None
        if ok:
            return value
        ename, evalue = value
        if ename == "NotImplementedError":
            raise AssertionError(f"{name} is not implemented yet")
        if ename == "NameError" and evalue == f"{name} is not defined":
            why = "; ".join(self.load_errors.values())
            hint = (" (selconv_lite is not available when your work is graded: implement the step yourself)"
                    if "selconv_lite" in why else "")
            raise AssertionError(f"{case}: {name} is not defined when your answer cells run on their own"
                                 + (f": {why}" if why else "") + hint)
        raise AssertionError(f"{case}: {name} raised {ename}: {evalue}")

    def run_cell(self, grade_id: str, source: str, student_names: list[str]) -> list:
        """Run one provided cell in the grader; its outputs (an error output when it did not end)."""
        self.deadline = time.monotonic() + self.cell_timeout
        out = io.StringIO()
        cwd = os.getcwd()
        try:
            if time.monotonic() > self.end:
                raise AssertionError("the time limit of the whole submission was reached before this test")
            os.chdir(self.source_dir)  # the setup cells read the instructor's data file
            with contextlib.redirect_stdout(out):
                exec(compile(source, f"<{grade_id}>", "exec"), self.namespace)
            error = None
        except Exception as exc:  # noqa: BLE001 (any failure of the test code fails the test)
            error = exc
        finally:
            os.chdir(cwd)
            # the grading versions replace what the provided cells define
            self.namespace["call_student"] = self.call_student
            for name in student_names:
                self.namespace[name] = StudentFunction(name, self)
        outputs = []
        if out.getvalue():
            outputs.append(nbformat.v4.new_output("stream", name="stdout", text=out.getvalue()[-20000:]))
        if error is not None:
            lines = traceback.format_exception_only(type(error), error)
            outputs.append(nbformat.v4.new_output("error", ename=type(error).__name__,
                                                  evalue=str(error)[:5000], traceback=lines))
        return outputs


def _gid(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def provided_cells(source_nb):
    """The instructor's locked cells of the source notebook: ``(grade_id, source, is_test)``."""
    out = []
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("locked") and not meta.get("solution"):
            out.append((meta["grade_id"], cell.source, bool(meta.get("grade"))))
    return out


def grade_notebook(nb, source_nb, source_dir, *, cell_timeout=60.0, submission_timeout=600.0,
                   load_timeout=120.0, max_restarts=3):
    """Fill ``nb`` (a submission whose provided cells nbgrader has restored) with outputs: the
    student's cells from the sandbox, the provided and test cells from the grader."""
    provided = provided_cells(source_nb)
    provided_ids = {gid for gid, _, _ in provided}
    prelude = next((src for gid, src, _ in provided if gid == PRELUDE_ID), "")
    student_cells = [(_gid(c) or f"cell {i}", c.source) for i, c in enumerate(nb.cells)
                     if c.cell_type == "code" and _gid(c) not in provided_ids]
    results = {}
    with Sandbox(prelude, student_cells, load_timeout=load_timeout, max_restarts=max_restarts) as sandbox:
        loaded = {r["id"]: r for r in sandbox.load()}
        load_errors = {cid: r["error"] for cid, r in loaded.items() if r["error"]}
        if sandbox.fatal:
            load_errors["(all)"] = sandbox.fatal
        judge = Judge(source_nb, source_dir, sandbox, cell_timeout, submission_timeout, load_errors)
        names = solution_names(source_nb)
        for gid, src, is_test in provided:
            if gid.startswith("demo_"):
                results[gid] = [nbformat.v4.new_output(
                    "stream", name="stdout", text="(the retrieval demo is not run at grading; it does not count)\n")]
            else:
                results[gid] = judge.run_cell(gid, src, names)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        gid = _gid(cell)
        if gid in provided_ids:
            cell.outputs = results[gid]
        else:
            r = loaded.get(gid or f"cell {i}", {"stdout": "", "error": None})
            cell.outputs = []
            if r["stdout"]:
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=r["stdout"]))
            if r["error"]:
                ename, _, evalue = r["error"].partition(": ")
                cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                                           traceback=[r["error"]]))
            if cell.metadata.get("nbgrader", {}).get("grade"):  # a test cell that is not the instructor's
                cell.outputs.append(nbformat.v4.new_output(
                    "error", ename="AssertionError", evalue="not a test of this assignment", traceback=[]))
        cell.execution_count = None
    return nb


class SandboxExecute(Preprocessor):
    """nbgrader's ``Execute`` step replaced by :func:`grade_notebook` (see the module docstring)."""

    enabled = Bool(True)  # nbconvert's preprocessors are off unless enabled
    cell_timeout = Float(60.0, help="seconds for one test cell, the student's calls included").tag(config=True)
    submission_timeout = Float(600.0, help="seconds for all the tests of one notebook").tag(config=True)
    load_timeout = Float(120.0, help="seconds to start the sandbox and run the answer cells").tag(config=True)
    max_restarts = Integer(3, help="times the sandbox is started again after the student's code killed it"
                           ).tag(config=True)

    def preprocess(self, nb, resources):
        from nbgrader.coursedir import CourseDirectory

        info = resources["nbgrader"]
        coursedir = CourseDirectory(config=self.config)
        source_dir = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"]))
        source_nb = nbformat.read(source_dir / f"{info['notebook']}.ipynb", as_version=4)
        grade_notebook(nb, source_nb, source_dir, cell_timeout=self.cell_timeout,
                       submission_timeout=self.submission_timeout, load_timeout=self.load_timeout,
                       max_restarts=self.max_restarts)
        return nb, resources
