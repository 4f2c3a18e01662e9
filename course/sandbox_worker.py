"""The process that runs a student's code at grading time, inside the sandbox (see grading.py).

It is started by the grader as an unprivileged user in a bubblewrap sandbox that holds only the
Python installation, a private empty ``/sandbox`` and ``/tmp``: no course files, no gradebook, no
other submission, no selconv_lite, no network. It reads requests from the grader on its standard
input and answers on its standard output, one frame each (8-byte big-endian length, then JSON):

* ``{"op": "load", "prelude": src, "cells": [[cell_id, src], ...]}``: run the assignment's
  prelude, then every code cell of the submission that is not a provided cell, in order, in one
  namespace (as a kernel would; a cell that raises does not stop the next one). Answer:
  ``{"cells": [{"id", "stdout", "error"}, ...]}``.
* ``{"op": "call", "name": fn, "args": [...], "backward": bool}``: call ``fn(*args)`` from that
  namespace. Answer ``{"ok": true, "value": ...}`` (with ``backward``, the value is
  ``[result, gradients]``: the result's ``backward()`` is run here and the gradients of the
  tensor arguments that require them are sent back) or ``{"ok": false, "ename", "evalue"}``.

Values travel as JSON: numbers, strings, ``None``, lists, tuples, numpy arrays and scalars of
bool/int/float dtypes and torch tensors (:func:`encode` / :func:`decode`); nothing is unpickled.
The grader only ever decodes what comes back, so a submission can hand back values, never code.
Standard output of the student's code is captured (or goes to standard error): the protocol
channel is a private duplicate of the original standard output.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import struct
import sys

MAX_FRAME = 256 * 2 ** 20  # bytes of one message
_DTYPE_KINDS = "biuf"      # bool, signed and unsigned integers, floats


# ------------------------------------------------------------------------------------------------
# values <-> JSON (used on both sides)
# ------------------------------------------------------------------------------------------------
def encode(value):
    """A JSON-able form of ``value`` (see the module docstring); TypeError for anything else."""
    import numpy as np

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, np.generic) and value.dtype.kind in _DTYPE_KINDS:
        return {"scalar": [value.dtype.str, base64.b64encode(value.tobytes()).decode()]}
    if isinstance(value, np.ndarray) and value.dtype.kind in _DTYPE_KINDS:
        a = value.copy(order="C")  # (np.ascontiguousarray turns 0-d into 1-d)
        return {"array": [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode()]}
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return {"tensor": encode(value.detach().cpu().numpy()), "requires_grad": bool(value.requires_grad)}
    raise TypeError(f"a value of type {type(value).__name__} cannot be sent back to the grader "
                    "(return numbers, tuples, lists, numpy arrays or torch tensors)")


def _dtype(s):
    import numpy as np

    dt = np.dtype(s)
    if dt.kind not in _DTYPE_KINDS or dt.hasobject:
        raise ValueError(f"dtype {s!r} is not allowed")
    return dt


def decode(value):
    """The value :func:`encode` sent (arrays are fresh, writable copies)."""
    import numpy as np

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict) and len(value) in (1, 2):
        if "tuple" in value:
            return tuple(decode(v) for v in value["tuple"])
        if "scalar" in value:
            dt = _dtype(value["scalar"][0])
            return np.frombuffer(base64.b64decode(value["scalar"][1]), dtype=dt, count=1)[0]
        if "array" in value:
            dt, shape, data = _dtype(value["array"][0]), [int(n) for n in value["array"][1]], value["array"][2]
            raw = base64.b64decode(data)
            if any(n < 0 for n in shape) or len(raw) != dt.itemsize * int(np.prod(shape, dtype=np.int64)):
                raise ValueError("array data does not match its shape")
            return np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        if "tensor" in value:
            import torch

            return torch.from_numpy(np.asarray(decode(value["tensor"]))).requires_grad_(
                bool(value.get("requires_grad")) and decode(value["tensor"]).dtype.kind == "f")
    raise ValueError(f"unexpected value in a message: {str(value)[:80]!r}")


def write_frame(stream, message) -> None:
    data = json.dumps(message).encode()
    stream.write(struct.pack(">Q", len(data)) + data)
    stream.flush()


# ------------------------------------------------------------------------------------------------
# the worker
# ------------------------------------------------------------------------------------------------
class _IPythonStub:
    """``get_ipython()`` for answer cells that kept a line magic (``%timeit``...): magics do nothing."""

    def run_line_magic(self, *args, **kwargs):
        return None

    run_cell_magic = system = getoutput = run_line_magic


def _read_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _short(exc: BaseException) -> str:
    return str(exc)[:2000]


def _run_cell(source, cell_id, namespace):
    out = io.StringIO()
    error = None
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 (IPython absent or a cell it cannot parse: compile reports it)
        pass
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(source, f"<cell {cell_id}>", "exec"), namespace)
    except BaseException as exc:  # noqa: BLE001 (SystemExit and KeyboardInterrupt too)
        error = f"{type(exc).__name__}: {_short(exc)}"
    return {"id": cell_id, "stdout": out.getvalue()[-5000:], "error": error}


def _call(namespace, request):
    name = request["name"]
    if not callable(namespace.get(name)):
        return {"ok": False, "ename": "NameError", "evalue": f"{name} is not defined"}
    try:
        args = [decode(a) for a in request["args"]]
        with contextlib.redirect_stdout(io.StringIO()):
            result = namespace[name](*args)
            if request.get("backward"):
                torch = sys.modules.get("torch")
                grads = None
                if torch is not None and isinstance(result, torch.Tensor) and result.requires_grad:
                    result.backward()
                    grads = [a.grad for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
                result = [result, grads]
        return {"ok": True, "value": encode(result)}
    except BaseException as exc:  # noqa: BLE001
        return {"ok": False, "ename": type(exc).__name__, "evalue": _short(exc)}


def main() -> None:
    channel_in = os.fdopen(os.dup(0), "rb", buffering=0)
    channel_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)  # prints that escape the capture go to the log, never to the channel
    namespace = {"__name__": "__main__", "get_ipython": _IPythonStub}
    while True:
        try:
            (n,) = struct.unpack(">Q", _read_exact(channel_in, 8))
            request = json.loads(_read_exact(channel_in, n))
        except EOFError:
            return
        if request["op"] == "load":
            results = [_run_cell(request["prelude"], "prelude", namespace)]
            results += [_run_cell(src, cid, namespace) for cid, src in request["cells"]]
            answer = {"cells": results}
        else:
            answer = _call(namespace, request)
        try:
            write_frame(channel_out, answer)
        except (TypeError, ValueError) as exc:
            write_frame(channel_out, {"ok": False, "ename": type(exc).__name__, "evalue": _short(exc)})


if __name__ == "__main__":
    main()
